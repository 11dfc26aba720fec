//! Per-account inbound counters; the same transaction grows the daily rollups
//! (`store::rollups`) and claims the events (`platform::consumer::apply_once_then`), so
//! each event counts once.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::{AccountId, Counts, InboundFact};
use crate::store::rollups;

/// An account's counters as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInbound {
    pub counts: Counts,
    pub last_inbound_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct AccountInboundRow {
    messages: i64,
    events: i64,
    subscribes: i64,
    unsubscribes: i64,
    last_inbound_at: Option<DateTime<Utc>>,
}

/// Counts inbound events, in the caller's transaction, which has claimed them (a
/// redelivery, or a duplicate that slipped past JetStream's window, is not among
/// `facts`). One upsert per account, whatever the number of events.
#[tracing::instrument(skip_all, fields(events = facts.len()))]
pub async fn add_all(
    tx: &mut Transaction<'_, Postgres>,
    facts: &[InboundFact],
    office: FixedOffset,
) -> Result<(), sqlx::Error> {
    let mut per_account: BTreeMap<&str, (Counts, Option<DateTime<Utc>>)> = BTreeMap::new();
    let mut tallies = Vec::with_capacity(facts.len() * 2);
    for fact in facts {
        tallies.extend(fact.tallies(office));
        let add = fact.increments();
        let (sum, last) = per_account.entry(fact.account.as_str()).or_default();
        sum.messages += add.messages;
        sum.events += add.events;
        sum.subscribes += add.subscribes;
        sum.unsubscribes += add.unsubscribes;
        *last = (*last).max(fact.occurred_at);
    }
    for (account, (add, last)) in per_account {
        // GREATEST ignores NULL, so a first event, or one without a time, keeps what is known.
        sqlx::query(
            "INSERT INTO account_inbound
                 (account, messages, events, subscribes, unsubscribes, last_inbound_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (account) DO UPDATE SET
                 messages        = account_inbound.messages + EXCLUDED.messages,
                 events          = account_inbound.events + EXCLUDED.events,
                 subscribes      = account_inbound.subscribes + EXCLUDED.subscribes,
                 unsubscribes    = account_inbound.unsubscribes + EXCLUDED.unsubscribes,
                 last_inbound_at = GREATEST(account_inbound.last_inbound_at, EXCLUDED.last_inbound_at)",
        )
        .bind(account)
        .bind(to_db(add.messages))
        .bind(to_db(add.events))
        .bind(to_db(add.subscribes))
        .bind(to_db(add.unsubscribes))
        .bind(last)
        .execute(&mut **tx)
        .await?;
    }
    rollups::add(tx, &tallies).await
}

/// An account's counters; zeros and no time for an account never seen.
#[tracing::instrument(skip(db))]
pub async fn get(db: &PgPool, account: &AccountId) -> Result<AccountInbound, sqlx::Error> {
    let row: Option<AccountInboundRow> = sqlx::query_as(
        "SELECT messages, events, subscribes, unsubscribes, last_inbound_at
           FROM account_inbound WHERE account = $1",
    )
    .bind(account.as_str())
    .fetch_optional(db)
    .await?;
    Ok(match row {
        None => AccountInbound {
            counts: Counts::default(),
            last_inbound_at: None,
        },
        Some(row) => AccountInbound {
            counts: Counts {
                messages: from_db(row.messages),
                events: from_db(row.events),
                subscribes: from_db(row.subscribes),
                unsubscribes: from_db(row.unsubscribes),
            },
            last_inbound_at: row.last_inbound_at,
        },
    })
}

// Increments are small counts and the table checks counters are never negative, so
// neither conversion can lose anything in practice; saturate rather than panic.
fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_db(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
