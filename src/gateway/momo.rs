//! MoMo, API v2 (`/v2/gateway/api/*`), HMAC-SHA256 (reference/gateways.md §2).
//!
//! The IPN is a JSON POST. Its signature covers a raw string of `key=value` pairs in alphabetical
//! order, `accessKey` (ours, not in the body) included, values unencoded, numbers as plain
//! integers. The body is parsed strictly (each signed field present once, with its JSON type), so
//! a field dropped, duplicated or retyped is refused. The reply is HTTP 204 when recorded.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{
    CallbackResult, GatewayAdapter, GatewayError, HttpReply, Order, QueryAnswer, QueryTarget, RawRequest, Unusable,
    Verification, from_epoch_ms, hmac_sha256_hex, random_chars, verify_with, vn_yymmdd,
};
use crate::config::MomoConfig;
use crate::domain::Money;
use crate::domain::payment::{Gateway, GatewayEvent, OutcomeKind};

/// An IPN body, every signed field required (and, by serde, present once).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ipn {
    pub partner_code: String,
    pub order_id: String,
    pub request_id: String,
    pub amount: i64,
    pub order_info: String,
    pub order_type: String,
    pub trans_id: i64,
    pub result_code: i64,
    pub message: String,
    pub pay_type: String,
    pub response_time: i64,
    pub extra_data: String,
    pub signature: String,
}

/// The raw string an IPN's signature covers.
pub fn ipn_raw_signature(access_key: &str, i: &Ipn) -> String {
    format!(
        "accessKey={access_key}&amount={}&extraData={}&message={}&orderId={}&orderInfo={}&orderType={}&partnerCode={}&payType={}&requestId={}&responseTime={}&resultCode={}&transId={}",
        i.amount,
        i.extra_data,
        i.message,
        i.order_id,
        i.order_info,
        i.order_type,
        i.partner_code,
        i.pay_type,
        i.request_id,
        i.response_time,
        i.result_code,
        i.trans_id
    )
}

/// MoMo's `resultCode` as an outcome (SPEC §6.2): 0, or 9000 with auto-capture (our orders are
/// `captureWallet`, which captures automatically), is success; 1000, 7000, 7002, 8000 pending.
pub fn outcome(result_code: i64) -> OutcomeKind {
    match result_code {
        0 | 9000 => OutcomeKind::Success,
        1000 | 7000 | 7002 | 8000 => OutcomeKind::Pending,
        _ => OutcomeKind::Failure,
    }
}

/// Verifies an IPN body.
pub fn verify_ipn(cfg: &MomoConfig, body: &[u8]) -> Verification {
    let ipn: Ipn = match serde_json::from_slice(body) {
        Ok(i) => i,
        Err(e) => return Verification::BadSignature(format!("not a MoMo IPN: {e}")),
    };
    let raw = ipn_raw_signature(cfg.access_key.expose(), &ipn);
    let Some(key) = verify_with(&cfg.secret_key, cfg.secret_key_previous.as_ref(), &ipn.signature, |s| {
        hmac_sha256_hex(s, raw.as_bytes())
    }) else {
        return Verification::BadSignature("signature does not match".into());
    };
    let event = (|| {
        if ipn.partner_code != cfg.partner_code {
            return Err(Unusable::NotOurs(format!("partnerCode {:?} is not this merchant's", ipn.partner_code)));
        }
        Ok(GatewayEvent {
            gateway: Gateway::Momo,
            txn_ref: ipn.order_id.clone(),
            gateway_txn_no: Some(ipn.trans_id.to_string()),
            amount: Money::new(ipn.amount).map_err(|e| Unusable::Amount(e.to_string()))?,
            outcome: outcome(ipn.result_code),
            paid_at: from_epoch_ms(ipn.response_time),
        })
    })();
    Verification::Valid { key, event }
}

pub fn reply(r: CallbackResult) -> HttpReply {
    let status = match r {
        CallbackResult::Applied | CallbackResult::AlreadyConfirmed => 204,
        CallbackResult::OrderNotFound => 404,
        CallbackResult::InvalidAmount => 400,
        CallbackResult::BadSignature => 401,
        CallbackResult::Failure => 500,
    };
    HttpReply { status, content_type: None, body: vec![] }
}

/// The create-order request (`captureWallet`).
pub fn create_request(cfg: &MomoConfig, order: &Order, request_id: &str) -> serde_json::Value {
    let raw = format!(
        "accessKey={}&amount={}&extraData=&ipnUrl={}&orderId={}&orderInfo={}&partnerCode={}&redirectUrl={}&requestId={request_id}&requestType=captureWallet",
        cfg.access_key.expose(),
        order.amount.dong(),
        order.ipn_url,
        order.txn_ref,
        order.order_info,
        cfg.partner_code,
        order.return_url,
    );
    json!({
        "partnerCode": cfg.partner_code,
        "requestId": request_id,
        "amount": order.amount.dong(),
        "orderId": order.txn_ref,
        "orderInfo": order.order_info,
        "redirectUrl": order.return_url,
        "ipnUrl": order.ipn_url,
        "requestType": "captureWallet",
        "extraData": "",
        "lang": "vi",
        "signature": hmac_sha256_hex(&cfg.secret_key, raw.as_bytes()),
    })
}

/// The status-query request.
pub fn query_request(cfg: &MomoConfig, order_id: &str, request_id: &str) -> serde_json::Value {
    let raw = format!(
        "accessKey={}&orderId={order_id}&partnerCode={}&requestId={request_id}",
        cfg.access_key.expose(),
        cfg.partner_code
    );
    json!({
        "partnerCode": cfg.partner_code,
        "requestId": request_id,
        "orderId": order_id,
        "lang": "vi",
        "signature": hmac_sha256_hex(&cfg.secret_key, raw.as_bytes()),
    })
}

/// The `resultCode` MoMo answers a query about an unknown order with [INF: taken from
/// integrators' notes, not MoMo's table].
pub const ORDER_NOT_FOUND: i64 = 42;

/// Reads a status-query answer. MoMo's query answer carries no payment time: the caller uses the
/// payment's creation time (SPEC §6.4).
pub fn read_query_answer(cfg: &MomoConfig, body: &[u8]) -> Verification {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        partner_code: String,
        order_id: String,
        amount: i64,
        #[serde(default)]
        trans_id: Option<i64>,
        result_code: i64,
        #[serde(default)]
        message: String,
    }
    let a: Answer = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(e) => return Verification::BadSignature(format!("not a MoMo query answer: {e}")),
    };
    // The answer comes over TLS from the endpoint we called; MoMo does not sign it.
    let event = if a.partner_code != cfg.partner_code {
        Err(Unusable::NotOurs(format!("partnerCode {:?} is not this merchant's", a.partner_code)))
    } else if a.result_code == ORDER_NOT_FOUND {
        Err(Unusable::ApiError(format!("MoMo does not know the order: {} {}", a.result_code, a.message)))
    } else {
        Money::new(a.amount).map_err(|e| Unusable::Amount(e.to_string())).map(|amount| GatewayEvent {
            gateway: Gateway::Momo,
            txn_ref: a.order_id,
            gateway_txn_no: a.trans_id.filter(|t| *t > 0).map(|t| t.to_string()),
            amount,
            outcome: outcome(a.result_code),
            paid_at: None,
        })
    };
    Verification::Valid { key: super::KeyUsed::Current, event }
}

pub struct Momo {
    cfg: MomoConfig,
    http: reqwest::Client,
}

impl Momo {
    pub fn new(cfg: MomoConfig, http: reqwest::Client) -> Self {
        Self { cfg, http }
    }
}

#[async_trait]
impl GatewayAdapter for Momo {
    fn gateway(&self) -> Gateway {
        Gateway::Momo
    }

    fn accepts(&self, amount: Money) -> bool {
        (1_000..=50_000_000).contains(&amount.dong())
    }

    fn new_txn_ref(&self, now: DateTime<Utc>) -> String {
        // Matches ^[0-9a-zA-Z]([-_.]*[0-9a-zA-Z]+)*$.
        format!("FR{}{}", vn_yymmdd(now), random_chars(12, super::UPPER_ALNUM))
    }

    async fn create(&self, order: &Order) -> Result<String, GatewayError> {
        let body = create_request(&self.cfg, order, &order.txn_ref);
        let url = format!("{}/v2/gateway/api/create", self.cfg.endpoint);
        let answer = super::post_json(&self.http, &url, &body).await?;
        super::order_url(&answer, "resultCode", 0, "payUrl", "message")
    }

    fn verify_callback(&self, req: &RawRequest) -> Verification {
        verify_ipn(&self.cfg, &req.body)
    }

    fn reply(&self, r: CallbackResult) -> HttpReply {
        reply(r)
    }

    async fn query(&self, t: &QueryTarget) -> Result<QueryAnswer, GatewayError> {
        let request_id = format!("Q{}{}", vn_yymmdd(Utc::now()), random_chars(16, super::UPPER_ALNUM));
        let body = query_request(&self.cfg, &t.txn_ref, &request_id);
        let url = format!("{}/v2/gateway/api/query", self.cfg.endpoint);
        super::exchange(&self.http, &url, &body, |a| read_query_answer(&self.cfg, a)).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::KeyUsed;
    use super::*;
    use crate::domain::Secret;

    pub(crate) fn cfg() -> MomoConfig {
        MomoConfig {
            partner_code: "MOMOVECT01".into(),
            access_key: Secret::new("vectorAccessKey"),
            secret_key: Secret::new("VECTORMOMOSECRET0123456789abcdef"),
            secret_key_previous: None,
            endpoint: "https://test-payment.momo.vn".into(),
        }
    }

    /// reference/vectors.md, the MoMo IPN.
    pub(crate) const VECTOR: &str = r#"{"partnerCode":"MOMOVECT01","orderId":"241231C0007","requestId":"241231C0007","amount":115000,"orderInfo":"Le phi doi GPLX","orderType":"momo_wallet","transId":4088878653,"resultCode":0,"message":"Thành công.","payType":"qr","responseTime":1735664399000,"extraData":"","signature":"f4030ada3e2621cf03dfeb7353949d73644f72d0c9006628066fcf77ea579b8f"}"#;

    #[test]
    fn the_vector_verifies_with_its_raw_string() {
        let ipn: Ipn = serde_json::from_str(VECTOR).unwrap();
        assert_eq!(
            ipn_raw_signature("vectorAccessKey", &ipn),
            "accessKey=vectorAccessKey&amount=115000&extraData=&message=Thành công.&orderId=241231C0007&orderInfo=Le phi doi GPLX&orderType=momo_wallet&partnerCode=MOMOVECT01&payType=qr&requestId=241231C0007&responseTime=1735664399000&resultCode=0&transId=4088878653"
        );
        let Verification::Valid { key, event } = verify_ipn(&cfg(), VECTOR.as_bytes()) else { panic!("must verify") };
        assert_eq!(key, KeyUsed::Current);
        let e = event.unwrap();
        assert_eq!((e.txn_ref.as_str(), e.amount.dong(), e.outcome), ("241231C0007", 115_000, OutcomeKind::Success));
        assert_eq!(e.gateway_txn_no.as_deref(), Some("4088878653"));
        assert_eq!(e.paid_at.unwrap().to_rfc3339(), "2024-12-31T16:59:59+00:00");
    }

    #[test]
    fn a_retyped_dropped_or_duplicated_field_is_refused() {
        let retyped = VECTOR.replace("\"amount\":115000", "\"amount\":\"115000\"");
        assert!(matches!(verify_ipn(&cfg(), retyped.as_bytes()), Verification::BadSignature(_)));
        let dropped = VECTOR.replace("\"payType\":\"qr\",", "");
        assert!(matches!(verify_ipn(&cfg(), dropped.as_bytes()), Verification::BadSignature(_)));
        let duplicated = VECTOR.replace("\"payType\":\"qr\",", "\"payType\":\"qr\",\"payType\":\"qr\",");
        assert!(matches!(verify_ipn(&cfg(), duplicated.as_bytes()), Verification::BadSignature(_)));
        let amount = VECTOR.replace("115000", "115001");
        assert!(matches!(verify_ipn(&cfg(), amount.as_bytes()), Verification::BadSignature(_)));
    }

    #[test]
    fn result_codes_map_to_outcomes() {
        assert_eq!(outcome(0), OutcomeKind::Success);
        assert_eq!(outcome(9000), OutcomeKind::Success);
        for c in [1000, 7000, 7002, 8000] {
            assert_eq!(outcome(c), OutcomeKind::Pending);
        }
        for c in [1006, 1001, 49, 10] {
            assert_eq!(outcome(c), OutcomeKind::Failure);
        }
        assert_eq!(reply(CallbackResult::Applied).status, 204);
        assert_eq!(reply(CallbackResult::AlreadyConfirmed).status, 204);
        assert_eq!(reply(CallbackResult::OrderNotFound).status, 404);
        assert_eq!(reply(CallbackResult::InvalidAmount).status, 400);
        assert_eq!(reply(CallbackResult::BadSignature).status, 401);
        assert_eq!(reply(CallbackResult::Failure).status, 500);
    }
}
