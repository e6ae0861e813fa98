//! A gateway message as it arrived, and what handling it came to.
//!
//! Every message a gateway sends us (a callback) or answers us (a status query) is kept raw as
//! evidence before anything believes it; `CallbackResult` is the category of the SPEC §6.4 reply
//! table that handling it came to. Which bytes a gateway expects for a category is the gateway
//! adapter's business, not this module's.

use super::tags::tag_enum;

/// A request or answer as it was received, before anything is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// The headers worth keeping as evidence (content type, user agent, forwarded-for).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

tag_enum!(
    /// Where a recorded message came from.
    Source, "callback source", {
        /// A gateway called us.
        Callback => "callback",
        /// We asked the gateway about a pending payment; this is its answer.
        StatusQuery => "status_query",
        /// A settlement line, on a finance officer's approved `confirm_from_settlement`.
        Settlement => "settlement",
    }
);

tag_enum!(
    /// Which configured secret verified a signature.
    KeyUsed, "key", {
        Current => "current",
        /// The previous secret, during a rotation.
        Previous => "previous",
        /// Not a signature: a settlement line approved by two finance users.
        Settlement => "settlement",
    }
);

tag_enum!(
    /// What handling a gateway message came to: the rows of the SPEC §6.4 reply table.
    CallbackResult, "callback result", {
        /// The outcome was applied (or, for a still-pending report, recorded).
        Applied => "applied",
        /// The same outcome was applied before, or nothing later may change the payment.
        AlreadyConfirmed => "already_confirmed",
        /// No payment has this reference.
        OrderNotFound => "order_not_found",
        /// The amount differs from the payment's.
        InvalidAmount => "invalid_amount",
        /// The signature did not verify: nothing changed.
        BadSignature => "bad_signature",
        /// It could not be recorded; the gateway should retry.
        Failure => "failure",
    }
);
