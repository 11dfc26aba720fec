//! The `govwx` binary against a real interaction-svc (in-process, port 0) on real
//! NATS and PostgreSQL, with WeChat played by `wechat-sim`'s mock API.

mod articles;
mod connecting;
mod content;
mod deadletters;
mod followers;
mod helpers;
mod menu;
mod readme;
mod rules;
mod tickets;
mod tls;
