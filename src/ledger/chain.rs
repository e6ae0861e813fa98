//! Appending to the two hash chains, the ledger and the audit log, inside a caller's write
//! transaction: one routine, `extend`, links rows of either chain.
//!
//! `extend` locks the chain's head (so appends are serialised across every instance), gives each
//! new row its `seq`, `prev_hash` and `hash = SHA-256(prev ‖ canonical bytes)` and moves the head;
//! `append_postings` and `append_audit` build the rows of their chain and insert them, each with
//! a few multi-row statements whatever the number of rows. The money and the audit trail of an
//! action are committed with the action, or not at all.

use chrono::{DateTime, Utc};

use crate::domain::chain::{audit_canonical, link};
use crate::domain::ledger::{Posting, clean};
use crate::domain::{Timestamp, new_id};
use crate::store::ledger::{Chain, PostingRow};
use crate::store::{AuditEvent, AuditRow, LedgerEntry, StoreError, WriteTx};

/// Where a new row sits in its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// A posting that does not balance: a bug in the code that built it. Nothing is written.
    #[error("posting {0} does not balance")]
    Unbalanced(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Links `count` new rows onto `chain`, the k-th row's canonical bytes given by
/// `canonical(k, seq)`, and moves the chain's head past them.
pub async fn extend(
    tx: &mut WriteTx,
    chain: Chain,
    count: usize,
    mut canonical: impl FnMut(usize, i64) -> Vec<u8>,
) -> Result<Vec<Link>, StoreError> {
    if count == 0 {
        return Ok(vec![]);
    }
    let (mut seq, mut prev) = tx.lock_chain_head(chain).await?;
    let mut links = Vec::with_capacity(count);
    for k in 0..count {
        seq += 1;
        let hash = link(&prev, &canonical(k, seq))
            .ok_or_else(|| StoreError::Corrupt(format!("the {chain:?} chain's head is not a hash")))?;
        links.push(Link { seq, prev_hash: std::mem::replace(&mut prev, hash.clone()), hash });
    }
    tx.set_chain_head(chain, seq, &prev).await?;
    Ok(links)
}

/// Appends postings to the ledger, each once per idempotency key; returns each posting's id (the
/// earlier one for a key already written).
pub async fn append_postings(
    tx: &mut WriteTx,
    postings: &[Posting],
    at: DateTime<Utc>,
) -> Result<Vec<String>, AppendError> {
    if postings.is_empty() {
        return Ok(vec![]);
    }
    if let Some(p) = postings.iter().find(|p| !p.is_balanced()) {
        return Err(AppendError::Unbalanced(p.idem_key.clone()));
    }
    let keys: Vec<&str> = postings.iter().map(|p| p.idem_key.as_str()).collect();
    let mut known = tx.postings_by_idem(&keys).await?;
    // The postings to write now, with their ids (a key twice in one call is written once).
    let mut ids = Vec::with_capacity(postings.len());
    let mut fresh: Vec<(&Posting, String)> = Vec::new();
    for p in postings {
        match known.get(&p.idem_key) {
            Some(id) => ids.push(id.clone()),
            None => {
                let id = new_id("pst");
                known.insert(p.idem_key.clone(), id.clone());
                ids.push(id.clone());
                fresh.push((p, id));
            }
        }
    }
    // One row per line, in posting then line order, with its cleaned text; a line's budget tag
    // (revenue and remitted lines) ends its entry's refs.
    let mut rows: Vec<LedgerEntry> = Vec::new();
    for (p, id) in &fresh {
        let refs = clean(&p.refs);
        for (i, line) in p.lines.iter().enumerate() {
            let refs = match &line.tag {
                Some(tag) => clean(&tag.append_to(&refs)),
                None => refs.clone(),
            };
            rows.push(LedgerEntry {
                seq: 0,
                posting_id: id.clone(),
                line_no: i64::try_from(i + 1).unwrap_or(i64::MAX),
                business_date: p.business_date,
                kind: p.kind.clone(),
                account: line.account.clone(),
                debit: line.debit,
                credit: line.credit,
                memo: clean(&line.memo),
                refs,
                prev_hash: String::new(),
                hash: String::new(),
            });
        }
    }
    let links = extend(tx, Chain::Ledger, rows.len(), |k, seq| {
        let mut e = rows[k].fields();
        e.seq = seq;
        e.canonical()
    })
    .await?;
    for (e, l) in rows.iter_mut().zip(links) {
        e.seq = l.seq;
        e.prev_hash = l.prev_hash;
        e.hash = l.hash;
    }
    let posting_rows: Vec<PostingRow> = fresh
        .iter()
        .map(|(p, id)| PostingRow {
            posting_id: id.clone(),
            idem_key: p.idem_key.clone(),
            kind: p.kind.clone(),
            business_date: p.business_date,
            corrects: p.corrects.clone(),
            line_count: i64::try_from(p.lines.len()).unwrap_or(i64::MAX),
            total: p.total(),
        })
        .collect();
    tx.insert_postings(&rows, &posting_rows, at).await?;
    Ok(ids)
}

/// Appends manual actions to the audit log.
pub async fn append_audit(tx: &mut WriteTx, events: &[AuditEvent], at: DateTime<Utc>) -> Result<(), StoreError> {
    let at = Timestamp::at(at).0;
    let details: Vec<String> = events.iter().map(|e| e.details.to_string()).collect();
    let links = extend(tx, Chain::Audit, events.len(), |k, seq| {
        let e = &events[k];
        audit_canonical(seq, &at, &e.actor, &e.action, &e.subject, &details[k])
    })
    .await?;
    let rows: Vec<AuditRow> = events
        .iter()
        .zip(details)
        .zip(links)
        .map(|((e, details), l)| AuditRow {
            seq: l.seq,
            at,
            actor: e.actor.clone(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            details,
            prev_hash: l.prev_hash,
            hash: l.hash,
        })
        .collect();
    tx.insert_audit_rows(&rows).await
}
