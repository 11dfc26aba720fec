//! content-svc: articles and their review, menus, and the convenience-service
//! directory, served over gRPC (`content.v1.ContentService`).
//!
//! The modules are the rooms of every service (ARCHITECTURE.md, "Inside a
//! service"): `domain` (pure rules), `store` (SQL per aggregate), `app` (one
//! function per use case), `grpc` (the door), `config` and `startup` (wiring).
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
