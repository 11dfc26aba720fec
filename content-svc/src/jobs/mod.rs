//! Background work, safe with several replicas.

pub mod reconcile;
pub mod refold;
pub mod scheduler;
pub mod search_index;
