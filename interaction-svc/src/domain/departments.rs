//! The departments of the install: which ids exist (a ticket may only be assigned
//! or routed to one of them, or it would vanish from every queue) and the name a
//! citizen reads (`社会保障局`, not `social-security`).

use std::collections::BTreeMap;

use super::ticket::SYSTEM_ACTOR;

/// The known departments and their display names. Cheap to clone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Departments {
    names: BTreeMap<String, String>,
}

impl Departments {
    /// Parses `INTERACTION_DEPARTMENTS`: `id=显示名` entries separated by commas or
    /// newlines (`social-security=社会保障局,transport=交通运输局`); an entry
    /// without `=` is shown by its id.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut names = BTreeMap::new();
        for entry in raw
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (id, name) = entry.split_once('=').unwrap_or((entry, entry));
            let (id, name) = (id.trim(), name.trim());
            let valid_id = !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid_id || name.is_empty() || name.chars().any(char::is_control) {
                return Err(format!(
                    "entry {entry:?}: expected id=display name, the id of letters, digits, - _ ."
                ));
            }
            Self::check_id(id).map_err(|reason| format!("entry {entry:?}: {reason}"))?;
            names.insert(id.to_owned(), name.to_owned());
        }
        Ok(Self { names })
    }

    /// Refuses an id no department may have: [`SYSTEM_ACTOR`], the platform's own
    /// name in the history (its escalations, the rating question).
    pub fn check_id(id: &str) -> Result<(), String> {
        if id == SYSTEM_ACTOR {
            return Err(format!(
                "{SYSTEM_ACTOR:?} is reserved: the history names the platform's own acts so; choose another department id"
            ));
        }
        Ok(())
    }

    /// Departments known by id only (shown by their id), e.g. those the API keys name;
    /// the caller checks each with [`Self::check_id`].
    pub fn with_ids<'a>(mut self, ids: impl IntoIterator<Item = &'a str>) -> Self {
        for id in ids {
            self.names
                .entry(id.to_owned())
                .or_insert_with(|| id.to_owned());
        }
        self
    }

    /// Whether `id` is a department of the install.
    pub fn is_known(&self, id: &str) -> bool {
        self.names.contains_key(id)
    }

    /// The name citizens read; the id itself for a department without one.
    pub fn display<'a>(&'a self, id: &'a str) -> &'a str {
        self.names.get(id).map_or(id, String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_departments_are_known_and_shown_by_name() {
        let departments = Departments::parse("social-security=社会保障局, transport=交通运输局")
            .unwrap()
            .with_ids(["citizen-services", "transport"]);
        assert!(departments.is_known("social-security"));
        assert!(departments.is_known("citizen-services"));
        assert!(!departments.is_known("no-such-dept"));
        assert_eq!(departments.display("social-security"), "社会保障局");
        assert_eq!(departments.display("transport"), "交通运输局");
        assert_eq!(departments.display("citizen-services"), "citizen-services");
    }

    #[test]
    fn malformed_entries_are_named() {
        assert!(Departments::parse("=社保").unwrap_err().contains("=社保"));
        assert!(Departments::parse("social security=社保").is_err());
        assert!(Departments::parse("social-security=").is_err());
    }

    /// The history names the platform's own acts `system`: a department of that id
    /// would be indistinguishable from the clock and the rating question.
    #[test]
    fn the_system_actor_is_no_department() {
        let refused = Departments::parse("system=系统管理科").unwrap_err();
        assert!(refused.contains("\"system\" is reserved"), "{refused}");
    }
}
