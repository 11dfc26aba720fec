//! One function per use case: load, decide with `domain`, save with `store`, queue
//! events, call WeChat outside any transaction. The doors (`grpc/`, `events/`,
//! `jobs/`) decode, call one of these, and encode.

pub mod callbacks;
pub mod directory;
pub mod followers;
pub mod rules;
pub mod tickets;

pub use followers::Followers;
pub use rules::Rules;
pub use tickets::Tickets;
