//! `govwx stats …`: rollups from stats-svc.

use proto::stats::v1::GetAccountOverviewRequest;
use serde_json::json;

use crate::cli::Stats;
use crate::client::Target;
use crate::error::Error;
use crate::output::{Out, fields};

pub async fn run(command: Stats, target: &Target, out: &Out) -> Result<(), Error> {
    let mut client = target.stats().await?;
    match command {
        Stats::Overview { account } => {
            let request = GetAccountOverviewRequest {
                account: account.account,
            };
            let o = client
                .get_account_overview(request)
                .await
                .map_err(|s| target.status(s))?
                .into_inner();
            if out.json {
                return out.document(&json!({
                    "account": o.account,
                    "messages": o.messages,
                    "events": o.events,
                    "subscribes": o.subscribes,
                    "unsubscribes": o.unsubscribes,
                    "last_inbound_at": out.json_time(o.last_inbound_at.as_ref()),
                }));
            }
            out.line(&fields(&[
                ("account", o.account),
                ("messages", o.messages.to_string()),
                ("events", o.events.to_string()),
                ("subscribes", o.subscribes.to_string()),
                ("unsubscribes", o.unsubscribes.to_string()),
                ("last inbound", out.time(o.last_inbound_at.as_ref())),
            ]))
        }
    }
}
