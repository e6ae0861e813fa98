//! A statement for people: CSV (one row per transfer line) and an XLSX workbook laid out like the
//! C1-02/NS data (payer, accounts, lines with sub-item and chapter, totals, deadlines). Both use
//! the report writers of `reconcile::render`: the same CSV writer (RFC 4180, CRLF) and the same
//! neutralising of text a spreadsheet would read as a formula.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::statement::Statement;
use crate::reconcile::render::{cell, csv_writer, neutralise};

pub const CSV_COLUMNS: [&str; 13] = [
    "period",
    "fee_kind",
    "treasury",
    "to_account",
    "no",
    "content",
    "budget_subitem",
    "chapter",
    "amount",
    "carried_in",
    "deposit_by",
    "pay_in_by",
    "state",
];

/// The statement as CSV: one row per line of every transfer.
pub fn csv(s: &Statement) -> Vec<u8> {
    let mut w = csv_writer();
    let opt = |v: &Option<String>| neutralise(v.as_deref().unwrap_or(""));
    let state = s.remittance.as_ref().map_or("open", |r| r.state.as_str());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(CSV_COLUMNS);
    for t in &s.transfers {
        for l in &t.lines {
            let _ = w.write_record([
                s.period.to_string(),
                t.fee_kind.to_owned(),
                opt(&t.treasury),
                opt(&t.to_account),
                l.no.to_string(),
                neutralise(&l.content),
                opt(&l.budget_subitem),
                opt(&l.chapter),
                l.amount.to_string(),
                l.carried_in.to_string(),
                s.deadlines.deposit_by.to_string(),
                s.deadlines.pay_in_by.to_string(),
                state.to_owned(),
            ]);
        }
    }
    w.into_inner().unwrap_or_default()
}

/// The statement as a workbook: one sheet, the transfers' data under the payer's.
pub fn xlsx(s: &Statement) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0");
    let ws = wb.add_worksheet().set_name("C1-02-NS")?;
    let text = |v: &Option<String>| neutralise(v.as_deref().unwrap_or("(chưa cấu hình)"));
    ws.write_string_with_format(0, 0, format!("BẢNG KÊ NỘP NGÂN SÁCH {}", s.label.to_uppercase()), &bold)?;
    let head: [(&str, String); 7] = [
        ("Kỳ", format!("{} ({} – {})", s.period, s.from, s.to)),
        ("Người nộp", neutralise(&s.payer.name)),
        ("Mã số thuế", neutralise(&s.payer.tax_code)),
        ("Tài khoản trích", text(&s.payer.account)),
        ("Mã chương", text(&s.chapter)),
        ("Hạn nộp vào tài khoản chờ nộp", s.deadlines.deposit_by.to_string()),
        ("Hạn nộp vào NSNN", s.deadlines.pay_in_by.to_string()),
    ];
    for (r, (k, v)) in head.iter().enumerate() {
        let row = u32::try_from(r + 1).unwrap_or(0);
        ws.write_string_with_format(row, 0, *k, &bold)?;
        ws.write_string(row, 2, v)?;
    }
    let mut row = 9u32;
    for t in &s.transfers {
        let kind = if t.fee_kind == "phi" { "Phí" } else { "Lệ phí" };
        ws.write_string_with_format(row, 0, format!("Giấy nộp tiền {} – {kind}", t.form), &bold)?;
        ws.write_string(row + 1, 0, "KBNN")?;
        ws.write_string(row + 1, 2, text(&t.treasury))?;
        ws.write_string(row + 2, 0, "Tài khoản nhận")?;
        ws.write_string(row + 2, 2, text(&t.to_account))?;
        row += 3;
        for (c, h) in
            ["STT", "Nội dung khoản nộp", "Mã tiểu mục", "Mã chương", "Số tiền", "Trong đó: kỳ trước chuyển sang"]
                .iter()
                .enumerate()
        {
            ws.write_string_with_format(row, u16::try_from(c).unwrap_or(0), *h, &bold)?;
        }
        for l in &t.lines {
            row += 1;
            ws.write_number(row, 0, cell(i64::try_from(l.no).unwrap_or(0)))?;
            ws.write_string(row, 1, neutralise(&l.content))?;
            ws.write_string(row, 2, neutralise(l.budget_subitem.as_deref().unwrap_or("")))?;
            ws.write_string(row, 3, neutralise(l.chapter.as_deref().unwrap_or("")))?;
            ws.write_number_with_format(row, 4, cell(l.amount), &money)?;
            ws.write_number_with_format(row, 5, cell(l.carried_in), &money)?;
        }
        row += 1;
        ws.write_string_with_format(row, 1, "Tổng cộng", &bold)?;
        ws.write_number_with_format(row, 4, cell(t.total), &money)?;
        row += 2;
    }
    ws.write_string_with_format(row, 1, "Tổng số phải nộp trong kỳ", &bold)?;
    ws.write_number_with_format(row, 4, cell(s.total), &money)?;
    ws.write_string_with_format(row + 1, 1, "Đã nộp", &bold)?;
    ws.write_number_with_format(row + 1, 4, cell(s.standing.remitted), &money)?;
    ws.write_string_with_format(row + 2, 1, "Còn phải nộp", &bold)?;
    ws.write_number_with_format(row + 2, 4, cell(s.standing.outstanding), &money)?;
    for (i, w) in s.warnings.iter().enumerate() {
        ws.write_string(row + 4 + u32::try_from(i).unwrap_or(0), 0, neutralise(&format!("Lưu ý: {w}")))?;
    }
    ws.set_column_width(0, 28)?;
    ws.set_column_width(1, 52)?;
    ws.set_column_width(2, 16)?;
    ws.set_column_width(4, 18)?;
    ws.set_column_width(5, 18)?;
    wb.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::RemittanceConfig;
    use crate::domain::remittance::Period;
    use crate::remittance::count::LineSum;
    use crate::remittance::statement::{Payer, build};

    fn statement() -> Statement {
        let mut lines = BTreeMap::new();
        lines.insert(
            ("le_phi", Some("2771".to_owned())),
            LineSum { amount: 12_000, carried_in: 4_000, fees: BTreeMap::new(), entries: 2 },
        );
        let settings = RemittanceConfig {
            chapter: Some("418".into()),
            le_phi_account: Some("=7111 NSNN".into()),
            ..RemittanceConfig::default()
        };
        let payer = Payer { name: "Sở Tư pháp".into(), tax_code: "2600123456".into(), account: None };
        let today = chrono::NaiveDate::from_ymd_opt(2024, 8, 1).unwrap();
        build(Period::parse("2024-07").unwrap(), &lines, 9, None, payer, &settings, &[], today)
    }

    #[test]
    fn the_csv_has_a_row_per_line_and_neutralises_formulas() {
        let text = String::from_utf8(csv(&statement())).unwrap();
        let mut rows = text.split("\r\n");
        assert_eq!(rows.next().unwrap(), CSV_COLUMNS.join(","));
        assert_eq!(
            rows.next().unwrap(),
            "2024-07,le_phi,,'=7111 NSNN,1,Nộp Lệ phí hộ tịch tháng 07/2024,2771,418,12000,4000,2024-08-05,2024-08-20,open"
        );
        assert_eq!(rows.next(), Some(""));
    }

    #[test]
    fn the_workbook_is_a_zip() {
        assert_eq!(&xlsx(&statement()).unwrap()[..2], b"PK");
    }
}
