//! Whether an article's text can be read where it is shown: the screener reads
//! every character of the body, so a character drawn in (nearly) the colour behind
//! it would let `代开<span style="color:#fff">x</span>发票` pass as 代开x发票 while
//! readers see 代开 发票. Colours are followed down the sanitised body's elements
//! (an inline style's `color` and `background-color`, inherited as CSS inherits
//! them) and compared as WCAG compares them (relative luminance).

use std::fmt;
use std::ops::Range;

/// The least contrast text may have with what is behind it. WCAG asks 4.5 of body
/// text for reading comfort; this asks only that it be seen at all (`#cccccc` on
/// white is 1.6, `#dddddd` 1.36).
pub const MIN_CONTRAST: f64 = 1.5;

/// The page behind an article in WeChat.
const PAGE: Colour = Colour::rgb(255.0, 255.0, 255.0);
/// WeChat's article text, `rgba(0, 0, 0, 0.9)`.
const TEXT: Colour = Colour {
    r: 0.0,
    g: 0.0,
    b: 0.0,
    a: 0.9,
};

/// An sRGB colour: channels 0 to 255, alpha 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Colour {
    r: f64,
    g: f64,
    b: f64,
    a: f64,
}

impl Colour {
    const fn rgb(r: f64, g: f64, b: f64) -> Self {
        Self { r, g, b, a: 1.0 }
    }

    /// A CSS colour as inline styles keep it (lower case): `#rgb`, `#rrggbb`,
    /// `rgb(…)`, `rgba(…)` (numbers or percentages, clamped as browsers clamp) or a
    /// name of [`NAMED`]. `transparent`, `#rrggbbaa`, `currentcolor` and the
    /// keywords (`inherit`, …) are not colours here: they are dropped.
    pub fn parse(token: &str) -> Option<Self> {
        if let Some(hex) = token.strip_prefix('#') {
            return Self::hex(hex);
        }
        let channels = |inner: &str, count: usize| -> Option<Vec<f64>> {
            let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
            if parts.len() != count {
                return None;
            }
            parts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let (number, percent) = match p.strip_suffix('%') {
                        Some(n) => (n, true),
                        None => (*p, false),
                    };
                    let n: f64 = number.parse().ok().filter(|n: &f64| n.is_finite())?;
                    if n < 0.0 {
                        return None;
                    }
                    let max = if i == 3 { 1.0 } else { 255.0 };
                    Some(if percent { n / 100.0 * max } else { n }.min(max))
                })
                .collect()
        };
        if let Some(inner) = token.strip_prefix("rgb(").and_then(|t| t.strip_suffix(')')) {
            let c = channels(inner, 3)?;
            return Some(Self::rgb(c[0], c[1], c[2]));
        }
        if let Some(inner) = token
            .strip_prefix("rgba(")
            .and_then(|t| t.strip_suffix(')'))
        {
            let c = channels(inner, 4)?;
            return Some(Self {
                r: c[0],
                g: c[1],
                b: c[2],
                a: c[3],
            });
        }
        let hex = NAMED.iter().find(|(name, _)| *name == token)?.1;
        Self::hex(hex)
    }

    fn hex(hex: &str) -> Option<Self> {
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let channel = |s: &str| u8::from_str_radix(s, 16).ok().map(f64::from);
        match hex.len() {
            3 => {
                let d = |i: usize| channel(&hex[i..=i].repeat(2));
                Some(Self::rgb(d(0)?, d(1)?, d(2)?))
            }
            6 => Some(Self::rgb(
                channel(&hex[0..2])?,
                channel(&hex[2..4])?,
                channel(&hex[4..6])?,
            )),
            _ => None,
        }
    }

    /// Its alpha, 0 to 1.
    pub fn alpha(self) -> f64 {
        self.a
    }

    /// This colour drawn over the opaque `under`.
    fn over(self, under: Colour) -> Colour {
        let mix = |top: f64, bottom: f64| top * self.a + bottom * (1.0 - self.a);
        Colour::rgb(
            mix(self.r, under.r),
            mix(self.g, under.g),
            mix(self.b, under.b),
        )
    }

    /// WCAG 2's relative luminance of an opaque colour.
    fn luminance(self) -> f64 {
        let linear = |c: f64| {
            let c = c / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(self.r) + 0.7152 * linear(self.g) + 0.0722 * linear(self.b)
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |v: f64| v.round().clamp(0.0, 255.0) as u8;
        write!(f, "#{:02x}{:02x}{:02x}", c(self.r), c(self.g), c(self.b))
    }
}

/// WCAG 2's contrast ratio of two opaque colours, 1 to 21.
pub fn contrast(a: Colour, b: Colour) -> f64 {
    let (a, b) = (a.luminance() + 0.05, b.luminance() + 0.05);
    a.max(b) / a.min(b)
}

/// The colour names kept in a style (with their values, so contrast can be
/// measured): CSS 2's seventeen and the ones editors commonly type. Any other name
/// is dropped, and the text takes its inherited colour.
const NAMED: &[(&str, &str)] = &[
    ("black", "000000"),
    ("silver", "c0c0c0"),
    ("gray", "808080"),
    ("grey", "808080"),
    ("white", "ffffff"),
    ("maroon", "800000"),
    ("red", "ff0000"),
    ("purple", "800080"),
    ("fuchsia", "ff00ff"),
    ("green", "008000"),
    ("lime", "00ff00"),
    ("olive", "808000"),
    ("yellow", "ffff00"),
    ("navy", "000080"),
    ("blue", "0000ff"),
    ("teal", "008080"),
    ("aqua", "00ffff"),
    ("orange", "ffa500"),
    ("pink", "ffc0cb"),
    ("gold", "ffd700"),
    ("brown", "a52a2a"),
    ("crimson", "dc143c"),
    ("orangered", "ff4500"),
    ("tomato", "ff6347"),
    ("darkred", "8b0000"),
    ("darkblue", "00008b"),
    ("darkgreen", "006400"),
    ("darkgray", "a9a9a9"),
    ("darkgrey", "a9a9a9"),
    ("dimgray", "696969"),
    ("dimgrey", "696969"),
    ("lightgray", "d3d3d3"),
    ("lightgrey", "d3d3d3"),
    ("gainsboro", "dcdcdc"),
    ("whitesmoke", "f5f5f5"),
    ("skyblue", "87ceeb"),
    ("royalblue", "4169e1"),
    ("steelblue", "4682b4"),
];

/// Text drawn too close to the colour behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Faint {
    /// The start of the text, as in the body.
    pub text: String,
    pub colour: Colour,
    pub background: Colour,
    pub ratio: f64,
}

/// Elements without an end tag in serialised HTML.
pub(super) const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

struct Frame<'a> {
    tag: &'a str,
    /// The text colour set here or inherited (before it is drawn over anything).
    colour: Colour,
    /// What is behind this element's text, opaque.
    background: Colour,
}

/// The first text of `html` (our sanitiser's output: every element closed in
/// order, attributes in double quotes, comments and scripts gone) whose colour has
/// less than [`MIN_CONTRAST`] against what is behind it, if any. Only letters and
/// digits count: the screener reads nothing else.
pub fn faint_text(html: &str) -> Option<Faint> {
    let mut stack = vec![Frame {
        tag: "",
        colour: TEXT,
        background: PAGE,
    }];
    let mut rest = html;
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            return check(rest, stack.last()?);
        };
        if let Some(faint) = check(&rest[..open], stack.last()?) {
            return Some(faint);
        }
        rest = &rest[open + 1..];
        if let Some(closing) = rest.strip_prefix('/') {
            let end = closing.find('>')?;
            let tag = closing[..end].trim();
            if let Some(at) = stack.iter().rposition(|f| f.tag.eq_ignore_ascii_case(tag)) {
                stack.truncate(at.max(1));
            }
            rest = &closing[end + 1..];
            continue;
        }
        let (tag, style_at, after) = read_tag(rest)?;
        let style = style_at.map_or("", |at| &rest[at]);
        rest = after;
        if VOID.iter().any(|v| v.eq_ignore_ascii_case(tag)) {
            continue;
        }
        let parent = stack.last()?;
        let (mut colour, mut background) = (parent.colour, parent.background);
        if tag.eq_ignore_ascii_case("mark") {
            // Browsers' default for <mark> (`color: black; background: yellow`),
            // which an inline colour below overrides.
            colour = Colour::rgb(0.0, 0.0, 0.0);
            background = Colour::rgb(255.0, 255.0, 0.0);
        }
        for declaration in style.split(';') {
            let Some((property, value)) = declaration.split_once(':') else {
                continue;
            };
            let Some(value) = Colour::parse(value.trim()) else {
                continue;
            };
            match property.trim() {
                "color" => colour = value,
                "background-color" => background = value.over(background),
                _ => {}
            }
        }
        stack.push(Frame {
            tag,
            colour,
            background,
        });
    }
    None
}

/// Reads a start tag after its `<`: its name, where its `style` attribute's value
/// is in `s` (`None` if it has none) and what follows its `>`.
pub(super) fn read_tag(s: &str) -> Option<(&str, Option<Range<usize>>, &str)> {
    let name_end = s
        .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
        .unwrap_or(s.len());
    let tag = &s[..name_end];
    let mut rest = &s[name_end..];
    let mut style = None;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if let Some(after) = rest.strip_prefix('>') {
            return Some((tag, style, after));
        }
        let name_end = rest.find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>')?;
        let name = &rest[..name_end];
        rest = &rest[name_end..];
        if let Some(value) = rest.strip_prefix("=\"") {
            let end = value.find('"')?;
            if name.eq_ignore_ascii_case("style") {
                let at = s.len() - value.len();
                style = Some(at..at + end);
            }
            rest = &value[end + 1..];
        }
        if name.is_empty() && !rest.starts_with('>') {
            // Not the serialiser's output: stop rather than loop.
            return None;
        }
    }
}

fn check(text: &str, frame: &Frame<'_>) -> Option<Faint> {
    // Character references are markup here (`&amp;` holds no letters a reader sees).
    let mut seen = String::new();
    let mut in_reference = false;
    for c in text.chars() {
        match c {
            '&' => in_reference = true,
            ';' if in_reference => in_reference = false,
            _ if in_reference => {}
            c if c.is_alphanumeric() => seen.push(c),
            _ => {}
        }
    }
    if seen.is_empty() {
        return None;
    }
    let colour = frame.colour.over(frame.background);
    let ratio = contrast(colour, frame.background);
    (ratio < MIN_CONTRAST).then(|| Faint {
        text: text.trim().chars().take(20).collect(),
        colour,
        background: frame.background,
        ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_is_wcags() {
        let white = Colour::parse("#fff").unwrap();
        let black = Colour::parse("black").unwrap();
        assert!((contrast(white, black) - 21.0).abs() < 1e-9);
        assert!((contrast(white, white) - 1.0).abs() < 1e-9);
        // WCAG's own example figures: #777 on white is about 4.48.
        let grey = Colour::parse("rgb(119, 119, 119)").unwrap();
        assert!((contrast(grey, white) - 4.48).abs() < 0.01);
        assert_eq!(Colour::parse("rgba(0, 0, 0, 50%)").unwrap().alpha(), 0.5);
        for refused in [
            "transparent",
            "currentcolor",
            "inherit",
            "#ffffff00",
            "#ggg",
        ] {
            assert_eq!(Colour::parse(refused), None, "{refused}");
        }
    }

    #[test]
    fn colours_are_inherited_and_backgrounds_drawn_over_each_other() {
        assert_eq!(
            faint_text(r#"<p>停水<span style="color:#fff">x</span></p>"#).map(|f| f.text),
            Some("x".into())
        );
        assert_eq!(
            faint_text(r#"<p style="color:#fff;background-color:#c00">停水<b>x</b></p>"#),
            None
        );
        // Half-transparent white over red is pink: white text on it is faint.
        let faint = faint_text(
            r#"<section style="background-color:#c00"><p style="background-color:rgba(255, 255, 255, 0.9)"><span style="color:#fff">停水</span></p></section>"#,
        )
        .expect("faint");
        assert!(faint.ratio < MIN_CONTRAST, "{faint:?}");
        // <mark> is black on yellow unless its own colour is set.
        assert_eq!(
            faint_text(r#"<p style="color:#fff;background-color:#c00">停水<mark>今日</mark></p>"#),
            None
        );
        assert_eq!(
            faint_text(r#"<p><mark style="color:#ffff00">今日</mark></p>"#).map(|f| f.text),
            Some("今日".into())
        );
        // A closed element's colours end with it; references and spaces are not text.
        assert_eq!(
            faint_text(r#"<p><span style="color:#fff">&nbsp; &amp;</span>停水</p><br>停水"#),
            None
        );
    }
}
