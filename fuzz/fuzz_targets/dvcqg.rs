//! DVCQG payment result: the verifier on raw input (never accepted) and on a JSON body whose
//! `MaXacThuc` is recomputed over its ten fields with the secret, which reaches the checks behind
//! the checksum. The first byte picks the mode.
#![no_main]

mod common;

use feerecon::gateway::dvcqg::verify_callback;
use feerecon::simulator::sign;
use libfuzzer_sys::fuzz_target;

const FIELDS: [&str; 10] = feerecon::gateway::dvcqg::CALLBACK_FIELDS;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let cfg = common::dvcqg();
    if mode % 2 == 0 {
        common::never_valid(&verify_callback(&cfg, rest), rest);
        return;
    }
    let Ok(serde_json::Value::Object(mut m)) = serde_json::from_slice::<serde_json::Value>(rest) else { return };
    let mut values = Vec::new();
    for f in FIELDS {
        values.push(match m.get(f) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        });
    }
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    m.insert("MaXacThuc".into(), serde_json::Value::String(sign::dvcqg_checksum(&refs, common::SECRET)));
    let body = serde_json::Value::Object(m).to_string();
    common::check_accepted(&verify_callback(&cfg, body.as_bytes()));
});
