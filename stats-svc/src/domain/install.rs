//! Which accounts the install serves now, and what follows for the lists and the
//! inspection: an account the install names is in it however silent it is; one it no
//! longer names was in it only while it was heard of.

use std::collections::BTreeSet;

/// The accounts of `WECHAT_ACCOUNTS`, or none named (the variable unset: the demo
/// account stands in, and says nothing about which accounts the data comes from).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Install {
    named: Option<BTreeSet<String>>,
}

impl Install {
    /// An install that names its accounts.
    pub fn named<S: Into<String>>(accounts: impl IntoIterator<Item = S>) -> Self {
        Self {
            named: Some(accounts.into_iter().map(Into::into).collect()),
        }
    }

    /// An install that names none: which accounts are in it is guessed from what was
    /// heard of them (a month's silence means taken out).
    pub fn unnamed() -> Self {
        Self::default()
    }

    /// Whether the install names its accounts.
    pub fn is_named(&self) -> bool {
        self.named.is_some()
    }

    /// The accounts the install names (none when it names none).
    pub fn accounts(&self) -> impl Iterator<Item = &str> {
        self.named.iter().flatten().map(String::as_str)
    }

    /// Whether the inspection checks `account` (and `/` shows it), given whether it
    /// was silent for the last month. Named: exactly the accounts named, however
    /// silent; silence is what the update-gap alarm is for, and an account that
    /// publishes nothing and no follower writes to is the deadest one. Unnamed: every
    /// account not silent (a removed account would otherwise be alarmed every day).
    pub fn checks(&self, account: &str, silent: bool) -> bool {
        match &self.named {
            Some(named) => named.contains(account),
            None => !silent,
        }
    }

    /// Whether a period's list shows `account` (among those heard of by the period's
    /// end), given whether it was last heard of before the period began: an account
    /// named now is listed from its first period on (无发文 when silent), one not named
    /// only in the periods it was heard of.
    pub fn lists(&self, account: &str, gone_before: bool) -> bool {
        !gone_before || self.named.as_ref().is_some_and(|n| n.contains(account))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_install_checks_its_accounts_however_silent_and_no_other() {
        let install = Install::named(["chenzhou", "yizhang"]);
        assert!(install.checks("yizhang", true));
        assert!(!install.checks("anren", false));
        assert!(install.lists("yizhang", true));
        assert!(!install.lists("anren", true));
        assert!(install.lists("anren", false));
    }

    #[test]
    fn an_unnamed_install_goes_by_what_was_heard() {
        let install = Install::unnamed();
        assert!(install.checks("yizhang", false));
        assert!(!install.checks("yizhang", true));
        assert!(!install.lists("yizhang", true));
        assert_eq!(install.accounts().count(), 0);
    }
}
