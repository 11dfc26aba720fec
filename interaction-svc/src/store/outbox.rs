//! Helpers for what interaction-svc announces on the INTERACTION stream (queued with
//! `platform::outbox::enqueue` in the transaction of the change).

use chrono::{DateTime, Utc};

/// A protobuf timestamp.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}
