//! The report of a run (SPEC §7.2), in one typed form, and its hash.
//!
//! A run stores its `ReportHead` (everything but the items) and its items (each item a row); the
//! served `Report` is the head with the run's exceptions as `ReportItem`s, each with its state and
//! resolution. The JSON the API serves, the CSV and the XLSX are all rendered from these types.
//!
//! `report_hash` is the SHA-256 of the canonical JSON: keys in the order the SPEC shows, `summary`
//! in category order with `missing_in_settlement` last, `settlement_files` in import order, items
//! sorted by key, compact, without `run_id`, `report_hash`, `state` and `resolution`. The same
//! inputs give the same hash, whenever and wherever the run is made.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Category, Item, Outcome, PaymentIn, Totals};
use crate::domain::payment::Gateway;
use crate::domain::recon::{ItemRecord, LineStatus};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileRef {
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Inputs {
    pub settlement_files: Vec<FileRef>,
    pub policy_hash: String,
    pub payments_digest: String,
    pub cases_digest: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sum {
    pub count: i64,
    pub amount: i64,
}

/// All nine categories, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Summary {
    pub duplicate_settlement_line: Sum,
    pub refund: Sum,
    pub missing_in_records: Sum,
    pub unconfirmed_in_records: Sum,
    pub duplicate_payment: Sum,
    pub amount_mismatch: Sum,
    pub fee_mismatch: Sum,
    pub matched: Sum,
    pub missing_in_settlement: Sum,
}

impl Summary {
    pub fn from(o: &Outcome<'_>) -> Self {
        let mut s = Summary::default();
        for (c, count, amount) in &o.summary {
            let slot = match c {
                Category::DuplicateSettlementLine => &mut s.duplicate_settlement_line,
                Category::Refund => &mut s.refund,
                Category::MissingInRecords => &mut s.missing_in_records,
                Category::UnconfirmedInRecords => &mut s.unconfirmed_in_records,
                Category::DuplicatePayment => &mut s.duplicate_payment,
                Category::AmountMismatch => &mut s.amount_mismatch,
                Category::FeeMismatch => &mut s.fee_mismatch,
                Category::Matched => &mut s.matched,
                Category::MissingInSettlement => &mut s.missing_in_settlement,
            };
            *slot = Sum { count: *count, amount: *amount };
        }
        s
    }

    pub fn get(&self, c: Category) -> Sum {
        match c {
            Category::DuplicateSettlementLine => self.duplicate_settlement_line,
            Category::Refund => self.refund,
            Category::MissingInRecords => self.missing_in_records,
            Category::UnconfirmedInRecords => self.unconfirmed_in_records,
            Category::DuplicatePayment => self.duplicate_payment,
            Category::AmountMismatch => self.amount_mismatch,
            Category::FeeMismatch => self.fee_mismatch,
            Category::Matched => self.matched,
            Category::MissingInSettlement => self.missing_in_settlement,
        }
    }
}

/// Everything a report says but its items: what a run stores beside its item rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportHead {
    pub business_date: NaiveDate,
    pub gateway: Gateway,
    pub run_id: String,
    pub report_hash: String,
    pub inputs: Inputs,
    pub summary: Summary,
    pub totals: Totals,
}

/// A run's report as served (SPEC §7.2): the head and the exceptions, each with its state.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Report {
    #[serde(flatten)]
    pub head: ReportHead,
    /// The exceptions (every category but `matched`), by key.
    pub items: Vec<ReportItem>,
}

/// An item as the report shows it: the SPEC's fields in order, its state and resolution, then
/// what this implementation adds.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReportItem {
    pub key: String,
    pub category: Category,
    pub case_code: Option<String>,
    pub payment_id: Option<String>,
    pub txn_ref: Option<String>,
    pub gateway_txn_no: Option<String>,
    pub recorded_amount: Option<i64>,
    pub settled_amount: Option<i64>,
    pub expected_amount: Option<i64>,
    /// The date counting the counterpart the item was classified against, when another.
    pub counterpart_date: Option<NaiveDate>,
    /// `open`, `pending_approval`, `resolved`, `superseded`; `matched` for a matched item.
    pub state: &'static str,
    /// The resolution as requested or applied, or `null`.
    pub resolution: serde_json::Value,
    pub business_date: NaiveDate,
    pub line_status: Option<LineStatus>,
    pub fee: Option<i64>,
}

impl ReportItem {
    pub fn of(i: ItemRecord, state: &'static str, resolution: serde_json::Value) -> Self {
        Self {
            key: i.item_key,
            category: i.category,
            case_code: i.case_code,
            payment_id: i.payment_id,
            txn_ref: i.txn_ref,
            gateway_txn_no: i.gateway_txn_no,
            recorded_amount: i.recorded_amount,
            settled_amount: i.settled_amount,
            expected_amount: i.expected_amount,
            counterpart_date: i.counterpart_date,
            state,
            resolution,
            business_date: i.business_date,
            line_status: i.line_status,
            fee: i.fee,
        }
    }
}

/// An item as the canonical JSON hashes it.
#[derive(Serialize, utoipa::ToSchema)]
struct CanonicalItem<'a> {
    key: &'a str,
    category: Category,
    case_code: Option<&'a str>,
    payment_id: Option<&'a str>,
    txn_ref: Option<&'a str>,
    gateway_txn_no: Option<&'a str>,
    recorded_amount: Option<i64>,
    settled_amount: Option<i64>,
    expected_amount: Option<i64>,
    counterpart_date: Option<NaiveDate>,
    business_date: NaiveDate,
    line_status: Option<LineStatus>,
    fee: Option<i64>,
}

impl<'a> CanonicalItem<'a> {
    fn of(i: &'a Item<'a>) -> Self {
        Self {
            key: &i.key,
            category: i.category,
            case_code: i.case_code,
            payment_id: i.payment_id,
            txn_ref: i.txn_ref,
            gateway_txn_no: i.gateway_txn_no,
            recorded_amount: i.recorded_amount,
            settled_amount: i.settled_amount,
            expected_amount: i.expected_amount,
            counterpart_date: i.counterpart_date,
            business_date: i.business_date,
            line_status: i.line_status,
            fee: i.fee,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct Canonical<'a> {
    business_date: &'a str,
    gateway: &'a str,
    inputs: &'a Inputs,
    summary: &'a Summary,
    totals: &'a Totals,
    items: Vec<CanonicalItem<'a>>,
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// SHA-256 fed through `write!`, so that digests of a million rows allocate nothing per row.
struct HashWriter(Sha256);

impl std::fmt::Write for HashWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

impl HashWriter {
    fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.0.finalize()))
    }
}

/// Digests of the payments and case versions an outcome concerns: SHA-256 of one line per
/// payment, `payment_id|txn_ref|gateway_txn_no|amount|status|business_date|home_date|duplicate`,
/// by payment id; and of one line per distinct case version,
/// `case_code|version|expected`, by case code, version and expected amount.
pub fn digests(o: &Outcome<'_>, payments: &[PaymentIn<'_>]) -> (String, String) {
    use std::fmt::Write as _;
    let mut ps: Vec<&PaymentIn<'_>> = o.payments.iter().map(|i| &payments[*i]).collect();
    ps.sort_unstable_by(|a, b| a.payment_id.cmp(b.payment_id));
    let mut pay = HashWriter(Sha256::new());
    for p in &ps {
        // Writing to a hasher cannot fail.
        let _ = write!(
            pay,
            "{}|{}|{}|{}|{}|",
            p.payment_id,
            p.txn_ref,
            p.gateway_txn_no.unwrap_or(""),
            p.amount,
            p.status.as_str()
        );
        if let Some(d) = p.business_date {
            let _ = write!(pay, "{d}");
        }
        pay.0.update(b"|");
        if let Some(h) = p.home {
            let _ = write!(pay, "{h}");
        }
        let _ = writeln!(pay, "|{}", p.duplicate);
    }
    let mut cases: Vec<(&str, i64, Option<i64>)> =
        ps.iter().map(|p| (p.case_code, p.case_version, p.expected)).collect();
    cases.sort_unstable();
    cases.dedup();
    let mut case_hash = HashWriter(Sha256::new());
    for (code, version, expected) in cases {
        let _ = write!(case_hash, "{code}|{version}|");
        if let Some(e) = expected {
            let _ = write!(case_hash, "{e}");
        }
        case_hash.0.update(b"\n");
    }
    (pay.finish(), case_hash.finish())
}

/// The exception items of an outcome (every category but `matched`).
pub fn exceptions<'o, 'a>(o: &'o Outcome<'a>) -> impl Iterator<Item = &'o Item<'a>> {
    o.items.iter().filter(|i| i.category != Category::Matched)
}

/// `sha256:<hex>` of the canonical report.
pub fn report_hash(
    business_date: &str,
    gateway: &str,
    inputs: &Inputs,
    summary: &Summary,
    totals: &Totals,
    o: &Outcome,
) -> String {
    let c = Canonical {
        business_date,
        gateway,
        inputs,
        summary,
        totals,
        items: exceptions(o).map(CanonicalItem::of).collect(),
    };
    sha(serde_json::to_string(&c).expect("a report serialises").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_lists_all_nine_categories_in_order_with_missing_in_settlement_last() {
        let v = serde_json::to_string(&Summary::default()).unwrap();
        let order: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        let mut last = 0;
        for c in &order {
            let at = v.find(&format!("\"{c}\"")).unwrap();
            assert!(at >= last, "{c} out of order in {v}");
            last = at;
        }
        assert!(v.ends_with(r#""missing_in_settlement":{"count":0,"amount":0}}"#), "{v}");
    }
}
