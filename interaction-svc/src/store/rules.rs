//! Auto-reply and routing rules: the reads behind every replica's in-memory cache,
//! and the changes the gRPC API makes. Every change is followed by a core NATS
//! notice on `{ns}.interaction-svc.rules.changed.{account}`, on which every replica
//! reloads that account's rules.
//!
//! The notice is deliberately not under `interaction.>`: that prefix belongs to the
//! INTERACTION stream, which would store every notice and hand it to stats-svc.

use chrono::{DateTime, Utc};
use platform::nats::Namespace;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::{NewsItem, ReplyContent, ReplyRule, RoutingRule, RuleError};

/// Why a rule could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum RulesStoreError {
    #[error(transparent)]
    Invalid(#[from] RuleError),
    #[error(transparent)]
    Request(#[from] RequestConflict),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Which table a rule is in; `rule_requests.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Reply,
    Routing,
}

impl RuleKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::Routing => "routing",
        }
    }

    /// The kind a `rule_requests` row names (the table's CHECK allows these two).
    fn from_stored(stored: &str) -> Self {
        if stored == "reply" {
            Self::Reply
        } else {
            Self::Routing
        }
    }
}

impl std::fmt::Display for RuleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller's id for a create and the request it came with, which a retry repeats.
#[derive(Debug, Clone, Copy)]
pub struct CreateRequest<'a> {
    /// At most 64 characters, no control characters (checked at the door).
    pub id: &'a str,
    /// The request as received, its id cleared: what "the same request" means.
    pub body: &'a [u8],
}

/// Why a create's request id cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum RequestConflict {
    /// The id created another rule, or this kind of rule from another request.
    #[error(
        "request_id was already used for another rule of account {account} (it created \
         {kind} rule {rule} from a different request); a retry repeats its request \
         unchanged, a new rule needs a new request_id"
    )]
    Reused {
        account: String,
        kind: RuleKind,
        rule: uuid::Uuid,
    },
    /// The rule the id created has been deleted since.
    #[error(
        "request_id created {kind} rule {rule} of account {account}, which has been \
         deleted since; a new rule needs a new request_id"
    )]
    Deleted {
        account: String,
        kind: RuleKind,
        rule: uuid::Uuid,
    },
}

pub use reply_rules::{CHANGED_WILDCARD, changed_subject};

/// Tells every replica that an account's rules changed.
#[derive(Debug, Clone)]
pub struct RulesNotifier {
    nats: async_nats::Client,
    namespace: Namespace,
}

impl RulesNotifier {
    /// A notifier publishing on `nats` inside `namespace`.
    pub fn new(nats: async_nats::Client, namespace: Namespace) -> Self {
        Self { nats, namespace }
    }

    /// Publishes the notice. Best effort: a lost notice is repaired by the replicas'
    /// periodic reload, so a NATS failure is logged, not returned.
    pub async fn changed(&self, account: &str) {
        let subject = self.namespace.subject(&changed_subject(account));
        let sent = async {
            // The payload is informative only; the subject carries the account.
            self.nats
                .publish(subject, account.as_bytes().to_vec().into())
                .await?;
            self.nats.flush().await?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        };
        match sent.await {
            Ok(()) => tracing::debug!(account, "rules change announced"),
            Err(error) => {
                tracing::warn!(account, %error, "cannot announce a rules change; replicas catch up on their next reload")
            }
        }
    }
}

#[derive(sqlx::FromRow)]
struct ReplyRuleRow {
    id: uuid::Uuid,
    account: String,
    match_kind: String,
    patterns: Vec<String>,
    priority: i32,
    reply_text: String,
    reply_news: Json<Vec<NewsItem>>,
    resolves: bool,
    enabled: bool,
    created_at: DateTime<Utc>,
}

impl TryFrom<ReplyRuleRow> for ReplyRule {
    type Error = RuleError;
    fn try_from(row: ReplyRuleRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            account: row.account,
            kind: row.match_kind.parse()?,
            patterns: row.patterns,
            priority: row.priority,
            reply: ReplyContent::from_parts(row.reply_text, row.reply_news.0)?,
            resolves: row.resolves,
            enabled: row.enabled,
            created_at: row.created_at,
        })
    }
}

const REPLY_COLUMNS: &str = "id, account, match_kind, patterns, priority, reply_text, reply_news, resolves, enabled, created_at";

fn reply_rules(rows: Vec<ReplyRuleRow>) -> Vec<ReplyRule> {
    rows.into_iter()
        .filter_map(|row| {
            let id = row.id;
            ReplyRule::try_from(row)
                .inspect_err(|error| tracing::warn!(rule = %id, %error, "skipping an unusable stored reply rule"))
                .ok()
        })
        .collect()
}

fn text_and_news(reply: &ReplyContent) -> (&str, Vec<NewsItem>) {
    match reply {
        ReplyContent::Text(text) => (text.as_str(), Vec::new()),
        ReplyContent::News(news) => ("", news.clone()),
    }
}

/// Every reply rule of `account` (disabled ones too), in the order they are tried.
#[tracing::instrument(skip(db))]
pub async fn list_reply_rules(db: &PgPool, account: &str) -> Result<Vec<ReplyRule>, sqlx::Error> {
    let rows: Vec<ReplyRuleRow> = sqlx::query_as(&format!(
        "SELECT {REPLY_COLUMNS} FROM reply_rules WHERE account = $1
          ORDER BY priority DESC, created_at, id"
    ))
    .bind(account)
    .fetch_all(db)
    .await?;
    Ok(reply_rules(rows))
}

/// One reply rule.
#[tracing::instrument(skip(db))]
pub async fn get_reply_rule(
    db: &PgPool,
    id: uuid::Uuid,
) -> Result<Option<ReplyRule>, RulesStoreError> {
    let row: Option<ReplyRuleRow> = sqlx::query_as(&format!(
        "SELECT {REPLY_COLUMNS} FROM reply_rules WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(ReplyRule::try_from).transpose()?)
}

/// Saves a new reply rule (its `id` and `created_at` are assigned here) and
/// announces the change. With `request`, a retry of an earlier create with the same
/// id returns the rule that create made (as it is now), announcing nothing.
#[tracing::instrument(skip_all, fields(account = %rule.account))]
pub async fn create_reply_rule(
    db: &PgPool,
    notifier: &RulesNotifier,
    rule: ReplyRule,
    request: Option<CreateRequest<'_>>,
) -> Result<ReplyRule, RulesStoreError> {
    rule.validate()?;
    let id = uuid::Uuid::now_v7();
    let mut tx = db.begin().await?;
    if let Some(request) = request
        && let Some(earlier) = claim(&mut tx, &rule.account, RuleKind::Reply, request, id).await?
    {
        tx.rollback().await?;
        let gone = || RequestConflict::Deleted {
            account: rule.account.clone(),
            kind: RuleKind::Reply,
            rule: earlier,
        };
        return get_reply_rule(db, earlier)
            .await?
            .ok_or_else(|| gone().into());
    }
    let (text, news) = text_and_news(&rule.reply);
    let row: ReplyRuleRow = sqlx::query_as(&format!(
        "INSERT INTO reply_rules (id, account, match_kind, patterns, priority, reply_text,
                                  reply_news, resolves, enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING {REPLY_COLUMNS}"
    ))
    .bind(id)
    .bind(&rule.account)
    .bind(rule.kind.as_str())
    .bind(&rule.patterns)
    .bind(rule.priority)
    .bind(text)
    .bind(Json(news))
    .bind(rule.resolves)
    .bind(rule.enabled)
    .fetch_one(&mut *tx)
    .await?;
    let saved = ReplyRule::try_from(row)?;
    tx.commit().await?;
    notifier.changed(&saved.account).await;
    Ok(saved)
}

/// Records, in the create's transaction, that `request` creates rule `id`. If an
/// earlier call with the same id on `account` did (a concurrent one waits here until
/// that call's transaction ends), returns the id of the rule it created, once sure it
/// was the same request.
async fn claim(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    kind: RuleKind,
    request: CreateRequest<'_>,
    id: uuid::Uuid,
) -> Result<Option<uuid::Uuid>, RulesStoreError> {
    let claimed = sqlx::query(
        "INSERT INTO rule_requests (account, request_id, kind, body, rule_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account, request_id) DO NOTHING",
    )
    .bind(account)
    .bind(request.id)
    .bind(kind.as_str())
    .bind(request.body)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if claimed == 1 {
        return Ok(None);
    }
    // A statement of its own: its snapshot, unlike the INSERT's, sees the row the
    // conflicting transaction committed.
    let (earlier_kind, body, rule): (String, Vec<u8>, uuid::Uuid) = sqlx::query_as(
        "SELECT kind, body, rule_id FROM rule_requests WHERE account = $1 AND request_id = $2",
    )
    .bind(account)
    .bind(request.id)
    .fetch_one(&mut **tx)
    .await?;
    if earlier_kind != kind.as_str() || body != request.body {
        return Err(RequestConflict::Reused {
            account: account.to_owned(),
            kind: RuleKind::from_stored(&earlier_kind),
            rule,
        }
        .into());
    }
    Ok(Some(rule))
}

/// Replaces the reply rule `rule.id` (keeping its account and creation time) and
/// announces the change; `None` if there is no such rule among `accounts`' (`None`:
/// every account's).
#[tracing::instrument(skip_all, fields(rule = %rule.id))]
pub async fn update_reply_rule(
    db: &PgPool,
    notifier: &RulesNotifier,
    rule: ReplyRule,
    accounts: Option<&[String]>,
) -> Result<Option<ReplyRule>, RulesStoreError> {
    // The account cannot move; validate against the stored one.
    let Some(current) = get_reply_rule(db, rule.id)
        .await?
        .filter(|current| accounts.is_none_or(|set| set.contains(&current.account)))
    else {
        return Ok(None);
    };
    let rule = ReplyRule {
        account: current.account,
        ..rule
    };
    rule.validate()?;
    let (text, news) = text_and_news(&rule.reply);
    let row: Option<ReplyRuleRow> = sqlx::query_as(&format!(
        "UPDATE reply_rules
            SET match_kind = $2, patterns = $3, priority = $4, reply_text = $5,
                reply_news = $6, resolves = $7, enabled = $8, updated_at = now()
          WHERE id = $1
         RETURNING {REPLY_COLUMNS}"
    ))
    .bind(rule.id)
    .bind(rule.kind.as_str())
    .bind(&rule.patterns)
    .bind(rule.priority)
    .bind(text)
    .bind(Json(news))
    .bind(rule.resolves)
    .bind(rule.enabled)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let saved = ReplyRule::try_from(row)?;
    notifier.changed(&saved.account).await;
    Ok(Some(saved))
}

/// Deletes a reply rule of `accounts` (`None`: any) and announces the change; false
/// if there was none.
#[tracing::instrument(skip(db, notifier))]
pub async fn delete_reply_rule(
    db: &PgPool,
    notifier: &RulesNotifier,
    id: uuid::Uuid,
    accounts: Option<&[String]>,
) -> Result<bool, sqlx::Error> {
    delete_and_announce(
        db,
        notifier,
        "DELETE FROM reply_rules
          WHERE id = $1 AND ($2::text[] IS NULL OR account = ANY($2))
         RETURNING account",
        id,
        accounts,
    )
    .await
}

#[derive(sqlx::FromRow)]
struct RoutingRuleRow {
    id: uuid::Uuid,
    account: String,
    keywords: Vec<String>,
    category: String,
    department: String,
    priority: i32,
    created_at: DateTime<Utc>,
}

impl From<RoutingRuleRow> for RoutingRule {
    fn from(row: RoutingRuleRow) -> Self {
        Self {
            id: row.id,
            account: row.account,
            keywords: row.keywords,
            category: row.category,
            department: row.department,
            priority: row.priority,
            created_at: row.created_at,
        }
    }
}

const ROUTING_COLUMNS: &str = "id, account, keywords, category, department, priority, created_at";

/// Every routing rule of `account`, in the order they are tried.
#[tracing::instrument(skip(db))]
pub async fn list_routing_rules(
    db: &PgPool,
    account: &str,
) -> Result<Vec<RoutingRule>, sqlx::Error> {
    let rows: Vec<RoutingRuleRow> = sqlx::query_as(&format!(
        "SELECT {ROUTING_COLUMNS} FROM routing_rules WHERE account = $1
          ORDER BY priority DESC, created_at, id"
    ))
    .bind(account)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(RoutingRule::from).collect())
}

/// The id, account and category of every routing rule, of every account.
pub async fn routing_categories(
    db: &PgPool,
) -> Result<Vec<(uuid::Uuid, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, account, category FROM routing_rules ORDER BY account, id")
        .fetch_all(db)
        .await
}

/// Saves a new routing rule (empty keywords: the account's default department) and
/// announces the change. With `request`, a retry of an earlier create with the same
/// id returns the rule that create made (as it is now), announcing nothing.
#[tracing::instrument(skip_all, fields(account = %rule.account))]
pub async fn create_routing_rule(
    db: &PgPool,
    notifier: &RulesNotifier,
    rule: RoutingRule,
    request: Option<CreateRequest<'_>>,
) -> Result<RoutingRule, RulesStoreError> {
    rule.validate()?;
    let id = uuid::Uuid::now_v7();
    let mut tx = db.begin().await?;
    if let Some(request) = request
        && let Some(earlier) = claim(&mut tx, &rule.account, RuleKind::Routing, request, id).await?
    {
        tx.rollback().await?;
        let gone = || RequestConflict::Deleted {
            account: rule.account.clone(),
            kind: RuleKind::Routing,
            rule: earlier,
        };
        return get_routing_rule(db, earlier)
            .await?
            .ok_or_else(|| gone().into());
    }
    let keywords: Vec<&str> = rule
        .keywords
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .collect();
    let row: RoutingRuleRow = sqlx::query_as(&format!(
        "INSERT INTO routing_rules (id, account, keywords, category, department, priority)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING {ROUTING_COLUMNS}"
    ))
    .bind(id)
    .bind(&rule.account)
    .bind(&keywords)
    .bind(rule.category.trim())
    .bind(rule.department.trim())
    .bind(rule.priority)
    .fetch_one(&mut *tx)
    .await?;
    let saved = RoutingRule::from(row);
    tx.commit().await?;
    notifier.changed(&saved.account).await;
    Ok(saved)
}

/// One routing rule.
#[tracing::instrument(skip(db))]
pub async fn get_routing_rule(
    db: &PgPool,
    id: uuid::Uuid,
) -> Result<Option<RoutingRule>, sqlx::Error> {
    let row: Option<RoutingRuleRow> = sqlx::query_as(&format!(
        "SELECT {ROUTING_COLUMNS} FROM routing_rules WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(RoutingRule::from))
}

/// Deletes a routing rule of `accounts` (`None`: any) and announces the change;
/// false if there was none.
#[tracing::instrument(skip(db, notifier))]
pub async fn delete_routing_rule(
    db: &PgPool,
    notifier: &RulesNotifier,
    id: uuid::Uuid,
    accounts: Option<&[String]>,
) -> Result<bool, sqlx::Error> {
    delete_and_announce(
        db,
        notifier,
        "DELETE FROM routing_rules
          WHERE id = $1 AND ($2::text[] IS NULL OR account = ANY($2))
         RETURNING account",
        id,
        accounts,
    )
    .await
}

/// Runs a `DELETE … RETURNING account` and announces the account's rules changed.
async fn delete_and_announce(
    db: &PgPool,
    notifier: &RulesNotifier,
    sql: &'static str,
    id: uuid::Uuid,
    accounts: Option<&[String]>,
) -> Result<bool, sqlx::Error> {
    let account: Option<(String,)> = sqlx::query_as(sql)
        .bind(id)
        .bind(accounts)
        .fetch_optional(db)
        .await?;
    match account {
        Some((account,)) => {
            notifier.changed(&account).await;
            Ok(true)
        }
        None => Ok(false),
    }
}
