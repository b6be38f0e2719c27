//! The personal QR token: 130 random bits written as 26 Crockford base-32 digits
//! (`0-9 A-Z` without `I L O U`, so that a person who reads the code aloud cannot confuse
//! 1/I/L or 0/O) and one check character of ISO/IEC 7064 MOD 37-2 (`0-9 A-Z *`), a pure
//! system over a prime modulus: it catches every single wrong character and every swap of
//! two neighbours, the check character included. Every character is in the QR alphanumeric
//! set, so the code needs 5.5 bits per character instead of 8.
//!
//! The payload of the code is `HB1:` and the token (31 characters: a version 2 QR code at
//! error correction M, 25 × 25 modules). A scanner's output is read leniently (surrounding
//! whitespace, lower case, the prefix optional) and strictly checked: an `I`, `L`, `O` or
//! `U` among the digits (a person typing O for 0) is a misread like a failed check.

/// What a QR code of Healthbook starts with (the version of this format).
pub const PAYLOAD_PREFIX: &str = "HB1:";

/// Digits of the token without the check character.
const DIGITS: usize = 26;

/// Crockford's base-32 alphabet.
const BASE32: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// ISO/IEC 7064's alphabet for MOD 37-2 (the values 0..=36).
const BASE37: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*";

/// A well-formed token (its check character verified), upper case.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    /// Never the token itself: it is a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// Why a scanned text is not a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misread {
    /// Not the shape of a token at all (length, characters, another code).
    NotAToken,
    /// The shape of a token whose check character does not match: a misread character.
    CheckFailed,
}

impl Token {
    /// A new random token (130 bits from the operating system's CSPRNG).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 17];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        let mut digits = String::with_capacity(DIGITS + 1);
        // 26 digits of 5 bits from the first 130 bits.
        for i in 0..DIGITS {
            let bit = i * 5;
            let word = (u16::from(bytes[bit / 8]) << 8) | u16::from(bytes[bit / 8 + 1]);
            let value = (word >> (11 - bit % 8)) & 0x1f;
            digits.push(char::from(BASE32[usize::from(value)]));
        }
        digits.push(check_character(&digits));
        Token(digits)
    }

    /// Reads what a scanner (or a person) delivered.
    ///
    /// # Errors
    /// [`Misread::NotAToken`] or [`Misread::CheckFailed`].
    pub fn parse(scanned: &str) -> Result<Self, Misread> {
        let text = scanned.trim().to_ascii_uppercase();
        let text = text.strip_prefix(PAYLOAD_PREFIX).unwrap_or(&text);
        if text.len() != DIGITS + 1 {
            return Err(Misread::NotAToken);
        }
        let (digits, check) = text.split_at(DIGITS);
        if !text.bytes().all(|b| BASE37.contains(&b)) {
            return Err(Misread::NotAToken);
        }
        // I, L, O and U are never written in the digits: one there is a misread (O for 0).
        if !digits.bytes().all(|b| BASE32.contains(&b)) {
            return Err(Misread::CheckFailed);
        }
        let check = char::from(check.as_bytes()[0]);
        if check_character(digits) != check {
            return Err(Misread::CheckFailed);
        }
        Ok(Token(text.to_owned()))
    }

    /// The token as written (27 characters).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the QR code holds.
    pub fn payload(&self) -> String {
        format!("{PAYLOAD_PREFIX}{}", self.0)
    }
}

/// ISO/IEC 7064 MOD 37-2: the character `c` for which the weighted sum of `digits c`
/// (weights 2^n … 2, 1) is 1 modulo 37.
fn check_character(digits: &str) -> char {
    let value = |c: u8| BASE37.iter().position(|&b| b == c).unwrap_or(0);
    let p = digits.bytes().fold(0, |p, c| (p + value(c)) * 2 % 37);
    char::from(BASE37[(38 - p) % 37])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_well_formed_and_in_the_qr_alphanumeric_set() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 27);
        let alphanumeric = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
        assert!(a.payload().chars().all(|c| alphanumeric.contains(c)));
        assert_eq!(Token::parse(a.as_str()), Ok(a.clone()));
        assert_eq!(Token::parse(&a.payload()), Ok(a.clone()));
        // As a scanner may deliver it.
        let sloppy = format!("  {}\n", a.payload().to_lowercase());
        assert_eq!(Token::parse(&sloppy), Ok(a));
        assert!(!format!("{:?}", b).contains(b.as_str()));
    }

    #[test]
    fn every_single_wrong_character_and_every_neighbour_swap_is_caught() {
        for _ in 0..50 {
            let token = Token::generate();
            let text = token.as_str().as_bytes().to_vec();
            for i in 0..text.len() {
                for &c in BASE37 {
                    if c == text[i] {
                        continue;
                    }
                    let mut wrong = text.clone();
                    wrong[i] = c;
                    let wrong = String::from_utf8(wrong).unwrap();
                    assert_eq!(
                        Token::parse(&wrong),
                        Err(Misread::CheckFailed),
                        "{wrong} read as a token"
                    );
                }
                if i + 1 < text.len() && text[i] != text[i + 1] {
                    let mut swapped = text.clone();
                    swapped.swap(i, i + 1);
                    let swapped = String::from_utf8(swapped).unwrap();
                    assert!(Token::parse(&swapped).is_err(), "{swapped}");
                }
            }
        }
    }

    #[test]
    fn other_texts_are_not_tokens() {
        assert_eq!(Token::parse(""), Err(Misread::NotAToken));
        assert_eq!(Token::parse("HC1:6BFOXN%TS3DH"), Err(Misread::NotAToken));
        assert_eq!(
            Token::parse("https://example.org/0123456789ABCDEFGHJKMNPQRS"),
            Err(Misread::NotAToken)
        );
        assert_eq!(
            Token::parse("ĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐĐ"),
            Err(Misread::NotAToken)
        );
    }
}
