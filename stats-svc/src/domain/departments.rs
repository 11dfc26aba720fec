//! Which departments' figures a key reads (docs/security.md: a key's department is
//! whose queue it works, admins all of them).

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
}
