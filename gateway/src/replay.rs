//! Replay protection for accounts that take unencrypted callbacks (plaintext and
//! compatible mode). WeChat's `signature` covers only the token, `timestamp` and
//! `nonce`, not the body: a captured signed URL could carry any body for the whole
//! timestamp window. So the first body seen with a signature is recorded in a KV
//! bucket every replica shares; the same body again is WeChat's retry (deduplicated
//! downstream as always), another body is refused. The signed query of a compatible
//! account's encrypted callback, and of a URL check, is recorded too: with
//! `msg_signature` dropped, or as a POST, it would otherwise carry a plaintext body.
//!
//! A compatible account's encrypted callback binds its signature to encrypted bodies
//! ([`Bound::Encrypted`]), not to its bytes: its `msg_signature` already binds each
//! `<Encrypt>` to the timestamp and nonce (as in safe mode), and WeChat's retry
//! repeats the message but may encrypt it afresh (wechat-protocol.md says only that
//! retries repeat the content; each encryption draws a random prefix), which a
//! digest of the body refused as a replay (403), so the callback was never stored.
//! What the record must still stop, the same query with the encryption dropped
//! carrying a plaintext body, it does: no plaintext body is an encrypted one.
//!
//! The key is the signature with its hex digits in lower case, and nothing else: it
//! is all the check proves, so it must grant one body wherever it passes. Not the
//! account: two accounts sharing a Token accept each other's signatures. Not the
//! digits as given: the check reads either case.
//!
//! The record is one JetStream write (`update` at revision 0, i.e. create) per
//! callback, plus one read when the key already exists (a retry or a replay). Safe
//! mode needs none: every callback's `msg_signature` covers its body.

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use platform::nats::Namespace;
use sha2::{Digest, Sha256};
use tokio::time::Duration;
use wechat::token::kv_bucket_stream;

/// The KV bucket of seen signatures, before namespacing.
pub const SIGNATURE_BUCKET: &str = "GATEWAY_SIGNATURES";

/// The value recorded for a signature bound to encrypted bodies: never a SHA-256
/// digest (32 bytes), so no plaintext body matches it.
const ENCRYPTED: &[u8] = b"encrypted";

/// What a verified signature is bound to.
#[derive(Debug, Clone, Copy)]
pub enum Bound<'a> {
    /// These bytes (an unencrypted body, a URL check's `echostr`): its SHA-256.
    Body(&'a [u8]),
    /// A compatible account's encrypted callback (`body`): any encrypted body, whose
    /// `msg_signature` the caller checks next. `body` is matched against an entry a
    /// gateway before this rule wrote (its digest), so a rolling upgrade still takes a
    /// byte-identical retry.
    Encrypted(&'a [u8]),
}

/// What the ledger knew of a signed callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The first time this signature came: it now belongs to this body.
    First,
    /// The signature came before with the same body: WeChat's retry.
    Retry,
    /// The signature came before with another body: a replay.
    OtherBody,
}

/// The shared record of which body each signature carried.
#[derive(Clone)]
pub struct SignatureLedger {
    kv: kv::Store,
}

impl SignatureLedger {
    /// Opens (creating if needed) the namespaced bucket. Entries live a little
    /// longer than the timestamp window on either side, past which the timestamp
    /// check refuses the signature anyway.
    ///
    /// A bucket created under a shorter `TIMESTAMP_WINDOW` gets its max age raised:
    /// otherwise a signature would age out of the ledger while its timestamp is still
    /// accepted, and could carry a second body. It is never lowered, as replicas of
    /// the release that set it may still be running with their longer window.
    pub async fn open(
        jetstream: &jetstream::Context,
        namespace: &Namespace,
        window: Duration,
    ) -> Result<Self, String> {
        let bucket = namespace.name(SIGNATURE_BUCKET);
        let needed = window * 2 + Duration::from_secs(60);
        let config = kv_bucket_stream(
            &bucket,
            "gateway: the body hash each plaintext callback signature carried",
            needed,
        );
        let stream = jetstream
            .get_or_create_stream(config)
            .await
            .map_err(|e| format!("cannot create KV bucket {bucket}: {e}"))?;
        let current = &stream.cached_info().config;
        // Zero is "no limit": already long enough.
        if !current.max_age.is_zero() && current.max_age < needed {
            tracing::info!(
                bucket,
                from = ?current.max_age,
                to = ?needed,
                "raising the signature ledger's max age to cover TIMESTAMP_WINDOW"
            );
            jetstream
                .update_stream(jetstream::stream::Config {
                    max_age: needed,
                    ..current.clone()
                })
                .await
                .map_err(|e| format!("cannot raise the max age of KV bucket {bucket}: {e}"))?;
        }
        let kv = crate::reply::open_bucket(jetstream, &bucket).await?;
        Ok(Self { kv })
    }

    /// Records that the callback carrying the verified `signature` carried `bound`,
    /// and says whether that signature was seen before, on any account.
    pub async fn claim(&self, signature: &str, bound: Bound<'_>) -> Result<Seen, String> {
        let key = key(signature);
        let value = match bound {
            Bound::Body(body) => Bytes::copy_from_slice(&Sha256::digest(body)),
            Bound::Encrypted(_) => Bytes::from_static(ENCRYPTED),
        };
        match self.kv.update(&key, value.clone(), 0).await {
            Ok(_) => return Ok(Seen::First),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
            Err(e) => return Err(e.to_string()),
        }
        match self.kv.get(&key).await.map_err(|e| e.to_string())? {
            Some(stored) => Ok(judge(&stored, &value, bound)),
            // Aged out between the two calls: the timestamp is at the window's edge.
            None => Ok(Seen::Retry),
        }
    }
}

/// Whether `stored`, what the signature was first bound to, takes this callback,
/// whose own record would have been `value`.
fn judge(stored: &[u8], value: &[u8], bound: Bound<'_>) -> Seen {
    let retry = stored == value
        || matches!(bound, Bound::Encrypted(body) if stored == Sha256::digest(body).as_slice());
    if retry { Seen::Retry } else { Seen::OtherBody }
}

/// The ledger key of a verified signature: its 40 hex digits (the check refuses
/// anything else, so the key is KV-safe), folded to one case.
fn key(signature: &str) -> String {
    signature.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_bound_to_encrypted_bodies_takes_any_encrypted_body_and_no_plaintext_one() {
        let digest = |body: &[u8]| Sha256::digest(body).to_vec();
        let encrypted = Bound::Encrypted(b"<xml><Encrypt>B</Encrypt></xml>");
        // WeChat's retry encrypted afresh.
        assert_eq!(judge(ENCRYPTED, ENCRYPTED, encrypted), Seen::Retry);
        // The same query with the encryption dropped, whatever its plaintext body.
        let plain = b"<xml><Content>x</Content></xml>";
        assert_eq!(
            judge(ENCRYPTED, &digest(plain), Bound::Body(plain)),
            Seen::OtherBody
        );
        // A plaintext callback's signature lends itself to no encrypted body either.
        assert_eq!(judge(&digest(plain), ENCRYPTED, encrypted), Seen::OtherBody);
        // An entry a gateway before this rule wrote (the body's digest) still takes
        // the byte-identical retry during a rolling upgrade.
        let old = b"<xml><Encrypt>A</Encrypt></xml>";
        assert_eq!(
            judge(&digest(old), ENCRYPTED, Bound::Encrypted(old)),
            Seen::Retry
        );
        assert_eq!(
            judge(&digest(old), &digest(plain), Bound::Body(plain)),
            Seen::OtherBody
        );
        assert_eq!(
            judge(&digest(plain), &digest(plain), Bound::Body(plain)),
            Seen::Retry
        );
    }

    #[test]
    fn a_signature_in_either_case_is_one_key() {
        let lower = "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff";
        assert_eq!(key(lower), lower);
        assert_eq!(key(&lower.to_ascii_uppercase()), lower);
        assert_eq!(key("F21891DE399b4e33a1a93c9a7b8a8fffb5a443ff"), lower);
    }
}
