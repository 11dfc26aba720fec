//! Pure types and rules of content; no I/O (no sqlx, tonic, axum or NATS).
//! Articles and their review, menus and search join as one file each.

pub mod account;
pub mod directory;

pub use account::{AccountId, AccountIdError};
pub use directory::{CategoryCode, DirectoryInputError, ServiceListing};
