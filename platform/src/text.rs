//! Traditional → simplified Chinese, one character for one (OpenCC's table): how
//! content-svc's search and screening and interaction-svc's directory matcher read
//! 醫保報銷 as 医保报销, from one table. Phrase conversions are left out: they would
//! break the position mapping screening keeps, and matching is character by character.

use std::collections::HashMap;
use std::sync::LazyLock;

static T2S: LazyLock<HashMap<char, char>> = LazyLock::new(|| {
    let Ok(opencc) =
        ferrous_opencc::OpenCC::from_config(ferrous_opencc::config::BuiltinConfig::T2s)
    else {
        tracing::error!("opencc t2s table unavailable; traditional characters are not folded");
        return HashMap::new();
    };
    let ranges = [0x3400u32..=0x4DBF, 0x4E00..=0x9FFF, 0xF900..=0xFAFF];
    let chars: Vec<char> = ranges
        .into_iter()
        .flatten()
        .filter_map(char::from_u32)
        .collect();
    // One call over all characters, one per line, so no phrase spans two of them.
    let joined: String = chars.iter().flat_map(|c| [*c, '\n']).collect();
    let converted = opencc.convert(&joined);
    chars
        .iter()
        .zip(converted.split('\n'))
        .filter_map(|(from, to)| {
            let mut it = to.chars();
            match (it.next(), it.next()) {
                (Some(to), None) if to != *from => Some((*from, to)),
                _ => None,
            }
        })
        .collect()
});

/// `c` in simplified characters: 醫 is 医; any other character is itself.
pub fn simplified(c: char) -> char {
    T2S.get(&c).copied().unwrap_or(c)
}

/// Builds the table now (it takes a moment), so that a service does it at start-up
/// or on a rebuild rather than on a citizen's first message.
pub fn build_simplified_table() {
    LazyLock::force(&T2S);
}

#[cfg(test)]
mod tests {
    use super::simplified;

    #[test]
    fn traditional_characters_become_simplified_and_others_stay() {
        let folded: String = "醫保報銷，我要投訴 ABC 医保"
            .chars()
            .map(simplified)
            .collect();
        assert_eq!(folded, "医保报销，我要投诉 ABC 医保");
    }
}
