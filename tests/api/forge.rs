//! Genuine and forged gateway callbacks for the HTTP tests: the genuine signed message for a
//! pending payment (built with the simulator's signer and the test secrets of
//! `helpers::GATEWAY_ENV`), the way each gateway sends it, the forgeries `simulator::mutate` makes
//! of it, and whether a reply refused it. Shared by `gateways`, `queries` and `forgery`.

use rand::rngs::StdRng;

fn env(k: &str) -> &'static str {
    crate::helpers::GATEWAY_ENV.iter().find(|(n, _)| *n == k).unwrap().1
}

/// The four gateways, as their routes name them.
pub const GATEWAYS: [&str; 4] = ["vnpay", "momo", "zalopay", "dvcqg"];

/// The genuine signed callback (URL or body) for a pending payment, built with the simulator's
/// signer, and the way to send it.
pub(crate) fn genuine(gateway: &str, txn_ref: &str, amount: i64, secret_override: Option<&str>) -> (String, String) {
    genuine_numbered(gateway, txn_ref, amount, secret_override, 0)
}

/// `genuine`, with the gateway's transaction number 77001 (VNPAY), 77002 (MoMo), 77003
/// (ZaloPay) or 77004 (DVCQG) plus `offset`: distinct payments get distinct numbers.
pub(crate) fn genuine_numbered(
    gateway: &str,
    txn_ref: &str,
    amount: i64,
    secret_override: Option<&str>,
    offset: u64,
) -> (String, String) {
    use feerecon::simulator::sign;
    let no = |base: u64| (base + offset).to_string();
    match gateway {
        "vnpay" => {
            let p: Vec<(String, String)> = vec![
                ("vnp_Amount".into(), (amount * 100).to_string()),
                ("vnp_BankCode".into(), "NCB".into()),
                ("vnp_OrderInfo".into(), "Thanh toan le phi".into()),
                ("vnp_PayDate".into(), "20240715170112".into()),
                ("vnp_ResponseCode".into(), "00".into()),
                ("vnp_TmnCode".into(), env("FEERECON_VNPAY_TMN_CODE").into()),
                ("vnp_TransactionNo".into(), no(77001)),
                ("vnp_TransactionStatus".into(), "00".into()),
                ("vnp_TxnRef".into(), txn_ref.into()),
            ];
            ("GET".into(), sign::vnpay_signed_query(secret_override.unwrap_or(env("FEERECON_VNPAY_HASH_SECRET")), &p))
        }
        "momo" => {
            let raw = sign::momo_raw(&[
                ("accessKey", env("FEERECON_MOMO_ACCESS_KEY").into()),
                ("amount", amount.to_string()),
                ("extraData", String::new()),
                ("message", "Thành công.".into()),
                ("orderId", txn_ref.into()),
                ("orderInfo", "Le phi".into()),
                ("orderType", "momo_wallet".into()),
                ("partnerCode", env("FEERECON_MOMO_PARTNER_CODE").into()),
                ("payType", "qr".into()),
                ("requestId", txn_ref.into()),
                ("responseTime", "1721037672000".into()),
                ("resultCode", "0".into()),
                ("transId", no(77002)),
            ]);
            let body = serde_json::json!({
                "partnerCode": env("FEERECON_MOMO_PARTNER_CODE"), "orderId": txn_ref, "requestId": txn_ref, "amount": amount,
                "orderInfo": "Le phi", "orderType": "momo_wallet", "transId": 77002 + offset, "resultCode": 0, "message": "Thành công.",
                "payType": "qr", "responseTime": 1_721_037_672_000i64, "extraData": "",
                "signature": sign::hmac_sha256(secret_override.unwrap_or(env("FEERECON_MOMO_SECRET_KEY")), &raw),
            });
            ("POST".into(), body.to_string())
        }
        "zalopay" => {
            let data = format!(
                r#"{{"app_id":2554,"app_trans_id":"{txn_ref}","app_time":1721037600000,"app_user":"u","amount":{amount},"embed_data":"{{}}","item":"[]","zp_trans_id":{},"server_time":1721037672000,"channel":38,"merchant_user_id":"","user_fee_amount":0,"discount_amount":0}}"#,
                77003 + offset
            );
            let mac = sign::zalopay_mac(secret_override.unwrap_or(env("FEERECON_ZALOPAY_KEY2")), &data);
            ("POST".into(), serde_json::json!({"data": data, "mac": mac, "type": 1}).to_string())
        }
        "dvcqg" => {
            let values = [
                "PAYMENT_RESULT".to_owned(),
                "00".into(),
                env("FEERECON_DVCQG_PARTNER_CODE").into(),
                txn_ref.into(),
                amount.to_string(),
                "VND".into(),
                no(77004),
                "VCB".into(),
                "20240715170112".into(),
                "Le phi".into(),
            ];
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            let mut m = serde_json::Map::new();
            for (k, v) in feerecon::gateway::dvcqg::CALLBACK_FIELDS.iter().zip(&values) {
                m.insert((*k).to_owned(), serde_json::json!(v));
            }
            let secret = secret_override.unwrap_or(env("FEERECON_DVCQG_SECRET"));
            m.insert("MaXacThuc".into(), serde_json::json!(sign::dvcqg_checksum(&refs, secret)));
            ("POST".into(), serde_json::Value::Object(m).to_string())
        }
        other => panic!("no such gateway: {other}"),
    }
}

pub(crate) async fn send(
    client: &reqwest::Client,
    base: &str,
    gateway: &str,
    method: &str,
    payload: &str,
) -> (u16, String) {
    let res = match (gateway, method) {
        ("vnpay", _) => client.get(format!("{base}/gateway/vnpay/ipn?{payload}")).send().await.unwrap(),
        ("momo", _) => client
            .post(format!("{base}/gateway/momo/ipn"))
            .header("content-type", "application/json")
            .body(payload.to_owned())
            .send()
            .await
            .unwrap(),
        ("dvcqg", _) => client
            .post(format!("{base}/gateway/dvcqg/callback"))
            .header("content-type", "application/json")
            .body(payload.to_owned())
            .send()
            .await
            .unwrap(),
        _ => client
            .post(format!("{base}/gateway/zalopay/callback"))
            .header("content-type", "application/json")
            .body(payload.to_owned())
            .send()
            .await
            .unwrap(),
    };
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Forgeries of `payload` (a genuine message of `gateway`): every field changed, dropped or
/// duplicated, re-encoded, signed with another key or hash, truncated or extended.
pub fn forgeries(gateway: &str, payload: &str, rng: &mut StdRng) -> Vec<String> {
    use feerecon::simulator::mutate;
    match gateway {
        "vnpay" => mutate::vnpay(payload, env("FEERECON_VNPAY_HASH_SECRET"), "old", rng),
        "momo" => mutate::momo(payload, env("FEERECON_MOMO_SECRET_KEY"), "old", env("FEERECON_MOMO_ACCESS_KEY"), rng),
        "zalopay" => mutate::zalopay(payload, env("FEERECON_ZALOPAY_KEY2"), "old", env("FEERECON_ZALOPAY_KEY1"), rng),
        "dvcqg" => mutate::dvcqg(payload, env("FEERECON_DVCQG_SECRET"), "old", rng),
        other => panic!("no such gateway: {other}"),
    }
}

/// Whether a gateway's reply says the message was applied or already confirmed (SPEC §6.4).
pub fn accepted(gateway: &str, status: u16, body: &str) -> bool {
    match gateway {
        "vnpay" => body.contains("\"00\"") || body.contains("\"02\""),
        "momo" => status == 204,
        "zalopay" => body.contains("\"return_code\":1") || body.contains("\"return_code\":2"),
        _ => body.contains("\"MaLoi\":\"00\""),
    }
}
