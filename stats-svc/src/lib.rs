//! stats-svc: rollups of every event. So far it counts what each account
//! receives on `WECHAT_INBOUND` and serves the counts over gRPC
//! (`stats.v1.StatsService`).
#![forbid(unsafe_code)]

pub mod domain;
pub mod events;
pub mod grpc;
pub mod startup;
pub mod store;

pub use startup::{Application, Config, migrate};
