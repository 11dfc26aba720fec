//! WeChat's asynchronous job results, sent the way WeChat sends them: after a
//! `freepublish/submit` the mock posts `PUBLISHJOBFINISH` (from `mphelper`), after a
//! `message/mass/sendall` it posts `MASSSENDJOBFINISH` (as its [`MassJobEnd`] says),
//! each signed (and encrypted per the account's mode) to the gateway's callback URL,
//! retried like any callback.
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

/// How a mass send's job ends, as WeChat tells it: `message/mass/get`'s `msg_status`,
/// and the `MASSSENDJOBFINISH` sent when job callbacks are on. Set for the next send
/// with [`SimState::end_next_mass_send_with`]; a send ends [`MassJobEnd::sent`]
/// otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassJobEnd {
    /// `message/mass/get`'s `msg_status`: `SEND_SUCCESS`, `SENDING`, `SEND_FAIL` or
    /// `DELETE` (any other string plays one WeChat has not documented).
    pub msg_status: String,
    /// The `MASSSENDJOBFINISH`'s `Status`: `send success`, `send fail` or a review
    /// code `err(n)`; `None`: no callback comes (the job is still going out).
    pub status: Option<String>,
    /// `SentCount`, the followers it reached (at most those it was for); `None`:
    /// every follower. An `err(n)` counts nobody whatever this says.
    pub sent: Option<usize>,
}

impl MassJobEnd {
    /// `SEND_SUCCESS`, `send success`, sent to every follower: how a send ends unless
    /// told otherwise (the mock's sends go out at once).
    pub fn sent() -> Self {
        Self {
            msg_status: "SEND_SUCCESS".to_owned(),
            status: Some("send success".to_owned()),
            sent: None,
        }
    }

    /// `SEND_FAIL`, `send fail`, reaching nobody: every follower it was for counted
    /// in `ErrorCount`.
    pub fn send_fail() -> Self {
        Self::send_fail_reaching(0)
    }

    /// `SEND_FAIL`, `send fail`, though `SentCount` counts `sent` followers reached
    /// (WeChat documents `FilterCount` as about `SentCount + ErrorCount`, not that a
    /// failed job reached nobody).
    pub fn send_fail_reaching(sent: usize) -> Self {
        Self {
            msg_status: "SEND_FAIL".to_owned(),
            status: Some("send fail".to_owned()),
            sent: Some(sent),
        }
    }

    /// `SEND_FAIL`, `err(code)`: WeChat's review refused it before it went out
    /// (10001 advertising, 20013 copyright, 30002 originality check, 40001 refused by
    /// the account's administrator, …). Every count is 0, as in WeChat's sample of
    /// such a callback.
    pub fn refused(code: u32) -> Self {
        Self {
            msg_status: "SEND_FAIL".to_owned(),
            status: Some(format!("err({code})")),
            sent: Some(0),
        }
    }

    /// `SENDING` for good: `message/mass/get` says it is still going out, and no
    /// `MASSSENDJOBFINISH` comes.
    pub fn sending() -> Self {
        Self {
            msg_status: "SENDING".to_owned(),
            status: None,
            sent: None,
        }
    }

    /// `TotalCount`, `FilterCount`, `SentCount`, `ErrorCount` of a send to `followers`.
    fn counts(&self, followers: usize) -> [usize; 4] {
        let review = self
            .status
            .as_deref()
            .is_some_and(|status| status.starts_with("err("));
        if review {
            return [0; 4];
        }
        let sent = self.sent.unwrap_or(followers).min(followers);
        [followers, followers, sent, followers - sent]
    }
}

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
        end: &MassJobEnd,
        followers: usize,
        articles: usize,
    ) -> Option<String> {
        let status = end.status.as_deref()?;
        let [total, filtered, sent, errors] = end.counts(followers);
        let now = chrono::Utc::now().timestamp();
        let mut xml = String::from("<xml>");
        push_cdata_element(&mut xml, "ToUserName", original_id);
        push_cdata_element(&mut xml, "FromUserName", "mphelper");
        xml.push_str(&format!("<CreateTime>{now}</CreateTime>"));
        push_cdata_element(&mut xml, "MsgType", "event");
        push_cdata_element(&mut xml, "Event", "MASSSENDJOBFINISH");
        xml.push_str(&format!("<MsgID>{msg_id}</MsgID>"));
        push_cdata_element(&mut xml, "Status", status);
        xml.push_str(&format!(
            "<TotalCount>{total}</TotalCount><FilterCount>{filtered}</FilterCount><SentCount>{sent}</SentCount><ErrorCount>{errors}</ErrorCount>"
        ));
        // Each article's URL by its place, as WeChat reports for an mpnews send that
        // went out (its sample of a refused one has none); a success has them even for
        // an account without followers.
        let went_out = end.sent.is_none_or(|reached| reached > 0);
        if articles > 0 && went_out {
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
        Some(xml)
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
            let end = account
                .and_then(|a| a.mass_jobs.get(&msg_id))
                .cloned()
                .unwrap_or_else(MassJobEnd::sent);
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
            // A job still going out has no result to send yet.
            let Some(xml) =
                callbacks.mass_finished(&original_id, msg_id, &end, followers, articles)
            else {
                return;
            };
            xml
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

#[cfg(test)]
mod tests {
    use super::*;

    fn callbacks() -> JobCallbacks {
        JobCallbacks::new("http://127.0.0.1:9", vec![CallbackAccount::demo()])
            .expect("callback config")
    }

    /// The text of element `name` in `xml` (CDATA unwrapped).
    fn field<'a>(xml: &'a str, name: &str) -> &'a str {
        let open = format!("<{name}>");
        let start = xml.find(&open).expect(name) + open.len();
        let end = start + xml[start..].find(&format!("</{name}>")).expect(name);
        let text = &xml[start..end];
        text.strip_prefix("<![CDATA[")
            .and_then(|t| t.strip_suffix("]]>"))
            .unwrap_or(text)
    }

    fn counts(xml: &str) -> [&str; 4] {
        ["TotalCount", "FilterCount", "SentCount", "ErrorCount"].map(|name| field(xml, name))
    }

    #[test]
    fn a_masssendjobfinish_says_how_the_job_ended_with_wechats_counts() {
        let callbacks = callbacks();
        let sent = callbacks
            .mass_finished("gh_demo", 7, &MassJobEnd::sent(), 5, 2)
            .expect("a callback");
        assert_eq!(field(&sent, "Status"), "send success");
        assert_eq!(counts(&sent), ["5", "5", "5", "0"]);
        assert!(
            sent.contains("<ArticleUrlResult><Count>2</Count>"),
            "{sent}"
        );
        let nobody_follows = callbacks
            .mass_finished("gh_demo", 7, &MassJobEnd::sent(), 0, 1)
            .expect("a callback");
        assert_eq!(counts(&nobody_follows), ["0", "0", "0", "0"]);
        assert!(
            nobody_follows.contains("<ArticleUrlResult><Count>1</Count>"),
            "{nobody_follows}"
        );

        // Sent to nobody: every follower it was for counted as an error, no URLs.
        let failed = callbacks
            .mass_finished("gh_demo", 7, &MassJobEnd::send_fail(), 5, 2)
            .expect("a callback");
        assert_eq!(field(&failed, "MsgID"), "7");
        assert_eq!(field(&failed, "Status"), "send fail");
        assert_eq!(counts(&failed), ["5", "5", "0", "5"]);
        assert!(!failed.contains("ArticleUrlResult"), "{failed}");

        let partly = callbacks
            .mass_finished("gh_demo", 7, &MassJobEnd::send_fail_reaching(3), 5, 1)
            .expect("a callback");
        assert_eq!(field(&partly, "Status"), "send fail");
        assert_eq!(counts(&partly), ["5", "5", "3", "2"]);

        // WeChat's review stopped it: every count 0, as in WeChat's sample.
        let refused = callbacks
            .mass_finished("gh_demo", 7, &MassJobEnd::refused(10001), 5, 1)
            .expect("a callback");
        assert_eq!(field(&refused, "Status"), "err(10001)");
        assert_eq!(counts(&refused), ["0", "0", "0", "0"]);
        assert!(!refused.contains("ArticleUrlResult"), "{refused}");

        // Still going out: nothing to report yet.
        assert!(
            callbacks
                .mass_finished("gh_demo", 7, &MassJobEnd::sending(), 5, 1)
                .is_none()
        );
    }
}
