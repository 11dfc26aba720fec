//! Pure types and rules of content; no I/O (no sqlx, tonic, axum or NATS).
//! Articles and their review, menus and search join as one file each.

pub mod directory;

pub use directory::{CategoryCode, DirectoryInputError, ServiceListing};
/// Accounts are the shared `platform::ids::AccountId`; a blank one is "account is required".
pub use platform::ids::{AccountId, IdError as AccountIdError};
