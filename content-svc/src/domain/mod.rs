//! Pure types and rules of content; no I/O.

pub mod directory;

pub use directory::{AccountId, CategoryCode, DirectoryInputError, ServiceListing};
