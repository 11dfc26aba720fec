//! Figures entered by hand (`RecordArticleFigures`): which article an entry may name
//! and which of its figures it may set, decided from what the service already knows
//! of the article. No I/O.
//!
//! The monthly ranking ranks accounts against each other, so a hand entry must not
//! be able to lift one: reads and shares are WeChat's (the datacube's day-7 figures,
//! domain.md §1.2), and so are an article's day and headline flag (they decide which
//! month it counts in and whether it feeds WCI's headline term). What the datacube
//! lacks, 在看 and likes, is what a hand entry is for.

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, Utc};

use super::reach::{month_final_on, month_provisional};
use work_calendar::WorkCalendar;

/// What an editor asks to enter (0 and an empty title keep what is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureEntry {
    pub title: String,
    /// `None`: the stored day.
    pub published_on: Option<NaiveDate>,
    /// `None`: the stored flag.
    pub headline: Option<bool>,
    pub reads: i64,
    pub zaikan: i64,
    pub likes: i64,
    pub shares: i64,
}

/// What the service knows of the article an entry names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KnownArticle {
    /// Its row in `article_figures`: announced on CONTENT, pulled from the datacube
    /// or entered before.
    pub stored: Option<StoredArticle>,
    /// The first day the datacube's daily article summary (`getarticlesummary`,
    /// pulled the morning after) reported this id: the day the article was sent.
    pub summary_day: Option<NaiveDate>,
    /// The last day the datacube's article pulls reached for the account, if it ever
    /// pulled them.
    pub datacube_reached: Option<NaiveDate>,
}

/// An article's stored row, as far as the rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredArticle {
    pub published_on: NaiveDate,
    pub headline: bool,
    /// Its reads and shares are the datacube's day-7 figures.
    pub pulled: bool,
    /// Its stored figures (0: none yet, unless `pulled`).
    pub reads: i64,
    pub zaikan: i64,
    pub likes: i64,
    pub shares: i64,
    /// content-svc sent it by freepublish: the datacube, which reports mass sends
    /// only, will never have it, so its figures are entered under content-svc's id.
    pub freepublished: bool,
}

/// What an accepted entry writes besides the figures it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The day and flag of a row the entry creates (a stored row keeps its own).
    pub published_on: NaiveDate,
    pub headline: bool,
}

/// Why an entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryRefused {
    #[error("nothing to enter: give zaikan, likes, reads, shares or a title")]
    Nothing,
    #[error(
        "article {0:?} is not known for this account: neither announced on CONTENT nor \
         reported by WeChat's datacube"
    )]
    UnknownArticle(String),
    #[error(
        "article {0:?} is not a datacube id; WeChat's datacube reports this account's \
         articles, so enter their figures under its id ({{msg_data_id}}_{{index}})"
    )]
    NotTheDatacubeId(String),
    #[error(
        "reads and shares of article {0:?} come from WeChat's datacube: send them as 0 and \
         enter only zaikan, likes or the title"
    )]
    DatacubeFigures(String),
    #[error("published_on: article {id:?} was published on {stored}, not {given}")]
    PublishedOn {
        id: String,
        stored: NaiveDate,
        given: NaiveDate,
    },
    #[error("headline: article {id:?} is {}the first article of its message", negation(.stored))]
    Headline { id: String, stored: bool },
    /// 在看, likes or shares above the article's reads: each needs a reader, and a
    /// reader read it at least once.
    #[error(
        "{}: article {id:?} was read {reads} times{}, and every 在看, like or share needs a \
         reader",
        above(*.zaikan, *.likes, *.shares, *.reads),
        if *.reads_entered { " (the reads of this entry)" } else { "" }
    )]
    AboveReads {
        id: String,
        zaikan: i64,
        likes: i64,
        shares: i64,
        reads: i64,
        /// The reads bounding them are the entry's own (else the stored ones).
        reads_entered: bool,
    },
    /// Shares entered by hand while the article's reads are not known: nothing would
    /// ever bound them (no pull comes for figures entered by hand).
    #[error(
        "shares: article {0:?} has no reads yet, and every share needs a reader: enter its \
         reads with its shares"
    )]
    SharesWithoutReads(String),
    /// The article's month turned final (its ranking no longer provisional by the
    /// calendar): a figure entered now would change a list already reported final.
    #[error(
        "article {id:?} was published in {month}, whose ranking turned final at {} on \
         {final_on} (office time): figures entered now would change a final list",
        final_at.format("%H:%M")
    )]
    MonthFinal {
        id: String,
        /// `YYYY-MM`.
        month: String,
        final_on: NaiveDate,
        final_at: chrono::NaiveTime,
    },
}

/// Names the figures above `reads`: "zaikan 500 and likes 900 are above the reads".
fn above(zaikan: i64, likes: i64, shares: i64, reads: i64) -> String {
    let mut named = Vec::new();
    if zaikan > reads {
        named.push(format!("zaikan {zaikan}"));
    }
    if likes > reads {
        named.push(format!("likes {likes}"));
    }
    if shares > reads {
        named.push(format!("shares {shares}"));
    }
    let verb = if named.len() > 1 { "are" } else { "is" };
    format!("{} {verb} above its reads", named.join(" and "))
}

/// "not " unless `holds`.
fn negation(holds: &bool) -> &'static str {
    if *holds { "" } else { "not " }
}

/// How many days before an article's day the datacube's article pulls must have
/// reached for its figures to be the datacube's: the day-7 pull lags a week, so an
/// account pulled today has reached about a week back. An account whose pulls stopped
/// long before (its datacube turned off) takes its new articles' figures by hand.
const DATACUBE_LAG_DAYS: u64 = 7;

/// Whether `id` is a datacube id `{msg_data_id}_{index}` whose index is 1: the first
/// article of its message (头条).
pub fn datacube_headline(id: &str) -> bool {
    id.rsplit_once('_').is_some_and(|(_, index)| index == "1")
}

/// Where an article went out on WeChat, as far as content-svc's event says: the id of
/// its message (`msg_data_id`) and its place in it (1-based, WeChat's `idx`; 1 for a
/// lone article). Together they are the datacube's id of the same article,
/// `{msg_data_id}_{index}`, which ties that row to this one article, not to every
/// article of its message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagePlace {
    pub msg_data_id: Option<String>,
    /// `None`: not said (an event from before content-svc named it carries 0).
    pub index: Option<u32>,
}

impl MessagePlace {
    /// From an event's fields, where an empty id and an index of 0 mean "not said".
    pub fn from_event(msg_data_id: String, index: u32) -> Self {
        Self {
            msg_data_id: Some(msg_data_id).filter(|id| !id.is_empty()),
            index: Some(index).filter(|index| *index > 0),
        }
    }
}

/// Decides whether the entry `entry` for the article `id`, of which the service knows
/// `known`, may be stored:
///
/// - the article must be known: announced on CONTENT, or reported by the datacube;
/// - on an account whose articles the datacube pulls, an article sent by mass send
///   must be named by the datacube's id (CONTENT's id of the same article would count it twice), and its
///   reads and shares are the datacube's alone: they arrive with the day-7 pull and
///   are never set by hand, before it (they would lift the running week and the
///   provisional month) or after it; one content-svc sent by freepublish is not in
///   the datacube (it reports 群发 only) and is entered under content-svc's id, reads
///   and shares included, as on an account not pulled;
/// - elsewhere reads and shares are entered by hand, except on a row that already
///   holds the datacube's (an account whose pulls stopped keeps what they brought);
/// - the day and headline flag are the service's (CONTENT's or the datacube's): an
///   entry may repeat them, never change them;
/// - 在看, likes and shares entered by hand are at most the article's reads, once
///   those are known (the datacube's day-7 reads, or reads entered by hand where it
///   does not pull them): a like or a share needs a reader and a reader reads at
///   least once. Shares, entered only where reads are entered too, need the reads
///   known (this entry's or stored): no pull would ever bound them, and one typo
///   (5,000,000 for 500) would lift the account through WCI's share terms. Readers would bound them
///   tighter, but only the daily summary has them, day by day, and not past its
///   days; reads never refuse a true figure. Before the reads are known (a datacube
///   article before its day-7 pull) nothing bounds them here: the pull caps them
///   (`store::reach::store_chunk`).
pub fn decide(
    id: &str,
    known: KnownArticle,
    entry: &FigureEntry,
) -> Result<Accepted, EntryRefused> {
    let sets_reach = entry.reads != 0 || entry.shares != 0;
    if !sets_reach && entry.zaikan == 0 && entry.likes == 0 && entry.title.is_empty() {
        return Err(EntryRefused::Nothing);
    }
    let known_day = known
        .stored
        .map(|s| s.published_on)
        .or(known.summary_day)
        .ok_or_else(|| EntryRefused::UnknownArticle(id.to_owned()))?;
    let freepublished = known.stored.is_some_and(|s| s.freepublished);
    let datacube_account = !freepublished
        && known
            .datacube_reached
            .is_some_and(|reached| reached + Days::new(DATACUBE_LAG_DAYS) >= known_day);
    let pulled = known.stored.is_some_and(|s| s.pulled);
    if datacube_account && !pulled && known.summary_day.is_none() {
        return Err(EntryRefused::NotTheDatacubeId(id.to_owned()));
    }
    let (published_on, headline) = match known.stored {
        Some(stored) => (stored.published_on, stored.headline),
        None => (known_day, datacube_headline(id)),
    };
    if let Some(given) = entry.published_on
        && given != published_on
    {
        return Err(EntryRefused::PublishedOn {
            id: id.to_owned(),
            stored: published_on,
            given,
        });
    }
    if let Some(given) = entry.headline
        && given != headline
    {
        return Err(EntryRefused::Headline {
            id: id.to_owned(),
            stored: headline,
        });
    }
    if sets_reach && (datacube_account || pulled) {
        return Err(EntryRefused::DatacubeFigures(id.to_owned()));
    }
    within_reads(id, known.stored, entry)?;
    Ok(Accepted {
        published_on,
        headline,
    })
}

/// Refuses an entry for an article published on `published_on` once that month's
/// ranking is final by the calendar at `now` (the end of the office day on its last
/// day + 7, the ranking's `final_on`: the day-7 pull of its last articles is due at
/// 08:00, and a desk entering them by hand has that office day): after
/// that the list is reported final and read as the month's result. An account whose
/// pull is failing keeps the month provisional in the ranking, but its entries are
/// refused all the same: the calendar is what a desk can be told in advance (the
/// office's `calendar`: a holiday has no office hours, and the day moves past it).
pub fn month_open(
    id: &str,
    published_on: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
    calendar: &WorkCalendar,
) -> Result<(), EntryRefused> {
    let month = published_on.with_day(1).unwrap_or(published_on);
    if month_provisional(month, now, office, calendar) {
        return Ok(());
    }
    Err(EntryRefused::MonthFinal {
        id: id.to_owned(),
        month: month.format("%Y-%m").to_string(),
        final_on: month_final_on(month, calendar),
        final_at: crate::domain::reach::final_at_time(),
    })
}

/// Refuses an entry that leaves 在看, likes or shares above the article's known
/// reads, checking only what the entry sets (a title alone passes a row stored before
/// the bound existed), and shares entered while no reads are known.
fn within_reads(
    id: &str,
    stored: Option<StoredArticle>,
    entry: &FigureEntry,
) -> Result<(), EntryRefused> {
    let (stored_reads, zaikan, likes, shares) = match stored {
        // 0 reads on a row not pulled are reads not known yet.
        Some(s) if s.pulled || s.reads != 0 => (Some(s.reads), s.zaikan, s.likes, s.shares),
        Some(s) => (None, s.zaikan, s.likes, s.shares),
        None => (None, 0, 0, 0),
    };
    let reads_entered = entry.reads != 0;
    let Some(reads) = reads_entered.then_some(entry.reads).or(stored_reads) else {
        if entry.shares != 0 {
            return Err(EntryRefused::SharesWithoutReads(id.to_owned()));
        }
        return Ok(());
    };
    let zaikan = if entry.zaikan != 0 {
        entry.zaikan
    } else {
        zaikan
    };
    let likes = if entry.likes != 0 { entry.likes } else { likes };
    let shares = if entry.shares != 0 {
        entry.shares
    } else {
        shares
    };
    let checked_zaikan = reads_entered || entry.zaikan != 0;
    let checked_likes = reads_entered || entry.likes != 0;
    // The datacube's shares on a pulled row are WeChat's count, not held to a bound
    // here; reads entered by hand are never entered over a pulled row.
    let checked_shares = reads_entered || entry.shares != 0;
    if (checked_zaikan && zaikan > reads)
        || (checked_likes && likes > reads)
        || (checked_shares && shares > reads)
    {
        return Err(EntryRefused::AboveReads {
            id: id.to_owned(),
            zaikan: if checked_zaikan { zaikan } else { 0 },
            likes: if checked_likes { likes } else { 0 },
            shares: if checked_shares { shares } else { 0 },
            reads,
            reads_entered,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn likes(zaikan: i64, likes: i64) -> FigureEntry {
        FigureEntry {
            title: String::new(),
            published_on: None,
            headline: None,
            reads: 0,
            zaikan,
            likes,
            shares: 0,
        }
    }

    fn reach(reads: i64) -> FigureEntry {
        FigureEntry {
            reads,
            ..likes(0, 0)
        }
    }

    fn stored(published_on: &str, headline: bool, pulled: bool) -> Option<StoredArticle> {
        Some(StoredArticle {
            published_on: day(published_on),
            headline,
            pulled,
            reads: if pulled { 20_000 } else { 0 },
            zaikan: 0,
            likes: 0,
            shares: 0,
            freepublished: false,
        })
    }

    #[test]
    fn an_event_says_a_place_only_with_an_id_and_an_index_above_zero() {
        let place = MessagePlace::from_event("2026112501".into(), 2);
        assert_eq!(
            (place.msg_data_id.as_deref(), place.index),
            (Some("2026112501"), Some(2))
        );
        let before_the_field = MessagePlace::from_event("2026112501".into(), 0);
        assert_eq!(before_the_field.index, None);
        let no_message = MessagePlace::from_event(String::new(), 1);
        assert_eq!(no_message.msg_data_id, None);
    }

    #[test]
    fn an_article_nobody_announced_or_reported_is_unknown() {
        let refused = decide("made-up", KnownArticle::default(), &likes(10, 10)).unwrap_err();
        assert_eq!(refused, EntryRefused::UnknownArticle("made-up".into()));
    }

    #[test]
    fn a_datacube_article_takes_zaikan_and_likes_but_never_reads_or_shares() {
        let known = KnownArticle {
            stored: stored("2026-11-10", true, true),
            summary_day: Some(day("2026-11-10")),
            datacube_reached: Some(day("2026-11-30")),
        };
        let accepted = decide("2026111001_1", known, &likes(250, 400)).unwrap();
        assert_eq!(accepted.published_on, day("2026-11-10"));
        assert_eq!(
            decide("2026111001_1", known, &reach(100_001)).unwrap_err(),
            EntryRefused::DatacubeFigures("2026111001_1".into())
        );
        let shares = FigureEntry {
            shares: 5,
            ..likes(1, 0)
        };
        assert!(matches!(
            decide("2026111001_1", known, &shares),
            Err(EntryRefused::DatacubeFigures(_))
        ));
    }

    #[test]
    fn before_the_day_seven_pull_the_summary_names_the_article_its_day_and_headline() {
        let known = KnownArticle {
            stored: None,
            summary_day: Some(day("2026-11-10")),
            datacube_reached: Some(day("2026-11-15")),
        };
        let accepted = decide("2026111001_1", known, &likes(250, 400)).unwrap();
        assert_eq!(
            accepted,
            Accepted {
                published_on: day("2026-11-10"),
                headline: true
            }
        );
        assert!(
            !decide("2026111001_2", known, &likes(1, 1))
                .unwrap()
                .headline
        );
        // Reads before the pull would lift the running week until day 8.
        assert!(matches!(
            decide("2026111001_1", known, &reach(9_000)),
            Err(EntryRefused::DatacubeFigures(_))
        ));
    }

    #[test]
    fn on_a_datacube_account_contents_id_of_an_article_is_refused() {
        let known = KnownArticle {
            stored: stored("2026-11-10", true, false),
            summary_day: None,
            datacube_reached: Some(day("2026-11-09")),
        };
        assert_eq!(
            decide("art-42", known, &likes(250, 400)).unwrap_err(),
            EntryRefused::NotTheDatacubeId("art-42".into())
        );
    }

    /// The datacube reports mass sends only: a freepublished article on a datacube
    /// account never gets its figures from it, so they are entered under
    /// content-svc's id, reads and shares included.
    #[test]
    fn on_a_datacube_account_a_freepublished_article_takes_every_figure_by_hand() {
        let known = KnownArticle {
            stored: stored("2026-11-10", true, false).map(|s| StoredArticle {
                freepublished: true,
                ..s
            }),
            summary_day: None,
            datacube_reached: Some(day("2026-11-09")),
        };
        let entry = FigureEntry {
            shares: 30,
            ..reach(2_000)
        };
        assert!(decide("art-42", known, &entry).is_ok());
    }

    #[test]
    fn without_the_datacube_an_announced_article_takes_every_figure() {
        let known = KnownArticle {
            stored: stored("2026-11-10", false, false),
            ..KnownArticle::default()
        };
        assert!(decide("art-42", known, &reach(3_000)).is_ok());
        // An account whose datacube stopped a month before the article.
        let stopped = KnownArticle {
            datacube_reached: Some(day("2026-10-01")),
            ..known
        };
        assert!(decide("art-42", stopped, &reach(3_000)).is_ok());
        // Its pulled articles keep the datacube's figures.
        let pulled = KnownArticle {
            stored: stored("2026-09-28", false, true),
            ..stopped
        };
        assert!(matches!(
            decide("2026092801_2", pulled, &reach(3_000)),
            Err(EntryRefused::DatacubeFigures(_))
        ));
    }

    #[test]
    fn the_day_and_headline_flag_may_be_repeated_never_changed() {
        let known = KnownArticle {
            stored: stored("2026-11-10", false, false),
            ..KnownArticle::default()
        };
        let same = FigureEntry {
            published_on: Some(day("2026-11-10")),
            headline: Some(false),
            ..likes(3, 0)
        };
        assert!(decide("art-42", known, &same).is_ok());
        let moved = FigureEntry {
            published_on: Some(day("2026-12-01")),
            ..likes(3, 0)
        };
        assert_eq!(
            decide("art-42", known, &moved).unwrap_err().to_string(),
            "published_on: article \"art-42\" was published on 2026-11-10, not 2026-12-01"
        );
        let promoted = FigureEntry {
            headline: Some(true),
            ..likes(3, 0)
        };
        assert_eq!(
            decide("art-42", known, &promoted).unwrap_err().to_string(),
            "headline: article \"art-42\" is not the first article of its message"
        );
    }

    #[test]
    fn an_entry_without_a_figure_or_title_is_refused() {
        let known = KnownArticle {
            stored: stored("2026-11-10", false, false),
            ..KnownArticle::default()
        };
        assert_eq!(
            decide("art-42", known, &likes(0, 0)).unwrap_err(),
            EntryRefused::Nothing
        );
    }

    #[test]
    fn the_headline_is_index_one_of_a_datacube_id() {
        assert!(datacube_headline("2026111001_1"));
        assert!(!datacube_headline("2026111001_11"));
        assert!(!datacube_headline("2026111001_2"));
        assert!(!datacube_headline("art-1"));
    }
    #[test]
    fn zaikan_or_likes_above_the_pulled_reads_are_refused_naming_them() {
        let known = KnownArticle {
            stored: Some(StoredArticle {
                reads: 300,
                ..stored("2026-11-10", true, true).unwrap()
            }),
            summary_day: Some(day("2026-11-10")),
            datacube_reached: Some(day("2026-11-30")),
        };
        let refused = decide("2026111001_1", known, &likes(0, 1_000_000)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "likes 1000000 is above its reads: article \"2026111001_1\" was read 300 times, \
             and every 在看, like or share needs a reader"
        );
        assert!(matches!(
            decide("2026111001_1", known, &likes(301, 301)),
            Err(EntryRefused::AboveReads {
                zaikan: 301,
                likes: 301,
                ..
            })
        ));
        assert!(decide("2026111001_1", known, &likes(300, 300)).is_ok());
        // Pulled with no reader at all: nothing to like.
        let unread = KnownArticle {
            stored: Some(StoredArticle {
                reads: 0,
                ..known.stored.unwrap()
            }),
            ..known
        };
        assert!(decide("2026111001_1", unread, &likes(1, 0)).is_err());
    }

    /// A typo of 5,000,000 shares for 500 lifted a county's V14.2 from 455.4 to 665.0.
    #[test]
    fn shares_entered_by_hand_are_at_most_the_reads_and_need_them() {
        let known = KnownArticle {
            stored: stored("2026-11-10", true, false),
            ..KnownArticle::default()
        };
        let typo = FigureEntry {
            shares: 5_000_000,
            ..reach(3_000)
        };
        assert_eq!(
            decide("art-42", known, &typo).unwrap_err().to_string(),
            "shares 5000000 is above its reads: article \"art-42\" was read 3000 times (the \
             reads of this entry), and every 在看, like or share needs a reader"
        );
        let fine = FigureEntry {
            shares: 500,
            ..reach(3_000)
        };
        assert!(decide("art-42", known, &fine).is_ok());
        let alone = FigureEntry {
            shares: 5_000_000,
            ..likes(0, 0)
        };
        assert_eq!(
            decide("art-42", known, &alone).unwrap_err(),
            EntryRefused::SharesWithoutReads("art-42".into())
        );
        let read = KnownArticle {
            stored: Some(StoredArticle {
                reads: 3_000,
                shares: 500,
                ..known.stored.unwrap()
            }),
            ..known
        };
        assert!(matches!(
            decide("art-42", read, &alone),
            Err(EntryRefused::AboveReads {
                shares: 5_000_000,
                reads: 3_000,
                reads_entered: false,
                ..
            })
        ));
        // Reads corrected below the stored shares: correct both in one entry.
        assert!(matches!(
            decide("art-42", read, &reach(400)),
            Err(EntryRefused::AboveReads {
                shares: 500,
                reads_entered: true,
                ..
            })
        ));
    }

    #[test]
    fn before_the_reads_are_known_zaikan_and_likes_are_not_bounded_here() {
        let known = KnownArticle {
            stored: None,
            summary_day: Some(day("2026-11-10")),
            datacube_reached: Some(day("2026-11-15")),
        };
        assert!(decide("2026111001_1", known, &likes(5_000, 9_000)).is_ok());
    }

    #[test]
    fn reads_entered_by_hand_bound_the_zaikan_and_likes_stored_or_entered_with_them() {
        let known = KnownArticle {
            stored: Some(StoredArticle {
                zaikan: 15,
                likes: 500,
                ..stored("2026-11-10", false, false).unwrap()
            }),
            ..KnownArticle::default()
        };
        // The stored likes were entered before any reads.
        assert_eq!(
            decide("art-42", known, &reach(400)).unwrap_err(),
            EntryRefused::AboveReads {
                id: "art-42".into(),
                zaikan: 15,
                likes: 500,
                shares: 0,
                reads: 400,
                reads_entered: true
            }
        );
        let corrected = FigureEntry {
            likes: 40,
            ..reach(400)
        };
        assert!(decide("art-42", known, &corrected).is_ok());
        let read = KnownArticle {
            stored: Some(StoredArticle {
                reads: 400,
                likes: 40,
                ..known.stored.unwrap()
            }),
            ..known
        };
        assert!(matches!(
            decide("art-42", read, &likes(401, 0)),
            Err(EntryRefused::AboveReads {
                reads_entered: false,
                ..
            })
        ));
        // A title alone is not held to a bound it does not touch.
        let legacy = KnownArticle {
            stored: Some(StoredArticle {
                reads: 400,
                likes: 900,
                ..known.stored.unwrap()
            }),
            ..known
        };
        let title = FigureEntry {
            title: "冬季供暖通知".into(),
            ..likes(0, 0)
        };
        assert!(decide("art-42", legacy, &title).is_ok());
    }
}
