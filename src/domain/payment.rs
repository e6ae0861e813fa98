//! Payments: the gateways, the states of SPEC §6.1, the normalised gateway outcome of §6.2, and
//! the state machine that decides what an outcome does to a payment.
//!
//! `decide` is pure: given the payment as stored, whether its case already holds another settled
//! payment, whether this exact outcome was applied before, and the outcome, it returns what to
//! change. The store applies the decision inside the transaction that locked the rows, so the
//! rules live here once and are tested without a database.

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

impl PaymentStatus {
    /// Settled statuses: a case holding one has nothing more to pay.
    pub fn is_settled(self) -> bool {
        matches!(self, PaymentStatus::Paid | PaymentStatus::Waived | PaymentStatus::BudgetCovered)
    }
}

/// What a gateway said about one transaction, after its signature was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayEvent {
    pub gateway: Gateway,
    pub txn_ref: String,
    /// The gateway's own transaction number (`vnp_TransactionNo`, `transId`, `zp_trans_id`).
    pub gateway_txn_no: Option<String>,
    /// In đồng (VNPAY's ×100 already divided).
    pub amount: Money,
    pub outcome: OutcomeKind,
    /// The gateway's payment time, when it gave one.
    pub paid_at: Option<DateTime<Utc>>,
}

/// A payment as the state machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub status: PaymentStatus,
    pub amount: Money,
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
pub fn decide(
    p: &PaymentState,
    event: &GatewayEvent,
    case_settled_elsewhere: bool,
    seen_before: bool,
    created_at: DateTime<Utc>,
) -> Decision {
    if event.amount != p.amount {
        return Decision::InvalidAmount { flag: !p.flags.contains(&Flag::CallbackAmountMismatch) };
    }
    if seen_before {
        return Decision::AlreadyConfirmed;
    }
    match (p.status, event.outcome) {
        (_, OutcomeKind::Pending) => Decision::RecordOnly,
        (PaymentStatus::Pending, OutcomeKind::Failure) => Decision::Apply(Change {
            status: PaymentStatus::Failed,
            gateway_txn_no: None,
            paid_at: None,
            add_flags: vec![],
            notify: Some(EventType::Failed),
            post_confirmation: false,
        }),
        // A failure after paid, failed or expired changes nothing.
        (_, OutcomeKind::Failure) => Decision::AlreadyConfirmed,
        (PaymentStatus::Paid, OutcomeKind::Success) => {
            if p.gateway_txn_no == event.gateway_txn_no || p.flags.contains(&Flag::ConflictingGatewayTxnNo) {
                Decision::AlreadyConfirmed
            } else {
                Decision::Apply(Change {
                    status: PaymentStatus::Paid,
                    gateway_txn_no: None,
                    paid_at: None,
                    add_flags: vec![Flag::ConflictingGatewayTxnNo],
                    notify: None,
                    post_confirmation: false,
                })
            }
        }
        (PaymentStatus::Pending | PaymentStatus::Failed | PaymentStatus::Expired, OutcomeKind::Success) => {
            let mut add_flags = vec![];
            if p.status != PaymentStatus::Pending {
                add_flags.push(Flag::LateSuccess);
            }
            if case_settled_elsewhere {
                add_flags.push(Flag::DuplicatePayment);
            }
            let notify = if case_settled_elsewhere { EventType::Duplicate } else { EventType::Succeeded };
            Decision::Apply(Change {
                status: PaymentStatus::Paid,
                gateway_txn_no: event.gateway_txn_no.clone(),
                paid_at: Some(event.paid_at.unwrap_or(created_at)),
                add_flags,
                notify: Some(notify),
                post_confirmation: true,
            })
        }
        // Waived and budget-covered payments have no gateway transaction.
        (PaymentStatus::Waived | PaymentStatus::BudgetCovered, OutcomeKind::Success) => Decision::AlreadyConfirmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: PaymentStatus, txn: Option<&str>) -> PaymentState {
        PaymentState {
            status,
            amount: Money::new(115_000).unwrap(),
            gateway_txn_no: txn.map(str::to_owned),
            flags: BTreeSet::new(),
        }
    }

    fn event(outcome: OutcomeKind, txn: &str, amount: i64) -> GatewayEvent {
        GatewayEvent {
            gateway: Gateway::Vnpay,
            txn_ref: "R1".into(),
            gateway_txn_no: Some(txn.into()),
            amount: Money::new(amount).unwrap(),
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
}
