//! Forgeries: every way of changing a signed gateway message that must make verification fail.
//!
//! Each generator takes one validly signed message and returns altered copies: every field
//! changed, dropped or duplicated, values re-encoded so that their bytes differ, the signature
//! computed with another hash type or key (a rotated-out secret included), truncated or
//! extended. Alterations that keep the message's meaning (reordering VNPAY's parameters, `%20`
//! for `+`, the case of the hex digits, the order of JSON keys) are not forgeries and are not
//! produced. The tests feed these to the adapters (≥ 10,000 per gateway) and a sample to the
//! server over HTTP.

use rand::Rng;
use rand::rngs::StdRng;

use super::sign;

/// Alters one character of `s` (never to the same character).
fn tweak(s: &str, rng: &mut StdRng) -> String {
    if s.is_empty() {
        return "x".into();
    }
    let chars: Vec<char> = s.chars().collect();
    let i = rng.gen_range(0..chars.len());
    let mut out = chars.clone();
    let c = chars[i];
    out[i] = match c {
        '0'..='8' => char::from_u32(c as u32 + 1).unwrap_or('9'),
        '9' => '0',
        'a'..='y' | 'A'..='Y' => char::from_u32(c as u32 + 1).unwrap_or('z'),
        'z' => 'a',
        'Z' => 'A',
        ' ' => '_',
        _ => 'x',
    };
    out.into_iter().collect()
}

fn split_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn join_query(p: &[(String, String)]) -> String {
    p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// VNPAY: forgeries of a signed IPN query string. `secret` is the merchant's, `old_secret` one
/// that was rotated out.
pub fn vnpay(query: &str, secret: &str, old_secret: &str, rng: &mut StdRng) -> Vec<String> {
    let pairs = split_query(query);
    let hash_at = pairs.iter().position(|(k, _)| k == "vnp_SecureHash").unwrap_or(pairs.len().saturating_sub(1));
    let unsigned: Vec<(String, String)> = pairs.iter().filter(|(k, _)| k != "vnp_SecureHash").cloned().collect();
    let decoded: Vec<(String, String)> = unsigned
        .iter()
        .map(|(k, v)| (sign::query_unescape(k).unwrap_or_default(), sign::query_unescape(v).unwrap_or_default()))
        .collect();
    let data = sign::vnpay_signed_query(secret, &decoded);
    let data = data.rsplit_once("&vnp_SecureHash=").map(|(d, _)| d.to_owned()).unwrap_or_default();
    let mut out = Vec::new();
    for i in 0..pairs.len() {
        let (k, v) = &pairs[i];
        // Change the value (a tweak of its encoded form decodes to another value).
        let mut p = pairs.clone();
        p[i].1 = tweak(v, rng);
        if sign::query_unescape(&p[i].1) != sign::query_unescape(v) {
            out.push(join_query(&p));
        }
        // Replace the value by another, or empty it (an empty value leaves the hash data).
        let mut p = pairs.clone();
        p[i].1 = if v.is_empty() { "1".into() } else { format!("{v}{}", rng.gen_range(0..10)) };
        out.push(join_query(&p));
        if k != "vnp_SecureHash" {
            let mut p = pairs.clone();
            p[i].1 = String::new();
            out.push(join_query(&p));
        }
        // Drop the field.
        let mut p = pairs.clone();
        p.remove(i);
        out.push(join_query(&p));
        // Duplicate it, with the same or another value.
        let mut p = pairs.clone();
        p.insert(i, (k.clone(), v.clone()));
        out.push(join_query(&p));
        let mut p = pairs.clone();
        p.push((k.clone(), tweak(v, rng)));
        out.push(join_query(&p));
        // Re-encode so that the bytes differ: a literal '+' for the space, Latin-1 for UTF-8.
        if v.contains('+') {
            let mut p = pairs.clone();
            p[i].1 = v.replacen('+', "%2B", 1);
            out.push(join_query(&p));
        }
        if v.contains("%C3%") || v.contains("%E1%") {
            let mut p = pairs.clone();
            p[i].1 = v.replacen("%C3%AD", "%ED", 1).replacen("%E1%BB%87", "%EA", 1).replacen("%C3%A1", "%E1", 1);
            if p[i].1 != *v {
                out.push(join_query(&p));
            }
        }
    }
    // Another vnp_ field that VNPAY did not sign.
    let mut p = pairs.clone();
    p.push(("vnp_Extra".into(), format!("{}", rng.gen_range(1..1000))));
    out.push(join_query(&p));
    // Other hash types and keys over the same data.
    let with_hash = |h: String| {
        let mut p = pairs.clone();
        p[hash_at].1 = h;
        join_query(&p)
    };
    use sha2::Digest as _;
    out.push(with_hash(sign::hmac_sha256(secret, &data)));
    out.push(with_hash(hex::encode(sha2::Sha256::digest(format!("{secret}{data}")))));
    out.push(with_hash(hex::encode(sha2::Sha512::digest(format!("{secret}{data}")))));
    out.push(with_hash(sign::hmac_sha512(old_secret, &data)));
    out.push(with_hash(sign::hmac_sha512(&format!("{secret} "), &data)));
    out.push(with_hash(sign::hmac_sha512(secret, &format!("{data}&"))));
    let h = &pairs[hash_at].1;
    out.push(with_hash(h[..h.len() - 2].to_owned()));
    out.push(with_hash(format!("{h}00")));
    out.push(with_hash(tweak(h, rng)));
    out.push(with_hash(String::new()));
    out
}

fn json_fields(body: &str) -> Vec<(String, serde_json::Value)> {
    // The order of keys does not matter to a JSON reader, so it is not a forgery.
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

fn render(fields: &[(String, serde_json::Value)]) -> String {
    let inner: Vec<String> =
        fields.iter().map(|(k, v)| format!("{}:{}", serde_json::Value::String(k.clone()), v)).collect();
    format!("{{{}}}", inner.join(","))
}

/// MoMo: forgeries of a signed IPN body.
pub fn momo(body: &str, secret: &str, old_secret: &str, access_key: &str, rng: &mut StdRng) -> Vec<String> {
    let fields = json_fields(body);
    let mut out = Vec::new();
    for i in 0..fields.len() {
        let (k, v) = &fields[i];
        // Change the value, keeping its type.
        let mut f = fields.clone();
        f[i].1 = match v {
            serde_json::Value::String(s) => serde_json::Value::String(tweak(s, rng)),
            serde_json::Value::Number(n) => serde_json::json!(n.as_i64().unwrap_or(0) + rng.gen_range(1..100)),
            other => other.clone(),
        };
        out.push(render(&f));
        // Change its type: numbers as strings and strings as numbers.
        let mut f = fields.clone();
        f[i].1 = match v {
            serde_json::Value::String(s) => serde_json::json!(s.len()),
            serde_json::Value::Number(n) => serde_json::Value::String(n.to_string()),
            other => other.clone(),
        };
        out.push(render(&f));
        // A float where an integer was.
        if let serde_json::Value::Number(n) = v {
            let mut f = fields.clone();
            f[i].1 = serde_json::json!(n.as_f64().unwrap_or(0.0) + 0.5);
            out.push(render(&f));
        }
        // Drop it; duplicate it.
        let mut f = fields.clone();
        f.remove(i);
        out.push(render(&f));
        let mut f = fields.clone();
        f.insert(i, (k.clone(), v.clone()));
        out.push(render(&f));
        // The same text in another Unicode form (NFD: a base letter plus a combining mark).
        if let serde_json::Value::String(s) = v
            && s.contains('ô')
        {
            let mut f = fields.clone();
            f[i].1 = serde_json::Value::String(s.replacen('ô', "o\u{302}", 1));
            out.push(render(&f));
        }
    }
    // Other hash types and keys over the same raw string.
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let s = |v: serde_json::Value| match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    let raw = sign::momo_raw(&[
        ("accessKey", access_key.to_owned()),
        ("amount", s(get("amount"))),
        ("extraData", s(get("extraData"))),
        ("message", s(get("message"))),
        ("orderId", s(get("orderId"))),
        ("orderInfo", s(get("orderInfo"))),
        ("orderType", s(get("orderType"))),
        ("partnerCode", s(get("partnerCode"))),
        ("payType", s(get("payType"))),
        ("requestId", s(get("requestId"))),
        ("responseTime", s(get("responseTime"))),
        ("resultCode", s(get("resultCode"))),
        ("transId", s(get("transId"))),
    ]);
    let with_sig = |sig: String| {
        let mut f = fields.clone();
        if let Some(slot) = f.iter_mut().find(|(k, _)| k == "signature") {
            slot.1 = serde_json::Value::String(sig);
        }
        render(&f)
    };
    use sha2::Digest as _;
    out.push(with_sig(sign::hmac_sha512(secret, &raw)));
    out.push(with_sig(hex::encode(sha2::Sha256::digest(format!("{secret}{raw}")))));
    out.push(with_sig(sign::hmac_sha256(old_secret, &raw)));
    out.push(with_sig(sign::hmac_sha256(secret, &raw.replace("accessKey=", "accesskey="))));
    out.push(with_sig(sign::hmac_sha256(secret, &format!("{raw}&payType={}", s(get("payType"))))));
    out.push(with_sig(String::new()));
    let sig = s(get("signature"));
    out.push(with_sig(sig[..sig.len().saturating_sub(1)].to_owned()));
    out.push(with_sig(tweak(&sig, rng)));
    out
}

/// ZaloPay: forgeries of a signed callback body.
pub fn zalopay(body: &str, key2: &str, old_key2: &str, key1: &str, rng: &mut StdRng) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let data = v["data"].as_str().unwrap_or_default().to_owned();
    let mac = v["mac"].as_str().unwrap_or_default().to_owned();
    let env = |data: &str, mac: &str| serde_json::json!({"data": data, "mac": mac, "type": 1}).to_string();
    let mut out = Vec::new();
    // Every character of data changed in turn (the MAC covers it exactly).
    for _ in 0..40 {
        out.push(env(&tweak(&data, rng), &mac));
    }
    // data re-serialised: spaces, another key order, a field dropped, duplicated.
    out.push(env(&data.replace(",", ", "), &mac));
    out.push(env(&data.replacen('{', "{ ", 1), &mac));
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&data) {
        let keys: Vec<String> = m.keys().cloned().collect();
        for k in &keys {
            let mut m2 = m.clone();
            m2.remove(k);
            out.push(env(&serde_json::Value::Object(m2).to_string(), &mac));
            let dup = data.replacen('{', &format!("{{{}:{},", serde_json::Value::String(k.clone()), m[k]), 1);
            out.push(env(&dup, &mac));
        }
        // The same fields in another key order.
        let sorted: std::collections::BTreeMap<String, serde_json::Value> = m.clone().into_iter().collect();
        let reordered = serde_json::to_string(&sorted).unwrap_or_default();
        if reordered != data {
            out.push(env(&reordered, &mac));
        }
    }
    // Other keys and hash types.
    use sha2::Digest as _;
    out.push(env(&data, &sign::zalopay_mac(key1, &data)));
    out.push(env(&data, &sign::zalopay_mac(old_key2, &data)));
    out.push(env(&data, &sign::hmac_sha512(key2, &data)));
    out.push(env(&data, &hex::encode(sha2::Sha256::digest(format!("{key2}{data}")))));
    out.push(env(&data, &tweak(&mac, rng)));
    out.push(env(&data, &mac[..mac.len() - 2]));
    out.push(env(&data, ""));
    // The envelope: fields dropped, duplicated, retyped.
    out.push(serde_json::json!({"data": data, "type": 1}).to_string());
    out.push(serde_json::json!({"mac": mac, "type": 1}).to_string());
    out.push(format!(r#"{{"data":{},"mac":"{mac}","mac":"{mac}","type":1}}"#, serde_json::Value::String(data.clone())));
    out.push(format!(r#"{{"data":{},"data":"{{}}","mac":"{mac}","type":1}}"#, serde_json::Value::String(data.clone())));
    out.push(serde_json::json!({"data": serde_json::from_str::<serde_json::Value>(&data).unwrap_or_default(), "mac": mac, "type": 1}).to_string());
    out
}

/// DVCQG: forgeries of a checksummed payment-result body. `secret` is the platform's, `old_secret`
/// one rotated out. A string `SoTien` written as a JSON integer, extra keys and the case of the
/// hex digits keep the meaning and are not produced.
pub fn dvcqg(body: &str, secret: &str, old_secret: &str, rng: &mut StdRng) -> Vec<String> {
    const FIELDS: [&str; 10] = crate::gateway::dvcqg::CALLBACK_FIELDS;
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(body) else { return vec![] };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let values: Vec<String> = FIELDS.iter().map(|f| m.get(*f).map(text).unwrap_or_default()).collect();
    let with = |k: &str, v: serde_json::Value| {
        let mut m2 = m.clone();
        m2.insert(k.to_owned(), v);
        serde_json::Value::Object(m2).to_string()
    };
    let mut out = Vec::new();
    for (i, f) in FIELDS.iter().enumerate() {
        let v = &values[i];
        out.push(with(f, serde_json::Value::String(tweak(v, rng))));
        out.push(with(f, serde_json::Value::String(format!("{v}{}", rng.gen_range(0..10)))));
        if !v.is_empty() {
            out.push(with(f, serde_json::Value::String(String::new())));
            out.push(with(f, serde_json::Value::String(format!(" {v}"))));
        }
        // Dropped; given twice (the first copy altered); as a number or null.
        let mut dropped = m.clone();
        dropped.remove(*f);
        out.push(serde_json::Value::Object(dropped).to_string());
        out.push(body.replacen(
            '{',
            &format!("{{{}:{},", serde_json::Value::String((*f).into()), serde_json::Value::String(tweak(v, rng))),
            1,
        ));
        out.push(with(f, serde_json::Value::Null));
        if *f != "SoTien" {
            out.push(with(f, serde_json::json!(rng.gen_range(0..100))));
        } else {
            out.push(with(f, serde_json::json!(v.parse::<f64>().unwrap_or(1.0) + 0.5)));
            out.push(with(f, serde_json::json!(-1)));
        }
    }
    // Other algorithms, keys, orders and framings of the checksummed string.
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let joined = refs.join("|");
    let mut init_order = refs.clone();
    init_order.swap(8, 9);
    use sha2::Digest as _;
    let sha = |s: String| hex::encode(sha2::Sha256::digest(s.as_bytes()));
    for sig in [
        sign::hmac_sha256(secret, &joined),
        sign::hmac_sha256(secret, &format!("{joined}|")),
        sign::dvcqg_checksum(&refs, old_secret),
        sign::dvcqg_checksum(&init_order, secret),
        sign::dvcqg_checksum(&refs[..9], secret),
        sha(joined.clone()),
        sha(format!("{secret}|{joined}")),
        sha(format!("{joined}{secret}")),
        sha(format!("{joined}|{secret}|")),
        hex::encode(sha2::Sha512::digest(format!("{joined}|{secret}").as_bytes())),
    ] {
        out.push(with("MaXacThuc", serde_json::Value::String(sig)));
    }
    let sig = m.get("MaXacThuc").map(text).unwrap_or_default();
    out.push(with("MaXacThuc", serde_json::Value::String(tweak(&sig, rng))));
    out.push(with("MaXacThuc", serde_json::Value::String(sig[..sig.len().saturating_sub(1)].to_owned())));
    out.push(with("MaXacThuc", serde_json::Value::String(String::new())));
    out.push(with("MaXacThuc", serde_json::Value::Null));
    let mut unsigned = m.clone();
    unsigned.remove("MaXacThuc");
    out.push(serde_json::Value::Object(unsigned).to_string());
    out.push(format!("[{body}]"));
    out.push(body[..body.len() / 2].to_owned());
    out
}
