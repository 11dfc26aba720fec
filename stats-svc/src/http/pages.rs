//! The pages' HTML: tables rendered here (readable without JavaScript) and each chart's
//! data embedded as JSON for the vendored ECharts. Every text from the database is
//! escaped.

use std::fmt::Write as _;

use chrono::{Datelike, FixedOffset, NaiveDate};
use serde_json::json;

use crate::app::dashboard::{AccountLine, AccountPage};
use crate::app::inspection::{Readiness, update_warning};
use crate::app::ranking::{Ranked, Ranking};
use crate::domain::wci::{VERSIONS, WciVersion};
use crate::store::alarms::AlarmRow;
use crate::store::reach::PullFailure;

pub use platform::html::esc;

/// JSON safe inside a `<script>` element.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

const STYLE: &str = "
*{box-sizing:border-box}body{margin:0;font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;background:#f4f6f9;color:#1f2d3d}
header{background:#b71c1c;color:#fff;padding:12px 20px;display:flex;gap:20px;align-items:center;flex-wrap:wrap}
header h1{font-size:20px;margin:0}header a{color:#fff;text-decoration:none;opacity:.9}
main{padding:16px;max-width:1280px;margin:0 auto}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:16px}
@media(max-width:800px){.grid{grid-template-columns:1fr}header h1{font-size:17px}}
.card{background:#fff;border-radius:6px;padding:12px 16px;box-shadow:0 1px 3px rgba(0,0,0,.08);overflow-x:auto}
.card h2{font-size:16px;margin:4px 0 10px}.chart{width:100%;height:320px}
table{width:100%;border-collapse:collapse;font-size:14px}th,td{padding:6px 8px;border-bottom:1px solid #e5e9ef;text-align:left}
th{background:#fafbfc}.ok{color:#2e7d32}.bad{color:#c62828;font-weight:bold}.warn{color:#e65100;font-weight:bold}.muted{color:#7a8699}
.wide{grid-column:1/-1}.grid3{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:12px}
@media(max-width:800px){.grid3{grid-template-columns:1fr}}form.inline{display:flex;gap:8px;flex-wrap:wrap;align-items:center}
input,select,button{font-size:14px;padding:4px 8px}";

fn layout(title: &str, body: &str, charts: Option<&str>) -> String {
    let scripts = match charts {
        Some(script) => {
            format!("<script src=\"/static/echarts.min.js\"></script><script>{script}</script>")
        }
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · 政务新媒体统计</title><style>{STYLE}</style></head><body>\
         <header><h1>政务新媒体统计</h1><a href=\"/\">总览</a><a href=\"/ranking\">WCI 排行</a></header>\
         <main>{body}</main>{scripts}</body></html>",
        title = esc(title)
    )
}

/// A page saying what went wrong.
pub fn error(message: &str) -> String {
    layout(
        "错误",
        &format!("<div class=\"card\"><h2>{}</h2></div>", esc(message)),
        None,
    )
}

/// The login form.
pub fn login(problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p class=\"bad\">{}</p>", esc(p)))
        .unwrap_or_default();
    layout(
        "登录",
        &format!(
            "<div class=\"card\"><h2>请输入具有查看权限的 API 密钥</h2>{problem}\
             <form class=\"inline\" method=\"post\" action=\"/login\">\
             <input type=\"password\" name=\"key\" autocomplete=\"off\" required>\
             <button type=\"submit\">登录</button></form></div>"
        ),
        None,
    )
}

fn yes_no(ok: bool, yes: &str, no: &str) -> String {
    if ok {
        format!("<span class=\"ok\">{yes}</span>")
    } else {
        format!("<span class=\"bad\">{no}</span>")
    }
}

/// The update check: 超期 from the national veto (no update within two weeks,
/// `update_ok` false), 预警 from the update-gap alarm's limit (`ALARM_STALE_DAYS`, 10
/// days) until then, else 正常. Day 10 read 超期, four days before the inspection
/// fails.
fn update_state(r: &Readiness, stale_after_days: i64) -> String {
    if update_warning(stale_after_days, r.days_since_update) {
        "<span class=\"warn\">预警</span>".to_owned()
    } else {
        yes_no(r.update_ok, "正常", "超期")
    }
}

/// An on-time share with its base ("96%（29/30）"), or "—" when nothing is judged:
/// no data must not read as 100%. The percentage is rounded down, from the counts (a
/// float's 0.29 × 100 is 28.999…), so 100% means every one: 249 of 250 rounded to
/// nearest read "100%".
fn on_time(rate: Option<f64>, count: i64, of: i64) -> String {
    match rate {
        Some(_) if of > 0 => format!("{}%（{count}/{of}）", count * 100 / of),
        _ => "—".to_owned(),
    }
}

fn rule_name(rule: &str) -> &'static str {
    match rule {
        "no_update" => "更新间隔超期",
        "interaction_broken" => "互动渠道失效",
        "overdue_share" => "部门超期比例过高",
        "escalated_twice" => "工单两次督办",
        _ => "其他",
    }
}

fn alarms_table(alarms: &[AlarmRow]) -> String {
    if alarms.is_empty() {
        return "<p class=\"muted\">近 30 天无告警</p>".to_owned();
    }
    let mut html =
        String::from("<table><tr><th>日期</th><th>公众号</th><th>规则</th><th>说明</th></tr>");
    // One row per day, account and rule (the list comes in that order): an account
    // with many tickets escalated twice raises one alarm each, and would otherwise
    // push every other account's alarms off the page.
    for group in alarms
        .chunk_by(|a, b| (a.day, &a.account, &a.rule) == (b.day, &b.account, &b.rule))
        .take(200)
    {
        let a = &group[0];
        let more = match group.len() {
            1 => String::new(),
            n => format!("（同类共 {n} 条）"),
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{more}</td></tr>",
            a.day,
            esc(&a.account),
            rule_name(&a.rule),
            esc(&a.detail)
        );
    }
    html.push_str("</table>");
    html
}

/// The overview: every account's inspection readiness, and the alarms. A key cut to
/// its department (`departments_cut`) reads its own department's on-time share.
pub fn overview(
    today: NaiveDate,
    lines: &[AccountLine],
    alarms: &[AlarmRow],
    departments_cut: bool,
    stale_after_days: i64,
) -> String {
    let mut rows = String::new();
    for line in lines {
        let r = &line.readiness;
        let last = r
            .last_published_on
            .map_or_else(|| "从未发布".to_owned(), |d| d.to_string());
        let days = r
            .days_since_update
            .map_or_else(|| "—".to_owned(), |d| format!("{d} 天"));
        let _ = write!(
            rows,
            "<tr><td><a href=\"/account/{id}\">{id}</a></td><td>{last}</td><td>{days}</td>\
             <td>{update}</td><td>{interaction}</td><td>{share}</td></tr>",
            id = esc(&line.account),
            update = update_state(r, stale_after_days),
            interaction = yes_no(r.interaction_ok, "正常", "失效"),
            share = on_time(
                r.acknowledged_rate(),
                r.acknowledged_on_time,
                r.acknowledge_judged
            ),
        );
    }
    if lines.is_empty() {
        rows.push_str("<tr><td colspan=\"6\" class=\"muted\">暂无数据</td></tr>");
    }
    let share = if departments_cut {
        "本部门按时响应率"
    } else {
        "按时响应率"
    };
    let body = format!(
        "<div class=\"grid\"><div class=\"card wide\"><h2>检查准备情况（{today}）</h2>\
         <table><tr><th>公众号</th><th>最近发布</th><th>距今</th><th>更新</th><th>互动</th>\
         <th>{share}</th></tr>{rows}</table></div>\
         <div class=\"card wide\"><h2>告警</h2>{}</div></div>",
        alarms_table(alarms)
    );
    layout("总览", &body, None)
}

/// An account's charts: followers, messages and tickets, department compliance. Times
/// are shown in office time (`office`), as the days are.
pub fn account(account: &str, days: u64, page: &AccountPage, office: FixedOffset) -> String {
    // Up to 366 days: across a new year `MM-DD` would name two days alike.
    let across_years =
        page.days.first().map(|d| d.day.year()) != page.days.last().map(|d| d.day.year());
    let date_format = if across_years { "%Y-%m-%d" } else { "%m-%d" };
    let dates: Vec<String> = page
        .days
        .iter()
        .map(|d| d.day.format(date_format).to_string())
        .collect();
    let pick = |f: &dyn Fn(&crate::app::dashboard::DayFigures) -> i64| -> Vec<i64> {
        page.days.iter().map(f).collect()
    };
    let totals: Vec<Option<i64>> = page.days.iter().map(|d| d.followers_total).collect();
    let departments: Vec<&crate::app::rollups::DepartmentScore> =
        page.departments.iter().take(20).collect();
    let data = json!({
        "dates": dates,
        "new": pick(&|d| d.followers_new),
        "lost": pick(&|d| -d.followers_lost),
        "net": pick(&|d| d.followers_new - d.followers_lost),
        "total": totals,
        "messages": pick(&|d| d.messages),
        "clicks": pick(&|d| d.menu_clicks),
        "opened": pick(&|d| d.tickets_opened),
        "closed": pick(&|d| d.tickets_closed),
        "hours": page.hours,
        "autoHours": page.auto_hours,
        "ruleReplies": pick(&|d| d.rule_replies),
        "directoryReplies": pick(&|d| d.directory_replies),
        "articleReads": page.days.iter().map(|d| d.article_reads).collect::<Vec<_>>(),
        // Ranked bars read bottom-up, so the best department goes last.
        "departments": departments.iter().rev().map(|d| d.department.clone()).collect::<Vec<_>>(),
        // No bar (null) for a department with nothing judged.
        "compliance": departments.iter().rev()
            .map(|d| d.acknowledged_rate().map(|r| (r * 1000.0).round() / 10.0))
            .collect::<Vec<_>>(),
    });
    // Response times are wall-clock from opening (a weekend counts), while the
    // deadlines behind 按时响应 run in office hours: the columns say which they are.
    let mut table = String::from(
        "<table><tr><th>部门</th><th>受理</th><th>答复</th><th>办结</th><th>超期</th>\
         <th>响应中位数（自然时长）</th><th>P90（自然时长）</th><th>按时响应</th><th>满意度</th></tr>",
    );
    for d in &page.departments {
        let (median, p90) = d.acknowledge.map_or_else(
            || ("—".to_owned(), "—".to_owned()),
            |(median, p90)| (duration(median), duration(p90)),
        );
        let _ = write!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            esc(if d.department.is_empty() {
                "未分派"
            } else {
                &d.department
            }),
            d.opened,
            d.answered,
            d.closed,
            d.overdue,
            median,
            p90,
            on_time(
                d.acknowledged_rate(),
                d.acknowledged_in_time,
                d.acknowledge_judged
            ),
            if d.rated == 0 {
                "—".to_owned()
            } else {
                format!("{:.1}", d.mean_rating())
            },
        );
    }
    table.push_str("</table>");
    if let Some(note) = departments_note(page.departments_cut, page.department_place) {
        let _ = write!(table, "<p class=\"muted\">{note}</p>");
    }
    let r = &page.readiness;
    let failing = pull_failures(&page.pull_failures, office);
    let body = format!(
        "<form class=\"inline\" method=\"get\"><strong>{name}</strong>\
         <select name=\"days\">{options}</select><button>查看</button></form>{failing}\
         <p>最近发布：{last} · 更新 {update} · 互动 {interaction} · 近 {window} 天留言 {opened} 件，已回应 {answered} 件，超过受理时限未回应 {late} 件，自动回复 {auto} 次</p>\
         <div class=\"grid\">\
         <div class=\"card\"><h2>粉丝增长</h2><div id=\"followers\" class=\"chart\"></div></div>\
         <div class=\"card\"><h2>消息与工单</h2><div id=\"traffic\" class=\"chart\"></div></div>\
         <div class=\"card wide\"><h2>留言时段分布</h2>{hours_since}<div id=\"hours\" class=\"chart\"></div></div>\
         <div class=\"card\"><h2>自动回复</h2><div id=\"replies\" class=\"chart\"></div></div>\
         <div class=\"card\"><h2>图文阅读（微信统计）</h2><div id=\"reads\" class=\"chart\"></div></div>\
         <div class=\"card wide\"><h2>关键词与办事指南命中</h2><div class=\"grid3\">{hits}</div></div>\
         <div class=\"card wide\"><h2>各部门按时响应率（近 30 天）</h2><div id=\"compliance\" class=\"chart\"></div>{table}</div>\
         <div class=\"card wide\"><h2>告警</h2>{alarms}</div></div>\
         <script id=\"data\" type=\"application/json\">{data}</script>",
        // Counted by hour only since an upgrade: the chart says so rather than
        // showing the months before as quiet hours.
        hours_since = page.hours_since.map_or_else(String::new, |day| {
            format!(
                "<p class=\"muted\">按时段统计自 {} 起，此前的留言未计入本图。</p>",
                day.format("%Y-%m-%d")
            )
        }),
        name = esc(account),
        options = [30u64, 90, 180, 365]
            .iter()
            .map(|n| format!(
                "<option value=\"{n}\"{}>近 {n} 天</option>",
                if *n == days { " selected" } else { "" }
            ))
            .collect::<String>(),
        last = r
            .last_published_on
            .map_or_else(|| "从未发布".to_owned(), |d| d.to_string()),
        update = update_state(r, page.stale_after_days),
        interaction = yes_no(r.interaction_ok, "正常", "失效"),
        window = page.interaction_days,
        // Tickets opened in the window, whether due or not; of the judged ones
        // (`recent_tickets`), those not answered are past their deadline.
        opened = page.recent_opened,
        answered = r.recent_answered,
        late = r.recent_tickets - r.recent_answered,
        auto = r.recent_auto_replies,
        alarms = alarms_table(&page.alarms),
        hits = [
            ("关键词", &page.hits.keywords),
            ("办事指南事项", &page.hits.services),
            ("办事指南分类", &page.hits.categories),
        ]
        .iter()
        .map(|(title, rows)| top_table(title, rows))
        .collect::<String>(),
        data = script_json(&data),
    );
    layout(account, &body, Some(ACCOUNT_CHARTS))
}

/// A top list (a key and its count), or a line saying there is none.
fn top_table(title: &str, rows: &[(String, i64)]) -> String {
    let mut html = format!("<table><tr><th>{title}</th><th>次数</th></tr>");
    for (key, count) in rows {
        let _ = write!(html, "<tr><td>{}</td><td>{count}</td></tr>", esc(key));
    }
    if rows.is_empty() {
        html.push_str("<tr><td colspan=\"2\" class=\"muted\">暂无命中</td></tr>");
    }
    html.push_str("</table>");
    html
}

/// A response time; "—" (no data) is the caller's, for no ticket at all: a median of 0
/// seconds (tickets closed as they came) is a time.
fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{:.0} 秒", seconds.max(0.0))
    } else if seconds < 3600.0 {
        format!("{:.0} 分钟", seconds / 60.0)
    } else {
        format!("{:.1} 小时", seconds / 3600.0)
    }
}

const ACCOUNT_CHARTS: &str = r#"
const d=JSON.parse(document.getElementById('data').textContent);
const chart=id=>{const c=echarts.init(document.getElementById(id));addEventListener('resize',()=>c.resize());return c;};
chart('followers').setOption({tooltip:{trigger:'axis'},legend:{top:0,data:['新增','取消','净增','粉丝总数']},
 grid:{left:50,right:60,top:50,bottom:30},xAxis:{type:'category',data:d.dates},
 yAxis:[{type:'value',name:'人'},{type:'value',name:'总数',scale:true}],
 series:[{name:'新增',type:'bar',stack:'f',data:d.new,itemStyle:{color:'#2e7d32'}},
 {name:'取消',type:'bar',stack:'f',data:d.lost,itemStyle:{color:'#c62828'}},
 {name:'净增',type:'line',data:d.net,smooth:true},
 {name:'粉丝总数',type:'line',yAxisIndex:1,data:d.total,connectNulls:true}]});
chart('traffic').setOption({tooltip:{trigger:'axis'},legend:{top:0,data:['消息','菜单点击','新工单','办结']},
 grid:{left:50,right:20,top:50,bottom:30},xAxis:{type:'category',data:d.dates},yAxis:{type:'value'},
 series:[{name:'消息',type:'line',data:d.messages},{name:'菜单点击',type:'line',data:d.clicks},
 {name:'新工单',type:'bar',data:d.opened},{name:'办结',type:'bar',data:d.closed}]});
chart('hours').setOption({tooltip:{trigger:'axis'},legend:{top:0,data:['留言','自动回复']},grid:{left:50,right:20,top:40,bottom:30},
 xAxis:{type:'category',data:[...Array(24).keys()].map(h=>h+'时')},yAxis:{type:'value'},
 series:[{name:'留言',type:'bar',data:d.hours,itemStyle:{color:'#6a1b9a'}},
 {name:'自动回复',type:'bar',data:d.autoHours,itemStyle:{color:'#00897b'}}]});
chart('replies').setOption({tooltip:{trigger:'axis'},legend:{top:0,data:['关键词回复','办事指南']},
 grid:{left:50,right:20,top:50,bottom:30},xAxis:{type:'category',data:d.dates},yAxis:{type:'value'},
 series:[{name:'关键词回复',type:'bar',stack:'r',data:d.ruleReplies,itemStyle:{color:'#00897b'}},
 {name:'办事指南',type:'bar',stack:'r',data:d.directoryReplies,itemStyle:{color:'#f9a825'}}]});
chart('reads').setOption({tooltip:{trigger:'axis'},grid:{left:60,right:20,top:30,bottom:30},
 xAxis:{type:'category',data:d.dates},yAxis:{type:'value',name:'阅读'},
 series:[{name:'图文阅读',type:'line',data:d.articleReads,connectNulls:false,areaStyle:{opacity:.15}}]});
chart('compliance').setOption({tooltip:{},grid:{left:110,right:40,bottom:20},
 xAxis:{type:'value',max:100,axisLabel:{formatter:'{value}%'}},yAxis:{type:'category',data:d.departments},
 series:[{type:'bar',data:d.compliance,label:{show:true,position:'right',formatter:'{c}%'},itemStyle:{color:'#1565c0'}}]});
"#;

/// The account's failing datacube pulls: what is missing since when (office time: a
/// failure at 23:10 UTC on the 6th is 07:10 on the 7th in Beijing), and why.
fn pull_failures(failures: &[PullFailure], office: FixedOffset) -> String {
    if failures.is_empty() {
        return String::new();
    }
    let items: Vec<String> = failures
        .iter()
        .map(|f| {
            format!(
                "{api}（数据截至 {last}，自 {since} 起连续失败 {n} 次：{error}）",
                api = esc(&f.api),
                last = f
                    .last_day
                    .map_or_else(|| "无".to_owned(), |d| d.to_string()),
                since = f
                    .first_failed_at
                    .with_timezone(&office)
                    .format("%Y-%m-%d %H:%M"),
                n = f.failures,
                error = esc(&f.error),
            )
        })
        .collect();
    format!(
        "<p class=\"bad\">微信数据接口拉取失败，阅读与 WCI 数据不全，相关月份排名未定：{}</p>",
        items.join("；")
    )
}

/// The monthly WCI ranking and its six-month trend, marked 数据未定 while the month's
/// day-7 figures are still to come or an account's datacube pull is failing.
pub fn ranking(
    month: NaiveDate,
    version: WciVersion,
    ranking: &Ranking,
    trend: &[(NaiveDate, Vec<Ranked>)],
) -> String {
    let list = &ranking.list;
    let month_text = month.format("%Y-%m").to_string();
    // The list's reads are the WCI's: each article's capped at 100,001 (250,000 reads
    // count 100,001), which the column says rather than pass for the real total.
    let mut table = String::from(
        "<table><tr><th>名次</th><th>公众号</th><th>WCI</th><th>文章数</th>\
         <th>阅读数（单篇10万+计为100001）</th></tr>",
    );
    for r in list {
        let flag = if r.figures_incomplete {
            " <span class=\"bad\">数据不全</span>"
        } else {
            ""
        };
        let (wci, articles, reads) = if r.has_index() {
            (
                format!("{:.2}", r.wci),
                r.articles.to_string(),
                r.reads.to_string(),
            )
        } else if r.published_nothing {
            (
                "—".to_owned(),
                "0 <span class=\"bad\">无发文</span>".to_owned(),
                "—".to_owned(),
            )
        } else {
            (
                "—".to_owned(),
                "<span class=\"muted\">待统计</span>".to_owned(),
                "—".to_owned(),
            )
        };
        let _ = write!(
            table,
            "<tr><td>{}</td><td><a href=\"/account/{id}\">{id}</a>{flag}</td><td>{wci}</td><td>{articles}</td><td>{reads}</td></tr>",
            r.rank,
            id = esc(&r.account),
        );
    }
    if list.is_empty() {
        table.push_str("<tr><td colspan=\"5\" class=\"muted\">本月暂无文章数据</td></tr>");
    }
    table.push_str("</table>");
    if list.len() < ranking.listed {
        // A key that reaches some accounts sees their places among all of them.
        let _ = write!(
            table,
            "<p class=\"muted\">名次为全部 {} 个公众号中的名次，其他公众号不在本账号的查看范围内。</p>",
            ranking.listed
        );
    }
    let top: Vec<&Ranked> = list.iter().filter(|r| r.has_index()).take(10).collect();
    let months: Vec<String> = trend
        .iter()
        .map(|(m, _)| m.format("%Y-%m").to_string())
        .collect();
    let series: Vec<serde_json::Value> = top
        .iter()
        .map(|r| {
            let values: Vec<Option<f64>> = trend
                .iter()
                .map(|(_, ranked)| {
                    ranked
                        .iter()
                        .find(|x| x.account == r.account && x.has_index())
                        .map(|x| (x.wci * 100.0).round() / 100.0)
                })
                .collect();
            json!({"name": r.account, "type": "line", "data": values, "connectNulls": true})
        })
        .collect();
    let data = json!({
        "accounts": top.iter().rev().map(|r| r.account.clone()).collect::<Vec<_>>(),
        "wci": top.iter().rev().map(|r| (r.wci * 100.0).round() / 100.0).collect::<Vec<_>>(),
        "months": months,
        "trend": series,
    });
    let options: String = VERSIONS
        .iter()
        .map(|v| {
            format!(
                "<option value=\"{n}\"{s}>{n}</option>",
                n = v.name,
                s = if v.name == version.name {
                    " selected"
                } else {
                    ""
                }
            )
        })
        .collect();
    let mut note = String::new();
    let final_at = crate::domain::reach::final_at_time().format("%H:%M");
    if !ranking.awaiting_pull.is_empty() {
        // Past `final_on` 17:30: naming that time would say the wait is over.
        let accounts: Vec<String> = ranking.awaiting_pull.iter().map(|a| esc(a)).collect();
        let _ = write!(
            note,
            "<p class=\"muted\">数据未定：{} 本月最后一天文章的第 7 天数据尚未从微信数据接口拉取（每小时拉取），拉取后本月数据方告齐全，排名可能变动。</p>",
            accounts.join("、")
        );
    } else if ranking.others_pending {
        // Accounts the viewer may not see are not named.
        note.push_str(
            "<p class=\"muted\">数据未定：其他公众号的第 7 天数据尚未齐全，齐全后名次可能变动。</p>",
        );
    } else if ranking.awaiting_figures {
        let _ = write!(
            note,
            "<p class=\"muted\">数据未定：各文章按发布后第 7 天的数据计分，{} {final_at} 后本月数据方告齐全，排名可能变动。</p>",
            ranking.final_on.format("%Y-%m-%d")
        );
    }
    let incomplete: Vec<String> = list
        .iter()
        .filter(|r| r.pull_failing)
        .map(|r| esc(&r.account))
        .collect();
    for r in list {
        if let Some(began) = r.pull_began {
            let _ = write!(
                note,
                "<p class=\"bad\">数据不全：{} 自 {} 起才接入微信数据接口，本月此前的文章没有第 7 天数据，排名仅供参考。</p>",
                esc(&r.account),
                began.format("%m-%d")
            );
        }
    }
    if !incomplete.is_empty() {
        let _ = write!(
            note,
            "<p class=\"bad\">数据未定：{} 的微信数据接口拉取失败，本月文章数据不全；接口恢复并补齐后排名可能变动。</p>",
            incomplete.join("、")
        );
    }
    let body = format!(
        "<form class=\"inline\" method=\"get\"><label>月份 <input type=\"month\" name=\"month\" value=\"{month_text}\"></label>\
         <label>算法 <select name=\"version\">{options}</select></label><button>查看</button></form>{note}\
         <div class=\"grid\"><div class=\"card\"><h2>{month_text} WCI 排行（前 10）</h2><div id=\"rank\" class=\"chart\"></div></div>\
         <div class=\"card\"><h2>WCI 走势（近 6 个月）</h2><div id=\"trend\" class=\"chart\"></div></div>\
         <div class=\"card wide\"><h2>全部排名</h2>{table}</div></div>\
         <script id=\"data\" type=\"application/json\">{data}</script>",
        data = script_json(&data),
    );
    layout("WCI 排行", &body, Some(RANKING_CHARTS))
}

const RANKING_CHARTS: &str = r#"
const d=JSON.parse(document.getElementById('data').textContent);
const chart=id=>{const c=echarts.init(document.getElementById(id));addEventListener('resize',()=>c.resize());return c;};
chart('rank').setOption({tooltip:{},grid:{left:100,right:50,bottom:20},xAxis:{type:'value'},
 yAxis:{type:'category',data:d.accounts},series:[{type:'bar',data:d.wci,label:{show:true,position:'right'},itemStyle:{color:'#b71c1c'}}]});
chart('trend').setOption({tooltip:{trigger:'axis'},legend:{type:'scroll',top:0},grid:{left:50,right:20,top:50,bottom:30},
 xAxis:{type:'category',data:d.months},yAxis:{type:'value',scale:true},series:d.trend});
"#;

/// What a key cut to its own department is told under the compliance table: its
/// place, or, with no place (no line, or no rate: `yizhang-office@yizhang:viewer` saw an
/// empty table and no word why), that it reads its own department's figures only.
fn departments_note(cut: bool, place: Option<(usize, usize)>) -> Option<String> {
    match (cut, place) {
        (false, _) => None,
        (true, Some((place, listed))) => Some(format!(
            "本部门在 {listed} 个部门中按时响应率排第 {place} 名，其他部门的数据不在本账号的查看范围内。"
        )),
        (true, None) => Some(
            "本账号仅可查看本部门数据：本部门近 30 天暂无已判定的工单，其他部门的数据不在本账号的查看范围内。"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    /// A cut key with no line of its own is told why the table is empty.
    #[test]
    fn a_key_cut_to_its_department_is_told_so_even_without_a_line() {
        assert_eq!(departments_note(false, None), None);
        assert!(
            departments_note(true, None)
                .unwrap()
                .contains("本账号仅可查看本部门数据")
        );
        assert!(
            departments_note(true, Some((2, 5)))
                .unwrap()
                .contains("5 个部门中")
        );
    }

    /// 100% means every ticket: 249 of 250 on time is not shown as all of them.
    #[test]
    fn a_share_short_of_all_never_reads_as_100_percent() {
        assert_eq!(on_time(Some(249.0 / 250.0), 249, 250), "99%（249/250）");
        assert_eq!(on_time(Some(1.0), 250, 250), "100%（250/250）");
        assert_eq!(on_time(Some(29.0 / 100.0), 29, 100), "29%（29/100）");
        assert_eq!(on_time(None, 0, 0), "—");
    }

    /// A median of 0 seconds (tickets closed the moment they came) is a time, not
    /// "no data".
    #[test]
    fn a_response_time_of_seconds_is_shown_not_taken_for_no_data() {
        assert_eq!(duration(0.0), "0 秒");
        assert_eq!(duration(45.0), "45 秒");
        assert_eq!(duration(600.0), "10 分钟");
        assert_eq!(duration(5400.0), "1.5 小时");
    }

    /// On 7 December after 17:30 November waits for anren's pull of 30 November's
    /// articles: the note said the data was complete "after 2026-12-07 17:30", a time
    /// already past; it says what the month waits for.
    #[test]
    fn a_month_past_its_final_day_names_the_pull_it_waits_for_not_a_past_time() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let mut ranking = Ranking {
            list: vec![Ranked {
                rank: 1,
                account: "anren".to_owned(),
                wci: 500.0,
                articles: 2,
                reads: 6_000,
                published_nothing: false,
                figures_incomplete: false,
                pull_failing: false,
                pull_began: None,
            }],
            final_on: day(7),
            awaiting_figures: true,
            awaiting_pull: vec!["anren".to_owned()],
            provisional: true,
            listed: 1,
            others_pending: false,
        };
        let november = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let html = ranking_page_text(november, &ranking);
        assert!(!html.contains("2026-12-07 17:30"), "{html}");
        assert!(
            html.contains("数据未定：anren 本月最后一天文章的第 7 天数据尚未从微信数据接口拉取"),
            "{html}"
        );
        // Before the 7th the calendar is what the month waits for.
        ranking.awaiting_pull.clear();
        let html = ranking_page_text(november, &ranking);
        assert!(
            html.contains("2026-12-07 17:30 后本月数据方告齐全"),
            "{html}"
        );
    }

    fn ranking_page_text(month: NaiveDate, list: &Ranking) -> String {
        ranking(month, crate::domain::wci::V14_2, list, &[])
    }

    fn office() -> FixedOffset {
        FixedOffset::east_opt(8 * 3600).unwrap()
    }

    fn readiness(days_since_update: Option<i64>, update_ok: bool) -> Readiness {
        Readiness {
            last_published_on: None,
            days_since_update,
            update_ok,
            recent_tickets: 0,
            recent_answered: 0,
            recent_auto_replies: 0,
            reply_path: crate::domain::inspection::ReplyPath::default(),
            interaction_ok: true,
            acknowledged_in_time: 1.0,
            acknowledge_judged: 0,
            acknowledged_on_time: 0,
            alarms: Vec::new(),
        }
    }

    fn account_page(pull_failures: Vec<PullFailure>) -> AccountPage {
        AccountPage {
            days: Vec::new(),
            hours: [0; 24],
            hours_since: None,
            auto_hours: [0; 24],
            hits: crate::app::dashboard::Hits::default(),
            departments: vec![crate::app::rollups::DepartmentScore {
                department: "water".to_owned(),
                acknowledge: Some((5400.0, 90_000.0)),
                ..Default::default()
            }],
            department_place: None,
            departments_cut: false,
            readiness: readiness(Some(10), true),
            recent_opened: 0,
            alarms: Vec::new(),
            interaction_days: 7,
            stale_after_days: 10,
            pull_failures,
        }
    }

    /// A pull that began failing at 23:10 UTC on 6 December failed at 07:10 on the
    /// 7th in the office: the page said "自 2026-12-06 23:10 UTC".
    #[test]
    fn a_failing_pull_is_dated_in_office_time() {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let failure = PullFailure {
            account: "chenzhou".to_owned(),
            api: "getarticletotal".to_owned(),
            error: "40001 invalid credential".to_owned(),
            first_failed_at: at("2026-12-06T23:10:00Z"),
            last_failed_at: at("2026-12-07T01:10:00Z"),
            failures: 3,
            last_day: NaiveDate::from_ymd_opt(2026, 12, 5),
        };
        let html = account("chenzhou", 30, &account_page(vec![failure]), office());
        assert!(
            html.contains("自 2026-12-07 07:10 起连续失败 3 次"),
            "{html}"
        );
        assert!(!html.contains("UTC"), "{html}");
    }

    /// Ten days after the last update the alarm's limit is reached, not the national
    /// veto (no update within two weeks): the pages said 超期 from day 10.
    #[test]
    fn the_update_gap_warns_from_the_alarms_limit_and_fails_at_the_veto() {
        let html = account("chenzhou", 30, &account_page(Vec::new()), office());
        assert!(
            html.contains("更新 <span class=\"warn\">预警</span>"),
            "{html}"
        );
        let line = |days: i64, ok: bool| AccountLine {
            account: format!("a{days}"),
            readiness: readiness(Some(days), ok),
        };
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let lines = [line(9, true), line(10, true), line(14, false)];
        let html = overview(today, &lines, &[], false, 10);
        let cells = |days: i64| {
            let start = html.find(&format!(">a{days}</a>")).unwrap();
            html[start..start + html[start..].find("</tr>").unwrap()].to_owned()
        };
        assert!(
            cells(9).contains("<span class=\"ok\">正常</span>"),
            "{html}"
        );
        assert!(
            cells(10).contains("<span class=\"warn\">预警</span>"),
            "{html}"
        );
        assert!(
            cells(14).contains("<span class=\"bad\">超期</span>"),
            "{html}"
        );
    }

    /// Response times are wall-clock, the deadlines office hours: the columns say so.
    #[test]
    fn response_times_are_labelled_wall_clock() {
        let html = account("chenzhou", 30, &account_page(Vec::new()), office());
        assert!(
            html.contains("<th>响应中位数（自然时长）</th><th>P90（自然时长）</th>"),
            "{html}"
        );
        assert!(
            html.contains("<td>1.5 小时</td><td>25.0 小时</td>"),
            "{html}"
        );
    }

    /// The list's reads are capped per article at 100,001 (as the WCI counts them): an
    /// article of 250,000 reads showed 100001 under a bare 阅读数.
    #[test]
    fn the_rankings_reads_column_says_they_are_capped() {
        let ranking = Ranking {
            list: vec![Ranked {
                rank: 1,
                account: "anren".to_owned(),
                wci: 900.0,
                articles: 1,
                reads: 100_001,
                published_nothing: false,
                figures_incomplete: false,
                pull_failing: false,
                pull_began: None,
            }],
            final_on: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
            awaiting_figures: false,
            awaiting_pull: Vec::new(),
            provisional: false,
            listed: 1,
            others_pending: false,
        };
        let html = ranking_page_text(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(), &ranking);
        assert!(
            html.contains("<th>阅读数（单篇10万+计为100001）</th>"),
            "{html}"
        );
        assert!(html.contains("<td>100001</td>"), "{html}");
    }

    #[test]
    fn text_from_the_database_is_escaped() {
        assert_eq!(
            esc("<b>\"x\"&'y'"),
            "&lt;b&gt;&quot;x&quot;&amp;&#39;y&#39;"
        );
        let json = script_json(&json!({"t": "</script><script>"}));
        assert!(!json.contains("</script>"), "{json}");
    }

    #[test]
    fn many_alarms_of_one_account_and_rule_take_one_row_and_leave_room_for_the_rest() {
        let alarm = |account: &str, rule: &str, subject: String| AlarmRow {
            account: account.to_owned(),
            rule: rule.to_owned(),
            subject,
            day: NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
            detail: "工单两次超期仍未办结".to_owned(),
            raised_at: Utc::now(),
        };
        let mut alarms: Vec<AlarmRow> = (0..300)
            .map(|n| alarm("anren", "escalated_twice", format!("t{n:03}")))
            .collect();
        alarms.push(alarm("yizhang", "no_update", String::new()));
        let html = alarms_table(&alarms);
        assert_eq!(html.matches("<tr><td>").count(), 2, "{html}");
        assert!(html.contains("（同类共 300 条）"), "{html}");
        assert!(
            html.contains("yizhang"),
            "the other account's alarm is shown"
        );
    }
}
