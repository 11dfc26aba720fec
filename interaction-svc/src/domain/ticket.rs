//! Tickets: identity, states and the paging of department queues.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use proto::interaction::v1 as pb;

/// Why a ticket value from outside is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketInputError {
    #[error("ticket id {0:?} is not a UUID")]
    BadId(String),
    #[error("unknown ticket state {0}")]
    BadState(i32),
    #[error("page_size must be at most {max}", max = PageSize::MAX)]
    PageTooLarge,
    #[error("page_token is malformed")]
    BadPageToken,
}

/// A ticket's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TicketId(pub uuid::Uuid);

impl TicketId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Parses an id given by a caller.
    pub fn parse(raw: &str) -> Result<Self, TicketInputError> {
        uuid::Uuid::parse_str(raw.trim())
            .map(Self)
            .map_err(|_| TicketInputError::BadId(raw.to_owned()))
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a ticket stands: open → acknowledged → answered → closed (→ reopened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketState {
    Open,
    Acknowledged,
    Answered,
    Closed,
    Reopened,
}

impl TicketState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Answered => "answered",
            Self::Closed => "closed",
            Self::Reopened => "reopened",
        }
    }
}

impl FromStr for TicketState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "open" => Self::Open,
            "acknowledged" => Self::Acknowledged,
            "answered" => Self::Answered,
            "closed" => Self::Closed,
            "reopened" => Self::Reopened,
            other => return Err(format!("unknown ticket state {other:?}")),
        })
    }
}

impl TryFrom<i32> for TicketState {
    type Error = TicketInputError;
    fn try_from(value: i32) -> Result<Self, Self::Error> {
        match pb::TicketState::try_from(value) {
            Ok(pb::TicketState::Open) => Ok(Self::Open),
            Ok(pb::TicketState::Acknowledged) => Ok(Self::Acknowledged),
            Ok(pb::TicketState::Answered) => Ok(Self::Answered),
            Ok(pb::TicketState::Closed) => Ok(Self::Closed),
            Ok(pb::TicketState::Reopened) => Ok(Self::Reopened),
            Ok(pb::TicketState::Unspecified) | Err(_) => Err(TicketInputError::BadState(value)),
        }
    }
}

impl From<TicketState> for pb::TicketState {
    fn from(state: TicketState) -> Self {
        match state {
            TicketState::Open => Self::Open,
            TicketState::Acknowledged => Self::Acknowledged,
            TicketState::Answered => Self::Answered,
            TicketState::Closed => Self::Closed,
            TicketState::Reopened => Self::Reopened,
        }
    }
}

/// How many tickets a page holds: 1..=200, 50 when the caller says 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    pub const DEFAULT: u32 = 50;
    pub const MAX: u32 = 200;

    /// Checks a requested page size.
    pub fn parse(requested: u32) -> Result<Self, TicketInputError> {
        match requested {
            0 => Ok(Self(Self::DEFAULT)),
            n if n <= Self::MAX => Ok(Self(n)),
            _ => Err(TicketInputError::PageTooLarge),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// The position after the last ticket of a page, in queue order (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    pub opened_at: DateTime<Utc>,
    pub id: TicketId,
}

impl PageToken {
    /// Encodes the token as `{micros}_{uuid}`.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.opened_at.timestamp_micros(), self.id)
    }

    /// Decodes a token from a caller; empty means the first page.
    pub fn decode(raw: &str) -> Result<Option<Self>, TicketInputError> {
        if raw.is_empty() {
            return Ok(None);
        }
        let (micros, id) = raw.split_once('_').ok_or(TicketInputError::BadPageToken)?;
        let micros: i64 = micros.parse().map_err(|_| TicketInputError::BadPageToken)?;
        let opened_at =
            DateTime::from_timestamp_micros(micros).ok_or(TicketInputError::BadPageToken)?;
        let id = TicketId::parse(id).map_err(|_| TicketInputError::BadPageToken)?;
        Ok(Some(Self { opened_at, id }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_storage_and_wire() {
        for state in [
            TicketState::Open,
            TicketState::Acknowledged,
            TicketState::Answered,
            TicketState::Closed,
            TicketState::Reopened,
        ] {
            assert_eq!(state.as_str().parse::<TicketState>(), Ok(state));
            assert_eq!(
                TicketState::try_from(pb::TicketState::from(state) as i32),
                Ok(state)
            );
        }
        assert_eq!(TicketState::try_from(0), Err(TicketInputError::BadState(0)));
        assert_eq!(
            TicketState::try_from(99),
            Err(TicketInputError::BadState(99))
        );
    }

    #[test]
    fn page_size_defaults_and_caps() {
        assert_eq!(PageSize::parse(0).unwrap().get(), 50);
        assert_eq!(PageSize::parse(200).unwrap().get(), 200);
        assert_eq!(PageSize::parse(201), Err(TicketInputError::PageTooLarge));
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let token = PageToken {
            opened_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: TicketId::generate(),
        };
        assert_eq!(PageToken::decode(&token.encode()), Ok(Some(token)));
        assert_eq!(PageToken::decode(""), Ok(None));
        assert_eq!(
            PageToken::decode("abc"),
            Err(TicketInputError::BadPageToken)
        );
        assert_eq!(
            PageToken::decode("12_not-a-uuid"),
            Err(TicketInputError::BadPageToken)
        );
    }
}
