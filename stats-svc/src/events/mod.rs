//! One `EventHandler` per subject: decode → domain → one transaction → ack.

pub mod autoreplies;
pub mod content;
pub mod inbound;
pub mod retractions;
pub mod tickets;
