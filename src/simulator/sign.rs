//! The simulator's own signing and checking code.
//!
//! Written apart from the adapters (`crate::gateway`), from the protocol notes, so that a
//! misreading of a protocol cannot hide in both sides at once: the adapters are tested against
//! what this module produces, and both are tested against reference/vectors.md.

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(key: &str, msg: &str) -> String {
    let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    m.update(msg.as_bytes());
    m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hmac_sha512(key: &str, msg: &str) -> String {
    hmac_hex::<Hmac<Sha512>>(key, msg)
}

pub fn hmac_sha256(key: &str, msg: &str) -> String {
    hmac_hex::<Hmac<Sha256>>(key, msg)
}

/// Percent-encodes for a query string as VNPAY's official PHP sample does (`urlencode`):
/// letters, digits and `-_.` kept, space as `+`, everything else `%XX` over UTF-8 (`*` too).
/// Which encoder VNPAY's own servers sign with is not published [I]; the PHP sample's differs
/// from the one feerecon sends with (which keeps `*`), so the tests show that feerecon verifies
/// a sender whose encoder is not its own.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes `query_escape` (and `%20`); `None` if malformed.
pub fn query_unescape(s: &str) -> Option<String> {
    let mut bytes = Vec::new();
    let mut it = s.bytes();
    while let Some(b) = it.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hi = (it.next()? as char).to_digit(16)?;
                let lo = (it.next()? as char).to_digit(16)?;
                bytes.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).ok()
}

/// VNPAY: the signed query for these parameters, `vnp_SecureHash` appended.
pub fn vnpay_signed_query(secret: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(_, v)| !v.is_empty()).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let data =
        sorted.iter().map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v))).collect::<Vec<_>>().join("&");
    format!("{data}&vnp_SecureHash={}", hmac_sha512(secret, &data))
}

/// VNPAY: checks a signed query a merchant sent (the pay URL), returning its parameters.
pub fn vnpay_check_query(secret: &str, query: &str) -> Result<Vec<(String, String)>, String> {
    let mut params = Vec::new();
    let mut hash = None;
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let (k, v) = (query_unescape(k).ok_or("bad escape")?, query_unescape(v).ok_or("bad escape")?);
        match k.as_str() {
            "vnp_SecureHash" => hash = Some(v),
            "vnp_SecureHashType" => {}
            _ => params.push((k, v)),
        }
    }
    let signed = vnpay_signed_query(secret, &params);
    let expected = signed.rsplit('=').next().unwrap_or_default().to_owned();
    match hash {
        Some(h) if h.to_lowercase() == expected => Ok(params),
        _ => Err("vnp_SecureHash does not match (code 97)".into()),
    }
}

/// VNPAY querydr: request checksum (pipe-joined, fixed order).
pub fn vnpay_querydr_request_hash(secret: &str, f: &[&str; 9]) -> String {
    hmac_sha512(secret, &f.join("|"))
}

/// MoMo: a raw signature string from `(key, value)` pairs, sorted by key.
pub fn momo_raw(pairs: &[(&str, String)]) -> String {
    let mut p: Vec<&(&str, String)> = pairs.iter().collect();
    p.sort_by(|a, b| a.0.cmp(b.0));
    p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// ZaloPay: the MAC of a string.
pub fn zalopay_mac(key: &str, data: &str) -> String {
    hmac_sha256(key, data)
}

/// DVCQG: `MaXacThuc`, the SHA-256 of the values joined by `|`, then `|` and the secret, in
/// lowercase hex (reference/dvcqg-payment.md §3). Not an HMAC.
pub fn dvcqg_checksum(values: &[&str], secret: &str) -> String {
    use sha2::Digest as _;
    let text = format!("{}|{secret}", values.join("|"));
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_reproduces_the_reference_vectors_on_its_own() {
        // VNPAY vector 1.
        let p: Vec<(String, String)> = [
            ("vnp_Amount", "1000000"),
            ("vnp_BankCode", "NCB"),
            ("vnp_BankTranNo", "VNP14226112"),
            ("vnp_CardType", "ATM"),
            ("vnp_OrderInfo", "Thanh toan le phi ho so 000.00.12.H62-240715-0001"),
            ("vnp_PayDate", "20240715170112"),
            ("vnp_ResponseCode", "00"),
            ("vnp_TmnCode", "VECT0001"),
            ("vnp_TransactionNo", "14226112"),
            ("vnp_TransactionStatus", "00"),
            ("vnp_TxnRef", "240715A0001"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let q = vnpay_signed_query("VECTORSECRETKEY0123456789ABCDEFG", &p);
        assert!(q.ends_with("b4bf8338f73c35070bb76cb827d925ad042369b166ccfb2c518dc22f1fa849d81b003ae3954d5833b91d1c6a34356f8669802765c2a813f58c70c3df63ab09b6"));
        assert!(vnpay_check_query("VECTORSECRETKEY0123456789ABCDEFG", &q).is_ok());
        // MoMo.
        let raw = momo_raw(&[
            ("partnerCode", "MOMOVECT01".into()),
            ("accessKey", "vectorAccessKey".into()),
            ("requestId", "241231C0007".into()),
            ("amount", "115000".into()),
            ("orderId", "241231C0007".into()),
            ("orderInfo", "Le phi doi GPLX".into()),
            ("orderType", "momo_wallet".into()),
            ("transId", "4088878653".into()),
            ("resultCode", "0".into()),
            ("message", "Thành công.".into()),
            ("payType", "qr".into()),
            ("responseTime", "1735664399000".into()),
            ("extraData", String::new()),
        ]);
        assert_eq!(
            hmac_sha256("VECTORMOMOSECRET0123456789abcdef", &raw),
            "f4030ada3e2621cf03dfeb7353949d73644f72d0c9006628066fcf77ea579b8f"
        );
        // ZaloPay.
        let data = r#"{"app_id":2554,"app_trans_id":"241231_000042","app_time":1735664390000,"app_user":"vector","amount":200000,"embed_data":"{}","item":"[]","zp_trans_id":241231000000042,"server_time":1735664399000,"channel":38,"merchant_user_id":"","user_fee_amount":0,"discount_amount":0}"#;
        assert_eq!(
            zalopay_mac("vectorZaloKey2zzzzzzzzzzzzzzzzzz", data),
            "a3f5ea0048439ceaf1fa21ff6d53683b54a781c0ce4076b46ad49c26f6ef3275"
        );
        // DVCQG: the README's vectors, computed with `sha256sum` over the pipe-joined string.
        let s = "VECTORDVCQGSECRET0123456789abcdef";
        assert_eq!(
            dvcqg_checksum(
                &[
                    "PAYMENT_RESULT",
                    "00",
                    "000.00.00.H62",
                    "DVC241231ABCDEFGHJKL",
                    "150000",
                    "VND",
                    "TT2412310000042",
                    "VCB",
                    "20241231235959",
                    "Thanh toan le phi ho so 000.00.12.H62-241231-0001"
                ],
                s
            ),
            "8e92fbf4fff5c34f1491600b44737ae2a9f530620637ed82e296e556b1e3b2fe"
        );
        assert_eq!(
            dvcqg_checksum(
                &[
                    "INIT",
                    "1.0.6",
                    "000.00.00.H62",
                    "DVC241231ABCDEFGHJKL",
                    "150000",
                    "PAY",
                    "1",
                    "1",
                    "vi-VN",
                    "VND",
                    "PAYMENT",
                    "Lệ phí hộ tịch, hồ sơ 000.00.12.H62-241231-0001",
                    "20241231100000",
                    "203.0.113.10"
                ],
                s
            ),
            "126b21e0cf9c8e3edebdab5b3b05254e8639870063ed63c29720d3858593ce32"
        );
    }
}
