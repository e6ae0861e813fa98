//! Hash chains: the audit log and the ledger link each row to the one before it.
//!
//! `hash(n) = SHA-256(raw 32 bytes of hash(n-1) ‖ canonical bytes of row n)`, written as lower-case
//! hex; the first row's predecessor is `GENESIS` (32 zero bytes). Changing, removing, inserting or
//! reordering any row changes every hash after it.

use sha2::{Digest, Sha256};

/// The predecessor of the first row: 32 zero bytes, in hex.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of a row whose predecessor's hash is `prev_hex`. A `prev_hex` that is not 64 hex
/// digits cannot link to anything and yields `None`.
pub fn link(prev_hex: &str, canonical: &[u8]) -> Option<String> {
    let mut prev = [0u8; 32];
    hex::decode_to_slice(prev_hex, &mut prev).ok()?;
    let hex = link_hex(&prev, canonical);
    Some(String::from_utf8_lossy(&hex).into_owned())
}

/// The hash of a row after the raw hash `prev`, as its 64 lower-case hex digits.
pub fn link_hex(prev: &[u8; 32], canonical: &[u8]) -> [u8; 64] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    let mut out = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(h.finalize(), &mut out);
    out
}

/// The canonical bytes of an audit-log row: the compact JSON array
/// `[seq, at, actor, action, subject, details]`, `at` in RFC 3339 UTC with microseconds
/// (`2024-07-15T02:30:00.000000Z`) and `details` as its compact JSON text.
pub fn audit_canonical(
    seq: i64,
    at: &chrono::DateTime<chrono::Utc>,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
) -> Vec<u8> {
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    serde_json::to_vec(&(seq, at, actor, action, subject, details))
        .expect("a tuple of strings and an integer serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_depends_on_both_the_predecessor_and_the_row() {
        let a = link(GENESIS, b"row").unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, link(GENESIS, b"rox").unwrap());
        assert_ne!(link(&a, b"row").unwrap(), a);
        assert!(link("zz", b"row").is_none());
        // Known answer: SHA-256 of 32 zero bytes followed by "abc".
        let mut data = vec![0u8; 32];
        data.extend_from_slice(b"abc");
        assert_eq!(link(GENESIS, b"abc").unwrap(), hex::encode(Sha256::digest(&data)));
    }
}
