//! Dashboard session credentials (pure): the session id a browser holds, the hash the database
//! keeps, and the CSRF token every form carries.
//!
//! A session id is 256 random bits in hex; only its SHA-256 is stored. The CSRF token of a
//! session is HMAC-SHA256(session id, "feerecon-csrf-v1") in hex: bound to the session, derived
//! again on each request (nothing more to store), unguessable without the id, which the browser
//! keeps in an HttpOnly cookie that scripts cannot read. Tokens are compared in constant time.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::Secret;

/// A freshly minted session: the id for the cookie (shown once) and the hash to store.
pub struct NewSessionId {
    pub id: Secret,
    pub sha256: String,
}

/// 256 random bits in lower-case hex.
pub fn random_token() -> Secret {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    Secret::new(hex::encode(b))
}

/// Mints a session id.
pub fn new_session_id() -> NewSessionId {
    let id = random_token();
    let sha256 = session_hash(&id);
    NewSessionId { id, sha256 }
}

/// The stored form of a session id.
pub fn session_hash(id: &Secret) -> String {
    super::sha256_hex(id.expose().as_bytes())
}

/// Whether a presented cookie value has the shape of a session id (64 lower-case hex digits):
/// anything else is refused before touching the database.
pub fn well_formed(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The CSRF token of a session.
pub fn csrf_token(session_id: &Secret) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(session_id.expose().as_bytes())
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(b"feerecon-csrf-v1");
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `presented` equals `expected`, in time independent of where they differ.
pub fn tokens_match(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_id_is_random_hashed_and_well_formed() {
        let a = new_session_id();
        let b = new_session_id();
        assert_ne!(a.id.expose(), b.id.expose());
        assert!(well_formed(a.id.expose()));
        assert_eq!(a.sha256, session_hash(&a.id));
        assert_ne!(a.sha256, a.id.expose(), "the stored form is not the id");
        for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65)] {
            assert!(!well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn the_csrf_token_is_bound_to_its_session() {
        let a = new_session_id();
        let b = new_session_id();
        let ta = csrf_token(&a.id);
        assert_eq!(ta, csrf_token(&a.id), "derived again the same");
        assert_ne!(ta, csrf_token(&b.id));
        assert!(!ta.contains(a.id.expose()));
        assert!(tokens_match(&ta, &csrf_token(&a.id)));
        assert!(!tokens_match(&ta, &csrf_token(&b.id)));
        assert!(!tokens_match("", &ta));
        assert!(!tokens_match(&ta[..63], &ta));
    }
}
