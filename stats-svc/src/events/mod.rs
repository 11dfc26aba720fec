//! One `EventHandler` per subject: decode → domain → one transaction → ack.

pub mod inbound;
