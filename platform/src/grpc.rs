//! gRPC plumbing: API-key authentication into a [`Caller`], the shared error-code
//! set mapped to gRPC and HTTP statuses, per-RPC telemetry, and the health and
//! reflection services.

mod telemetry;

pub use telemetry::{GrpcTelemetry, GrpcTelemetryLayer, TelemetryBody, TelemetryFuture};

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

use crate::config::{ConfigError, Env};

/// What a caller may do. Stored per API key in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Editor,
    Reviewer,
    Publisher,
    Agent,
    Admin,
    Viewer,
}

impl Role {
    /// Every role: for calls any authenticated caller may make.
    pub const ALL: [Role; 6] = [
        Self::Editor,
        Self::Reviewer,
        Self::Publisher,
        Self::Agent,
        Self::Admin,
        Self::Viewer,
    ];
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "editor" => Self::Editor,
            "reviewer" => Self::Reviewer,
            "publisher" => Self::Publisher,
            "agent" => Self::Agent,
            "admin" => Self::Admin,
            "viewer" => Self::Viewer,
            other => {
                return Err(format!(
                    "unknown role {other:?}; use editor, reviewer, publisher, agent, admin or viewer"
                ));
            }
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Editor => "editor",
            Self::Reviewer => "reviewer",
            Self::Publisher => "publisher",
            Self::Agent => "agent",
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        })
    }
}

/// The authenticated department behind a gRPC call, put into the request's
/// extensions by [`AuthInterceptor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub department: String,
    pub roles: BTreeSet<Role>,
    /// The accounts this key may read and act on.
    pub accounts: AccountScope,
    /// A short fingerprint of the key (the first 8 hex digits of its SHA-256):
    /// names the key in limits and logs without revealing it.
    pub key_id: String,
}

/// Which accounts of the install a key reaches: a county's key sees its county's
/// account only, never the city's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountScope {
    /// Every account (`dept@*`, or an entry without `@`).
    All,
    /// These accounts only (`dept@city+yizhang`).
    Only(BTreeSet<String>),
}

impl AccountScope {
    /// Whether `account` is in scope.
    pub fn contains(&self, account: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(accounts) => accounts.contains(account),
        }
    }

    /// The accounts a query must be limited to; `None` when every account is in scope.
    pub fn filter(&self) -> Option<Vec<String>> {
        match self {
            Self::All => None,
            Self::Only(accounts) => Some(accounts.iter().cloned().collect()),
        }
    }
}

impl Caller {
    /// Whether the caller's key reaches `account`. Objects of other accounts must
    /// look absent (NOT_FOUND), so their ids cannot be probed.
    pub fn may_access(&self, account: &str) -> bool {
        self.accounts.contains(account)
    }

    /// Whether the caller holds `role`. Admins hold every role.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role) || self.roles.contains(&Role::Admin)
    }

    /// Whether the caller is an admin (sees and acts on every department).
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    /// Refuses with `PERMISSION_DENIED` unless the caller holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), Status> {
        if roles.iter().any(|role| self.has_role(*role)) {
            return Ok(());
        }
        let wanted: Vec<String> = roles.iter().map(Role::to_string).collect();
        Err(Status::permission_denied(format!(
            "department {} needs one of the roles [{}]",
            self.department,
            wanted.join(", ")
        )))
    }

    /// Refuses with `PERMISSION_DENIED` unless the caller may act for `department`.
    pub fn require_department(&self, department: &str) -> Result<(), Status> {
        if self.is_admin() || self.department == department {
            return Ok(());
        }
        Err(Status::permission_denied(format!(
            "department {} may not act for department {department}",
            self.department
        )))
    }
}

/// The caller of a request that passed [`AuthInterceptor`].
pub fn caller<T>(request: &Request<T>) -> Result<&Caller, Status> {
    request.extensions().get::<Caller>().ok_or_else(|| {
        Status::unauthenticated("missing caller: the service is not behind the auth interceptor")
    })
}

/// The [`key_digest`] of the key a call came with, put beside its [`Caller`] by
/// [`AuthInterceptor`]: what outlives the call's start (a stream) looks the key up
/// again with it ([`AuthInterceptor::caller_with_digest`]), so a key removed from
/// the key file stops it too.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CallerKey(pub [u8; 32]);

impl fmt::Debug for CallerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallerKey(..)")
    }
}

/// The key digest of a request that passed [`AuthInterceptor`].
pub fn caller_key<T>(request: &Request<T>) -> Result<CallerKey, Status> {
    request
        .extensions()
        .get::<CallerKey>()
        .copied()
        .ok_or_else(|| {
            Status::unauthenticated(
                "missing caller: the service is not behind the auth interceptor",
            )
        })
}

/// API keys and their callers. Keys are kept only as SHA-256 digests, so a heap
/// dump or a debug print never shows one.
#[derive(Clone, Default)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], Caller>,
    /// The file the keys came from (`API_KEYS_FILE`), re-read every `reload_every`
    /// by the interceptor so keys rotate without a restart.
    source: Option<PathBuf>,
    reload_every: Duration,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("count", &self.by_digest.len())
            .finish()
    }
}

impl ApiKeys {
    /// Reads `API_KEYS` (or `API_KEYS_FILE`): entries separated by commas or newlines,
    /// each `department[@account+account]:role+role:key`, e.g.
    /// `social-security@chenzhou:agent+viewer:k3y`. Without `@` (or with `@*`) the key
    /// reaches every account, as before accounts were named.
    ///
    /// Keys read from `API_KEYS_FILE` are re-read when the file changes (checked every
    /// `API_KEYS_RELOAD_INTERVAL`, default 5 s): a new key works and a removed one is
    /// refused without a restart. A file that no longer parses keeps the keys in use
    /// and is logged (naming the entry, never a key).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let Some(raw) = env.secret("API_KEYS")? else {
            return Ok(Self::default());
        };
        let mut keys =
            Self::parse(raw.expose_secret()).map_err(|reason| ConfigError::InvalidSecret {
                var: "API_KEYS".to_owned(),
                reason,
            })?;
        if env.get("API_KEYS").is_none() {
            keys.source = env.get("API_KEYS_FILE").map(PathBuf::from);
        }
        keys.reload_every = env.period_or("API_KEYS_RELOAD_INTERVAL", Duration::from_secs(5))?;
        Ok(keys)
    }

    /// Parses the `API_KEYS` format; errors say which entry is wrong, never the key.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut keys = Self::default();
        // A key given twice would silently take the rights of its last entry (a county's
        // line copied for the city office, its key left unchanged, makes it admin).
        let mut first_entry = std::collections::HashMap::new();
        let entries = raw
            .split([',', '\n'])
            .map(str::trim)
            .filter(|entry| !entry.is_empty() && !entry.starts_with('#'));
        for (index, entry) in entries.enumerate() {
            let position = index + 1;
            let mut parts = entry.splitn(3, ':');
            let (Some(department), Some(roles), Some(key)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!(
                    "entry {position}: expected department:role+role:key"
                ));
            };
            let (department, accounts) = match department.split_once('@') {
                None => (department, AccountScope::All),
                Some((department, "*")) => (department, AccountScope::All),
                Some((department, accounts)) => {
                    let accounts: BTreeSet<String> = accounts
                        .split('+')
                        .map(str::trim)
                        .map(str::to_owned)
                        .collect();
                    if accounts.iter().any(String::is_empty) {
                        return Err(format!(
                            "entry {position}: accounts after @ must be account ids joined by + (or *)"
                        ));
                    }
                    (department, AccountScope::Only(accounts))
                }
            };
            if department.is_empty() || key.len() < 8 {
                return Err(format!(
                    "entry {position}: department must be set and the key at least 8 characters"
                ));
            }
            // The error names the role's place, not its text: a key with a `:` in it,
            // or swapped with the roles, lands in this field (found by fuzzing).
            let roles = roles
                .split('+')
                .enumerate()
                .map(|(index, role)| {
                    Role::from_str(role).map_err(|_| {
                        format!(
                            "entry {position}: unknown role (number {} of its roles); use editor, \
                             reviewer, publisher, agent, admin or viewer",
                            index + 1
                        )
                    })
                })
                .collect::<Result<BTreeSet<_>, _>>()?;
            if let Some(first) = first_entry.insert(digest(key), position) {
                return Err(format!(
                    "entry {position}: the same key as entry {first}; each key may be given once"
                ));
            }
            keys.insert(
                key,
                Caller {
                    department: department.to_owned(),
                    roles,
                    accounts,
                    key_id: fingerprint(key),
                },
            );
        }
        Ok(keys)
    }

    /// Adds a key.
    pub fn insert(&mut self, key: &str, caller: Caller) {
        self.by_digest.insert(digest(key), caller);
    }

    /// The caller a key belongs to.
    pub fn lookup(&self, key: &str) -> Option<&Caller> {
        self.by_digest.get(&digest(key))
    }

    /// The departments the keys name.
    pub fn departments(&self) -> BTreeSet<String> {
        self.by_digest
            .values()
            .map(|caller| caller.department.clone())
            .collect()
    }

    /// Whether some key of `department` reaches `account`; `None` when no key names the
    /// department (one that only receives work, such as an escalation desk). A service
    /// handing a citizen's ticket to a department checks this, so the ticket never lands
    /// where nobody who can see the account would find it.
    pub fn department_reaches(&self, department: &str, account: &str) -> Option<bool> {
        let mut named = false;
        for caller in self.by_digest.values() {
            if caller.department == department {
                named = true;
                if caller.accounts.contains(account) {
                    return Some(true);
                }
            }
        }
        named.then_some(false)
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether no key is configured (then every call is refused).
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The SHA-256 digest a key is kept as ([`AuthInterceptor::caller_with_digest`]).
pub fn key_digest(key: &str) -> [u8; 32] {
    digest(key)
}

/// The non-secret fingerprint of a key ([`Caller::key_id`]).
pub fn fingerprint(key: &str) -> String {
    digest(key)[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Turns `authorization: Bearer <key>` into a [`Caller`] extension; refuses
/// unknown or missing keys with `UNAUTHENTICATED`.
#[derive(Clone, Debug)]
pub struct AuthInterceptor {
    keys: Arc<KeyRing>,
}

/// The keys in use, swapped whole when their file changes.
#[derive(Debug)]
struct KeyRing {
    current: RwLock<Arc<ApiKeys>>,
    /// Bumped after each swap, for what holds a caller beyond its call's start.
    reloads: tokio::sync::watch::Sender<u64>,
}

impl AuthInterceptor {
    /// An interceptor over `keys`; keys from a file are re-read on change by a task
    /// that ends with the last clone of the interceptor.
    pub fn new(keys: ApiKeys) -> Self {
        let source = keys.source.clone();
        let every = keys.reload_every;
        let ring = Arc::new(KeyRing {
            current: RwLock::new(Arc::new(keys)),
            reloads: tokio::sync::watch::Sender::new(0),
        });
        if let (Some(path), Ok(runtime)) = (source, tokio::runtime::Handle::try_current()) {
            // The content the keys were read from, so the first change is seen.
            let seen = std::fs::read(&path).ok().map(|raw| Sha256::digest(&raw));
            runtime.spawn(watch_key_file(Arc::downgrade(&ring), path, every, seen));
        }
        Self { keys: ring }
    }

    /// The caller `key` belongs to now (after any reload of the key file).
    pub fn caller_for(&self, key: &str) -> Option<Caller> {
        self.current().lookup(key).cloned()
    }

    /// The caller whose key has this [`key_digest`] now: for what keeps the digest
    /// of a key instead of the key (a dashboard session), so a removed key stops
    /// working there too.
    pub fn caller_with_digest(&self, digest: &[u8]) -> Option<Caller> {
        let digest: [u8; 32] = digest.try_into().ok()?;
        self.current().by_digest.get(&digest).cloned()
    }

    /// Changes after each reload of the key file (never without one): a long-lived
    /// call (a stream) awaits it to look its caller up again.
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.keys.reloads.subscribe()
    }

    /// [`ApiKeys::department_reaches`] over the keys in use now.
    pub fn department_reaches(&self, department: &str, account: &str) -> Option<bool> {
        self.current().department_reaches(department, account)
    }

    fn current(&self) -> Arc<ApiKeys> {
        self.keys
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Re-reads `path` every `every` and swaps the keys when its content changed and
/// parses; a broken file keeps the keys in use.
async fn watch_key_file(
    ring: Weak<KeyRing>,
    path: PathBuf,
    every: Duration,
    mut last: Option<sha2::digest::Output<Sha256>>,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(ring) = ring.upgrade() else { return };
        // A small local file: reading it inline costs less than a blocking-pool hop.
        let raw = match std::fs::read(&path) {
            Ok(raw) => raw,
            Err(error) => {
                metrics::counter!("grpc_api_keys_reloads_total", "outcome" => "unreadable")
                    .increment(1);
                tracing::error!(path = %path.display(), %error, "api key file unreadable; keys kept");
                continue;
            }
        };
        let digest = Sha256::digest(&raw);
        if last.as_ref() == Some(&digest) {
            continue;
        }
        last = Some(digest);
        let text = String::from_utf8_lossy(&raw);
        match ApiKeys::parse(text.trim_end_matches(['\r', '\n'])) {
            Ok(mut keys) => {
                keys.source = Some(path.clone());
                keys.reload_every = every;
                let count = keys.len();
                *ring.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                ring.reloads.send_modify(|generation| *generation += 1);
                metrics::counter!("grpc_api_keys_reloads_total", "outcome" => "applied")
                    .increment(1);
                tracing::info!(path = %path.display(), keys = count, "api keys reloaded");
            }
            Err(reason) => {
                metrics::counter!("grpc_api_keys_reloads_total", "outcome" => "rejected")
                    .increment(1);
                tracing::error!(path = %path.display(), %reason, "api key file rejected; keys kept");
            }
        }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let refuse = |reason: &'static str, message: &'static str| {
            metrics::counter!("grpc_auth_rejections_total", "reason" => reason).increment(1);
            tracing::warn!(reason, "grpc call refused");
            Err(Status::unauthenticated(message))
        };
        let Some(header) = request.metadata().get("authorization") else {
            return refuse("missing_key", "missing authorization: Bearer <api key>");
        };
        let Some(key) = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return refuse(
                "malformed_header",
                "authorization must be: Bearer <api key>",
            );
        };
        let digest = digest(key);
        let Some(caller) = self.current().by_digest.get(&digest).cloned() else {
            return refuse("unknown_key", "unknown api key");
        };
        // The span of `GrpcTelemetryLayer` is current here; the department (never the
        // key) labels the rest of the call's logs.
        tracing::Span::current().record("department", caller.department.as_str());
        request.extensions_mut().insert(caller);
        request.extensions_mut().insert(CallerKey(digest));
        Ok(request)
    }
}

/// A deliberately small set of error kinds, each mapped once to a gRPC code and
/// once to an HTTP status. Domain errors of every service map onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    Unauthenticated,
    FailedPrecondition,
    ResourceExhausted,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The gRPC status code.
    pub fn grpc(self) -> tonic::Code {
        match self {
            Self::InvalidArgument => tonic::Code::InvalidArgument,
            Self::NotFound => tonic::Code::NotFound,
            Self::AlreadyExists => tonic::Code::AlreadyExists,
            Self::PermissionDenied => tonic::Code::PermissionDenied,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::FailedPrecondition => tonic::Code::FailedPrecondition,
            Self::ResourceExhausted => tonic::Code::ResourceExhausted,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::Internal => tonic::Code::Internal,
        }
    }

    /// The HTTP status.
    pub fn http(self) -> http::StatusCode {
        match self {
            Self::InvalidArgument => http::StatusCode::BAD_REQUEST,
            Self::NotFound => http::StatusCode::NOT_FOUND,
            Self::AlreadyExists => http::StatusCode::CONFLICT,
            Self::PermissionDenied => http::StatusCode::FORBIDDEN,
            Self::Unauthenticated => http::StatusCode::UNAUTHORIZED,
            Self::FailedPrecondition => http::StatusCode::PRECONDITION_FAILED,
            Self::ResourceExhausted => http::StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A status with `message`; for `Internal`, the message is replaced by a
    /// generic one and the detail is logged instead, so no internals leak.
    /// Messages are cut to [`MAX_STATUS_CHARS`]: they may echo a caller's value (a
    /// 60 KB id must not come back as a 60 KB `grpc-message`).
    pub fn status(self, message: impl Into<String>) -> Status {
        let message = message.into();
        if self == Self::Internal {
            tracing::error!(detail = %message, "internal error");
            return Status::internal("internal error");
        }
        Status::new(self.grpc(), truncate(message))
    }
}

/// The most characters of a status message.
pub const MAX_STATUS_CHARS: usize = 200;

fn truncate(message: String) -> String {
    match message.char_indices().nth(MAX_STATUS_CHARS) {
        None => message,
        Some((cut, _)) => format!("{}…", &message[..cut]),
    }
}

/// The connections a gRPC server accepts on `listener`, each with `TCP_NODELAY`
/// set: without it, a response of a few hundred bytes waits for the client's
/// delayed ACK (Nagle's algorithm), about 40 ms, while a small one does not.
/// (`Server::tcp_nodelay` applies only to listeners tonic binds itself.)
pub fn nodelay_incoming(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

/// The health service's name, listed by reflection beside the service's own.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

fn reflection_builder(served: &[&str]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(HEALTH_SERVICE);
    served
        .iter()
        .fold(builder, |builder, name| builder.with_service_name(*name))
}

/// gRPC reflection (v1, and v1alpha for grpcurl before 1.8.8) listing only the
/// services this port serves, so `grpcurl list` shows what can actually be called.
pub fn reflection_services(
    served: &[&str],
) -> (
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
) {
    let invalid = "the descriptor sets are generated at build time and valid";
    (
        reflection_builder(served).build_v1().expect(invalid),
        reflection_builder(served).build_v1alpha().expect(invalid),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    fn keys() -> ApiKeys {
        ApiKeys::parse(
            "social-security:agent+viewer:key-social-1234, city-office:admin:key-admin-1234",
        )
        .unwrap()
    }

    #[test]
    fn known_key_becomes_a_caller() {
        let mut interceptor = AuthInterceptor::new(keys());
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert("authorization", "Bearer key-social-1234".parse().unwrap());
        let request = interceptor.call(request).unwrap();
        let caller = caller(&request).unwrap();
        assert_eq!(caller.department, "social-security");
        assert!(caller.has_role(Role::Agent));
        assert!(!caller.has_role(Role::Publisher));
        // The key's digest rides along, so a stream can look its caller up again.
        let key = caller_key(&request).unwrap();
        assert_eq!(
            interceptor.caller_with_digest(&key.0).as_ref(),
            Some(caller)
        );
    }

    #[test]
    fn unknown_missing_or_malformed_keys_are_unauthenticated() {
        let mut interceptor = AuthInterceptor::new(keys());
        let missing = interceptor.call(Request::new(())).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);

        let mut unknown = Request::new(());
        unknown
            .metadata_mut()
            .insert("authorization", "Bearer nope-nope-nope".parse().unwrap());
        let status = interceptor.call(unknown).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert_eq!(status.message(), "unknown api key");

        let mut malformed = Request::new(());
        malformed
            .metadata_mut()
            .insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(
            interceptor.call(malformed).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }

    #[test]
    fn a_department_reaches_the_accounts_of_any_of_its_keys() {
        let keys = ApiKeys::parse(
            "transport@chenzhou:agent:key-transport-city, transport@yizhang:viewer:key-transport-yz, \
             county-desk@yizhang:agent:key-county-desk1, city-office:admin:key-admin-1234",
        )
        .unwrap();
        assert_eq!(keys.department_reaches("transport", "yizhang"), Some(true));
        assert_eq!(
            keys.department_reaches("county-desk", "chenzhou"),
            Some(false)
        );
        assert_eq!(
            keys.department_reaches("city-office", "anything"),
            Some(true)
        );
        assert_eq!(keys.department_reaches("escalation", "chenzhou"), None);
        let interceptor = AuthInterceptor::new(keys);
        assert_eq!(
            interceptor.department_reaches("county-desk", "yizhang"),
            Some(true)
        );
    }

    #[test]
    fn department_and_role_checks() {
        let keys = keys();
        let agent = keys.lookup("key-social-1234").unwrap();
        assert!(agent.require_department("social-security").is_ok());
        assert_eq!(
            agent.require_department("transport").unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            agent.require_any(&[Role::Publisher]).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        let admin = keys.lookup("key-admin-1234").unwrap();
        assert!(admin.require_department("transport").is_ok());
        assert!(admin.require_any(&[Role::Publisher]).is_ok());
    }

    #[test]
    fn bad_entries_are_named_without_the_key() {
        let error = ApiKeys::parse("a:agent:good-key-123,b:wizard:secret-key-999").unwrap_err();
        assert!(
            error.starts_with("entry 2: unknown role (number 1 of its roles)"),
            "{error}"
        );
        assert!(!error.contains("secret-key-999"));
        assert!(ApiKeys::parse("a:agent").is_err());
        assert!(ApiKeys::parse("a:agent:short").is_err());
    }

    #[test]
    fn a_key_given_twice_is_refused_without_quoting_it() {
        let error = ApiKeys::parse(
            "county@yizhang:agent:county-key-1234,city-office:admin:county-key-1234",
        )
        .unwrap_err();
        assert_eq!(
            error,
            "entry 2: the same key as entry 1; each key may be given once"
        );
    }

    /// Regression from fuzzing: a key swapped with the roles, or holding a `:`,
    /// reaches the roles field, and the error used to quote it.
    #[test]
    fn a_key_in_the_roles_field_is_not_quoted() {
        for raw in [
            "transport:k3y-0f-the-vault:agent+viewer",
            "transport:agent:key-one-1234,b:k3y-0f-the-vault:agent+viewer",
            "transport@a+b:viewer+k3y-0f-the-vault:agent-key-123",
        ] {
            let error = ApiKeys::parse(raw).unwrap_err();
            assert!(!error.contains("k3y-0f-the-vault"), "{error}");
            assert!(error.starts_with("entry "), "{error}");
            assert!(error.contains(": unknown role (number "), "{error}");
        }
    }

    #[test]
    fn internal_errors_do_not_leak_detail() {
        let status = ErrorCode::Internal.status("pool timed out on host db-1");
        assert_eq!(status.message(), "internal error");
        assert_eq!(
            ErrorCode::NotFound.status("ticket t1").code(),
            tonic::Code::NotFound
        );
        assert_eq!(ErrorCode::AlreadyExists.http(), http::StatusCode::CONFLICT);
    }

    #[tokio::test]
    async fn accepted_grpc_connections_do_not_wait_for_delayed_acks() {
        use tokio_stream::StreamExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut incoming = Box::pin(nodelay_incoming(listener));
        let _client = tokio::net::TcpStream::connect(address).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap());
    }

    fn call(interceptor: &mut AuthInterceptor, key: &str) -> Result<Caller, Status> {
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        let request = interceptor.call(request)?;
        Ok(caller(&request)?.clone())
    }

    /// Polls `check` every 20 ms until it holds, for at most 10 s.
    async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_rotated_key_file_takes_effect_without_a_restart() {
        let path = std::env::temp_dir().join(format!("api-keys-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "press:editor:old-key-123456\n").unwrap();
        let env = Env::from_pairs([
            ("API_KEYS_FILE", path.to_str().unwrap()),
            ("API_KEYS_RELOAD_INTERVAL", "20ms"),
        ]);
        let mut interceptor = AuthInterceptor::new(ApiKeys::from_env(&env).unwrap());
        let reloads = interceptor.reloads();
        assert_eq!(
            call(&mut interceptor, "old-key-123456").unwrap().department,
            "press"
        );
        assert!(!reloads.has_changed().unwrap(), "nothing reloaded yet");

        std::fs::write(&path, "press@chenzhou:editor:new-key-123456\n").unwrap();
        eventually("the new key is accepted", || {
            call(&mut interceptor, "new-key-123456").is_ok()
        })
        .await;
        assert!(reloads.has_changed().unwrap(), "a reload is announced");
        let status = call(&mut interceptor, "old-key-123456").unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(
            !call(&mut interceptor, "new-key-123456")
                .unwrap()
                .may_access("yizhang")
        );

        // A broken file keeps the keys in use.
        std::fs::write(&path, "press:wizard:newer-key-123456\n").unwrap();
        let before = call(&mut interceptor, "new-key-123456");
        assert!(before.is_ok());
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(call(&mut interceptor, "new-key-123456").is_ok());
        }
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn echoed_values_are_cut_short() {
        let echoed = ErrorCode::InvalidArgument.status(format!("id {:?}", "x".repeat(60_000)));
        assert!(echoed.message().chars().count() <= MAX_STATUS_CHARS + 1);
        assert!(echoed.message().ends_with('…'));
        let short = ErrorCode::NotFound.status("ticket t1 not found");
        assert_eq!(short.message(), "ticket t1 not found");
    }

    #[test]
    fn a_key_names_its_accounts_or_reaches_them_all() {
        let keys = ApiKeys::parse(
            "yizhang-office@yizhang:agent:key-county-1234, \
             press@chenzhou+yizhang:editor:key-press-12345, \
             city-office@*:admin:key-admin-1234, old-style:viewer:key-old-12345",
        )
        .unwrap();
        let county = keys.lookup("key-county-1234").unwrap();
        assert_eq!(county.department, "yizhang-office");
        assert!(county.may_access("yizhang"));
        assert!(!county.may_access("chenzhou"));
        assert_eq!(county.accounts.filter(), Some(vec!["yizhang".to_owned()]));
        let press = keys.lookup("key-press-12345").unwrap();
        assert!(press.may_access("chenzhou") && press.may_access("yizhang"));
        assert!(!press.may_access("guiyang"));
        for all in ["key-admin-1234", "key-old-12345"] {
            let caller = keys.lookup(all).unwrap();
            assert_eq!(caller.accounts, AccountScope::All);
            assert!(caller.may_access("anything"));
            assert_eq!(caller.accounts.filter(), None);
        }
    }

    #[test]
    fn an_empty_account_list_names_the_entry() {
        let error =
            ApiKeys::parse("ok:viewer:key-ok-123456\nbad@:viewer:key-bad-123456").unwrap_err();
        assert!(error.starts_with("entry 2:"), "{error}");
        assert!(!error.contains("key-bad"), "{error}");
    }
}
