//! The OpenAPI description of the gateway endpoints (callbacks, the DVCQG lookup, return pages):
//! each gateway's fields as its protocol names them, so an integrator or a test harness sees what
//! is signed and what the server answers. The handlers read these raw (they keep the exact bytes
//! as evidence), so the schemas here are written from the adapters in `gateway/`, not derived.

use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema as _, openapi::Required};

/// A schema written as JSON (OpenAPI 3.1 Schema Object).
pub fn schema(v: Value) -> RefOr<Schema> {
    RefOr::T(serde_json::from_value::<Schema>(v).unwrap_or_default())
}

/// An object of string fields, each described, the listed ones required.
fn fields(described: &[(&str, &str)], required: &[&str]) -> Value {
    let props: serde_json::Map<String, Value> =
        described.iter().map(|(n, d)| ((*n).to_owned(), json!({"type": "string", "description": d}))).collect();
    json!({"type": "object", "properties": props, "required": required})
}

/// VNPAY's IPN and return fields (query string or form), every `vnp_*` field signed but the hash.
const VNPAY: &[(&str, &str)] = &[
    ("vnp_TmnCode", "The merchant's terminal code."),
    ("vnp_Amount", "The amount ×100, digits."),
    ("vnp_BankCode", "The paying bank."),
    ("vnp_BankTranNo", "The bank's transaction number."),
    ("vnp_CardType", "ATM, QRCODE, ..."),
    ("vnp_PayDate", "yyyyMMddHHmmss, GMT+7."),
    ("vnp_OrderInfo", "The order description sent at creation."),
    ("vnp_TransactionNo", "VNPAY's transaction number."),
    ("vnp_ResponseCode", "00 success; other codes per VNPAY."),
    ("vnp_TransactionStatus", "00 success; other codes per VNPAY."),
    ("vnp_TxnRef", "Our payment's txn_ref."),
    ("vnp_SecureHashType", "HmacSHA512 (optional, not signed)."),
    ("vnp_SecureHash", "HMAC-SHA512 of the sorted, encoded vnp_* fields with the hash secret."),
];

fn query_params(described: &[(&str, &str)], required: &[&str]) -> Vec<Parameter> {
    described
        .iter()
        .map(|(n, d)| {
            ParameterBuilder::new()
                .name(*n)
                .parameter_in(ParameterIn::Query)
                .required(if required.contains(n) { Required::True } else { Required::False })
                .description(Some(*d))
                .schema(Some(String::schema()))
                .build()
        })
        .collect()
}

/// `GET /gateway/vnpay/ipn` and the VNPAY return page: the signed query string.
pub fn vnpay_query() -> Vec<Parameter> {
    query_params(VNPAY, &["vnp_TmnCode", "vnp_Amount", "vnp_TxnRef", "vnp_ResponseCode", "vnp_SecureHash"])
}

/// `POST /gateway/vnpay/ipn`: the same fields as a form.
pub fn vnpay_form() -> RefOr<Schema> {
    schema(fields(VNPAY, &["vnp_TmnCode", "vnp_Amount", "vnp_TxnRef", "vnp_ResponseCode", "vnp_SecureHash"]))
}

/// VNPAY's reply to an IPN: `RspCode` 00 stops its retries.
pub fn vnpay_reply() -> RefOr<Schema> {
    schema(fields(
        &[
            (
                "RspCode",
                "00 confirmed; 01 order not found; 02 already confirmed; 04 wrong amount; 97 bad signature; 99 retry",
            ),
            ("Message", ""),
        ],
        &["RspCode", "Message"],
    ))
}

/// MoMo's IPN: JSON, signed (HMAC-SHA256, `signature`) over its fields in alphabetical order.
pub fn momo_ipn() -> RefOr<Schema> {
    let mut v = fields(
        &[
            ("partnerCode", ""),
            ("orderId", "Our payment's txn_ref."),
            ("requestId", ""),
            ("orderInfo", ""),
            ("orderType", ""),
            ("message", ""),
            ("payType", ""),
            ("extraData", ""),
            ("signature", "HMAC-SHA256 hex with the secret key."),
        ],
        &[
            "partnerCode",
            "orderId",
            "requestId",
            "amount",
            "orderInfo",
            "orderType",
            "transId",
            "resultCode",
            "message",
            "payType",
            "responseTime",
            "extraData",
            "signature",
        ],
    );
    for n in ["amount", "transId", "resultCode", "responseTime"] {
        v["properties"][n] = json!({"type": "integer", "format": "int64"});
    }
    v["properties"]["resultCode"]["description"] = json!("0 success; 9000 authorised; other codes per MoMo.");
    schema(v)
}

/// ZaloPay's callback: `data` (a JSON string) and its `mac` (HMAC-SHA256 with key2).
pub fn zalopay_callback() -> RefOr<Schema> {
    let mut v = fields(
        &[
            (
                "data",
                "A JSON string: app_id, app_trans_id (our txn_ref), app_time, amount, zp_trans_id, server_time, ...",
            ),
            ("mac", "HMAC-SHA256 hex of data with key2."),
        ],
        &["data", "mac"],
    );
    v["properties"]["type"] = json!({"type": "integer", "description": "1 order, 2 agreement."});
    schema(v)
}

/// ZaloPay's reply: `return_code` 1 stops its retries, 2 asks for none, otherwise it retries.
pub fn zalopay_reply() -> RefOr<Schema> {
    schema(json!({"type": "object", "required": ["return_code", "return_message"], "properties": {
        "return_code": {"type": "integer"}, "return_message": {"type": "string"}}}))
}

/// The DVCQG platform's payment-result notification (checksum `MaXacThuc`).
pub fn dvcqg_callback() -> RefOr<Schema> {
    schema(fields(
        &[
            ("LoaiBanTin", "PAYMENT_RESULT."),
            ("MaLoi", "00 paid; other codes per the platform."),
            ("MaDoiTac", "The province's partner code."),
            ("MaThamChieu", "Our payment's txn_ref."),
            ("SoTien", "The amount in đồng."),
            ("LoaiTienTe", "VND."),
            ("MaGiaoDich", "The platform's transaction number."),
            ("MaNganHang", "The paying bank."),
            ("ThoiGianGD", "yyyyMMddHHmmss."),
            ("ThongTinGD", "The order description."),
            ("MaXacThuc", "SHA-256 hex of the fields joined by | and the secret."),
        ],
        &["MaLoi", "MaThamChieu", "SoTien", "MaXacThuc"],
    ))
}

/// The DVCQG reply (and the lookup's answer): an error code and a message.
pub fn dvcqg_reply() -> RefOr<Schema> {
    schema(
        json!({"type": "object", "description": "The platform's reply format, echoing the notification's reference.", "additionalProperties": true}),
    )
}

/// The DVCQG reverse lookup's request.
pub fn dvcqg_lookup() -> RefOr<Schema> {
    schema(fields(&[("MaHoSo", "A case code.")], &["MaHoSo"]))
}

/// The lookup's answer: `error_code` 1 with the bill, 0 nothing owed, -1 an error.
pub fn dvcqg_lookup_answer() -> RefOr<Schema> {
    schema(json!({"type": "object", "required": ["error_code", "message"], "properties": {
        "error_code": {"type": "integer", "enum": [1, 0, -1]}, "message": {"type": "string"}},
        "additionalProperties": true}))
}

/// Return pages: the query each gateway sends the citizen back with (only read, never applied).
pub fn return_query(gateway: &str) -> Vec<Parameter> {
    match gateway {
        "vnpay" => query_params(VNPAY, &[]),
        "momo" => query_params(&[("orderId", "Our payment's txn_ref."), ("resultCode", ""), ("signature", "")], &[]),
        "zalopay" => query_params(&[("apptransid", "Our payment's txn_ref."), ("status", ""), ("checksum", "")], &[]),
        _ => query_params(&[("MaThamChieu", "Our payment's txn_ref.")], &[]),
    }
}
