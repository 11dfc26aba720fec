//! interaction-svc against real NATS and PostgreSQL; one binary, a module per feature.

mod answering;
mod helpers;
mod startup;
mod tickets;
