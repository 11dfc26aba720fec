//! stats-svc against real PostgreSQL and NATS: one binary, a fresh database and
//! namespace per test, a module per feature. Events go in through JetStream,
//! counts come out through gRPC.

mod autoreplies;
mod dashboard;
mod datacube;
mod drain;
mod helpers;
mod inbound_counts;
mod inspection;
mod judging;
mod migrations;
mod overview;
mod rollups;
mod scans;
mod startup;
