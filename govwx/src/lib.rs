//! `govwx`: tickets, rules, followers, the service directory and statistics from a
//! terminal or a script, over the services' gRPC APIs (the generated clients of
//! `proto`).
//!
//! The binary is thin: [`cli::Cli`] holds the clap definitions, [`run`] connects and
//! dispatches, and every failure is an [`Error`] that prints as one line with a
//! distinct exit code.
#![forbid(unsafe_code)]

pub mod cli;
mod client;
mod commands;
mod error;
mod json;
mod output;

pub use error::Error;

/// Runs one command line.
pub async fn run(cli: cli::Cli) -> Result<(), Error> {
    commands::run(cli).await
}
