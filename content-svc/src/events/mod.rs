//! Consumers: WeChat's job-finish callbacks close the publishing loop.

pub mod job_finish;
