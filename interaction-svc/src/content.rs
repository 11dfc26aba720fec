//! The door to content-svc: its gRPC directory (`ListCategories`, `ListServices`,
//! `GetService`), read with this service's API key for the directory bootstrap
//! (`app::directory::bootstrap`). Decodes the wire types into the replica's
//! [`ServiceVersion`] and maps statuses to [`ContentError`]; no rule lives here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use proto::content::v1 as pb;
use proto::content::v1::content_service_client::ContentServiceClient;
use secrecy::ExposeSecret as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::config::DirectorySyncConfig;
use crate::store::directory::ServiceVersion;

/// How long connecting and one call may take: a stalled content-svc fails the pass,
/// which is retried with backoff, instead of hanging it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Listings are read one category at a time (ListServices has no page token); this
/// bounds one category's answer well above a city's (descriptions ≤ 1,000 characters).
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// Why content-svc could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content-svc is unreachable or busy ({0})")]
    Unavailable(String),
    #[error("content-svc refused CONTENT_API_KEY ({0}); the key must be in content-svc's API_KEYS")]
    Refused(String),
    #[error("account {0} is not found in content-svc (CONTENT_API_KEY must reach every account)")]
    AccountNotFound(String),
    #[error("content-svc answered {code:?}: {message}")]
    Failed { code: Code, message: String },
    #[error("content-svc sent an unusable service {id:?}: {reason}")]
    Malformed { id: String, reason: String },
}

impl ContentError {
    fn from_status(status: &Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
                Self::Unavailable(message)
            }
            Code::Unauthenticated | Code::PermissionDenied => Self::Refused(message),
            code => Self::Failed { code, message },
        }
    }
}

/// Puts the API key on every request; the value is marked sensitive (never logged).
#[derive(Clone)]
pub struct BearerKey(MetadataValue<Ascii>);

impl Interceptor for BearerKey {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// content-svc's directory, as this service reads it.
#[derive(Clone)]
pub struct ContentDirectory {
    client: ContentServiceClient<InterceptedService<Channel, BearerKey>>,
    url: String,
}

impl std::fmt::Debug for ContentDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentDirectory")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ContentDirectory {
    /// A client of `config.content_url`. Connects lazily: an unreachable content-svc
    /// fails a call (retried by the job), never the start.
    pub fn new(config: &DirectorySyncConfig) -> Result<Self, ContentError> {
        let invalid = |reason: String| ContentError::Failed {
            code: Code::InvalidArgument,
            message: reason,
        };
        let endpoint = Endpoint::from_shared(config.content_url.clone())
            .map_err(|e| invalid(format!("CONTENT_GRPC_URL: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .tcp_nodelay(true);
        let mut key: MetadataValue<Ascii> = format!("Bearer {}", config.api_key.expose_secret())
            .parse()
            .map_err(|_| invalid("CONTENT_API_KEY is not a header value".to_owned()))?;
        key.set_sensitive(true);
        let client =
            ContentServiceClient::with_interceptor(endpoint.connect_lazy(), BearerKey(key))
                .max_decoding_message_size(MAX_MESSAGE);
        Ok(Self {
            client,
            url: config.content_url.clone(),
        })
    }

    /// Every category code, in display order.
    pub async fn categories(&self) -> Result<Vec<String>, ContentError> {
        let reply = self
            .client
            .clone()
            .list_categories(pb::ListCategoriesRequest {})
            .await
            .map_err(|s| ContentError::from_status(&s))?;
        Ok(reply
            .into_inner()
            .categories
            .into_iter()
            .map(|c| c.code)
            .collect())
    }

    /// The ids of the enabled services `account` shows in `category` (its own and
    /// those shared with it).
    pub async fn listed(
        &self,
        account: &str,
        category: &str,
    ) -> Result<Vec<uuid::Uuid>, ContentError> {
        let reply = self
            .client
            .clone()
            .list_services(pb::ListServicesRequest {
                account: account.to_owned(),
                category: category.to_owned(),
            })
            .await
            .map_err(|status| match status.code() {
                Code::NotFound => ContentError::AccountNotFound(account.to_owned()),
                _ => ContentError::from_status(&status),
            })?;
        reply
            .into_inner()
            .services
            .iter()
            .map(|entry| service_id(&entry.id))
            .collect()
    }

    /// One service with every field, as a replica version stamped with its
    /// `updated_at`; `None` when content-svc does not have it (deleted, or shown on
    /// no account the key reaches).
    pub async fn service(&self, id: uuid::Uuid) -> Result<Option<ServiceVersion>, ContentError> {
        let reply = self
            .client
            .clone()
            .get_service(pb::ServiceRef { id: id.to_string() })
            .await;
        match reply {
            Ok(service) => version(service.into_inner()).map(Some),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(ContentError::from_status(&status)),
        }
    }
}

fn service_id(raw: &str) -> Result<uuid::Uuid, ContentError> {
    uuid::Uuid::parse_str(raw).map_err(|e| ContentError::Malformed {
        id: raw.to_owned(),
        reason: e.to_string(),
    })
}

/// The replica's version of `service`: the owner first among the accounts showing
/// it (as the events carry them), versioned by content-svc's `updated_at`, so any
/// later change's event is newer and any earlier one older.
fn version(service: pb::Service) -> Result<ServiceVersion, ContentError> {
    let id = service_id(&service.id)?;
    let malformed = |reason: &str| ContentError::Malformed {
        id: service.id.clone(),
        reason: reason.to_owned(),
    };
    if service.account.is_empty() {
        return Err(malformed("account is empty"));
    }
    let changed_at = service
        .updated_at
        .as_ref()
        .and_then(|at| DateTime::<Utc>::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?))
        .ok_or_else(|| malformed("updated_at is missing"))?;
    let mut accounts = vec![service.account.clone()];
    for account in service.also_shown_on {
        if !accounts.contains(&account) {
            accounts.push(account);
        }
    }
    Ok(ServiceVersion {
        id,
        event_id: format!("bootstrap:{id}"),
        owner_account: service.account,
        accounts,
        category: service.category,
        name: service.name,
        department: service.department,
        description: service.description,
        url: service.url,
        keywords: service.keywords,
        synonyms: service.synonyms,
        enabled: service.enabled,
        deleted: false,
        changed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> pb::Service {
        pb::Service {
            id: uuid::Uuid::now_v7().to_string(),
            account: "lincheng".into(),
            category: "housing_fund".into(),
            name: "公积金提取".into(),
            url: "https://gjj.example.gov.cn/tq".into(),
            keywords: vec!["提取公积金".into()],
            also_shown_on: vec!["lincheng_gov".into(), "lincheng".into()],
            enabled: true,
            updated_at: Some(prost_types::Timestamp {
                seconds: 1_780_000_000,
                nanos: 5,
            }),
            ..pb::Service::default()
        }
    }

    #[test]
    fn a_service_becomes_a_version_stamped_with_its_update_time_shown_by_its_owner_first() {
        let version = version(service()).unwrap();
        assert_eq!(version.accounts, ["lincheng", "lincheng_gov"]);
        assert_eq!(version.owner_account, "lincheng");
        assert_eq!(version.changed_at.timestamp(), 1_780_000_000);
        assert!(version.event_id.starts_with("bootstrap:"));
        assert!(version.enabled && !version.deleted);
    }

    #[test]
    fn a_service_without_id_account_or_time_is_malformed() {
        for broken in [
            pb::Service {
                id: "x".into(),
                ..service()
            },
            pb::Service {
                account: String::new(),
                ..service()
            },
            pb::Service {
                updated_at: None,
                ..service()
            },
        ] {
            assert!(matches!(
                version(broken),
                Err(ContentError::Malformed { .. })
            ));
        }
    }
}
