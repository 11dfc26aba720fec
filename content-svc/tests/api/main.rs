//! content-svc's API against real PostgreSQL and NATS: one binary, a fresh
//! database and namespace per test, a module per feature.

mod actors;
mod articles;
mod auth;
mod bidi;
mod connections;
mod directory;
mod directory_writes;
mod drain;
mod duties;
mod hall;
mod helpers;
mod history;
mod import;
mod input_checks;
mod lexicon;
mod listing;
mod lock_order;
mod lost_send_verdicts;
mod mass_send_fail;
mod menus;
mod messages;
mod migrations;
mod publishing;
mod publishing_age;
mod reconcile;
mod record_published;
mod requests;
mod returns;
mod scheduler;
mod screen_text;
mod search;
mod send_again;
mod startup;
mod versions;
mod wechat_job;
