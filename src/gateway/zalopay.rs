//! ZaloPay v2 (reference/gateways.md §3).
//!
//! The callback is a JSON POST `{"data": "<JSON string>", "mac": "<hex>", "type": 1}`; `mac` is
//! HMAC-SHA256 with key2 over `data` exactly as received, so `data` is parsed only after the MAC
//! verifies. ZaloPay calls back on success only; failures are learnt from the status query. Orders
//! and queries are signed with key1. Fields ZaloPay adds to the envelope or to `data` are
//! ignored: the MAC covers `data` exactly as sent, whatever it holds.
//!
//! The query answer is unsigned (as authentic as its channel). `return_code` 1 is paid, 3 unpaid
//! or processing; 2 is a failure of the payment unless its `sub_return_code` is an API error
//! (`API_ERRORS`), which is no outcome.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{
    AuthenticatedBy, CallbackResult, GatewayAdapter, GatewayError, HttpReply, Order, QueryAnswer, QueryTarget,
    RawRequest, Unusable, Verification, from_epoch_ms, hmac_sha256_hex, random_chars, txn_no, verify_with, vn_yymmdd,
};
use crate::config::ZalopayConfig;
use crate::domain::Money;
use crate::domain::payment::{Gateway, GatewayEvent, OutcomeKind};

/// The callback's envelope. Unknown fields are accepted: what ZaloPay adds must not make every
/// genuine callback fail.
#[derive(Debug, Deserialize)]
struct Envelope {
    data: String,
    mac: String,
    #[serde(rename = "type")]
    kind: i64,
}

#[derive(Debug, Deserialize)]
struct CallbackData {
    app_id: i64,
    app_trans_id: String,
    amount: i64,
    zp_trans_id: i64,
    server_time: i64,
}

/// Verifies a callback body.
pub fn verify_callback(cfg: &ZalopayConfig, body: &[u8]) -> Verification {
    let env: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => return Verification::BadSignature(format!("not a ZaloPay callback: {e}")),
    };
    let Some(auth) =
        verify_with(&cfg.key2, cfg.key2_previous.as_ref(), &env.mac, |k| hmac_sha256_hex(k, env.data.as_bytes()))
    else {
        return Verification::BadSignature("mac does not match".into());
    };
    let event = (|| {
        if env.kind != 1 {
            return Err(Unusable::NotOurs(format!("callback type {} is not an order", env.kind)));
        }
        let d: CallbackData =
            serde_json::from_str(&env.data).map_err(|e| Unusable::NotOurs(format!("data is not an order: {e}")))?;
        if d.app_id.to_string() != cfg.app_id {
            return Err(Unusable::NotOurs(format!("app_id {} is not this merchant's", d.app_id)));
        }
        Ok(GatewayEvent {
            gateway: Gateway::Zalopay,
            txn_ref: d.app_trans_id,
            gateway_txn_no: txn_no(&d.zp_trans_id.to_string()),
            amount: Some(Money::new(d.amount).map_err(|e| Unusable::Amount(e.to_string()))?),
            outcome: OutcomeKind::Success,
            paid_at: from_epoch_ms(d.server_time),
        })
    })();
    Verification::Valid { auth, event }
}

pub fn reply(r: CallbackResult) -> HttpReply {
    let (code, msg) = match r {
        CallbackResult::Applied => (1, "success"),
        CallbackResult::AlreadyConfirmed => (2, "already processed"),
        CallbackResult::OrderNotFound => (0, "order not found"),
        CallbackResult::InvalidAmount => (0, "invalid amount"),
        CallbackResult::BadSignature => (-1, "mac not equal"),
        CallbackResult::NotAnOutcome | CallbackResult::Failure => (0, "internal error"),
    };
    HttpReply::json(200, json!({"return_code": code, "return_message": msg}))
}

/// The shortest and longest order validity ZaloPay takes (`expire_duration_seconds`, reference
/// gateways.md §3): a payment whose TTL is shorter stays payable at ZaloPay until 300 s after its
/// creation, and a success in that window is `late_success`.
pub const EXPIRY_SECONDS: std::ops::RangeInclusive<i64> = 300..=2_592_000;

/// The create-order request: `mac = HMAC(key1, app_id|app_trans_id|app_user|amount|app_time|embed_data|item)`.
pub fn create_request(cfg: &ZalopayConfig, order: &Order) -> serde_json::Value {
    let app_time = order.created_at.timestamp_millis();
    let embed_data = json!({"redirecturl": order.return_url}).to_string();
    let item = "[]";
    let app_user = "feerecon";
    let data =
        format!("{}|{}|{app_user}|{}|{app_time}|{embed_data}|{item}", cfg.app_id, order.txn_ref, order.amount.dong());
    json!({
        "app_id": cfg.app_id.parse::<i64>().unwrap_or_default(),
        "app_user": app_user,
        "app_trans_id": order.txn_ref,
        "app_time": app_time,
        "expire_duration_seconds": (order.expires_at - order.created_at)
            .num_seconds()
            .clamp(*EXPIRY_SECONDS.start(), *EXPIRY_SECONDS.end()),
        "amount": order.amount.dong(),
        "item": item,
        "embed_data": embed_data,
        "description": order.order_info,
        "bank_code": "",
        "callback_url": order.ipn_url,
        "mac": hmac_sha256_hex(&cfg.key1, data.as_bytes()),
    })
}

/// The status-query request: `mac = HMAC(key1, app_id|app_trans_id|key1)`.
pub fn query_request(cfg: &ZalopayConfig, app_trans_id: &str) -> serde_json::Value {
    let data = format!("{}|{app_trans_id}|{}", cfg.app_id, cfg.key1.expose());
    json!({
        "app_id": cfg.app_id.parse::<i64>().unwrap_or_default(),
        "app_trans_id": app_trans_id,
        "mac": hmac_sha256_hex(&cfg.key1, data.as_bytes()),
    })
}

/// The `sub_return_code`s of a `return_code` 2 answer that are API errors, not the payment's
/// status: -101 order not found, -401 illegal request, -402 bad MAC or app, -429 rate limit,
/// -500 system error, -503 and -999 maintenance [I: ZaloPay's status-code page lists them for
/// create-order and its disbursement query; the order-query table could not be read beyond its
/// first row, -54 "the transaction is expired", which is a failure].
pub const API_ERRORS: [i64; 7] = [-101, -401, -402, -429, -500, -503, -999];

/// Reads a status-query answer: `return_code` 1 paid, 3 unpaid or processing (pending), 2 failed
/// unless its `sub_return_code` is an API error; any other `return_code` is an API error. ZaloPay
/// does not sign it: it is as authentic as the channel it came over (`auth`). An unpaid order may
/// be answered with amount `0`, which names no amount. The answer carries no payment time the
/// SPEC accepts: the caller uses the creation time.
pub fn read_query_answer(txn_ref: &str, body: &[u8], auth: AuthenticatedBy) -> Verification {
    #[derive(Deserialize)]
    struct Answer {
        return_code: i64,
        #[serde(default)]
        return_message: String,
        #[serde(default)]
        sub_return_code: Option<i64>,
        #[serde(default)]
        amount: i64,
        #[serde(default)]
        zp_trans_id: i64,
    }
    let a: Answer = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(e) => return Verification::BadSignature(format!("not a ZaloPay query answer: {e}")),
    };
    let api_error = || {
        let code = match a.sub_return_code {
            Some(sub) => format!("{}/{sub}", a.return_code),
            None => a.return_code.to_string(),
        };
        Err(Unusable::ApiError { code, message: a.return_message.clone() })
    };
    let outcome = match (a.return_code, a.sub_return_code) {
        (1, _) => OutcomeKind::Success,
        (3, _) => OutcomeKind::Pending,
        (2, Some(sub)) if API_ERRORS.contains(&sub) => return Verification::Valid { auth, event: api_error() },
        (2, _) => OutcomeKind::Failure,
        _ => return Verification::Valid { auth, event: api_error() },
    };
    let amount = if a.amount == 0 && outcome != OutcomeKind::Success {
        Ok(None)
    } else {
        Money::new(a.amount).map(Some).map_err(|e| Unusable::Amount(e.to_string()))
    };
    let event = amount.map(|amount| GatewayEvent {
        gateway: Gateway::Zalopay,
        txn_ref: txn_ref.to_owned(),
        gateway_txn_no: txn_no(&a.zp_trans_id.to_string()),
        amount,
        outcome,
        paid_at: None,
    });
    Verification::Valid { auth, event }
}

pub struct Zalopay {
    cfg: ZalopayConfig,
    http: reqwest::Client,
}

impl Zalopay {
    pub fn new(cfg: ZalopayConfig, http: reqwest::Client) -> Self {
        Self { cfg, http }
    }
}

#[async_trait]
impl GatewayAdapter for Zalopay {
    fn gateway(&self) -> Gateway {
        Gateway::Zalopay
    }

    fn accepts(&self, amount: Money) -> bool {
        amount.dong() >= 1
    }

    fn new_txn_ref(&self, now: DateTime<Utc>) -> String {
        // app_trans_id starts with yymmdd in GMT+7: ZaloPay reconciles by Vietnamese date.
        format!("{}_{}", vn_yymmdd(now), random_chars(16, super::UPPER_ALNUM))
    }

    async fn create(&self, order: &Order) -> Result<String, GatewayError> {
        let body = create_request(&self.cfg, order);
        let url = format!("{}/v2/create", self.cfg.endpoint);
        let answer = super::post_json(&self.http, &url, &body).await?;
        super::order_url(&answer, "return_code", 1, "order_url", "return_message")
    }

    fn verify_callback(&self, req: &RawRequest) -> Verification {
        verify_callback(&self.cfg, &req.body)
    }

    fn reply(&self, r: CallbackResult) -> HttpReply {
        reply(r)
    }

    async fn query(&self, t: &QueryTarget) -> Result<QueryAnswer, GatewayError> {
        let body = query_request(&self.cfg, &t.txn_ref);
        let url = format!("{}/v2/query", self.cfg.endpoint);
        super::exchange(&self.http, &url, &body, |a, auth| read_query_answer(&t.txn_ref, a, auth)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Secret;

    pub(crate) fn cfg() -> ZalopayConfig {
        ZalopayConfig {
            app_id: "2554".into(),
            key1: Secret::new("vectorZaloKey1"),
            key2: Secret::new("vectorZaloKey2zzzzzzzzzzzzzzzzzz"),
            key2_previous: None,
            endpoint: "https://sb-openapi.zalopay.vn".into(),
        }
    }

    /// reference/vectors.md, the ZaloPay callback.
    pub(crate) const DATA: &str = r#"{"app_id":2554,"app_trans_id":"241231_000042","app_time":1735664390000,"app_user":"vector","amount":200000,"embed_data":"{}","item":"[]","zp_trans_id":241231000000042,"server_time":1735664399000,"channel":38,"merchant_user_id":"","user_fee_amount":0,"discount_amount":0}"#;
    pub(crate) const MAC: &str = "a3f5ea0048439ceaf1fa21ff6d53683b54a781c0ce4076b46ad49c26f6ef3275";

    pub(crate) fn body(data: &str, mac: &str) -> Vec<u8> {
        json!({"data": data, "mac": mac, "type": 1}).to_string().into_bytes()
    }

    #[test]
    fn the_vector_verifies_and_reads_as_a_success() {
        let Verification::Valid { auth, event } = verify_callback(&cfg(), &body(DATA, MAC)) else {
            panic!("must verify")
        };
        assert_eq!(auth, AuthenticatedBy::SignatureCurrent);
        let e = event.unwrap();
        assert_eq!(
            (e.txn_ref.as_str(), e.amount, e.outcome),
            ("241231_000042", Money::new(200_000).ok(), OutcomeKind::Success)
        );
        assert_eq!(e.gateway_txn_no.as_deref(), Some("241231000000042"));
    }

    #[test]
    fn the_mac_covers_data_exactly_as_received() {
        // The same JSON with a space added is another string: refused.
        let spaced = DATA.replacen(",", ", ", 1);
        assert!(matches!(verify_callback(&cfg(), &body(&spaced, MAC)), Verification::BadSignature(_)));
        assert!(matches!(verify_callback(&cfg(), &body(DATA, &MAC.replace('a', "b"))), Verification::BadSignature(_)));
        // key1 does not sign callbacks.
        let with_key1 = hmac_sha256_hex(&cfg().key1, DATA.as_bytes());
        assert!(matches!(verify_callback(&cfg(), &body(DATA, &with_key1)), Verification::BadSignature(_)));
    }

    #[test]
    fn query_answers_map_to_outcomes() {
        let a = |code: i64| {
            read_query_answer(
                "X",
                json!({"return_code": code, "amount": 1000, "zp_trans_id": 9}).to_string().as_bytes(),
                AuthenticatedBy::TlsChannel,
            )
        };
        assert!(matches!(
            a(1),
            Verification::Valid { event: Ok(GatewayEvent { outcome: OutcomeKind::Success, .. }), .. }
        ));
        assert!(matches!(
            a(2),
            Verification::Valid { event: Ok(GatewayEvent { outcome: OutcomeKind::Failure, .. }), .. }
        ));
        assert!(matches!(
            a(3),
            Verification::Valid { event: Ok(GatewayEvent { outcome: OutcomeKind::Pending, .. }), .. }
        ));
        assert!(matches!(a(-49), Verification::Valid { event: Err(_), .. }));
        assert_eq!(
            String::from_utf8(reply(CallbackResult::Applied).body).unwrap(),
            r#"{"return_code":1,"return_message":"success"}"#
        );
        assert!(String::from_utf8(reply(CallbackResult::BadSignature).body).unwrap().contains("-1"));
        assert!(String::from_utf8(reply(CallbackResult::AlreadyConfirmed).body).unwrap().contains(":2"));
    }

    #[test]
    fn a_failure_that_is_an_api_error_is_no_outcome() {
        let a = |code: i64, sub: i64, amount: i64| {
            read_query_answer(
                "X",
                json!({"return_code": code, "sub_return_code": sub, "amount": amount, "zp_trans_id": 0})
                    .to_string()
                    .as_bytes(),
                AuthenticatedBy::TlsChannel,
            )
        };
        for sub in API_ERRORS {
            let v = a(2, sub, 0);
            assert!(
                matches!(&v, Verification::Valid { event: Err(Unusable::ApiError { code, .. }), .. } if *code == format!("2/{sub}")),
                "{sub}: {v:?}"
            );
        }
        // -54: the order expired at ZaloPay, a failure; no amount and no number named.
        let Verification::Valid { auth, event: Ok(e) } = a(2, -54, 0) else { panic!() };
        assert_eq!(
            (auth, e.outcome, e.amount, e.gateway_txn_no),
            (AuthenticatedBy::TlsChannel, OutcomeKind::Failure, None, None)
        );
        // Unpaid or processing: pending.
        let Verification::Valid { event: Ok(e), .. } = a(3, 3, 0) else { panic!() };
        assert_eq!((e.outcome, e.amount), (OutcomeKind::Pending, None));
    }

    #[test]
    fn fields_zalopay_adds_are_accepted() {
        let b = json!({"data": DATA, "mac": MAC, "type": 1, "new_field": {"x": 1}}).to_string();
        assert!(matches!(verify_callback(&cfg(), b.as_bytes()), Verification::Valid { event: Ok(_), .. }));
        let data = DATA.replacen('{', r#"{"new_data_field":"y","#, 1);
        let mac = hmac_sha256_hex(&cfg().key2, data.as_bytes());
        assert!(matches!(verify_callback(&cfg(), &body(&data, &mac)), Verification::Valid { event: Ok(_), .. }));
    }
}
