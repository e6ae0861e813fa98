//! Identifiers generated here: a short prefix saying what it names, then 128 random bits in hex
//! (`pay_3f2a...`). Random rather than sequential, so ids reveal no volumes and two instances never clash.

use rand::RngCore;

pub fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{prefix}_{}", hex::encode(b))
}
