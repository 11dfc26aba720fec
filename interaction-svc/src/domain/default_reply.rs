//! The instant acknowledgement (domain.md §2: "instant auto-acknowledgement") a
//! citizen gets when no rule answers their message: it was received, who has it,
//! and by when they will hear back.

use chrono::{DateTime, FixedOffset, Utc};

use super::calendar::window_closes_at;

/// How the hint to write again begins. It is added when the ticket may be answered
/// after the citizen's 48-hour window closes: an answer sent later is held until they
/// write again (`delivery`), and they cannot know that unless told (domain.md §2: the
/// first reply lands inside the window in any case, so the acknowledgement is the
/// one chance to say it).
pub const WRITE_AGAIN: &str = "因微信平台仅能在您留言后48小时内向您发送消息，";

/// What follows an acknowledgement for a message received at `arrived` on a ticket to
/// be resolved by `resolve_due_at`: the hint to send any message after that date
/// (shown in the office's local time) when the date falls after the window the
/// message opens, else nothing. The resolve deadline, not the acknowledgement date
/// the acknowledgement promises: a ticket acknowledged inside the window may still be
/// answered after it, within its resolve limit, and that answer is held as well.
pub fn write_again_hint(
    resolve_due_at: DateTime<Utc>,
    arrived: DateTime<Utc>,
    offset: FixedOffset,
) -> String {
    if resolve_due_at > window_closes_at(arrived) {
        format!(
            "{WRITE_AGAIN}如届时未收到答复，请于{}后向本公众号发送任意消息，以接收答复。",
            local_deadline(resolve_due_at, offset)
        )
    } else {
        String::new()
    }
}

/// The acknowledgement text for a message routed to `department` whose
/// acknowledgement deadline is `deadline`, shown in the office's local time.
pub fn acknowledgement(department: &str, deadline: DateTime<Utc>, offset: FixedOffset) -> String {
    format!(
        "已收到您的留言，已转{department}办理，将于{}前答复您。",
        local_deadline(deadline, offset)
    )
}

/// The acknowledgement for a message that joins the citizen's ticket still being
/// handled: who has it and the deadline it is held to next, or no date once that
/// deadline has passed (a date already gone would read as a broken promise).
pub fn joined_acknowledgement(
    department: &str,
    deadline: Option<DateTime<Utc>>,
    offset: FixedOffset,
) -> String {
    match deadline {
        Some(at) => format!(
            "已收到您的补充留言，已并入您正在办理的诉求，由{department}办理，将于{}前答复您。",
            local_deadline(at, offset)
        ),
        None => format!(
            "已收到您的补充留言，已并入您正在办理的诉求，由{department}办理，将尽快答复您。"
        ),
    }
}

/// A deadline as a citizen reads it: `2026年11月24日17:30`, local time.
pub fn local_deadline(deadline: DateTime<Utc>, offset: FixedOffset) -> String {
    deadline
        .with_timezone(&offset)
        .format("%Y年%-m月%-d日%H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acknowledgement_names_the_department_and_the_local_deadline() {
        let offset = FixedOffset::east_opt(8 * 3600).unwrap();
        // 09:30 UTC = 17:30 in China.
        let deadline = DateTime::parse_from_rfc3339("2026-11-24T09:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            acknowledgement("social-security", deadline, offset),
            "已收到您的留言，已转social-security办理，将于2026年11月24日17:30前答复您。"
        );
    }
}
