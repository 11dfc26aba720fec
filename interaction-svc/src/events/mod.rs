//! One `EventHandler` per subject: decode → domain → one transaction → ack.

pub mod directory;
mod held;
pub mod inbound;
pub mod missed;

pub use inbound::{CONSUMER, HeldAnswers, InboundHandler, NoHeldAnswers};
