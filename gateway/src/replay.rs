//! Replay protection for accounts that take unencrypted callbacks (plaintext and
//! compatible mode). WeChat's `signature` covers only the token, `timestamp` and
//! `nonce`, not the body: a captured signed URL could carry any body for the whole
//! timestamp window. So the first body seen with a (timestamp, nonce) is recorded in
//! a KV bucket every replica shares; the same body again is WeChat's retry
//! (deduplicated downstream as always), another body is refused. The signed query of
//! a compatible account's encrypted callback, and of a URL check, is recorded too:
//! with `msg_signature` dropped, or as a POST, it would otherwise carry a plaintext
//! body. The key leaves the signature out: the token, timestamp and nonce decide it,
//! and its hex digits could be given in either case.
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
    pub async fn open(
        jetstream: &jetstream::Context,
        namespace: &Namespace,
        window: Duration,
    ) -> Result<Self, String> {
        let bucket = namespace.name(SIGNATURE_BUCKET);
        let config = kv_bucket_stream(
            &bucket,
            "gateway: the body hash each plaintext callback signature carried",
            window * 2 + Duration::from_secs(60),
        );
        jetstream
            .get_or_create_stream(config)
            .await
            .map_err(|e| format!("cannot create KV bucket {bucket}: {e}"))?;
        let kv = crate::reply::open_bucket(jetstream, &bucket).await?;
        Ok(Self { kv })
    }

    /// Records that `account`'s callback signed with (`timestamp`, `nonce`) carried
    /// `body`, and says whether that signed query was seen before.
    pub async fn claim(
        &self,
        account: &str,
        timestamp: &str,
        nonce: &str,
        body: &[u8],
    ) -> Result<Seen, String> {
        let key = key(account, timestamp, nonce);
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

/// A fixed-size, KV-safe key for a signed query.
fn key(account: &str, timestamp: &str, nonce: &str) -> String {
    let mut hash = Sha256::new();
    for part in [account, timestamp, nonce] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_every_signed_part_and_are_kv_safe() {
        let base = key("city", "1700000000", "n1");
        assert_eq!(base, key("city", "1700000000", "n1"));
        assert_ne!(base, key("county", "1700000000", "n1"));
        assert_ne!(base, key("city", "1700000001", "n1"));
        assert_ne!(base, key("city", "1700000000", "n2"));
        assert_eq!(base.len(), 32);
        assert!(base.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
