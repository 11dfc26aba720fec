//! stats-svc: rollups of every event (WECHAT_INBOUND, INTERACTION, CONTENT) per
//! account and office day, the WCI ranking, inspection alarms on STATS, served over
//! gRPC (`stats.v1.StatsService`).
//!
//! The modules are the rooms of every service (ARCHITECTURE.md, "Inside a
//! service"): `domain` (pure rules), `store` (SQL per aggregate), `app` (one
//! function per use case), `events` (consumers) and `grpc` (the doors), `config`
//! and `startup` (wiring).
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod http;
pub mod jobs;
pub mod startup;
pub mod store;

pub use config::Config;
pub use startup::{Application, migrate};
