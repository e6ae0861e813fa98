//! What a receipt says (NĐ 254/2026 Art. 23(2)) and the exact bytes its signature covers. Pure.
//!
//! A receipt's content is one `Content` value, written once as compact JSON in the order of its
//! fields (the canonical form) and signed with the ledger's Ed25519 key over
//! `feerecon-receipt-v1\n` followed by that JSON. The content is stored as those bytes and never
//! rewritten, so anyone holding the public key (`GET /api/v1/ledger/public-key`) can check a
//! receipt from the JSON the API serves. The builders here turn a payment's stored quote into
//! the content of its receipts, and a receipt into its replacement or adjustment.

use serde::{Deserialize, Serialize};

use super::words::{amount_in_words, difference_in_words};
use crate::domain::receipt::{PayerKind, ReceiptKind, ReceiptRef};
use crate::domain::{BusinessDate, Timestamp};

/// The prefix of every signed receipt message; the version changes if the canonical form does.
pub const SIGNED_PREFIX: &str = "feerecon-receipt-v1\n";

/// The receipt's name (Art. 23(2)(a)): "Biên lai thu thuế, phí, lệ phí" is Art. 22's name for
/// the voucher [S]; a receipt for fees and charges only says so [I].
pub const TITLE: &str = "BIÊN LAI THU PHÍ, LỆ PHÍ";

/// The fee id of the line that carries a difference between the amount collected and the quote's
/// items (a payment confirmed from a settlement line for another amount).
pub const DIFFERENCE_FEE: &str = "chenh_lech";

/// The collecting organisation (Art. 23(2)(đ)), from configuration at the time of issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Collector {
    pub name: String,
    pub tax_code: String,
}

/// Who paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Payer {
    pub kind: PayerKind,
    pub name: String,
}

/// One fee item (Art. 23(2)(đ): the type of the amount collected), with its budget sub-item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Item {
    /// The catalogue's fee id, or `DIFFERENCE_FEE`.
    pub fee: String,
    /// The catalogue's name of the fee (in force on the case's receipt date).
    pub name: String,
    /// `phi`, `le_phi`, or `unallocated` for a difference line.
    pub kind: String,
    /// Tiểu mục of the state-budget classification, when the catalogue gives one.
    pub budget_subitem: Option<String>,
    /// In đồng; an adjustment's items carry signed differences.
    pub amount: i64,
}

/// The receipt a replacement or an adjustment refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Related {
    pub receipt_id: String,
    pub template: String,
    pub symbol: String,
    pub number: i64,
    pub issue_date: BusinessDate,
}

impl Related {
    pub fn reference(&self) -> ReceiptRef {
        ReceiptRef { template: self.template.clone(), symbol: self.symbol.clone(), number: self.number }
    }
}

/// A receipt's whole content, in canonical field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Content {
    pub title: String,
    pub receipt_id: String,
    pub template: String,
    pub symbol: String,
    pub number: i64,
    pub kind: ReceiptKind,
    pub issued_at: Timestamp,
    pub issue_date: BusinessDate,
    pub collector: Collector,
    pub payer: Payer,
    /// The case's applicant (the payer too, unless the budget paid).
    pub applicant: String,
    pub case_code: String,
    pub procedure_code: String,
    pub payment_id: Option<String>,
    pub items: Vec<Item>,
    /// The sum of the items' amounts (signed for an adjustment).
    pub total: i64,
    pub total_in_words: String,
    pub currency: String,
    pub related: Option<Related>,
    /// Why a replacement or an adjustment was issued.
    pub reason: Option<String>,
    /// A remark shown on the receipt and in the summary's note (a duplicate payment, say).
    pub note: Option<String>,
}

impl Content {
    /// The canonical JSON: compact, fields in declaration order.
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).expect("receipt content serialises: plain strings and integers")
    }

    pub fn reference(&self) -> ReceiptRef {
        ReceiptRef { template: self.template.clone(), symbol: self.symbol.clone(), number: self.number }
    }
}

/// The bytes a receipt's signature covers.
pub fn signed_message(canonical: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNED_PREFIX.len() + canonical.len());
    m.extend_from_slice(SIGNED_PREFIX.as_bytes());
    m.extend_from_slice(canonical.as_bytes());
    m
}

/// One item of a payment's stored quote, with its catalogue name and sub-item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedLine {
    pub fee: String,
    pub name: String,
    pub kind: String,
    pub budget_subitem: Option<String>,
    pub citizen_due: i64,
    pub budget_due: i64,
}

/// What the receipts of one payment are made from.
#[derive(Debug, Clone)]
pub struct PaymentFacts {
    pub payment_id: String,
    pub case_code: String,
    pub procedure_code: String,
    pub applicant: String,
    /// The citizen's amount (what the gateway collected); 0 for a budget-covered case.
    pub amount: i64,
    pub lines: Vec<QuotedLine>,
    /// The payment is a second charge for a settled case: its money is to be refunded.
    pub duplicate: bool,
}

/// The content of a receipt before it has a number, an id and a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub kind: ReceiptKind,
    pub payer: Payer,
    pub applicant: String,
    pub case_code: String,
    pub procedure_code: String,
    pub payment_id: Option<String>,
    pub items: Vec<Item>,
    pub related: Option<Related>,
    pub reason: Option<String>,
    pub note: Option<String>,
}

impl Draft {
    pub fn total(&self) -> i64 {
        self.items.iter().map(|i| i.amount).sum()
    }

    /// The content, once the receipt has its id, number and time of issue.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        self,
        receipt_id: String,
        template: &str,
        symbol: &str,
        number: i64,
        issued_at: Timestamp,
        collector: Collector,
    ) -> Content {
        let total = self.total();
        let total_in_words = match self.kind {
            ReceiptKind::Adjustment => difference_in_words(total),
            _ => amount_in_words(total.unsigned_abs()),
        };
        Content {
            title: TITLE.to_owned(),
            receipt_id,
            template: template.to_owned(),
            symbol: symbol.to_owned(),
            number,
            kind: self.kind,
            issued_at,
            issue_date: issued_at.business_date(),
            collector,
            payer: self.payer,
            applicant: self.applicant,
            case_code: self.case_code,
            procedure_code: self.procedure_code,
            payment_id: self.payment_id,
            items: self.items,
            total,
            total_in_words,
            currency: "VND".to_owned(),
            related: self.related,
            reason: self.reason,
            note: self.note,
        }
    }
}

fn item(l: &QuotedLine, amount: i64) -> Item {
    Item {
        fee: l.fee.clone(),
        name: l.name.clone(),
        kind: l.kind.clone(),
        budget_subitem: l.budget_subitem.clone(),
        amount,
    }
}

/// The original receipts a payment confirmed now (or a budget-covered case) gets: the citizen's
/// for the amount collected (its quote's citizen parts, a difference line when the amount is
/// another), and the budget's for the quote's budget parts, naming the budget as payer [I: the
/// reference gives no rule for a third party paying a fee; unverified]. A duplicate payment gets
/// the citizen's receipt only, marked as to be refunded [I: the money was taken, so a receipt is
/// issued as the law wants at collection; unverified], and the budget pays nothing for it.
pub fn originals(f: &PaymentFacts, budget_payer: &str) -> Vec<Draft> {
    let base = |payer: Payer, items: Vec<Item>, note: Option<String>| Draft {
        kind: ReceiptKind::Original,
        payer,
        applicant: f.applicant.clone(),
        case_code: f.case_code.clone(),
        procedure_code: f.procedure_code.clone(),
        payment_id: Some(f.payment_id.clone()),
        items,
        related: None,
        reason: None,
        note,
    };
    let mut out = Vec::new();
    if f.amount > 0 {
        let mut items: Vec<Item> =
            f.lines.iter().filter(|l| l.citizen_due > 0).map(|l| item(l, l.citizen_due)).collect();
        let difference = f.amount - items.iter().map(|i| i.amount).sum::<i64>();
        if difference != 0 {
            items.push(Item {
                fee: DIFFERENCE_FEE.to_owned(),
                name: "Chênh lệch giữa số tiền đã thu và số phải nộp theo biểu phí".to_owned(),
                kind: "unallocated".to_owned(),
                budget_subitem: None,
                amount: difference,
            });
        }
        let note = f.duplicate.then(|| "Thu trùng: hồ sơ đã được thanh toán, khoản này phải hoàn trả".to_owned());
        out.push(base(Payer { kind: PayerKind::Citizen, name: f.applicant.clone() }, items, note));
    }
    if !f.duplicate {
        let items: Vec<Item> = f.lines.iter().filter(|l| l.budget_due > 0).map(|l| item(l, l.budget_due)).collect();
        if !items.is_empty() {
            let note = Some(format!("Ngân sách chi trả thay cho người nộp hồ sơ {}", f.applicant));
            out.push(base(Payer { kind: PayerKind::Budget, name: budget_payer.to_owned() }, items, note));
        }
    }
    out
}

/// The replacement of `of` (TT 91 Art. 20(2)): the same items and payer, the payer's name
/// corrected when given, the organisation as configured now, and why.
pub fn replacement(of: &Content, payer_name: Option<&str>, reason: &str) -> Draft {
    Draft {
        kind: ReceiptKind::Replacement,
        payer: Payer { kind: of.payer.kind, name: payer_name.map_or_else(|| of.payer.name.clone(), str::to_owned) },
        applicant: of.applicant.clone(),
        case_code: of.case_code.clone(),
        procedure_code: of.procedure_code.clone(),
        payment_id: of.payment_id.clone(),
        items: of.items.clone(),
        related: Some(related(of)),
        reason: Some(reason.to_owned()),
        note: of.note.clone(),
    }
}

/// Why an adjustment cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdjustError {
    #[error("items: give at least one item")]
    Empty,
    #[error("items: {0} is not an item of the receipt")]
    UnknownFee(String),
    #[error("items: {0} appears twice")]
    Repeated(String),
    #[error("items: {fee} would fall below zero ({now} đồng now, difference {difference})")]
    BelowZero { fee: String, now: i64, difference: i64 },
    #[error("items: every difference is zero: nothing to adjust")]
    Nothing,
}

/// The adjustment of `of` by signed differences per fee, given the amounts each fee holds now
/// (`of`'s items plus the adjustments already made to it): no fee may fall below zero.
pub fn adjustment(
    of: &Content,
    current: &[(String, i64)],
    differences: &[(String, i64)],
    reason: &str,
) -> Result<Draft, AdjustError> {
    if differences.is_empty() {
        return Err(AdjustError::Empty);
    }
    let mut items = Vec::with_capacity(differences.len());
    for (k, (fee, d)) in differences.iter().enumerate() {
        if differences[..k].iter().any(|(f, _)| f == fee) {
            return Err(AdjustError::Repeated(fee.clone()));
        }
        let base = of.items.iter().find(|i| &i.fee == fee).ok_or_else(|| AdjustError::UnknownFee(fee.clone()))?;
        let now = current.iter().find(|(f, _)| f == fee).map_or(base.amount, |(_, a)| *a);
        if now.checked_add(*d).is_none_or(|after| after < 0) {
            return Err(AdjustError::BelowZero { fee: fee.clone(), now, difference: *d });
        }
        items.push(Item { amount: *d, ..base.clone() });
    }
    if items.iter().all(|i| i.amount == 0) {
        return Err(AdjustError::Nothing);
    }
    Ok(Draft {
        kind: ReceiptKind::Adjustment,
        payer: of.payer.clone(),
        applicant: of.applicant.clone(),
        case_code: of.case_code.clone(),
        procedure_code: of.procedure_code.clone(),
        payment_id: of.payment_id.clone(),
        items,
        related: Some(related(of)),
        reason: Some(reason.to_owned()),
        note: of.note.clone(),
    })
}

fn related(of: &Content) -> Related {
    Related {
        receipt_id: of.receipt_id.clone(),
        template: of.template.clone(),
        symbol: of.symbol.clone(),
        number: of.number,
        issue_date: of.issue_date,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(fee: &str, kind: &str, c: i64, b: i64) -> QuotedLine {
        QuotedLine {
            fee: fee.into(),
            name: format!("Tên {fee}"),
            kind: kind.into(),
            budget_subitem: Some("2771".into()),
            citizen_due: c,
            budget_due: b,
        }
    }

    fn facts(amount: i64, lines: Vec<QuotedLine>, duplicate: bool) -> PaymentFacts {
        PaymentFacts {
            payment_id: "pay_1".into(),
            case_code: "000.00.12.H62-240715-0001".into(),
            procedure_code: "1.001193".into(),
            applicant: "Nguyễn Văn A".into(),
            amount,
            lines,
            duplicate,
        }
    }

    fn finish(d: Draft, n: i64) -> Content {
        let at = Timestamp::parse("2026-01-01T00:00:30+07:00").unwrap();
        d.finish(
            format!("rct_{n}"),
            "EBL01",
            "26TAB",
            n,
            at,
            Collector { name: "Sở X".into(), tax_code: "0101234567".into() },
        )
    }

    #[test]
    fn a_paid_payment_gets_the_citizens_receipt_and_the_budgets_for_its_support() {
        let f = facts(
            60_000,
            vec![line("a", "le_phi", 50_000, 50_000), line("b", "phi", 10_000, 0), line("c", "phi", 0, 0)],
            false,
        );
        let d = originals(&f, "Ngân sách tỉnh");
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].payer.kind, d[0].total(), d[0].items.len()), (PayerKind::Citizen, 60_000, 2));
        assert_eq!(
            (d[1].payer.kind, d[1].payer.name.as_str(), d[1].total()),
            (PayerKind::Budget, "Ngân sách tỉnh", 50_000)
        );
        let c = finish(d[0].clone(), 1);
        assert_eq!(c.total_in_words, "Sáu mươi nghìn đồng");
        assert_eq!(c.issue_date.to_string(), "2026-01-01");
        assert!(c.canonical().starts_with(r#"{"title":"BIÊN LAI THU PHÍ, LỆ PHÍ","receipt_id":"rct_1","template":"EBL01","symbol":"26TAB","number":1,"kind":"original","issued_at":"2026-01-01T00:00:30+07:00""#), "{}", c.canonical());
        assert_eq!(serde_json::from_str::<Content>(&c.canonical()).unwrap(), c, "the stored form reads back");
        assert!(signed_message(&c.canonical()).starts_with(b"feerecon-receipt-v1\n{"));
    }

    #[test]
    fn budget_covered_duplicates_and_differences() {
        // Budget-covered: no citizen receipt.
        let d = originals(&facts(0, vec![line("a", "le_phi", 0, 135_000)], false), "NS");
        assert_eq!((d.len(), d[0].payer.kind, d[0].total()), (1, PayerKind::Budget, 135_000));
        // A duplicate: the citizen's receipt only, marked.
        let d = originals(&facts(50_000, vec![line("a", "le_phi", 50_000, 50_000)], true), "NS");
        assert_eq!(d.len(), 1);
        assert!(d[0].note.as_deref().unwrap().contains("hoàn trả"));
        // Paid more than the items: a difference line keeps the total the amount collected.
        let d = originals(&facts(9_000, vec![line("a", "le_phi", 8_000, 0)], false), "NS");
        assert_eq!((d[0].total(), d[0].items[1].fee.as_str(), d[0].items[1].amount), (9_000, DIFFERENCE_FEE, 1_000));
    }

    #[test]
    fn a_replacement_and_an_adjustment_refer_to_what_they_correct() {
        let original = finish(
            originals(&facts(60_000, vec![line("a", "le_phi", 50_000, 0), line("b", "phi", 10_000, 0)], false), "NS")
                .remove(0),
            1,
        );
        let r = finish(replacement(&original, Some("Nguyễn Văn B"), "sai tên"), 2);
        assert_eq!((r.kind, r.payer.name.as_str(), r.total), (ReceiptKind::Replacement, "Nguyễn Văn B", 60_000));
        assert_eq!(r.related.as_ref().unwrap().reference().to_string(), "EBL01/26TAB/1");
        let a = finish(adjustment(&r, &[], &[("a".into(), -4_000)], "hoàn trả").unwrap(), 3);
        assert_eq!((a.total, a.total_in_words.as_str()), (-4_000, "Điều chỉnh giảm bốn nghìn đồng"));
        assert_eq!(a.items[0].budget_subitem.as_deref(), Some("2771"));
        let now = vec![("a".to_owned(), 46_000)];
        assert_eq!(
            adjustment(&r, &now, &[("a".into(), -46_001)], "x").unwrap_err(),
            AdjustError::BelowZero { fee: "a".into(), now: 46_000, difference: -46_001 }
        );
        assert!(adjustment(&r, &now, &[("a".into(), -46_000)], "x").is_ok());
        assert_eq!(adjustment(&r, &[], &[("z".into(), -1)], "x").unwrap_err(), AdjustError::UnknownFee("z".into()));
        assert_eq!(adjustment(&r, &[], &[], "x").unwrap_err(), AdjustError::Empty);
        assert_eq!(adjustment(&r, &[], &[("a".into(), 0)], "x").unwrap_err(), AdjustError::Nothing);
        assert_eq!(
            adjustment(&r, &[], &[("a".into(), -1), ("a".into(), -1)], "x").unwrap_err(),
            AdjustError::Repeated("a".into())
        );
    }
}
