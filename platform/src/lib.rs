//! What every service repeats, in one place: configuration, telemetry, the admin
//! port, graceful shutdown, NATS and JetStream provisioning, PostgreSQL with
//! migrations, durable consumers, and gRPC authentication. No domain types.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod admin;
pub mod config;
pub mod consumer;
pub mod db;
pub mod failure_log;
pub mod grpc;
pub mod html;
pub mod ids;
pub mod inbound;
pub mod nats;
pub mod outbox;
pub mod service;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "simplified")]
pub mod text;

pub use config::{ConfigError, Env};
pub use grpc::{AccountScope, Caller, ErrorCode, Role};
pub use shutdown::{Drain, shutdown_signal};
