//! Reconciliation (SPEC §7.2): the pure matcher. No I/O: payments, settlement lines and closed
//! dates in; classified items, category sums, totals, and the events the date counts out.
//!
//! **Events and their dates.** An event is a `paid` payment or a settlement line. Its natural date
//! is a payment's business date; a line's, the business date of the paid payment it settles, else
//! its own `txn_time` date. A close gives every event it counts a home date that never changes
//! again; an event without a home is counted on its natural date or, when that date is closed,
//! on the first open date after it. So each event is counted on exactly one date over its life.
//!
//! **Items.** Every line counted on D is an item of D; every paid payment counted on D whose
//! settling line is not counted on D is an item too. An item may be classified against a
//! counterpart counted on another date (a late line for a payment a closed date counted, a late
//! callback for a line): it names that date in `counterpart_date` and counts only its own events.
//! Lines match payments by `txn_ref`; when a payment has a recorded `gateway_txn_no`, only a line
//! with that number matches it, another success line is a second charge. A success line whose
//! refund was counted on a date before its payment's does not settle that payment any more.
//! Everything is joined through hash maps, once; the output is sorted by key, so it does not
//! depend on the order of the inputs.
//!
//! **Compact matched items.** A million-row day has about a million `matched` items. A run keeps
//! each as a `MatchedItem` (the positions of its line and payment in the inputs, its counterpart
//! date: 16 bytes) instead of an `Item` (176 bytes and a key on the heap), and builds the `Item`
//! back from the inputs (`Source::expand`) when the save, the close or a test needs it
//! (`reconcile_compact`, `Outcome::all_items`). `reconcile` expands every item.

pub mod render;
pub mod report;

use std::collections::BTreeSet;

use rustc_hash::FxHashMap as HashMap;

use chrono::NaiveDate;
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
    /// Its natural date: the business date of `paid_at`, for paid payments.
    pub business_date: Option<NaiveDate>,
    /// The date whose close counted it; never changes once set.
    pub home: Option<NaiveDate>,
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
    /// Its own date: `txn_time` in Asia/Ho_Chi_Minh.
    pub business_date: NaiveDate,
    /// The first occurrence of its (`gateway_txn_no`, status) by import order then line number
    /// (decided at import, over every file of the gateway: see `first_occurrences`).
    pub first: bool,
    /// The date whose close counted it; never changes once set.
    pub home: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ByKind {
    pub phi: i64,
    pub le_phi: i64,
    pub duplicates: i64,
    pub unallocated: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Totals {
    pub recorded_paid: i64,
    pub settled_gross: i64,
    pub gateway_fees: i64,
    pub refunds: i64,
    pub settled_net: i64,
    pub by_kind: ByKind,
}

/// A `matched` item kept compact (`reconcile_compact`): what its `Item` holds that the inputs
/// cannot give back. Every other field follows from its line and its payment (`Source::expand`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchedItem {
    /// Positions in the inputs the outcome was matched from: the line, and the payment it settles.
    line: u32,
    payment: u32,
    counterpart_date: Option<NaiveDate>,
    /// The payment's item (its settling line is counted on another date), not the line's.
    of_payment: bool,
}

/// The inputs an outcome was matched from, to build its compact items back into `Item`s. It must
/// be the very gateway, date and slices given to `reconcile_compact`: a `MatchedItem` holds
/// positions into them.
#[derive(Debug, Clone, Copy)]
pub struct Source<'o, 'a> {
    pub gateway: &'o str,
    pub date: NaiveDate,
    pub payments: &'o [PaymentIn<'a>],
    pub lines: &'o [LineIn<'a>],
    pub file_shas: &'o [String],
}

impl<'a> Source<'_, 'a> {
    fn sha(&self, l: &LineIn<'_>) -> &str {
        self.file_shas.get(l.file).map(String::as_str).unwrap_or("")
    }

    /// Appends the item's key to `out`.
    fn push_key(&self, m: &MatchedItem, out: &mut String) {
        if m.of_payment {
            push_payment_key(out, self.gateway, self.payments[m.payment as usize].payment_id);
        } else {
            let l = &self.lines[m.line as usize];
            push_line_key(out, self.gateway, l, self.sha(l));
        }
    }

    /// The item as `reconcile` builds it (same fields as the matcher's two loops give a matched
    /// line and a matched payment).
    pub fn expand(&self, m: &MatchedItem) -> Item<'a> {
        let (l, p) = (&self.lines[m.line as usize], &self.payments[m.payment as usize]);
        let mut key = String::new();
        self.push_key(m, &mut key);
        if m.of_payment {
            return Item {
                key,
                category: Category::Matched,
                business_date: p.business_date.unwrap_or(self.date),
                case_code: Some(p.case_code),
                payment_id: Some(p.payment_id),
                txn_ref: Some(p.txn_ref),
                gateway_txn_no: p.gateway_txn_no,
                line_status: None,
                recorded_amount: Some(p.amount),
                settled_amount: Some(l.amount),
                expected_amount: p.expected,
                counterpart_date: m.counterpart_date,
                fee: None,
                settles_payment: false,
            };
        }
        Item {
            key,
            category: Category::Matched,
            business_date: l.business_date,
            case_code: Some(p.case_code),
            payment_id: Some(p.payment_id),
            txn_ref: Some(l.txn_ref),
            gateway_txn_no: Some(l.gateway_txn_no),
            line_status: Some(l.status),
            recorded_amount: Some(p.amount),
            settled_amount: Some(l.amount),
            expected_amount: p.expected,
            counterpart_date: m.counterpart_date,
            fee: Some(l.fee),
            // Only a line that settles its payment is matched (`settled_category`).
            settles_payment: true,
        }
    }
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Outcome<'a> {
    /// Sorted by key. From `reconcile`: every item; from `reconcile_compact`: every item but the
    /// matched ones, which are in `matched`.
    pub items: Vec<Item<'a>>,
    /// From `reconcile_compact`: the matched items, compact, sorted by key; empty from `reconcile`.
    pub matched: Vec<MatchedItem>,
    /// (count, amount) per category, in `Category::ALL` order.
    pub summary: Vec<(Category, i64, i64)>,
    pub totals: Totals,
    /// The files that contributed a line, in import order.
    pub files: Vec<usize>,
    /// The payments the items concern, counterparts included, by index into the input.
    pub payments: Vec<usize>,
    /// The events the date counts: lines and paid payments, by index into the inputs. A close
    /// gives them their home date.
    pub counted_lines: Vec<usize>,
    pub counted_payments: Vec<usize>,
    /// For each item classified against a counterpart counted on another date: its key and the
    /// key the counterpart had as an item of its own date.
    pub counterparts: Vec<(String, String)>,
}

impl<'a> Outcome<'a> {
    /// The item of `items` with this key (the items are sorted by key, byte order).
    pub fn item(&self, key: &str) -> Option<&Item<'a>> {
        self.items.binary_search_by(|i| i.key.as_str().cmp(key)).ok().and_then(|k| self.items.get(k))
    }

    /// How many items the run has, compact or not.
    pub fn len(&self) -> usize {
        self.items.len() + self.matched.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The category of the item with this key, compact or not; `src` is what it was matched from.
    pub fn category_of(&self, key: &str, src: &Source<'_, 'a>) -> Option<Category> {
        if let Some(i) = self.item(key) {
            return Some(i.category);
        }
        let mut k = String::new();
        let found = self.matched.binary_search_by(|m| {
            k.clear();
            src.push_key(m, &mut k);
            k.as_str().cmp(key)
        });
        found.ok().map(|_| Category::Matched)
    }

    /// Every item, in key order (byte order), the compact ones built back from `src` (what the
    /// outcome was matched from) one at a time.
    pub fn all_items<'s>(&'s self, src: Source<'s, 'a>) -> impl Iterator<Item = Item<'a>> + Send + 's {
        let mut a = self.items.iter().peekable();
        let mut b = self.matched.iter().map(move |m| src.expand(m)).peekable();
        std::iter::from_fn(move || match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.key.as_bytes() <= y.key.as_bytes() => a.next().cloned(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next().cloned(),
            (None, _) => b.next(),
        })
    }
}

/// The closed dates of the gateway.
pub type Closed = BTreeSet<NaiveDate>;

/// The first date on or after `d` that is not closed.
pub fn first_open(d: NaiveDate, closed: &Closed) -> NaiveDate {
    let mut d = d;
    while closed.contains(&d) {
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    d
}

/// Marks the first occurrence of each (`gateway_txn_no`, status) among `lines`, by file then
/// line number: what the store decides at import over every file of a gateway.
pub fn first_occurrences(lines: &mut [LineIn<'_>]) {
    let mut first = vec![false; lines.len()];
    {
        let mut seen: rustc_hash::FxHashSet<(&str, LineStatus)> =
            rustc_hash::FxHashSet::with_capacity_and_hasher(lines.len(), Default::default());
        let mut mark = |i: usize| first[i] = seen.insert((lines[i].gateway_txn_no, lines[i].status));
        if in_file_order(lines) {
            (0..lines.len()).for_each(&mut mark);
        } else {
            let mut order: Vec<usize> = (0..lines.len()).collect();
            order.sort_unstable_by_key(|i| (lines[*i].file, lines[*i].line_no));
            order.into_iter().for_each(&mut mark);
        }
    }
    for (l, f) in lines.iter_mut().zip(first) {
        l.first = f;
    }
}

/// Whether `lines` are already by file then line number (as a store or a parser hands them).
fn in_file_order(lines: &[LineIn<'_>]) -> bool {
    lines.windows(2).all(|w| (w[0].file, w[0].line_no) <= (w[1].file, w[1].line_no))
}

/// Item keys: a line's gateway, number and status (a later occurrence adds its file and line);
/// a payment's id.
/// (Built by appending: a million keys a run, `format!` was a tenth of the matcher.)
pub fn line_key(gateway: &str, l: &LineIn<'_>, file_sha: &str) -> String {
    let mut k = String::with_capacity(gateway.len() + l.gateway_txn_no.len() + l.status.as_str().len() + 2);
    push_line_key(&mut k, gateway, l, file_sha);
    k
}

fn push_line_key(k: &mut String, gateway: &str, l: &LineIn<'_>, file_sha: &str) {
    for part in [gateway, ":", l.gateway_txn_no, ":", l.status.as_str()] {
        k.push_str(part);
    }
    if !l.first {
        let mut n = itoa::Buffer::new();
        for part in [":", file_sha.get(..12).unwrap_or(file_sha), ":", n.format(l.line_no)] {
            k.push_str(part);
        }
    }
}

pub fn payment_key(gateway: &str, payment_id: &str) -> String {
    let mut k = String::with_capacity(gateway.len() + payment_id.len() + 9);
    push_payment_key(&mut k, gateway, payment_id);
    k
}

fn push_payment_key(k: &mut String, gateway: &str, payment_id: &str) {
    for part in [gateway, ":payment:", payment_id] {
        k.push_str(part);
    }
}

/// The category of a success line or a payment that it settles (rules 5 to 8 of SPEC §7.2).
fn settled_category(p: &PaymentIn<'_>, line_amount: i64, settles: bool) -> Category {
    if p.duplicate || !settles {
        Category::DuplicatePayment
    } else if line_amount != p.amount {
        Category::AmountMismatch
    } else if p.expected != Some(p.amount) || p.amount != p.phi + p.le_phi {
        // Rule 7, and (our reading, README "A confirmation for another amount") a payment whose
        // amount differs from its own quote's citizen part: a settlement confirmation for another
        // amount, whose difference sits in suspense until a resolution moves it, even when the
        // case has since been corrected to the amount paid.
        Category::FeeMismatch
    } else {
        Category::Matched
    }
}

/// Reconciles `date` for one gateway. `file_shas[i]` is the SHA-256 of the file imported i-th.
/// The items borrow the inputs' text, not the inputs: these can be dropped once matched. Every
/// item is an `Item` (`items`); see `reconcile_compact` for the run's form.
pub fn reconcile<'a>(
    gateway: &str,
    date: NaiveDate,
    payments: &[PaymentIn<'a>],
    lines: &[LineIn<'a>],
    file_shas: &[String],
    closed: &Closed,
) -> Outcome<'a> {
    let src = Source { gateway, date, payments, lines, file_shas };
    let mut o = reconcile_compact(src, closed);
    let items = o.all_items(src).collect();
    o.items = items;
    o.matched = Vec::new();
    o
}

/// `reconcile` of `src`, its matched items kept compact in `matched` (the others in `items`):
/// the outcome then needs the same `src` to give them back.
pub fn reconcile_compact<'a>(src: Source<'_, 'a>, closed: &Closed) -> Outcome<'a> {
    let Source { gateway, date, payments, lines, file_shas } = src;
    // The matcher's tables hold positions as u32, at half the memory of usize.
    assert!(
        payments.len() < u32::MAX as usize && lines.len() < u32::MAX as usize,
        "reconcile takes fewer than 2^32 payments and lines"
    );
    let mut by_ref: HashMap<&str, u32> = HashMap::with_capacity_and_hasher(payments.len(), Default::default());
    for (i, p) in payments.iter().enumerate() {
        by_ref.insert(p.txn_ref, i as u32);
    }
    let line_payment: Vec<Option<u32>> = lines.iter().map(|l| by_ref.get(l.txn_ref).copied()).collect();
    drop(by_ref);
    // When each paid payment is counted.
    let counted = |home: Option<NaiveDate>, natural: NaiveDate| home.unwrap_or_else(|| first_open(natural, closed));
    let payment_day: Vec<Option<NaiveDate>> = payments
        .iter()
        .map(|p| match (p.status, p.business_date) {
            (PaymentStatus::Paid, Some(natural)) => Some(counted(p.home, natural)),
            _ => None,
        })
        .collect();
    // The earliest date a refund of each reference is counted on.
    let mut refunded: HashMap<&str, NaiveDate> = HashMap::default();
    for l in lines.iter().filter(|l| l.first && l.status == LineStatus::Refund) {
        let d = counted(l.home, l.business_date);
        refunded.entry(l.txn_ref).and_modify(|e| *e = (*e).min(d)).or_insert(d);
    }
    // Each paid payment's settling line: the first success line of its reference (and its
    // number, when it has one), unless that line's refund was counted before the payment.
    let mut order: Vec<usize> = (0..lines.len()).collect();
    if !in_file_order(lines) {
        order.sort_unstable_by_key(|i| (lines[*i].file, lines[*i].line_no));
    }
    let mut settling: Vec<Option<u32>> = vec![None; payments.len()];
    let mut settles = vec![false; lines.len()];
    for &i in &order {
        let l = &lines[i];
        if !l.first || l.status != LineStatus::Success {
            continue;
        }
        let Some(pi) = line_payment[i].map(|pi| pi as usize) else { continue };
        let (p, Some(pd)) = (&payments[pi], payment_day[pi]) else { continue };
        if settling[pi].is_some() || refunded.get(l.txn_ref).is_some_and(|r| *r < pd) {
            continue;
        }
        if p.gateway_txn_no.is_none_or(|n| n == l.gateway_txn_no) {
            settling[pi] = Some(i as u32);
            settles[i] = true;
        }
    }
    // When each line is counted.
    let line_day: Vec<NaiveDate> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let natural = match line_payment[i] {
                Some(pi) if settles[i] => payments[pi as usize].business_date.unwrap_or(l.business_date),
                _ => l.business_date,
            };
            counted(l.home, natural)
        })
        .collect();

    // Sized up front: a million items grown by doubling were copied twice over.
    let day_lines = line_day.iter().filter(|d| **d == date).count();
    let day_payments = payment_day.iter().filter(|d| **d == Some(date)).count();
    let mut items = Vec::new();
    let mut matched = Vec::with_capacity(day_lines + day_payments);
    // (count, amount) per category; an item counts its `Item::amount`.
    let mut sums = [(0i64, 0i64); 9];
    let mut totals = Totals::default();
    let mut files = vec![false; file_shas.len()];
    let mut used_payments = vec![false; payments.len()];
    let mut counted_lines = Vec::with_capacity(day_lines);
    let mut counterparts = Vec::new();
    for &i in &order {
        if line_day[i] != date {
            continue;
        }
        counted_lines.push(i);
        let l = &lines[i];
        let payment = line_payment[i].map(|pi| (pi as usize, &payments[pi as usize]));
        let category = if !l.first {
            Category::DuplicateSettlementLine
        } else if l.status == LineStatus::Refund {
            Category::Refund
        } else {
            match payment {
                None => Category::MissingInRecords,
                Some((pi, _)) if payment_day[pi].is_none() => Category::UnconfirmedInRecords,
                Some((_, p)) => settled_category(p, l.amount, settles[i]),
            }
        };
        if l.first {
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
        let counterpart_date = payment.and_then(|(pi, _)| payment_day[pi]).filter(|d| *d != date);
        let sha = src.sha(l);
        if let (Some(_), Some((_, p))) = (counterpart_date, payment) {
            counterparts.push((line_key(gateway, l, sha), payment_key(gateway, p.payment_id)));
        }
        let s = &mut sums[category as usize];
        *s = (s.0 + 1, s.1 + l.amount);
        if let (Category::Matched, Some((pi, _))) = (category, payment) {
            // `reconcile` asserts that positions fit in u32.
            matched.push(MatchedItem { line: i as u32, payment: pi as u32, counterpart_date, of_payment: false });
            continue;
        }
        let key = line_key(gateway, l, sha);
        items.push(Item {
            key,
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
            counterpart_date,
            fee: Some(l.fee),
            settles_payment: settles[i],
        });
    }
    let mut counted_payments = Vec::with_capacity(day_payments);
    for (pi, p) in payments.iter().enumerate() {
        if payment_day[pi] != Some(date) {
            continue;
        }
        counted_payments.push(pi);
        used_payments[pi] = true;
        totals.recorded_paid += p.amount;
        if p.duplicate {
            totals.by_kind.duplicates += p.amount;
        } else {
            totals.by_kind.phi += p.phi;
            totals.by_kind.le_phi += p.le_phi;
            totals.by_kind.unallocated += p.amount - p.phi - p.le_phi;
        }
        // Its settling line counted today holds the item; otherwise the payment is one.
        let line = settling[pi].map(|li| (li as usize, &lines[li as usize]));
        if line.is_some_and(|(li, _)| line_day[li] == date) {
            continue;
        }
        let category = match line {
            Some((_, l)) => settled_category(p, l.amount, true),
            None if p.duplicate => Category::DuplicatePayment,
            None => Category::MissingInSettlement,
        };
        if let Some(f) = line.and_then(|(_, l)| files.get_mut(l.file)) {
            *f = true;
        }
        if let Some((_, l)) = line {
            let sha = src.sha(l);
            counterparts.push((payment_key(gateway, p.payment_id), line_key(gateway, l, sha)));
        }
        let s = &mut sums[category as usize];
        *s = (s.0 + 1, s.1 + p.amount);
        if let (Category::Matched, Some((li, _))) = (category, line) {
            let counterpart_date = Some(line_day[li]);
            matched.push(MatchedItem { line: li as u32, payment: pi as u32, counterpart_date, of_payment: true });
            continue;
        }
        let key = payment_key(gateway, p.payment_id);
        items.push(Item {
            key,
            category,
            business_date: p.business_date.unwrap_or(date),
            case_code: Some(p.case_code),
            payment_id: Some(p.payment_id),
            txn_ref: Some(p.txn_ref),
            gateway_txn_no: p.gateway_txn_no,
            line_status: None,
            recorded_amount: Some(p.amount),
            settled_amount: line.map(|(_, l)| l.amount),
            expected_amount: p.expected,
            counterpart_date: line.map(|(li, _)| line_day[li]),
            fee: None,
            settles_payment: false,
        });
    }
    totals.settled_net = totals.settled_gross - totals.gateway_fees - totals.refunds;
    sort_by_key(&mut items, gateway.len() + 1);
    sort_by(&mut matched, gateway.len() + 1, |m, k| src.push_key(m, k));
    let summary = Category::ALL.iter().map(|c| (*c, sums[*c as usize].0, sums[*c as usize].1)).collect();
    Outcome {
        items,
        matched,
        summary,
        totals,
        files: files.iter().enumerate().filter(|(_, u)| **u).map(|(i, _)| i).collect(),
        payments: used_payments.iter().enumerate().filter(|(_, u)| **u).map(|(i, _)| i).collect(),
        counted_lines,
        counted_payments,
        counterparts,
    }
}

/// Sorts items by key. Every key starts with `"{gateway}:"` (`skip` bytes).
fn sort_by_key(items: &mut [Item<'_>], skip: usize) {
    sort_by(items, skip, |i, k| k.push_str(&i.key));
}

/// Sorts by the keys `key` appends. Comparing the sixteen bytes after `skip` as one integer, with
/// the full keys (built again) only on a tie, keeps the sort in cache (string comparisons would
/// chase a pointer per key), and the elements then move once.
fn sort_by<T>(items: &mut [T], skip: usize, key: impl Fn(&T, &mut String)) {
    let prefix = |key: &str| {
        let rest = key.as_bytes().get(skip..).unwrap_or_default();
        let mut b = [0u8; 16];
        let n = rest.len().min(16);
        b[..n].copy_from_slice(&rest[..n]);
        // Zero padding orders a shorter prefix first, as string comparison does; equal
        // prefixes fall back to the keys.
        b
    };
    let mut k = String::new();
    // `reconcile` asserts that positions fit in u32.
    let mut order: Vec<([u8; 16], u32)> = items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            k.clear();
            key(it, &mut k);
            (prefix(&k), i as u32)
        })
        .collect();
    let (mut x, mut y) = (String::new(), String::new());
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| {
            x.clear();
            y.clear();
            key(&items[a.1 as usize], &mut x);
            key(&items[b.1 as usize], &mut y);
            x.cmp(&y)
        })
    });
    // Position k receives the element at order[k]: follow each cycle of the permutation, swapping.
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
