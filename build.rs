//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds the files of
//! `migrations/` at compile time, and cargo does not otherwise know that they are inputs (a new
//! migration would be left out of the binary until some Rust file changed).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
