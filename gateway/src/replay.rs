//! Replay protection for accounts that take unencrypted callbacks (plaintext and
//! compatible mode). WeChat's `signature` covers only the token, `timestamp` and
//! `nonce`, not the body: a captured signed URL could carry any body for the whole
//! timestamp window. So the first body seen with a signature is recorded in a KV
//! bucket every replica shares; the same body again is WeChat's retry (deduplicated
//! downstream as always), another body is refused. The signed query of a compatible
//! account's encrypted callback, and of a URL check, is recorded too: with
//! `msg_signature` dropped, or as a POST, it would otherwise carry a plaintext body.
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

    /// Records that the callback carrying the verified `signature` carried `body`,
    /// and says whether that signature was seen before, on any account.
    pub async fn claim(&self, signature: &str, body: &[u8]) -> Result<Seen, String> {
        let key = key(signature);
        let digest = Bytes::copy_from_slice(&Sha256::digest(body));
        match self.kv.update(&key, digest.clone(), 0).await {
            Ok(_) => return Ok(Seen::First),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
            Err(e) => return Err(e.to_string()),
        }
        match self.kv.get(&key).await.map_err(|e| e.to_string())? {
            Some(stored) if stored == digest => Ok(Seen::Retry),
            Some(_) => Ok(Seen::OtherBody),
            // Aged out between the two calls: the timestamp is at the window's edge.
            None => Ok(Seen::Retry),
        }
    }
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
    fn a_signature_in_either_case_is_one_key() {
        let lower = "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff";
        assert_eq!(key(lower), lower);
        assert_eq!(key(&lower.to_ascii_uppercase()), lower);
        assert_eq!(key("F21891DE399b4e33a1a93c9a7b8a8fffb5a443ff"), lower);
    }
}
