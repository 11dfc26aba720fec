//! Statistics (`POST /datacube/*`).
//!
//! Every call takes an inclusive date range that must end before today and span at
//! most the API's maximum (7 days for users, 1 for article summary and total, 3 for
//! user reads); otherwise WeChat answers 61501.

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{ApiError, Client};

/// Follower gains and losses for one day and source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserSummary {
    /// The day.
    pub ref_date: NaiveDate,
    /// Where followers came from (0 other, 1 search, 17 card share, 30 QR code, …).
    pub user_source: i32,
    /// New followers.
    pub new_user: u64,
    /// Unfollows.
    pub cancel_user: u64,
}

/// The total follower count at the end of one day.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserCumulate {
    /// The day.
    pub ref_date: NaiveDate,
    /// Followers at the end of the day.
    pub cumulate_user: u64,
}

/// Reach counters shared by article and read statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ReadCounters {
    /// Users who read the article page.
    #[serde(default)]
    pub int_page_read_user: u64,
    /// Article page reads.
    #[serde(default)]
    pub int_page_read_count: u64,
    /// Users who opened the original link.
    #[serde(default)]
    pub ori_page_read_user: u64,
    /// Original link opens.
    #[serde(default)]
    pub ori_page_read_count: u64,
    /// Users who shared.
    #[serde(default)]
    pub share_user: u64,
    /// Shares.
    #[serde(default)]
    pub share_count: u64,
    /// Users who added to favourites.
    #[serde(default)]
    pub add_to_fav_user: u64,
    /// Favourite additions.
    #[serde(default)]
    pub add_to_fav_count: u64,
}

/// One article's reach on one day (`getarticlesummary`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ArticleSummary {
    /// The day.
    pub ref_date: NaiveDate,
    /// `{msg_data_id}_{index}`.
    pub msgid: String,
    /// The article title.
    pub title: String,
    /// The counters.
    #[serde(flatten)]
    pub counters: ReadCounters,
}

/// One article's cumulative reach since sending (`getarticletotal`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ArticleTotal {
    /// The day the article was sent.
    pub ref_date: NaiveDate,
    /// `{msg_data_id}_{index}`.
    pub msgid: String,
    /// The article title.
    pub title: String,
    /// Per-day cumulative counters.
    #[serde(default)]
    pub details: Vec<ArticleTotalDetail>,
}

/// A day of [`ArticleTotal`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ArticleTotalDetail {
    /// The day of the statistics.
    pub stat_date: NaiveDate,
    /// Users the article was sent to.
    pub target_user: u64,
    /// The counters, cumulative to `stat_date`.
    #[serde(flatten)]
    pub counters: ReadCounters,
}

/// Reads of all articles on one day by source (`getuserread`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserRead {
    /// The day.
    pub ref_date: NaiveDate,
    /// Where reads came from (99999999 all, 0 session, 1 friends, 2 moments, …).
    #[serde(default)]
    pub user_source: i64,
    /// The counters.
    #[serde(flatten)]
    pub counters: ReadCounters,
}

#[derive(Serialize)]
struct Range {
    begin_date: NaiveDate,
    end_date: NaiveDate,
}

#[derive(Deserialize)]
struct List<T> {
    #[serde(default = "Vec::new")]
    list: Vec<T>,
}

impl Client {
    async fn datacube<T: DeserializeOwned>(
        &self,
        api: &str,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<T>, ApiError> {
        let path = format!("/datacube/{api}");
        let list: List<T> = self
            .post(
                &path,
                &Range {
                    begin_date: begin,
                    end_date: end,
                },
            )
            .await?;
        Ok(list.list)
    }

    /// Follower gains and losses per day (`getusersummary`, at most 7 days).
    pub async fn user_summary(
        &self,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<UserSummary>, ApiError> {
        self.datacube("getusersummary", begin, end).await
    }

    /// Total followers per day (`getusercumulate`, at most 7 days).
    pub async fn user_cumulate(
        &self,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<UserCumulate>, ApiError> {
        self.datacube("getusercumulate", begin, end).await
    }

    /// Per-article reach of one day (`getarticlesummary`, 1 day).
    pub async fn article_summary(
        &self,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<ArticleSummary>, ApiError> {
        self.datacube("getarticlesummary", begin, end).await
    }

    /// Cumulative reach of the articles sent on one day (`getarticletotal`, 1 day).
    pub async fn article_total(
        &self,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<ArticleTotal>, ApiError> {
        self.datacube("getarticletotal", begin, end).await
    }

    /// Reads of all articles per day (`getuserread`, at most 3 days).
    pub async fn user_read(
        &self,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<UserRead>, ApiError> {
        self.datacube("getuserread", begin, end).await
    }
}
