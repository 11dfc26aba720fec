//! Passive replies.
