//! Signed (and per mode encrypted) callback requests.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rand::Rng as _;
use wechat::crypto::{CryptoError, MessageCrypto};
use wechat::signature;
use wechat::xml::push_cdata_element;

use super::account::{AccountError, CallbackAccount, Mode};
use super::action::{CitizenAction, Follower};

/// A callback ready to send: `POST {gateway}{path_and_query}` with `body`.
///
/// A WeChat retry sends exactly this again (same query, same body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCallback {
    /// `/wechat/{account}?signature=…&timestamp=…&nonce=…&openid=…[&encrypt_type=aes&msg_signature=…]`.
    pub path_and_query: String,
    /// The request body (plain XML, or the envelope with `<Encrypt>`).
    pub body: Bytes,
    /// The plaintext XML inside (equal to `body` in plaintext mode).
    pub plain_xml: String,
    /// The sender: the reply's `ToUserName` must be this.
    pub openid: String,
    /// The account's `gh_…` id: the reply's `FromUserName` must be this.
    pub original_id: String,
    /// The `timestamp` query parameter.
    pub timestamp: String,
    /// The `nonce` query parameter.
    pub nonce: String,
    /// `CreateTime` in the XML.
    pub create_time: u64,
    /// `MsgId` for messages; `None` for events.
    pub msg_id: Option<u64>,
    /// The action's label (`text`, `event.CLICK`, …).
    pub label: &'static str,
}

impl SignedCallback {
    /// Returns the full URL against a gateway base URL such as `http://127.0.0.1:8080`.
    pub fn url(&self, gateway: &str) -> String {
        format!("{}{}", gateway.trim_end_matches('/'), self.path_and_query)
    }
}

/// Builds callbacks for one account as WeChat signs and encrypts them.
#[derive(Debug)]
pub struct CallbackSigner {
    account: CallbackAccount,
    crypto: Option<MessageCrypto>,
    next_msg_id: AtomicU64,
}

impl CallbackSigner {
    /// Creates the signer; the EncodingAESKey must be valid unless the mode is plaintext.
    pub fn new(account: CallbackAccount) -> Result<Self, AccountError> {
        let crypto = match MessageCrypto::new(&account.aes_key, account.appid.clone()) {
            Ok(crypto) => Some(crypto),
            // A plaintext account needs no key; any other mode cannot work without one.
            Err(_) if account.mode == Mode::Plaintext => None,
            Err(e) => return Err(AccountError::AesKey(e)),
        };
        // Real MsgIds are ~17-digit numbers; a random start keeps runs against the
        // same stream (10-minute duplicate window) from colliding.
        let start = rand::rng().random_range(10_000_000_000_000_000..9_000_000_000_000_000_000);
        Ok(Self {
            account,
            crypto,
            next_msg_id: AtomicU64::new(start),
        })
    }

    /// Returns the account.
    pub fn account(&self) -> &CallbackAccount {
        &self.account
    }

    /// Returns the account's crypto (absent for a plaintext account without a key).
    pub fn crypto(&self) -> Option<&MessageCrypto> {
        self.crypto.as_ref()
    }

    /// Builds the callback for `follower` doing `action` now, with a fresh nonce.
    pub fn sign(
        &self,
        follower: &mut Follower,
        action: &CitizenAction,
    ) -> Result<SignedCallback, CryptoError> {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let nonce = rand::rng()
            .random_range(100_000_000u32..4_000_000_000)
            .to_string();
        self.sign_at(follower, action, now, &nonce)
    }

    /// Builds the callback with a given clock and nonce (deterministic apart from the
    /// AES random prefix and the MsgId).
    pub fn sign_at(
        &self,
        follower: &mut Follower,
        action: &CitizenAction,
        now: u64,
        nonce: &str,
    ) -> Result<SignedCallback, CryptoError> {
        let create_time = follower.next_create_time(now);
        let msg_id = action
            .is_message()
            .then(|| self.next_msg_id.fetch_add(1, Ordering::Relaxed));
        let plain_xml = action.to_xml(
            &self.account.original_id,
            &follower.openid,
            create_time,
            msg_id.unwrap_or(0),
        );
        let timestamp = now.to_string();
        let token = &self.account.token;
        let mut query = String::with_capacity(200);
        query.push_str("/wechat/");
        query.push_str(&self.account.id);
        query.push_str("?signature=");
        query.push_str(&signature::signature(token, &timestamp, nonce));
        query.push_str("&timestamp=");
        query.push_str(&timestamp);
        query.push_str("&nonce=");
        query.push_str(nonce);
        query.push_str("&openid=");
        query.push_str(&follower.openid);
        let body = match (self.account.mode, &self.crypto) {
            (Mode::Plaintext, _) => plain_xml.clone(),
            (_, None) => return Err(CryptoError::InvalidKey),
            (mode, Some(crypto)) => {
                let encrypt = crypto.encrypt(&plain_xml)?;
                query.push_str("&encrypt_type=aes&msg_signature=");
                query.push_str(&signature::msg_signature(
                    token, &timestamp, nonce, &encrypt,
                ));
                let mut body = String::with_capacity(encrypt.len() + plain_xml.len() + 96);
                if mode == Mode::Compatible {
                    // Compatible mode: every plain field, plus <Encrypt> before </xml>.
                    body.push_str(plain_xml.strip_suffix("</xml>").unwrap_or(&plain_xml));
                } else {
                    body.push_str("<xml>");
                    push_cdata_element(&mut body, "ToUserName", &self.account.original_id);
                }
                push_cdata_element(&mut body, "Encrypt", &encrypt);
                body.push_str("</xml>");
                body
            }
        };
        Ok(SignedCallback {
            path_and_query: query,
            body: Bytes::from(body),
            plain_xml,
            openid: follower.openid.clone(),
            original_id: self.account.original_id.clone(),
            timestamp,
            nonce: nonce.to_owned(),
            create_time,
            msg_id,
            label: action.label(),
        })
    }

    /// Returns the path and query of WeChat's URL check (`GET`), which the gateway
    /// must answer with `echostr` exactly; it is signed with the plain signature in
    /// every mode.
    pub fn url_check(&self, echostr: &str, now: u64, nonce: &str) -> String {
        let timestamp = now.to_string();
        format!(
            "/wechat/{}?signature={}&timestamp={timestamp}&nonce={nonce}&echostr={echostr}",
            self.account.id,
            signature::signature(&self.account.token, &timestamp, nonce)
        )
    }
}
