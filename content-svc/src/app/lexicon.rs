//! The install's lexicon: seeded from a file, changed over gRPC (audited), and
//! compiled once per revision. Every replica compares the stored revision before it
//! screens, so a change made through one replica is used by all of them at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sqlx::PgPool;

use super::AppError;
use crate::domain::article::{self, ArticleInputError};
use crate::domain::screening::{Category, Entry, LexiconError, Screener, normalize, parse_lexicon};
use crate::domain::text::check_text;
use crate::store::lexicon as store;

/// [`Lexicon::refusal`] with a screener already read, for a caller about to hold a
/// connection (a transaction): reading the lexicon then would wait for a second.
pub fn refusal(screener: &Screener, texts: &[(String, &str)]) -> Option<String> {
    texts.iter().find_map(|(field, text)| {
        let hit = screener.screen("text", text).into_iter().next()?;
        Some(format!(
            "{field}: 「{}」 is in the sensitive-word lexicon ({}); reword it",
            hit.text,
            hit.category.as_str()
        ))
    })
}

/// The compiled lexicon and the revision it was built from.
#[derive(Clone)]
pub struct Lexicon {
    db: PgPool,
    current: Arc<RwLock<(i64, Arc<Screener>)>>,
}

impl Lexicon {
    /// A lexicon read from `db`; nothing is compiled until first use.
    pub fn new(db: PgPool) -> Self {
        Self {
            db,
            current: Arc::new(RwLock::new((-1, Arc::new(Screener::new(Vec::new()))))),
        }
    }

    /// Loads `text` (a lexicon file) when the database's lexicon was never written,
    /// so the seed happens once per install, not once per replica or restart.
    /// A line naming a word an earlier line named wins over it, with a warning
    /// naming both lines (earlier releases took each line as an upsert, so an
    /// installed file with a repeated line must not stop the start); a line that
    /// cannot be used stops it.
    pub async fn seed(&self, text: &str) -> Result<usize, AppError> {
        let file = parse_lexicon(text)?;
        let mut tx = self.db.begin().await?;
        store::lock_seed(&mut tx).await?;
        if !store::is_empty(&mut *tx).await? {
            return Ok(0);
        }
        for repeat in &file.repeats {
            tracing::warn!(
                line = repeat.line,
                first_line = repeat.first_line,
                "lexicon file: {repeat}"
            );
        }
        let entries = file.entries;
        for entry in &entries {
            store::put(&mut tx, &entry.word, entry.category_name(), "seed").await?;
        }
        tx.commit().await?;
        Ok(entries.len())
    }

    /// The screener for the stored lexicon, rebuilt if another replica (or this one)
    /// changed it. Screening never waits for a rebuild of another caller: the lock
    /// is held only to swap the `Arc`.
    pub async fn screener(&self) -> Result<Arc<Screener>, AppError> {
        let revision = store::revision(&self.db).await?;
        {
            let current = self.current.read().unwrap_or_else(|e| e.into_inner());
            if current.0 == revision {
                return Ok(current.1.clone());
            }
        }
        let rows = store::entries(&self.db).await?;
        let entries = rows
            .iter()
            .filter_map(|(word, category)| Entry::parse(category, word).ok())
            .collect();
        let screener = Arc::new(Screener::new(entries));
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.0 < revision {
            *current = (revision, screener.clone());
        }
        Ok(screener)
    }

    /// The first lexicon word in `texts` (each with the name of its field), as the
    /// refusal a citizen-facing text gets: directory entries and menu names are
    /// published without review, so a hit refuses the write (the lexicon's
    /// allowlist is the way to let a phrase through).
    pub async fn refusal(&self, texts: &[(String, &str)]) -> Result<Option<String>, AppError> {
        Ok(refusal(&*self.screener().await?, texts))
    }

    /// Screens a text as an article's fields are screened and says where each hit
    /// is. With `html`, the text screened is the body's as saving an article reads
    /// it ([`article::screened_body`]: sanitised, so text readers never see is not
    /// screened, and refused for faint text as saving refuses it); each hit is
    /// placed back in the text as sent (see [`place_in`]).
    pub async fn screen_text(&self, text: &str, html: bool) -> Result<Vec<TextHit>, AppError> {
        let len = text.chars().count();
        if len > SCREEN_TEXT_MAX {
            return Err(AppError::Invalid(format!(
                "text is {len} characters long; at most {SCREEN_TEXT_MAX} are screened at once"
            )));
        }
        let (screened, placed) = if html {
            let screened = article::screened_body(text)?;
            let placed = place_html(&screened, text);
            (screened, Some(placed))
        } else {
            // Saving refuses such a character in every field: so does the check.
            check_text("text", text).map_err(ArticleInputError::from)?;
            (text.to_owned(), None)
        };
        let screener = self.screener().await?;
        let at = |i: usize| placed.as_ref().map_or(i, |p| p[i]);
        let originals: Vec<char> = text.chars().collect();
        // Character offset → (line, column), both 1-based.
        let mut line_starts = vec![0usize];
        line_starts.extend(
            originals
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == '\n')
                .map(|(i, _)| i + 1),
        );
        Ok(screener
            .screen("text", &screened)
            .into_iter()
            .map(|hit| {
                // A hit is never empty: its last character is at end - 1.
                let start = at(hit.start);
                let end = (at(hit.end.saturating_sub(1)) + 1).max(start);
                let line = line_starts.partition_point(|&s| s <= start);
                TextHit {
                    line,
                    column: start - line_starts[line - 1] + 1,
                    start,
                    end,
                    text: originals[start..end].iter().collect(),
                    word: hit.word,
                    category: hit.category,
                }
            })
            .collect())
    }

    /// Every entry, optionally of one category (`allow` for the allowlist):
    /// (word, category). An unknown category is refused, naming the known ones (an
    /// empty list said "no such words" of a misspelt category).
    pub async fn list(&self, category: Option<&str>) -> Result<Vec<(String, String)>, AppError> {
        if let Some(category) = category
            && category != "allow"
            && Category::parse(category).is_none()
        {
            return Err(LexiconError::Category(category.to_owned()).into());
        }
        let mut rows = store::entries(&self.db).await?;
        if let Some(category) = category {
            rows.retain(|(_, c)| c == category);
        }
        Ok(rows)
    }

    /// Adds or recategorises an entry (audited). Screening reads a word normalised,
    /// so a word that is a stored entry once normalised (翻牆 of 翻墙, VPN of vpn)
    /// is that entry: put under another spelling it is refused, naming the entry
    /// (`LexiconTaken`), rather than stored beside it, where the screener kept one of
    /// the two (an allowed 翻牆 let 翻墙 through everywhere) and deleting one left
    /// the other screening.
    pub async fn put(&self, entry: &Entry, actor: &str) -> Result<(), AppError> {
        let mut tx = self.db.begin().await?;
        // Held to the commit: no other change adds a spelling meanwhile.
        store::lock_changes(&mut tx).await?;
        let rows = store::entries(&mut *tx).await?;
        if let Some((existing, category)) = spellings(&rows, &entry.word)
            .into_iter()
            .find(|(word, _)| *word != entry.word)
        {
            return Err(AppError::LexiconTaken {
                word: entry.word.clone(),
                existing,
                category,
            });
        }
        store::put(&mut tx, &entry.word, entry.category_name(), actor).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes an entry, given in any spelling that normalises to it (audited);
    /// returns whether it existed. Every stored spelling goes: an earlier release
    /// stored VPN and vpn side by side, and deleting one left the other screening.
    pub async fn delete(&self, word: &str, actor: &str) -> Result<bool, AppError> {
        let word = word.trim();
        let mut tx = self.db.begin().await?;
        store::lock_changes(&mut tx).await?;
        let rows = store::entries(&mut *tx).await?;
        let mut words: Vec<String> = spellings(&rows, word)
            .into_iter()
            .map(|(word, _)| word)
            .collect();
        if words.is_empty() {
            words.push(word.to_owned());
        }
        let mut deleted = false;
        for word in &words {
            deleted |= store::delete(&mut tx, word, actor).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }
}

/// The stored entries (word, category) that are `word` once normalised, as the
/// screener reads them; none for a word without letters or digits.
fn spellings(rows: &[(String, String)], word: &str) -> Vec<(String, String)> {
    let key = normalize(word).0;
    if key.is_empty() {
        return Vec::new();
    }
    rows.iter()
        .filter(|(stored, _)| normalize(stored).0 == key)
        .cloned()
        .collect()
}

/// The most characters `screen_text` takes (an article body is under 20,000).
pub const SCREEN_TEXT_MAX: usize = 1_000_000;

/// A hit in a screened text: where (line and column of its first character, and
/// character offsets in the whole text, all of the text as sent), what is written
/// there, the lexicon word and its category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextHit {
    pub line: usize,
    pub column: usize,
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub word: String,
    pub category: Category,
}

/// HTML with its markup blanked, character for character: tags, comments and the
/// content of `<script>`/`<style>` become spaces (newlines kept), and an entity
/// becomes its character padded with spaces to the entity's length. The result has
/// as many characters as `html`, so a hit's offsets are those of the original;
/// screening drops the spaces, so `翻<b>墙</b>` is still 翻墙, as the article gate
/// (which screens the body's text without markup) finds it.
pub fn blank_markup(html: &str) -> String {
    let chars: Vec<char> = html.chars().collect();
    let mut out = String::with_capacity(html.len());
    let blank = |out: &mut String, run: &[char]| {
        out.extend(run.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
    };
    let starts_with = |at: usize, prefix: &str| {
        let mut i = at;
        for p in prefix.chars() {
            match chars.get(i) {
                Some(c) if c.to_ascii_lowercase() == p => i += 1,
                _ => return false,
            }
        }
        true
    };
    let find = |from: usize, needle: &str| -> Option<usize> {
        (from..chars.len()).find(|&i| starts_with(i, needle))
    };
    // Once a close tag is missing after some point it is missing after every later
    // one: remembered, so a text of unclosed `<script>`s is read once, not once per tag.
    let mut unclosed = [false; 3];
    // The `>` ending the tag at `from`: a quoted attribute value holds `>` as text
    // (`<p title="x>y">`), as the parser reads it; a comment-like `<!`/`<?` ends at
    // the first.
    let tag_end = |from: usize| -> usize {
        let quotes = chars
            .get(from + 1)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == '/');
        let mut quote = None;
        for (j, &c) in chars.iter().enumerate().skip(from) {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '>' => return j + 1,
                None if quotes && (c == '"' || c == '\'') && chars[j - 1] == '=' => quote = Some(c),
                None => {}
            }
        }
        chars.len()
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '<' {
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            if starts_with(i, "<!--") {
                let end = find(i + 4, "-->").map_or(chars.len(), |e| e + 3);
                blank(&mut out, &chars[i..end]);
                i = end;
                continue;
            }
            if next.is_ascii_alphabetic() || next == '/' || next == '!' || next == '?' {
                let end = tag_end(i);
                // Script, style and template content is never shown (sanitising
                // drops a template's): blank it up to the close tag.
                let end = ["script", "style", "template"]
                    .into_iter()
                    .enumerate()
                    .find(|(k, tag)| !unclosed[*k] && starts_with(i + 1, tag))
                    .and_then(|(k, tag)| {
                        let close = find(end, &format!("</{tag}"));
                        unclosed[k] = close.is_none();
                        close
                    })
                    .map_or(end, |close| {
                        (close..chars.len())
                            .find(|&j| chars[j] == '>')
                            .map_or(chars.len(), |e| e + 1)
                    });
                blank(&mut out, &chars[i..end]);
                i = end;
                continue;
            }
        }
        if c == '&'
            && let Some((decoded, len)) = entity(&chars[i..])
        {
            out.push(decoded);
            out.extend(std::iter::repeat_n(' ', len - 1));
            i += len;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// For each character of `screened` (the text of the sanitised `html`), the
/// offset of the character it came from in `html`. The text as parsed
/// ([`article::parsed_text`]: what sanitising drops still in it, and marked) is
/// placed in the blanked `html`, which holds the same characters in the same
/// order; the screened text is then placed in it with the dropped characters
/// blanked, so a character of `<rp>`'s text is never taken for a screened one.
fn place_html(screened: &str, html: &str) -> Vec<usize> {
    let parsed = article::parsed_text(html);
    let text: String = parsed.iter().map(|(c, _)| c).collect();
    let kept: String = parsed
        .iter()
        .map(|&(c, dropped)| if dropped { ' ' } else { c })
        .collect();
    let in_html = place_in(&text, &blank_markup(html));
    place_in(screened, &kept)
        .into_iter()
        .map(|i| in_html.get(i).copied().unwrap_or(0))
        .collect()
}

/// For each character of `screened`, the offset of the character it came from in
/// `blanked`, which holds the same characters in the same order (with markup or
/// dropped text blanked, [`place_html`]), so each character is matched to the
/// next equal one; whitespace, and a character the
/// parser wrote elsewhere or decoded from an entity `blank_markup` does not know,
/// stay at the place reached. Looked up by position lists, so a text of
/// unmatched characters is read once.
fn place_in(screened: &str, blanked: &str) -> Vec<usize> {
    let mut places: HashMap<char, Vec<usize>> = HashMap::new();
    for (i, c) in blanked.chars().enumerate() {
        if !c.is_whitespace() {
            places.entry(c).or_default().push(i);
        }
    }
    let last = blanked.chars().count().saturating_sub(1);
    let mut reached = 0;
    screened
        .chars()
        .map(|c| {
            let next = places.get(&c).and_then(|at| {
                let k = at.partition_point(|&i| i < reached);
                at.get(k).copied()
            });
            match next {
                Some(i) if !c.is_whitespace() => {
                    reached = i + 1;
                    i
                }
                _ => reached.min(last),
            }
        })
        .collect()
}

/// The character an entity at the start of `chars` stands for, and its length.
fn entity(chars: &[char]) -> Option<(char, usize)> {
    let end = chars.iter().take(12).position(|&c| c == ';')?;
    let body: String = chars[1..end].iter().collect();
    let decoded = match body.as_str() {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        _ => {
            let number = body.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)?
        }
    };
    Some((decoded, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanking_keeps_every_offset_and_joins_words_split_by_tags() {
        let html =
            "<p class=\"x\">翻<b>墙</b></p>\n<!-- 翻墙 -->&#x7FFB;&#22681;<script>翻墙</script>";
        let blanked = blank_markup(html);
        assert_eq!(blanked.chars().count(), html.chars().count());
        let words: String = blanked.split_whitespace().collect();
        assert_eq!(words, "翻墙翻墙");
        assert_eq!(blanked.matches('\n').count(), 1);
    }

    #[test]
    fn an_unclosed_script_blanks_its_tag_only_and_is_read_once() {
        let html = "<script>翻<SCRIPT>墙<style>x</style>y";
        let words: String = blank_markup(html).split_whitespace().collect();
        assert_eq!(words, "翻墙y");
        // Quadratic before: each unclosed tag searched the rest of the text again.
        let hostile = "<script>".repeat(20_000);
        assert!(blank_markup(&hostile).chars().all(|c| c == ' '));
    }

    #[test]
    fn a_quoted_attribute_and_a_templates_content_are_markup() {
        let html = r#"<p title="x>代开发票">代开发票</p>"#;
        let words: String = blank_markup(html).split_whitespace().collect();
        assert_eq!(words, "代开发票");
        assert_eq!(place_html("代开发票", html)[0], 18);
        let html = "<template>代</template>代开发票";
        let words: String = blank_markup(html).split_whitespace().collect();
        assert_eq!(words, "代开发票");
        assert_eq!(place_html("代开发票", html)[0], 22);
    }

    #[test]
    fn text_outside_markup_and_unknown_entities_stay() {
        assert_eq!(blank_markup("a < b &foo; 1&2"), "a < b &foo; 1&2");
        assert_eq!(blank_markup("&amp;x"), "&    x");
    }
}
