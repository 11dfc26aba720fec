//! Answers the gateways' requests for an account's reply rules
//! (`{ns}.interaction-svc.rules.snapshot.{account}`) with an encoded
//! `ReplyRuleSnapshot`. A gateway asks at start-up, on every change notice and
//! periodically, then answers from it the callbacks no citizen's state can change
//! (`reply_rules::answer_without_state`) without a request to the reply path.
//!
//! Each answer is read from the database, not from this replica's cache: the notice
//! that made the gateway ask may not have reached this replica's cache yet.

use futures::StreamExt;
use platform::shutdown::Drain;
use prost::Message as _;
use sqlx::PgPool;

use crate::domain::RuleSet;
use crate::store::rules;

/// Answers every request on `requests` (a queue subscription to
/// `reply_rules::SNAPSHOT_WILDCARD` in the reply path's queue group) until the drain
/// begins. A request whose rules cannot be read gets no answer: the gateway keeps the
/// rules it has and asks again.
pub async fn serve(
    db: PgPool,
    nats: async_nats::Client,
    mut requests: async_nats::Subscriber,
    drain: Drain,
) {
    loop {
        let request = tokio::select! {
            () = drain.stopping().cancelled() => break,
            request = requests.next() => request,
        };
        let Some(request) = request else { break };
        let (Some(reply_to), Some(account)) = (
            request.reply.clone(),
            request
                .subject
                .as_str()
                .rsplit('.')
                .next()
                .map(str::to_owned),
        ) else {
            continue;
        };
        let db = db.clone();
        let nats = nats.clone();
        drain.spawn(async move {
            match rules::list_reply_rules(&db, &account).await {
                Ok(replies) => {
                    let snapshot = RuleSet::new(replies).to_snapshot(&account);
                    metrics::counter!("interaction_rule_snapshots_total", "outcome" => "sent")
                        .increment(1);
                    if let Err(error) = nats
                        .publish(reply_to, snapshot.encode_to_vec().into())
                        .await
                    {
                        tracing::warn!(%error, account, "cannot send the rules snapshot");
                    }
                }
                Err(error) => {
                    metrics::counter!("interaction_rule_snapshots_total", "outcome" => "error")
                        .increment(1);
                    tracing::warn!(%error, account, "cannot read the rules for a snapshot");
                }
            }
        });
    }
    let _ = requests.unsubscribe().await;
    tracing::info!("rules snapshots stopped");
}
