//! Payments: the gateways, the states of SPEC §6.1, the normalised gateway outcome of §6.2, and
//! the state machine that decides what an outcome does to a payment.
//!
//! `decide` is pure: given the payment as stored, whether its case already holds another settled
//! payment, whether this exact outcome was applied before, and the outcome, it returns what to
//! change. The store applies the decision inside the transaction that locked the rows, so the
//! rules live here once and are tested without a database. `after_query` likewise decides what
//! becomes of a payment still pending after a status query: asked again, expired, or left to a
//! person (`unresolved_pending`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeSet;

use super::Money;
use super::tags::tag_enum;

tag_enum!(
    /// A payment gateway.
    Gateway, "gateway", {
        Vnpay => "vnpay",
        Momo => "momo",
        Zalopay => "zalopay",
        /// The payment platform of the National Public Service Portal (Cổng DVCQG).
        Dvcqg => "dvcqg",
    }
);

tag_enum!(
    /// A payment's state (SPEC §6.1).
    PaymentStatus, "payment status", {
        /// Created, not yet known to be paid.
        Pending => "pending",
        /// The gateway reports success: the gateway owes us the money. Final.
        Paid => "paid",
        /// The gateway reports a final failure.
        Failed => "failed",
        /// Pending past the TTL with no success.
        Expired => "expired",
        /// Nothing is owed by anyone (no gateway involved).
        Waived => "waived",
        /// The citizen owes nothing; the province's budget owes `budget_due`.
        BudgetCovered => "budget_covered",
    }
);

tag_enum!(
    /// What needs a person's attention on a payment.
    Flag, "flag", {
        /// Success reported after the payment failed or expired: the money was taken.
        LateSuccess => "late_success",
        /// Success for a case that already held a settled payment: needs a refund.
        DuplicatePayment => "duplicate_payment",
        /// A callback carried an amount different from the payment's.
        CallbackAmountMismatch => "callback_amount_mismatch",
        /// A second success with another gateway transaction number: perhaps charged twice.
        ConflictingGatewayTxnNo => "conflicting_gateway_txn_no",
        /// Pending past its TTL and a bounded number of status queries, and nobody can settle it
        /// (the answers were errors, could not be verified or named another amount, or its
        /// gateway is not enabled): queries stop and a person decides.
        UnresolvedPending => "unresolved_pending",
    }
);

tag_enum!(
    /// What a payment's last status-query answer was, for deciding whether it may expire.
    AnswerKind, "answer kind", {
        /// It stated the payment's status (not success: a success makes the payment paid).
        Status => "status",
        /// An API error, an answer that could not be verified or read, or a success with another
        /// amount: it says nothing usable about the payment.
        Unusable => "unusable",
        /// It stated that the gateway itself does not know the payment's final state yet (DVCQG
        /// `TrangThaiGD` 3, a timeout at the bank): the payment may have been charged, so it does
        /// not expire; it is asked again until its gateway's pending window ends.
        Undecided => "undecided",
    }
);

tag_enum!(
    /// A normalised gateway outcome (SPEC §6.2).
    OutcomeKind, "outcome", {
        Success => "success",
        Pending => "pending",
        Failure => "failure",
    }
);

tag_enum!(
    /// Events the portal is told about (SPEC §6.6).
    EventType, "event type", {
        Succeeded => "payment.succeeded",
        Failed => "payment.failed",
        Expired => "payment.expired",
        Duplicate => "payment.duplicate",
        Waived => "payment.waived",
        BudgetCovered => "payment.budget_covered",
    }
);

tag_enum!(
    /// Where a portal notification stands (SPEC §6.6).
    DeliveryState, "delivery state", {
        /// Waiting for (another) delivery attempt.
        Pending => "pending",
        /// The portal answered 2xx.
        Delivered => "delivered",
        /// Dead letter: every attempt failed; finance may re-send it.
        Failed => "failed",
    }
);

impl Gateway {
    /// How long after its creation a payment of this gateway is still asked about while the
    /// gateway answers that it does not know the final state (`AnswerKind::Undecided`), instead
    /// of expiring at its TTL: DVCQG's `TrangThaiGD` 3 means a timeout at a bank or intermediary,
    /// and the money may have been taken (reference dvcqg-payment.md §6: TD checks from 30 min
    /// to 3 days [S]; re-polling "3" until T+3 days [I]). `None`: the gateway's pending answers
    /// are statuses like any other (VNPAY `07`, MoMo 7000, ZaloPay 3 expire with the TTL).
    pub fn pending_window(self) -> Option<chrono::TimeDelta> {
        match self {
            Gateway::Dvcqg => Some(chrono::TimeDelta::days(3)),
            Gateway::Vnpay | Gateway::Momo | Gateway::Zalopay => None,
        }
    }

    /// Whether the gateway issues its own receipt of a paid payment, which is fetched and kept
    /// with the payment's evidence: DVCQG's GET_BILL (reference dvcqg-payment.md).
    pub fn issues_receipts(self) -> bool {
        matches!(self, Gateway::Dvcqg)
    }
}

impl PaymentStatus {
    /// Settled statuses: a case holding one has nothing more to pay.
    pub fn is_settled(self) -> bool {
        matches!(self, PaymentStatus::Paid | PaymentStatus::Waived | PaymentStatus::BudgetCovered)
    }
}

/// What a gateway said about one transaction, after its signature was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GatewayEvent {
    pub gateway: Gateway,
    pub txn_ref: String,
    /// The gateway's own transaction number (`vnp_TransactionNo`, `transId`, `zp_trans_id`).
    pub gateway_txn_no: Option<String>,
    /// In đồng (VNPAY's ×100 already divided). `None` only for a report that is not a success
    /// and names no amount (a status answer about an unpaid order may carry `0`).
    pub amount: Option<Money>,
    pub outcome: OutcomeKind,
    /// The gateway's payment time, when it gave one.
    pub paid_at: Option<DateTime<Utc>>,
}

/// A payment as the state machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub status: PaymentStatus,
    pub amount: Money,
    /// What the case owed the citizen in the payment's quote. Equal to `amount` for a payment
    /// the portal created; a payment recorded from a settlement line carries the line's amount.
    pub citizen_due: Money,
    pub gateway_txn_no: Option<String>,
    pub flags: BTreeSet<Flag>,
}

/// What to do with an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The amount differs: flag it (when not yet flagged) and answer "invalid amount".
    InvalidAmount { flag: bool },
    /// Already applied, or nothing a later outcome may change: answer "already confirmed".
    AlreadyConfirmed,
    /// Recorded, nothing changes (a still-pending report).
    RecordOnly,
    /// Change the payment.
    Apply(Change),
}

/// A change to a payment and what follows from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub status: PaymentStatus,
    /// Set when the payment becomes paid.
    pub gateway_txn_no: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub add_flags: Vec<Flag>,
    /// Flags that no longer hold (`unresolved_pending` once the payment is settled).
    pub remove_flags: Vec<Flag>,
    /// The event for the portal, if any.
    pub notify: Option<EventType>,
    /// Whether the payment is now confirmed and its money must be posted.
    pub post_confirmation: bool,
}

/// Decides what `event` does to `p` (SPEC §6.1, §6.4 step 3).
///
/// - `case_settled_elsewhere`: the case holds another `paid`, `waived` or `budget_covered` payment.
/// - `seen_before`: this (txn_ref, gateway_txn_no, outcome) was applied already.
/// - `created_at`: the payment's creation, the fallback `paid_at` when the gateway gave none.
///
/// A gateway transaction number is `None` when the message gave none (or `0`): a payment
/// confirmed without one takes the number of a later success, without a conflict.
pub fn decide(
    p: &PaymentState,
    event: &GatewayEvent,
    case_settled_elsewhere: bool,
    seen_before: bool,
    created_at: DateTime<Utc>,
) -> Decision {
    match event.amount {
        Some(a) if a != p.amount => {
            return Decision::InvalidAmount { flag: !p.flags.contains(&Flag::CallbackAmountMismatch) };
        }
        None if event.outcome == OutcomeKind::Success => return Decision::InvalidAmount { flag: false },
        _ => {}
    }
    if seen_before {
        return Decision::AlreadyConfirmed;
    }
    let unresolved: Vec<Flag> = p.flags.iter().copied().filter(|f| *f == Flag::UnresolvedPending).collect();
    match (p.status, event.outcome) {
        (_, OutcomeKind::Pending) => Decision::RecordOnly,
        (PaymentStatus::Pending, OutcomeKind::Failure) => Decision::Apply(Change {
            status: PaymentStatus::Failed,
            gateway_txn_no: None,
            paid_at: None,
            add_flags: vec![],
            remove_flags: unresolved,
            notify: Some(EventType::Failed),
            post_confirmation: false,
        }),
        // A failure after paid, failed or expired changes nothing.
        (_, OutcomeKind::Failure) => Decision::AlreadyConfirmed,
        (PaymentStatus::Paid, OutcomeKind::Success) => match (&p.gateway_txn_no, &event.gateway_txn_no) {
            // Confirmed without a number (a status answer): this success names it.
            (None, Some(no)) => Decision::Apply(Change {
                status: PaymentStatus::Paid,
                gateway_txn_no: Some(no.clone()),
                paid_at: None,
                add_flags: vec![],
                remove_flags: vec![],
                notify: None,
                post_confirmation: false,
            }),
            (_, None) => Decision::AlreadyConfirmed,
            (Some(ours), Some(theirs)) if ours == theirs || p.flags.contains(&Flag::ConflictingGatewayTxnNo) => {
                Decision::AlreadyConfirmed
            }
            (Some(_), Some(_)) => Decision::Apply(Change {
                status: PaymentStatus::Paid,
                gateway_txn_no: None,
                paid_at: None,
                add_flags: vec![Flag::ConflictingGatewayTxnNo],
                remove_flags: vec![],
                notify: None,
                post_confirmation: false,
            }),
        },
        (PaymentStatus::Pending | PaymentStatus::Failed | PaymentStatus::Expired, OutcomeKind::Success) => {
            let mut add_flags = vec![];
            if p.status != PaymentStatus::Pending {
                add_flags.push(Flag::LateSuccess);
            }
            if case_settled_elsewhere {
                add_flags.push(Flag::DuplicatePayment);
            }
            if p.amount != p.citizen_due {
                // Money was taken, but not what the case owes: a person must look (SPEC §6.6).
                add_flags.push(Flag::CallbackAmountMismatch);
            }
            let notify = if case_settled_elsewhere { EventType::Duplicate } else { EventType::Succeeded };
            Decision::Apply(Change {
                status: PaymentStatus::Paid,
                gateway_txn_no: event.gateway_txn_no.clone(),
                paid_at: Some(event.paid_at.unwrap_or(created_at)),
                add_flags,
                remove_flags: unresolved,
                notify: Some(notify),
                post_confirmation: true,
            })
        }
        // Waived and budget-covered payments have no gateway transaction.
        (PaymentStatus::Waived | PaymentStatus::BudgetCovered, OutcomeKind::Success) => Decision::AlreadyConfirmed,
    }
}

/// How many status queries a payment gets in all before, past its TTL, an answer that settles
/// nothing makes it `unresolved_pending` (SPEC §6.2; README states it).
pub const QUERY_LIMIT: i64 = 5;

/// What becomes of a payment still pending after a status-query round (SPEC §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingVerdict {
    /// Ask again later.
    Keep,
    /// Past its TTL, and its gateway stated no success (or never answered): expired.
    Expire,
    /// Past its TTL and the query limit, and nobody can settle it: flagged, queries stop.
    Unresolved,
}

/// Decides a pending payment's fate after a query round.
///
/// - `past_ttl`: the payment's `expires_at` has passed.
/// - `queries`: the status queries made for it so far, this one included.
/// - `last_answer`: what the last answer that came said (`None`: no answer ever came).
/// - `askable`: its gateway is enabled here, so it could be asked at all.
/// - `window_open`: the payment is still inside its gateway's `pending_window`.
///
/// A payment expires only when no answer came or its last answer stated a status other than
/// success; one whose answers settle nothing, or whose gateway cannot be asked, is never expired.
/// One whose gateway said it does not know yet (`Undecided`) is asked again until its window
/// ends, then left to a person.
pub fn after_query(
    past_ttl: bool,
    queries: i64,
    last_answer: Option<AnswerKind>,
    askable: bool,
    window_open: bool,
) -> PendingVerdict {
    if !past_ttl {
        return PendingVerdict::Keep;
    }
    match (askable, last_answer) {
        (true, Some(AnswerKind::Undecided)) if window_open => PendingVerdict::Keep,
        (true, Some(AnswerKind::Undecided)) => PendingVerdict::Unresolved,
        (true, None | Some(AnswerKind::Status)) => PendingVerdict::Expire,
        (false, _) | (true, Some(AnswerKind::Unusable)) => {
            if queries >= QUERY_LIMIT {
                PendingVerdict::Unresolved
            } else {
                PendingVerdict::Keep
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: PaymentStatus, txn: Option<&str>) -> PaymentState {
        PaymentState {
            status,
            amount: Money::new(115_000).unwrap(),
            citizen_due: Money::new(115_000).unwrap(),
            gateway_txn_no: txn.map(str::to_owned),
            flags: BTreeSet::new(),
        }
    }

    fn event(outcome: OutcomeKind, txn: &str, amount: i64) -> GatewayEvent {
        GatewayEvent {
            gateway: Gateway::Vnpay,
            txn_ref: "R1".into(),
            gateway_txn_no: Some(txn.into()),
            amount: Some(Money::new(amount).unwrap()),
            outcome,
            paid_at: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-07-15T02:00:00Z").unwrap().with_timezone(&Utc)
    }

    use OutcomeKind::{Failure, Pending as StillPending, Success};
    use PaymentStatus::*;

    #[test]
    fn success_pays_a_pending_payment_with_the_creation_time_when_the_gateway_gives_none() {
        let d = decide(&state(Pending, None), &event(Success, "T1", 115_000), false, false, now());
        let Decision::Apply(c) = d else { panic!("{d:?}") };
        assert_eq!((c.status, c.gateway_txn_no.as_deref(), c.paid_at), (Paid, Some("T1"), Some(now())));
        assert_eq!((c.notify, c.post_confirmation, c.add_flags.len()), (Some(EventType::Succeeded), true, 0));
    }

    #[test]
    fn late_success_after_failure_or_expiry_is_paid_and_flagged() {
        for s in [Failed, Expired] {
            let Decision::Apply(c) = decide(&state(s, None), &event(Success, "T1", 115_000), false, false, now())
            else {
                panic!()
            };
            assert_eq!((c.status, c.add_flags), (Paid, vec![Flag::LateSuccess]));
        }
    }

    #[test]
    fn a_second_success_for_a_settled_case_is_a_duplicate() {
        let Decision::Apply(c) = decide(&state(Pending, None), &event(Success, "T2", 115_000), true, false, now())
        else {
            panic!()
        };
        assert_eq!((c.status, c.add_flags, c.notify), (Paid, vec![Flag::DuplicatePayment], Some(EventType::Duplicate)));
    }

    #[test]
    fn nothing_undoes_paid() {
        assert_eq!(
            decide(&state(Paid, Some("T1")), &event(Failure, "T1", 115_000), false, false, now()),
            Decision::AlreadyConfirmed
        );
        assert_eq!(
            decide(&state(Paid, Some("T1")), &event(Success, "T1", 115_000), false, false, now()),
            Decision::AlreadyConfirmed
        );
        assert_eq!(
            decide(&state(Failed, None), &event(Failure, "0", 115_000), false, false, now()),
            Decision::AlreadyConfirmed
        );
        assert_eq!(
            decide(&state(Expired, None), &event(Failure, "0", 115_000), false, false, now()),
            Decision::AlreadyConfirmed
        );
    }

    #[test]
    fn a_conflicting_transaction_number_is_flagged_once() {
        let Decision::Apply(c) = decide(&state(Paid, Some("T1")), &event(Success, "T9", 115_000), false, false, now())
        else {
            panic!()
        };
        assert_eq!((c.status, c.add_flags, c.post_confirmation), (Paid, vec![Flag::ConflictingGatewayTxnNo], false));
        let mut flagged = state(Paid, Some("T1"));
        flagged.flags.insert(Flag::ConflictingGatewayTxnNo);
        assert_eq!(decide(&flagged, &event(Success, "T8", 115_000), false, false, now()), Decision::AlreadyConfirmed);
    }

    #[test]
    fn a_wrong_amount_is_refused_and_flagged_once() {
        assert_eq!(
            decide(&state(Pending, None), &event(Success, "T1", 1), false, false, now()),
            Decision::InvalidAmount { flag: true }
        );
        let mut flagged = state(Pending, None);
        flagged.flags.insert(Flag::CallbackAmountMismatch);
        assert_eq!(
            decide(&flagged, &event(Success, "T1", 1), false, false, now()),
            Decision::InvalidAmount { flag: false }
        );
    }

    #[test]
    fn a_repeat_is_already_confirmed_and_pending_reports_change_nothing() {
        assert_eq!(
            decide(&state(Pending, None), &event(Success, "T1", 115_000), false, true, now()),
            Decision::AlreadyConfirmed
        );
        assert_eq!(
            decide(&state(Pending, None), &event(StillPending, "T1", 115_000), false, false, now()),
            Decision::RecordOnly
        );
        let d = decide(&state(Pending, None), &event(Failure, "0", 115_000), false, false, now());
        assert!(matches!(d, Decision::Apply(Change { status: Failed, notify: Some(EventType::Failed), .. })), "{d:?}");
    }

    #[test]
    fn a_payment_confirmed_without_a_number_takes_the_next_successs_number() {
        let d = decide(&state(Paid, None), &event(Success, "T7", 115_000), false, false, now());
        let Decision::Apply(c) = d else { panic!("{d:?}") };
        assert_eq!((c.status, c.gateway_txn_no.as_deref(), c.add_flags.len()), (Paid, Some("T7"), 0));
        assert_eq!((c.notify, c.post_confirmation), (None, false));
        let mut none = event(Success, "x", 115_000);
        none.gateway_txn_no = None;
        assert_eq!(decide(&state(Paid, Some("T7")), &none, false, false, now()), Decision::AlreadyConfirmed);
    }

    #[test]
    fn money_confirmed_for_less_than_the_case_owes_is_paid_and_flagged() {
        let mut p = state(Pending, None);
        p.amount = Money::new(50_000).unwrap();
        p.citizen_due = Money::new(500_000).unwrap();
        let Decision::Apply(c) = decide(&p, &event(Success, "T1", 50_000), false, false, now()) else { panic!() };
        assert_eq!((c.status, c.add_flags), (Paid, vec![Flag::CallbackAmountMismatch]));
    }

    #[test]
    fn a_report_without_an_amount_is_not_a_mismatch_unless_it_is_a_success() {
        let mut e = event(StillPending, "0", 1);
        e.amount = None;
        assert_eq!(decide(&state(Pending, None), &e, false, false, now()), Decision::RecordOnly);
        e.outcome = Success;
        assert_eq!(decide(&state(Pending, None), &e, false, false, now()), Decision::InvalidAmount { flag: false });
    }

    #[test]
    fn settling_an_unresolved_payment_lifts_the_flag() {
        let mut p = state(Pending, None);
        p.flags.insert(Flag::UnresolvedPending);
        let Decision::Apply(c) = decide(&p, &event(Success, "T1", 115_000), false, false, now()) else { panic!() };
        assert_eq!((c.add_flags, c.remove_flags), (vec![], vec![Flag::UnresolvedPending]));
    }

    #[test]
    fn only_a_stated_status_or_silence_expires_a_payment() {
        use AnswerKind::{Status, Unusable};
        use PendingVerdict::{Expire, Keep, Unresolved};
        assert_eq!(after_query(false, 99, Some(Unusable), true, false), Keep);
        assert_eq!(after_query(true, 1, None, true, false), Expire);
        assert_eq!(after_query(true, 1, Some(Status), true, false), Expire);
        assert_eq!(after_query(true, QUERY_LIMIT - 1, Some(Unusable), true, false), Keep);
        assert_eq!(after_query(true, QUERY_LIMIT, Some(Unusable), true, false), Unresolved);
        // A gateway that is not enabled cannot be asked: never expired, unresolved at the limit.
        assert_eq!(after_query(true, 1, None, false, false), Keep);
        assert_eq!(after_query(true, QUERY_LIMIT, Some(Status), false, false), Unresolved);
    }

    #[test]
    fn an_undecided_gateway_is_asked_until_its_window_ends_then_left_to_a_person() {
        use AnswerKind::Undecided;
        use PendingVerdict::{Keep, Unresolved};
        // Past the TTL, many queries: still asked while the window is open.
        assert_eq!(after_query(true, 500, Some(Undecided), true, true), Keep);
        assert_eq!(after_query(true, 1, Some(Undecided), true, true), Keep);
        // The window over: a person decides; it is never expired (the money may be taken).
        assert_eq!(after_query(true, 2, Some(Undecided), true, false), Unresolved);
        assert_eq!(Gateway::Dvcqg.pending_window(), Some(chrono::TimeDelta::days(3)));
        assert_eq!(Gateway::Vnpay.pending_window(), None);
    }
}
