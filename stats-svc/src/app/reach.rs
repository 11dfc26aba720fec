//! Reach: pulling WeChat's datacube for one account, range by range, within the
//! API's limits; each call's answer is stored (with the progress) before the next
//! call, and no transaction is held across a call.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, FixedOffset, NaiveDate, Utc};
use sqlx::PgPool;
use wechat::api::Client;
use wechat::api::datacube::ArticleTotal;

use super::AppError;
use crate::domain::AccountId;
use crate::domain::figures::datacube_headline;
use crate::domain::reach::{CubeApi, chunks, due_range, first_open_day, latest_available};
use crate::domain::rollup::{Metric, Tally};
use crate::store::reach::{self, PulledArticle};
use work_calendar::WorkCalendar;

/// What one pull did for one account.
#[derive(Debug, Default)]
pub struct PullReport {
    /// Datacube calls made (failed ones included).
    pub calls: usize,
    /// The APIs whose pull failed this time, and why (recorded in `datacube_failures`;
    /// the other APIs were still pulled).
    pub failures: Vec<(CubeApi, wechat::api::ApiError)>,
}

/// Pulls every API's due range for `account` at `now`, oldest chunk first, stopping
/// early (progress kept) when `stop` says so. A failing call ends its API's pull for
/// this run, is recorded (`datacube_failures`, `stats_datacube_failures_total{api}`)
/// and leaves the other APIs to be pulled: a refused user summary must not hold back
/// the articles' day-7 figures the ranking reads. An article that would take the place
/// of figures entered by hand in a month whose list is final is left out, logged and
/// counted (`stats_datacube_articles_refused_total{reason="month_final"}`): the list stays as reported.
/// Errors only for the database.
#[allow(clippy::too_many_arguments)]
pub async fn pull_account(
    db: &PgPool,
    client: &Client,
    account: &AccountId,
    now: DateTime<Utc>,
    office: FixedOffset,
    calendar: &WorkCalendar,
    backfill_days: u64,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<PullReport, AppError> {
    let latest = latest_available(now, office);
    let open_from = first_open_day(now, office, calendar);
    let mut report = PullReport::default();
    'apis: for api in CubeApi::ALL {
        let done = reach::progress(db, account, api.as_str()).await?;
        if let Some((from, to)) = due_range(api, done, latest, backfill_days) {
            for (begin, end) in chunks(from, to, api.max_span()) {
                if stop() {
                    return Ok(report);
                }
                report.calls += 1;
                match fetch(client, account, api, begin, end).await {
                    Ok((values, articles)) => {
                        let left_out = reach::store_chunk(
                            db,
                            account,
                            api.as_str(),
                            end,
                            &values,
                            &articles,
                            open_from,
                        )
                        .await?;
                        for msgid in &left_out {
                            // Not an error of the pull: the entry keeps counting, and
                            // the final list stays as reported.
                            tracing::warn!(
                                account = account.as_str(),
                                article = msgid.as_str(),
                                %open_from,
                                "datacube article left out: it would replace figures \
                                 entered by hand in a month whose ranking is final"
                            );
                        }
                        metrics::counter!(
                            "stats_datacube_articles_refused_total",
                            "reason" => "month_final",
                        )
                        .increment(left_out.len() as u64);
                    }
                    Err(error) => {
                        let reason = failure_reason(&error);
                        metrics::counter!(
                            "stats_datacube_failures_total",
                            "api" => api.as_str(),
                            "reason" => reason.clone(),
                        )
                        .increment(1);
                        reach::record_failure(
                            db,
                            account,
                            api.as_str(),
                            &failure_text(&error),
                            now,
                        )
                        .await?;
                        report.failures.push((api, error));
                        continue 'apis;
                    }
                }
            }
        }
        reach::clear_failure(db, account, api.as_str()).await?;
    }
    Ok(report)
}

/// Why a call failed, as a metric label: WeChat's errcode, or the kind of failure.
fn failure_reason(error: &wechat::api::ApiError) -> String {
    use wechat::api::ApiError;
    match error {
        ApiError::Wechat { code, .. } => code.0.to_string(),
        ApiError::Timeout => "timeout".to_owned(),
        ApiError::Http(_) => "transport".to_owned(),
        ApiError::Status(_) => "http_status".to_owned(),
        ApiError::Decode(_) => "decode".to_owned(),
        _ => "token".to_owned(),
    }
}

/// Why a call failed, as the dashboard shows it: the errcode and WeChat's message.
fn failure_text(error: &wechat::api::ApiError) -> String {
    let text = error.to_string();
    // WeChat's errmsg ends with a request id ("rid: …") useful to support only.
    text.split(" rid:")
        .next()
        .unwrap_or(&text)
        .trim()
        .to_owned()
}

async fn fetch(
    client: &Client,
    account: &AccountId,
    api: CubeApi,
    begin: NaiveDate,
    end: NaiveDate,
) -> Result<(Vec<Tally>, Vec<PulledArticle>), wechat::api::ApiError> {
    let mut sums: BTreeMap<(NaiveDate, Metric, String), i64> = BTreeMap::new();
    let mut add = |day, metric, key: String, value: u64| {
        *sums.entry((day, metric, key)).or_default() += i64::try_from(value).unwrap_or(i64::MAX);
    };
    let mut articles = Vec::new();
    match api {
        CubeApi::UserSummary => {
            for row in client.user_summary(begin, end).await? {
                let source = row.user_source.to_string();
                add(
                    row.ref_date,
                    Metric::WxNewUsers,
                    source.clone(),
                    row.new_user,
                );
                add(row.ref_date, Metric::WxLostUsers, source, row.cancel_user);
            }
        }
        CubeApi::UserCumulate => {
            for row in client.user_cumulate(begin, end).await? {
                add(
                    row.ref_date,
                    Metric::WxFollowers,
                    String::new(),
                    row.cumulate_user,
                );
            }
        }
        CubeApi::UserRead => {
            for row in client.user_read(begin, end).await? {
                let source = row.user_source.to_string();
                let c = &row.counters;
                add(
                    row.ref_date,
                    Metric::WxReads,
                    source.clone(),
                    c.int_page_read_count,
                );
                add(
                    row.ref_date,
                    Metric::WxReadUsers,
                    source.clone(),
                    c.int_page_read_user,
                );
                add(row.ref_date, Metric::WxShares, source, c.share_count);
            }
        }
        CubeApi::ArticleSummary => {
            for row in client.article_summary(begin, end).await? {
                let c = &row.counters;
                add(
                    row.ref_date,
                    Metric::WxArticleReads,
                    row.msgid.clone(),
                    c.int_page_read_count,
                );
                add(
                    row.ref_date,
                    Metric::WxArticleReadUsers,
                    row.msgid.clone(),
                    c.int_page_read_user,
                );
                add(
                    row.ref_date,
                    Metric::WxArticleShares,
                    row.msgid,
                    c.share_count,
                );
            }
        }
        CubeApi::ArticleTotal => {
            for total in client.article_total(begin, end).await? {
                articles.push(day_seven(&total));
            }
        }
    }
    let values = sums
        .into_iter()
        .map(|((day, metric, key), value)| Tally {
            account: account.clone(),
            day,
            metric,
            key,
            value,
        })
        .collect();
    Ok((values, articles))
}

/// An article's figures on its seventh day (the last detail up to it: WeChat stops
/// reporting an article after a few days).
fn day_seven(total: &ArticleTotal) -> PulledArticle {
    let seventh = total.ref_date + Days::new(6);
    let detail = total
        .details
        .iter()
        .filter(|d| d.stat_date <= seventh)
        .max_by_key(|d| d.stat_date);
    let (reads, shares) = detail.map_or((0, 0), |d| {
        (d.counters.int_page_read_count, d.counters.share_count)
    });
    PulledArticle {
        msgid: total.msgid.clone(),
        title: total.title.clone(),
        published_on: total.ref_date,
        headline: datacube_headline(&total.msgid),
        reads: i64::try_from(reads).unwrap_or(i64::MAX),
        shares: i64::try_from(shares).unwrap_or(i64::MAX),
    }
}

/// Takes the datacube lease for `holder` (one replica pulls at a time).
pub async fn take_lease(
    db: &PgPool,
    holder: &str,
    now: DateTime<Utc>,
    lease: chrono::TimeDelta,
) -> Result<bool, AppError> {
    Ok(reach::take_lease(db, LEASE, holder, now, now + lease).await?)
}

/// Forgets the failures of accounts other than `accounts` (no longer pulled).
pub async fn forget_failures_except(db: &PgPool, accounts: &[String]) -> Result<(), AppError> {
    Ok(reach::forget_failures_except(db, accounts).await?)
}

/// How many accounts have a failing datacube pull (`stats_datacube_accounts_failing`).
pub async fn failing_accounts(db: &PgPool) -> Result<i64, AppError> {
    Ok(reach::failing_accounts(db).await?)
}

/// Gives the datacube lease back.
pub async fn release_lease(db: &PgPool, holder: &str) -> Result<(), AppError> {
    Ok(reach::release_lease(db, LEASE, holder).await?)
}

const LEASE: &str = "datacube";
