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
//! The entry's value is the body's SHA-256 whatever it is bound to, and an entry
//! bound to encrypted bodies says so in a message header ([`BOUND_HEADER`]) beside
//! it: a gateway of the release before this rule reads the value alone and compares
//! it with the digest of the body it holds, so during a rolling upgrade it still takes
//! WeChat's byte-identical retry of a callback an upgraded replica claimed (it refused
//! it 403 when the value was a marker, and the callback was never stored). It cannot
//! take one encrypted afresh, as it never could; nor does it read the header, so to it
//! the entry grants that one body, which is what it granted before.
//!
//! The key is the signature with its hex digits in lower case, and nothing else: it
//! is all the check proves, so it must grant one body wherever it passes. Not the
//! account: two accounts sharing a Token accept each other's signatures. Not the
//! digits as given: the check reads either case.
//!
//! The record is one JetStream write (a publish expecting no earlier message on the
//! key's subject, what `kv::Store::update` at revision 0 sends, with the header when
//! bound to encrypted bodies) per callback, plus one read of the entry and its headers
//! when the key already exists (a retry or a replay). Safe mode needs none: every
//! callback's `msg_signature` covers its body.

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{DirectGetErrorKind, LastRawMessageErrorKind};
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use platform::nats::Namespace;
use sha2::{Digest, Sha256};
use tokio::time::Duration;
use wechat::token::kv_bucket_stream;

/// The KV bucket of seen signatures, before namespacing.
pub const SIGNATURE_BUCKET: &str = "GATEWAY_SIGNATURES";

/// The header of an entry bound to encrypted bodies, and its value.
pub const BOUND_HEADER: &str = "Gateway-Bound";
const ENCRYPTED: &str = "encrypted";

/// The value gateways of bb02cee's rule recorded for a signature bound to encrypted
/// bodies, with no header: still read as so bound while their entries live. Never a
/// SHA-256 digest (32 bytes), so no body's digest matches it.
const ENCRYPTED_VALUE: &[u8] = b"encrypted";

/// The `KV-Operation` header of a deleted or purged key (the ledger does neither;
/// read as `kv::Store::get` reads it).
const KV_OPERATION: &str = "KV-Operation";

/// What a verified signature is bound to.
#[derive(Debug, Clone, Copy)]
pub enum Bound<'a> {
    /// These bytes (an unencrypted body, a URL check's `echostr`): its SHA-256.
    Body(&'a [u8]),
    /// A compatible account's encrypted callback (`body`): any encrypted body, whose
    /// `msg_signature` the caller checks next. Its digest is what is recorded, and is
    /// matched against an entry a gateway before this rule wrote: a rolling upgrade
    /// takes a byte-identical retry both ways.
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
    /// For reads: the entry with its headers.
    kv: kv::Store,
    /// For writes: `kv::Store` writes no header of ours.
    jetstream: jetstream::Context,
    /// Where the bucket's writes go (`$KV.{bucket}.`), as the store itself would put.
    put_prefix: Box<str>,
}

/// What a callback records in the ledger, and what an entry read back holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    /// The body's SHA-256 (an entry of bb02cee's rule: [`ENCRYPTED_VALUE`]).
    value: Bytes,
    /// Bound to encrypted bodies, not to the body whose digest `value` is.
    encrypted: bool,
}

impl Record {
    fn of(bound: Bound<'_>) -> Self {
        let (body, encrypted) = match bound {
            Bound::Body(body) => (body, false),
            Bound::Encrypted(body) => (body, true),
        };
        Self {
            value: Bytes::copy_from_slice(&Sha256::digest(body)),
            encrypted,
        }
    }

    /// The entry a stored message holds.
    fn read(value: Bytes, headers: &HeaderMap) -> Self {
        let encrypted = headers
            .get(BOUND_HEADER)
            .is_some_and(|bound| bound.as_str() == ENCRYPTED)
            || value.as_ref() == ENCRYPTED_VALUE;
        Self { value, encrypted }
    }
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
        Ok(Self {
            put_prefix: kv.put_prefix.as_ref().unwrap_or(&kv.prefix).as_str().into(),
            kv,
            jetstream: jetstream.clone(),
        })
    }

    /// Records that the callback carrying the verified `signature` carried `bound`,
    /// and says whether that signature was seen before, on any account.
    pub async fn claim(&self, signature: &str, bound: Bound<'_>) -> Result<Seen, String> {
        let key = key(signature);
        let record = Record::of(bound);
        let subject = format!("{}{key}", self.put_prefix);
        // Create-only, as `kv::Store::update` at revision 0.
        let mut message = PublishMessage::build()
            .payload(record.value.clone())
            .expected_last_subject_sequence(0);
        if record.encrypted {
            message = message.header(BOUND_HEADER, ENCRYPTED);
        }
        let written = match self.jetstream.send_publish(subject, message).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match written {
            Ok(_) => return Ok(Seen::First),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {}
            Err(e) => return Err(e.to_string()),
        }
        match self.entry(&key).await? {
            Some(stored) => Ok(judge(&stored, &record)),
            // Aged out between the two calls: the timestamp is at the window's edge.
            None => Ok(Seen::Retry),
        }
    }

    /// The entry of `key` with its headers (`kv::Store::get` returns the value alone),
    /// read as the store reads it.
    async fn entry(&self, key: &str) -> Result<Option<Record>, String> {
        let subject = format!("{}{key}", self.kv.prefix);
        let stream = &self.kv.stream;
        let message = if stream.cached_info().config.allow_direct {
            match stream.direct_get_last_for_subject(subject).await {
                Ok(message) => message,
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.to_string()),
            }
        } else {
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(message) => message,
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                    return Ok(None);
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        if message
            .headers
            .get(KV_OPERATION)
            .is_some_and(|operation| operation.as_str() != "PUT")
        {
            return Ok(None);
        }
        Ok(Some(Record::read(message.payload, &message.headers)))
    }
}

/// Whether `stored`, what the signature was first bound to, takes this callback,
/// whose own record would be `this`. An entry bound to encrypted bodies takes any
/// encrypted callback and no plaintext one, even of its very bytes; any other takes
/// the body whose digest it holds (a plaintext callback's retry, or an encrypted one
/// sent again byte for byte under an entry of a gateway before bb02cee).
fn judge(stored: &Record, this: &Record) -> Seen {
    let retry = if stored.encrypted {
        this.encrypted
    } else {
        stored.value == this.value
    };
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

    fn plain(body: &[u8]) -> Record {
        Record::of(Bound::Body(body))
    }

    fn encrypted(body: &[u8]) -> Record {
        Record::of(Bound::Encrypted(body))
    }

    /// What a gateway before bb02cee wrote for any callback: the body's digest, no header.
    fn previous_release(body: &[u8]) -> Record {
        Record::read(
            Bytes::copy_from_slice(&Sha256::digest(body)),
            &HeaderMap::new(),
        )
    }

    #[test]
    fn a_signature_bound_to_encrypted_bodies_takes_any_encrypted_body_and_no_plaintext_one() {
        let first = b"<xml><Encrypt>B</Encrypt></xml>";
        // WeChat's retry encrypted afresh, and byte for byte.
        let again = b"<xml><Encrypt>C</Encrypt></xml>";
        assert_eq!(judge(&encrypted(first), &encrypted(again)), Seen::Retry);
        assert_eq!(judge(&encrypted(first), &encrypted(first)), Seen::Retry);
        // The same query with the encryption dropped, whatever its plaintext body,
        // even the encrypted callback's very bytes.
        let text = b"<xml><Content>x</Content></xml>";
        assert_eq!(judge(&encrypted(first), &plain(text)), Seen::OtherBody);
        assert_eq!(judge(&encrypted(first), &plain(first)), Seen::OtherBody);
        // A plaintext callback's signature lends itself to no other body.
        assert_eq!(judge(&plain(text), &encrypted(first)), Seen::OtherBody);
        assert_eq!(judge(&plain(text), &plain(first)), Seen::OtherBody);
        assert_eq!(judge(&plain(text), &plain(text)), Seen::Retry);
    }

    /// A rolling upgrade, both ways: a gateway before bb02cee compares the entry's
    /// value, and nothing else, with the SHA-256 of the body it holds.
    #[test]
    fn an_entry_bound_to_encrypted_bodies_still_takes_the_identical_retry_on_the_previous_release()
    {
        let body = b"<xml><Encrypt>A</Encrypt></xml>";
        let previous_rule =
            |stored: &Record, body: &[u8]| stored.value == Sha256::digest(body).as_slice();
        let written = encrypted(body);
        assert!(
            written.encrypted,
            "this release reads it as bound to encrypted bodies"
        );
        assert!(
            previous_rule(&written, body),
            "its byte-identical retry is a retry"
        );
        assert!(!previous_rule(&written, b"<xml><Content>x</Content></xml>"));
        // The previous release's entry, read here: the byte-identical retry is taken,
        // a plaintext body other than it is not.
        let old = previous_release(body);
        assert_eq!(judge(&old, &encrypted(body)), Seen::Retry);
        assert_eq!(judge(&old, &plain(b"<xml/>")), Seen::OtherBody);
    }

    /// The header is what binds to encrypted bodies; bb02cee's rule recorded a marker
    /// value instead, still read so while its entries live.
    #[test]
    fn the_header_or_bb02cees_marker_binds_an_entry_to_encrypted_bodies() {
        let mut headers = HeaderMap::new();
        headers.insert(BOUND_HEADER, ENCRYPTED);
        let digest = Bytes::copy_from_slice(&Sha256::digest(b"<xml/>"));
        assert!(Record::read(digest.clone(), &headers).encrypted);
        assert!(!Record::read(digest, &HeaderMap::new()).encrypted);
        let marker = Record::read(Bytes::from_static(ENCRYPTED_VALUE), &HeaderMap::new());
        assert!(marker.encrypted);
        assert_eq!(judge(&marker, &encrypted(b"<xml/>")), Seen::Retry);
        assert_eq!(judge(&marker, &plain(b"<xml/>")), Seen::OtherBody);
    }

    #[test]
    fn a_signature_in_either_case_is_one_key() {
        let lower = "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff";
        assert_eq!(key(lower), lower);
        assert_eq!(key(&lower.to_ascii_uppercase()), lower);
        assert_eq!(key("F21891DE399b4e33a1a93c9a7b8a8fffb5a443ff"), lower);
    }
}
