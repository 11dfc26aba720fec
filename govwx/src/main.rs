//! `govwx`: the command-line client of the platform's gRPC services.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = govwx::cli::Cli::parse();
    match govwx::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`govwx tickets list | head`) is the reader's choice, not a failure.
        Err(govwx::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "govwx: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
