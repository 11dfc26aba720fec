//! The command line: global connection and output options, one subcommand per area.

use std::path::PathBuf;

use chrono::FixedOffset;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// The platform's command-line client: citizen tickets, reply and routing rules,
/// followers, articles and their review, the sensitive-word lexicon, the service
/// directory and statistics.
///
/// The API key comes from the environment variable GOVWX_API_KEY or from the file
/// named by --key-file (never from a flag value, so it stays out of shell history).
#[derive(Debug, Parser)]
#[command(name = "govwx", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Host of every service at its usual port (interaction 50051, content 50052,
    /// stats 50053).
    #[arg(long, env = "GOVWX_SERVER", default_value = "127.0.0.1", global = true)]
    pub server: String,
    /// interaction-svc's address (`host:port` or a URL), instead of --server's.
    #[arg(long, env = "GOVWX_INTERACTION_ADDR", global = true)]
    pub interaction_addr: Option<String>,
    /// content-svc's address (`host:port` or a URL), instead of --server's.
    #[arg(long, env = "GOVWX_CONTENT_ADDR", global = true)]
    pub content_addr: Option<String>,
    /// stats-svc's address (`host:port` or a URL), instead of --server's.
    #[arg(long, env = "GOVWX_STATS_ADDR", global = true)]
    pub stats_addr: Option<String>,
    /// PEM file of the CA that signed the servers' certificates; turns TLS on.
    #[arg(long, env = "GOVWX_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// TLS with the public web roots (no --ca-file needed); `https://` addresses
    /// turn it on too.
    #[arg(long, global = true)]
    pub tls: bool,
    /// Plaintext (no TLS) to a server that is not on this machine is intended (a
    /// cluster's own network): no warning that the API key goes in clear.
    #[arg(long, env = "GOVWX_PLAINTEXT", global = true)]
    pub plaintext: bool,
    /// Seconds a call may wait for the server's answer before it fails with
    /// DEADLINE_EXCEEDED (exit 69). Default 30, and 300 for the commands whose
    /// service calls WeChat before it answers (`articles publish`, `menu publish`,
    /// `tickets reply`); `tickets watch` waits as long as it runs.
    #[arg(
        long,
        env = "GOVWX_TIMEOUT",
        value_parser = clap::value_parser!(u64).range(1..),
        value_name = "SECONDS",
        global = true
    )]
    pub timeout: Option<u64>,
    /// File holding the API key (else the GOVWX_API_KEY environment variable).
    #[arg(long, env = "GOVWX_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,
    /// UTC offset the times are shown in (the office's time zone).
    #[arg(long, env = "GOVWX_TZ", default_value = "+08:00", global = true)]
    pub tz: FixedOffset,
    /// Print JSON for scripts: one document (for `watch`, one per line).
    #[arg(long, global = true)]
    pub json: bool,
}

/// The areas.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Citizen tickets and department queues (interaction-svc).
    #[command(subcommand)]
    Tickets(Tickets),
    /// Auto-reply and routing rules (interaction-svc; needs an admin key).
    #[command(subcommand)]
    Rules(Rules),
    /// Followers of an account (interaction-svc).
    #[command(subcommand)]
    Followers(Followers),
    /// Articles and their three-level review (content-svc).
    #[command(subcommand)]
    Articles(Articles),
    /// The sensitive-word lexicon (content-svc).
    #[command(subcommand)]
    Lexicon(Lexicon),
    /// The convenience-service directory (content-svc).
    #[command(subcommand)]
    Directory(Directory),
    /// Custom menus (content-svc): show, check a menu file, publish.
    #[command(subcommand)]
    Menu(Menu),
    /// Chinese search over an account's directory services and published articles
    /// (content-svc), best first.
    Search {
        /// What a citizen would type, e.g. 社保卡补办.
        query: String,
        #[command(flatten)]
        account: AccountArg,
        /// Only services or only articles.
        #[arg(long, value_enum)]
        kind: Option<SearchKindArg>,
        /// Only one directory category (e.g. social_security).
        #[arg(long)]
        category: Option<String>,
        /// At most this many hits (1-50; the server's default is 10).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Statistics (stats-svc).
    #[command(subcommand)]
    Stats(Stats),
    /// Messages a service's consumer gave up on (the DEADLETTER stream): list them,
    /// replay them once the cause is fixed. Talks to NATS as the `ops` user, not to
    /// the services (no API key).
    Deadletters(Deadletters),
    /// Prints a shell completion script, e.g. `govwx completions bash > /etc/bash_completion.d/govwx`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the man page (roff), e.g. `govwx man | man -l -`.
    Man,
}

/// How long a call waits for its answer without `--timeout`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// [`DEFAULT_TIMEOUT_SECS`] for a command whose service calls WeChat before it
/// answers: content-svc's publish uploads the images, adds the draft and submits
/// it, each call allowed up to 5 s and retried, so 30 s could cut a send that was
/// going well.
pub const SENDING_TIMEOUT_SECS: u64 = 300;

impl Command {
    /// For a command whose service calls WeChat before it answers, the command
    /// that shows how the send went: a call that got no answer in time may still be
    /// sending (what the server started it finishes), and running it again could
    /// send twice.
    pub fn sends_through_wechat(&self) -> Option<String> {
        match self {
            Command::Articles(Articles::Publish { id, .. }) => {
                Some(format!("govwx articles show {id}"))
            }
            Command::Menu(Menu::Publish { account, tag, .. }) => Some(match tag {
                0 => format!("govwx menu show --account {}", account.account),
                tag => format!("govwx menu show --account {} --tag {tag}", account.account),
            }),
            Command::Tickets(Tickets::Reply { id, .. }) => Some(format!("govwx tickets show {id}")),
            _ => None,
        }
    }

    /// Seconds a call of this command waits for its answer: `--timeout`
    /// (`GOVWX_TIMEOUT`) when given, else [`SENDING_TIMEOUT_SECS`] for a command
    /// that sends through WeChat and [`DEFAULT_TIMEOUT_SECS`] for the others.
    pub fn timeout_secs(&self, given: Option<u64>) -> u64 {
        given.unwrap_or(if self.sends_through_wechat().is_some() {
            SENDING_TIMEOUT_SECS
        } else {
            DEFAULT_TIMEOUT_SECS
        })
    }
}

/// The account whose objects a command reads or changes.
#[derive(Debug, Args)]
pub struct AccountArg {
    /// The WeChat account id.
    #[arg(long, env = "GOVWX_ACCOUNT", default_value = "demo")]
    pub account: String,
}

/// Ticket commands.
#[derive(Debug, Subcommand)]
pub enum Tickets {
    /// Lists tickets, newest first (a department key: its own; admin: all).
    List {
        /// Only this department's (admins); empty: the caller's own.
        #[arg(long)]
        department: Option<String>,
        /// Only tickets in these states (repeat or separate with commas).
        #[arg(long, value_enum, value_delimiter = ',')]
        state: Vec<StateArg>,
        /// Only overdue tickets.
        #[arg(long)]
        overdue: bool,
        /// Only this account's tickets.
        #[arg(long)]
        account: Option<String>,
        /// Only this citizen's tickets.
        #[arg(long)]
        openid: Option<String>,
        /// Tickets per page (1-200; the server's default is 50).
        #[arg(long)]
        limit: Option<u32>,
        /// The page after a previous list (its `next_page_token`).
        #[arg(long)]
        page_token: Option<String>,
    },
    /// Shows one ticket with its thread and history.
    Show { id: String },
    /// Streams changes to a queue until interrupted, reconnecting when the link drops.
    Watch {
        /// The department's queue (admins); empty: the caller's own.
        #[arg(long)]
        department: Option<String>,
    },
    /// Acknowledges a ticket: a person has seen it.
    Ack {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Moves a ticket to another department and/or names its agent.
    Assign {
        id: String,
        /// The department to move it to; omitted: it stays.
        #[arg(long)]
        department: Option<String>,
        /// The agent who owns it; omitted: nobody.
        #[arg(long)]
        assignee: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Answers the citizen through WeChat (`-` reads the text from standard input).
    Reply {
        id: String,
        text: String,
        /// Who answers, shown in the thread.
        #[arg(long)]
        agent: Option<String>,
        /// This answer's id (a fresh one by default). Re-running a call that timed out
        /// with the id it printed reports how that answer left instead of sending it
        /// to the citizen twice.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Closes a ticket; the citizen is asked to rate the answer.
    Close {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Reopens a closed ticket.
    Reopen {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
}

/// A ticket state on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StateArg {
    Open,
    Acknowledged,
    Answered,
    Closed,
    Reopened,
}

/// Rule commands.
#[derive(Debug, Subcommand)]
pub enum Rules {
    /// Lists an account's reply and routing rules.
    List {
        #[command(flatten)]
        account: AccountArg,
        /// Only one kind.
        #[arg(long, value_enum)]
        kind: Option<RuleKind>,
    },
    /// Adds a rule.
    #[command(subcommand)]
    Add(AddRule),
    /// Removes a rule.
    Rm {
        #[arg(value_enum)]
        kind: RuleKind,
        id: String,
    },
}

/// Reply rules or routing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuleKind {
    Reply,
    Routing,
}

/// A new rule.
#[derive(Debug, Subcommand)]
pub enum AddRule {
    /// An auto-reply with a text answer.
    Reply {
        #[command(flatten)]
        account: AccountArg,
        /// How the patterns match.
        #[arg(long = "match", value_enum)]
        match_kind: MatchArg,
        /// A keyword, the regular expression or the menu key (repeat for keywords).
        #[arg(long = "pattern")]
        patterns: Vec<String>,
        /// The answer.
        #[arg(long)]
        text: String,
        /// Higher wins.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i32,
        /// The answer settles the matter: no ticket is opened.
        #[arg(long)]
        resolves: bool,
        /// Add it switched off.
        #[arg(long)]
        disabled: bool,
        /// This create's id (a fresh one by default, printed on stderr first).
        /// Re-running a call that timed out with the id it printed answers the rule
        /// that call created instead of adding a second one.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Sends tickets with a keyword to a department (no keyword: the account's default).
    Routing {
        #[command(flatten)]
        account: AccountArg,
        /// A keyword (repeat for more).
        #[arg(long = "keyword")]
        keywords: Vec<String>,
        /// The department that gets the tickets.
        #[arg(long)]
        department: String,
        /// The tickets' category (consultation, help, complaint, suggestion, emergency).
        #[arg(long, default_value = "")]
        category: String,
        /// Higher is tried first.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i32,
        /// As for `rules add reply`.
        #[arg(long)]
        request_id: Option<String>,
    },
}

/// How a reply rule matches.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MatchArg {
    Exact,
    Contains,
    Regex,
    MenuClick,
    Subscribe,
}

/// Follower commands.
#[derive(Debug, Subcommand)]
pub enum Followers {
    /// Shows one follower.
    Show {
        #[command(flatten)]
        account: AccountArg,
        openid: String,
    },
    /// Lists followers.
    List {
        #[command(flatten)]
        account: AccountArg,
        /// Only followers with this tag.
        #[arg(long)]
        tag: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        page_token: Option<String>,
    },
    /// Adds and removes tags.
    Tag {
        #[command(flatten)]
        account: AccountArg,
        openid: String,
        #[arg(long)]
        add: Vec<String>,
        #[arg(long)]
        remove: Vec<String>,
    },
    /// Erases one citizen's data on their request (admin key): their follower row,
    /// tags and directory answer, and the openid and texts of their tickets (the
    /// tickets' skeleton stays). Refused (exit 5) while a ticket of theirs is not
    /// closed, naming it. Audited with the key's department and --reason.
    Erase {
        #[command(flatten)]
        account: AccountArg,
        openid: String,
        /// The citizen's request as the office records it (a case number, the
        /// channel it came by), kept in the audit; required.
        #[arg(long)]
        reason: String,
    },
}

/// The person acting on an article, sent as `x-actor` (the key names the department).
#[derive(Debug, Args)]
pub struct ActorArg {
    /// Who acts (e.g. zhang.wei or 王芳: a name in Chinese goes as x-actor-bin);
    /// omitted: the key's department.
    #[arg(long, env = "GOVWX_ACTOR")]
    pub actor: Option<String>,
}

/// An article's content: a Markdown (`.md`) or HTML file and its fields.
#[derive(Debug, Args)]
pub struct ContentArgs {
    /// The body: a Markdown file (`.md`, `.markdown`, turned into HTML) or an HTML file.
    pub file: PathBuf,
    /// The title (at most 32 characters).
    #[arg(long)]
    pub title: String,
    /// The byline (at most 16 characters).
    #[arg(long, default_value = "")]
    pub author: String,
    /// The summary shown in the feed (at most 128 characters).
    #[arg(long, default_value = "")]
    pub digest: String,
    /// The cover: a permanent material's media id.
    #[arg(long)]
    pub cover: Option<String>,
    /// The "阅读原文" link.
    #[arg(long, default_value = "")]
    pub source_url: String,
    #[arg(long, default_value = "")]
    pub column: String,
    /// Open comments.
    #[arg(long)]
    pub comments: bool,
    /// Only followers may comment.
    #[arg(long)]
    pub fans_only_comments: bool,
}

/// What `articles update` writes: the body, and each field given. A field not given
/// keeps the draft's value (UpdateArticle replaces the whole content, so govwx reads
/// the draft first); an empty one (`--digest ""`) clears it, `=false` turns a flag off.
#[derive(Debug, Args)]
pub struct UpdateContentArgs {
    /// The body: a Markdown file (`.md`, `.markdown`, turned into HTML) or an HTML file.
    pub file: PathBuf,
    /// The title (at most 32 characters).
    #[arg(long)]
    pub title: Option<String>,
    /// The byline (at most 16 characters).
    #[arg(long)]
    pub author: Option<String>,
    /// The summary shown in the feed (at most 128 characters).
    #[arg(long)]
    pub digest: Option<String>,
    /// The cover: a permanent material's media id (it replaces an uploaded image).
    #[arg(long)]
    pub cover: Option<String>,
    /// The "阅读原文" link.
    #[arg(long)]
    pub source_url: Option<String>,
    #[arg(long)]
    pub column: Option<String>,
    /// Open comments (`--comments=false` closes them).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub comments: Option<bool>,
    /// Only followers may comment (`--fans-only-comments=false`: anyone).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub fans_only_comments: Option<bool>,
}

/// Article commands.
#[derive(Debug, Subcommand)]
pub enum Articles {
    /// Lists an account's articles, newest created first (a page never skips or
    /// repeats one that changes while you page).
    List {
        #[command(flatten)]
        account: AccountArg,
        /// Only this state.
        #[arg(long, value_enum)]
        state: Option<ArticleStateArg>,
        /// Articles per page (1-200; the server's default is 50).
        #[arg(long)]
        limit: Option<u32>,
        /// The page after a previous list (its `next_page_token`).
        #[arg(long)]
        page_token: Option<String>,
    },
    /// Shows an article, its sensitive-word hits and its review trail.
    Show { id: String },
    /// Lists an article's versions, newest first: who saved each, when, and what its
    /// review came to; with VERSION, shows that version whole (its body too).
    Versions {
        id: String,
        /// A version to show whole (1 and up) instead of the list.
        #[arg(value_name = "VERSION")]
        number: Option<u32>,
        /// Versions per page (1-50; the server's default is 20).
        #[arg(long)]
        limit: Option<u32>,
        /// The page after a previous list (its `next_page_token`).
        #[arg(long)]
        page_token: Option<String>,
    },
    /// Writes a new draft.
    Create {
        #[command(flatten)]
        account: AccountArg,
        #[command(flatten)]
        content: ContentArgs,
        /// Push it to followers as a mass send (counted against the quota) instead of
        /// publishing it without a push.
        #[arg(long)]
        mass_send: bool,
        /// For a mass send: only followers with this tag id.
        #[arg(long, default_value_t = 0)]
        tag: u64,
        /// This create's id (a fresh one by default, printed on stderr first).
        /// Re-running a call that timed out with the id it printed answers the
        /// article that call created instead of creating a second one.
        #[arg(long)]
        request_id: Option<String>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Replaces a draft's body and the fields given; the others keep their value
    /// (the previous version is kept).
    Update {
        id: String,
        #[command(flatten)]
        content: UpdateContentArgs,
        /// The version your edit is based on (`articles show`); refused if the article
        /// changed since. Without it, the version govwx reads just before updating.
        #[arg(long)]
        read_version: Option<u32>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Sends a draft to the first review.
    Submit {
        id: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Takes a submitted article back to draft.
    Withdraw {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Approves or rejects the review stage the article waits for.
    Review {
        id: String,
        #[arg(value_enum)]
        decision: Decision,
        /// The reviewer's comment (required to reject).
        #[arg(long)]
        comment: Option<String>,
        /// Override a sensitive-word hit first: `KEY=REASON` (keys: `articles show`).
        #[arg(long = "override", value_name = "KEY=REASON")]
        overrides: Vec<String>,
        /// The version you read (`articles show`); refused if the article changed
        /// since. Without it, the version current when govwx reads the article.
        #[arg(long)]
        read_version: Option<u32>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Sends an approved, scheduled or failed article back to draft for revision
    /// (a schedule is cancelled; the new version needs three new reviews).
    Return {
        id: String,
        /// What the editor is to change (required).
        #[arg(long)]
        reason: String,
        /// As for `review`.
        #[arg(long)]
        read_version: Option<u32>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Overrides sensitive-word hits without moving the article.
    Override {
        id: String,
        /// `KEY=REASON` (keys: `articles show`).
        #[arg(long = "override", value_name = "KEY=REASON", required = true)]
        overrides: Vec<String>,
        /// As for `review`.
        #[arg(long)]
        read_version: Option<u32>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Schedules an approved article.
    Schedule {
        id: String,
        /// When: `YYYY-MM-DD HH:MM` in --tz, or RFC 3339.
        #[arg(long)]
        at: String,
        /// As for `publish`.
        #[arg(long)]
        confirm_possible_duplicate: bool,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Cancels a schedule.
    Cancel {
        id: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Hands an approved (or failed) article to WeChat now.
    Publish {
        id: String,
        /// You checked the account's sent messages in WeChat's console and the
        /// article's last send, whose outcome is unknown (its answer was lost, or it
        /// was cut off mid-way), did not reach followers: send it again. Without it
        /// such an article is refused (exit 5), as a second send could push it twice.
        /// Recorded in the article's review trail with --actor.
        #[arg(long)]
        confirm_possible_duplicate: bool,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Settles as published a failed article whose last send's outcome is unknown
    /// (`articles show` says so), after finding it in the account's published list
    /// in WeChat's console: nothing is sent to WeChat. Publishers; a message is
    /// settled by its headline. Recorded in the review trail with --actor.
    RecordPublished {
        id: String,
        /// The article's address in WeChat (https://mp.weixin.qq.com/…).
        #[arg(long)]
        url: String,
        /// Kept in the review trail.
        #[arg(long)]
        comment: Option<String>,
        /// WeChat's id of the publication (a free publication's article_id), when
        /// known: retracting it later needs it.
        #[arg(long)]
        msg_data_id: Option<String>,
        /// When WeChat published it (RFC 3339, or `YYYY-MM-DD HH:MM` in --tz);
        /// omitted: now.
        #[arg(long)]
        published_at: Option<String>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Mass sends left and when the next is possible.
    Quota {
        #[command(flatten)]
        account: AccountArg,
    },
}

/// An article state on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ArticleStateArg {
    Draft,
    Submitted,
    FirstReviewed,
    SecondReviewed,
    Approved,
    Scheduled,
    Publishing,
    Published,
    Failed,
    Retracted,
}

/// A review decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Decision {
    Approve,
    Reject,
}

/// Lexicon commands.
#[derive(Debug, Subcommand)]
pub enum Lexicon {
    /// Lists the words, optionally of one category.
    List {
        #[arg(long)]
        category: Option<String>,
    },
    /// Adds a word (or moves it to another category).
    Add {
        word: String,
        /// political, violence, vulgar, advertising, fraud, wrong, or allow (the allowlist).
        #[arg(long)]
        category: String,
    },
    /// Removes a word.
    Rm { word: String },
    /// Adds every word of a file: one per line, `word` or `word,category` (`#`
    /// starts a comment); words without a category take --category.
    Import {
        file: PathBuf,
        #[arg(long)]
        category: Option<String>,
    },
    /// Screens a text, Markdown or HTML file (`-`: standard input) as an article
    /// would be, and prints every hit as FILE:LINE:COLUMN; exits 6 when there is one.
    Check {
        file: PathBuf,
        /// Read the file as HTML (markup skipped, a word split by tags still found);
        /// the default for .html and .htm files.
        #[arg(long)]
        html: bool,
    },
}

/// Directory commands.
#[derive(Debug, Subcommand)]
pub enum Directory {
    /// Lists the convenience services of an account.
    List {
        #[command(flatten)]
        account: AccountArg,
        /// Only one category (e.g. social_security).
        #[arg(long)]
        category: Option<String>,
    },
    /// Imports a directory seed file (content-svc's README, "Seeding a directory"):
    /// checked whole first, then written at once; a service of the same name on
    /// the same account is updated, an identical one left alone.
    Import {
        file: PathBuf,
        /// Check the file and show what would change, without writing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Menu commands. A menu file is WeChat's menu JSON (`{"button": [{"name": …,
/// "type": "click", "key": …}, {"name": …, "sub_button": […]}]}`) with two more
/// types: `category` (`"category": "social_security"`, a CLICK listing that
/// directory category) and `service_hall` (a VIEW of the account's service hall).
#[derive(Debug, Subcommand)]
pub enum Menu {
    /// An account's menu (the default, or the conditional menu of --tag) with its
    /// publication state; --versions lists its saved versions.
    Show {
        #[command(flatten)]
        account: AccountArg,
        /// The WeChat user tag of a conditional menu (0: the default menu).
        #[arg(long, default_value_t = 0)]
        tag: u64,
        #[arg(long)]
        versions: bool,
    },
    /// Checks a menu file against WeChat's limits, saving nothing; prints the JSON
    /// `menu/create` would receive, or the rule broken.
    Validate {
        file: PathBuf,
        #[command(flatten)]
        account: AccountArg,
    },
    /// Publishes a menu through WeChat: FILE is saved as the next version first;
    /// without FILE the latest saved version (or --version) is published.
    Publish {
        file: Option<PathBuf>,
        #[command(flatten)]
        account: AccountArg,
        /// The WeChat user tag of a conditional menu (0: the default menu).
        #[arg(long, default_value_t = 0)]
        tag: u64,
        /// An earlier saved version to publish (without FILE; `menu show --versions`
        /// lists them). Not `--version`, which prints govwx's.
        #[arg(long = "menu-version", id = "menu_version", conflicts_with = "file")]
        version: Option<u32>,
        /// Why this version (saved with it).
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        actor: ActorArg,
    },
}

/// What a search looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SearchKindArg {
    Service,
    Article,
}

/// Statistics commands.
#[derive(Debug, Subcommand)]
pub enum Stats {
    /// What an account received: messages, events, follows and unfollows.
    Overview {
        #[command(flatten)]
        account: AccountArg,
    },
    /// One daily rollup over a range of office days, by key.
    Series {
        #[command(flatten)]
        account: AccountArg,
        /// followers_new, followers_lost, messages, events, menu_clicks, menu_views,
        /// qr_scans, tickets_opened, tickets_acknowledged, tickets_answered,
        /// tickets_closed, tickets_reopened, tickets_overdue, tickets_rated, rating_sum.
        #[arg(long)]
        metric: String,
        #[command(flatten)]
        range: RangeArg,
    },
    /// Each department's tickets and response times, best compliance first.
    Scorecard {
        #[command(flatten)]
        account: AccountArg,
        #[command(flatten)]
        range: RangeArg,
    },
    /// Every account the key may see, ranked by WCI for one month.
    Ranking {
        /// YYYY-MM; omitted: last month (in --tz).
        #[arg(long)]
        month: Option<String>,
        /// The WCI formula: v14.2, v13 or provincial (the server's default: v14.2).
        #[arg(long, default_value = "")]
        formula: String,
    },
    /// Inspection alarms raised for an account.
    Alarms {
        #[command(flatten)]
        account: AccountArg,
        #[command(flatten)]
        range: RangeArg,
    },
    /// What an inspector's checklist asks about an account on a date.
    Readiness {
        #[command(flatten)]
        account: AccountArg,
        /// YYYY-MM-DD; omitted: today.
        #[arg(long)]
        date: Option<String>,
    },
}

/// Dead-letter commands and the NATS connection they use.
#[derive(Debug, Args)]
pub struct Deadletters {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(subcommand)]
    pub command: DeadlettersCommand,
}

/// How to reach NATS. The password is never a flag value (it would stay in shell
/// history and `ps`): GOVWX_NATS_PASSWORD or --nats-password-file.
#[derive(Debug, Args)]
pub struct NatsArgs {
    /// NATS server URL (several separated by commas; `tls://` turns TLS on).
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    pub nats_url: String,
    /// The NATS user (`ops` in production: deploy/k8s/infra/nats-values.yaml); its
    /// answers come to the inbox `_INBOX_{user}`, the only one it may read.
    #[arg(long, env = "GOVWX_NATS_USER", global = true)]
    pub nats_user: Option<String>,
    /// File holding the user's password (else GOVWX_NATS_PASSWORD).
    #[arg(long, env = "GOVWX_NATS_PASSWORD_FILE", global = true)]
    pub nats_password_file: Option<PathBuf>,
    /// PEM file of the CA that signed the NATS servers' certificates; turns TLS on.
    #[arg(long, env = "GOVWX_NATS_CA_FILE", global = true)]
    pub nats_ca_file: Option<PathBuf>,
    /// The services' NATS_PREFIX (none in production).
    #[arg(long, env = "NATS_PREFIX", default_value = "", global = true)]
    pub nats_prefix: String,
}

/// What to do with dead letters.
#[derive(Debug, Subcommand)]
pub enum DeadlettersCommand {
    /// Lists the dead letters, oldest first: who gave up on which message, after how
    /// many deliveries, why, and when (letters are kept 30 days).
    List {
        /// Only the letters of one service (interaction-svc, content-svc, stats-svc).
        #[arg(long)]
        service: Option<String>,
    },
    /// Publishes each letter's original message again on its original subject, so the
    /// consumers of that subject apply it (each at most once: their processed_events).
    /// Every letter is read first; a sequence that is not there replays nothing.
    Replay {
        /// The letters' sequences in DEADLETTER (`deadletters list`).
        #[arg(required = true, value_name = "DEADLETTER_SEQ")]
        sequences: Vec<u64>,
        /// Delete each letter from DEADLETTER once its message is stored again.
        #[arg(long)]
        delete: bool,
    },
}

/// A range of office days.
#[derive(Debug, Args)]
pub struct RangeArg {
    /// First day, YYYY-MM-DD; omitted: 29 days before --to.
    #[arg(long)]
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD; omitted: today (in --tz).
    #[arg(long)]
    pub to: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> super::Cli {
        use clap::Parser;
        super::Cli::try_parse_from(args).unwrap()
    }

    /// A publish may take minutes of WeChat calls: it waits longer than a read, and
    /// an explicit --timeout is kept for either.
    #[test]
    fn commands_that_send_through_wechat_wait_longer_unless_told() {
        let timeout = |args: &[&str]| {
            let cli = parse(args);
            cli.command.timeout_secs(cli.global.timeout)
        };
        assert_eq!(timeout(&["govwx", "articles", "publish", "7"]), 300);
        assert_eq!(timeout(&["govwx", "menu", "publish", "menu.json"]), 300);
        assert_eq!(timeout(&["govwx", "tickets", "reply", "7", "hello"]), 300);
        assert_eq!(timeout(&["govwx", "tickets", "list"]), 30);
        assert_eq!(timeout(&["govwx", "articles", "show", "7"]), 30);
        assert_eq!(
            timeout(&["govwx", "--timeout", "5", "articles", "publish", "7"]),
            5
        );
        assert_eq!(
            timeout(&["govwx", "tickets", "list", "--timeout", "90"]),
            90
        );
        assert_eq!(
            parse(&["govwx", "menu", "publish", "--tag", "2", "--account", "wx1"])
                .command
                .sends_through_wechat()
                .as_deref(),
            Some("govwx menu show --account wx1 --tag 2")
        );
    }
}
