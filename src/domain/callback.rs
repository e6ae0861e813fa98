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
    }
);

tag_enum!(
    /// How a message was authenticated before anything believed it (SPEC §6.5). Only a
    /// signature is `signature_valid`; an answer to our own request is as trustworthy as the
    /// channel it came over.
    AuthenticatedBy, "authentication", {
        /// The gateway's signature, verified with the current secret.
        SignatureCurrent => "signature_current",
        /// The gateway's signature, verified with the previous secret (a rotation).
        SignaturePrevious => "signature_previous",
        /// Unsigned, the answer to our request over TLS to the configured endpoint.
        TlsChannel => "tls_channel",
        /// A settlement line two finance users approved as proof of payment.
        SettlementApproval => "settlement_approval",
        /// Nothing authenticated it: a bad or missing signature, a body we could not read whole,
        /// a gateway not enabled here, or an unsigned answer over plain HTTP (the simulator).
        None => "none",
    }
);

impl AuthenticatedBy {
    /// Whether a gateway signature verified.
    pub fn is_signature(self) -> bool {
        matches!(self, AuthenticatedBy::SignatureCurrent | AuthenticatedBy::SignaturePrevious)
    }

    /// The secret that verified the signature, if a signature did.
    pub fn key_used(self) -> Option<KeyUsed> {
        match self {
            AuthenticatedBy::SignatureCurrent => Some(KeyUsed::Current),
            AuthenticatedBy::SignaturePrevious => Some(KeyUsed::Previous),
            _ => None,
        }
    }

    /// The label of a signature verified with `key`.
    pub fn signature(key: KeyUsed) -> Self {
        match key {
            KeyUsed::Current => AuthenticatedBy::SignatureCurrent,
            KeyUsed::Previous => AuthenticatedBy::SignaturePrevious,
        }
    }
}

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
        /// Verified, but it states no payment status (a status-query answer that is an API error,
        /// SPEC §6.2): kept as evidence, nothing changes, the question is asked again.
        NotAnOutcome => "not_an_outcome",
        /// It could not be recorded (or not taken as a message: a gateway not enabled here, a
        /// body over the limit); the gateway should retry.
        Failure => "failure",
    }
);
