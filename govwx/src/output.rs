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
    /// Writes `text` and a newline.
    pub fn line(&self, text: &str) -> Result<(), Error> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}")?;
        stdout.flush()?;
        Ok(())
    }

    /// Writes one JSON document, indented for reading.
    pub fn document(&self, value: &serde_json::Value) -> Result<(), Error> {
        self.line(&serde_json::to_string_pretty(value).expect("a Value always serialises"))
    }

    /// Writes one JSON document on one line (a stream of them: `watch`).
    pub fn json_line(&self, value: &serde_json::Value) -> Result<(), Error> {
        self.line(&value.to_string())
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

/// Newlines and tabs as spaces, so a row stays one line.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r', '\t'], " ")
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

    #[test]
    fn shorten_counts_terminal_cells() {
        assert_eq!(shorten("社保卡怎么办理", 7), "社保卡…");
        assert_eq!(shorten("ok", 7), "ok");
    }
}
