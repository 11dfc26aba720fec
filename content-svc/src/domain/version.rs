//! An article's versions as a reviewer reads them: what the review decisions on
//! one version came to.

use super::review::ReviewStage;

/// A step of a version's review, as the trail records it: a submission opens a
/// round, a decision ends a stage of it, a withdrawal ends the round undecided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewStep {
    Submit,
    Approve(ReviewStage),
    Reject,
    Return,
    /// The author took it back before the final review: the stages it passed
    /// count no more (a submission again starts over).
    Withdraw,
}

impl ReviewStep {
    /// The step an audit row records (its action and stage), if it is one: other
    /// rows (withdraw, schedule, overrides, …) decide nothing about the text.
    pub fn from_audit(action: &str, stage: Option<&str>) -> Option<Self> {
        match action {
            "submit" => Some(Self::Submit),
            "approve" => Some(Self::Approve(ReviewStage::parse(stage?)?)),
            "reject" => Some(Self::Reject),
            "return" => Some(Self::Return),
            "withdraw" => Some(Self::Withdraw),
            _ => None,
        }
    }
}

/// What the reviews of one version came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionOutcome {
    NotReviewed,
    InReview,
    Approved,
    Rejected,
    Returned,
}

/// The outcome of a version's review steps, oldest first. The last one wins: a
/// version rejected or returned and resubmitted unchanged is reviewed again, and
/// what counts is where its latest round stands.
pub fn outcome(steps: impl IntoIterator<Item = ReviewStep>) -> VersionOutcome {
    match steps.into_iter().last() {
        // A withdrawn version's round ended without a verdict: "in review" it is not.
        None | Some(ReviewStep::Submit | ReviewStep::Withdraw) => VersionOutcome::NotReviewed,
        Some(ReviewStep::Approve(ReviewStage::Final)) => VersionOutcome::Approved,
        Some(ReviewStep::Approve(_)) => VersionOutcome::InReview,
        Some(ReviewStep::Reject) => VersionOutcome::Rejected,
        Some(ReviewStep::Return) => VersionOutcome::Returned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_review_rows_are_decisions() {
        assert_eq!(
            ReviewStep::from_audit("approve", Some("second")),
            Some(ReviewStep::Approve(ReviewStage::Second))
        );
        assert_eq!(
            ReviewStep::from_audit("reject", Some("first")),
            Some(ReviewStep::Reject)
        );
        assert_eq!(
            ReviewStep::from_audit("return", None),
            Some(ReviewStep::Return)
        );
        assert_eq!(
            ReviewStep::from_audit("submit", None),
            Some(ReviewStep::Submit)
        );
        assert_eq!(
            ReviewStep::from_audit("withdraw", None),
            Some(ReviewStep::Withdraw)
        );
        for action in ["override", "schedule", "publish", "confirm"] {
            assert_eq!(ReviewStep::from_audit(action, None), None, "{action}");
        }
        // An approval without a stage the trail knows is not guessed at.
        assert_eq!(ReviewStep::from_audit("approve", None), None);
        assert_eq!(ReviewStep::from_audit("approve", Some("fourth")), None);
    }

    #[test]
    fn the_last_decision_on_a_version_is_its_outcome() {
        use ReviewStage::*;
        use ReviewStep::*;
        assert_eq!(outcome([]), VersionOutcome::NotReviewed);
        assert_eq!(outcome([Submit]), VersionOutcome::NotReviewed);
        assert_eq!(outcome([Approve(First)]), VersionOutcome::InReview);
        assert_eq!(
            outcome([Approve(First), Approve(Second)]),
            VersionOutcome::InReview
        );
        assert_eq!(
            outcome([Approve(First), Approve(Second), Approve(Final)]),
            VersionOutcome::Approved
        );
        assert_eq!(outcome([Approve(First), Reject]), VersionOutcome::Rejected);
        // Withdrawn after its first review: that round ended undecided.
        assert_eq!(
            outcome([Submit, Approve(First), Withdraw]),
            VersionOutcome::NotReviewed
        );
        // Rejected, then submitted again unchanged: waiting for its first review.
        assert_eq!(
            outcome([Submit, Approve(First), Reject, Submit]),
            VersionOutcome::NotReviewed
        );
        assert_eq!(
            outcome([Approve(First), Approve(Second), Approve(Final), Return]),
            VersionOutcome::Returned
        );
        // Returned, resubmitted unchanged and approved again.
        assert_eq!(
            outcome([
                Approve(First),
                Approve(Second),
                Approve(Final),
                Return,
                Approve(First),
                Approve(Second),
                Approve(Final)
            ]),
            VersionOutcome::Approved
        );
    }
}
