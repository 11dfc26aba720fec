//! The use cases of stats-svc, one function each: load with `store`, decide with
//! `domain`, save with `store`. Every door (gRPC, the consumers and jobs) calls these
//! functions, so the rules have one home.
//!
//! Inputs arrive already parsed into domain types: decoding belongs to the door.

pub mod dashboard;
pub mod inspection;
pub mod overview;
pub mod ranking;
pub mod reach;
pub mod rollups;

/// Why a use case failed for a reason other than its input.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A WeChat API call failed (only jobs call WeChat).
    #[error("wechat: {0}")]
    Wechat(#[from] wechat::api::ApiError),
    /// A hand entry of an article's figures broke a rule (`domain::figures`).
    #[error(transparent)]
    Figures(#[from] crate::domain::figures::EntryRefused),
    /// A list asked of a month after the office's (`app::ranking::month_begun`).
    #[error(transparent)]
    MonthNotBegun(#[from] ranking::MonthNotBegun),
    /// A list asked of a week after the office's (`app::ranking::week_begun`).
    #[error(transparent)]
    WeekNotBegun(#[from] ranking::WeekNotBegun),
}
