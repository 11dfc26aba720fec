//! Which department owns a ticket (派单): keyword rules by priority, then the
//! account's default rule, then the service-wide fallback department.

use chrono::{DateTime, Utc};

use super::rules::RuleError;

/// The category of a ticket no rule categorises: answered in the consultation time limit.
pub const DEFAULT_CATEGORY: &str = "consultation";

/// A routing rule of one account. Empty `keywords` make it the account's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRule {
    pub id: uuid::Uuid,
    pub account: String,
    pub keywords: Vec<String>,
    /// Empty: [`DEFAULT_CATEGORY`].
    pub category: String,
    pub department: String,
    pub priority: i32,
    pub created_at: DateTime<Utc>,
}

impl RoutingRule {
    /// A rule as the API sends it (`created_at` is set by the store).
    pub fn from_proto(rule: proto::interaction::v1::RoutingRule) -> Result<Self, RuleError> {
        Ok(Self {
            id: super::rules::parse_id(&rule.id)?,
            account: rule.account.trim().to_owned(),
            keywords: rule.keywords,
            category: rule.category,
            department: rule.department,
            priority: rule.priority,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        })
    }

    /// The rule as the API returns it.
    pub fn to_proto(&self) -> proto::interaction::v1::RoutingRule {
        proto::interaction::v1::RoutingRule {
            id: self.id.to_string(),
            account: self.account.clone(),
            keywords: self.keywords.clone(),
            category: self.category.clone(),
            department: self.department.clone(),
            priority: self.priority,
        }
    }

    /// Checks what a caller asks to save.
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.account.trim().is_empty() {
            return Err(RuleError::NoAccount);
        }
        if self.department.trim().is_empty() {
            return Err(RuleError::NoDepartment);
        }
        super::rules::check_text("account", &self.account)?;
        super::rules::check_text("department", &self.department)?;
        super::rules::check_text("category", &self.category)?;
        if self.department.chars().count() > 64 || self.category.chars().count() > 64 {
            return Err(RuleError::TooLong {
                field: "department",
                max: 64,
            });
        }
        super::rules::check_patterns("keywords", &self.keywords)
    }
}

/// Where a ticket goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub department: String,
    pub category: String,
}

/// An account's routing rules in the order they are tried.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    keyword_rules: Vec<RoutingRule>,
    default_rule: Option<RoutingRule>,
}

impl RoutingTable {
    /// Orders the rules: higher priority first, then the older rule, then by id (so
    /// every replica orders them the same way).
    pub fn new(rules: impl IntoIterator<Item = RoutingRule>) -> Self {
        let (mut keyword_rules, mut defaults): (Vec<_>, Vec<_>) = rules
            .into_iter()
            .partition(|rule| rule.keywords.iter().any(|k| !k.trim().is_empty()));
        let order = |a: &RoutingRule, b: &RoutingRule| {
            b.priority
                .cmp(&a.priority)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        };
        keyword_rules.sort_by(order);
        defaults.sort_by(order);
        Self {
            keyword_rules,
            default_rule: defaults.into_iter().next(),
        }
    }

    /// The route of a message whose words are `text`; `fallback_department` when the
    /// account has no rule that applies.
    /// Text and keywords are compared as the reply rules compare them
    /// ([`reply_rules::fold`]): a message a keyword rule answers as `ETC` when typed
    /// `ＥＴＣ` must also reach the department routed on `ETC`.
    pub fn route(&self, text: &str, fallback_department: &str) -> Route {
        let text = reply_rules::fold(text);
        let matched = self
            .keyword_rules
            .iter()
            .find(|rule| {
                rule.keywords
                    .iter()
                    .map(|k| reply_rules::fold(k.trim()))
                    .any(|k| !k.is_empty() && text.contains(&k))
            })
            .or(self.default_rule.as_ref());
        match matched {
            Some(rule) => Route {
                department: rule.department.clone(),
                category: if rule.category.trim().is_empty() {
                    DEFAULT_CATEGORY.to_owned()
                } else {
                    rule.category.clone()
                },
            },
            None => Route {
                department: fallback_department.to_owned(),
                category: DEFAULT_CATEGORY.to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        keywords: &[&str],
        department: &str,
        category: &str,
        priority: i32,
        age: i64,
    ) -> RoutingRule {
        RoutingRule {
            id: uuid::Uuid::new_v4(),
            account: "city".into(),
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
            category: category.into(),
            department: department.into(),
            priority,
            created_at: DateTime::from_timestamp(1_700_000_000 - age, 0).unwrap(),
        }
    }

    #[test]
    fn the_highest_priority_keyword_rule_wins_and_ties_go_to_the_older() {
        let table = RoutingTable::new([
            rule(&["社保"], "social-security", "consultation", 1, 0),
            rule(&["投诉"], "supervision", "complaint", 5, 0),
            rule(&["社保卡"], "card-office", "help", 1, 100),
        ]);
        assert_eq!(
            table.route("投诉社保窗口", "fallback"),
            Route {
                department: "supervision".into(),
                category: "complaint".into()
            }
        );
        assert_eq!(
            table.route("社保卡丢了", "fallback").department,
            "card-office"
        );
        assert_eq!(
            table.route("社保怎么交", "fallback").department,
            "social-security"
        );
    }

    #[test]
    fn unmatched_messages_go_to_the_account_default_then_the_fallback() {
        let with_default = RoutingTable::new([
            rule(&["公交"], "transport", "", 0, 0),
            rule(&[], "mayor-hotline", "", 0, 0),
        ]);
        assert_eq!(
            with_default.route("你好", "fallback"),
            Route {
                department: "mayor-hotline".into(),
                category: DEFAULT_CATEGORY.into()
            }
        );
        assert_eq!(
            with_default.route("公交", "fallback").category,
            DEFAULT_CATEGORY
        );
        assert_eq!(
            RoutingTable::default()
                .route("你好", "citizen-services")
                .department,
            "citizen-services"
        );
    }

    #[test]
    fn keywords_match_case_insensitively_and_blank_keywords_never_match() {
        let table = RoutingTable::new([rule(&["  ", "ETC"], "transport", "help", 0, 0)]);
        assert_eq!(table.route("etc办理", "fallback").department, "transport");
        assert_eq!(table.route("hello", "fallback").department, "fallback");
    }

    #[test]
    fn full_width_text_and_keywords_route_like_the_reply_rules_match() {
        let table = RoutingTable::new([
            rule(&["ETC"], "transport", "help", 0, 0),
            rule(&["１２３４５"], "mayor-hotline", "help", 0, 0),
        ]);
        assert_eq!(
            table.route("ＥＴＣ怎么办理", "fallback").department,
            "transport"
        );
        assert_eq!(
            table.route("ｅｔｃ　怎么办理", "fallback").department,
            "transport"
        );
        assert_eq!(
            table.route("打12345没人接", "fallback").department,
            "mayor-hotline"
        );
    }
}
