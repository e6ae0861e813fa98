//! `apply`, the state machine over one store transaction: what a batch of the committer's jobs
//! does to payments, the ledger, receipts and the portal's events.
//!
//! A status answer (or its absence) also decides, with the payment's TTL and its query count,
//! whether a payment still pending expires or is left for a person (`unresolved_pending`,
//! `domain::payment::after_query`), in the answer's own transaction. `apply` loads the batch's
//! payments, flags and applied outcomes with a few statements, runs `domain::payment::decide` for
//! each job in order (a later job sees what an earlier one changed), asks `ledger` for the
//! postings, `receipts` for the receipts of the payments it confirms and `notify` for the portal
//! events, and writes the evidence rows, payment changes, flags, outcomes, events, postings and
//! receipts with one multi-row statement each.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use super::claim::Claim;
use super::committer::{Applied, CommitError, Job};
use crate::domain::callback::CallbackResult;
use crate::domain::ledger::{Posting, payment_confirmed};
use crate::domain::payment::{
    AnswerKind, Decision, EventType, Flag, Gateway, OutcomeKind, PaymentState, PaymentStatus, PendingVerdict,
    after_query, decide,
};
use crate::domain::{BusinessDate, Money};
use crate::fees::stored::{ReadQuote, read_quote};
use crate::ledger::chain::append_postings;
use crate::receipts::{Issuer, number_for_payments};
use crate::store::payments::AppliedEvent;
use crate::store::{CallbackRow, OutboxEvent, Payment, PaymentUpdate, Store, StoreError, WriteTx};

/// The batch's payments and everything written for them, as jobs are applied in order.
#[derive(Default)]
struct Batch {
    payments: Vec<Payment>,
    by_ref: HashMap<String, usize>,
    /// (payment, gateway_txn_no, outcome) applied before or in this batch.
    applied: HashSet<(String, String, OutcomeKind)>,
    /// Per case, its settled payments.
    settled: HashMap<String, BTreeSet<String>>,
    /// Per case, the last portal event's sequence number.
    seqs: HashMap<String, i64>,
    /// The closed (gateway, date)s from the batch's earliest date on.
    closed: BTreeSet<(Gateway, chrono::NaiveDate)>,
    changed: BTreeSet<usize>,
    confirmed: BTreeSet<usize>,
    callbacks: Vec<CallbackRow>,
    flags: Vec<(String, Flag)>,
    unflags: Vec<(String, Flag)>,
    answers: Vec<(String, AnswerKind)>,
    outcomes: Vec<AppliedEvent>,
    events: Vec<OutboxEvent>,
    postings: Vec<Posting>,
    /// The catalogue, for the budget tags of confirmed revenue (sub-item, remittance period).
    fees: Option<std::sync::Arc<crate::fees::FeeEngine>>,
    /// Per payment, its stored quote, parsed once.
    quotes: HashMap<usize, ReadQuote>,
}

impl Batch {
    /// Payment `i`'s stored quote, parsed the first time it is needed in the batch.
    fn quote(&mut self, i: usize) -> Result<&ReadQuote, CommitError> {
        Ok(match self.quotes.entry(i) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let p = &self.payments[i];
                let q = read_quote(&p.quote)
                    .map_err(|e| CommitError::Corrupt { payment_id: p.payment_id.clone(), why: e.to_string() })?;
                v.insert(q)
            }
        })
    }

    /// What the case owes the citizen in payment `i`'s stored quote.
    fn citizen_due(&mut self, i: usize) -> Result<Money, CommitError> {
        let (phi, le_phi) = self.quote(i)?.citizen_split();
        Money::new(phi + le_phi)
            .map_err(|e| CommitError::Corrupt { payment_id: self.payments[i].payment_id.clone(), why: e.to_string() })
    }

    async fn load(tx: &mut WriteTx, jobs: &[Claim<'_>]) -> Result<Self, StoreError> {
        // A close decides what a date counts while it holds its gateway's events: a payment
        // becomes paid either before that close (and it counts it) or after it.
        let mut gateways: Vec<Gateway> = jobs.iter().map(|c| c.gateway).collect();
        gateways.sort_unstable();
        gateways.dedup();
        for g in &gateways {
            tx.lock_gateway_events(*g, false).await?;
        }
        let mut refs: Vec<&str> = jobs.iter().filter_map(Claim::txn_ref).collect();
        refs.sort_unstable();
        refs.dedup();
        let payments = tx.payments_by_refs(&refs).await?;
        let ids: Vec<&str> = payments.iter().map(|p| p.payment_id.as_str()).collect();
        let applied = tx.applied_events(&ids).await?.into_iter().collect();
        let mut cases: Vec<&str> = payments.iter().map(|p| p.case_code.as_str()).collect();
        cases.sort_unstable();
        cases.dedup();
        let mut settled: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (case, payment) in tx.settled_payments(&cases).await? {
            settled.entry(case).or_default().insert(payment);
        }
        let seqs = tx.last_case_seqs(&cases).await?;
        // The closed dates a confirmation's posting may fall after (see `posting_date`).
        let earliest = payments
            .iter()
            .map(|p| BusinessDate::of(p.created_at).naive())
            .chain(
                jobs.iter()
                    .filter_map(|c| c.event.as_deref().and_then(|e| e.paid_at))
                    .map(|t| BusinessDate::of(t).naive()),
            )
            .min();
        let closed = match earliest {
            Some(from) => tx.closed_dates(&gateways, from).await?.into_iter().collect(),
            None => BTreeSet::new(),
        };
        let by_ref = payments.iter().enumerate().filter_map(|(i, p)| p.txn_ref.clone().map(|r| (r, i))).collect();
        Ok(Self { payments, by_ref, applied, settled, seqs, closed, ..Default::default() })
    }

    /// The date a payment confirmed now is counted on, and so its posting's business date: its
    /// natural date, or the first open date after it when that date is closed (SPEC §7.2).
    fn posting_date(&self, gateway: Gateway, natural: chrono::NaiveDate) -> chrono::NaiveDate {
        let mut d = natural;
        while self.closed.contains(&(gateway, d)) {
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
        d
    }

    /// The payment with this reference at this gateway.
    fn find(&self, txn_ref: &str, gateway: Gateway) -> Option<usize> {
        self.by_ref.get(txn_ref).copied().filter(|i| self.payments[*i].gateway == gateway)
    }

    /// Applies one job's claim, then, for a status answer (or its absence), what follows for a
    /// payment still pending; returns what it came to and why, for the evidence row.
    fn apply(&mut self, c: &Claim<'_>, at: DateTime<Utc>) -> Result<(Applied, Option<String>), CommitError> {
        let (applied, detail, answer) = self.apply_claim(c, at)?;
        let Some(asked) = c.asked else { return Ok((applied, detail)) };
        let Some(i) = self.find(&asked.txn_ref, c.gateway) else { return Ok((applied, detail)) };
        if self.payments[i].status != PaymentStatus::Pending {
            return Ok((applied, detail));
        }
        let pid = self.payments[i].payment_id.clone();
        if let Some(kind) = answer {
            self.answers.push((pid.clone(), kind));
        }
        let verdict =
            after_query(asked.past_ttl, asked.queries, answer.or(asked.last_answer), asked.askable, asked.window_open);
        let detail = match verdict {
            PendingVerdict::Keep => detail,
            PendingVerdict::Expire => {
                self.payments[i].status = PaymentStatus::Expired;
                self.changed.insert(i);
                self.notify(i, EventType::Expired, at)?;
                Some(join(detail, "past its TTL with no success stated: expired"))
            }
            PendingVerdict::Unresolved => {
                self.flag(i, Flag::UnresolvedPending);
                Some(join(
                    detail,
                    "past its TTL and the query limit (or its gateway's pending window), and nothing settles it: unresolved_pending",
                ))
            }
        };
        Ok((Applied { payment_id: Some(pid), ..applied }, detail))
    }

    /// Applies what a claim states. The third value is what it says about a payment still being
    /// asked about: a status, or nothing usable.
    fn apply_claim(
        &mut self,
        c: &Claim<'_>,
        at: DateTime<Utc>,
    ) -> Result<(Applied, Option<String>, Option<AnswerKind>), CommitError> {
        let done = |result, payment_id: Option<&str>| Applied {
            result,
            payment_id: payment_id.map(str::to_owned),
            txn_ref: None,
            case_code: None,
            status: None,
            detail: None,
        };
        let unusable = c.answered.then_some(AnswerKind::Unusable);
        if let Some((result, why)) = &c.refusal {
            return Ok((done(*result, None), Some(why.clone()), unusable));
        }
        let Some(event) = c.event.as_deref() else {
            return Ok((done(CallbackResult::BadSignature, None), Some("no outcome".into()), unusable));
        };
        let Some(i) = self.find(&event.txn_ref, c.gateway) else {
            let why = Some("no payment has this reference".into());
            return Ok((done(CallbackResult::OrderNotFound, None), why, unusable));
        };
        // Read from the stored quote only when a success needs it.
        let citizen_due =
            if event.outcome == OutcomeKind::Success { self.citizen_due(i)? } else { self.payments[i].amount };
        let p = &self.payments[i];
        let pid = p.payment_id.clone();
        let case = p.case_code.as_str().to_owned();
        let state = PaymentState {
            status: p.status,
            amount: p.amount,
            citizen_due,
            gateway_txn_no: p.gateway_txn_no.clone(),
            flags: p.flags.iter().copied().collect(),
        };
        let no = event.gateway_txn_no.clone().unwrap_or_default();
        let seen = self.applied.contains(&(pid.clone(), no.clone(), event.outcome));
        let settled_elsewhere = self.settled.get(&case).is_some_and(|s| s.iter().any(|other| *other != pid));
        let stated = Some(AnswerKind::Status);
        let (result, detail, answer) = match decide(&state, event, settled_elsewhere, seen, p.created_at) {
            Decision::InvalidAmount { flag } => {
                if flag {
                    self.flag(i, Flag::CallbackAmountMismatch);
                }
                let why = format!("the payment's amount is {}", state.amount.dong());
                (CallbackResult::InvalidAmount, Some(why), unusable)
            }
            Decision::AlreadyConfirmed => (CallbackResult::AlreadyConfirmed, None, stated),
            Decision::RecordOnly => {
                // A gateway with a pending window says "pending" when it does not know itself.
                let kind =
                    if c.gateway.pending_window().is_some() { AnswerKind::Undecided } else { AnswerKind::Status };
                (CallbackResult::Applied, Some("still pending: recorded".to_owned()), Some(kind))
            }
            Decision::Apply(change) => {
                let p = &mut self.payments[i];
                p.status = change.status;
                if change.gateway_txn_no.is_some() {
                    p.gateway_txn_no = change.gateway_txn_no.clone();
                }
                if let Some(t) = change.paid_at {
                    p.paid_at = Some(crate::domain::Timestamp::at(t).0);
                }
                self.changed.insert(i);
                for f in &change.add_flags {
                    self.flag(i, *f);
                }
                for f in &change.remove_flags {
                    self.unflag(i, *f);
                }
                self.applied.insert((pid.clone(), no.clone(), event.outcome));
                self.outcomes.push(AppliedEvent {
                    payment_id: pid.clone(),
                    gateway_txn_no: no.clone(),
                    outcome: event.outcome,
                    callback_id: c.callback_id().to_owned(),
                });
                if change.status.is_settled() {
                    self.settled.entry(case.clone()).or_default().insert(pid.clone());
                }
                if let Some(kind) = change.notify {
                    self.notify(i, kind, at)?;
                }
                if change.post_confirmation {
                    self.confirmed.insert(i);
                    let fees = self.fees.clone();
                    let quote = self.quote(i)?;
                    let items = match &fees {
                        Some(f) => quote.tagged(&f.catalogue),
                        None => Ok(quote.items.clone()),
                    }
                    .map_err(|e| CommitError::Corrupt { payment_id: pid.clone(), why: e.to_string() })?;
                    let p = &self.payments[i];
                    let refs = format!(
                        "payment={};txn_ref={};gateway_txn_no={};{}={};raw_sha256={}",
                        p.payment_id,
                        event.txn_ref,
                        no,
                        c.source,
                        c.callback_id(),
                        hex::encode(Sha256::digest(&c.body))
                    );
                    self.postings.push(payment_confirmed(
                        p.gateway,
                        &p.payment_id,
                        p.amount,
                        &items,
                        change.add_flags.contains(&Flag::DuplicatePayment),
                        self.posting_date(p.gateway, BusinessDate::of(p.paid_at.unwrap_or(p.created_at)).naive()),
                        refs,
                    ));
                }
                (CallbackResult::Applied, None, stated)
            }
        };
        Ok((done(result, Some(&pid)), detail, answer))
    }

    /// Writes the portal event of payment `i`'s change (its state after the change).
    fn notify(&mut self, i: usize, kind: EventType, at: DateTime<Utc>) -> Result<(), CommitError> {
        let due = self.citizen_due(i)?;
        let p = &self.payments[i];
        let seq = self.seqs.entry(p.case_code.as_str().to_owned()).or_insert(0);
        *seq += 1;
        self.events.push(crate::notify::event(kind, p, due, *seq, at));
        Ok(())
    }

    fn flag(&mut self, i: usize, f: Flag) {
        let p = &mut self.payments[i];
        if !p.flags.contains(&f) {
            p.flags.push(f);
            p.flags.sort_unstable();
            self.flags.push((p.payment_id.clone(), f));
        }
    }

    fn unflag(&mut self, i: usize, f: Flag) {
        let p = &mut self.payments[i];
        if p.flags.contains(&f) {
            p.flags.retain(|x| *x != f);
            self.flags.retain(|(id, x)| !(*id == p.payment_id && *x == f));
            self.unflags.push((p.payment_id.clone(), f));
        }
    }

    async fn write(mut self, tx: &mut WriteTx, issuer: &Issuer, at: DateTime<Utc>) -> Result<(), CommitError> {
        append_postings(tx, &self.postings, at).await?;
        // The receipts of the payments confirmed now, numbered after the postings (the lock order
        // of `receipts::issue`); their events carry them. Their signatures are made on other
        // threads while the rest of the batch is written, and the receipts are written last.
        let confirmed: Vec<(&Payment, Option<&ReadQuote>)> =
            self.confirmed.iter().map(|&i| (&self.payments[i], self.quotes.get(&i))).collect();
        let receipts = number_for_payments(tx, issuer, &confirmed, at).await?;
        receipts.issued.attach(&mut self.events);
        tx.insert_callbacks(&self.callbacks).await?;
        let updates: Vec<PaymentUpdate> = self
            .changed
            .iter()
            .map(|&i| {
                let p = &self.payments[i];
                PaymentUpdate {
                    payment_id: p.payment_id.clone(),
                    status: p.status,
                    gateway_txn_no: p.gateway_txn_no.clone(),
                    paid_at: p.paid_at,
                    confirmed: self.confirmed.contains(&i),
                }
            })
            .collect();
        tx.update_payments(&updates, at).await?;
        let paid: Vec<(&str, Gateway)> = (self.changed.iter().map(|&i| &self.payments[i]))
            .filter(|p| p.status == PaymentStatus::Paid && p.gateway.issues_receipts())
            .map(|p| (p.payment_id.as_str(), p.gateway))
            .collect();
        tx.expect_gateway_receipts(&paid, at).await?;
        tx.remove_flags(&self.unflags).await?;
        tx.insert_flags(&self.flags, at).await?;
        tx.record_answers(&self.answers).await?;
        tx.insert_applied_events(&self.outcomes, at).await?;
        tx.insert_outbox(&self.events).await?;
        receipts.insert(tx).await?;
        Ok(())
    }
}

fn join(detail: Option<String>, more: &str) -> String {
    match detail {
        Some(d) => format!("{d}; {more}"),
        None => more.to_owned(),
    }
}

/// Records and applies a batch of jobs in one transaction; one result per job, in order.
pub async fn apply(
    store: &Store,
    issuer: &Issuer,
    jobs: &[Job],
    at: DateTime<Utc>,
) -> Result<Vec<Applied>, CommitError> {
    let mut tx = store.write().await?;
    let results = apply_in(&mut tx, jobs, issuer, at).await?;
    tx.commit().await?;
    Ok(results)
}

/// Records and applies jobs inside the caller's transaction (an approval that confirms a payment
/// commits it with the exception's change, or not at all), issuing the receipts of the payments
/// it confirms.
pub async fn apply_in(
    tx: &mut WriteTx,
    jobs: &[Job],
    issuer: &Issuer,
    at: DateTime<Utc>,
) -> Result<Vec<Applied>, CommitError> {
    let claims: Vec<Claim<'_>> = jobs.iter().map(Claim::of).collect();
    let mut batch = Batch::load(tx, &claims).await?;
    batch.fees = Some(issuer.fees().clone());
    let mut results = Vec::with_capacity(jobs.len());
    for c in &claims {
        let (mut applied, detail) = batch.apply(c, at)?;
        let row = c.kept.then(|| c.evidence());
        applied.txn_ref = row.as_ref().and_then(|r| r.txn_ref.clone()).or_else(|| c.txn_ref().map(str::to_owned));
        if let Some(p) = applied.payment_id.as_ref().and_then(|id| batch.payments.iter().find(|p| p.payment_id == *id))
        {
            applied.case_code = Some(p.case_code.to_string());
            applied.status = Some(p.status);
        }
        applied.detail.clone_from(&detail);
        if let Some(mut row) = row {
            row.result = applied.result;
            row.payment_id = applied.payment_id.clone().or(row.payment_id);
            row.detail = detail;
            batch.callbacks.push(row);
        }
        results.push(applied);
    }
    batch.write(tx, issuer, at).await?;
    Ok(results)
}
