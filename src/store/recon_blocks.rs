//! Matched items of a run stored as blocks (migration 0014; SPEC §7.2 items): the packing, and
//! the reads that find items in blocks.
//!
//! A million-payment day has about a million matched items; storing each as a row of
//! `reconciliation_items` (two indexes) was a quarter of the day's time. Every reader of items
//! other than a run's item list and one item by key needs only exception items, or items whose
//! key is an exception's id (the exception list's item columns), so those stay rows and the
//! other matched items go into blocks: up to `block_items()` items per row, in key order (byte
//! order, the matcher's), first and last key indexed. `run_items` merges both forms, so runs
//! stored before the blocks (every item a row) read the same.
//!
//! An item packs its fields in a fixed order, each `<bytes>:<text>` (a netstring without its
//! comma) or `~` for none, so no value can be mistaken for a separator whatever it holds.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;

use super::{Result, Store, StoreError, WriteTx, on_pool, on_tx};
use crate::domain::recon::{Category, Item, ItemRecord};

/// Blocks per statement. About 200 bytes an item: a statement of 20 blocks binds about 4 MB,
/// packed just before it is written (the run's blocks are never all packed at once).
pub(super) const BLOCKS_PER_STATEMENT: usize = 20;

/// Matched items per block; tests make it small to span many blocks with a small day.
static BLOCK_ITEMS: AtomicUsize = AtomicUsize::new(1000);

/// How many matched items a block holds (1,000 unless a test changed it).
pub fn block_items() -> usize {
    BLOCK_ITEMS.load(Ordering::Relaxed).max(1)
}

/// Sets the items per block of the runs stored from now on (tests: several blocks from a small
/// day). Readers do not depend on it: blocks of any size read the same.
pub fn set_block_items(n: usize) {
    BLOCK_ITEMS.store(n.max(1), Ordering::Relaxed);
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("item block: {what}"))
}

fn put(out: &mut String, v: Option<&str>) {
    match v {
        Some(v) => {
            let _ = write!(out, "{}:", v.len());
            out.push_str(v);
        }
        None => out.push('~'),
    }
}

fn put_num(out: &mut String, v: Option<i64>) {
    match v {
        Some(v) => put(out, Some(&v.to_string())),
        None => out.push('~'),
    }
}

fn put_date(out: &mut String, d: Option<NaiveDate>) {
    match d {
        Some(d) => {
            let _ = write!(out, "10:{}", d.format("%Y-%m-%d"));
        }
        None => out.push('~'),
    }
}

/// Appends a matched item to a block's text.
fn pack(out: &mut String, i: &Item<'_>) {
    put(out, Some(&i.key));
    put_date(out, Some(i.business_date));
    put(out, i.case_code);
    put(out, i.payment_id);
    put(out, i.txn_ref);
    put(out, i.gateway_txn_no);
    put(out, i.line_status.map(|s| s.as_str()));
    put_num(out, i.recorded_amount);
    put_num(out, i.settled_amount);
    put_num(out, i.expected_amount);
    put_date(out, i.counterpart_date);
    put_num(out, i.fee);
    put(out, Some(if i.settles_payment { "1" } else { "0" }));
}

/// Reads the fields `pack` wrote, in order.
struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Fields<'a> {
    fn opt(&mut self, what: &str) -> Result<Option<&'a str>> {
        if let Some(rest) = self.rest.strip_prefix('~') {
            self.rest = rest;
            return Ok(None);
        }
        let (len, rest) = self.rest.split_once(':').ok_or_else(|| corrupt(what))?;
        let len: usize = len.parse().map_err(|_| corrupt(what))?;
        let value = rest.get(..len).ok_or_else(|| corrupt(what))?;
        self.rest = &rest[len..];
        Ok(Some(value))
    }

    fn text(&mut self, what: &str) -> Result<&'a str> {
        self.opt(what)?.ok_or_else(|| corrupt(what))
    }

    fn string(&mut self, what: &str) -> Result<Option<String>> {
        Ok(self.opt(what)?.map(str::to_owned))
    }

    fn num(&mut self, what: &str) -> Result<Option<i64>> {
        self.opt(what)?.map(|v| v.parse().map_err(|_| corrupt(what))).transpose()
    }

    fn date(&mut self, what: &str) -> Result<Option<NaiveDate>> {
        self.opt(what)?.map(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| corrupt(what))).transpose()
    }

    fn item(&mut self) -> Result<ItemRecord> {
        Ok(ItemRecord {
            item_key: self.text("item_key")?.to_owned(),
            category: Category::Matched,
            business_date: self.date("business_date")?.ok_or_else(|| corrupt("business_date"))?,
            case_code: self.string("case_code")?,
            payment_id: self.string("payment_id")?,
            txn_ref: self.string("txn_ref")?,
            gateway_txn_no: self.string("gateway_txn_no")?,
            line_status: self.opt("line_status")?.map(|s| s.parse().map_err(|_| corrupt("line_status"))).transpose()?,
            recorded_amount: self.num("recorded_amount")?,
            settled_amount: self.num("settled_amount")?,
            expected_amount: self.num("expected_amount")?,
            counterpart_date: self.date("counterpart_date")?,
            fee: self.num("fee")?,
            settles_payment: self.text("settles_payment")? == "1",
        })
    }
}

/// The items of a block's text, in key order.
fn unpack(text: &str) -> Result<Vec<ItemRecord>> {
    let mut f = Fields { rest: text };
    let mut out = Vec::new();
    while !f.rest.is_empty() {
        out.push(f.item()?);
    }
    Ok(out)
}

/// A run's `(run_seq)` by id, as a scalar subquery over `$1`.
const RUN_SEQ: &str = "(SELECT run_seq FROM reconciliation_runs WHERE run_id = $1)";

impl Store {
    /// The matched items in blocks of a run with keys after `after` (byte order), at most `limit`.
    pub(super) async fn block_items_after(&self, run_id: &str, after: &str, limit: usize) -> Result<Vec<ItemRecord>> {
        let mut out: Vec<ItemRecord> = Vec::new();
        let mut cursor = after.to_owned();
        // Blocks hold about `block_items()` items: enough blocks for the page, and more while short.
        let per_query = i64::try_from(limit / block_items() + 2).unwrap_or(i64::MAX);
        while out.len() < limit {
            let sql = format!(
                "SELECT last_key, items FROM reconciliation_item_blocks WHERE run_seq = {RUN_SEQ} AND last_key > $2
                 ORDER BY last_key LIMIT $3"
            );
            let blocks: Vec<(String, String)> =
                on_pool!(self, |p| sqlx::query_as(&sql).bind(run_id).bind(&cursor).bind(per_query).fetch_all(p).await)?;
            let full = i64::try_from(blocks.len()).unwrap_or(0) == per_query;
            for (last, text) in &blocks {
                out.extend(unpack(text)?.into_iter().filter(|i| i.item_key.as_str() > after));
                cursor.clone_from(last);
            }
            if !full {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// The matched item of a run with this key, if a block holds it.
    pub(super) async fn block_item(&self, run_id: &str, key: &str) -> Result<Option<ItemRecord>> {
        let sql = format!(
            "SELECT items FROM reconciliation_item_blocks WHERE run_seq = {RUN_SEQ} AND last_key >= $2 AND first_key <= $2
             ORDER BY last_key LIMIT 1"
        );
        let block: Option<(String,)> =
            on_pool!(self, |p| sqlx::query_as(&sql).bind(run_id).bind(key).fetch_optional(p).await)?;
        let Some((text,)) = block else { return Ok(None) };
        Ok(unpack(&text)?.into_iter().find(|i| i.item_key == key))
    }
}

impl WriteTx {
    /// Stores matched items, in key order, as blocks of run `seq`.
    pub(super) async fn insert_item_blocks(&mut self, seq: i64, matched: &[Item<'_>]) -> Result<()> {
        let per_block = block_items();
        for statement in matched.chunks(per_block * BLOCKS_PER_STATEMENT) {
            let packed: Vec<(&str, &str, i64, String)> = statement
                .chunks(per_block)
                .filter_map(|chunk| {
                    let (first, last) = (chunk.first()?, chunk.last()?);
                    let mut text = String::with_capacity(chunk.len() * 200);
                    for i in chunk {
                        pack(&mut text, i);
                    }
                    Some((first.key.as_str(), last.key.as_str(), i64::try_from(chunk.len()).unwrap_or(i64::MAX), text))
                })
                .collect();
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO reconciliation_item_blocks (run_seq, first_key, last_key, item_count, items) ",
                );
                q.push_values(&packed, |mut b, (first, last, n, text)| {
                    b.push_bind(seq).push_bind(*first).push_bind(*last).push_bind(*n).push_bind(text.as_str());
                });
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }
}

/// Merges two lists in key order (byte order) into at most `limit` items.
pub(super) fn merge(rows: Vec<ItemRecord>, blocks: Vec<ItemRecord>, limit: usize) -> Vec<ItemRecord> {
    let mut out = Vec::with_capacity(limit.min(rows.len() + blocks.len()));
    let (mut a, mut b) = (rows.into_iter().peekable(), blocks.into_iter().peekable());
    while out.len() < limit {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.item_key.as_bytes() <= y.item_key.as_bytes() => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        };
        match next {
            Some(i) => out.push(i),
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::recon::LineStatus;

    fn item(key: &str, line: bool) -> Item<'static> {
        Item {
            key: key.to_owned(),
            category: Category::Matched,
            business_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            case_code: Some("HS-1:2~x"),
            payment_id: if line { None } else { Some("") },
            txn_ref: Some("ref with 3:colons~and tildes"),
            gateway_txn_no: line.then_some("9"),
            line_status: line.then_some(LineStatus::Refund),
            recorded_amount: Some(-5),
            settled_amount: line.then_some(120_000),
            expected_amount: None,
            counterpart_date: line.then(|| NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()),
            fee: Some(0),
            settles_payment: line,
        }
    }

    #[test]
    fn a_block_reads_back_every_field_none_and_empty_apart() {
        let items = [item("vnpay:a", true), item("vnpay:b~", false), item("vnpay:c:1:", true)];
        let mut text = String::new();
        for i in &items {
            pack(&mut text, i);
        }
        let back = unpack(&text).unwrap();
        assert_eq!(back, items.iter().map(ItemRecord::from).collect::<Vec<_>>());
        assert_eq!(back[1].payment_id.as_deref(), Some(""));
        assert_eq!(back[0].payment_id, None);
    }

    #[test]
    fn a_cut_block_is_corrupt_not_a_shorter_list() {
        let mut text = String::new();
        pack(&mut text, &item("vnpay:a", true));
        let cut = &text[..text.len() - 3];
        assert!(matches!(unpack(cut), Err(StoreError::Corrupt(m)) if m.contains("item block")));
    }

    #[test]
    fn merge_keeps_byte_order_and_the_limit() {
        let r = |k: &str| ItemRecord::from(&item(k, false));
        let rows = vec![r("a"), r("c"), r("e")];
        let blocks = vec![r("b"), r("d"), r("f"), r("g")];
        let keys = |v: Vec<ItemRecord>| v.into_iter().map(|i| i.item_key).collect::<Vec<_>>();
        assert_eq!(keys(merge(rows.clone(), blocks.clone(), 5)), ["a", "b", "c", "d", "e"]);
        assert_eq!(keys(merge(rows, blocks, 100)), ["a", "b", "c", "d", "e", "f", "g"]);
        assert_eq!(keys(merge(vec![], vec![r("x")], 1)), ["x"]);
    }
}
