//! VNPAY IPN and return query: the verifier on raw input (never accepted: the fuzzer does not
//! know the secret) and on input re-signed with the secret, which reaches the parsing behind the
//! signature check. The first byte picks the mode.
#![no_main]

mod common;

use feerecon::gateway::RawRequest;
use feerecon::gateway::vnpay::{Vnpay, verify_params};
use feerecon::simulator::sign;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let cfg = common::vnpay();
    let text = String::from_utf8_lossy(rest);
    if mode % 2 == 0 {
        let v = verify_params(&cfg, &text);
        common::never_valid(&v, rest);
        let raw = RawRequest { method: "POST".into(), body: rest.to_vec(), ..Default::default() };
        let v = Vnpay::new(cfg, reqwest_client()).verify_callback_pure(&raw);
        common::never_valid(&v, rest);
    } else {
        // `k=v` pairs split on newlines, signed as the simulator signs.
        let params: Vec<(String, String)> = text
            .split('\n')
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let q = sign::vnpay_signed_query(common::SECRET, &params);
        common::check_accepted(&verify_params(&cfg, &q));
    }
});

fn reqwest_client() -> reqwest::Client {
    reqwest::Client::new()
}
