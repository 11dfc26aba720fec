//! SQL per aggregate, one file each (`account_inbound` today; rollups, rankings
//! and alarms join beside it). Queries are checked at run time and covered by the
//! integration tests (the workspace does not use sqlx's offline metadata).

pub mod account_inbound;
pub mod alarms;
pub mod articles;
pub mod install;
pub mod reach;
pub mod rollups;
pub mod sessions;
