//! Consumers: WeChat's job-finish callbacks close the publishing loop.

pub mod job_finish;

#[cfg(test)]
mod tests {
    use platform::consumer::{EventHandler, room_for_sized_replicas};

    use super::job_finish::{MassSendFinished, PublishFinished};

    fn check<H: EventHandler>() {
        if let Err(why) = room_for_sized_replicas::<H>() {
            panic!("{why}");
        }
    }

    #[test]
    fn every_consumer_leaves_room_for_sized_replicas() {
        check::<PublishFinished>();
        check::<MassSendFinished>();
    }
}
