//! Tables for people, JSON for scripts, times in the office's zone.

use std::io::Write;

use chrono::{DateTime, FixedOffset};
use comfy_table::{CellAlignment, ColumnConstraint, Table, presets};
use unicode_width::UnicodeWidthStr;

use crate::error::Error;

/// Writes a command's result to standard output.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// JSON instead of tables.
    pub json: bool,
    /// The zone times are shown in.
    pub tz: FixedOffset,
}

impl Out {
    /// Writes `text` and a newline, every character that would act on a terminal
    /// (see [`printable`]) shown as `�`: what is printed holds citizens' and
    /// editors' texts, which must not retitle, clear or write the clipboard of the
    /// operator's terminal.
    pub fn line(&self, text: &str) -> Result<(), Error> {
        write_line(&printable(text))
    }

    /// Writes `text` as it is, for govwx's own text: completions, the man page, and
    /// `search`, whose marks are escape codes (every part from the server in it
    /// already passed through [`one_line`]).
    pub fn raw_line(&self, text: &str) -> Result<(), Error> {
        write_line(text)
    }

    /// Writes one JSON document, indented for reading.
    pub fn document(&self, value: &serde_json::Value) -> Result<(), Error> {
        write_line(&json_text(
            serde_json::to_string_pretty(value).expect("a Value always serialises"),
        ))
    }

    /// Writes one JSON document on one line (a stream of them: `watch`).
    pub fn json_line(&self, value: &serde_json::Value) -> Result<(), Error> {
        write_line(&json_text(value.to_string()))
    }

    /// A time for a table: minutes, in the office's zone; `-` if unset.
    pub fn time(&self, ts: Option<&prost_types::Timestamp>) -> String {
        local(ts, self.tz).map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
    }

    /// A time for JSON: RFC 3339 in the office's zone; null if unset.
    pub fn json_time(&self, ts: Option<&prost_types::Timestamp>) -> serde_json::Value {
        local(ts, self.tz).map_or(serde_json::Value::Null, |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false).into()
        })
    }
}

fn write_line(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()?;
    Ok(())
}

/// Serialised JSON with DEL, the C1 controls and the bidi controls escaped as
/// `\uXXXX` too: serde_json escapes only U+0000-U+001F, and a terminal may act on
/// the others when a script's output is shown. Outside strings JSON is ASCII, so
/// each such character is inside a string, where its escape means the same.
fn json_text(json: String) -> String {
    // C0 is escaped in strings already, and outside them is the layout's whitespace.
    let raw = |c: char| is_unsafe(c) && u32::from(c) >= 0x20;
    if !json.chars().any(raw) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if raw(c) {
            // All of them are in the Basic Multilingual Plane: one `\u` escape each.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `c` acts on a terminal instead of showing: a C0 or C1 control or DEL
/// (ESC starts the sequences that retitle or clear a terminal or set its
/// clipboard), or a bidi embedding, override or isolate (U+202A-U+202E,
/// U+2066-U+2069), which reorders what follows it so a line shows text it does not
/// hold.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Shown in place of a character that would act on a terminal.
const REPLACEMENT: char = '\u{FFFD}';

/// `text` with its lines kept (`\n`, and `\r\n` as `\n`) and tabs, every other
/// control or bidi character (see [`is_unsafe`]) as `�`.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' if chars.peek() == Some(&'\n') => {}
            c if is_unsafe(c) => out.push(REPLACEMENT),
            c => out.push(c),
        }
    }
    out
}

/// `ts` in `tz`; `None` when unset or out of range.
fn local(ts: Option<&prost_types::Timestamp>, tz: FixedOffset) -> Option<DateTime<FixedOffset>> {
    let ts = ts?;
    let nanos = u32::try_from(ts.nanos).unwrap_or(0);
    DateTime::from_timestamp(ts.seconds, nanos).map(|t| t.with_timezone(&tz))
}

/// An aligned table without borders, `kubectl` style: upper-case headers, columns
/// three spaces apart, widths counted in terminal cells (a Chinese character takes
/// two), no trailing spaces.
pub fn table<R: IntoIterator<Item = String>>(
    header: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table.set_header(header.iter().map(|h| h.to_uppercase()));
    for row in rows {
        table.add_row(row.into_iter().map(|cell| one_line(&cell)));
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
        column.set_cell_alignment(CellAlignment::Left);
        column.set_constraint(ColumnConstraint::ContentWidth);
    }
    table
        .lines()
        .map(|line| line.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Field/value pairs, one per line, values aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.width()).max().unwrap_or(0) + 1;
    pairs
        .iter()
        .map(|(key, value)| format!("{:width$}  {}", format!("{key}:"), one_line(value)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` on one line, cut to `max` terminal cells with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    let text = one_line(text);
    if text.width() <= max {
        return text;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Newlines and tabs as spaces, so a row stays one line; every other control or
/// bidi character (see [`is_unsafe`]) as `�`.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if is_unsafe(c) => REPLACEMENT,
            c => c,
        })
        .collect()
}

/// The lower-case name of a proto enum value without its type prefix
/// (`TICKET_STATE_OPEN` → `open`).
pub fn enum_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_lowercase()
}

/// `-` for an empty string.
pub fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_cells_keep_the_next_column_aligned() {
        let rendered = table(
            &["summary", "state"],
            [
                vec!["路灯不亮".to_owned(), "open".to_owned()],
                vec!["street light".to_owned(), "closed".to_owned()],
            ],
        );
        let starts: Vec<usize> = rendered
            .lines()
            .map(|line| {
                let at = line.rfind(' ').unwrap() + 1;
                line[..at].width()
            })
            .collect();
        assert_eq!(starts.len(), 3);
        assert!(starts.iter().all(|s| *s == starts[0]), "{rendered}");
    }

    /// What citizens could send to retitle, clear or write the clipboard of an
    /// operator's terminal, and to reorder a line.
    const HOSTILE: &str = "a\x1b]0;pwned\x07b\x1b[2Jc\x1b]52;c;ZXZpbA==\x07d\u{9b}31me\x7ff\u{202E}gh\u{2066}i\u{2069}\x00";

    fn acts_on_a_terminal(text: &str) -> bool {
        text.chars().any(|c| {
            (c.is_control() && c != '\n')
                || ('\u{202A}'..='\u{202E}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
    }

    #[test]
    fn one_line_shows_every_control_and_bidi_character_as_a_replacement() {
        let cell = one_line(HOSTILE);
        assert!(!acts_on_a_terminal(&cell), "{cell:?}");
        assert_eq!(cell, "a�]0;pwned�b�[2Jc�]52;c;ZXZpbA==�d�31me�f�gh�i��");
        assert_eq!(one_line("路灯\r\n不亮\t了"), "路灯  不亮 了");
    }

    #[test]
    fn tables_fields_and_shortened_text_hold_no_terminal_control() {
        let rendered = table(&["text"], [vec![HOSTILE.to_owned()]]);
        assert!(!acts_on_a_terminal(&rendered), "{rendered:?}");
        let rendered = fields(&[("summary", HOSTILE.to_owned())]);
        assert!(!acts_on_a_terminal(&rendered), "{rendered:?}");
        let rendered = shorten(HOSTILE, 12);
        assert!(!acts_on_a_terminal(&rendered), "{rendered:?}");
    }

    #[test]
    fn printable_keeps_lines_and_replaces_the_rest() {
        assert_eq!(printable("one\r\ntwo\tthree\n"), "one\ntwo\tthree\n");
        assert_eq!(printable("x\ry\x1b[2J"), "x�y�[2J");
        assert!(!acts_on_a_terminal(&printable(HOSTILE)));
    }

    #[test]
    fn json_escapes_what_serde_leaves_raw_and_means_the_same() {
        let value = serde_json::json!({ "text": HOSTILE, "n": [1] });
        let text = json_text(value.to_string());
        assert!(!acts_on_a_terminal(&text), "{text:?}");
        assert!(text.contains("\\u001b") && text.contains("\\u009b") && text.contains("\\u202e"));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
        let pretty = json_text(serde_json::to_string_pretty(&value).unwrap());
        assert!(pretty.lines().count() > 1, "{pretty}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&pretty).unwrap(),
            value
        );
    }

    #[test]
    fn shorten_counts_terminal_cells() {
        assert_eq!(shorten("社保卡怎么办理", 7), "社保卡…");
        assert_eq!(shorten("ok", 7), "ok");
    }
}
