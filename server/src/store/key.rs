//! Index keys that fit every database's index limit.
//!
//! A B-tree entry on PostgreSQL holds at most about 2,700 bytes ("index row size exceeds
//! btree maximum"), and FHIR strings may be up to 1 MB (json.html). So a text value longer
//! than [`KEY_BYTES`] is indexed as its first [`PREFIX_BYTES`] followed by its SHA-256,
//! written as 64 characters below U+0020 (which no indexed value holds: the input rules
//! refuse them). The same rewriting of a searched value keeps equality exact; a prefix range
//! stays exact for a searched prefix up to [`PREFIX_BYTES`] (the digest sorts below any
//! text that could follow), and a longer prefix matches on its first [`PREFIX_BYTES`] (every
//! true match, and long values that share those bytes). `:contains` sees the first
//! [`PREFIX_BYTES`] of a long value. The resource itself is stored whole.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::models::IndexRows;

/// Values up to this many bytes are indexed as written.
pub const KEY_BYTES: usize = 512;

/// How much of a longer value its key keeps before the digest.
pub const PREFIX_BYTES: usize = KEY_BYTES - 2 * 32;

/// The key of `value` for an equality lookup.
pub fn exact(value: &str) -> Cow<'_, str> {
    if value.len() <= KEY_BYTES {
        return Cow::Borrowed(value);
    }
    let mut key = String::with_capacity(KEY_BYTES);
    key.push_str(prefix(value));
    for byte in Sha256::digest(value.as_bytes()) {
        key.push(nibble(byte >> 4));
        key.push(nibble(byte & 0x0f));
    }
    Cow::Owned(key)
}

/// What of a searched prefix the keys can compare: all of it up to [`PREFIX_BYTES`].
pub fn prefix(value: &str) -> &str {
    if value.len() <= PREFIX_BYTES {
        return value;
    }
    let mut end = PREFIX_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// One hex digit as U+0001..=U+0010.
fn nibble(n: u8) -> char {
    char::from(n + 1)
}

/// `rows` with every indexed text value rewritten to its key; borrowed when all fit.
pub fn bounded(rows: &IndexRows) -> Cow<'_, IndexRows> {
    let long = |s: &String| s.len() > KEY_BYTES;
    let any_long = rows.tokens.iter().any(|r| long(&r.code) || long(&r.system))
        || rows.strings.iter().any(|r| long(&r.norm))
        || rows
            .quantities
            .iter()
            .any(|r| long(&r.code) || long(&r.system))
        || rows.references.iter().any(|r| long(&r.url))
        || rows.uris.iter().any(|r| long(&r.uri));
    if !any_long {
        return Cow::Borrowed(rows);
    }
    let key = |s: &mut String| {
        if let Cow::Owned(k) = exact(s) {
            *s = k;
        }
    };
    let mut rows = rows.clone();
    for r in &mut rows.tokens {
        key(&mut r.code);
        key(&mut r.system);
    }
    for r in &mut rows.strings {
        key(&mut r.norm);
    }
    for r in &mut rows.quantities {
        key(&mut r.code);
        key(&mut r.system);
    }
    for r in &mut rows.references {
        key(&mut r.url);
    }
    for r in &mut rows.uris {
        key(&mut r.uri);
    }
    Cow::Owned(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_their_own_keys() {
        assert!(matches!(exact("nguyen"), Cow::Borrowed("nguyen")));
        let at_limit = "a".repeat(KEY_BYTES);
        assert_eq!(exact(&at_limit), at_limit.as_str());
    }

    #[test]
    fn long_values_get_a_bounded_key_that_keeps_their_prefix_and_tells_them_apart() {
        let a = format!("{}a", "ễ".repeat(400));
        let b = format!("{}b", "ễ".repeat(400));
        let (ka, kb) = (exact(&a), exact(&b));
        assert!(ka.len() <= KEY_BYTES, "{}", ka.len());
        assert_ne!(ka, kb);
        assert_eq!(ka, exact(&a));
        assert!(ka.starts_with(prefix(&a)));
        assert!(prefix(&a).len() <= PREFIX_BYTES && a.starts_with(prefix(&a)));
        // The digest sorts below every character an indexed value can hold.
        assert!(ka[prefix(&a).len()..].chars().all(|c| c < ' '));
    }
}
