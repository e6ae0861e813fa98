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

/// Logs a callback's outcome. `case_code` is the case of the payment the message named when the
/// committer did not load it (a refused message).
pub fn callback(gateway: Gateway, callback_id: &str, a: &Applied, case_code: Option<&str>) {
    let outcome = outcome_word(a.result);
    tracing::info!(
        %gateway,
        case_code = a.case_code.as_deref().or(case_code),
        txn_ref = a.txn_ref.as_deref(),
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
}
