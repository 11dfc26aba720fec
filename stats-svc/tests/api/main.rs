//! stats-svc against real PostgreSQL and NATS: one binary, a fresh database and
//! namespace per test, a module per feature. Events go in through JetStream,
//! counts come out through gRPC.

mod autoreplies;
mod dashboard;
mod datacube;
mod drain;
mod figures;
mod helpers;
mod inbound_counts;
mod inspection;
mod judging;
mod migrations;
mod moves;
mod overview;
mod pull_failures;
mod ranking;
mod ranking_install;
mod readiness_page;
mod rollups;
mod scans;
mod startup;
mod ticket_lanes;
