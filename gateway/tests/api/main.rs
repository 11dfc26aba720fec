//! The gateway's API tests: one binary, real NATS, a private namespace per test.

mod batch;
mod callback;
mod cluster;
mod config;
mod drain;
mod durability;
mod edge;
mod helpers;
mod logs;
mod metrics;
mod missed;
mod overload;
mod rejections;
mod replay;
mod replies;
mod samples;
