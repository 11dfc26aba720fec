//! Message encryption for compatible and safe mode.
//!
//! The key is `base64(EncodingAESKey + "=")` (32 bytes); the cipher is AES-256-CBC with
//! IV = key[0..16]. The plaintext is `random(16) ‖ len (u32 BE, bytes) ‖ msg ‖ appid`,
//! padded PKCS#7-style to a multiple of **32** (pad 1..=32). Standard 16-byte PKCS#7
//! unpadders reject about half of real messages, so padding is done by hand here.

use aes::Aes256;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::Rng as _;
use rand::distr::Alphanumeric;

use crate::signature;
use crate::xml;

/// WeChat pads to a multiple of 32 bytes, not the AES block size.
const PAD_BLOCK: usize = 32;
const AES_BLOCK: usize = 16;
const RANDOM_LEN: usize = 16;
const HEADER_LEN: usize = RANDOM_LEN + 4;
/// Length of an EncodingAESKey as shown on the admin console.
pub const ENCODING_AES_KEY_LEN: usize = 43;

/// Official EncodingAESKeys end with non-zero trailing bits, which the STANDARD engine
/// rejects (`InvalidLastSymbol`), so keys are decoded with this lenient engine.
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Why a message could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The EncodingAESKey is not 43 base64 characters decoding to 32 bytes.
    #[error("EncodingAESKey must be 43 base64 characters")]
    InvalidKey,
    /// The `Encrypt` text is not valid base64.
    #[error("ciphertext is not valid base64")]
    BadBase64,
    /// The ciphertext is empty or not a whole number of AES blocks.
    #[error("ciphertext length {len} is not a positive multiple of 16")]
    BadLength {
        /// Decoded ciphertext length in bytes.
        len: usize,
    },
    /// The pad byte is outside 1..=32, or the pad bytes differ.
    #[error("invalid padding")]
    BadPadding,
    /// The 4-byte length field points past the end of the plaintext.
    #[error("message length field {declared} exceeds the {available} bytes available")]
    BadLengthField {
        /// Length the field declares.
        declared: usize,
        /// Bytes left after the random prefix and length field.
        available: usize,
    },
    /// The decrypted message is not UTF-8.
    #[error("decrypted message is not UTF-8")]
    NotUtf8,
    /// The trailing AppID is not ours: the message was meant for another account.
    #[error("appid mismatch: expected {expected}, found {found:?}")]
    AppIdMismatch {
        /// The AppID this `MessageCrypto` was built for.
        expected: String,
        /// The trailing bytes found, lossily decoded and cut to 64 characters.
        found: String,
    },
    /// The message is longer than the u32 length field can express.
    #[error("message too long to encrypt")]
    MessageTooLong,
}

impl CryptoError {
    /// Returns a short stable code for metric labels and log fields.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidKey => "bad_aes_key",
            Self::BadBase64 => "bad_base64",
            Self::BadLength { .. } => "bad_length",
            Self::BadPadding => "bad_padding",
            Self::BadLengthField { .. } => "bad_length_field",
            Self::NotUtf8 => "not_utf8",
            Self::AppIdMismatch { .. } => "appid_mismatch",
            Self::MessageTooLong => "message_too_long",
        }
    }
}

/// A 32-byte AES key decoded from an EncodingAESKey.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 32]);

impl AesKey {
    /// Decodes a 43-character EncodingAESKey, tolerating non-zero trailing bits.
    pub fn from_encoding_aes_key(encoding_aes_key: &str) -> Result<Self, CryptoError> {
        if encoding_aes_key.len() != ENCODING_AES_KEY_LEN {
            return Err(CryptoError::InvalidKey);
        }
        let bytes = KEY_ENGINE
            .decode(format!("{encoding_aes_key}="))
            .map_err(|_| CryptoError::InvalidKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self(key))
    }

    /// Returns the raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A key must never reach a log line.
        f.write_str("AesKey(..)")
    }
}

/// Which key decrypted a message; a hit on the previous key means a rotation is
/// still in flight (WeChat may deliver with the old key for a while). The reply to
/// that message must be sealed with the same key: until the admin saves the new key
/// in the console, WeChat reads replies with the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySlot {
    /// The current EncodingAESKey.
    Current,
    /// The previous EncodingAESKey, kept during a rotation.
    Previous,
}

/// Encrypts and decrypts messages for one account (one AppID).
///
/// It may hold a previous key: decryption falls back to it when the current key
/// fails, so an admin can rotate the EncodingAESKey without dropping callbacks.
/// Encryption uses the current key unless given a [`KeySlot`]: a reply goes out
/// under the key its callback came in with.
#[derive(Clone)]
pub struct MessageCrypto {
    current: AesKey,
    previous: Option<AesKey>,
    appid: String,
}

impl std::fmt::Debug for MessageCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageCrypto")
            .field("appid", &self.appid)
            .field("has_previous_key", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

/// The encrypted reply envelope: `<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedEnvelope {
    /// Base64 ciphertext.
    pub encrypt: String,
    /// `sha1(sort(token, timestamp, nonce, encrypt))`, lower-case hex.
    pub msg_signature: String,
    /// Unix seconds as sent (echoed from the request or fresh).
    pub timestamp: String,
    /// Nonce as sent (echoed from the request or fresh).
    pub nonce: String,
}

impl EncryptedEnvelope {
    /// Renders the envelope as WeChat expects the passive-reply body.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(self.encrypt.len() + 200);
        out.push_str("<xml>");
        xml::push_cdata_element(&mut out, "Encrypt", &self.encrypt);
        xml::push_cdata_element(&mut out, "MsgSignature", &self.msg_signature);
        xml::push_text_element(&mut out, "TimeStamp", &self.timestamp);
        xml::push_cdata_element(&mut out, "Nonce", &self.nonce);
        out.push_str("</xml>");
        out
    }
}

impl MessageCrypto {
    /// Builds the crypto for one account from its EncodingAESKey and AppID.
    pub fn new(encoding_aes_key: &str, appid: impl Into<String>) -> Result<Self, CryptoError> {
        Ok(Self {
            current: AesKey::from_encoding_aes_key(encoding_aes_key)?,
            previous: None,
            appid: appid.into(),
        })
    }

    /// Adds the previous EncodingAESKey, tried after the current one on decryption.
    pub fn with_previous_key(mut self, encoding_aes_key: &str) -> Result<Self, CryptoError> {
        self.previous = Some(AesKey::from_encoding_aes_key(encoding_aes_key)?);
        Ok(self)
    }

    /// Returns the AppID the messages must carry.
    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// Encrypts a message with the current key and a fresh random prefix and returns
    /// the base64 text.
    pub fn encrypt(&self, msg: &str) -> Result<String, CryptoError> {
        self.encrypt_with_key(KeySlot::Current, msg)
    }

    /// Encrypts a message with the key in `slot` and a fresh random prefix.
    pub fn encrypt_with_key(&self, slot: KeySlot, msg: &str) -> Result<String, CryptoError> {
        let mut random = [0u8; RANDOM_LEN];
        // Alphanumeric like Tencent's reference code, in case a peer treats it as text.
        for (out, byte) in random.iter_mut().zip(rand::rng().sample_iter(Alphanumeric)) {
            *out = byte;
        }
        self.encrypt_bytes(self.key(slot), msg, &random)
    }

    /// Encrypts a message with the current key and the given 16-byte random prefix
    /// (deterministic; for tests).
    pub fn encrypt_with_random(
        &self,
        msg: &str,
        random: &[u8; RANDOM_LEN],
    ) -> Result<String, CryptoError> {
        self.encrypt_bytes(&self.current, msg, random)
    }

    fn encrypt_bytes(
        &self,
        key: &AesKey,
        msg: &str,
        random: &[u8; RANDOM_LEN],
    ) -> Result<String, CryptoError> {
        let len = u32::try_from(msg.len()).map_err(|_| CryptoError::MessageTooLong)?;
        let unpadded = HEADER_LEN + msg.len() + self.appid.len();
        let pad = PAD_BLOCK - unpadded % PAD_BLOCK;
        let mut plain = Vec::with_capacity(unpadded + pad);
        plain.extend_from_slice(random);
        plain.extend_from_slice(&len.to_be_bytes());
        plain.extend_from_slice(msg.as_bytes());
        plain.extend_from_slice(self.appid.as_bytes());
        // pad is 1..=32, so it fits a byte.
        plain.resize(unpadded + pad, pad as u8);
        let ciphertext = cbc::Encryptor::<Aes256>::new(key.as_bytes().into(), &key.iv().into())
            .encrypt_padded_vec_mut::<NoPadding>(&plain);
        Ok(STANDARD.encode(ciphertext))
    }

    fn key(&self, slot: KeySlot) -> &AesKey {
        match slot {
            KeySlot::Current => &self.current,
            // `Previous` comes from a decryption by a crypto that has a previous key;
            // without one, the current key is the only one WeChat can hold.
            KeySlot::Previous => self.previous.as_ref().unwrap_or(&self.current),
        }
    }

    /// Decrypts the base64 `Encrypt` text, trying the previous key if the current fails.
    pub fn decrypt(&self, encrypted: &str) -> Result<String, CryptoError> {
        self.decrypt_with_slot(encrypted).map(|(msg, _)| msg)
    }

    /// Decrypts like [`decrypt`](Self::decrypt) and also says which key worked.
    ///
    /// When both keys fail, the current key's error is returned: it is the one that
    /// describes the message if no rotation is going on.
    pub fn decrypt_with_slot(&self, encrypted: &str) -> Result<(String, KeySlot), CryptoError> {
        let ciphertext = STANDARD
            .decode(encrypted.trim())
            .map_err(|_| CryptoError::BadBase64)?;
        match decrypt_bytes(&self.current, &self.appid, &ciphertext) {
            Ok(msg) => Ok((msg, KeySlot::Current)),
            Err(err) => match &self.previous {
                Some(previous) => decrypt_bytes(previous, &self.appid, &ciphertext)
                    .map(|msg| (msg, KeySlot::Previous))
                    .map_err(|_| err),
                None => Err(err),
            },
        }
    }

    /// Encrypts a reply with the current key and wraps it in the signed envelope, with
    /// a fresh random prefix.
    pub fn seal(
        &self,
        token: &str,
        timestamp: &str,
        nonce: &str,
        msg: &str,
    ) -> Result<EncryptedEnvelope, CryptoError> {
        self.seal_with_key(KeySlot::Current, token, timestamp, nonce, msg)
    }

    /// Like [`seal`](Self::seal) with the key in `slot`: the one that opened the
    /// callback this replies to.
    pub fn seal_with_key(
        &self,
        slot: KeySlot,
        token: &str,
        timestamp: &str,
        nonce: &str,
        msg: &str,
    ) -> Result<EncryptedEnvelope, CryptoError> {
        let encrypt = self.encrypt_with_key(slot, msg)?;
        Ok(envelope(token, timestamp, nonce, encrypt))
    }

    /// Like [`seal`](Self::seal) with a given random prefix (deterministic; for tests).
    pub fn seal_with_random(
        &self,
        token: &str,
        timestamp: &str,
        nonce: &str,
        msg: &str,
        random: &[u8; RANDOM_LEN],
    ) -> Result<EncryptedEnvelope, CryptoError> {
        let encrypt = self.encrypt_with_random(msg, random)?;
        Ok(envelope(token, timestamp, nonce, encrypt))
    }
}

fn envelope(token: &str, timestamp: &str, nonce: &str, encrypt: String) -> EncryptedEnvelope {
    EncryptedEnvelope {
        msg_signature: signature::msg_signature(token, timestamp, nonce, &encrypt),
        encrypt,
        timestamp: timestamp.to_owned(),
        nonce: nonce.to_owned(),
    }
}

fn decrypt_bytes(key: &AesKey, appid: &str, ciphertext: &[u8]) -> Result<String, CryptoError> {
    // Alignment to 16 is what CBC needs; the pad check below is what enforces
    // WeChat's 32-byte scheme (a peer padding to 16 still produces valid pads).
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(AES_BLOCK) {
        return Err(CryptoError::BadLength {
            len: ciphertext.len(),
        });
    }
    let plain = cbc::Decryptor::<Aes256>::new(key.as_bytes().into(), &key.iv().into())
        .decrypt_padded_vec_mut::<NoPadding>(ciphertext)
        .map_err(|_| CryptoError::BadLength {
            len: ciphertext.len(),
        })?;
    let unpadded = strip_padding(&plain)?;
    let body = unpadded
        .get(HEADER_LEN..)
        .ok_or(CryptoError::BadLengthField {
            declared: 0,
            available: 0,
        })?;
    let mut len_field = [0u8; 4];
    len_field.copy_from_slice(&unpadded[RANDOM_LEN..HEADER_LEN]);
    let declared = u32::from_be_bytes(len_field) as usize;
    if declared > body.len() {
        return Err(CryptoError::BadLengthField {
            declared,
            available: body.len(),
        });
    }
    let (msg, found_appid) = body.split_at(declared);
    if found_appid != appid.as_bytes() {
        return Err(CryptoError::AppIdMismatch {
            expected: appid.to_owned(),
            found: String::from_utf8_lossy(found_appid)
                .chars()
                .take(64)
                .collect(),
        });
    }
    String::from_utf8(msg.to_vec()).map_err(|_| CryptoError::NotUtf8)
}

/// Removes WeChat's padding, checking the range and every pad byte.
fn strip_padding(plain: &[u8]) -> Result<&[u8], CryptoError> {
    let pad = usize::from(*plain.last().ok_or(CryptoError::BadPadding)?);
    if !(1..=PAD_BLOCK).contains(&pad) || pad > plain.len() {
        return Err(CryptoError::BadPadding);
    }
    let (rest, padding) = plain.split_at(plain.len() - pad);
    if padding.iter().any(|&b| usize::from(b) != pad) {
        return Err(CryptoError::BadPadding);
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_of_32_is_a_whole_extra_block() {
        let plain = [32u8; 64];
        assert_eq!(strip_padding(&plain).map(<[u8]>::len), Ok(32));
    }

    #[test]
    fn padding_longer_than_the_plaintext_is_refused() {
        assert_eq!(strip_padding(&[20u8; 16]), Err(CryptoError::BadPadding));
    }

    #[test]
    fn key_of_the_wrong_length_is_refused() {
        assert_eq!(
            MessageCrypto::new("abc", "wx").unwrap_err(),
            CryptoError::InvalidKey
        );
    }
}
