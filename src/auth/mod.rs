//! Users' credentials: API tokens and dashboard passwords.
//!
//! A token reads `frt_<id>_<secret>`: the id (public, shown by `token list`) finds the row, the
//! secret (256 random bits) is checked against its SHA-256, in constant time. Only the hash is
//! stored, so a database dump grants nothing. A fast hash suffices for a random 256-bit secret;
//! passwords, which people choose, are hashed with argon2id instead.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::Secret;

pub mod session;

const TOKEN_PREFIX: &str = "frt_";

/// A freshly minted token: the id to store and show, the whole token to print once, and the hash.
pub struct NewToken {
    pub id: String,
    pub token: Secret,
    pub secret_hash: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Mints a token.
pub fn new_token() -> NewToken {
    let id = random_hex(8);
    let secret = random_hex(32);
    let secret_hash = sha256_hex(secret.as_bytes());
    NewToken { token: Secret::new(format!("{TOKEN_PREFIX}{id}_{secret}")), id, secret_hash }
}

/// A presented token split into its id and secret; `None` when it is not of our form.
pub fn split_token(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hexish = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id, 16) && hexish(secret, 64)).then_some((id, secret))
}

/// Whether `secret` hashes to `stored_hash`, compared in constant time.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    let computed = sha256_hex(secret.as_bytes());
    computed.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &Secret) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("Failed to hash the password: {e}"))
}

/// Checks a password against a stored PHC string.
pub fn verify_password(password: &Secret, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| Argon2::default().verify_password(password.expose().as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A user name: 1–64 characters of letters, digits, `.`, `_`, `-` and `@`.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok { Ok(()) } else { Err(format!("user name {name:?} must be 1 to 64 letters, digits, '.', '_', '-' or '@'")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_splits_back_into_its_id_and_verifies() {
        let t = new_token();
        let (id, secret) = split_token(t.token.expose()).unwrap();
        assert_eq!(id, t.id);
        assert!(secret_matches(secret, &t.secret_hash));
        assert!(
            !secret_matches(&secret.replace('a', "b").replace('1', "2"), &t.secret_hash)
                || !secret.contains(['a', '1'])
        );
    }

    #[test]
    fn malformed_tokens_do_not_split() {
        for bad in ["", "frt_", "frt_abc_def", "xyz_0123456789abcdef_00", "Bearer x"] {
            assert!(split_token(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password(&Secret::new("correct horse")).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&Secret::new("correct horse"), &h));
        assert!(!verify_password(&Secret::new("wrong horse"), &h));
        assert!(!verify_password(&Secret::new("correct horse"), "garbage"));
    }

    #[test]
    fn user_names_are_checked() {
        assert!(check_user_name("finance.lan@vp").is_ok());
        assert!(check_user_name("").is_err());
        assert!(check_user_name("a b").is_err());
    }
}
