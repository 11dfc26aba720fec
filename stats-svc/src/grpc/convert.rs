//! Wire messages ⇄ domain types and store rows, at the service edge.

use chrono::{DateTime, Utc};
use proto::stats::v1 as pb;

use crate::domain::{AccountId, InboundError};
use crate::store::account_inbound::AccountInbound;

/// The account a `GetAccountOverview` request names.
pub fn account(request: &pb::GetAccountOverviewRequest) -> Result<AccountId, InboundError> {
    Ok(AccountId::parse(request.account.as_str())?)
}

/// An account's counters as served.
pub fn overview(account: &AccountId, stored: AccountInbound) -> pb::AccountOverview {
    pb::AccountOverview {
        account: account.as_str().to_owned(),
        messages: stored.counts.messages,
        events: stored.counts.events,
        subscribes: stored.counts.subscribes,
        unsubscribes: stored.counts.unsubscribes,
        last_inbound_at: stored.last_inbound_at.map(timestamp),
    }
}

/// A point in time on the wire.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        // Always below 2e9 (a leap second is at most 1_999_999_999).
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Counts;

    #[test]
    fn an_overview_carries_the_counts_and_the_latest_time() {
        let at = DateTime::from_timestamp(1_700_000_030, 250).unwrap();
        let wire = overview(
            &AccountId::parse("chenzhou").unwrap(),
            AccountInbound {
                counts: Counts {
                    messages: 2,
                    events: 3,
                    subscribes: 1,
                    unsubscribes: 1,
                },
                last_inbound_at: Some(at),
            },
        );
        assert_eq!(wire.account, "chenzhou");
        assert_eq!(
            (
                wire.messages,
                wire.events,
                wire.subscribes,
                wire.unsubscribes
            ),
            (2, 3, 1, 1)
        );
        assert_eq!(
            wire.last_inbound_at,
            Some(prost_types::Timestamp {
                seconds: 1_700_000_030,
                nanos: 250
            })
        );
    }
}
