//! Keeps the messages a runner holds from being delivered again while they wait their
//! turn. The server delivers a message again once `ack_wait` (30 s) passes without an
//! ack, and a lane's queue for a slow handler outlasts that (256 events of a WeChat
//! call each: 25 s at 100 ms, minutes when WeChat is slow): the second copy would be
//! handled too, and each copy counts against the message's deliveries.
//!
//! Every message is held here from its delivery until just before it is settled, and
//! one task per runner tells the server, every eighth of `ack_wait`, that each one
//! held longer than half of it is in progress (`+WPI`, which restarts its timer). A
//! fast consumer settles its messages long before: nothing is sent for them, and what
//! each message costs is two uncontended locks.
//!
//! Not for ever: a message held longer than [`MAX_KEPT`] is left to the server, which
//! delivers it again after `ack_wait`. A handler that hangs (or a lane that died)
//! would otherwise keep its messages from every other replica for as long as this
//! process lives; before the notices they went to another replica after `ack_wait`.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use async_nats::{Client, Subject};
use tokio::sync::Mutex;
use tokio::time::{Instant, MissedTickBehavior};

/// How long a message is kept in progress at most, from its delivery: the most one
/// runner of the missed-reply consumer holds (4 lanes × 257 + 300 pulled, 1,328) takes
/// about 5.5 minutes to work through at a second per WeChat send, so a message held
/// past this is more likely stuck behind a handler that hangs.
pub(super) const MAX_KEPT: Duration = Duration::from_secs(10 * 60);

/// The server's `ack_wait` when a consumer sets none.
const SERVER_ACK_WAIT: Duration = Duration::from_secs(30);

/// The messages of one runner not settled yet.
pub(super) struct Unsettled {
    durable: &'static str,
    ack_wait: Duration,
    /// A Tokio lock, held while the progress notices are sent: a lane releases a
    /// message before settling it, so its ack or NAK leaves after any notice for it.
    /// A notice after a NAK would restart the timer the NAK's delay set, and a retry
    /// due in half a second would come after `ack_wait`.
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    last: u64,
    by_token: HashMap<u64, Entry>,
}

struct Entry {
    reply: Subject,
    /// When the server last started the message's `ack_wait`, or a little after.
    since: Instant,
    /// When it was delivered; kept in progress until [`MAX_KEPT`] after.
    delivered: Instant,
}

impl Held {
    /// Drops the messages delivered [`MAX_KEPT`] or longer before `now`; how many.
    fn give_up_stale(&mut self, now: Instant) -> usize {
        let before = self.by_token.len();
        self.by_token
            .retain(|_, entry| now.duration_since(entry.delivered) < MAX_KEPT);
        before - self.by_token.len()
    }
}

/// One held message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Token(u64);

impl Unsettled {
    pub(super) fn new(durable: &'static str, ack_wait: Duration) -> Self {
        Self {
            durable,
            ack_wait: if ack_wait.is_zero() {
                SERVER_ACK_WAIT
            } else {
                ack_wait
            },
            held: Mutex::default(),
        }
    }

    /// Holds a message just delivered.
    pub(super) async fn hold(&self, message: &jetstream::Message) -> Token {
        let mut held = self.held.lock().await;
        held.last += 1;
        let token = held.last;
        if let Some(reply) = &message.reply {
            let now = Instant::now();
            held.by_token.insert(
                token,
                Entry {
                    reply: reply.clone(),
                    since: now,
                    delivered: now,
                },
            );
        }
        Token(token)
    }

    /// Stops keeping a message alive; called before it is acked, NAKed or terminated.
    pub(super) async fn release(&self, token: Token) {
        self.held.lock().await.by_token.remove(&token.0);
    }

    /// Sends the progress notices, every eighth of `ack_wait`, until dropped.
    pub(super) async fn keep_alive(&self, client: Client) {
        let period = self.ack_wait / 8;
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let kept = self.renew(&client).await;
            if kept > 0 {
                tracing::debug!(durable = self.durable, kept, "messages kept in progress");
                metrics::counter!("consumer_kept_in_progress_total", "consumer" => self.durable)
                    .increment(kept);
            }
        }
    }

    /// Says "in progress" for every message held more than half of `ack_wait`: with a
    /// tick every eighth, its notice leaves at least 3/8 of `ack_wait` (11 s of 30 s)
    /// before the server would deliver it again, room for a busy process or network.
    /// A message held past [`MAX_KEPT`] is given up to the server (dropped from the
    /// set: its lane still settles it if it ever gets to it).
    async fn renew(&self, client: &Client) -> u64 {
        let mut held = self.held.lock().await;
        let now = Instant::now();
        let given_up = held.give_up_stale(now);
        if given_up > 0 {
            tracing::warn!(
                durable = self.durable,
                given_up,
                "messages held longer than the longest keep-alive are left to the server, which delivers them again"
            );
        }
        let mut kept = 0;
        for entry in held.by_token.values_mut() {
            if now.duration_since(entry.since) < self.ack_wait / 2 {
                continue;
            }
            if let Err(error) = client
                .publish(entry.reply.clone(), AckKind::Progress.into())
                .await
            {
                tracing::warn!(durable = self.durable, %error, "cannot keep a message in progress; it may be delivered again");
            }
            entry.since = now;
            kept += 1;
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_held_past_the_longest_keep_alive_is_left_to_the_server() {
        let start = Instant::now();
        let entry = |delivered| Entry {
            reply: Subject::from("$JS.ACK.S.D.1.1.1.1.0"),
            since: delivered,
            delivered,
        };
        let mut held = Held::default();
        held.by_token.insert(1, entry(start));
        held.by_token
            .insert(2, entry(start + Duration::from_secs(60)));
        assert_eq!(
            held.give_up_stale(start + MAX_KEPT - Duration::from_millis(1)),
            0
        );
        assert_eq!(held.give_up_stale(start + MAX_KEPT), 1);
        assert_eq!(held.by_token.keys().collect::<Vec<_>>(), [&2]);
    }
}
