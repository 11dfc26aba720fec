//! The satisfaction rating (满意度评价, domain.md §2): after a ticket is closed the
//! citizen is asked for 1–5, and their next lone digit is the answer.

/// The thank-you the reply path sends for a recorded rating.
pub const THANKS: &str = "感谢您的评价！您的意见将帮助我们改进服务。";

/// A rating from a message that is just one digit 1–5 (ASCII or full-width, as
/// Chinese input methods type it), surrounding blanks allowed. Anything else
/// (`"5分"`, `"15"`, `"0"`) is an ordinary message.
pub fn parse(text: &str) -> Option<u8> {
    let mut chars = text.trim().chars();
    let digit = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    let value = match digit {
        '1'..='5' => digit as u32 - '0' as u32,
        '１'..='５' => digit as u32 - '０' as u32,
        _ => return None,
    };
    u8::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_digit_from_one_to_five_is_a_rating() {
        assert_eq!(parse("5"), Some(5));
        assert_eq!(parse(" 1\n"), Some(1));
        assert_eq!(parse("３"), Some(3));
        assert_eq!(parse("\u{3000}４\u{3000}"), Some(4));
    }

    #[test]
    fn anything_else_is_an_ordinary_message() {
        for text in ["", "0", "6", "15", "5分", "五", "６", "a", "5 5"] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}
