//! One `EventHandler` per subject: decode → domain → one transaction → ack.

pub mod content;
pub mod inbound;
pub mod tickets;
