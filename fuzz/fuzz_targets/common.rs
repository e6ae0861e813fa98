//! What the gateway targets share: a configuration per gateway with known secrets, and the
//! property every target checks on top of "no panic": a message that the fuzzer did not sign
//! with the secret is never accepted.

#![allow(dead_code)]

use feerecon::config::{DvcqgConfig, MomoConfig, VnpayConfig, ZalopayConfig};
use feerecon::domain::Secret;
use feerecon::gateway::Verification;

pub const SECRET: &str = "fuzz-current-secret";
pub const PREVIOUS: &str = "fuzz-previous-secret";

pub fn vnpay() -> VnpayConfig {
    VnpayConfig {
        tmn_code: "FUZZ0001".into(),
        hash_secret: Secret::new(SECRET),
        hash_secret_previous: Some(Secret::new(PREVIOUS)),
        pay_url: "http://x".into(),
        api_url: "http://x".into(),
        server_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    }
}

pub fn momo() -> MomoConfig {
    MomoConfig {
        partner_code: "MOMOFUZZ".into(),
        access_key: Secret::new("fuzz-access"),
        secret_key: Secret::new(SECRET),
        secret_key_previous: Some(Secret::new(PREVIOUS)),
        endpoint: "http://x".into(),
    }
}

pub fn zalopay() -> ZalopayConfig {
    ZalopayConfig {
        app_id: "2554".into(),
        key1: Secret::new("fuzz-key1"),
        key2: Secret::new(SECRET),
        key2_previous: Some(Secret::new(PREVIOUS)),
        endpoint: "http://x".into(),
    }
}

pub fn dvcqg() -> DvcqgConfig {
    DvcqgConfig {
        partner_code: "000.00.00.H62".into(),
        secret: Secret::new(SECRET),
        secret_previous: Some(Secret::new(PREVIOUS)),
        init_url: "http://x".into(),
        query_url: "http://x".into(),
        bill_url: "http://x".into(),
        beneficiary: feerecon::config::parse_beneficiary("1,2,X").unwrap_or_else(|e| panic!("{e}")),
        token: None,
        server_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        lookup_allow: vec![],
    }
}

/// An accepted message carries a whole, non-negative amount (the verifier's own checks).
pub fn check_accepted(v: &Verification) {
    if let Verification::Valid { event: Ok(e), .. } = v {
        if let Some(a) = e.amount {
            assert!(a.dong() >= 0, "a negative amount was accepted: {e:?}");
        }
    }
}

/// Raw fuzz input cannot know the secret: it must never verify.
pub fn never_valid(v: &Verification, input: &[u8]) {
    assert!(
        !matches!(v, Verification::Valid { .. }),
        "an unsigned message verified: {:?}",
        String::from_utf8_lossy(input)
    );
}
