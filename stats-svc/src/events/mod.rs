//! One `EventHandler` per subject: decode → domain → one transaction → ack.

pub mod autoreplies;
pub mod content;
pub mod inbound;
pub mod retractions;
pub mod tickets;

#[cfg(test)]
mod tests {
    use platform::consumer::{EventHandler, SIZED_REPLICAS, most_unacked};
    use platform::nats::WAITING_MAX_ACK_PENDING;

    use super::autoreplies::AutoReplyHandler;
    use super::content::ContentHandler;
    use super::inbound::InboundHandler;
    use super::retractions::RetractionHandler;
    use super::tickets::TicketHandler;

    /// Platform cannot see a service's lanes and batches, so each runner is checked
    /// here: at the bound the server delivers nothing new, and a healthy consumer
    /// scaled to `SIZED_REPLICAS` would stall. A consumer that waits (`NotYet`,
    /// `WAITING_MAX_ACK_PENDING`) keeps half of its bound for the waiting messages.
    fn assert_room_for_sized_replicas<H: EventHandler>() {
        let handler = std::any::type_name::<H>();
        let durable = H::CONSUMER.durable;
        let bound = H::CONSUMER.max_ack_pending;
        let one = most_unacked::<H>();
        let held = SIZED_REPLICAS * one;
        let (room, of) = if bound == WAITING_MAX_ACK_PENDING {
            (bound / 2, "half of its max_ack_pending")
        } else {
            (bound, "its max_ack_pending")
        };
        assert!(
            held <= room,
            "{handler} (durable {durable}, CONCURRENCY {}, BATCH {}): {SIZED_REPLICAS} \
             replicas hold up to {held} unacked ({one} each), above {of} ({room} of {bound})",
            H::CONCURRENCY,
            H::BATCH,
        );
    }

    #[test]
    fn every_consumer_leaves_room_for_sized_replicas() {
        assert_room_for_sized_replicas::<InboundHandler>();
        assert_room_for_sized_replicas::<TicketHandler>();
        assert_room_for_sized_replicas::<ContentHandler>();
        assert_room_for_sized_replicas::<RetractionHandler>();
        assert_room_for_sized_replicas::<AutoReplyHandler>();
    }
}
