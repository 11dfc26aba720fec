//! One module per area; each turns a subcommand into calls and prints the result.

mod articles;
mod deadletters;
mod directory;
mod followers;
mod lexicon;
mod menu;
mod rules;
mod search;
mod stats;
mod tickets;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::client::Targets;
use crate::error::Error;
use crate::output::Out;

/// The id of a call a script may retry: the one given (`--request-id`), or a fresh
/// UUID, printed on stderr before the call so a script stopped part-way (by
/// `timeout`, say) still has it. `retry` says what a re-run with it does.
pub(crate) fn request_id(given: Option<String>, retry: &str) -> String {
    given.unwrap_or_else(|| {
        let made = uuid::Uuid::new_v4().to_string();
        eprintln!("govwx: request id {made} (re-run with --request-id {made} {retry})");
        made
    })
}

/// Whether a failed call may have been done all the same (its answer was lost on
/// the way, or the caller gave up waiting): a retry with the same request id is safe.
pub(crate) fn may_have_been_done(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::DeadlineExceeded
            | tonic::Code::Unavailable
            | tonic::Code::Cancelled
            | tonic::Code::Unknown
    )
}

/// Dispatches a parsed command line.
pub async fn run(cli: Cli) -> Result<(), Error> {
    let Cli { global, command } = cli;
    let out = Out {
        json: global.json,
        tz: global.tz,
    };
    // Completions and the man page need no server and no key.
    match command {
        Command::Completions { shell } => {
            let mut buffer = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "govwx", &mut buffer);
            return out.raw_line(String::from_utf8_lossy(&buffer).trim_end());
        }
        Command::Man => {
            let mut buffer = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut buffer)?;
            return out.raw_line(String::from_utf8_lossy(&buffer).trim_end());
        }
        // Dead letters are read from NATS, not from a service: no API key.
        Command::Deadletters(command) => return deadletters::run(command, &out).await,
        _ => {}
    }
    let targets = Targets::new(&global, &command)?;
    match command {
        Command::Tickets(command) => {
            tickets::run(command, &targets.interaction(&global), &out).await
        }
        Command::Rules(command) => rules::run(command, &targets.interaction(&global), &out).await,
        Command::Followers(command) => {
            followers::run(command, &targets.interaction(&global), &out).await
        }
        Command::Articles(command) => articles::run(command, &targets.content(&global), &out).await,
        Command::Lexicon(command) => lexicon::run(command, &targets.content(&global), &out).await,
        Command::Directory(command) => {
            directory::run(command, &targets.content(&global), &out).await
        }
        Command::Menu(command) => menu::run(command, &targets.content(&global), &out).await,
        Command::Search {
            query,
            account,
            kind,
            category,
            limit,
        } => {
            let query = search::Query {
                query,
                account: account.account,
                kind,
                category,
                limit,
            };
            search::run(query, &targets.content(&global), &out).await
        }
        Command::Stats(command) => stats::run(command, &targets.stats(&global), &out).await,
        Command::Completions { .. } | Command::Man | Command::Deadletters(_) => {
            unreachable!("handled above")
        }
    }
}
