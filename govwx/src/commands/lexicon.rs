//! `govwx lexicon …`: the install's sensitive-word lexicon (content-svc).

use std::path::Path;

use proto::content::v1::{
    DeleteLexiconEntryRequest, LexiconEntry, ListLexiconRequest, ScreenTextRequest,
};
use serde_json::json;

use crate::cli::Lexicon;
use crate::client::Target;
use crate::error::Error;
use crate::output::{Out, table};

pub async fn run(command: Lexicon, target: &Target, out: &Out) -> Result<(), Error> {
    let mut client = target.content().await?;
    let status = |s| target.status(s);
    match command {
        Lexicon::List { category } => {
            let request = ListLexiconRequest {
                category: category.unwrap_or_default(),
            };
            let entries = client
                .list_lexicon(request)
                .await
                .map_err(status)?
                .into_inner()
                .entries;
            if out.json {
                let entries: Vec<_> = entries
                    .iter()
                    .map(|e| json!({ "word": e.word, "category": e.category }))
                    .collect();
                return out.document(&json!({ "entries": entries }));
            }
            if entries.is_empty() {
                eprintln!("no words");
                return Ok(());
            }
            let rows = entries
                .iter()
                .map(|e| vec![e.word.clone(), e.category.clone()]);
            out.line(&table(&["word", "category"], rows))
        }
        Lexicon::Add { word, category } => {
            let entry = client
                .put_lexicon_entry(LexiconEntry { word, category })
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                return out.document(&json!({ "word": entry.word, "category": entry.category }));
            }
            out.line(&format!("{} ({})", entry.word, entry.category))
        }
        Lexicon::Rm { word } => {
            let deleted = client
                .delete_lexicon_entry(DeleteLexiconEntryRequest { word: word.clone() })
                .await
                .map_err(status)?
                .into_inner()
                .deleted;
            if out.json {
                return out.document(&json!({ "word": word, "deleted": deleted }));
            }
            out.line(&if deleted {
                format!("removed {word}")
            } else {
                format!("{word} was not in the lexicon")
            })
        }
        Lexicon::Import { file, category } => {
            // Every line is checked before the first is sent, so a bad file changes nothing.
            let entries = read_entries(&file, category.as_deref())?;
            for entry in &entries {
                client
                    .put_lexicon_entry(entry.clone())
                    .await
                    .map_err(status)?;
            }
            if out.json {
                return out.document(&json!({ "imported": entries.len() }));
            }
            out.line(&format!("imported {} words", entries.len()))
        }
        Lexicon::Check { file, html } => {
            let text = read_text(&file)?;
            let html = html
                || file.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm")
                });
            let hits = client
                .screen_text(ScreenTextRequest { text, html })
                .await
                .map_err(status)?
                .into_inner()
                .hits;
            let name = file.display().to_string();
            if out.json {
                let hits: Vec<_> = hits
                    .iter()
                    .map(|h| {
                        json!({
                            "line": h.line, "column": h.column, "start": h.start, "end": h.end,
                            "text": h.text, "word": h.word, "category": h.category,
                        })
                    })
                    .collect();
                out.document(&json!({ "file": name, "html": html, "hits": hits }))?;
            } else {
                // FILE:LINE:COLUMN first, as compilers print it, so editors can jump there.
                for h in &hits {
                    let word = if h.text == h.word {
                        String::new()
                    } else {
                        format!(" (lexicon: {})", h.word)
                    };
                    out.line(&format!(
                        "{name}:{}:{}: {}: {}{word}",
                        h.line,
                        h.column,
                        h.category,
                        h.text.replace(['\n', '\r'], " ")
                    ))?;
                }
            }
            if hits.is_empty() {
                if !out.json {
                    eprintln!("no sensitive words in {name}");
                }
                Ok(())
            } else {
                Err(Error::Hits {
                    count: hits.len(),
                    file: name,
                })
            }
        }
    }
}

/// A file's text, or standard input's for `-`.
pub(crate) fn read_text(file: &Path) -> Result<String, Error> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Error::Input(format!("cannot read standard input: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(file)
        .map_err(|e| Error::Input(format!("cannot read {}: {e}", file.display())))
}

/// `word` or `word,category` per line; blank lines and `#` comments skipped.
fn read_entries(file: &Path, default: Option<&str>) -> Result<Vec<LexiconEntry>, Error> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::Input(format!("cannot read {}: {e}", file.display())))?;
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (word, category) = match line.split_once([',', '\t']) {
            Some((word, category)) => (word.trim(), category.trim()),
            None => (line, default.unwrap_or("")),
        };
        let bad = |reason: String| {
            Error::Input(format!(
                "{}:{}: {reason}; nothing was imported",
                file.display(),
                number + 1
            ))
        };
        if category.is_empty() {
            return Err(bad(format!(
                "{word:?} has no category (add `,category` or pass --category)"
            )));
        }
        check_entry(word, category).map_err(bad)?;
        entries.push(LexiconEntry {
            word: word.to_owned(),
            category: category.to_owned(),
        });
    }
    Ok(entries)
}

/// The categories content-svc takes (`content-svc/src/domain/screening.rs`,
/// `Category::as_str`, plus `allow` for the allowlist).
const CATEGORIES: [&str; 7] = [
    "political",
    "violence",
    "vulgar",
    "advertising",
    "fraud",
    "wrong",
    "allow",
];

/// The checks content-svc makes of one entry (`Entry::parse`), so a file is refused
/// whole before its first word is sent: a known category, at most 64 characters,
/// and a letter or digit. (The server counts letters after NFKC: a word made only
/// of compatibility forms such as `㈠` passes there and is refused here; add it
/// with `lexicon add`.)
fn check_entry(word: &str, category: &str) -> Result<(), String> {
    if !CATEGORIES.contains(&category) {
        return Err(format!(
            "category {category:?} is not one of {}",
            CATEGORIES.join(", ")
        ));
    }
    if word.chars().count() > 64 {
        return Err(format!("{word:?} is longer than 64 characters"));
    }
    if !word.chars().any(char::is_alphanumeric) {
        return Err(format!("{word:?} has no letters or digits"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_checked_as_content_svc_checks_them() {
        assert!(check_entry("红旗", "political").is_ok());
        assert!(check_entry("人民", "allow").is_ok());
        assert!(
            check_entry("红旗", "politcal")
                .unwrap_err()
                .contains("\"politcal\"")
        );
        assert!(check_entry("、。", "political").is_err());
        assert!(check_entry(&"字".repeat(65), "wrong").is_err());
    }
}
