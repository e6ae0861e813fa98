//! The payment platform of the National Public Service Portal (Nền tảng thanh toán of Cổng
//! DVCQG), from reference/dvcqg-payment.md, which supersedes gateways.md §4.2. Tags: [S] seen in
//! the two public province implementations (OpenCPS, TD.DichVuCongApi), [I] inferred.
//!
//! `MaXacThuc` is the lowercase hex SHA-256 (not an HMAC) of the listed field values joined by
//! `|`, followed by `|` and the shared secret, UTF-8 [S §3]. The field lists are fixed per
//! message (`INIT_FIELDS`, `CALLBACK_FIELDS`, `QUERY_FIELDS`); `ThongTinBienLai` and any extra
//! key are outside the hash [S]. A callback is verified over the exact string values received
//! (`SoTien` may be a JSON integer, written in decimal [S]); every hashed field must be present
//! and a string (a number for `SoTien`), and a key given twice is refused [I]. Answers to our
//! requests (INIT, QUERY, GET_BILL) are not signed in any public code [S]: they are as authentic
//! as the channel. The requests we send are built in `messages.rs`; the receipt (`GET_BILL`) is
//! read by `read_bill_answer`, a PDF or JSON with `UrlBienLai` [S §7].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{
    AuthenticatedBy, CallbackResult, GatewayAdapter, GatewayError, GatewayReceipt, HttpReply, Order, QueryAnswer,
    QueryTarget, RawRequest, Unusable, Verification, parse_vn_compact, random_chars, txn_no, verify_with, vn_compact,
    vn_yymmdd,
};
use crate::config::DvcqgConfig;
use crate::domain::payment::{Gateway, GatewayEvent, OutcomeKind};
use crate::domain::{Money, Secret};

mod messages;
pub use messages::{bill_request, init_request, lookup_bill, lookup_error, lookup_nothing, query_request};

/// `PhienBan`: the only version seen [S: TD, for INIT, QUERY and GET_BILL].
pub const PHIEN_BAN: &str = "1.0.6";

/// The fields of each message's `MaXacThuc`, in order [S §3].
pub const INIT_FIELDS: [&str; 14] = [
    "LoaiBanTin",
    "PhienBan",
    "MaDoiTac",
    "MaThamChieu",
    "SoTien",
    "LoaiHinhThanhToan",
    "MaKenhThanhToan",
    "MaThietBi",
    "NgonNgu",
    "MaTienTe",
    "MaNganHang",
    "ThongTinGiaoDich",
    "ThoiGianGD",
    "Ip",
];
/// `ThoiGianGD` precedes `ThongTinGiaoDich` here, and follows it in INIT [S, both codebases].
pub const CALLBACK_FIELDS: [&str; 10] = [
    "LoaiBanTin",
    "MaLoi",
    "MaDoiTac",
    "MaThamChieu",
    "SoTien",
    "MaTienTe",
    "MaGiaoDich",
    "MaNganHang",
    "ThoiGianGD",
    "ThongTinGiaoDich",
];
/// QUERY and GET_BILL share it [S].
pub const QUERY_FIELDS: [&str; 5] = ["LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"];

/// `MaLoi` of success, in every message [S].
pub const OK: &str = "00";

/// `MaXacThuc` of `values`: SHA-256 over `v1|v2|…|vn|secret`, lowercase hex.
pub fn checksum(values: &[&str], secret: &Secret) -> String {
    let mut h = Sha256::new();
    for v in values {
        h.update(v.as_bytes());
        h.update(b"|");
    }
    h.update(secret.expose().as_bytes());
    hex::encode(h.finalize())
}

/// A hashed field as received: a JSON string as it is; `SoTien` may also be a JSON integer,
/// written in decimal. Anything else (absent, null, a float, an object) is `None`.
fn hashed_value(v: Option<&Value>, field: &str) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if field == "SoTien" => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

/// The callback's hashed fields and its checksum. A struct, so that a key given twice is an
/// error rather than "the last one wins"; other keys (`UrlBienLai`, `MaHoSo`) are ignored.
#[derive(Deserialize)]
struct CallbackFields {
    #[serde(rename = "LoaiBanTin")]
    loai_ban_tin: Option<Value>,
    #[serde(rename = "MaLoi")]
    ma_loi: Option<Value>,
    #[serde(rename = "MaDoiTac")]
    ma_doi_tac: Option<Value>,
    #[serde(rename = "MaThamChieu")]
    ma_tham_chieu: Option<Value>,
    #[serde(rename = "SoTien")]
    so_tien: Option<Value>,
    #[serde(rename = "MaTienTe")]
    ma_tien_te: Option<Value>,
    #[serde(rename = "MaGiaoDich")]
    ma_giao_dich: Option<Value>,
    #[serde(rename = "MaNganHang")]
    ma_ngan_hang: Option<Value>,
    #[serde(rename = "ThoiGianGD")]
    thoi_gian_gd: Option<Value>,
    #[serde(rename = "ThongTinGiaoDich")]
    thong_tin_giao_dich: Option<Value>,
    #[serde(rename = "MaXacThuc")]
    ma_xac_thuc: Option<Value>,
}

/// Reads a callback's hashed values, in `CALLBACK_FIELDS` order, and its `MaXacThuc`.
fn callback_values(body: &[u8]) -> Result<([String; 10], String), String> {
    let f: CallbackFields = serde_json::from_slice(body).map_err(|e| format!("not a DVCQG callback: {e}"))?;
    let raw = [
        &f.loai_ban_tin,
        &f.ma_loi,
        &f.ma_doi_tac,
        &f.ma_tham_chieu,
        &f.so_tien,
        &f.ma_tien_te,
        &f.ma_giao_dich,
        &f.ma_ngan_hang,
        &f.thoi_gian_gd,
        &f.thong_tin_giao_dich,
    ];
    let mut values: [String; 10] = Default::default();
    for (i, v) in raw.iter().enumerate() {
        values[i] = hashed_value(v.as_ref(), CALLBACK_FIELDS[i])
            .ok_or_else(|| format!("{} is missing or not a string", CALLBACK_FIELDS[i]))?;
    }
    let sig = match &f.ma_xac_thuc {
        Some(Value::String(s)) => s.clone(),
        _ => return Err("MaXacThuc is missing or not a string".into()),
    };
    Ok((values, sig))
}

/// Verifies a payment-result notification [S §5]: the checksum first (current secret, then the
/// previous one), then whose it is. `MaLoi` "00" is paid, anything else not paid [S]; the
/// payment time is `ThoiGianGD` in GMT+7 [I: the callback's time; both codebases store it].
pub fn verify_callback(cfg: &DvcqgConfig, body: &[u8]) -> Verification {
    let (v, sig) = match callback_values(body) {
        Ok(x) => x,
        Err(e) => return Verification::BadSignature(e),
    };
    let refs: Vec<&str> = v.iter().map(String::as_str).collect();
    let Some(auth) = verify_with(&cfg.secret, cfg.secret_previous.as_ref(), &sig, |s| checksum(&refs, s)) else {
        return Verification::BadSignature("MaXacThuc does not match".into());
    };
    let [_, ma_loi, ma_doi_tac, ma_tham_chieu, so_tien, ma_tien_te, ma_giao_dich, _, thoi_gian, _] = &v;
    let event = (|| {
        if *ma_doi_tac != cfg.partner_code {
            return Err(Unusable::NotOurs(format!("MaDoiTac {ma_doi_tac:?} is not this province's")));
        }
        if ma_tham_chieu.is_empty() {
            return Err(Unusable::NotOurs("no MaThamChieu".into()));
        }
        let amount = amount(so_tien, ma_tien_te)?;
        let outcome = if ma_loi == OK { OutcomeKind::Success } else { OutcomeKind::Failure };
        Ok(GatewayEvent {
            gateway: Gateway::Dvcqg,
            txn_ref: ma_tham_chieu.clone(),
            gateway_txn_no: txn_no(ma_giao_dich),
            amount: Some(amount),
            outcome,
            paid_at: parse_vn_compact(thoi_gian),
        })
    })();
    Verification::Valid { auth, event }
}

/// `SoTien` in đồng: digits only, in VND.
fn amount(so_tien: &str, currency: &str) -> Result<Money, Unusable> {
    if !currency.is_empty() && currency != "VND" {
        return Err(Unusable::Amount(format!("MaTienTe {currency:?} is not VND")));
    }
    if so_tien.is_empty() || so_tien.len() > 15 || !so_tien.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Unusable::Amount(format!("SoTien {so_tien:?} is not a whole amount of đồng")));
    }
    so_tien.parse::<i64>().ok().and_then(|n| Money::new(n).ok()).ok_or_else(|| Unusable::Amount("SoTien".into()))
}

/// `MaLoi` and `MoTaLoi` of our reply per category [I: no code table is public; "00" success
/// and "99" "Các lỗi khác" are OpenCPS's [S], the other codes mirror VNPAY's table].
pub fn reply_code(r: CallbackResult) -> (&'static str, &'static str) {
    match r {
        CallbackResult::Applied => (OK, "Thành công"),
        CallbackResult::AlreadyConfirmed => (OK, "Giao dịch đã được xác nhận"),
        CallbackResult::OrderNotFound => ("01", "Không tìm thấy giao dịch"),
        CallbackResult::InvalidAmount => ("04", "Số tiền không hợp lệ"),
        CallbackResult::BadSignature => ("97", "Mã xác thực không chính xác"),
        CallbackResult::NotAnOutcome | CallbackResult::Failure => ("99", "Các lỗi khác"),
    }
}

/// The reply the platform expects [S §5: OpenCPS's shape]: HTTP 200, JSON with `MaLoi`,
/// `MoTaLoi`, `MaDoiTac`, `MaThamChieu`, `ThoiGianGD` and the received `MaXacThuc` echoed
/// (neither implementation signs its reply). Values are echoed from the received body when it
/// gave them as strings, else empty.
pub fn reply(r: CallbackResult, received: &[u8]) -> HttpReply {
    let v: Value = serde_json::from_slice(received).unwrap_or(Value::Null);
    let echo = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (code, text) = reply_code(r);
    HttpReply::json(
        200,
        json!({
            "MaLoi": code,
            "MoTaLoi": text,
            "MaDoiTac": echo("MaDoiTac"),
            "MaThamChieu": echo("MaThamChieu"),
            "ThoiGianGD": echo("ThoiGianGD"),
            "MaXacThuc": echo("MaXacThuc"),
        }),
    )
}

/// An answer inside the wrapper some provincial gateways add, `{"error_code", "message": "<JSON
/// string>"}` [S: TD; I: added by an LGSP]: its `message`, parsed; otherwise the answer itself.
fn unwrap_answer(v: Value) -> Result<Value, String> {
    match (v.get("error_code"), v.get("message").and_then(Value::as_str)) {
        (Some(code), Some(message)) if v.get("MaLoi").is_none() => {
            let code = match code {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if code != "0" {
                return Err(format!("error_code {code}: {message}"));
            }
            serde_json::from_str(message).map_err(|e| format!("the wrapped message is not JSON: {e}"))
        }
        _ => Ok(v),
    }
}

/// The pay URL from an INIT answer: `UrlThanhToan` when `MaLoi` is "00" [S: OpenCPS's client].
pub fn read_init_answer(body: &[u8]) -> Result<String, GatewayError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| GatewayError::Refused(format!("not JSON: {e}")))?;
    let v = unwrap_answer(v).map_err(GatewayError::Refused)?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    match (s("MaLoi"), s("UrlThanhToan")) {
        (OK, url) if url.starts_with("https://") || url.starts_with("http://") => Ok(url.to_owned()),
        (code, _) => Err(GatewayError::Refused(format!("MaLoi {code:?} {}", s("MoTaLoi")))),
    }
}

/// Reads a QUERY answer [S §6]: `MaLoi` "00" means the query itself succeeded; then `TrangThaiGD`
/// 1 paid, 3 pending (the platform does not know yet), 4 failed. Another `MaLoi`, or a
/// `TrangThaiGD` outside those (2 and others are unlisted), is an API error: no outcome. The
/// answer is not verified by either implementation [S] (no formula is public for it): it is as
/// authentic as its channel. Its `ThoiGianGD` is the INIT time we sent, so no payment time.
pub fn read_query_answer(cfg: &DvcqgConfig, txn_ref: &str, body: &[u8], auth: AuthenticatedBy) -> Verification {
    let v = match serde_json::from_slice::<Value>(body).map_err(|e| e.to_string()).and_then(unwrap_answer) {
        Ok(v) if v.get("MaLoi").is_some() => v,
        Ok(_) => return Verification::BadSignature("not a DVCQG query answer: no MaLoi".into()),
        Err(e) => return Verification::BadSignature(format!("not a DVCQG query answer: {e}")),
    };
    let text = |k: &str| match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let api_error = |code: String| Err(Unusable::ApiError { code, message: text("MoTaLoi") });
    let event = (|| {
        if text("MaLoi") != OK {
            return api_error(text("MaLoi"));
        }
        let partner = text("MaDoiTac");
        if !partner.is_empty() && partner != cfg.partner_code {
            return Err(Unusable::NotOurs(format!("MaDoiTac {partner:?} is not this province's")));
        }
        let outcome = match text("TrangThaiGD").as_str() {
            "1" => OutcomeKind::Success,
            "3" => OutcomeKind::Pending,
            "4" => OutcomeKind::Failure,
            other => return api_error(format!("00/TrangThaiGD {other}")),
        };
        let so_tien = text("SoTien");
        let amount = match (so_tien.as_str(), outcome) {
            ("" | "0", OutcomeKind::Success) => return Err(Unusable::Amount("a success names no SoTien".into())),
            ("" | "0", _) => None,
            (s, _) => Some(amount(s, &text("MaTienTe"))?),
        };
        let named = text("MaThamChieu");
        Ok(GatewayEvent {
            gateway: Gateway::Dvcqg,
            txn_ref: if named.is_empty() { txn_ref.to_owned() } else { named },
            gateway_txn_no: txn_no(&text("MaGiaoDich")),
            amount,
            outcome,
            paid_at: None,
        })
    })();
    Verification::Valid { auth, event }
}

/// What a GET_BILL answer holds [S §7: TD saves the body as a PDF; OpenCPS reads JSON
/// `UrlBienLai` and downloads it]: told apart by `Content-Type`, then by the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillAnswer {
    Pdf(Vec<u8>),
    Url(String),
    /// No receipt: an error answer, or bytes that are neither.
    Refused(String),
}

pub fn read_bill_answer(content_type: &str, body: &[u8]) -> BillAnswer {
    if content_type.starts_with("application/pdf") || body.starts_with(b"%PDF-") {
        return if body.starts_with(b"%PDF-") {
            BillAnswer::Pdf(body.to_vec())
        } else {
            BillAnswer::Refused("the answer says PDF but is not one".into())
        };
    }
    let v = match serde_json::from_slice::<Value>(body).map_err(|e| e.to_string()).and_then(unwrap_answer) {
        Ok(v) => v,
        Err(e) => return BillAnswer::Refused(format!("neither a PDF nor JSON: {e}")),
    };
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    match (s("MaLoi").as_str(), s("UrlBienLai")) {
        ("" | OK, url) if url.starts_with("https://") || url.starts_with("http://") => BillAnswer::Url(url),
        (code, _) => BillAnswer::Refused(format!("MaLoi {code:?} {}", s("MoTaLoi"))),
    }
}

/// Whether two URLs share scheme, host and port (`https://host:port`).
fn same_origin(a: &str, b: &str) -> bool {
    let origin = |u: &str| -> Option<String> {
        let (scheme, rest) = u.split_once("://")?;
        let host = rest.split(['/', '?', '#']).next()?;
        (!host.is_empty() && !host.contains('@'))
            .then(|| format!("{}://{}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
    };
    matches!((origin(a), origin(b)), (Some(x), Some(y)) if x == y)
}

pub struct Dvcqg {
    cfg: DvcqgConfig,
    http: reqwest::Client,
}

impl Dvcqg {
    pub fn new(cfg: DvcqgConfig, http: reqwest::Client) -> Self {
        Self { cfg, http }
    }

    fn bearer(&self) -> Option<&str> {
        self.cfg.token.as_ref().map(Secret::expose)
    }

    /// Posts a request and returns the answer's content type and bytes (one attempt).
    async fn post_once(&self, url: &str, body: &Value) -> Result<(String, Vec<u8>), GatewayError> {
        let mut req = self.http.post(url).json(body);
        if let Some(t) = self.bearer() {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.map_err(|e| GatewayError::Unavailable(e.without_url().to_string()))?;
        if !res.status().is_success() {
            return Err(GatewayError::Refused(format!("HTTP {}", res.status())));
        }
        let ct =
            res.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let bytes = res.bytes().await.map_err(|e| GatewayError::Unavailable(e.without_url().to_string()))?;
        Ok((ct, bytes.to_vec()))
    }

    /// Downloads a receipt named by `UrlBienLai`, with the bearer token only when the URL is on the
    /// GET_BILL endpoint's own origin (the token is never sent to a host the answer names).
    async fn download(&self, url: &str) -> Result<(String, Vec<u8>), GatewayError> {
        let mut req = self.http.get(url);
        if let Some(t) = self.bearer().filter(|_| same_origin(url, &self.cfg.bill_url)) {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.map_err(|e| GatewayError::Unavailable(e.without_url().to_string()))?;
        if !res.status().is_success() {
            return Err(GatewayError::Refused(format!("UrlBienLai: HTTP {}", res.status())));
        }
        let ct =
            res.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let bytes = res.bytes().await.map_err(|e| GatewayError::Unavailable(e.without_url().to_string()))?;
        Ok((ct, bytes.to_vec()))
    }
}

#[async_trait]
impl GatewayAdapter for Dvcqg {
    fn gateway(&self) -> Gateway {
        Gateway::Dvcqg
    }

    /// No limits are published [I]: any positive amount.
    fn accepts(&self, amount: Money) -> bool {
        amount.dong() >= 1
    }

    /// `DVC` + `yymmdd` (GMT+7) + 11 characters: 20 alphanumerics, within OpenCPS's 20-character
    /// cut, the safest known limit [I §11].
    fn new_txn_ref(&self, now: DateTime<Utc>) -> String {
        format!("DVC{}{}", vn_yymmdd(now), random_chars(11, super::UPPER_ALNUM))
    }

    async fn create(&self, order: &Order) -> Result<String, GatewayError> {
        let body = init_request(&self.cfg, order);
        let answer = super::post_json_as(&self.http, &self.cfg.init_url, &body, self.bearer()).await?;
        read_init_answer(&answer)
    }

    fn verify_callback(&self, req: &RawRequest) -> Verification {
        verify_callback(&self.cfg, &req.body)
    }

    fn reply(&self, r: CallbackResult) -> HttpReply {
        reply(r, b"")
    }

    fn reply_to(&self, r: CallbackResult, received: &[u8]) -> HttpReply {
        reply(r, received)
    }

    async fn query(&self, t: &QueryTarget) -> Result<QueryAnswer, GatewayError> {
        let body = query_request(&self.cfg, &t.txn_ref, &vn_compact(t.created_at));
        let answer = super::post_json_as(&self.http, &self.cfg.query_url, &body, self.bearer()).await?;
        let verification = read_query_answer(&self.cfg, &t.txn_ref, &answer, super::channel(&self.cfg.query_url));
        Ok(QueryAnswer { raw: super::exchanged(&self.cfg.query_url, &body, answer), verification })
    }

    async fn fetch_receipt(&self, t: &QueryTarget) -> Result<GatewayReceipt, GatewayError> {
        let body = bill_request(&self.cfg, &t.txn_ref, &vn_compact(t.created_at));
        let (ct, bytes) = self.post_once(&self.cfg.bill_url, &body).await?;
        let request = body.to_string();
        match read_bill_answer(&ct, &bytes) {
            BillAnswer::Pdf(pdf) => {
                Ok(GatewayReceipt { request, content_type: "application/pdf".into(), body: pdf, url: None })
            }
            BillAnswer::Url(url) => {
                let (ct, pdf) = self.download(&url).await?;
                if !pdf.starts_with(b"%PDF-") && !ct.starts_with("application/pdf") {
                    return Err(GatewayError::Refused("UrlBienLai named something that is not a PDF".into()));
                }
                Ok(GatewayReceipt { request, content_type: "application/pdf".into(), body: pdf, url: Some(url) })
            }
            BillAnswer::Refused(why) => Err(GatewayError::Refused(why)),
        }
    }
}

#[cfg(test)]
mod tests;
