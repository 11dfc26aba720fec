//! interaction-svc against real NATS and PostgreSQL; one binary, a module per feature.

mod answering;
mod followers;
mod helpers;
mod queue;
mod rules;
mod startup;
mod tickets;
