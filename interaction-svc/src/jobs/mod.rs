//! Background work, safe with several replicas: each job claims its rows with
//! `FOR UPDATE SKIP LOCKED` (or an equivalent) and runs under the drain.

pub mod sweeper;
