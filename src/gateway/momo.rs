//! MoMo, API v2 (`/v2/gateway/api/*`), HMAC-SHA256 (reference/gateways.md §2).
//!
//! The IPN is a JSON POST. Its signature covers a raw string of `key=value` pairs in alphabetical
//! order, `accessKey` (ours, not in the body) included, values unencoded, numbers as plain
//! integers. The body is parsed strictly (each signed field present once, with its JSON type), so
//! a field dropped, duplicated or retyped is refused; fields MoMo adds are ignored (the
//! signature names its fields). The reply is HTTP 204 when recorded.
//!
//! `resultCode` is read against MoMo's table (`classify`): a code it lists as a payment status
//! is an outcome; 10, 11, 12, 13, 41, 42, 99 and every code it does not list are API errors.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{
    AuthenticatedBy, CallbackResult, GatewayAdapter, GatewayError, HttpReply, Order, QueryAnswer, QueryTarget,
    RawRequest, Unusable, Verification, from_epoch_ms, hmac_sha256_hex, random_chars, txn_no, verify_with, vn_yymmdd,
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

/// MoMo's `resultCode` as an outcome (SPEC §6.2, reference/gateways.md §2.4): 0, or 9000 with
/// auto-capture (our orders are `captureWallet`, which captures automatically), is success;
/// 1000, 7000, 7002, 8000 are pending; the failures MoMo's table lists are failures [I: the
/// reference recalled them from memory]. `None` for every other code: 10 maintenance, 11 access
/// denied, 12 API version, 13 merchant authentication, 41/42 order unknown or duplicated, 99 and
/// anything unlisted are API errors, not the payment's status.
pub fn classify(result_code: i64) -> Option<OutcomeKind> {
    match result_code {
        0 | 9000 => Some(OutcomeKind::Success),
        1000 | 7000 | 7002 | 8000 => Some(OutcomeKind::Pending),
        c if FAILURES.contains(&c) => Some(OutcomeKind::Failure),
        _ => None,
    }
}

/// The `resultCode`s MoMo's table lists as final failures of the payment [I]: insufficient funds,
/// refused by the issuer, cancelled after authorisation, over the limit, URL/QR expired (`1005`,
/// the order's expiry), cancelled by the user, account inactive, cancelled by the partner,
/// restricted by a promotion, invalid order group, account restricted or not logged in.
pub const FAILURES: [i64; 12] = [1001, 1002, 1003, 1004, 1005, 1006, 1007, 1017, 1026, 2019, 4001, 4100];

/// The codes MoMo documents as API errors (the rest of the unlisted codes are treated alike).
pub const API_ERRORS: [i64; 7] = [10, 11, 12, 13, 41, 42, 99];

fn event_or_error(
    result_code: i64,
    message: &str,
    make: impl FnOnce(OutcomeKind) -> Result<GatewayEvent, Unusable>,
) -> Result<GatewayEvent, Unusable> {
    match classify(result_code) {
        Some(outcome) => make(outcome),
        None => Err(Unusable::ApiError { code: result_code.to_string(), message: message.to_owned() }),
    }
}

/// Verifies an IPN body.
pub fn verify_ipn(cfg: &MomoConfig, body: &[u8]) -> Verification {
    let ipn: Ipn = match serde_json::from_slice(body) {
        Ok(i) => i,
        Err(e) => return Verification::BadSignature(format!("not a MoMo IPN: {e}")),
    };
    let raw = ipn_raw_signature(cfg.access_key.expose(), &ipn);
    let Some(auth) = verify_with(&cfg.secret_key, cfg.secret_key_previous.as_ref(), &ipn.signature, |s| {
        hmac_sha256_hex(s, raw.as_bytes())
    }) else {
        return Verification::BadSignature("signature does not match".into());
    };
    let event = if ipn.partner_code != cfg.partner_code {
        Err(Unusable::NotOurs(format!("partnerCode {:?} is not this merchant's", ipn.partner_code)))
    } else {
        event_or_error(ipn.result_code, &ipn.message, |outcome| {
            Ok(GatewayEvent {
                gateway: Gateway::Momo,
                txn_ref: ipn.order_id.clone(),
                gateway_txn_no: txn_no(&ipn.trans_id.to_string()),
                amount: Some(Money::new(ipn.amount).map_err(|e| Unusable::Amount(e.to_string()))?),
                outcome,
                paid_at: from_epoch_ms(ipn.response_time),
            })
        })
    };
    Verification::Valid { auth, event }
}

pub fn reply(r: CallbackResult) -> HttpReply {
    let status = match r {
        CallbackResult::Applied | CallbackResult::AlreadyConfirmed => 204,
        CallbackResult::OrderNotFound => 404,
        CallbackResult::InvalidAmount => 400,
        CallbackResult::BadSignature => 401,
        // An IPN stating no status: asked again, as after a failure.
        CallbackResult::NotAnOutcome | CallbackResult::Failure => 500,
    };
    HttpReply { status, content_type: None, body: vec![] }
}

/// How long a MoMo order stays payable, in whole minutes (`orderExpireTime` [I: the field and
/// its unit are from MoMo's create-order page as integrators quote it; reference/gateways.md does
/// not list it]): the payment's TTL rounded up, at least 1. A citizen can pay at MoMo up to a
/// minute after feerecon expired the payment; such a success is `late_success`.
pub fn order_expire_minutes(order: &Order) -> i64 {
    let seconds = (order.expires_at - order.created_at).num_seconds().max(1);
    (seconds + 59) / 60
}

/// The create-order request (`captureWallet`). `orderExpireTime` is not in the signed string
/// (MoMo's raw signature for create names its fields, and this one is not among them [I]).
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
        "orderExpireTime": order_expire_minutes(order),
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

/// Reads a status-query answer. MoMo does not sign it: it is as authentic as the channel it came
/// over (`auth`). Its `resultCode` is classified like an IPN's; an unpaid order may be answered
/// with amount `0`, which names no amount. The answer carries no payment time: the caller uses
/// the payment's creation time (SPEC §6.4).
pub fn read_query_answer(cfg: &MomoConfig, body: &[u8], auth: AuthenticatedBy) -> Verification {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        partner_code: String,
        order_id: String,
        #[serde(default)]
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
    let event = if a.partner_code != cfg.partner_code {
        Err(Unusable::NotOurs(format!("partnerCode {:?} is not this merchant's", a.partner_code)))
    } else {
        event_or_error(a.result_code, &a.message, |outcome| {
            let amount = if a.amount == 0 && outcome != OutcomeKind::Success {
                None
            } else {
                Some(Money::new(a.amount).map_err(|e| Unusable::Amount(e.to_string()))?)
            };
            Ok(GatewayEvent {
                gateway: Gateway::Momo,
                txn_ref: a.order_id.clone(),
                gateway_txn_no: a.trans_id.and_then(|t| txn_no(&t.to_string())),
                amount,
                outcome,
                paid_at: None,
            })
        })
    };
    Verification::Valid { auth, event }
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
        super::exchange(&self.http, &url, &body, |a, auth| read_query_answer(&self.cfg, a, auth)).await
    }
}

#[cfg(test)]
mod tests {
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
        let Verification::Valid { auth, event } = verify_ipn(&cfg(), VECTOR.as_bytes()) else { panic!("must verify") };
        assert_eq!(auth, AuthenticatedBy::SignatureCurrent);
        let e = event.unwrap();
        assert_eq!(
            (e.txn_ref.as_str(), e.amount, e.outcome),
            ("241231C0007", Money::new(115_000).ok(), OutcomeKind::Success)
        );
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
    fn result_codes_map_to_outcomes_and_errors_to_none() {
        assert_eq!(classify(0), Some(OutcomeKind::Success));
        assert_eq!(classify(9000), Some(OutcomeKind::Success));
        for c in [1000, 7000, 7002, 8000] {
            assert_eq!(classify(c), Some(OutcomeKind::Pending));
        }
        for c in FAILURES {
            assert_eq!(classify(c), Some(OutcomeKind::Failure), "{c}");
        }
        for c in API_ERRORS.into_iter().chain([49, 1008, 1080, 2000, -1]) {
            assert_eq!(classify(c), None, "{c} is no payment status");
        }
        assert_eq!(reply(CallbackResult::Applied).status, 204);
        assert_eq!(reply(CallbackResult::AlreadyConfirmed).status, 204);
        assert_eq!(reply(CallbackResult::OrderNotFound).status, 404);
        assert_eq!(reply(CallbackResult::InvalidAmount).status, 400);
        assert_eq!(reply(CallbackResult::BadSignature).status, 401);
        assert_eq!(reply(CallbackResult::Failure).status, 500);
    }

    #[test]
    fn query_answers_that_are_api_errors_are_no_outcome_and_channels_label_them() {
        let answer = |code: i64, amount: i64, trans: i64| {
            let body = json!({"partnerCode": "MOMOVECT01", "orderId": "FR1", "requestId": "Q1", "amount": amount,
                "transId": trans, "resultCode": code, "message": "m", "responseTime": 1});
            read_query_answer(&cfg(), body.to_string().as_bytes(), AuthenticatedBy::TlsChannel)
        };
        for code in API_ERRORS {
            // With the payment's amount or with none, an API error is no outcome.
            for amount in [0, 135_000] {
                let v = answer(code, amount, 0);
                let Verification::Valid { auth, event: Err(Unusable::ApiError { code: c, .. }) } = v else {
                    panic!("{code}: {v:?}")
                };
                assert_eq!((auth, c), (AuthenticatedBy::TlsChannel, code.to_string()));
            }
        }
        // Processing: pending, an amount of 0 names none, a transId of 0 is no number.
        for code in [7000, 7002, 1000] {
            let Verification::Valid { event: Ok(e), .. } = answer(code, 0, 0) else { panic!("{code}") };
            assert_eq!((e.outcome, e.amount, e.gateway_txn_no), (OutcomeKind::Pending, None, None));
        }
        let Verification::Valid { event: Ok(e), .. } = answer(0, 135_000, 42) else { panic!() };
        assert_eq!((e.outcome, e.gateway_txn_no.as_deref()), (OutcomeKind::Success, Some("42")));
        // An IPN with transId 0 names no transaction (issue 14 item 6).
        let raw = |trans: i64| {
            let mut i: Ipn = serde_json::from_str(VECTOR).unwrap();
            i.trans_id = trans;
            let sig = hmac_sha256_hex(&cfg().secret_key, ipn_raw_signature("vectorAccessKey", &i).as_bytes());
            VECTOR.replace("4088878653", &trans.to_string()).replace(&i.signature, &sig)
        };
        let Verification::Valid { event: Ok(e), .. } = verify_ipn(&cfg(), raw(0).as_bytes()) else { panic!() };
        assert_eq!(e.gateway_txn_no, None);
        // Fields MoMo adds tomorrow are ignored: the signature names its fields.
        let extra = VECTOR.replacen('{', r#"{"newField":"x","#, 1);
        assert!(matches!(verify_ipn(&cfg(), extra.as_bytes()), Verification::Valid { event: Ok(_), .. }));
    }

    #[test]
    fn orders_expire_at_momo_with_the_payment() {
        let t = DateTime::parse_from_rfc3339("2024-07-15T02:00:00Z").unwrap().with_timezone(&Utc);
        let order = |ttl: chrono::TimeDelta| Order {
            txn_ref: "FR1".into(),
            amount: Money::new(135_000).unwrap(),
            order_info: "x".into(),
            return_url: "r".into(),
            ipn_url: "i".into(),
            client_ip: "1.2.3.4".into(),
            created_at: t,
            expires_at: t + ttl,
            case: Default::default(),
        };
        assert_eq!(create_request(&cfg(), &order(chrono::TimeDelta::minutes(15)), "R")["orderExpireTime"], 15);
        assert_eq!(create_request(&cfg(), &order(chrono::TimeDelta::seconds(1)), "R")["orderExpireTime"], 1);
        assert_eq!(create_request(&cfg(), &order(chrono::TimeDelta::seconds(61)), "R")["orderExpireTime"], 2);
    }
}
