//! interaction-svc: followers, auto-replies, citizen tickets with deadlines and the
//! department work queues, served over gRPC (`interaction.v1.InteractionService`).
#![forbid(unsafe_code)]

pub mod app;
pub mod background;
pub mod config;
pub mod content;
pub mod delivery;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod jobs;
pub mod replies;
pub mod startup;
pub mod store;

pub use startup::{Application, Config, migrate};
