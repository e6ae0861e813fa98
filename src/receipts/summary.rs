//! The day's receipt summary for the tax office: Mẫu 01/TH-BLĐT, "bảng tổng hợp dữ liệu biên lai
//! điện tử", sent within the day of issue (NĐ 254/2026 Art. 29(3)(b), TT 91/2026 Phụ lục III) [S].
//!
//! One row per receipt issued on the date, in the form's columns (reference §1.5) [S]: STT, ký
//! hiệu mẫu, ký hiệu, số, ngày lập, tên loại phí/lệ phí, số tiền, tỷ giá, trạng thái, kỳ điều
//! chỉnh dữ liệu, thông tin biên lai liên quan, giải trình, ghi chú. What fills the status and
//! adjustment-period columns is [I]: a row's status is its receipt's as of the end of the date
//! (a replacement issued later shows on its own date's summary, naming this receipt), and the
//! adjustment period of a replacement or adjustment is the date of the receipt it corrects.
//!
//! The summary also checks itself against the ledger: the originals issued on the date must
//! collect exactly what the ledger's confirmations written that date do (`ledger.matches`),
//! since both are written by the same transactions. Rendered as JSON, CSV or XLSX.

use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde::Serialize;

use super::content::Collector;
use super::{Result, content_of, status_of};
use crate::domain::BusinessDate;
use crate::domain::receipt::{PayerKind, ReceiptKind, ReceiptStatus};
use crate::reconcile::render::neutralise;
use crate::store::Store;

/// The form's name.
pub const FORM: &str = "01/TH-BLĐT";

/// The form's columns, in order, as the CSV header and the workbook write them.
pub const COLUMNS: [&str; 13] = [
    "STT",
    "Ký hiệu mẫu số biên lai",
    "Ký hiệu biên lai",
    "Số biên lai",
    "Ngày lập",
    "Tên loại thuế, phí, lệ phí",
    "Số tiền",
    "Tỷ giá",
    "Trạng thái",
    "Kỳ điều chỉnh dữ liệu",
    "Thông tin biên lai liên quan",
    "Giải trình",
    "Ghi chú",
];

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Row {
    pub stt: usize,
    pub template: String,
    pub symbol: String,
    pub number: i64,
    pub issue_date: BusinessDate,
    /// The names of the receipt's fee items, joined by `; `.
    pub fee_types: String,
    /// The receipt's total (a signed difference for an adjustment).
    pub amount: i64,
    /// Always null: fees are collected in đồng.
    pub exchange_rate: Option<String>,
    pub kind: ReceiptKind,
    /// As of the end of the date.
    pub status: ReceiptStatus,
    /// The form's wording of `status` for `kind`.
    pub status_label: &'static str,
    /// A correction's: the issue date of the receipt it corrects.
    pub adjusted_period: Option<BusinessDate>,
    /// A correction's: the receipt it corrects, `EBL01/26TAB/12`.
    pub related: Option<String>,
    /// A correction's reason.
    pub explanation: Option<String>,
    pub note: Option<String>,
    pub receipt_id: String,
    pub case_code: String,
    pub payer_kind: PayerKind,
}

/// The money of the day's receipts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Totals {
    pub receipts: usize,
    /// What the originals acknowledge.
    pub originals: i64,
    /// The adjustments' signed differences.
    pub adjustments: i64,
}

/// The ledger's side of the date: the confirmations written that date and what they collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LedgerCheck {
    pub confirmations: i64,
    pub collected: i64,
    /// `collected` equals `totals.originals`.
    pub matches: bool,
}

/// The numbers of one sequence issued on the date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Numbering {
    pub template: String,
    pub symbol: String,
    pub year: i64,
    pub first: i64,
    pub last: i64,
    pub count: usize,
    /// Every number from `first` to `last` is on the date's summary.
    pub contiguous: bool,
}

/// The summary of one date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub form: &'static str,
    pub date: BusinessDate,
    pub collector: Collector,
    pub rows: Vec<Row>,
    pub totals: Totals,
    pub ledger: LedgerCheck,
    pub numbering: Vec<Numbering>,
}

/// Reads the receipts of `date` and builds its summary.
pub async fn build(store: &Store, collector: &Collector, date: BusinessDate) -> Result<Summary> {
    let receipts = store.receipts_of_date(date.naive()).await?;
    let ids: Vec<&str> = receipts.iter().map(|r| r.receipt_id.as_str()).collect();
    let end = date.succ().start();
    // What referred to them by the end of the date.
    let referring: Vec<_> =
        store.receipts_referring_to(&ids).await?.into_iter().filter(|r| r.issued_at.0 < end).collect();
    let mut rows = Vec::with_capacity(receipts.len());
    let mut totals = Totals { receipts: receipts.len(), ..Totals::default() };
    for (i, r) in receipts.iter().enumerate() {
        let c = content_of(r)?;
        let (status, _, _) = status_of(&r.receipt_id, &referring);
        match r.kind {
            ReceiptKind::Original => totals.originals += r.total,
            ReceiptKind::Adjustment => totals.adjustments += r.total,
            ReceiptKind::Replacement => {}
        }
        let mut note = vec![format!("Hồ sơ {}", c.case_code)];
        if r.payer_kind == PayerKind::Budget {
            note.push(format!("người nộp: {}", c.payer.name));
        }
        note.extend(c.note.clone());
        rows.push(Row {
            stt: i + 1,
            template: r.template.clone(),
            symbol: r.symbol.clone(),
            number: r.number,
            issue_date: c.issue_date,
            fee_types: c.items.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join("; "),
            amount: r.total,
            exchange_rate: None,
            kind: r.kind,
            status,
            status_label: status.summary_label(r.kind),
            adjusted_period: c.related.as_ref().map(|x| x.issue_date),
            related: c.related.as_ref().map(|x| x.reference().to_string()),
            explanation: c.reason.clone(),
            note: Some(note.join("; ")),
            receipt_id: r.receipt_id.clone(),
            case_code: c.case_code.clone(),
            payer_kind: r.payer_kind,
        });
    }
    let confirmations = store.confirmations_between(date.start(), end).await?;
    let ledger = LedgerCheck {
        confirmations: confirmations.postings,
        collected: confirmations.collected,
        matches: confirmations.collected == totals.originals,
    };
    Ok(Summary {
        form: FORM,
        date,
        collector: collector.clone(),
        numbering: numbering(&receipts),
        rows,
        totals,
        ledger,
    })
}

fn numbering(receipts: &[crate::store::ReceiptRow]) -> Vec<Numbering> {
    let mut out: Vec<Numbering> = Vec::new();
    for r in receipts {
        match out.iter_mut().find(|n| n.template == r.template && n.symbol == r.symbol && n.year == r.year) {
            Some(n) => {
                n.first = n.first.min(r.number);
                n.last = n.last.max(r.number);
                n.count += 1;
            }
            None => out.push(Numbering {
                template: r.template.clone(),
                symbol: r.symbol.clone(),
                year: r.year,
                first: r.number,
                last: r.number,
                count: 1,
                contiguous: true,
            }),
        }
    }
    for n in &mut out {
        n.contiguous = i64::try_from(n.count).is_ok_and(|c| c == n.last - n.first + 1);
    }
    out
}

/// A row's cells as text, in `COLUMNS` order, neutralised for spreadsheets.
fn cells(r: &Row) -> [String; 13] {
    let opt = |v: &Option<String>| neutralise(v.as_deref().unwrap_or(""));
    [
        r.stt.to_string(),
        r.template.clone(),
        r.symbol.clone(),
        r.number.to_string(),
        r.issue_date.to_string(),
        neutralise(&r.fee_types),
        r.amount.to_string(),
        opt(&r.exchange_rate),
        r.status_label.to_owned(),
        r.adjusted_period.map(|d| d.to_string()).unwrap_or_default(),
        opt(&r.related),
        opt(&r.explanation),
        opt(&r.note),
    ]
}

/// The summary as CSV: the form's header, one row per receipt (RFC 4180, CRLF).
pub fn csv(s: &Summary) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(COLUMNS);
    for r in &s.rows {
        let _ = w.write_record(cells(r));
    }
    w.into_inner().unwrap_or_default()
}

/// A whole number as a spreadsheet cell (exact up to 2^53, far beyond any amount here).
#[allow(clippy::cast_precision_loss)]
fn number(v: i64) -> f64 {
    v as f64
}

/// The summary as an XLSX workbook: the organisation and the date above the form's table.
pub fn xlsx(s: &Summary) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0");
    let ws = wb.add_worksheet().set_name("01-TH-BLDT")?;
    ws.write_string_with_format(0, 0, "BẢNG TỔNG HỢP DỮ LIỆU BIÊN LAI ĐIỆN TỬ (Mẫu 01/TH-BLĐT)", &bold)?;
    ws.write_string(1, 0, "Tên tổ chức thu")?;
    ws.write_string(1, 2, neutralise(&s.collector.name))?;
    ws.write_string(2, 0, "Mã số thuế")?;
    ws.write_string(2, 2, neutralise(&s.collector.tax_code))?;
    ws.write_string(3, 0, "Ngày")?;
    ws.write_string(3, 2, s.date.to_string())?;
    let head = 5u32;
    for (c, h) in COLUMNS.iter().enumerate() {
        ws.write_string_with_format(head, u16::try_from(c).unwrap_or(0), *h, &bold)?;
    }
    for (i, r) in s.rows.iter().enumerate() {
        let row = head + 1 + u32::try_from(i).unwrap_or(0);
        for (c, text) in cells(r).iter().enumerate() {
            let col = u16::try_from(c).unwrap_or(0);
            match c {
                0 => ws.write_number(row, col, number(i64::try_from(r.stt).unwrap_or(0)))?,
                3 => ws.write_number(row, col, number(r.number))?,
                6 => ws.write_number_with_format(row, col, number(r.amount), &money)?,
                _ => ws.write_string(row, col, text)?,
            };
        }
    }
    let last = head + 2 + u32::try_from(s.rows.len()).unwrap_or(0);
    ws.write_string_with_format(last, 5, "Tổng số tiền (biên lai gốc)", &bold)?;
    ws.write_number_with_format(last, 6, number(s.totals.originals), &money)?;
    ws.write_string_with_format(last + 1, 5, "Điều chỉnh", &bold)?;
    ws.write_number_with_format(last + 1, 6, number(s.totals.adjustments), &money)?;
    ws.set_column_width(5, 48)?;
    ws.set_column_width(10, 24)?;
    ws.set_column_width(12, 48)?;
    wb.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        let d = BusinessDate::parse("2026-03-02").unwrap();
        Summary {
            form: FORM,
            date: d,
            collector: Collector { name: "Sở Tư pháp".into(), tax_code: "0101234567".into() },
            rows: vec![Row {
                stt: 1,
                template: "EBL01".into(),
                symbol: "26TAA".into(),
                number: 2,
                issue_date: d,
                fee_types: "=Lệ phí, hộ tịch".into(),
                amount: -4_000,
                exchange_rate: None,
                kind: ReceiptKind::Adjustment,
                status: ReceiptStatus::Issued,
                status_label: "Điều chỉnh",
                adjusted_period: Some(d),
                related: Some("EBL01/26TAA/1".into()),
                explanation: Some("hoàn trả".into()),
                note: Some("Hồ sơ X".into()),
                receipt_id: "rct_1".into(),
                case_code: "X".into(),
                payer_kind: PayerKind::Citizen,
            }],
            totals: Totals { receipts: 1, originals: 0, adjustments: -4_000 },
            ledger: LedgerCheck { confirmations: 0, collected: 0, matches: true },
            numbering: vec![],
        }
    }

    #[test]
    fn the_csv_has_the_forms_columns_and_neutralises_formulas() {
        let text = String::from_utf8(csv(&summary())).unwrap();
        let mut lines = text.split("\r\n");
        assert_eq!(
            lines.next().unwrap(),
            "STT,Ký hiệu mẫu số biên lai,Ký hiệu biên lai,Số biên lai,Ngày lập,\"Tên loại thuế, phí, lệ phí\",Số tiền,Tỷ giá,Trạng thái,Kỳ điều chỉnh dữ liệu,Thông tin biên lai liên quan,Giải trình,Ghi chú"
        );
        assert_eq!(
            lines.next().unwrap(),
            "1,EBL01,26TAA,2,2026-03-02,\"'=Lệ phí, hộ tịch\",-4000,,Điều chỉnh,2026-03-02,EBL01/26TAA/1,hoàn trả,Hồ sơ X"
        );
    }

    #[test]
    fn the_workbook_is_a_zip() {
        let bytes = xlsx(&summary()).unwrap();
        assert_eq!(&bytes[..2], b"PK");
    }

    #[test]
    fn numbering_groups_a_sequence_and_sees_holes() {
        let row = |n: i64| crate::store::ReceiptRow {
            receipt_id: format!("r{n}"),
            template: "EBL01".into(),
            symbol: "26TAA".into(),
            year: 2026,
            number: n,
            kind: ReceiptKind::Original,
            related_receipt_id: None,
            payment_id: None,
            case_code: crate::domain::CaseCode::parse("000.00.12.H62-240715-0001").unwrap(),
            payer_kind: PayerKind::Citizen,
            payer_name: String::new(),
            total: 0,
            issued_at: crate::domain::Timestamp::parse("2026-03-02T10:00:00+07:00").unwrap(),
            issue_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            issued_by: String::new(),
            reason: None,
            content: String::new(),
            signature: String::new(),
            public_key: String::new(),
        };
        let n = numbering(&[row(3), row(4), row(5)]);
        assert_eq!((n[0].first, n[0].last, n[0].count, n[0].contiguous), (3, 5, 3, true));
        assert!(!numbering(&[row(3), row(5)])[0].contiguous);
    }
}
