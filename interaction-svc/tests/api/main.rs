//! interaction-svc against real NATS and PostgreSQL; one binary, a module per feature.

mod accounts;
mod answering;
mod citizen;
mod consumer_faults;
mod department_reach;
mod directory;
mod directory_answers;
mod directory_bootstrap;
mod drain;
mod e2e;
mod followers;
mod helpers;
mod inbound;
mod migrations;
mod probing;
mod queue;
mod ratings;
mod reply_path;
mod rules;
mod slow_watcher;
mod slow_wechat;
mod startup;
mod sweeper;
mod telemetry;
mod tickets;
mod unreadable;
