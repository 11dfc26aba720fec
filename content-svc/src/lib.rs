//! content-svc: articles and their review, menus, and the convenience-service
//! directory, served over gRPC (`content.v1.ContentService`).
#![forbid(unsafe_code)]

pub mod domain;
pub mod grpc;
pub mod startup;
pub mod store;

pub use startup::{Application, Config, migrate};
