//! SQL per aggregate. Queries are checked at run time and covered by the
//! integration tests (the workspace does not use sqlx's offline metadata).

pub mod autoreplies;
pub mod decided_replies;
pub mod directory;
pub mod followers;
pub mod followers_read;
pub mod outbox;
pub mod retention;
pub mod rules;
pub mod thread;
pub mod tickets;
