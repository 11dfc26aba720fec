//! interaction-svc against real NATS and PostgreSQL; one binary, a module per feature.

mod answering;
mod helpers;
mod queue;
mod startup;
mod tickets;
