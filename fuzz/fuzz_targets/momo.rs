//! MoMo IPN: the verifier on raw input (never accepted) and on a JSON body whose signature is
//! recomputed with the secret, which reaches the checks behind the signature. The first byte
//! picks the mode.
#![no_main]

mod common;

use feerecon::gateway::momo::{Ipn, ipn_raw_signature, verify_ipn};
use feerecon::simulator::sign;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let cfg = common::momo();
    if mode % 2 == 0 {
        common::never_valid(&verify_ipn(&cfg, rest), rest);
        return;
    }
    let Ok(serde_json::Value::Object(mut m)) = serde_json::from_slice::<serde_json::Value>(rest) else { return };
    m.insert("signature".into(), serde_json::Value::String(String::new()));
    let body = serde_json::Value::Object(m.clone()).to_string();
    let Ok(ipn) = serde_json::from_str::<Ipn>(&body) else { return };
    let raw = ipn_raw_signature("fuzz-access", &ipn);
    m.insert("signature".into(), serde_json::Value::String(sign::hmac_sha256(common::SECRET, &raw)));
    let body = serde_json::Value::Object(m).to_string();
    common::check_accepted(&verify_ipn(&cfg, body.as_bytes()));
});
