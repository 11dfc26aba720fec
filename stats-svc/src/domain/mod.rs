//! Pure types and rules of the statistics; no I/O.

pub mod inbound;

pub use inbound::{AccountId, Counts, InboundError, InboundFact, SubscriptionChange};
pub use platform::inbound::InboundKind;
