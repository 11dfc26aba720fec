//! A caller's id for one create call (`request_id` of CreateService, CreateArticle
//! and UploadImage). A call whose caller gave up (its deadline, a proxy's timeout)
//! may have created its service, article or image all the same; its retry carries
//! the same id and is answered with what the first call created, instead of making
//! a second one. The same id with other fields is another request, and refused.

use uuid::Uuid;

pub use platform::ids::RequestId;

/// How long a request id is kept: a retry of a create whose caller gave up comes
/// within minutes (a deadline, a proxy's timeout) or, for a script stopped part-way,
/// the next working days; a retry after that creates anew. 30 days keeps a month of
/// holidays in, and the table to a month of creates.
pub const RETENTION_DAYS: i64 = 30;

/// What a create call makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    Service,
    Article,
    Image,
}

impl CreateKind {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Article => "article",
            Self::Image => "image",
        }
    }

    /// The RPC that makes it, as a caller knows it.
    pub const fn rpc(self) -> &'static str {
        match self {
            Self::Service => "CreateService",
            Self::Article => "CreateArticle",
            Self::Image => "UploadImage",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::Service, Self::Article, Self::Image]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// A create call that carries an id: the id, and the request as sent without it
/// (its digest tells a retry, which repeats every field, from another request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub id: RequestId,
    pub body: Vec<u8>,
}

/// The first call that gave an id, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierRequest {
    /// Its [`CreateKind`]'s stored name.
    pub kind: String,
    /// The department of the key that made it.
    pub department: String,
    /// Whether its body's digest is this call's.
    pub same_body: bool,
    /// What it created.
    pub result: Uuid,
}

/// Decides a call whose id an earlier call of the same account holds: a retry (the
/// same RPC, department and fields) is answered with the earlier call's result;
/// anything else is refused, naming what the id was used for.
pub fn replay(
    earlier: &EarlierRequest,
    kind: CreateKind,
    department: &str,
    id: &RequestId,
) -> Result<Uuid, RequestIdError> {
    let used_by = if CreateKind::parse(&earlier.kind) != Some(kind) {
        let rpc = CreateKind::parse(&earlier.kind).map_or("another", CreateKind::rpc);
        format!("an earlier {rpc} call")
    } else if earlier.department != department {
        "another department's call".to_owned()
    } else if !earlier.same_body {
        format!("an earlier {} call with other fields", kind.rpc())
    } else {
        return Ok(earlier.result);
    };
    Err(RequestIdError::Reused {
        id: id.as_str().to_owned(),
        used_by,
    })
}

/// A request id that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestIdError {
    #[error("request_id {0}")]
    Invalid(#[from] platform::ids::RequestIdError),
    #[error(
        "request_id {id} was already used by {used_by} on this account; a new call needs a \
         new request_id"
    )]
    Reused { id: String, used_by: String },
    /// The first call's service was deleted since (articles and images stay).
    #[error("the {what} {result} that request_id {id} created has been deleted since")]
    Gone {
        id: String,
        what: &'static str,
        result: Uuid,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> RequestId {
        RequestId::parse(raw).unwrap().unwrap()
    }

    fn earlier(kind: &str, department: &str, same_body: bool) -> EarlierRequest {
        EarlierRequest {
            kind: kind.into(),
            department: department.into(),
            same_body,
            result: Uuid::from_u128(7),
        }
    }

    #[test]
    fn a_retry_gets_the_first_result_and_anything_else_is_refused_saying_why() {
        let rid = id("r-1");
        let first = earlier("article", "press", true);
        assert_eq!(
            replay(&first, CreateKind::Article, "press", &rid),
            Ok(Uuid::from_u128(7))
        );
        let refusal = |e: &EarlierRequest, kind, department| {
            replay(e, kind, department, &rid).unwrap_err().to_string()
        };
        let other_fields = refusal(
            &earlier("article", "press", false),
            CreateKind::Article,
            "press",
        );
        assert!(
            other_fields.starts_with(
                "request_id r-1 was already used by an earlier CreateArticle call with other fields"
            ),
            "{other_fields}"
        );
        assert!(
            refusal(&first, CreateKind::Image, "press")
                .contains("used by an earlier CreateArticle call on this account")
        );
        assert!(
            refusal(&first, CreateKind::Article, "water").contains("another department's call")
        );
    }
}
