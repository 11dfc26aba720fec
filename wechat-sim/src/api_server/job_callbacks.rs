//! WeChat's asynchronous job results, sent the way WeChat sends them: after a
//! `freepublish/submit` the mock posts `PUBLISHJOBFINISH` (from `mphelper`), after a
//! `message/mass/sendall` it posts `MASSSENDJOBFINISH`, each signed (and encrypted per
//! the account's mode) to the gateway's callback URL, retried like any callback.
//!
//! Off unless configured with [`SimState::send_job_callbacks`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::Value;
use wechat::crypto::MessageCrypto;
use wechat::signature;
use wechat::xml::push_cdata_element;

use super::state::SimState;
use crate::traffic::{CallbackAccount, CallbackClient, Mode, RetryPolicy, SignedCallback};

/// Where and as whom job results are delivered.
#[derive(Debug)]
pub struct JobCallbacks {
    client: CallbackClient,
    /// By appid.
    accounts: HashMap<String, (CallbackAccount, Option<MessageCrypto>)>,
    /// `publish_status` of the next publish jobs (0, success, once this is empty).
    next_publish_status: Mutex<VecDeque<u32>>,
}

/// A job-callback configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum JobCallbackError {
    #[error("gateway url: {0}")]
    Gateway(String),
    #[error("account {0}: bad EncodingAESKey")]
    AesKey(String),
}

impl JobCallbacks {
    /// Delivers results for `accounts` to the gateway at `gateway` (`http://host:port`).
    pub fn new(gateway: &str, accounts: Vec<CallbackAccount>) -> Result<Self, JobCallbackError> {
        let client = CallbackClient::new(gateway, RetryPolicy::default())
            .map_err(|e| JobCallbackError::Gateway(e.to_string()))?;
        let mut by_appid = HashMap::new();
        for account in accounts {
            let crypto = match MessageCrypto::new(&account.aes_key, account.appid.clone()) {
                Ok(crypto) => Some(crypto),
                Err(_) if account.mode == Mode::Plaintext => None,
                Err(_) => return Err(JobCallbackError::AesKey(account.id.clone())),
            };
            by_appid.insert(account.appid.clone(), (account, crypto));
        }
        Ok(Self {
            client,
            accounts: by_appid,
            next_publish_status: Mutex::new(VecDeque::new()),
        })
    }

    /// Makes the next publish job end with `status` (2 originality, 3 failed, 4 review
    /// failed, 6 banned, …) instead of success.
    pub fn fail_next_publish(&self, status: u32) {
        self.next_publish_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(status);
    }

    fn sign(&self, appid: &str, xml: String) -> Option<SignedCallback> {
        let (account, crypto) = self.accounts.get(appid)?;
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let timestamp = now.to_string();
        let nonce = format!("{}", 100_000_000 + now % 1_000_000_000);
        let mut query = format!(
            "/wechat/{}?signature={}&timestamp={timestamp}&nonce={nonce}&openid=mphelper",
            account.id,
            signature::signature(&account.token, &timestamp, &nonce)
        );
        let body = match (account.mode, crypto) {
            (Mode::Plaintext, _) => xml.clone(),
            (_, None) => return None,
            (mode, Some(crypto)) => {
                let encrypt = crypto.encrypt(&xml).ok()?;
                query.push_str("&encrypt_type=aes&msg_signature=");
                query.push_str(&signature::msg_signature(
                    &account.token,
                    &timestamp,
                    &nonce,
                    &encrypt,
                ));
                let mut body = String::new();
                if mode == Mode::Compatible {
                    body.push_str(xml.strip_suffix("</xml>").unwrap_or(&xml));
                } else {
                    body.push_str("<xml>");
                    push_cdata_element(&mut body, "ToUserName", &account.original_id);
                }
                push_cdata_element(&mut body, "Encrypt", &encrypt);
                body.push_str("</xml>");
                body
            }
        };
        Some(SignedCallback {
            path_and_query: query,
            body: Bytes::from(body),
            plain_xml: xml,
            openid: "mphelper".to_owned(),
            original_id: account.original_id.clone(),
            timestamp,
            nonce,
            create_time: now,
            msg_id: None,
            label: "job_finish",
        })
    }

    fn publish_finished(&self, original_id: &str, publish_id: &str, articles: usize) -> String {
        let status = self
            .next_publish_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or(0);
        let now = chrono::Utc::now().timestamp();
        let mut xml = String::from("<xml>");
        push_cdata_element(&mut xml, "ToUserName", original_id);
        push_cdata_element(&mut xml, "FromUserName", "mphelper");
        xml.push_str(&format!("<CreateTime>{now}</CreateTime>"));
        push_cdata_element(&mut xml, "MsgType", "event");
        push_cdata_element(&mut xml, "Event", "PUBLISHJOBFINISH");
        xml.push_str(&format!(
            "<PublishEventInfo><publish_id>{publish_id}</publish_id><publish_status>{status}</publish_status>"
        ));
        if status == 0 {
            push_cdata_element(&mut xml, "article_id", &format!("ARTICLE_{publish_id}"));
            xml.push_str(&format!("<article_detail><count>{articles}</count>"));
            for idx in 1..=articles {
                xml.push_str(&format!("<item><idx>{idx}</idx>"));
                push_cdata_element(
                    &mut xml,
                    "article_url",
                    &format!("https://mp.weixin.qq.com/s/sim-{publish_id}-{idx}"),
                );
                xml.push_str("</item>");
            }
            xml.push_str("</article_detail>");
        } else {
            for idx in 1..=articles {
                xml.push_str(&format!("<fail_idx>{idx}</fail_idx>"));
            }
        }
        xml.push_str("</PublishEventInfo></xml>");
        xml
    }

    fn mass_finished(
        &self,
        original_id: &str,
        msg_id: u64,
        followers: usize,
        articles: usize,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut xml = String::from("<xml>");
        push_cdata_element(&mut xml, "ToUserName", original_id);
        push_cdata_element(&mut xml, "FromUserName", "mphelper");
        xml.push_str(&format!("<CreateTime>{now}</CreateTime>"));
        push_cdata_element(&mut xml, "MsgType", "event");
        push_cdata_element(&mut xml, "Event", "MASSSENDJOBFINISH");
        xml.push_str(&format!("<MsgID>{msg_id}</MsgID>"));
        push_cdata_element(&mut xml, "Status", "send success");
        xml.push_str(&format!(
            "<TotalCount>{followers}</TotalCount><FilterCount>{followers}</FilterCount><SentCount>{followers}</SentCount><ErrorCount>0</ErrorCount>"
        ));
        // Each article's URL by its place, as WeChat reports for an mpnews send.
        if articles > 0 {
            xml.push_str(&format!(
                "<ArticleUrlResult><Count>{articles}</Count><ResultList>"
            ));
            for idx in 1..=articles {
                xml.push_str(&format!("<item><ArticleIdx>{idx}</ArticleIdx>"));
                push_cdata_element(
                    &mut xml,
                    "ArticleUrl",
                    &format!("https://mp.weixin.qq.com/s/sim-mass-{msg_id}-{idx}"),
                );
                xml.push_str("</item>");
            }
            xml.push_str("</ResultList></ArticleUrlResult>");
        }
        xml.push_str("</xml>");
        xml
    }
}

impl SimState {
    /// Sends WeChat's job-finish callbacks (`PUBLISHJOBFINISH`, `MASSSENDJOBFINISH`)
    /// through `callbacks` from now on.
    pub fn send_job_callbacks(&self, callbacks: Arc<JobCallbacks>) {
        self.lock().job_callbacks = Some(callbacks);
    }
}

/// After an API call answered `answer`: schedules the job result WeChat would send.
pub(crate) fn after_call(state: &SimState, path: &str, appid: Option<&str>, answer: &Value) {
    let errcode = answer.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    let (Some(appid), 0) = (appid, errcode) else {
        return;
    };
    let world = state.lock();
    let Some(callbacks) = world.job_callbacks.clone() else {
        return;
    };
    let Some((account, _)) = callbacks.accounts.get(appid) else {
        return;
    };
    let original_id = account.original_id.clone();
    let xml = match path {
        "/cgi-bin/freepublish/submit" => {
            let Some(publish_id) = answer.get("publish_id").and_then(Value::as_str) else {
                return;
            };
            let articles = world
                .accounts
                .get(appid)
                .and_then(|a| a.publishes.get(publish_id))
                .map(|p| p.articles)
                .unwrap_or(1);
            callbacks.publish_finished(&original_id, publish_id, articles)
        }
        "/cgi-bin/message/mass/sendall" => {
            let Some(msg_id) = answer.get("msg_id").and_then(Value::as_u64) else {
                return;
            };
            let account = world.accounts.get(appid);
            let followers = account
                .map(|a| a.followers.iter().filter(|f| f.subscribed).count())
                .unwrap_or(0);
            // The draft this send used: the account's latest sendall names it (the
            // call was recorded just before this runs).
            let articles = world
                .calls
                .iter()
                .rev()
                .find(|c| {
                    c.path == "/cgi-bin/message/mass/sendall"
                        && c.appid.as_deref() == Some(appid)
                        && c.errcode == 0
                })
                .and_then(|c| c.body.as_ref())
                .and_then(|b| b.pointer("/mpnews/media_id"))
                .and_then(Value::as_str)
                .and_then(|media_id| account.and_then(|a| a.drafts.get(media_id)))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            callbacks.mass_finished(&original_id, msg_id, followers, articles)
        }
        _ => return,
    };
    drop(world);
    let Some(signed) = callbacks.sign(appid, xml) else {
        tracing::warn!(appid, "cannot sign a job callback");
        return;
    };
    tokio::spawn(async move {
        let delivery = callbacks.client.deliver(&signed).await;
        if delivery.answer().is_none() {
            tracing::warn!("job callback not answered by the gateway");
        }
    });
}
