//! What a committer job says, whichever kind it is, and the evidence row it leaves.
//!
//! A gateway message (callback or status answer) says what its verification found: how it was
//! authenticated, and the outcome it states or why it states none. A settlement proof says the
//! line's success, authenticated by the two finance users who approved it. A query that got no
//! answer says nothing and leaves no row. Every message is kept, whatever it came to (SPEC §6.4
//! step 1): the row is written in the batch's transaction, or alone when the batch fails.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use super::committer::{Asked, Job};
use crate::domain::callback::{AuthenticatedBy, CallbackResult, Source};
use crate::domain::payment::{Gateway, GatewayEvent, OutcomeKind};
use crate::gateway::Verification;
use crate::store::CallbackRow;

/// What a job says.
pub(super) struct Claim<'a> {
    callback_id: String,
    pub source: Source,
    pub gateway: Gateway,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: String,
    pub body: Cow<'a, [u8]>,
    body_length: Option<i64>,
    received_at: DateTime<Utc>,
    auth: AuthenticatedBy,
    /// The outcome, when the message was authenticated and states one.
    pub event: Option<Cow<'a, GatewayEvent>>,
    /// Why it is not an outcome, and the reply for that.
    pub refusal: Option<(CallbackResult, String)>,
    claimed_txn_ref: Option<&'a str>,
    /// For a status answer (or a query that got none): what the worker asked.
    pub asked: Option<&'a Asked>,
    /// Whether there is a message to keep (a query that got no answer has none).
    pub kept: bool,
    /// Whether an answer came (a kept message, or an HTTP error that was not kept).
    pub answered: bool,
}

impl<'a> Claim<'a> {
    pub fn of(job: &'a Job) -> Self {
        match job {
            Job::Message(m) => {
                let (auth, event, refusal) = match &m.verification {
                    Verification::BadSignature(why) => {
                        (AuthenticatedBy::None, None, Some((CallbackResult::BadSignature, why.clone())))
                    }
                    Verification::Unchecked(why) => {
                        (AuthenticatedBy::None, None, Some((CallbackResult::Failure, why.clone())))
                    }
                    Verification::Valid { auth, event: Err(u) } => (*auth, None, Some((u.result(), u.to_string()))),
                    Verification::Valid { auth, event: Ok(e) } => (*auth, Some(Cow::Borrowed(e)), None),
                };
                let headers = serde_json::Value::Object(
                    m.raw.headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect(),
                );
                Claim {
                    callback_id: m.callback_id.clone(),
                    source: m.source,
                    gateway: m.gateway,
                    method: &m.raw.method,
                    path: &m.raw.path,
                    query: &m.raw.query,
                    headers: headers.to_string(),
                    body: Cow::Borrowed(&m.raw.body),
                    body_length: m.body_length,
                    received_at: m.received_at,
                    auth,
                    event,
                    refusal,
                    claimed_txn_ref: m.claimed_txn_ref.as_deref(),
                    asked: m.asked.as_ref(),
                    kept: true,
                    answered: true,
                }
            }
            Job::Settlement(s) => Claim {
                callback_id: crate::domain::new_id("cb"),
                source: Source::Settlement,
                gateway: s.gateway,
                method: "",
                path: "",
                query: "",
                headers: "{}".to_owned(),
                body: Cow::Owned(s.evidence.to_string().into_bytes()),
                body_length: None,
                received_at: s.received_at,
                auth: AuthenticatedBy::SettlementApproval,
                event: Some(Cow::Owned(GatewayEvent {
                    gateway: s.gateway,
                    txn_ref: s.txn_ref.clone(),
                    gateway_txn_no: Some(s.gateway_txn_no.clone()),
                    amount: Some(s.amount),
                    outcome: OutcomeKind::Success,
                    paid_at: Some(s.paid_at),
                })),
                refusal: None,
                claimed_txn_ref: None,
                asked: None,
                kept: true,
                answered: true,
            },
            Job::Unanswered(u) => Claim {
                callback_id: String::new(),
                source: Source::StatusQuery,
                gateway: u.gateway,
                method: "",
                path: "",
                query: "",
                headers: String::new(),
                body: Cow::Borrowed(&[]),
                body_length: None,
                received_at: u.at,
                auth: AuthenticatedBy::None,
                event: None,
                refusal: Some((CallbackResult::NotAnOutcome, u.why.clone())),
                claimed_txn_ref: None,
                asked: Some(&u.asked),
                kept: false,
                answered: u.refused,
            },
        }
    }

    /// The callback id of the kept message (empty when nothing is kept).
    pub fn callback_id(&self) -> &str {
        &self.callback_id
    }

    /// The reference to find the payment by: the outcome's, or the one we asked about.
    pub fn txn_ref(&self) -> Option<&str> {
        self.event.as_deref().map(|e| e.txn_ref.as_str()).or(self.asked.map(|a| a.txn_ref.as_str()))
    }

    /// The evidence row, before handling (result, payment and detail filled in by the caller).
    pub fn evidence(&self) -> CallbackRow {
        let ev = self.event.as_deref();
        CallbackRow {
            callback_id: self.callback_id.clone(),
            source: self.source,
            gateway: self.gateway,
            method: self.method.to_owned(),
            path: self.path.to_owned(),
            query: self.query.to_owned(),
            headers: self.headers.clone(),
            body: self.body.to_vec(),
            sha256: hex::encode(Sha256::digest(&self.body)),
            body_length: self.body_length,
            received_at: self.received_at,
            authenticated_by: self.auth,
            txn_ref: ev
                .map(|e| e.txn_ref.clone())
                .or(self.claimed_txn_ref.map(str::to_owned))
                .or(self.asked.map(|a| a.txn_ref.clone())),
            gateway_txn_no: ev.and_then(|e| e.gateway_txn_no.clone()),
            amount: ev.and_then(|e| e.amount).map(|a| a.dong()),
            outcome: ev.map(|e| e.outcome),
            // A status answer is about the payment we asked about, whatever it says.
            payment_id: self.asked.map(|a| a.payment_id.clone()),
            result: CallbackResult::Failure,
            detail: None,
        }
    }
}
