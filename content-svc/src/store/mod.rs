//! SQL per aggregate, one file each (`directory` today; articles, menus and the
//! outbox join beside it). Only `app` calls these functions. Queries are checked
//! at run time and covered by the integration tests (the workspace does not use
//! sqlx's offline metadata).

pub mod directory;
