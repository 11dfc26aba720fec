//! Gives pulled messages to the lanes without letting one full lane hold up the others.
//!
//! Messages come from the server in stream order and each goes to its key's lane
//! (`order_key`), or to any lane when it has no key. A lane whose handler is slow or
//! hangs fills its queue; the messages for it that come after are held here, in stream
//! order, while the messages for lanes with room go on past them: a key's events still
//! reach its lane in stream order, and a message without a key goes to the lane with
//! the most room when it is handed out, never to a full one.

use std::collections::VecDeque;

use tokio::sync::mpsc::{self, error::TrySendError};

/// A lane's queue is closed: its task ended (it panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LaneStopped(pub(super) usize);

pub(super) struct HandOut<J> {
    senders: Vec<mpsc::Sender<J>>,
    /// Pulled and not given to a lane yet, in stream order, each with its key's lane
    /// (`None`: any lane).
    held: VecDeque<(Option<usize>, J)>,
    /// Per lane, how many of `held` wait for it.
    waiting: Vec<usize>,
    /// How many of `held` have no key.
    keyless: usize,
    /// Where the search for the roomiest lane starts, so that ties spread.
    next: usize,
}

impl<J> HandOut<J> {
    pub(super) fn new(senders: Vec<mpsc::Sender<J>>) -> Self {
        let lanes = senders.len();
        Self {
            senders,
            held: VecDeque::new(),
            waiting: vec![0; lanes],
            keyless: 0,
            next: 0,
        }
    }

    /// Messages held, not given to a lane yet.
    pub(super) fn held(&self) -> usize {
        self.held.len()
    }

    /// Whether some lane could take a message now.
    pub(super) fn room(&self) -> bool {
        self.senders.iter().any(|s| s.capacity() > 0)
    }

    /// Gives a message just pulled to `lane` (any lane with `None`) if nothing held is
    /// ahead of it there and it has room; holds it otherwise.
    pub(super) fn offer(&mut self, lane: Option<usize>, job: J) -> Result<(), LaneStopped> {
        let ahead = match lane {
            Some(lane) => self.waiting[lane] > 0,
            None => self.keyless > 0,
        };
        if ahead {
            self.hold(lane, job);
            return Ok(());
        }
        let full = vec![false; self.senders.len()];
        match self.give(lane, job, &full) {
            Given::Yes => Ok(()),
            Given::Full(_, job) => {
                self.hold(lane, job);
                Ok(())
            }
            Given::Stopped(to, job) => {
                self.hold(lane, job);
                Err(LaneStopped(to))
            }
        }
    }

    /// Gives every held message whose lane has room to it, in stream order; a message
    /// for a full lane stays, and so does every later one of that lane.
    pub(super) fn hand_out(&mut self) -> Result<(), LaneStopped> {
        let mut full = vec![false; self.senders.len()];
        let held = std::mem::take(&mut self.held);
        self.waiting.fill(0);
        self.keyless = 0;
        let mut stopped = None;
        for (lane, job) in held {
            if stopped.is_some() || full.iter().all(|f| *f) {
                self.hold(lane, job);
                continue;
            }
            match self.give(lane, job, &full) {
                Given::Yes => {}
                Given::Full(at, job) => {
                    if let Some(at) = at {
                        full[at] = true;
                    }
                    self.hold(lane, job);
                }
                Given::Stopped(at, job) => {
                    stopped = Some(LaneStopped(at));
                    self.hold(lane, job);
                }
            }
        }
        stopped.map_or(Ok(()), Err)
    }

    /// Takes the newest held messages beyond the oldest `keep`, in stream order: what
    /// remains for each lane is still the front of its events.
    pub(super) fn take_newest(&mut self, keep: usize) -> Vec<J> {
        let mut taken = Vec::with_capacity(self.held.len().saturating_sub(keep));
        while self.held.len() > keep {
            let Some((lane, job)) = self.held.pop_back() else {
                break;
            };
            self.unhold(lane);
            taken.push(job);
        }
        taken.reverse();
        taken
    }

    /// Ends the hand-out: the lanes end once their queues are empty; returns what was
    /// held.
    pub(super) fn close(self) -> impl Iterator<Item = J> {
        drop(self.senders);
        self.held.into_iter().map(|(_, job)| job)
    }

    fn hold(&mut self, lane: Option<usize>, job: J) {
        match lane {
            Some(lane) => self.waiting[lane] += 1,
            None => self.keyless += 1,
        }
        self.held.push_back((lane, job));
    }

    fn unhold(&mut self, lane: Option<usize>) {
        match lane {
            Some(lane) => self.waiting[lane] -= 1,
            None => self.keyless -= 1,
        }
    }

    /// Tries `lane`, or for a message without a key the lane with the most room of
    /// those not `full`.
    fn give(&mut self, lane: Option<usize>, job: J, full: &[bool]) -> Given<J> {
        let to = match lane {
            Some(lane) if full[lane] => return Given::Full(None, job),
            Some(lane) => lane,
            None => match self.roomiest(full) {
                Some(lane) => lane,
                None => return Given::Full(None, job),
            },
        };
        match self.senders[to].try_send(job) {
            Ok(()) => Given::Yes,
            Err(TrySendError::Full(job)) => Given::Full(Some(to), job),
            Err(TrySendError::Closed(job)) => Given::Stopped(to, job),
        }
    }

    fn roomiest(&mut self, full: &[bool]) -> Option<usize> {
        let lanes = self.senders.len();
        let start = self.next;
        self.next = (self.next + 1) % lanes;
        (0..lanes)
            .map(|i| (start + i) % lanes)
            .filter(|lane| !full[*lane])
            .map(|lane| (lane, self.senders[lane].capacity()))
            .filter(|(_, room)| *room > 0)
            // The first of the roomiest: `max_by_key` would take the last.
            .fold(
                None,
                |best: Option<(usize, usize)>, (lane, room)| match best {
                    Some((_, most)) if most >= room => best,
                    _ => Some((lane, room)),
                },
            )
            .map(|(lane, _)| lane)
    }
}

enum Given<J> {
    Yes,
    /// The lane (if one was tried) had no room.
    Full(Option<usize>, J),
    Stopped(usize, J),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(n: usize, queue: usize) -> (HandOut<u32>, Vec<mpsc::Receiver<u32>>) {
        let (senders, receivers) = (0..n).map(|_| mpsc::channel(queue)).unzip();
        (HandOut::new(senders), receivers)
    }

    fn drained(receiver: &mut mpsc::Receiver<u32>) -> Vec<u32> {
        std::iter::from_fn(|| receiver.try_recv().ok()).collect()
    }

    #[test]
    fn a_full_lane_holds_its_own_messages_in_order_and_no_one_elses() {
        let (mut out, mut queues) = lanes(2, 2);
        for n in 0..6 {
            out.offer(Some(0), n).unwrap();
        }
        out.offer(Some(1), 100).unwrap();
        assert_eq!(out.held(), 4);
        assert_eq!(drained(&mut queues[1]), [100]);
        assert_eq!(drained(&mut queues[0]), [0, 1]);
        // A new message of the full lane waits behind the held ones even with room.
        out.offer(Some(0), 6).unwrap();
        out.hand_out().unwrap();
        assert_eq!(drained(&mut queues[0]), [2, 3]);
        out.hand_out().unwrap();
        assert_eq!(drained(&mut queues[0]), [4, 5]);
        out.hand_out().unwrap();
        assert_eq!(drained(&mut queues[0]), [6]);
        assert_eq!(out.held(), 0);
    }

    #[test]
    fn a_message_without_a_key_goes_to_the_lane_with_the_most_room() {
        let (mut out, mut queues) = lanes(3, 4);
        for n in 0..4 {
            out.offer(Some(1), n).unwrap();
        }
        out.offer(Some(0), 10).unwrap();
        for n in 20..24 {
            out.offer(None, n).unwrap();
        }
        assert!(drained(&mut queues[1]).len() == 4);
        let (zero, two) = (drained(&mut queues[0]), drained(&mut queues[2]));
        assert_eq!(zero.len() + two.len(), 5);
        assert!(two.len() >= 2, "lane 2 had the most room: {zero:?} {two:?}");
    }

    #[test]
    fn the_newest_held_messages_are_taken_and_the_oldest_kept() {
        let (mut out, _queues) = lanes(1, 1);
        for n in 0..5 {
            out.offer(Some(0), n).unwrap();
        }
        assert_eq!(out.take_newest(2), [3, 4]);
        assert_eq!(out.held(), 2);
        assert!(!out.room());
        assert_eq!(out.close().collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn a_stopped_lane_is_reported_and_its_message_kept() {
        let (mut out, queues) = lanes(2, 1);
        drop(queues);
        assert_eq!(out.offer(Some(1), 7), Err(LaneStopped(1)));
        assert_eq!(out.close().collect::<Vec<_>>(), [7]);
    }
}
