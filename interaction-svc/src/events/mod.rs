//! One `EventHandler` per subject: decode → domain → one transaction → ack.

pub mod directory;
mod held;
pub mod inbound;
pub mod missed;

pub use inbound::{CONSUMER, HeldAnswers, InboundHandler, NoHeldAnswers};

#[cfg(test)]
mod tests {
    use platform::consumer::{EventHandler, room_for_sized_replicas};

    use super::InboundHandler;
    use super::directory::DirectoryHandler;
    use super::missed::MissedReplyHandler;
    use crate::delivery::Deliverer;

    fn check<H: EventHandler>() {
        if let Err(why) = room_for_sized_replicas::<H>() {
            panic!("{why}");
        }
    }

    #[test]
    fn every_consumer_leaves_room_for_sized_replicas() {
        check::<InboundHandler<Deliverer>>();
        check::<DirectoryHandler>();
        check::<MissedReplyHandler>();
    }
}
