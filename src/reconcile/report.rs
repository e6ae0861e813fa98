//! The report of a run (SPEC §7.2) and its hash.
//!
//! `report_hash` is the SHA-256 of the canonical JSON: keys in the order the SPEC shows, `summary`
//! in category order with `missing_in_settlement` last, `settlement_files` in import order, items
//! sorted by key, compact, without `run_id`, `report_hash`, `state` and `resolution`. The same
//! inputs give the same hash, whenever and wherever the run is made.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Category, Item, Outcome, PaymentIn, Totals};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRef {
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inputs {
    pub settlement_files: Vec<FileRef>,
    pub policy_hash: String,
    pub payments_digest: String,
    pub cases_digest: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sum {
    pub count: i64,
    pub amount: i64,
}

/// All nine categories, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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

/// An item as the report shows it: the SPEC's fields in order, then the item's state and
/// resolution (left out of the hash), then what this implementation adds.
#[derive(Debug, Clone, Serialize)]
pub struct ItemJson<'a> {
    pub key: &'a str,
    pub category: Category,
    pub case_code: Option<&'a str>,
    pub payment_id: Option<&'a str>,
    pub txn_ref: Option<&'a str>,
    pub gateway_txn_no: Option<&'a str>,
    pub recorded_amount: Option<i64>,
    pub settled_amount: Option<i64>,
    pub expected_amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<&'a serde_json::Value>,
    pub business_date: String,
    pub line_status: Option<&'static str>,
    pub fee: Option<i64>,
}

impl<'a> ItemJson<'a> {
    pub fn of(i: &'a Item<'a>, state: Option<(&'a str, &'a serde_json::Value)>) -> Self {
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
            state: state.map(|s| s.0),
            resolution: state.map(|s| s.1),
            business_date: i.business_date.format("%Y-%m-%d").to_string(),
            line_status: i.line_status.map(|s| s.as_str()),
            fee: i.fee,
        }
    }
}

#[derive(Serialize)]
struct Canonical<'a> {
    business_date: &'a str,
    gateway: &'a str,
    inputs: &'a Inputs,
    summary: &'a Summary,
    totals: &'a Totals,
    items: Vec<ItemJson<'a>>,
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
/// payment, `payment_id|txn_ref|gateway_txn_no|amount|status|business_date|confirmed_at
/// (µs)|duplicate`, by payment id; and of one line per distinct case version,
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
        if let Some(t) = p.confirmed_at {
            let _ = write!(pay, "{}", t.timestamp_micros());
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
        items: exceptions(o).map(|i| ItemJson::of(i, None)).collect(),
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
