//! Background jobs: each calls `app` and is safe with several replicas.

pub mod inspection;
