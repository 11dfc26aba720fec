//! `deadletters list` and `deadletters replay`: the DEADLETTER stream read and replayed
//! over NATS itself, since no service keeps dead letters. Each letter is an
//! `events.v1.DeadLetter` (platform's consumer runner writes it on
//! `deadletter.{service}.{stream}`) wrapping the original payload.
//!
//! Letters are read one by one with `$JS.API.STREAM.MSG.GET` (no consumer to create or
//! clean up), and a replay is an ordinary JetStream publish: the grants the `ops` user
//! of deploy/k8s/infra/nats-values.yaml has, and nothing more.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, context::GetStreamErrorKind, stream::RawMessageErrorKind};
use chrono::{DateTime, FixedOffset, Utc};
use prost::Message as _;
use proto::events::v1::DeadLetter;

use crate::cli::{Deadletters, DeadlettersCommand, NatsArgs};
use crate::error::Error;
use crate::output::{Out, shorten, table};

/// The stream of dead letters and its subjects' first token (platform::nats::DEADLETTER).
const DEADLETTER: &str = "DEADLETTER";
const DEADLETTER_SUBJECT: &str = "deadletter";

/// The streams a consumer reads, hence the only ones a letter can be replayed to, with
/// their subjects' prefix (platform::nats::{WECHAT_INBOUND, CONTENT, INTERACTION}). A
/// replay is refused for anything else: the `ops` user may publish on these only.
const REPLAYABLE: [(&str, &str); 3] = [
    ("WECHAT_INBOUND", "wechat.inbound."),
    ("CONTENT", "content."),
    ("INTERACTION", "interaction."),
];

/// How long one NATS request may take before NATS counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a dead-letter command.
pub async fn run(command: Deadletters, out: &Out) -> Result<(), Error> {
    let link = Link::connect(&command.nats).await?;
    match command.command {
        DeadlettersCommand::List { service } => list(&link, service.as_deref(), out).await,
        DeadlettersCommand::Replay { sequences, delete } => {
            replay(&link, &sequences, delete, out).await
        }
    }
}

/// The services' NATS_PREFIX, applied as platform::nats::Namespace applies it: subjects
/// `{prefix}.{subject}`, streams `{PREFIX}_{name}`.
#[derive(Debug, Clone, Default)]
struct Namespace(Option<String>);

impl Namespace {
    fn new(prefix: &str) -> Result<Self, Error> {
        if prefix.is_empty() {
            return Ok(Self(None));
        }
        if !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(Error::Config(format!(
                "--nats-prefix {prefix:?}: use ASCII letters, digits, '_' or '-'"
            )));
        }
        Ok(Self(Some(prefix.to_owned())))
    }

    fn subject(&self, subject: &str) -> String {
        match &self.0 {
            Some(prefix) => format!("{prefix}.{subject}"),
            None => subject.to_owned(),
        }
    }

    fn name(&self, name: &str) -> String {
        match &self.0 {
            Some(prefix) => format!("{}_{name}", prefix.to_ascii_uppercase().replace('-', "_")),
            None => name.to_owned(),
        }
    }
}

/// A connection to NATS and what the server refused on it.
struct Link {
    jetstream: jetstream::Context,
    namespace: Namespace,
    /// The URL as it may be shown (no credentials).
    url: String,
    /// The last error the server sent (a permissions violation, say): a request it
    /// refused otherwise only times out.
    refused: Arc<Mutex<Option<String>>>,
}

impl Link {
    async fn connect(args: &NatsArgs) -> Result<Self, Error> {
        let namespace = Namespace::new(&args.nats_prefix)?;
        let url = redacted(&args.nats_url);
        let refused = Arc::new(Mutex::new(None));
        let seen = refused.clone();
        let mut options = async_nats::ConnectOptions::new()
            .name("govwx")
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(REQUEST_TIMEOUT))
            .event_callback(move |event| {
                let seen = seen.clone();
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
                    }
                }
            });
        if let Some(user) = &args.nats_user {
            let password = password(args)?;
            // Each user may read answers on its own inbox only (nats-values.yaml), as
            // the services do (platform::nats::inbox_prefix).
            options = options
                .user_and_password(user.clone(), password)
                .custom_inbox_prefix(format!("_INBOX_{user}"));
        }
        if let Some(ca_file) = &args.nats_ca_file {
            std::fs::metadata(ca_file).map_err(|e| {
                Error::Config(format!(
                    "cannot read --nats-ca-file {}: {e}",
                    ca_file.display()
                ))
            })?;
            options = options
                .add_root_certificates(ca_file.clone())
                .require_tls(true);
        } else if args.nats_url.starts_with("tls://") {
            options = options.require_tls(true);
        }
        let servers: Vec<&str> = args.nats_url.split(',').map(str::trim).collect();
        let client = options.connect(servers).await.map_err(|e| {
            use async_nats::ConnectErrorKind as Kind;
            match e.kind() {
                Kind::AuthorizationViolation | Kind::Authentication => Error::Config(format!(
                    "nats at {url} refused the user{}: check GOVWX_NATS_USER and GOVWX_NATS_PASSWORD",
                    args.nats_user
                        .as_deref()
                        .map(|u| format!(" {u}"))
                        .unwrap_or_else(|| " (none given: set GOVWX_NATS_USER)".into())
                )),
                Kind::ServerParse => Error::Config(format!("--nats-url {url}: {e}")),
                _ => Error::Unreachable {
                    service: "nats",
                    addr: url.clone(),
                    reason: e.to_string(),
                },
            }
        })?;
        let jetstream = jetstream::new(client);
        Ok(Self {
            jetstream,
            namespace,
            url,
            refused,
        })
    }

    /// A failed request, with what the server refused if it said.
    fn failed(&self, what: &str, error: impl std::fmt::Display) -> Error {
        let refused = self
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match refused {
            Some(refusal) => Error::Config(format!(
                "{what}: nats at {} refused: {refusal} (the `ops` user of nats-values.yaml may do this; check GOVWX_NATS_USER)",
                self.url
            )),
            None => Error::Unreachable {
                service: "nats",
                addr: self.url.clone(),
                reason: format!("{what}: {error}"),
            },
        }
    }

    /// The DEADLETTER stream, with its settings (how long letters are kept).
    async fn deadletters(&self) -> Result<jetstream::stream::Stream, Error> {
        let name = self.namespace.name(DEADLETTER);
        self.jetstream.get_stream(&name).await.map_err(|e| match e.kind() {
            GetStreamErrorKind::JetStream(js)
                if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                Error::Config(format!(
                    "no stream {name} on nats at {}: no service has started yet, or --nats-prefix is not the services' NATS_PREFIX",
                    self.url
                ))
            }
            _ => self.failed(&format!("reading stream {name}"), e),
        })
    }
}

/// The password from --nats-password-file, else GOVWX_NATS_PASSWORD.
fn password(args: &NatsArgs) -> Result<String, Error> {
    let (text, source) = match &args.nats_password_file {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!(
                    "cannot read --nats-password-file {}: {e}",
                    path.display()
                ))
            })?,
            "--nats-password-file",
        ),
        None => match std::env::var("GOVWX_NATS_PASSWORD") {
            Ok(text) => (text, "GOVWX_NATS_PASSWORD"),
            Err(_) => {
                return Err(Error::Config(
                    "no NATS password for --nats-user: set GOVWX_NATS_PASSWORD or pass --nats-password-file FILE".into(),
                ));
            }
        },
    };
    let password = text.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(Error::Config(format!(
            "the NATS password in {source} is empty"
        )));
    }
    Ok(password.to_owned())
}

/// One message of DEADLETTER.
struct Letter {
    /// Its sequence in DEADLETTER: what `replay` takes.
    sequence: u64,
    /// When it was stored in DEADLETTER.
    stored_at: DateTime<Utc>,
    /// The decoded letter, or why its payload is not one.
    letter: Result<DeadLetter, String>,
    /// Its subject in DEADLETTER, `deadletter.{service}.{stream}`.
    subject: String,
}

impl Letter {
    fn read(message: jetstream::message::StreamMessage) -> Self {
        let stored_at = DateTime::from_timestamp_nanos(
            i64::try_from(message.time.unix_timestamp_nanos()).unwrap_or(0),
        );
        Self {
            sequence: message.sequence,
            stored_at,
            letter: DeadLetter::decode(message.payload.as_ref())
                .map_err(|e| format!("not an events.v1.DeadLetter: {e}")),
            subject: message.subject.to_string(),
        }
    }

    /// What replaying it publishes: the original subject (in the namespace) and payload.
    fn replayable(&self, namespace: &Namespace) -> Result<(&DeadLetter, String), String> {
        let letter = self.letter.as_ref().map_err(Clone::clone)?;
        if letter.stream == "outbox" {
            return Err(format!(
                "{}'s outbox could not publish this event (too large for NATS), so there is no message to replay; see the runbook GovwxOutboxDeadLetters",
                letter.service
            ));
        }
        let Some((_, prefix)) = REPLAYABLE.iter().find(|(name, _)| *name == letter.stream) else {
            return Err(format!(
                "it came from stream {:?}, which no replay may publish to",
                letter.stream
            ));
        };
        if !letter.subject.starts_with(prefix) || letter.subject.contains(['*', '>', ' ']) {
            return Err(format!(
                "its subject {:?} is not one of stream {}'s",
                letter.subject, letter.stream
            ));
        }
        Ok((letter, namespace.subject(&letter.subject)))
    }
}

async fn list(link: &Link, service: Option<&str>, out: &Out) -> Result<(), Error> {
    if let Some(service) = service
        && (service.is_empty() || service.contains(['.', '*', '>', ' ']))
    {
        return Err(Error::Input(format!(
            "--service {service:?}: a service's name, e.g. stats-svc"
        )));
    }
    let mut stream = link.deadletters().await?;
    let info = stream
        .info()
        .await
        .map_err(|e| link.failed("reading stream DEADLETTER", e))?;
    let kept = info.config.max_age;
    let first = info.state.first_sequence.max(1);
    let filter = link.namespace.subject(&match service {
        Some(service) => format!("{DEADLETTER_SUBJECT}.{service}.>"),
        None => format!("{DEADLETTER_SUBJECT}.>"),
    });
    let mut letters = Vec::new();
    let mut next = first;
    loop {
        let found = stream
            .raw_message_builder()
            .sequence(next)
            .next_by_subject(filter.clone())
            .send()
            .await;
        match found {
            Ok(message) => {
                next = message.sequence + 1;
                letters.push(Letter::read(message));
            }
            Err(e) if matches!(e.kind(), RawMessageErrorKind::NoMessageFound) => break,
            Err(e) => return Err(link.failed("reading DEADLETTER", e)),
        }
    }
    print_list(&letters, kept, out)
}

fn print_list(letters: &[Letter], kept: Duration, out: &Out) -> Result<(), Error> {
    let local = |t: DateTime<Utc>| t.with_timezone(&out.tz);
    let expires = |t: DateTime<Utc>| {
        (!kept.is_zero())
            .then(|| chrono::Duration::from_std(kept).ok().map(|k| t + k))
            .flatten()
    };
    if out.json {
        let rows: Vec<serde_json::Value> = letters
            .iter()
            .map(|l| {
                let mut row = serde_json::json!({
                    "sequence": l.sequence,
                    "at": rfc3339(local(l.stored_at)),
                    "expires_at": expires(l.stored_at).map(|t| rfc3339(local(t))),
                });
                match &l.letter {
                    Ok(letter) => {
                        let header = letter.header.clone().unwrap_or_default();
                        row["service"] = letter.service.clone().into();
                        row["stream"] = letter.stream.clone().into();
                        row["subject"] = letter.subject.clone().into();
                        row["stream_sequence"] = letter.stream_sequence.into();
                        row["deliveries"] = letter.deliveries.into();
                        row["reason"] = letter.reason.clone().into();
                        row["event_id"] = header.event_id.into();
                        row["account"] = header.account.into();
                        row["payload_bytes"] = letter.payload.len().into();
                    }
                    Err(why) => {
                        row["deadletter_subject"] = l.subject.clone().into();
                        row["reason"] = why.clone().into();
                    }
                }
                row
            })
            .collect();
        return out.document(&serde_json::Value::Array(rows));
    }
    if letters.is_empty() {
        return out.line("no dead letters");
    }
    let rows = letters.iter().map(|l| {
        let when = local(l.stored_at).format("%Y-%m-%d %H:%M").to_string();
        match &l.letter {
            Ok(letter) => vec![
                l.sequence.to_string(),
                when,
                letter.service.clone(),
                letter.stream.clone(),
                letter.subject.clone(),
                letter.stream_sequence.to_string(),
                letter.deliveries.to_string(),
                shorten(&letter.reason, 80),
            ],
            Err(why) => vec![
                l.sequence.to_string(),
                when,
                "-".into(),
                "-".into(),
                l.subject.clone(),
                "-".into(),
                "-".into(),
                shorten(why, 80),
            ],
        }
    });
    out.line(&table(
        &[
            "seq",
            "when",
            "service",
            "stream",
            "subject",
            "stream seq",
            "deliveries",
            "reason",
        ],
        rows,
    ))
}

fn rfc3339(t: DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// What one replay did.
struct Replayed {
    sequence: u64,
    subject: String,
    stream: String,
    stream_sequence: u64,
    duplicate: bool,
    deleted: bool,
}

async fn replay(link: &Link, sequences: &[u64], delete: bool, out: &Out) -> Result<(), Error> {
    let stream = link.deadletters().await?;
    let mut wanted: Vec<u64> = Vec::with_capacity(sequences.len());
    for sequence in sequences {
        if !wanted.contains(sequence) {
            wanted.push(*sequence);
        }
    }
    // Every letter read and checked before anything is published: a wrong sequence in
    // a list replays nothing, so the list can be corrected and run again as a whole.
    let mut letters = Vec::with_capacity(wanted.len());
    let mut refused = Vec::new();
    for sequence in wanted {
        match stream.get_raw_message(sequence).await {
            Ok(message) => {
                let letter = Letter::read(message);
                if !letter
                    .subject
                    .starts_with(&link.namespace.subject(DEADLETTER_SUBJECT))
                {
                    refused.push(format!("{sequence}: not a dead letter"));
                } else if let Err(why) = letter.replayable(&link.namespace) {
                    refused.push(format!("{sequence}: {why}"));
                } else {
                    letters.push(letter);
                }
            }
            Err(e) if matches!(e.kind(), RawMessageErrorKind::NoMessageFound) => {
                refused.push(format!(
                    "{sequence}: no such letter in DEADLETTER (expired, deleted, or never there)"
                ))
            }
            Err(e) => return Err(link.failed(&format!("reading DEADLETTER {sequence}"), e)),
        }
    }
    if !refused.is_empty() {
        return Err(Error::Input(format!(
            "nothing replayed: {}",
            refused.join("; ")
        )));
    }
    let mut done = Vec::with_capacity(letters.len());
    for letter in &letters {
        let (dead, subject) = letter.replayable(&link.namespace).expect("checked above");
        let replayed = publish(link, letter.sequence, dead, subject).await;
        let mut replayed = match replayed {
            Ok(replayed) => replayed,
            Err(error) => {
                // What was replayed already is said first, so nothing is replayed twice
                // by a re-run that leaves those out (a re-run with them is harmless too).
                print_replayed(&done, out)?;
                return Err(error);
            }
        };
        if delete {
            replayed.deleted = stream.delete_message(letter.sequence).await.map_err(|e| {
                link.failed(
                    &format!("deleting DEADLETTER {} after its replay", letter.sequence),
                    e,
                )
            })?;
        }
        if !out.json {
            out.line(&replayed_line(&replayed))?;
        }
        done.push(replayed);
    }
    if out.json {
        print_replayed(&done, out)?;
    }
    Ok(())
}

/// Publishes a letter's original payload on its original subject and waits until the
/// stream has stored it.
async fn publish(
    link: &Link,
    sequence: u64,
    letter: &DeadLetter,
    subject: String,
) -> Result<Replayed, Error> {
    let event_id = letter
        .header
        .as_ref()
        .map(|h| h.event_id.as_str())
        .unwrap_or_default();
    // Not the original Nats-Msg-Id (the event id): inside the stream's duplicate window
    // (2 minutes for WECHAT_INBOUND, 10 for CONTENT and INTERACTION) JetStream would drop
    // the replay as a repeat of the message given up on. One id per letter instead, so a
    // replay run twice is stored once; consumers find the event id in the payload, and
    // their processed_events keep a consumer that applied it already from applying it again.
    let message_id = format!("{event_id}:replay:{DEADLETTER}:{sequence}");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id.as_str());
    let what = format!("replaying DEADLETTER {sequence} to {subject}");
    let ack = link
        .jetstream
        .publish_with_headers(subject.clone(), headers, letter.payload.clone().into())
        .await
        .map_err(|e| link.failed(&what, e))?
        .await
        .map_err(|e| link.failed(&what, e))?;
    Ok(Replayed {
        sequence,
        subject: letter.subject.clone(),
        stream: ack.stream,
        stream_sequence: ack.sequence,
        duplicate: ack.duplicate,
        deleted: false,
    })
}

fn replayed_line(r: &Replayed) -> String {
    let stored = if r.duplicate {
        format!(
            "already replayed (stored in {} as {}; the stream dropped this repeat)",
            r.stream, r.stream_sequence
        )
    } else {
        format!(
            "replayed to {}: {} {}",
            r.subject, r.stream, r.stream_sequence
        )
    };
    let deleted = if r.deleted { "; letter deleted" } else { "" };
    format!("{}: {stored}{deleted}", r.sequence)
}

fn print_replayed(done: &[Replayed], out: &Out) -> Result<(), Error> {
    if !out.json {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = done
        .iter()
        .map(|r| {
            serde_json::json!({
                "sequence": r.sequence,
                "subject": r.subject,
                "stream": r.stream,
                "stream_sequence": r.stream_sequence,
                "duplicate": r.duplicate,
                "deleted": r.deleted,
            })
        })
        .collect();
    out.document(&serde_json::Value::Array(rows))
}

/// `NATS_URL` as it may be shown: credentials in a URL's user part become `***`.
/// The rule of `platform::nats`'s own `redacted`, repeated: govwx, a client shipped to
/// departments, does not link `platform` (sqlx, axum) for one function.
fn redacted(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let url = url.trim();
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            match rest.rsplit_once('@') {
                Some((_, host)) if scheme.is_empty() => format!("***@{host}"),
                Some((_, host)) => format!("{scheme}://***@{host}"),
                None => url.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(stream: &str, subject: &str) -> Letter {
        Letter {
            sequence: 7,
            stored_at: Utc::now(),
            letter: Ok(DeadLetter {
                stream: stream.into(),
                subject: subject.into(),
                service: "stats-svc".into(),
                payload: vec![1],
                ..Default::default()
            }),
            subject: "deadletter.stats-svc.wechat_inbound".into(),
        }
    }

    #[test]
    fn a_letter_is_replayed_on_its_subject_in_the_namespace_and_only_to_a_consumed_stream() {
        let ns = Namespace::new("t-1").unwrap();
        let (_, subject) = letter("WECHAT_INBOUND", "wechat.inbound.city.msg.text")
            .replayable(&ns)
            .unwrap();
        assert_eq!(subject, "t-1.wechat.inbound.city.msg.text");
        assert_eq!(ns.name(DEADLETTER), "T_1_DEADLETTER");
        assert!(
            letter("WECHAT_INBOUND", "deadletter.x.y")
                .replayable(&ns)
                .is_err()
        );
        assert!(letter("STATS", "stats.city.x").replayable(&ns).is_err());
        let outbox = letter("outbox", "content.city.article.published")
            .replayable(&Namespace::default())
            .unwrap_err();
        assert!(outbox.contains("GovwxOutboxDeadLetters"), "{outbox}");
    }

    #[test]
    fn credentials_in_the_url_are_not_shown() {
        assert_eq!(
            redacted("nats://ops:s3cret@127.0.0.1:4222"),
            "nats://***@127.0.0.1:4222"
        );
    }
}
