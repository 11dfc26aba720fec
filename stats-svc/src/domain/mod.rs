//! Pure types and rules of the statistics; no I/O.

pub mod autoreply;
pub mod departments;
pub mod figures;
pub mod inbound;
pub mod inspection;
pub mod install;
pub mod reach;
pub mod rollup;
pub mod wci;

pub use inbound::{
    AccountId, Counts, InboundDetail, InboundError, InboundFact, SubscriptionChange,
};
pub use platform::inbound::InboundKind;
