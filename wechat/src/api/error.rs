//! The API client's error type and WeChat's named error codes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A WeChat `errcode`, with the codes this platform reacts to named as constants.
///
/// WeChat answers most failures with HTTP 200 and a body `{"errcode": n, "errmsg": "…"}`;
/// the code is kept as a number so an unnamed code still round-trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrCode(pub i64);

impl ErrCode {
    /// `-1`: system busy. WeChat may have carried the call out before answering it, so
    /// the client retries it only for a call that is safe to repeat; on one that is
    /// not, the error's `unconfirmed` is set (see [`ApiError::outcome_unknown`]).
    pub const SYSTEM_BUSY: Self = Self(-1);
    /// `0`: success.
    pub const OK: Self = Self(0);
    /// `40001`: the AppSecret or the access token is invalid (or the token was superseded).
    pub const INVALID_CREDENTIAL: Self = Self(40001);
    /// `40002`: invalid `grant_type`.
    pub const INVALID_GRANT_TYPE: Self = Self(40002);
    /// `40003`: invalid openid (not a user of this account).
    pub const INVALID_OPENID: Self = Self(40003);
    /// `40007`: invalid `media_id`.
    pub const INVALID_MEDIA_ID: Self = Self(40007);
    /// `40013`: invalid appid.
    pub const INVALID_APPID: Self = Self(40013);
    /// `40014`: invalid access token.
    pub const INVALID_ACCESS_TOKEN: Self = Self(40014);
    /// `40016`: invalid number of top-level menu buttons (1 to 3).
    pub const INVALID_BUTTON_SIZE: Self = Self(40016);
    /// `40017`: invalid menu button type, or a field its type requires is missing.
    pub const INVALID_BUTTON_TYPE: Self = Self(40017);
    /// `40018`: invalid top-level button name length (at most 16 bytes).
    pub const INVALID_BUTTON_NAME_SIZE: Self = Self(40018);
    /// `40019`: invalid button key length (at most 128 bytes).
    pub const INVALID_BUTTON_KEY_SIZE: Self = Self(40019);
    /// `40020`: invalid button URL length (at most 1024 bytes).
    pub const INVALID_BUTTON_URL_SIZE: Self = Self(40020);
    /// `40022`: sub-menus nested deeper than one level.
    pub const INVALID_SUB_BUTTON_LEVEL: Self = Self(40022);
    /// `40023`: invalid number of sub buttons (1 to 5).
    pub const INVALID_SUB_BUTTON_SIZE: Self = Self(40023);
    /// `40024`: invalid sub button type.
    pub const INVALID_SUB_BUTTON_TYPE: Self = Self(40024);
    /// `40025`: invalid sub button name length (at most 60 bytes).
    pub const INVALID_SUB_BUTTON_NAME_SIZE: Self = Self(40025);
    /// `40032`: too many openids in one batch.
    pub const INVALID_OPENID_LIST_SIZE: Self = Self(40032);
    /// `40037`: invalid template id.
    pub const INVALID_TEMPLATE_ID: Self = Self(40037);
    /// `40125`: invalid AppSecret.
    pub const INVALID_APPSECRET: Self = Self(40125);
    /// `40164`: the caller's IP address is not on the account's allow-list.
    pub const IP_NOT_ALLOWED: Self = Self(40164);
    /// `41001`: the access token is missing.
    pub const ACCESS_TOKEN_MISSING: Self = Self(41001);
    /// `42001`: the access token has expired.
    pub const ACCESS_TOKEN_EXPIRED: Self = Self(42001);
    /// `43004`: the user does not follow the account.
    pub const REQUIRE_SUBSCRIBE: Self = Self(43004);
    /// `44002`: empty POST body.
    pub const EMPTY_POST_DATA: Self = Self(44002);
    /// `44004`: empty text content.
    pub const EMPTY_CONTENT: Self = Self(44004);
    /// `45008`: too many articles in a news message.
    pub const ARTICLE_SIZE_OUT_OF_LIMIT: Self = Self(45008);
    /// `45009`: the daily quota of this API is used up; WeChat resets it at midnight,
    /// Beijing time. Retrying before then only fails the same way.
    pub const API_DAILY_QUOTA: Self = Self(45009);
    /// `45011`: calls are too frequent; back off.
    pub const API_MINUTE_QUOTA: Self = Self(45011);
    /// `45015`: outside the 48-hour customer-service window (or the user unfollowed).
    pub const RESPONSE_OUT_OF_TIME: Self = Self(45015);
    /// `45028`: no mass-send quota left.
    pub const NO_MASS_SEND_QUOTA: Self = Self(45028);
    /// `45047`: the 20-message cap of one customer-service window is reached.
    pub const OUT_OF_RESPONSE_COUNT: Self = Self(45047);
    /// `45056`: too many tags on the account.
    pub const TOO_MANY_TAGS: Self = Self(45056);
    /// `45059`: a user carries too many tags.
    pub const USER_TOO_MANY_TAGS: Self = Self(45059);
    /// `45064`: the menu links a mini program not associated with the account.
    pub const MENU_MINIPROGRAM_NOT_LINKED: Self = Self(45064);
    /// `45065`: a mass send with the same `clientmsgid` already exists.
    pub const DUPLICATE_CLIENT_MSG_ID: Self = Self(45065);
    /// `45066`: a mass send with the same `clientmsgid` was retried within a minute
    /// ("clientmsgid retry too fast, retry after 1 minute"); nothing was sent, and the
    /// same `clientmsgid` may be tried again a minute later.
    pub const CLIENT_MSG_ID_RETRY_TOO_FAST: Self = Self(45066);
    /// `45157`: invalid or duplicate tag name.
    pub const INVALID_TAG_NAME: Self = Self(45157);
    /// `45158`: tag name longer than 30 bytes.
    pub const TAG_NAME_TOO_LONG: Self = Self(45158);
    /// `45159`: invalid tag id.
    pub const INVALID_TAG_ID: Self = Self(45159);
    /// `46003`: no menu is set.
    pub const MENU_NOT_EXIST: Self = Self(46003);
    /// `47001`: malformed JSON or missing fields.
    pub const DATA_FORMAT_ERROR: Self = Self(47001);
    /// `48001`: the account is not authorised for this API (e.g. a subscription account).
    pub const API_UNAUTHORIZED: Self = Self(48001);
    /// `53500`: the draft or publish job does not exist.
    pub const PUBLISH_NOT_FOUND: Self = Self(53500);
    /// `61500`: malformed date.
    pub const DATE_FORMAT_ERROR: Self = Self(61500);
    /// `61501`: date range not allowed (span too long, or not before today).
    pub const DATE_RANGE_ERROR: Self = Self(61501);

    /// Returns whether the code says the access token itself was rejected, so a fresh
    /// token and one retry may succeed.
    pub fn is_token_rejected(self) -> bool {
        matches!(
            self,
            Self::INVALID_CREDENTIAL | Self::INVALID_ACCESS_TOKEN | Self::ACCESS_TOKEN_EXPIRED
        )
    }

    /// Returns whether the code is "system busy". The client retries it itself for a
    /// call that is safe to repeat; on a call that is not, WeChat may have carried
    /// it out: check [`ApiError::outcome_unknown`] before retrying on this.
    pub fn is_busy(self) -> bool {
        self == Self::SYSTEM_BUSY
    }

    /// Returns whether the code is a quota, rate or window limit that retrying immediately
    /// cannot fix; the caller must decide (wait, fall back to a template, give up).
    pub fn is_limit(self) -> bool {
        matches!(
            self,
            Self::API_DAILY_QUOTA
                | Self::API_MINUTE_QUOTA
                | Self::RESPONSE_OUT_OF_TIME
                | Self::NO_MASS_SEND_QUOTA
                | Self::OUT_OF_RESPONSE_COUNT
        )
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Everything a call to WeChat's API can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// WeChat answered with a non-zero `errcode`.
    #[error("wechat error {code}: {msg}{}", unconfirmed_note(.unconfirmed))]
    Wechat {
        /// The `errcode`.
        code: ErrCode,
        /// The `errmsg`, as WeChat wrote it (it carries a request id useful to support).
        msg: String,
        /// WeChat answered "system busy" (-1) to a call that is not safe to repeat (a
        /// customer-service or template message without a key, `freepublish/submit`,
        /// `menu/addconditional`, a mass send or preview without a `clientmsgid`, a
        /// new tag): WeChat may have carried it out before answering, so it was not
        /// retried and [`ApiError::outcome_unknown`] is true. Sending it again could
        /// give a citizen the message twice or publish twice.
        unconfirmed: bool,
    },
    /// The request did not complete within the per-call timeout.
    #[error("wechat api call timed out")]
    Timeout,
    /// The request failed in transport (connect, TLS, reset).
    #[error("wechat api transport error")]
    Http(#[source] reqwest::Error),
    /// WeChat answered with an HTTP status other than 200.
    #[error("wechat api answered http status {0}")]
    Status(u16),
    /// The response body was not the JSON this call expects.
    #[error("cannot decode wechat api response: {0}")]
    Decode(String),
    /// The shared access-token cache failed.
    #[error(transparent)]
    TokenCache(#[from] crate::token::TokenCacheError),
    /// The access token could not be had (its fetch timed out, got a 5xx, or an
    /// unreadable answer): the call itself was never made, so nothing was done.
    #[error("no access token: {0}")]
    TokenUnavailable(#[source] Box<ApiError>),
    /// The client was configured wrongly (for example an unparsable base URL).
    #[error("invalid api client configuration: {0}")]
    Config(String),
}

/// What an `unconfirmed` WeChat error adds to its message.
fn unconfirmed_note(unconfirmed: &bool) -> &'static str {
    if *unconfirmed {
        " (not retried: the call may have taken effect)"
    } else {
        ""
    }
}

impl ApiError {
    /// Returns the WeChat `errcode` when the error came from WeChat.
    pub fn code(&self) -> Option<ErrCode> {
        match self {
            Self::Wechat { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Returns whether the call may have taken effect although it failed: the request
    /// may have reached WeChat and only its answer was lost (a timeout, a connection
    /// broken after sending, a proxy's 5xx, an unreadable body), or WeChat answered
    /// "system busy" to a call not safe to repeat (`Wechat { unconfirmed: true }`,
    /// whose code [`ErrCode::is_busy`] still names). A call
    /// that is not idempotent, such as a customer-service message, must not be
    /// repeated blindly after such an error; check this before [`ErrCode::is_busy`]
    /// or any other "try again" rule. WeChat's other error codes, a refused
    /// connection and a failed token fetch are definite: nothing was done.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Timeout | Self::Decode(_) => true,
            Self::Wechat { unconfirmed, .. } => *unconfirmed,
            // A front end's 4xx means the request went no further.
            Self::Status(status) => *status >= 500,
            Self::Http(error) => !(error.is_connect() || error.is_builder()),
            // The token fetch's own answer may be lost; the business call was not made.
            Self::TokenCache(_) | Self::TokenUnavailable(_) | Self::Config(_) => false,
        }
    }

    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        if err.is_timeout() {
            Self::Timeout
        } else if err.is_decode() {
            Self::Decode(err.to_string())
        } else {
            Self::Http(err.without_url())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lost_answer_leaves_the_outcome_unknown() {
        assert!(ApiError::Timeout.outcome_unknown());
        assert!(ApiError::Status(502).outcome_unknown());
        assert!(ApiError::Decode("eof".into()).outcome_unknown());
        assert!(!ApiError::Status(404).outcome_unknown());
        let wechat = ApiError::Wechat {
            code: ErrCode::SYSTEM_BUSY,
            msg: String::new(),
            unconfirmed: false,
        };
        assert!(!wechat.outcome_unknown());
        let unconfirmed = ApiError::Wechat {
            code: ErrCode::SYSTEM_BUSY,
            msg: String::new(),
            unconfirmed: true,
        };
        assert!(unconfirmed.outcome_unknown());
        assert!(!ApiError::Config("base url".into()).outcome_unknown());
        assert!(!ApiError::TokenUnavailable(Box::new(ApiError::Timeout)).outcome_unknown());
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_definite_failure() {
        // Bound but not listening: the connection is refused, nothing was sent.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = socket.local_addr().unwrap().port();
        let error = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{port}/cgi-bin/message/custom/send"
            ))
            .send()
            .await
            .map_err(ApiError::from_reqwest)
            .unwrap_err();
        assert!(matches!(error, ApiError::Http(_)), "{error:?}");
        assert!(!error.outcome_unknown());
    }
}
