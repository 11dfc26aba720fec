//! One `EventHandler` per subject: decode → domain → one transaction → ack.

mod held;
pub mod inbound;

pub use inbound::{CONSUMER, HeldAnswers, InboundHandler, NoHeldAnswers};
