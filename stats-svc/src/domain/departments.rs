//! Which departments' figures a key reads (docs/security.md: a key's department is
//! whose queue it works, admins all of them).

use super::inspection::AlarmRule;

/// The departments whose figures a caller reads on the accounts its key reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepartmentView {
    /// Every department: an admin key, a key of a department named in
    /// `STATS_ALL_DEPARTMENTS` (the supervision office, the new-media office, the
    /// leaders), or the dashboard on a trusted loopback.
    All,
    /// Its own department's only: a desk's key (`social-security@yizhang:agent+viewer`)
    /// saw every other department's counts, lateness and ratings.
    Own(String),
}

impl DepartmentView {
    /// The view of a key of `department`, an admin or not, with `all_departments` the
    /// departments that read every department's figures.
    pub fn of(department: &str, admin: bool, all_departments: &[String]) -> Self {
        if admin || all_departments.iter().any(|d| d == department) {
            Self::All
        } else {
            Self::Own(department.to_owned())
        }
    }

    /// Whether figures keyed by `department` are shown.
    pub fn sees(&self, department: &str) -> bool {
        match self {
            Self::All => true,
            Self::Own(own) => own == department,
        }
    }

    /// Whether this view is cut to one department.
    pub fn is_cut(&self) -> bool {
        matches!(self, Self::Own(_))
    }

    /// Whether an alarm of `rule` about `subject` is shown. The overdue share names a
    /// department and its late count ("parks 近 30 天超期 2/5 件"): shown where that
    /// department's figures are. A ticket escalated twice is shown where its
    /// department's are (`ticket_department`: who holds it; unknown, as for a ticket
    /// no longer in `ticket_times`, is shown to an uncut view only). The account's
    /// own alarms (no update, the reply path) name no department and stay whole.
    pub fn sees_alarm(&self, rule: &str, subject: &str, ticket_department: Option<&str>) -> bool {
        if rule == AlarmRule::OverdueShare.as_str() {
            self.sees(subject)
        } else if rule == AlarmRule::EscalatedTwice.as_str() {
            match self {
                Self::All => true,
                Self::Own(_) => ticket_department.is_some_and(|d| self.sees(d)),
            }
        } else {
            true
        }
    }
}

/// Parses `STATS_ALL_DEPARTMENTS`: department ids separated by commas, blanks dropped.
pub fn parse_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_desk_reads_the_accounts_interaction_alarm_without_its_ticket_count() {
        use super::super::inspection::{cut_detail, interaction_broken_detail};
        let whole = interaction_broken_detail(7, Some(7));
        assert_eq!(whole, "近 7 天收到 7 件留言，无一答复，也无自动回复");
        assert_eq!(
            cut_detail("interaction_broken", "", &whole).as_deref(),
            Some("近 7 天收到的留言无一答复，也无自动回复")
        );
        assert_eq!(
            cut_detail("interaction_broken", "", "回复异常").as_deref(),
            Some("近期收到的留言无一答复，也无自动回复")
        );
        // The reply path counts the account's messages, no department's tickets.
        assert_eq!(cut_detail("interaction_broken", "reply_path", "x"), None);
        assert_eq!(cut_detail("no_update", "", "已 12 天未发布文章"), None);
    }

    #[test]
    fn a_desk_reads_its_own_department_and_admins_and_named_offices_every_one() {
        let all = parse_list(" supervision , leaders,,");
        assert_eq!(all, ["supervision", "leaders"]);
        let desk = DepartmentView::of("social-security", false, &all);
        assert!(desk.sees("social-security") && !desk.sees("water") && desk.is_cut());
        assert_eq!(
            DepartmentView::of("leaders", false, &all),
            DepartmentView::All
        );
        assert_eq!(DepartmentView::of("roads", true, &all), DepartmentView::All);
        assert!(DepartmentView::All.sees("water"));
    }

    #[test]
    fn a_desk_sees_no_other_departments_overdue_alarms() {
        let desk = DepartmentView::Own("water".to_owned());
        assert!(!desk.sees_alarm("overdue_share", "parks", None));
        assert!(desk.sees_alarm("overdue_share", "water", None));
        assert!(!desk.sees_alarm("escalated_twice", "p0", Some("parks")));
        assert!(!desk.sees_alarm("escalated_twice", "p0", None));
        assert!(desk.sees_alarm("escalated_twice", "w0", Some("water")));
        assert!(desk.sees_alarm("no_update", "", None));
        assert!(DepartmentView::All.sees_alarm("overdue_share", "parks", None));
        assert!(DepartmentView::All.sees_alarm("escalated_twice", "p0", None));
    }
}
