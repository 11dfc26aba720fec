//! One `EventHandler` per subject: decode → domain → one transaction → ack.

pub mod autoreplies;
pub mod content;
pub mod inbound;
pub mod retractions;
pub mod tickets;

#[cfg(test)]
mod tests {
    use platform::consumer::{EventHandler, room_for_sized_replicas};

    use super::autoreplies::AutoReplyHandler;
    use super::content::ContentHandler;
    use super::inbound::InboundHandler;
    use super::retractions::RetractionHandler;
    use super::tickets::TicketHandler;

    fn check<H: EventHandler>() {
        if let Err(why) = room_for_sized_replicas::<H>() {
            panic!("{why}");
        }
    }

    #[test]
    fn every_consumer_leaves_room_for_sized_replicas() {
        check::<InboundHandler>();
        check::<TicketHandler>();
        check::<ContentHandler>();
        check::<RetractionHandler>();
        check::<AutoReplyHandler>();
    }
}
