//! The log line of each payment outcome (issue 20, "outcomes you can see"): a callback applied,
//! a duplicate, a refusal and why, and what a status query recovered, at `info` with the ids a
//! person searches by (gateway, case code, `txn_ref`, payment and callback ids). A line never
//! holds a secret or the signed payload: only ids, the result, the payment's status and the
//! reason kept on the evidence row.

use super::Applied;
use crate::domain::callback::CallbackResult;
use crate::domain::payment::{Gateway, PaymentStatus};

/// The word for what a message came to: `applied`, `duplicate`, `refused` (the gateway's message
/// was read and turned down: the reason says why) or `not_recorded` (asked to retry).
pub fn outcome_word(result: CallbackResult) -> &'static str {
    match result {
        CallbackResult::Applied => "applied",
        CallbackResult::AlreadyConfirmed => "duplicate",
        CallbackResult::Failure => "not_recorded",
        CallbackResult::OrderNotFound
        | CallbackResult::InvalidAmount
        | CallbackResult::BadSignature
        | CallbackResult::NotAnOutcome => "refused",
    }
}

/// Whether a message with this result was read from a verified signature: a refusal then names
/// a real reference, worth looking up. A bad signature, or a message not recorded, names only a
/// claim.
pub fn verified(result: CallbackResult) -> bool {
    !matches!(result, CallbackResult::BadSignature | CallbackResult::Failure)
}

/// Logs a callback's outcome. `verified_case` is the case of the payment a verified message named
/// when the committer did not load it (a refusal after the signature checked). The reference of a
/// message whose signature did not verify is logged as `claimed_txn_ref`, never as `txn_ref`.
pub fn callback(gateway: Gateway, callback_id: &str, a: &Applied, verified_case: Option<&str>) {
    let outcome = outcome_word(a.result);
    let (txn_ref, claimed_txn_ref) =
        if verified(a.result) { (a.txn_ref.as_deref(), None) } else { (None, a.txn_ref.as_deref()) };
    tracing::info!(
        %gateway,
        case_code = a.case_code.as_deref().or(verified_case),
        txn_ref,
        claimed_txn_ref,
        payment_id = a.payment_id.as_deref(),
        callback_id,
        outcome,
        result = a.result.as_str(),
        status = a.status.map(PaymentStatus::as_str),
        reason = a.detail.as_deref(),
        "callback {outcome}"
    );
}

/// Logs what a status query came to: at `info` when it settled the payment's fate (recovered a
/// lost outcome, or expired it) or refused the answer (a bad signature, another amount, another
/// payment); at `debug` when the payment stays pending (still processing, an API error, no answer).
pub fn status_query(gateway: Gateway, case_code: &str, a: &Applied) {
    let left_pending = a.status.is_some_and(|s| s != PaymentStatus::Pending);
    let outcome = match (a.result, a.status) {
        (_, Some(PaymentStatus::Expired)) => "expired",
        (CallbackResult::Applied, _) if left_pending => "recovered",
        // An API error, or no answer at all (already logged as such): asked again later.
        (CallbackResult::NotAnOutcome, _) => "not_an_outcome",
        (r, _) => outcome_word(r),
    };
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                %gateway,
                case_code,
                txn_ref = a.txn_ref.as_deref(),
                payment_id = a.payment_id.as_deref(),
                outcome,
                result = a.result.as_str(),
                status = a.status.map(PaymentStatus::as_str),
                reason = a.detail.as_deref(),
                "status query {outcome}"
            )
        };
    }
    if left_pending || outcome == "refused" {
        line!(info);
    } else {
        line!(debug);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_result_has_the_word_a_person_searches_for() {
        assert_eq!(outcome_word(CallbackResult::Applied), "applied");
        assert_eq!(outcome_word(CallbackResult::AlreadyConfirmed), "duplicate");
        assert_eq!(outcome_word(CallbackResult::BadSignature), "refused");
        assert_eq!(outcome_word(CallbackResult::InvalidAmount), "refused");
        assert_eq!(outcome_word(CallbackResult::OrderNotFound), "refused");
        assert_eq!(outcome_word(CallbackResult::Failure), "not_recorded");
    }

    #[test]
    fn only_a_verified_message_names_a_reference_worth_a_read() {
        assert!(!verified(CallbackResult::BadSignature));
        assert!(!verified(CallbackResult::Failure));
        assert!(verified(CallbackResult::InvalidAmount));
        assert!(verified(CallbackResult::OrderNotFound));
    }
}
