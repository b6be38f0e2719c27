//! Rebuilds the server when a migration is added or changed: `embed_migrations!` reads
//! `migrations/` at compile time, and cargo does not watch that folder by itself (a new
//! migration was silently left out of an incremental build).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
