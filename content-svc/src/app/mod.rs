//! The use cases of content-svc, one function each: load with `store`, decide
//! with `domain`, save with `store` (and, once content is announced, enqueue the
//! event in the same transaction). Every door (gRPC today, the service hall's
//! pages and consumers later) calls these functions, so the rules have one home.
//!
//! Inputs arrive already parsed into domain types: decoding belongs to the door.

pub mod directory;

/// Why a use case failed for a reason other than its input.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}
