//! Payment gateways: one adapter per gateway behind one trait.
//!
//! Each module holds the gateway's pure message code (build a payment request, verify a callback
//! from its raw bytes, map it to a normalised `GatewayEvent`, produce the reply the gateway
//! expects, build and check status queries), with the thin reqwest calls beside it. Verifying is
//! a pure function of the raw request and the secrets: it tries the current secret, then the
//! previous one (rotation), comparing in constant time, and says how the message was
//! authenticated (a signature and its key, or, for the unsigned status answers of MoMo and
//! ZaloPay, the channel they came over).
//!
//! A verified message is an outcome only when it states the payment's status: an answer that is
//! an API error is `Unusable::ApiError`, typed here by each adapter from its gateway's code
//! tables (README lists them), so that nothing above matches words.

pub mod dvcqg;
mod form;
pub mod momo;
pub mod vnpay;
pub mod zalopay;

pub use form::{FormEncoding, ascii_order_info, form_decode, form_encode, parse_query};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::domain::payment::{Gateway, GatewayEvent};
use crate::domain::{Money, Secret, vn_offset};

pub use crate::domain::callback::{AuthenticatedBy, CallbackResult, KeyUsed, RawRequest};

/// Why an authenticated message is not an outcome to apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// The amount cannot be an amount of đồng (a ×100 value not divisible by 100), or a
    /// success names none.
    #[error("{0}")]
    Amount(String),
    /// It is not about one of our orders: another merchant's, not an order, no reference.
    #[error("{0}")]
    NotOurs(String),
    /// An answer that is an API error (or a code the gateway's tables do not list as a payment
    /// status), not the payment's status: it changes nothing and the question is asked again.
    #[error("an API error, not the payment's status: {code} {message}")]
    ApiError {
        /// The gateway's code as it wrote it (`99`, `2/-402`, `91`).
        code: String,
        message: String,
    },
}

impl Unusable {
    /// The reply category for such a message.
    pub fn result(&self) -> CallbackResult {
        match self {
            Unusable::Amount(_) => CallbackResult::InvalidAmount,
            Unusable::NotOurs(_) => CallbackResult::OrderNotFound,
            Unusable::ApiError { .. } => CallbackResult::NotAnOutcome,
        }
    }
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Authenticated by `auth` (a signature and its key, or the channel of our own request).
    /// `event` is the normalised outcome, or why the message cannot be one.
    Valid { auth: AuthenticatedBy, event: Result<GatewayEvent, Unusable> },
    /// Not signed by us, or not parseable enough to check: nothing may change.
    BadSignature(String),
    /// Not checked at all: its gateway is not enabled here, or its body was over the size limit
    /// and only its first bytes were kept. Kept as evidence; the gateway is asked to retry.
    Unchecked(String),
}

/// A gateway's transaction number as a message gives it: empty or `0` is none (VNPAY writes `0`
/// for a transaction it never numbered, MoMo and ZaloPay `0` for an unpaid order).
pub fn txn_no(raw: &str) -> Option<String> {
    let raw = raw.trim();
    (!raw.is_empty() && raw.bytes().any(|b| b != b'0')).then(|| raw.to_owned())
}

/// An HTTP answer in the gateway's own format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn json(status: u16, v: serde_json::Value) -> Self {
        Self { status, content_type: Some("application/json"), body: v.to_string().into_bytes() }
    }
}

/// An order to create at a gateway.
#[derive(Debug, Clone)]
pub struct Order {
    pub txn_ref: String,
    pub amount: Money,
    /// ASCII description (no diacritics): gateways require it.
    pub order_info: String,
    /// feerecon's return page for this gateway.
    pub return_url: String,
    /// feerecon's callback endpoint for this gateway.
    pub ipn_url: String,
    pub client_ip: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// What the payment is for: a gateway that issues the receipt itself (DVCQG's
    /// `ThongTinBienLai`) sends it; the others ignore it.
    pub case: OrderCase,
}

/// The case a payment is for, as the payment's quote and the catalogue name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderCase {
    pub case_code: String,
    pub procedure_code: String,
    pub procedure_name: String,
    /// The receiving unit's code (mã định danh).
    pub unit_code: String,
    pub applicant_name: String,
    /// The quote's items the citizen pays, in quote order.
    pub lines: Vec<OrderLine>,
}

/// One phí or lệ phí line of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub fee_id: String,
    /// `phi` or `le_phi`.
    pub kind: String,
    pub name: String,
    pub amount: Money,
}

/// A gateway's own receipt of a paid payment, as fetched: the request sent (evidence), and the
/// document's exact bytes and type; `url` when the gateway named where to download it.
#[derive(Debug, Clone)]
pub struct GatewayReceipt {
    pub request: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub url: Option<String>,
}

/// A transaction to ask about.
#[derive(Debug, Clone)]
pub struct QueryTarget {
    pub txn_ref: String,
    pub amount: Money,
    pub created_at: DateTime<Utc>,
    pub order_info: String,
}

/// A status-query answer: the raw exchange as evidence, and what it says (an outcome, or why it
/// is none: an API error, an answer about another order).
#[derive(Debug, Clone)]
pub struct QueryAnswer {
    pub raw: RawRequest,
    pub verification: Verification,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the gateway did not answer: {0}")]
    Unavailable(String),
    #[error("the gateway refused: {0}")]
    Refused(String),
}

/// One gateway.
#[async_trait]
pub trait GatewayAdapter: Send + Sync {
    fn gateway(&self) -> Gateway;
    /// Whether the gateway takes this amount.
    fn accepts(&self, amount: Money) -> bool;
    /// A fresh transaction reference within the gateway's rules, dated in GMT+7.
    fn new_txn_ref(&self, now: DateTime<Utc>) -> String;
    /// Creates the order; returns the URL the citizen pays at.
    async fn create(&self, order: &Order) -> Result<String, GatewayError>;
    /// Verifies a callback from its raw bytes (pure).
    fn verify_callback(&self, req: &RawRequest) -> Verification;
    /// The answer the gateway expects for a reply category (pure).
    fn reply(&self, r: CallbackResult) -> HttpReply;
    /// The answer to the callback whose body was `received`: a gateway whose reply echoes the
    /// callback's fields (DVCQG) reads them here; the others answer by category alone.
    fn reply_to(&self, r: CallbackResult, received: &[u8]) -> HttpReply {
        let _ = received;
        self.reply(r)
    }
    /// Asks the gateway about a transaction. `Err` when no answer came.
    async fn query(&self, target: &QueryTarget) -> Result<QueryAnswer, GatewayError>;
    /// Whether the gateway issues its own receipt for a paid payment (DVCQG's GET_BILL).
    fn issues_receipts(&self) -> bool {
        self.gateway().issues_receipts()
    }
    /// Fetches the gateway's own receipt of a paid payment.
    async fn fetch_receipt(&self, target: &QueryTarget) -> Result<GatewayReceipt, GatewayError> {
        let _ = target;
        Err(GatewayError::Refused(format!("{} issues no receipts", self.gateway())))
    }
}

/// The answer a gateway expects for a reply category, without its adapter: for messages that
/// reach a gateway route while that gateway is not enabled here, or cannot be read whole.
pub fn reply(gateway: Gateway, r: CallbackResult) -> HttpReply {
    match gateway {
        Gateway::Vnpay => vnpay::reply(r),
        Gateway::Momo => momo::reply(r),
        Gateway::Zalopay => zalopay::reply(r),
        Gateway::Dvcqg => dvcqg::reply(r, b""),
    }
}

/// Like `reply`, for the callback whose body was `received` (DVCQG echoes its fields).
pub fn reply_to(gateway: Gateway, r: CallbackResult, received: &[u8]) -> HttpReply {
    match gateway {
        Gateway::Dvcqg => dvcqg::reply(r, received),
        other => reply(other, r),
    }
}

/// The enabled gateways.
#[derive(Clone, Default)]
pub struct Gateways {
    adapters: Vec<Arc<dyn GatewayAdapter>>,
}

impl Gateways {
    /// Adapters for every gateway whose credentials are configured.
    pub fn from_config(config: &Config) -> Self {
        let http = http_client();
        let mut adapters: Vec<Arc<dyn GatewayAdapter>> = Vec::new();
        if let Some(c) = &config.vnpay {
            adapters.push(Arc::new(vnpay::Vnpay::new(c.clone(), http.clone())));
        }
        if let Some(c) = &config.momo {
            adapters.push(Arc::new(momo::Momo::new(c.clone(), http.clone())));
        }
        if let Some(c) = &config.zalopay {
            adapters.push(Arc::new(zalopay::Zalopay::new(c.clone(), http.clone())));
        }
        if let Some(c) = &config.dvcqg {
            adapters.push(Arc::new(dvcqg::Dvcqg::new(c.clone(), http)));
        }
        Self { adapters }
    }

    pub fn get(&self, g: Gateway) -> Option<&Arc<dyn GatewayAdapter>> {
        self.adapters.iter().find(|a| a.gateway() == g)
    }
}

/// The HTTP client gateway calls use: short connect timeout, MoMo's recommended 30 s overall.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a reqwest client with timeouts builds")
}

/// Posts JSON with bounded retries (3 attempts, 200 ms then 400 ms apart) on connection errors
/// and 5xx answers; returns the body of the first 2xx answer.
pub async fn post_json(client: &reqwest::Client, url: &str, body: &serde_json::Value) -> Result<Vec<u8>, GatewayError> {
    post_json_as(client, url, body, None).await
}

/// `post_json` with a bearer token, when one is configured (DVCQG through a provincial gateway).
pub async fn post_json_as(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    bearer: Option<&str>,
) -> Result<Vec<u8>, GatewayError> {
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << (attempt - 1))).await;
        }
        let mut req = client.post(url).json(body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(res) if res.status().is_success() => {
                return res.bytes().await.map(|b| b.to_vec()).map_err(|e| GatewayError::Unavailable(e.to_string()));
            }
            Ok(res) if res.status().is_server_error() => last = format!("HTTP {}", res.status()),
            Ok(res) => return Err(GatewayError::Refused(format!("HTTP {}", res.status()))),
            Err(e) => last = e.without_url().to_string(),
        }
    }
    Err(GatewayError::Unavailable(last))
}

/// How an unsigned answer to our request to `url` is authenticated: by TLS to the configured
/// endpoint, or by nothing over plain HTTP (the simulator, a test).
pub fn channel(url: &str) -> AuthenticatedBy {
    if url.starts_with("https://") { AuthenticatedBy::TlsChannel } else { AuthenticatedBy::None }
}

/// A status query: posts `body` to `url` and reads the answer with `read` (given how the channel
/// authenticates an unsigned answer); the exchange (the request as a header, the answer's exact
/// bytes) is kept as evidence whatever the answer says.
pub async fn exchange(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    read: impl FnOnce(&[u8], AuthenticatedBy) -> Verification,
) -> Result<QueryAnswer, GatewayError> {
    let answer = post_json(client, url, body).await?;
    let verification = read(&answer, channel(url));
    Ok(QueryAnswer { raw: exchanged(url, body, answer), verification })
}

/// A status query's exchange as evidence: the request as a header, the answer's exact bytes.
pub fn exchanged(url: &str, body: &serde_json::Value, answer: Vec<u8>) -> RawRequest {
    RawRequest {
        method: "POST".into(),
        path: url.to_owned(),
        query: String::new(),
        headers: vec![("x-feerecon-request".into(), body.to_string())],
        body: answer,
    }
}

/// The payment page URL from a create-order answer: `url_field` when `code_field` is `ok`, else
/// the gateway's refusal with its code and `message_field` (MoMo and ZaloPay answer alike).
pub fn order_url(
    answer: &[u8],
    code_field: &str,
    ok: i64,
    url_field: &str,
    message_field: &str,
) -> Result<String, GatewayError> {
    let v: serde_json::Value =
        serde_json::from_slice(answer).map_err(|e| GatewayError::Refused(format!("not JSON: {e}")))?;
    match (v.get(code_field).and_then(serde_json::Value::as_i64), v.get(url_field).and_then(|u| u.as_str())) {
        (Some(code), Some(url)) if code == ok => Ok(url.to_owned()),
        (code, _) => Err(GatewayError::Refused(format!(
            "{code_field} {} {}",
            code.map_or("?".into(), |c| c.to_string()),
            v.get(message_field).and_then(|m| m.as_str()).unwrap_or("")
        ))),
    }
}

/// The transaction reference a message claims to be about, read without trusting it: kept with
/// a refused callback so finance sees forged attempts beside the payment they name.
pub fn claimed_txn_ref(gateway: Gateway, raw: &RawRequest) -> Option<String> {
    match gateway {
        Gateway::Vnpay => {
            let q = if raw.method == "POST" && !raw.body.is_empty() {
                String::from_utf8_lossy(&raw.body).into_owned()
            } else {
                raw.query.clone()
            };
            // Pair by pair: a form cut at the size limit ends in a broken pair.
            q.split('&').find_map(|p| p.strip_prefix("vnp_TxnRef=")).and_then(form_decode)
        }
        Gateway::Momo => match serde_json::from_slice::<serde_json::Value>(&raw.body) {
            Ok(v) => v.get("orderId")?.as_str().map(str::to_owned),
            Err(_) => scan_string_field(&raw.body, "orderId"),
        },
        Gateway::Zalopay => {
            let parsed = serde_json::from_slice::<serde_json::Value>(&raw.body).ok().and_then(|v| {
                let data: serde_json::Value = serde_json::from_str(v.get("data")?.as_str()?).ok()?;
                data.get("app_trans_id")?.as_str().map(str::to_owned)
            });
            // `data` is a JSON string inside the body: its quotes arrive escaped.
            parsed.or_else(|| scan_string_field(&unescape_quotes(&raw.body), "app_trans_id"))
        }
        Gateway::Dvcqg => match serde_json::from_slice::<serde_json::Value>(&raw.body) {
            Ok(v) => v.get("MaThamChieu")?.as_str().map(str::to_owned),
            Err(_) => scan_string_field(&raw.body, "MaThamChieu"),
        },
    }
    .filter(|r| !r.is_empty() && r.len() <= 100 && !r.contains(char::is_control))
}

/// Finds `"key":"value"` in bytes that may not be whole JSON (a body cut at the size limit).
fn scan_string_field(body: &[u8], key: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let needle = format!("\"{key}\"");
    let after = &text[text.find(&needle)? + needle.len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(after[..after.find('"')?].to_owned())
}

/// The bytes with `\"` read as `"`: a JSON string nested in JSON, read without parsing it.
fn unescape_quotes(body: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(body).replace("\\\"", "\"").into_bytes()
}

// ---------------------------------------------------------------- shared pure helpers

pub fn hmac_sha256_hex(key: &Secret, msg: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).expect("HMAC accepts keys of any length");
    m.update(msg);
    hex::encode(m.finalize().into_bytes())
}

pub(crate) fn hmac_sha512_hex(key: &Secret, msg: &[u8]) -> String {
    let mut m = Hmac::<Sha512>::new_from_slice(key.expose().as_bytes()).expect("HMAC accepts keys of any length");
    m.update(msg);
    hex::encode(m.finalize().into_bytes())
}

/// Compares a received hex signature with the expected lower-case one, ignoring the case of the
/// received one, in constant time.
pub fn hex_matches(received: &str, expected: &str) -> bool {
    let received = received.to_ascii_lowercase();
    received.len() == expected.len() && bool::from(received.as_bytes().ct_eq(expected.as_bytes()))
}

/// Tries `sign` with the current key, then the previous one; says which verified.
pub(crate) fn verify_with(
    current: &Secret,
    previous: Option<&Secret>,
    received: &str,
    sign: impl Fn(&Secret) -> String,
) -> Option<AuthenticatedBy> {
    if hex_matches(received, &sign(current)) {
        return Some(AuthenticatedBy::SignatureCurrent);
    }
    match previous {
        Some(p) if hex_matches(received, &sign(p)) => Some(AuthenticatedBy::SignaturePrevious),
        _ => None,
    }
}

/// `yyyyMMddHHmmss` in GMT+7, as VNPAY writes times.
pub fn vn_compact(t: DateTime<Utc>) -> String {
    t.with_timezone(&vn_offset()).format("%Y%m%d%H%M%S").to_string()
}

/// Parses `yyyyMMddHHmmss` in GMT+7.
pub fn parse_vn_compact(s: &str) -> Option<DateTime<Utc>> {
    if s.len() != 14 {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S").ok()?;
    naive.and_local_timezone(vn_offset()).single().map(|t| t.with_timezone(&Utc))
}

/// Epoch milliseconds to an instant.
pub fn from_epoch_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// `yymmdd` in GMT+7.
pub fn vn_yymmdd(t: DateTime<Utc>) -> String {
    t.with_timezone(&vn_offset()).format("%y%m%d").to_string()
}

/// `n` random characters from `alphabet`.
pub(crate) fn random_chars(n: usize, alphabet: &[u8]) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n).map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char).collect()
}

pub(crate) const UPPER_ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnpay_times_are_gmt_plus_7() {
        let t = parse_vn_compact("20240715170112").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-07-15T10:01:12+00:00");
        assert_eq!(vn_compact(t), "20240715170112");
        assert_eq!(
            vn_yymmdd(DateTime::parse_from_rfc3339("2024-12-31T17:30:00Z").unwrap().with_timezone(&Utc)),
            "250101"
        );
        assert!(parse_vn_compact("2024071517011").is_none());
    }

    #[test]
    fn hex_comparison_ignores_the_received_case() {
        assert!(hex_matches("ABCD", "abcd"));
        assert!(!hex_matches("abc", "abcd"));
        assert!(!hex_matches("abce", "abcd"));
    }

    #[test]
    fn zero_or_empty_is_no_transaction_number() {
        for none in ["", "0", "000", " "] {
            assert_eq!(txn_no(none), None, "{none:?}");
        }
        assert_eq!(txn_no("14226112").as_deref(), Some("14226112"));
        assert_eq!(txn_no("10").as_deref(), Some("10"));
    }

    #[test]
    fn the_claimed_reference_is_read_from_a_body_cut_short() {
        let raw =
            |body: &str| RawRequest { method: "POST".into(), body: body.as_bytes().to_vec(), ..Default::default() };
        let momo = r#"{"partnerCode":"P","orderId":"FR240715ABC","amount":1000,"extraData":"xxxxxxxx"#;
        assert_eq!(claimed_txn_ref(Gateway::Momo, &raw(momo)).as_deref(), Some("FR240715ABC"));
        let zalo = r#"{"data":"{\"app_id\":2554,\"app_trans_id\":\"240715_ABC\",\"item\":\"[xxxxx"#;
        assert_eq!(claimed_txn_ref(Gateway::Zalopay, &raw(zalo)).as_deref(), Some("240715_ABC"));
        assert_eq!(claimed_txn_ref(Gateway::Momo, &raw(r#"{"orderId":"#)), None);
        let dvcqg = r#"{"LoaiBanTin":"PAYMENT_RESULT","MaLoi":"00","MaThamChieu":"DVC240715ABCDEFGHJKL","SoTien":15"#;
        assert_eq!(claimed_txn_ref(Gateway::Dvcqg, &raw(dvcqg)).as_deref(), Some("DVC240715ABCDEFGHJKL"));
    }
}
