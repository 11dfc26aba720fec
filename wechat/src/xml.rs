//! A small, safe XML reader and writer for WeChat's flat `<xml>` documents.
//!
//! The reader refuses any DTD (`<!DOCTYPE`), so entity declarations, XXE and
//! entity-expansion bombs never get a chance; it resolves only the five predefined
//! entities and numeric character references. Text is kept as sent: no trimming and
//! no end-of-line normalisation, and control characters such as `\x1d` (seen in real
//! user text) pass through. The one exception is U+0000, dropped from every text (see
//! [`Element::text`]). Depth, element count and text length are capped.

use quick_xml::events::{BytesRef, Event};
use quick_xml::reader::Reader;

/// Caps applied while reading, so hostile input costs bounded memory and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum element nesting, the root counting as 1.
    pub max_depth: usize,
    /// Maximum number of elements in the document.
    pub max_elements: usize,
    /// Maximum bytes of text in one element.
    pub max_text_len: usize,
}

impl Default for Limits {
    /// Returns limits that fit every documented callback with room to spare: WeChat
    /// nests 4 deep (`SendPicsInfo/PicList/item/PicMd5Sum` under the root) and a
    /// compatible-mode body carries an `Encrypt` text about 3× the message.
    fn default() -> Self {
        Self {
            max_depth: 16,
            max_elements: 1024,
            max_text_len: 1 << 20,
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The bytes are not UTF-8 (WeChat always sends UTF-8).
    #[error("document is not UTF-8")]
    NotUtf8,
    /// The document has a `<!DOCTYPE`; DTDs are never accepted.
    #[error("DOCTYPE is forbidden")]
    DoctypeForbidden,
    /// A reference to an entity other than the five predefined ones.
    #[error("entity reference &{0}; is forbidden")]
    EntityForbidden(String),
    /// Elements nest deeper than the limit.
    #[error("elements nest deeper than {max}")]
    TooDeep {
        /// The limit in force.
        max: usize,
    },
    /// More elements than the limit.
    #[error("more than {max} elements")]
    TooManyElements {
        /// The limit in force.
        max: usize,
    },
    /// One element's text is longer than the limit.
    #[error("element text longer than {max} bytes")]
    TextTooLong {
        /// The limit in force.
        max: usize,
    },
    /// The document ends inside an element.
    #[error("document ends inside <{0}>")]
    Truncated(String),
    /// No root element at all.
    #[error("document has no root element")]
    Empty,
    /// Anything else that is not well-formed XML.
    #[error("malformed XML: {0}")]
    Malformed(String),
}

impl XmlError {
    /// Returns a short stable code for metric labels and log fields.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotUtf8 => "not_utf8",
            Self::DoctypeForbidden => "doctype_forbidden",
            Self::EntityForbidden(_) => "entity_forbidden",
            Self::TooDeep { .. } => "too_deep",
            Self::TooManyElements { .. } => "too_many_elements",
            Self::TextTooLong { .. } => "text_too_long",
            Self::Truncated(_) => "truncated_xml",
            Self::Empty => "empty_xml",
            Self::Malformed(_) => "malformed_xml",
        }
    }
}

/// One element: its name, its text, and its child elements in document order.
///
/// A leaf keeps its text exactly; an element with children drops whitespace-only
/// text between them (indentation) but keeps any other text, so nothing is lost.
/// Attributes are ignored: WeChat does not use them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Tag name as written.
    pub name: String,
    /// Concatenated text and CDATA content, without U+0000. XML 1.0 forbids the
    /// character and quick-xml refuses `&#0;`, yet a raw NUL byte in text or CDATA
    /// parses, and PostgreSQL text cannot hold it (22021): every service storing a
    /// field of a callback carrying one failed until the callback was dead-lettered.
    /// Dropped here, where every field of a message is read, so the gateway and every
    /// consumer see the same text. Dropped rather than replaced by U+FFFD: WeChat's
    /// client shows nothing for it, and a visible `�` would reach a desk's thread,
    /// a menu key's count and an exact-match rule.
    pub text: String,
    /// Child elements in document order; names may repeat (`item`, `fail_idx`).
    pub children: Vec<Element>,
}

impl Element {
    /// Returns the first child with this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Returns every child with this name, in order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Returns the text of the first child with this name.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// Returns every descendant (depth first, pre-order) with this name.
    pub fn descendants_named<'a>(&'a self, name: &'a str) -> Vec<&'a Element> {
        let mut found = Vec::new();
        let mut stack: Vec<&Element> = self.children.iter().rev().collect();
        while let Some(el) = stack.pop() {
            if el.name == name {
                found.push(el);
            }
            stack.extend(el.children.iter().rev());
        }
        found
    }

    /// Renders the element back to XML, text as CDATA (a canonical form, not the
    /// original bytes).
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }

    fn write_to(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        out.push('>');
        if !self.text.is_empty() {
            push_cdata(out, &self.text);
        }
        for child in &self.children {
            child.write_to(out);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Parses a document with the default [`Limits`] and returns its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    parse_with_limits(bytes, Limits::default())
}

/// Parses a document with the given limits and returns its root element.
pub fn parse_with_limits(bytes: &[u8], limits: Limits) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.allow_unmatched_ends = false;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;

    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(XmlError::DoctypeForbidden),
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(XmlError::Malformed("second root element".into()));
            }
            Event::Start(start) => {
                open(
                    &mut stack,
                    &mut count,
                    &limits,
                    name_of(start.name().as_ref())?,
                )?;
            }
            Event::Empty(start) => {
                open(
                    &mut stack,
                    &mut count,
                    &limits,
                    name_of(start.name().as_ref())?,
                )?;
                close(&mut stack, &mut root);
            }
            Event::End(_) => close(&mut stack, &mut root),
            Event::Text(t) => {
                let s = t.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                push_text(&mut stack, &s, &limits)?;
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                push_text(&mut stack, &s, &limits)?;
            }
            Event::GeneralRef(r) => {
                let ch = resolve_reference(&r)?;
                push_text(&mut stack, ch.encode_utf8(&mut [0u8; 4]), &limits)?;
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(XmlError::Truncated(open.name.clone()));
    }
    root.ok_or(XmlError::Empty)
}

fn name_of(raw: &[u8]) -> Result<String, XmlError> {
    // The whole input was checked as UTF-8, so this only fails on a reader bug.
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| XmlError::NotUtf8)
}

fn open(
    stack: &mut Vec<Element>,
    count: &mut usize,
    limits: &Limits,
    name: String,
) -> Result<(), XmlError> {
    if stack.len() >= limits.max_depth {
        return Err(XmlError::TooDeep {
            max: limits.max_depth,
        });
    }
    *count += 1;
    if *count > limits.max_elements {
        return Err(XmlError::TooManyElements {
            max: limits.max_elements,
        });
    }
    stack.push(Element {
        name,
        ..Element::default()
    });
    Ok(())
}

fn close(stack: &mut Vec<Element>, root: &mut Option<Element>) {
    // quick-xml checks end names and refuses unmatched ends, so the stack is never
    // empty here.
    let Some(mut done) = stack.pop() else { return };
    if !done.children.is_empty() && done.text.chars().all(char::is_whitespace) {
        done.text.clear();
    }
    match stack.last_mut() {
        Some(parent) => parent.children.push(done),
        None => *root = Some(done),
    }
}

fn push_text(stack: &mut [Element], s: &str, limits: &Limits) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(el) => {
            if el.text.len() + s.len() > limits.max_text_len {
                return Err(XmlError::TextTooLong {
                    max: limits.max_text_len,
                });
            }
            if s.contains('\0') {
                el.text.extend(s.chars().filter(|&c| c != '\0'));
            } else {
                el.text.push_str(s);
            }
            Ok(())
        }
        // Outside the root only whitespace is allowed.
        None if s.chars().all(char::is_whitespace) => Ok(()),
        None => Err(XmlError::Malformed("text outside the root element".into())),
    }
}

fn resolve_reference(r: &BytesRef<'_>) -> Result<char, XmlError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(ch)) => Ok(ch),
            _ => Err(XmlError::Malformed(format!(
                "invalid character reference &{};",
                String::from_utf8_lossy(r)
            ))),
        };
    }
    match r.as_ref() {
        b"lt" => Ok('<'),
        b"gt" => Ok('>'),
        b"amp" => Ok('&'),
        b"apos" => Ok('\''),
        b"quot" => Ok('"'),
        other => Err(XmlError::EntityForbidden(
            String::from_utf8_lossy(other).into_owned(),
        )),
    }
}

/// Appends `text` as CDATA, splitting any `]]>` so it cannot end the section early.
pub fn push_cdata(out: &mut String, text: &str) {
    out.push_str("<![CDATA[");
    // A character XML forbids (a vertical tab pasted from a word processor, U+FFFF)
    // would make the whole reply unreadable to WeChat: it is left out.
    let text: std::borrow::Cow<'_, str> = if all_xml_chars(text) {
        text.into()
    } else {
        text.chars()
            .filter(|&c| is_xml_char(c))
            .collect::<String>()
            .into()
    };
    out.push_str(&text.replace("]]>", "]]]]><![CDATA[>"));
    out.push_str("]]>");
}

/// Whether every character of `text` is one XML allows. On the reply path every
/// field is checked (the encrypted envelope's hundreds of base64 characters too), so
/// this reads bytes in loops without an early exit, which the compiler vectorises:
/// the C0 controls other than tab, newline and return are single bytes, and the two
/// non-characters U+FFFE and U+FFFF start with 0xEF, searched for only if one is there.
fn all_xml_chars(text: &str) -> bool {
    let bytes = text.as_bytes();
    let controls = bytes.iter().fold(false, |seen, &b| {
        seen | (b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r')
    });
    let lead_ef = bytes.iter().fold(false, |seen, &b| seen | (b == 0xEF));
    let non_characters = lead_ef && text.contains(['\u{FFFE}', '\u{FFFF}']);
    !(controls || non_characters)
}

/// Whether XML 1.0 allows `c` in a document (its `Char` production; a Rust `char` is
/// never a surrogate).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Appends `<name><![CDATA[text]]></name>`.
pub fn push_cdata_element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    push_cdata(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Appends `<name>text</name>` with the text escaped; meant for numbers, which
/// WeChat writes bare.
pub fn push_text_element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&quick_xml::escape::escape(text));
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_scan_agrees_with_the_character_rule() {
        for text in [
            "您好，欢迎\t\n",
            "\u{0B}",
            "a\u{FFFE}",
            "\u{FFFF}",
            "\u{1F}x",
            "\u{FFFD}",
        ] {
            assert_eq!(
                all_xml_chars(text),
                text.chars().all(is_xml_char),
                "{text:?}"
            );
        }
    }

    #[test]
    fn characters_xml_forbids_are_left_out_of_cdata() {
        let mut out = String::new();
        push_cdata(&mut out, "\u{0B}您好\u{FFFF}\u{0}，\t欢迎]]>");
        assert_eq!(out, "<![CDATA[您好，\t欢迎]]]]><![CDATA[>]]>");
    }

    #[test]
    fn a_self_closing_element_is_an_empty_field() {
        let root = parse(b"<xml><EventKey/><A>1</A></xml>").unwrap();
        assert_eq!(root.text_of("EventKey"), Some(""));
        assert_eq!(root.text_of("A"), Some("1"));
    }

    #[test]
    fn text_and_cdata_pieces_are_concatenated() {
        let root = parse(b"<xml><A>a&amp;<![CDATA[<b>]]>&#x4e2d;&#25991;</A></xml>").unwrap();
        assert_eq!(root.text_of("A"), Some("a&<b>中文"));
    }

    #[test]
    fn indentation_between_children_is_dropped() {
        let root = parse(b"<xml>\n  <A>\n <B>x</B>\n </A>\n</xml>").unwrap();
        assert_eq!(root.text, "");
        assert_eq!(root.child("A").unwrap().text, "");
        assert_eq!(root.child("A").unwrap().text_of("B"), Some("x"));
    }
}
