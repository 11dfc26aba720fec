//! Sends failed as outcome unknown with a job WeChat named (a 45065 for a changed line-up):
//! the reconciler asks about their job too, so a verdict settles them without a publisher.
