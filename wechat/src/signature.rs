//! Callback signatures.
//!
//! WeChat signs every callback with `signature = sha1(sort(token, timestamp, nonce))`;
//! in compatible and safe mode a POST also carries
//! `msg_signature = sha1(sort(token, timestamp, nonce, Encrypt))`. Both are lower-case
//! hex. The parts are sorted as byte strings and concatenated without a separator.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature is well formed but does not match the computed one.
    #[error("signature does not match")]
    Mismatch,
    /// The signature is not 40 hexadecimal digits, so it cannot be a SHA-1.
    #[error("signature is not 40 hexadecimal digits")]
    Malformed,
}

impl SignatureError {
    /// Returns a short stable code for metric labels and log fields.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Mismatch => "bad_signature",
            Self::Malformed => "malformed_signature",
        }
    }
}

/// Computes the plain callback `signature` over token, timestamp and nonce.
pub fn signature(token: &str, timestamp: &str, nonce: &str) -> String {
    hex::encode(sorted_sha1(&mut [token, timestamp, nonce]))
}

/// Computes the `msg_signature` over token, timestamp, nonce and the `Encrypt` text.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    hex::encode(sorted_sha1(&mut [token, timestamp, nonce, encrypt]))
}

/// Checks a plain callback `signature` in constant time.
pub fn verify_signature(
    token: &str,
    timestamp: &str,
    nonce: &str,
    given: &str,
) -> Result<(), SignatureError> {
    verify(&sorted_sha1(&mut [token, timestamp, nonce]), given)
}

/// Checks a `msg_signature` over the `Encrypt` text in constant time.
pub fn verify_msg_signature(
    token: &str,
    timestamp: &str,
    nonce: &str,
    encrypt: &str,
    given: &str,
) -> Result<(), SignatureError> {
    verify(&sorted_sha1(&mut [token, timestamp, nonce, encrypt]), given)
}

fn sorted_sha1(parts: &mut [&str]) -> [u8; 20] {
    // `str` orders by bytes, which is what WeChat's reference code sorts by.
    parts.sort_unstable();
    let mut hasher = Sha1::new();
    for part in parts.iter() {
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

fn verify(expected: &[u8; 20], given: &str) -> Result<(), SignatureError> {
    // Decoding first makes the comparison independent of hex letter case and keeps
    // it at a fixed 20 bytes; only the length (public) can short-circuit.
    let mut given_bytes = [0u8; 20];
    hex::decode_to_slice(given.as_bytes(), &mut given_bytes)
        .map_err(|_| SignatureError::Malformed)?;
    if bool::from(expected.ct_eq(&given_bytes)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_upper_case_hex_of_the_right_signature() {
        let sig = signature("test", "1410685589", "test").to_ascii_uppercase();
        assert_eq!(verify_signature("test", "1410685589", "test", &sig), Ok(()));
    }

    #[test]
    fn refuses_a_truncated_signature_as_malformed() {
        let sig = signature("test", "1410685589", "test");
        let err = verify_signature("test", "1410685589", "test", &sig[..39]).unwrap_err();
        assert_eq!(err.reason(), "malformed_signature");
    }
}
