//! Background work, safe with several replicas: each job claims its rows with
//! `FOR UPDATE SKIP LOCKED` (or an equivalent, such as idempotent writes) and runs
//! under the drain.

pub mod directory_sync;
pub mod held_retry;
pub mod sweeper;
