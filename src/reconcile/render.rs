//! Reports for people: CSV of every item, and an XLSX workbook with a summary sheet and an
//! exceptions sheet (Vietnamese headers, amounts as numbers formatted `#,##0 ₫`).
//!
//! Text that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return) is neutralised with a leading apostrophe. This applies to reports and
//! dashboard downloads only; ledger exports stay byte-exact.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::report::{Report, ReportItem};
use crate::domain::recon::Category;

/// A text cell made safe for spreadsheets.
pub fn neutralise(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

pub const CSV_COLUMNS: [&str; 16] = [
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
    "counterpart_date",
    "fee",
    "state",
    "resolution_action",
    "resolution_note",
];

/// The report's CSV (every item, one row each, with `CSV_COLUMNS`), written as items arrive:
/// RFC 4180 quoting and CRLF line ends by the `csv` crate, text neutralised, amounts as digits.
pub struct CsvWriter {
    w: csv::Writer<Vec<u8>>,
}

impl Default for CsvWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// The CSV writer every report uses: RFC 4180 quoting, CRLF line ends, into memory.
pub fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new())
}

impl CsvWriter {
    /// A writer that has written the header.
    pub fn new() -> Self {
        let mut w = csv_writer();
        // Writing to a Vec cannot fail.
        let _ = w.write_record(CSV_COLUMNS);
        Self { w }
    }

    /// Writes one item's row.
    pub fn item(&mut self, i: &ReportItem) {
        let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let t = |v: Option<&str>| neutralise(v.unwrap_or(""));
        let _ = self.w.write_record([
            t(Some(&i.key)),
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
            i.counterpart_date.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
            n(i.fee),
            i.state.to_owned(),
            t(i.resolution["action"].as_str()),
            t(i.resolution["note"].as_str()),
        ]);
    }

    /// What has been written since the last call (for streaming).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.w, csv_writer()).into_inner().unwrap_or_default()
    }
}

/// The report as text for a terminal: the summary, the totals and the exceptions.
pub fn text(r: &Report) -> String {
    use std::fmt::Write as _;
    let m = |v: i64| crate::domain::Money::new(v).map(|m| m.to_string()).unwrap_or_else(|_| v.to_string());
    let h = &r.head;
    let mut o = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(o, "Reconciliation of {} for {} — run {}", h.business_date, h.gateway, h.run_id);
    let _ = writeln!(o, "report_hash {}", h.report_hash);
    let _ = writeln!(o, "{:<28} {:>7} {:>18}", "category", "count", "amount");
    for c in Category::ALL {
        let s = h.summary.get(*c);
        let _ = writeln!(o, "{:<28} {:>7} {:>18}", c.as_str(), s.count, m(s.amount));
    }
    let t = &h.totals;
    let _ = writeln!(
        o,
        "recorded_paid {} · settled_gross {} · gateway_fees {} · refunds {} · settled_net {}",
        m(t.recorded_paid),
        m(t.settled_gross),
        m(t.gateway_fees),
        m(t.refunds),
        m(t.settled_net)
    );
    let _ = writeln!(o, "exceptions: {}", r.items.len());
    for i in &r.items {
        let amount = i.settled_amount.or(i.recorded_amount).unwrap_or(0);
        let _ = writeln!(o, "  {:<24} {:<46} {:>14} {}", i.category.as_str(), i.key, m(amount), i.state);
    }
    o
}

/// A category's name in Vietnamese, for people's reports.
pub fn category_vi(c: Category) -> &'static str {
    match c {
        Category::DuplicateSettlementLine => "Dòng đối soát trùng",
        Category::Refund => "Hoàn tiền",
        Category::MissingInRecords => "Không có trong hệ thống",
        Category::UnconfirmedInRecords => "Chưa xác nhận trong hệ thống",
        Category::DuplicatePayment => "Thanh toán trùng",
        Category::AmountMismatch => "Lệch số tiền",
        Category::FeeMismatch => "Lệch mức phí",
        Category::Matched => "Khớp",
        Category::MissingInSettlement => "Không có trong file đối soát",
    }
}

/// A whole number as a spreadsheet cell. XLSX stores numbers as IEEE doubles, which hold every
/// integer up to 2^53 exactly: far beyond any amount in đồng here.
#[allow(clippy::cast_precision_loss)]
pub fn cell(v: i64) -> f64 {
    v as f64
}

/// The workbook of a report: a summary sheet and the exceptions.
pub fn xlsx(report: &Report) -> Result<Vec<u8>, XlsxError> {
    let h = &report.head;
    let mut wb = Workbook::new();
    let money = Format::new().set_num_format("#,##0 \"₫\"");
    let bold = Format::new().set_bold();
    let s = wb.add_worksheet().set_name("Tổng hợp")?;
    s.write_string_with_format(0, 0, "Ngày đối soát", &bold)?;
    s.write_string(0, 1, h.business_date.format("%Y-%m-%d").to_string())?;
    s.write_string_with_format(1, 0, "Cổng thanh toán", &bold)?;
    s.write_string(1, 1, h.gateway.as_str())?;
    s.write_string_with_format(2, 0, "Mã băm báo cáo", &bold)?;
    s.write_string(2, 1, &h.report_hash)?;
    s.write_string_with_format(4, 0, "Loại", &bold)?;
    s.write_string_with_format(4, 1, "Mã loại", &bold)?;
    s.write_string_with_format(4, 2, "Số lượng", &bold)?;
    s.write_string_with_format(4, 3, "Số tiền", &bold)?;
    for (i, c) in Category::ALL.iter().enumerate() {
        let row = 5 + u32::try_from(i).unwrap_or(0);
        let sum = h.summary.get(*c);
        s.write_string(row, 0, category_vi(*c))?;
        s.write_string(row, 1, c.as_str())?;
        s.write_number(row, 2, cell(sum.count))?;
        s.write_number_with_format(row, 3, cell(sum.amount), &money)?;
    }
    let t = &h.totals;
    let totals = [
        ("recorded_paid", "Đã ghi nhận thanh toán", t.recorded_paid),
        ("settled_gross", "Tổng tiền đối soát", t.settled_gross),
        ("gateway_fees", "Phí cổng thanh toán", t.gateway_fees),
        ("refunds", "Hoàn tiền", t.refunds),
        ("settled_net", "Thực nhận", t.settled_net),
    ];
    for (i, (code, vi, v)) in totals.iter().enumerate() {
        let row = 16 + u32::try_from(i).unwrap_or(0);
        s.write_string_with_format(row, 0, *vi, &bold)?;
        s.write_string(row, 1, *code)?;
        s.write_number_with_format(row, 3, cell(*v), &money)?;
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
    for (r, item) in report.items.iter().enumerate() {
        let row = 1 + u32::try_from(r).unwrap_or(0);
        let text = |v: Option<&str>| neutralise(v.unwrap_or(""));
        e.write_string(row, 0, text(Some(&item.key)))?;
        e.write_string(row, 1, item.category.as_str())?;
        e.write_string(row, 2, text(item.case_code.as_deref()))?;
        e.write_string(row, 3, text(item.payment_id.as_deref()))?;
        e.write_string(row, 4, text(item.txn_ref.as_deref()))?;
        e.write_string(row, 5, text(item.gateway_txn_no.as_deref()))?;
        for (c, v) in [(6u16, item.recorded_amount), (7, item.settled_amount), (8, item.expected_amount)] {
            if let Some(v) = v {
                e.write_number_with_format(row, c, cell(v), &money)?;
            }
        }
        e.write_string(row, 9, item.state)?;
        e.write_string(row, 10, text(item.resolution["action"].as_str()))?;
    }
    e.set_column_width(0, 40)?;
    wb.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::reconcile::report::{Inputs, ReportHead, Summary};

    fn item(key: &str) -> ReportItem {
        ReportItem {
            key: key.into(),
            category: Category::MissingInSettlement,
            case_code: None,
            payment_id: Some("a,b".into()),
            txn_ref: Some("c\"d".into()),
            gateway_txn_no: None,
            recorded_amount: Some(115_000),
            settled_amount: None,
            expected_amount: None,
            counterpart_date: None,
            state: "open",
            resolution: serde_json::Value::Null,
            business_date: chrono::NaiveDate::from_ymd_opt(2024, 7, 15).unwrap(),
            line_status: None,
            fee: None,
        }
    }

    #[test]
    fn formula_like_text_is_neutralised() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        for s in ["+1", "-1", "@SUM", "\tx", "\rx"] {
            assert!(neutralise(s).starts_with('\''), "{s}");
        }
        assert_eq!(neutralise("240715ABC"), "240715ABC");
    }

    #[test]
    fn the_csv_quotes_as_rfc_4180_and_neutralises_formulas() {
        let mut w = CsvWriter::new();
        w.item(&item("=cmd"));
        let text = String::from_utf8(w.take()).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert_eq!(lines[1], "'=cmd,missing_in_settlement,2024-07-15,,\"a,b\",\"c\"\"d\",,,115000,,,,,open,,");
        assert_eq!(w.take(), b"", "nothing new");
    }

    #[test]
    fn the_workbook_is_a_zip_with_both_sheets() {
        let report = Report {
            head: ReportHead {
                business_date: chrono::NaiveDate::from_ymd_opt(2024, 7, 15).unwrap(),
                gateway: crate::domain::payment::Gateway::Vnpay,
                run_id: "run_1".into(),
                report_hash: "sha256:x".into(),
                inputs: Inputs {
                    settlement_files: vec![],
                    policy_hash: String::new(),
                    payments_digest: String::new(),
                    cases_digest: String::new(),
                },
                summary: Summary::default(),
                totals: Default::default(),
            },
            items: vec![item("=cmd")],
        };
        let bytes = xlsx(&report).unwrap();
        assert_eq!(&bytes[..2], b"PK");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("xl/worksheets/sheet2.xml"), "two sheets");
    }
}
