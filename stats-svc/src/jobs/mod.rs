//! Background jobs: each calls `app` and is safe with several replicas.

pub mod datacube;
pub mod inspection;

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Where a job reads the time: `Utc::now` in production, a fixed time in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}
