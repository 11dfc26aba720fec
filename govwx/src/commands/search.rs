//! `govwx search QUERY`: Chinese search over the directory and published articles
//! (content-svc's `Search`).

use std::io::IsTerminal as _;

use proto::content::v1::{SearchKind, SearchRequest};
use serde_json::json;

use crate::cli::SearchKindArg;
use crate::client::Target;
use crate::error::Error;
use crate::output::{Out, one_line, or_dash};

/// What `govwx search` was asked.
pub struct Query {
    pub query: String,
    pub account: String,
    pub kind: Option<SearchKindArg>,
    pub category: Option<String>,
    pub limit: Option<u32>,
}

pub async fn run(query: Query, target: &Target, out: &Out) -> Result<(), Error> {
    let mut client = target.content().await?;
    let kind = match query.kind {
        None => SearchKind::Unspecified,
        Some(SearchKindArg::Service) => SearchKind::Service,
        Some(SearchKindArg::Article) => SearchKind::Article,
    };
    let hits = client
        .search(SearchRequest {
            account: query.account,
            query: query.query,
            kind: kind as i32,
            category: query.category.unwrap_or_default(),
            limit: query.limit.unwrap_or(0),
        })
        .await
        .map_err(|s| target.status(s))?
        .into_inner()
        .hits;
    if out.json {
        let hits: Vec<_> = hits
            .iter()
            .map(|h| {
                json!({
                    "kind": kind_name(h.kind),
                    "id": h.id,
                    "title": h.title,
                    "snippet": h.snippet,
                    "snippet_text": render(&h.snippet, Marks::None),
                    "url": h.url,
                    "category": h.category,
                    "score": h.score,
                })
            })
            .collect();
        return out.document(&json!({ "hits": hits }));
    }
    if hits.is_empty() {
        eprintln!("no hits");
        return Ok(());
    }
    let marks = if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        Marks::Ansi
    } else {
        Marks::Brackets
    };
    let mut text = String::new();
    for (i, h) in hits.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&format!(
            "{}. {}   [{}{}]\n   {}\n   {}\n",
            i + 1,
            one_line(&h.title),
            kind_name(h.kind),
            if h.category.is_empty() {
                String::new()
            } else {
                format!(" {}", one_line(&h.category))
            },
            or_dash(&terminal_snippet(&h.snippet, marks)),
            one_line(&h.url)
        ));
    }
    // The marks are escape codes of govwx's own; every server text above is one_line'd.
    out.raw_line(text.trim_end())
}

fn kind_name(kind: i32) -> &'static str {
    match SearchKind::try_from(kind) {
        Ok(SearchKind::Service) => "service",
        Ok(SearchKind::Article) => "article",
        _ => "unknown",
    }
}

/// How matched words are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marks {
    /// Bold and underlined (a terminal).
    Ansi,
    /// 【…】 (a pipe or a file: readable without escape codes).
    Brackets,
    /// Not marked (JSON's plain text).
    None,
}

/// A snippet as a terminal shows it, on one line: its own control characters are
/// replaced before the marks go in, so the only escape codes in it are the marks'.
fn terminal_snippet(snippet: &str, marks: Marks) -> String {
    render(&one_line(snippet), marks)
}

/// A snippet (HTML-escaped, matched words in `<em>…</em>`) as plain text.
pub fn render(snippet: &str, marks: Marks) -> String {
    let (open, close) = match marks {
        Marks::Ansi => ("\x1b[1;4m", "\x1b[0m"),
        Marks::Brackets => ("【", "】"),
        Marks::None => ("", ""),
    };
    snippet
        .replace("<em>", open)
        .replace("</em>", close)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snippet_is_unescaped_and_its_matches_marked() {
        let snippet = "补办<em>社保卡</em> &amp; 挂失 &lt;线上&gt;";
        assert_eq!(
            render(snippet, Marks::Brackets),
            "补办【社保卡】 & 挂失 <线上>"
        );
        assert_eq!(render(snippet, Marks::None), "补办社保卡 & 挂失 <线上>");
        assert_eq!(render("<em>医保</em>", Marks::Ansi), "\x1b[1;4m医保\x1b[0m");
    }

    #[test]
    fn a_snippets_own_escape_codes_are_replaced_and_only_the_marks_kept() {
        let rendered = terminal_snippet("<em>医保</em>\x1b]0;title\x07", Marks::Ansi);
        assert_eq!(rendered, "\x1b[1;4m医保\x1b[0m\u{FFFD}]0;title\u{FFFD}");
    }
}
