//! Keyword and directory hits: what one `events.v1.AutoReplied` (interaction-svc
//! answered a citizen without a person) adds to which daily counter.

use chrono::{DateTime, FixedOffset, Timelike, Utc};
use proto::events::v1 as ev;

use super::AccountId;
use super::rollup::{Metric, Tally, office_day};

/// What answered the citizen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoReplySource {
    /// A reply rule (keyword, pattern, subscribe greeting, menu key).
    Rule,
    /// One directory service, as a news card.
    DirectoryService,
    /// A directory category's services (a menu click on a category key).
    DirectoryCategory,
}

impl AutoReplySource {
    /// The key of `auto_replies` and the last token of the event's subject.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoReplySource::Rule => "rule",
            AutoReplySource::DirectoryService => "directory_service",
            AutoReplySource::DirectoryCategory => "directory_category",
        }
    }
}

/// Why an `AutoReplied` cannot be counted (it is dead-lettered with this reason).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AutoReplyError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("account: {0}")]
    Account(platform::ids::IdError),
}

/// One automatic answer, reduced to what the rollups count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoReplyFact {
    pub event_id: String,
    pub account: AccountId,
    pub occurred_at: DateTime<Utc>,
    pub source: AutoReplySource,
    pub rule_id: String,
    /// The keyword, pattern, click key or category key that matched.
    pub matched: String,
    pub service_id: String,
    pub category: String,
    /// Whether it answered a citizen's message, rather than an event (the subscribe
    /// greeting, a menu click's canned reply or category listing). An event written
    /// before interaction-svc said which is taken as a message, as it was counted then.
    pub answers_message: bool,
}

fn time(at: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let at = at?;
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or(0))
}

impl TryFrom<&ev::AutoReplied> for AutoReplyFact {
    type Error = AutoReplyError;

    fn try_from(event: &ev::AutoReplied) -> Result<Self, Self::Error> {
        let header = event
            .header
            .as_ref()
            .ok_or(AutoReplyError::Missing("header"))?;
        if header.event_id.is_empty() {
            return Err(AutoReplyError::Missing("header.event_id"));
        }
        let occurred_at = time(header.occurred_at.as_ref())
            .ok_or(AutoReplyError::Missing("header.occurred_at"))?;
        let source = match event.source() {
            ev::AutoReplySource::Rule => AutoReplySource::Rule,
            ev::AutoReplySource::DirectoryService => AutoReplySource::DirectoryService,
            ev::AutoReplySource::DirectoryCategory => AutoReplySource::DirectoryCategory,
            ev::AutoReplySource::Unspecified => return Err(AutoReplyError::Missing("source")),
        };
        // Without what answered, the hit could not be counted under any key.
        let required = match source {
            AutoReplySource::Rule => ("rule_id", &event.rule_id),
            AutoReplySource::DirectoryService => ("service_id", &event.service_id),
            AutoReplySource::DirectoryCategory => ("category", &event.category),
        };
        if required.1.trim().is_empty() {
            return Err(AutoReplyError::Missing(required.0));
        }
        Ok(Self {
            event_id: header.event_id.clone(),
            account: AccountId::parse(header.account.as_str()).map_err(AutoReplyError::Account)?,
            occurred_at,
            source,
            rule_id: event.rule_id.clone(),
            matched: event.matched.clone(),
            service_id: event.service_id.clone(),
            category: event.category.clone(),
            answers_message: event.answered() != ev::AnsweredInbound::Event,
        })
    }
}

impl AutoReplyFact {
    /// The counters this answer grows, on the office day (and hour) of the callback
    /// it answered:
    /// - `auto_replies` by source, and `auto_replies_by_hour` by office hour, only for
    ///   an answer to a citizen's message: the inspection's interaction checks read
    ///   them as "something answers citizens", which a greeting or a menu's canned
    ///   reply is not (six tickets unanswered past their deadline and two follows
    ///   greeted must still be a broken channel);
    /// - a rule: `rule_hits` by rule id and `keyword_hits` by what matched;
    /// - a directory service: `directory_service_hits` by service id, and its
    ///   category's `directory_category_hits`;
    /// - a directory category: `directory_category_hits` by category key.
    pub fn tallies(&self, office: FixedOffset) -> Vec<Tally> {
        let tally = |metric, key: &str| Tally {
            account: self.account.clone(),
            day: office_day(self.occurred_at, office),
            metric,
            key: key.to_owned(),
            value: 1,
        };
        let hour = self.occurred_at.with_timezone(&office).hour();
        let mut tallies = Vec::new();
        if self.answers_message {
            tallies.push(tally(Metric::AutoReplies, self.source.as_str()));
            tallies.push(tally(Metric::AutoRepliesByHour, &format!("{hour:02}")));
        }
        match self.source {
            AutoReplySource::Rule => {
                tallies.push(tally(Metric::RuleHits, &self.rule_id));
                if !self.matched.is_empty() {
                    tallies.push(tally(Metric::KeywordHits, &self.matched));
                }
            }
            AutoReplySource::DirectoryService => {
                tallies.push(tally(Metric::DirectoryServiceHits, &self.service_id));
                if !self.category.is_empty() {
                    tallies.push(tally(Metric::DirectoryCategoryHits, &self.category));
                }
            }
            AutoReplySource::DirectoryCategory => {
                tallies.push(tally(Metric::DirectoryCategoryHits, &self.category));
            }
        }
        tallies
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rollup::CHINA_STANDARD_TIME;

    fn office() -> FixedOffset {
        FixedOffset::east_opt(CHINA_STANDARD_TIME).unwrap()
    }

    fn replied(source: ev::AutoReplySource) -> ev::AutoReplied {
        ev::AutoReplied {
            header: Some(ev::EventHeader {
                event_id: "e1".to_owned(),
                account: "chenzhou".to_owned(),
                // 2026-11-30T16:30:00Z: 00:30 on 1 December in the office.
                occurred_at: Some(prost_types::Timestamp {
                    seconds: 1_796_056_200,
                    nanos: 0,
                }),
            }),
            openid: "o1".to_owned(),
            source: source as i32,
            rule_id: "r7".to_owned(),
            matched: "公积金".to_owned(),
            service_id: "svc-12".to_owned(),
            category: "housing".to_owned(),
            inbound_event_id: "chenzhou:o1:1".to_owned(),
            answered: ev::AnsweredInbound::Message as i32,
        }
    }

    fn keys(tallies: &[Tally]) -> Vec<(&'static str, String, String)> {
        tallies
            .iter()
            .map(|t| (t.metric.as_str(), t.key.clone(), t.day.to_string()))
            .collect()
    }

    #[test]
    fn a_rule_hit_counts_its_rule_and_keyword_on_the_office_day_and_hour() {
        let fact = AutoReplyFact::try_from(&replied(ev::AutoReplySource::Rule)).unwrap();
        let day = "2026-12-01".to_owned();
        assert_eq!(
            keys(&fact.tallies(office())),
            [
                ("auto_replies", "rule".to_owned(), day.clone()),
                ("auto_replies_by_hour", "00".to_owned(), day.clone()),
                ("rule_hits", "r7".to_owned(), day.clone()),
                ("keyword_hits", "公积金".to_owned(), day),
            ]
        );
    }

    #[test]
    fn a_directory_service_hit_also_counts_its_category() {
        let fact =
            AutoReplyFact::try_from(&replied(ev::AutoReplySource::DirectoryService)).unwrap();
        let metrics: Vec<_> = keys(&fact.tallies(office()))
            .into_iter()
            .map(|(m, k, _)| (m, k))
            .collect();
        assert_eq!(
            metrics[2..],
            [
                ("directory_service_hits", "svc-12".to_owned()),
                ("directory_category_hits", "housing".to_owned()),
            ]
        );
        let fact =
            AutoReplyFact::try_from(&replied(ev::AutoReplySource::DirectoryCategory)).unwrap();
        assert_eq!(
            keys(&fact.tallies(office()))[2..]
                .iter()
                .map(|(m, k, _)| (*m, k.as_str()))
                .collect::<Vec<_>>(),
            [("directory_category_hits", "housing")]
        );
    }

    #[test]
    fn a_greeting_or_menu_reply_counts_its_hits_but_answers_no_citizen() {
        let mut event = replied(ev::AutoReplySource::Rule);
        event.answered = ev::AnsweredInbound::Event as i32;
        event.matched.clear();
        let fact = AutoReplyFact::try_from(&event).unwrap();
        assert_eq!(
            keys(&fact.tallies(office())),
            [("rule_hits", "r7".to_owned(), "2026-12-01".to_owned())]
        );
        // Written before the field existed: an answer, as it was counted then.
        event.answered = ev::AnsweredInbound::Unspecified as i32;
        let metrics: Vec<_> = keys(&AutoReplyFact::try_from(&event).unwrap().tallies(office()))
            .into_iter()
            .map(|(m, _, _)| m)
            .collect();
        assert_eq!(
            metrics,
            ["auto_replies", "auto_replies_by_hour", "rule_hits"]
        );
    }

    #[test]
    fn an_answer_without_a_source_or_what_answered_is_refused() {
        let mut event = replied(ev::AutoReplySource::Unspecified);
        assert_eq!(
            AutoReplyFact::try_from(&event),
            Err(AutoReplyError::Missing("source"))
        );
        event.source = ev::AutoReplySource::DirectoryService as i32;
        event.service_id.clear();
        assert_eq!(
            AutoReplyFact::try_from(&event),
            Err(AutoReplyError::Missing("service_id"))
        );
    }
}
