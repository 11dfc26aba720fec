//! Pure types and rules of content; no I/O (no sqlx, tonic, axum or NATS).
//! One file per aggregate: the directory, articles, their review workflow, the
//! sensitive-word screening, WeChat's send quotas and callers' request ids.

pub mod article;
pub mod contrast;
pub mod directory;
pub mod media;
pub mod menu;
pub mod quota;
pub mod request;
pub mod review;
pub mod screening;
pub mod search;
pub mod search_index;
pub mod service;
pub mod text;
pub mod version;

pub use directory::{CategoryCode, DirectoryInputError, ServiceListing};
/// Accounts are the shared `platform::ids::AccountId`; a blank one is "account is required".
pub use platform::ids::{AccountId, IdError as AccountIdError};
