//! Background work, safe with several replicas.

pub mod publishing_age;
pub mod reconcile;
pub mod refold;
pub mod scheduler;
pub mod search_index;
