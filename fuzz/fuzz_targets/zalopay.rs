//! ZaloPay callback: the verifier on raw input (never accepted) and on `data` fuzzed and then
//! MAC'd with key2, which reaches the order parsing behind the MAC. The first byte picks the mode.
#![no_main]

mod common;

use feerecon::gateway::zalopay::verify_callback;
use feerecon::simulator::sign;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let cfg = common::zalopay();
    if mode % 2 == 0 {
        common::never_valid(&verify_callback(&cfg, rest), rest);
        return;
    }
    let d = String::from_utf8_lossy(rest);
    let body =
        serde_json::json!({"data": d, "mac": sign::zalopay_mac(common::SECRET, &d), "type": i64::from(mode / 2) % 3});
    common::check_accepted(&verify_callback(&cfg, body.to_string().as_bytes()));
});
