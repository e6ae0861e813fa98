//! Reconciliation (SPEC §7.2): the pure matcher. No I/O: payments, settlement lines and day
//! closures in; classified items, category sums and totals out.
//!
//! Scope: the `paid` payments of the gateway whose business date is D, and the lines whose
//! `txn_time` falls on D; a payment or line whose own date was closed before it arrived belongs
//! to the first later open date (its item keeps its original date). Lines match payments by
//! `txn_ref` whatever the line's date: a line for a payment of another date is that date's item.
//! When a payment has a recorded `gateway_txn_no`, only a line with that number matches it;
//! another success line for its `txn_ref` is a second charge. Lines are taken in import order,
//! then line number: a later occurrence of a (`gateway_txn_no`, status) is a duplicate line.
//! Everything is joined through hash maps, once; the output is sorted by key, so it does not
//! depend on the order of the inputs.

pub mod render;
pub mod report;

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::payment::PaymentStatus;
pub use crate::domain::recon::{Category, Item, LineStatus};

/// A payment of the gateway, as reconciliation needs it. Its text borrows from what the store
/// read: a million-row day allocates no string per field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIn<'a> {
    pub payment_id: &'a str,
    pub case_code: &'a str,
    pub case_version: i64,
    pub txn_ref: &'a str,
    pub gateway_txn_no: Option<&'a str>,
    pub amount: i64,
    pub status: PaymentStatus,
    /// The business date of `paid_at`, for paid payments.
    pub business_date: Option<NaiveDate>,
    /// When the payment became paid in our records.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Flagged `duplicate_payment`.
    pub duplicate: bool,
    /// The case's current `citizen_due`, recomputed; `None` when it cannot be quoted.
    pub expected: Option<i64>,
    /// The payment's quote split by fee kind: citizen part of phí and of lệ phí.
    pub phi: i64,
    pub le_phi: i64,
}

/// A settlement line of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineIn<'a> {
    /// The file's position in import order.
    pub file: usize,
    pub line_no: usize,
    pub gateway_txn_no: &'a str,
    pub txn_ref: &'a str,
    pub amount: i64,
    pub fee: i64,
    pub status: LineStatus,
    pub business_date: NaiveDate,
    /// When its file was imported.
    pub arrived_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ByKind {
    pub phi: i64,
    pub le_phi: i64,
    pub duplicates: i64,
    pub unallocated: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Totals {
    pub recorded_paid: i64,
    pub settled_gross: i64,
    pub gateway_fees: i64,
    pub refunds: i64,
    pub settled_net: i64,
    pub by_kind: ByKind,
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Outcome<'a> {
    /// Sorted by key.
    pub items: Vec<Item<'a>>,
    /// (count, amount) per category, in `Category::ALL` order.
    pub summary: Vec<(Category, i64, i64)>,
    pub totals: Totals,
    /// The files that contributed a line, in import order.
    pub files: Vec<usize>,
    /// The payments the items concern, by index into the input.
    pub payments: Vec<usize>,
}

/// Closed (business date → when it was closed) for the gateway.
pub type Closures = BTreeMap<NaiveDate, DateTime<Utc>>;

/// The date an event of date `orig` that arrived at `arrived` is reconciled on.
pub fn effective_date(orig: NaiveDate, arrived: Option<DateTime<Utc>>, closures: &Closures) -> NaiveDate {
    match (closures.get(&orig), arrived) {
        (Some(closed_at), Some(a)) if *closed_at < a => {
            let mut d = orig.succ_opt().unwrap_or(orig);
            while closures.contains_key(&d) {
                d = d.succ_opt().unwrap_or(d);
            }
            d
        }
        _ => orig,
    }
}

/// Item keys: a line's gateway, number and status (a later occurrence adds its file and line);
/// a payment's id.
pub fn line_key(gateway: &str, l: &LineIn<'_>, first: bool, file_sha: &str) -> String {
    if first {
        format!("{gateway}:{}:{}", l.gateway_txn_no, l.status.as_str())
    } else {
        format!(
            "{gateway}:{}:{}:{}:{}",
            l.gateway_txn_no,
            l.status.as_str(),
            &file_sha[..file_sha.len().min(12)],
            l.line_no
        )
    }
}

pub fn payment_key(gateway: &str, payment_id: &str) -> String {
    format!("{gateway}:payment:{payment_id}")
}

/// Reconciles `date` for one gateway. `file_shas[i]` is the SHA-256 of the file imported i-th.
pub fn reconcile<'a>(
    gateway: &str,
    date: NaiveDate,
    payments: &'a [PaymentIn<'_>],
    lines: &'a [LineIn<'_>],
    file_shas: &[String],
    closures: &Closures,
) -> Outcome<'a> {
    // Two independent joins, on two threads: each line's payment by reference (unique per
    // gateway), and the first occurrence of each (number, status) in import order.
    // The matcher's tables hold positions as u32, at half the memory of usize.
    assert!(
        payments.len() < u32::MAX as usize && lines.len() < u32::MAX as usize,
        "reconcile takes fewer than 2^32 payments and lines"
    );
    let index = |i: usize| i as u32;
    let (line_payment, (order, is_first)) = std::thread::scope(|s| {
        let by_reference = s.spawn(|| {
            let mut by_ref: HashMap<&str, u32> = HashMap::with_capacity_and_hasher(payments.len(), Default::default());
            for (i, p) in payments.iter().enumerate() {
                by_ref.insert(p.txn_ref, index(i));
            }
            lines.iter().map(|l| by_ref.get(l.txn_ref).copied()).collect::<Vec<Option<u32>>>()
        });
        let mut order: Vec<usize> = (0..lines.len()).collect();
        if !lines.windows(2).all(|w| (w[0].file, w[0].line_no) <= (w[1].file, w[1].line_no)) {
            order.sort_unstable_by_key(|i| (lines[*i].file, lines[*i].line_no));
        }
        let mut first_seen: HashMap<(&str, LineStatus), ()> =
            HashMap::with_capacity_and_hasher(lines.len(), Default::default());
        let mut is_first = vec![false; lines.len()];
        for &i in &order {
            let l = &lines[i];
            is_first[i] = first_seen.insert((l.gateway_txn_no, l.status), ()).is_none();
        }
        drop(first_seen);
        // A panic in the other thread is a bug here: pass it on.
        let line_payment = by_reference.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        (line_payment, (order, is_first))
    });
    // Each paid payment's matching line: the first success line with its reference (and its
    // number, when it has one).
    let mut has_line = vec![false; payments.len()];
    let mut matches_payment = vec![false; lines.len()];
    for &i in &order {
        let l = &lines[i];
        if !is_first[i] || l.status != LineStatus::Success {
            continue;
        }
        let Some(pi) = line_payment[i].map(|pi| pi as usize) else { continue };
        let p = &payments[pi];
        if p.status != PaymentStatus::Paid || has_line[pi] {
            continue;
        }
        if p.gateway_txn_no.is_none_or(|n| n == l.gateway_txn_no) {
            has_line[pi] = true;
            matches_payment[i] = true;
        }
    }
    let payment_date = |p: &PaymentIn<'_>| p.business_date.map(|d| effective_date(d, p.confirmed_at, closures));

    // At most one item per line and per payment: reserving that bound never reallocates, and
    // the pages past what is used are never touched (so never resident).
    let mut items = Vec::with_capacity(lines.len() + payments.len());
    let mut totals = Totals::default();
    let mut files = vec![false; file_shas.len()];
    let mut used_payments = vec![false; payments.len()];
    for &i in &order {
        let l = &lines[i];
        let payment = line_payment[i].map(|pi| (pi as usize, &payments[pi as usize]));
        let own = effective_date(l.business_date, Some(l.arrived_at), closures);
        let home = match payment {
            // A line settling a paid payment is that payment's date's item, unless that date was
            // closed before the line arrived: then the first later open date's.
            Some((_, p)) if is_first[i] && l.status == LineStatus::Success && p.status == PaymentStatus::Paid => {
                payment_date(p).map_or(own, |pd| effective_date(pd, Some(l.arrived_at), closures))
            }
            _ => own,
        };
        if home != date {
            continue;
        }
        let category = if !is_first[i] {
            Category::DuplicateSettlementLine
        } else if l.status == LineStatus::Refund {
            Category::Refund
        } else {
            match payment {
                None => Category::MissingInRecords,
                Some((_, p)) if p.status != PaymentStatus::Paid => Category::UnconfirmedInRecords,
                Some((_, p)) if p.duplicate || !matches_payment[i] => Category::DuplicatePayment,
                Some((_, p)) if l.amount != p.amount => Category::AmountMismatch,
                Some((_, p)) if p.expected != Some(p.amount) => Category::FeeMismatch,
                Some(_) => Category::Matched,
            }
        };
        if is_first[i] {
            match l.status {
                LineStatus::Success => {
                    totals.settled_gross += l.amount;
                    totals.gateway_fees += l.fee;
                }
                LineStatus::Refund => totals.refunds += l.amount,
            }
        }
        if let Some(f) = files.get_mut(l.file) {
            *f = true;
        }
        if let Some((pi, _)) = payment {
            used_payments[pi] = true;
        }
        let sha = file_shas.get(l.file).map(String::as_str).unwrap_or("");
        items.push(Item {
            key: line_key(gateway, l, is_first[i], sha),
            category,
            business_date: l.business_date,
            case_code: payment.map(|(_, p)| p.case_code),
            payment_id: payment.map(|(_, p)| p.payment_id),
            txn_ref: Some(l.txn_ref),
            gateway_txn_no: Some(l.gateway_txn_no),
            line_status: Some(l.status),
            recorded_amount: payment.map(|(_, p)| p.amount),
            settled_amount: Some(l.amount),
            expected_amount: payment.and_then(|(_, p)| p.expected),
            fee: Some(l.fee),
            settles_payment: matches_payment[i],
        });
    }
    for (pi, p) in payments.iter().enumerate() {
        if p.status != PaymentStatus::Paid || payment_date(p) != Some(date) {
            continue;
        }
        used_payments[pi] = true;
        totals.recorded_paid += p.amount;
        if p.duplicate {
            totals.by_kind.duplicates += p.amount;
        } else {
            totals.by_kind.phi += p.phi;
            totals.by_kind.le_phi += p.le_phi;
            totals.by_kind.unallocated += p.amount - p.phi - p.le_phi;
        }
        if has_line[pi] {
            continue;
        }
        items.push(Item {
            key: payment_key(gateway, p.payment_id),
            category: if p.duplicate { Category::DuplicatePayment } else { Category::MissingInSettlement },
            business_date: p.business_date.unwrap_or(date),
            case_code: Some(p.case_code),
            payment_id: Some(p.payment_id),
            txn_ref: Some(p.txn_ref),
            gateway_txn_no: p.gateway_txn_no,
            line_status: None,
            recorded_amount: Some(p.amount),
            settled_amount: None,
            expected_amount: p.expected,
            fee: None,
            settles_payment: false,
        });
    }
    totals.settled_net = totals.settled_gross - totals.gateway_fees - totals.refunds;
    sort_by_key(&mut items, gateway.len() + 1);
    let mut sums = [(0i64, 0i64); 9];
    for i in &items {
        let s = &mut sums[i.category as usize];
        s.0 += 1;
        s.1 += i.amount();
    }
    let summary = Category::ALL.iter().map(|c| (*c, sums[*c as usize].0, sums[*c as usize].1)).collect();
    Outcome {
        items,
        summary,
        totals,
        files: files.iter().enumerate().filter(|(_, u)| **u).map(|(i, _)| i).collect(),
        payments: used_payments.iter().enumerate().filter(|(_, u)| **u).map(|(i, _)| i).collect(),
    }
}

/// Sorts items by key. Every key starts with `"{gateway}:"` (`skip` bytes); comparing the next
/// sixteen bytes as one integer, with the full keys only on a tie, keeps the sort in cache
/// (string comparisons would chase a pointer per key), and the items then move once.
fn sort_by_key(items: &mut [Item<'_>], skip: usize) {
    let prefix = |key: &str| {
        let rest = key.as_bytes().get(skip..).unwrap_or_default();
        let mut b = [0u8; 16];
        let n = rest.len().min(16);
        b[..n].copy_from_slice(&rest[..n]);
        // Zero padding orders a shorter prefix first, as string comparison does; equal
        // prefixes fall back to the keys.
        b
    };
    // `reconcile` asserts that positions fit in u32.
    let mut order: Vec<([u8; 16], u32)> = items.iter().enumerate().map(|(i, it)| (prefix(&it.key), i as u32)).collect();
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| items[a.1 as usize].key.cmp(&items[b.1 as usize].key)));
    // Position k receives the item at order[k]: follow each cycle of the permutation, swapping.
    let mut source: Vec<u32> = order.into_iter().map(|(_, i)| i).collect();
    for start in 0..source.len() {
        let mut k = start;
        loop {
            let from = source[k] as usize;
            source[k] = k as u32;
            if from == start || from == k {
                break;
            }
            items.swap(k, from);
            k = from;
        }
    }
}

#[cfg(test)]
mod tests;
