//! The server's QR secret and what is derived from it: the lookup key (HMAC-SHA256 of a
//! token, stored and indexed instead of the token, so that the table alone does not let
//! anyone find a person) and the sealing key (AES-256-GCM, so that the owner can be shown
//! their current code again while the stored form does not reveal it).

use base64::Engine;
use hmac::{Hmac, Mac};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use sha2::Sha256;

use super::token::Token;

/// The keys of one server (all replicas share them: they come from the configuration or
/// the database).
pub struct QrKeys {
    lookup: Vec<u8>,
    seal: LessSafeKey,
}

impl std::fmt::Debug for QrKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QrKeys(…)")
    }
}

/// Why a stored sealed token could not be opened (another secret, a damaged row).
#[derive(Debug)]
pub struct Unsealable;

impl QrKeys {
    /// The keys derived from `secret` (at least 32 bytes of randomness).
    pub fn from_secret(secret: &[u8]) -> Self {
        let derive = |label: &[u8]| -> Vec<u8> {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
            mac.update(label);
            mac.finalize().into_bytes().to_vec()
        };
        let seal = UnboundKey::new(&AES_256_GCM, &derive(b"healthbook qr seal v1"))
            .expect("a 32-byte AES-256 key");
        Self {
            lookup: derive(b"healthbook qr lookup v1"),
            seal: LessSafeKey::new(seal),
        }
    }

    /// What the database indexes for `token` (hex of its keyed hash).
    pub fn lookup(&self, token: &Token) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.lookup).expect("HMAC takes any key");
        mac.update(token.as_str().as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// `token` encrypted for storage, bound to `patient` (a sealed token copied to another
    /// person's row does not open).
    pub fn seal(&self, token: &Token, patient: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random source");
        let mut data = token.as_str().as_bytes().to_vec();
        self.seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(patient.as_bytes()),
                &mut data,
            )
            .expect("sealing a short token");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
    }

    /// The token sealed for `patient`.
    ///
    /// # Errors
    /// [`Unsealable`] when it was sealed under another secret or for someone else.
    pub fn open(&self, sealed: &str, patient: &str) -> Result<Token, Unsealable> {
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(sealed)
            .map_err(|_| Unsealable)?;
        if bytes.len() < NONCE_LEN {
            return Err(Unsealable);
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unsealable)?;
        let mut data = data.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, Aad::from(patient.as_bytes()), &mut data)
            .map_err(|_| Unsealable)?;
        let text = std::str::from_utf8(plain).map_err(|_| Unsealable)?;
        Token::parse(text).map_err(|_| Unsealable)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random secret (for a server that has none configured).
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret).expect("the operating system's random source");
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_keyed_and_sealed_tokens_open_only_for_their_owner() {
        let keys = QrKeys::from_secret(&new_secret());
        let other = QrKeys::from_secret(&new_secret());
        let token = Token::generate();
        assert_eq!(keys.lookup(&token), keys.lookup(&token));
        assert_ne!(keys.lookup(&token), other.lookup(&token));
        assert!(!keys.lookup(&token).contains(token.as_str()));
        let sealed = keys.seal(&token, "p1");
        assert!(!sealed.contains(token.as_str()));
        assert_eq!(keys.open(&sealed, "p1").unwrap(), token);
        assert!(keys.open(&sealed, "p2").is_err());
        assert!(other.open(&sealed, "p1").is_err());
        assert_ne!(sealed, keys.seal(&token, "p1"), "a fresh nonce each time");
    }
}
