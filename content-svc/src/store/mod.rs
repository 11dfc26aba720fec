//! SQL per aggregate, one file each (`directory`, `articles`, `lexicon` with the
//! mass-send ledger). Only `app` calls these functions. Queries are checked at run
//! time and covered by the integration tests (the workspace does not use sqlx's
//! offline metadata).

pub mod api_calls;
pub mod articles;
pub mod directory;
pub mod hall;
pub mod lexicon;
pub mod media;
pub mod menus;
pub mod messages;
pub mod publishing_age;
pub mod requests;
pub mod search;
pub mod services;
