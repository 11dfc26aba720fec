//! Background work, safe with several replicas.

pub mod scheduler;
