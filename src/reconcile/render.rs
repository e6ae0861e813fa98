//! Reports for people: CSV of every item, and an XLSX workbook with a summary sheet and an
//! exceptions sheet (Vietnamese headers, amounts as numbers formatted `#,##0 ₫`).
//!
//! Text that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return) is neutralised with a leading apostrophe. This applies to reports and
//! dashboard downloads only; ledger exports stay byte-exact.

use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde_json::Value;

/// A text cell made safe for spreadsheets.
pub fn neutralise(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

pub const CSV_COLUMNS: [&str; 15] = [
    "key",
    "category",
    "business_date",
    "case_code",
    "payment_id",
    "txn_ref",
    "gateway_txn_no",
    "line_status",
    "recorded_amount",
    "settled_amount",
    "expected_amount",
    "fee",
    "state",
    "resolution_action",
    "resolution_note",
];

/// One CSV record (RFC 4180 quoting) ending in CRLF.
pub fn csv_record(fields: &[String]) -> String {
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push_str("\r\n");
    out
}

/// An item row's CSV fields: text neutralised, numbers as digits.
pub fn csv_fields(i: &crate::domain::recon::ItemRecord, state: &str, resolution: &Value) -> Vec<String> {
    let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let t = |v: Option<&str>| neutralise(v.unwrap_or(""));
    vec![
        t(Some(&i.item_key)),
        i.category.as_str().to_owned(),
        i.business_date.format("%Y-%m-%d").to_string(),
        t(i.case_code.as_deref()),
        t(i.payment_id.as_deref()),
        t(i.txn_ref.as_deref()),
        t(i.gateway_txn_no.as_deref()),
        i.line_status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        n(i.recorded_amount),
        n(i.settled_amount),
        n(i.expected_amount),
        n(i.fee),
        state.to_owned(),
        t(resolution["action"].as_str()),
        t(resolution["note"].as_str()),
    ]
}

const CATEGORY_VI: [(&str, &str); 9] = [
    ("duplicate_settlement_line", "Dòng đối soát trùng"),
    ("refund", "Hoàn tiền"),
    ("missing_in_records", "Không có trong hệ thống"),
    ("unconfirmed_in_records", "Chưa xác nhận trong hệ thống"),
    ("duplicate_payment", "Thanh toán trùng"),
    ("amount_mismatch", "Lệch số tiền"),
    ("fee_mismatch", "Lệch mức phí"),
    ("matched", "Khớp"),
    ("missing_in_settlement", "Không có trong file đối soát"),
];

/// A whole number as a spreadsheet cell. XLSX stores numbers as IEEE doubles, which hold every
/// integer up to 2^53 exactly: far beyond any amount in đồng here.
#[allow(clippy::cast_precision_loss)]
fn cell(v: i64) -> f64 {
    v as f64
}

/// The workbook for a served report (its `items` are the exceptions).
pub fn xlsx(report: &Value) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let money = Format::new().set_num_format("#,##0 \"₫\"");
    let bold = Format::new().set_bold();
    let s = wb.add_worksheet().set_name("Tổng hợp")?;
    s.write_string_with_format(0, 0, "Ngày đối soát", &bold)?;
    s.write_string(0, 1, report["business_date"].as_str().unwrap_or(""))?;
    s.write_string_with_format(1, 0, "Cổng thanh toán", &bold)?;
    s.write_string(1, 1, report["gateway"].as_str().unwrap_or(""))?;
    s.write_string_with_format(2, 0, "Mã băm báo cáo", &bold)?;
    s.write_string(2, 1, report["report_hash"].as_str().unwrap_or(""))?;
    s.write_string_with_format(4, 0, "Loại", &bold)?;
    s.write_string_with_format(4, 1, "Mã loại", &bold)?;
    s.write_string_with_format(4, 2, "Số lượng", &bold)?;
    s.write_string_with_format(4, 3, "Số tiền", &bold)?;
    for (i, (code, vi)) in CATEGORY_VI.iter().enumerate() {
        let row = 5 + u32::try_from(i).unwrap_or(0);
        let sum = &report["summary"][code];
        s.write_string(row, 0, *vi)?;
        s.write_string(row, 1, *code)?;
        s.write_number(row, 2, cell(sum["count"].as_i64().unwrap_or(0)))?;
        s.write_number_with_format(row, 3, cell(sum["amount"].as_i64().unwrap_or(0)), &money)?;
    }
    let totals = [
        ("recorded_paid", "Đã ghi nhận thanh toán"),
        ("settled_gross", "Tổng tiền đối soát"),
        ("gateway_fees", "Phí cổng thanh toán"),
        ("refunds", "Hoàn tiền"),
        ("settled_net", "Thực nhận"),
    ];
    for (i, (code, vi)) in totals.iter().enumerate() {
        let row = 16 + u32::try_from(i).unwrap_or(0);
        s.write_string_with_format(row, 0, *vi, &bold)?;
        s.write_string(row, 1, *code)?;
        s.write_number_with_format(row, 3, cell(report["totals"][code].as_i64().unwrap_or(0)), &money)?;
    }
    s.set_column_width(0, 34)?;
    s.set_column_width(1, 28)?;
    s.set_column_width(3, 18)?;

    let e = wb.add_worksheet().set_name("Ngoại lệ")?;
    let headers = [
        "Mã ngoại lệ",
        "Loại",
        "Mã hồ sơ",
        "Mã thanh toán",
        "Mã tham chiếu",
        "Mã giao dịch cổng",
        "Số tiền ghi nhận",
        "Số tiền đối soát",
        "Số tiền phải nộp",
        "Trạng thái",
        "Xử lý",
    ];
    for (c, h) in headers.iter().enumerate() {
        e.write_string_with_format(0, u16::try_from(c).unwrap_or(0), *h, &bold)?;
    }
    let empty = vec![];
    for (r, item) in report["items"].as_array().unwrap_or(&empty).iter().enumerate() {
        let row = 1 + u32::try_from(r).unwrap_or(0);
        let text = |k: &str| neutralise(item[k].as_str().unwrap_or(""));
        e.write_string(row, 0, text("key"))?;
        e.write_string(row, 1, text("category"))?;
        e.write_string(row, 2, text("case_code"))?;
        e.write_string(row, 3, text("payment_id"))?;
        e.write_string(row, 4, text("txn_ref"))?;
        e.write_string(row, 5, text("gateway_txn_no"))?;
        for (c, k) in [(6u16, "recorded_amount"), (7, "settled_amount"), (8, "expected_amount")] {
            if let Some(v) = item[k].as_i64() {
                e.write_number_with_format(row, c, cell(v), &money)?;
            }
        }
        e.write_string(row, 9, text("state"))?;
        e.write_string(row, 10, neutralise(item["resolution"]["action"].as_str().unwrap_or("")))?;
    }
    e.set_column_width(0, 40)?;
    wb.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_text_is_neutralised() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        for s in ["+1", "-1", "@SUM", "\tx", "\rx"] {
            assert!(neutralise(s).starts_with('\''), "{s}");
        }
        assert_eq!(neutralise("240715ABC"), "240715ABC");
        assert_eq!(csv_record(&["a,b".into(), "c\"d".into(), "e".into()]), "\"a,b\",\"c\"\"d\",e\r\n");
    }

    #[test]
    fn the_workbook_is_a_zip_with_both_sheets() {
        let report = serde_json::json!({"business_date": "2024-07-15", "gateway": "vnpay", "report_hash": "sha256:x",
            "summary": {"matched": {"count": 2, "amount": 230000}}, "totals": {"recorded_paid": 230000},
            "items": [{"key": "=cmd", "category": "missing_in_settlement", "recorded_amount": 115000, "state": "open", "resolution": null}]});
        let bytes = xlsx(&report).unwrap();
        assert_eq!(&bytes[..2], b"PK");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("xl/worksheets/sheet2.xml"), "two sheets");
    }
}
