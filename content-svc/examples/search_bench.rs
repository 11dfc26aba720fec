//! Search benchmark (issue 11's target: p99 ≤ 30 ms over 100,000 articles and 2,000
//! services, under 50 concurrent queries).
//!
//! A fresh database is filled through content-svc's own code: 2,000 directory
//! services generated from the 临城市 seed (one per district and service point) go
//! through the seed loader (`CONTENT_DIRECTORY_FILE`, so each is written and indexed
//! as a directory change is), and 100,000 generated articles are segmented as
//! `app::search::index_article` does (title as title, digest as keywords, body text
//! as body) and bulk-inserted with `store::search::insert_many` (the same
//! `tsvector` expression as a publication's upsert). Every document is on one
//! account, the worst case for a query. Then 50 tasks send `Search` over gRPC for
//! a fixed time with a mix of citizens' queries (all kinds, services only, articles
//! only, one category), and the latencies are reported.
//!
//! ```sh
//! cargo run -p content-svc --release --example search_bench
//! SEARCH_BENCH_SECONDS=30 SEARCH_BENCH_ARTICLES=100000 SEARCH_BENCH_CONCURRENCY=50 …
//! ```
//! Needs PostgreSQL and NATS as the tests do (`TEST_DATABASE_URL`, `NATS_URL`).
//! `SEARCH_BENCH_KEEP=1` keeps the filled database (its URL is printed) and
//! `SEARCH_BENCH_REUSE=URL` runs the queries against one kept earlier, for trying a
//! change of the query without filling again. `SEARCH_BENCH_INDEX=database` answers
//! every search from PostgreSQL instead of the replica's index in memory.
// A benchmark reports on standard output.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use content_svc::domain::article::strip_html;
use content_svc::domain::search::{SearchQuery, Segmenter};
use content_svc::store::search::{IndexDoc, SearchFilter, insert_many, search_sql};
use content_svc::{Application, Config};
use platform::testing::{TestDb, TestNats, service_env};
use proto::content::v1 as pb;
use proto::content::v1::content_service_client::ContentServiceClient;
use tonic::transport::Channel;

const ACCOUNT: &str = "lincheng";
const KEY: &str = "bench-admin-key-0001";
const SEED: &str = include_str!("../seed/lincheng-directory.tsv");

const DISTRICTS: [&str; 12] = [
    "临江区",
    "城东区",
    "城西区",
    "高新区",
    "经开区",
    "北湖区",
    "南岭县",
    "青山县",
    "石门县",
    "桃源镇",
    "白沙镇",
    "东港街道",
];
/// What city articles are about (each also a plausible query).
const TOPICS: [&str; 48] = [
    "城乡居民医保参保缴费",
    "社保卡补办",
    "住房公积金提取",
    "异地就医备案",
    "养老金调整",
    "失业保险金申领",
    "交通违法处理",
    "机动车年检",
    "驾驶证换证",
    "公交线路调整",
    "地铁运营时间",
    "户口迁移",
    "新生儿落户",
    "居住证办理",
    "出入境证件办理",
    "结婚登记",
    "婚姻登记预约",
    "低保申请",
    "残疾人补贴",
    "高龄津贴发放",
    "义务教育招生",
    "学区划分",
    "中考报名",
    "职业技能培训",
    "就业招聘会",
    "创业担保贷款",
    "营业执照办理",
    "个体户登记",
    "个人所得税汇算",
    "不动产登记",
    "房屋租赁备案",
    "保障性住房申请",
    "停水通知",
    "停电检修",
    "燃气安全检查",
    "暴雨预警",
    "高温天气提示",
    "疫苗接种",
    "家庭医生签约",
    "医院预约挂号",
    "法律援助申请",
    "消费者投诉",
    "食品安全抽检",
    "文化惠民演出",
    "景区门票优惠",
    "垃圾分类",
    "老旧小区改造",
    "12345热线办理情况",
];
const TITLE_FORMS: [&str; 6] = [
    "关于{}的通知",
    "{}工作安排",
    "{}政策解读",
    "{}办事指南",
    "关于做好{}工作的公告",
    "{}常见问题解答",
];
const SENTENCES: [&str; 12] = [
    "为进一步做好{}工作，方便群众办事，现将有关事项通知如下。",
    "市民可通过“临城政务”公众号、政务服务网或各{}窗口办理{}。",
    "办理时请携带本人有效身份证件原件及复印件，委托他人办理的还需提供委托书。",
    "{}实行“一网通办”，材料齐全的当场受理，{}个工作日内办结。",
    "如有疑问，请拨打12345政务服务便民热线或咨询所在{}。",
    "请广大市民相互转告，合理安排时间，避免集中办理造成排队等候。",
    "{}期间，{}将安排专人值守，做好咨询引导和服务保障。",
    "各单位要高度重视{}工作，压实责任，确保各项措施落实到位。",
    "本通知自发布之日起施行，由市{}负责解释。",
    "符合条件的群众可在线提交申请，审核通过后{}结果将以短信方式告知。",
    "近期发现有不法分子冒充工作人员以{}为名实施诈骗，请提高警惕。",
    "详细信息请关注临城发布，或登录市人民政府门户网站查看{}。",
];
/// Citizens' queries: the directory's services, articles' topics, a few loose words.
const QUERIES: [&str; 32] = [
    "社保卡补办",
    "社保卡丢了怎么补办",
    "公积金怎么提取",
    "公积金提取",
    "医保报销",
    "医疗保险报销",
    "异地就医",
    "养老金",
    "失业金怎么领",
    "交通违法查询",
    "违章处理",
    "驾驶证到期换证",
    "户口迁移",
    "新生儿落户需要什么材料",
    "居住证",
    "结婚登记预约",
    "低保申请条件",
    "营业执照",
    "个税汇算",
    "不动产登记",
    "停水",
    "停电通知",
    "暴雨",
    "疫苗接种",
    "预约挂号",
    "法律援助",
    "消费投诉",
    "垃圾分类",
    "学区",
    "招聘会",
    "12345",
    "通知",
];

/// A tiny deterministic generator (no dependency, the same data on every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn fill(template: &str, rng: &mut Rng) -> String {
    let mut out = String::new();
    let mut parts = template.split("{}").peekable();
    while let Some(part) = parts.next() {
        out.push_str(part);
        if parts.peek().is_some() {
            out.push_str(rng.pick::<&str>(&TOPICS));
        }
    }
    out
}

/// 2,000 services: each seed service once per district and service point.
fn services_seed(count: usize) -> String {
    let lines: Vec<&str> = SEED
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let mut out = String::new();
    for i in 0..count {
        let mut cols: Vec<String> = lines[i % lines.len()]
            .split('\t')
            .map(str::to_owned)
            .collect();
        let round = i / lines.len();
        cols[2] = format!(
            "{}（{}第{}服务点）",
            cols[2],
            DISTRICTS[round % DISTRICTS.len()],
            round / DISTRICTS.len() + 1
        );
        out.push_str(&cols.join("\t"));
        out.push('\n');
    }
    out
}

struct Article {
    title: String,
    digest: String,
    body: String,
}

fn article(rng: &mut Rng) -> Article {
    let topic = *rng.pick(&TOPICS);
    let title = format!(
        "{}{}",
        rng.pick(&DISTRICTS),
        rng.pick(&TITLE_FORMS).replace("{}", topic)
    );
    let mut body = String::new();
    let sentences = 8 + (rng.next() % 10) as usize;
    let mut digest = String::new();
    for i in 0..sentences {
        let mut sentence = fill(rng.pick::<&str>(&SENTENCES), rng);
        if i == 0 {
            sentence = format!("{topic}：{sentence}");
            digest = sentence.chars().take(60).collect();
        }
        body.push_str(&format!("<p>{sentence}</p>"));
    }
    Article {
        title: title.chars().take(32).collect(),
        digest,
        body,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let articles = env_usize("SEARCH_BENCH_ARTICLES", 100_000);
    let services = env_usize("SEARCH_BENCH_SERVICES", 2_000);
    let concurrency = env_usize("SEARCH_BENCH_CONCURRENCY", 50);
    let seconds = env_usize("SEARCH_BENCH_SECONDS", 20) as u64;

    // `memory` (the default, as deployed) or `database` (every search read from
    // PostgreSQL), to compare the two on the same data.
    let in_memory = match std::env::var("SEARCH_BENCH_INDEX").as_deref() {
        Ok("database") => "false",
        Ok("memory") | Err(_) => "true",
        Ok(other) => anyhow::bail!("SEARCH_BENCH_INDEX={other}: expected memory or database"),
    };
    println!(
        "searches answered from {}",
        if in_memory == "true" {
            "memory"
        } else {
            "the database"
        }
    );
    let test_db = TestDb::new("content_search_bench");
    let test_nats = TestNats::new();
    let seed_path = std::env::temp_dir().join(format!("search-bench-{}.tsv", std::process::id()));
    std::fs::write(&seed_path, services_seed(services))?;
    let keys = format!("bench:admin:{KEY}");
    let pool = concurrency.to_string();
    let mut env = service_env(
        &test_db,
        &test_nats,
        [
            ("API_KEYS", keys.as_str()),
            (
                "CONTENT_DIRECTORY_FILE",
                seed_path.to_str().unwrap_or_default(),
            ),
            ("HALL_ADDR", "127.0.0.1:0"),
            // A connection per concurrent query, as a replica sized for the load has.
            ("DATABASE_MAX_CONNECTIONS", pool.as_str()),
            ("CONTENT_SEARCH_IN_MEMORY", in_memory),
        ],
    );
    let reuse = std::env::var("SEARCH_BENCH_REUSE").ok();
    let db_url = reuse.clone().unwrap_or_else(|| test_db.url());
    if reuse.is_some() {
        env = env.with("DATABASE_URL", db_url.as_str());
    }
    let started = Instant::now();
    // Builds the schema and loads the 2,000 services through the seed loader (and,
    // reusing a filled database, loads the index in memory).
    let app = Application::build(Config::from_env(&env)?).await?;
    println!(
        "{services} services seeded and indexed (or a filled database opened) in {:.1} s; \
         this process's RSS {} MiB",
        started.elapsed().as_secs_f64(),
        rss_mib()
    );
    let db = sqlx::PgPool::connect(&db_url).await?;
    let app = if reuse.is_none() {
        fill_articles(&db, articles).await?;
        // Started again on the filled database, as a replica is: its index in memory
        // is loaded before it serves.
        drop(app);
        let started = Instant::now();
        let app = Application::build(Config::from_env(&env)?).await?;
        println!(
            "started again on the filled database in {:.1} s; this process's RSS {} MiB",
            started.elapsed().as_secs_f64(),
            rss_mib()
        );
        app
    } else {
        app
    };
    let _ = std::fs::remove_file(&seed_path);
    if std::env::var_os("SEARCH_BENCH_KEEP").is_some() {
        println!("kept: SEARCH_BENCH_REUSE={db_url}");
        std::mem::forget(test_db);
    }
    explain(&db).await?;
    run_queries(app, concurrency, seconds).await?;
    db.close().await;
    Ok(())
}

/// This process's resident memory (the service and the benchmark's clients).
fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// The plan and timing of a few queries alone (no concurrency), for the docs: each
/// stage the service may run (all words; a word jieba kept whole by its sub-words;
/// any word), for all kinds and services only. `SEARCH_BENCH_PLANS=1` prints the
/// whole plans.
async fn explain(db: &sqlx::PgPool) -> anyhow::Result<()> {
    let words = content_svc::store::services::dictionary_words(db).await?;
    let segmenter = Segmenter::new(words.iter().map(String::as_str));
    let plans = std::env::var_os("SEARCH_BENCH_PLANS").is_some();
    for query in [
        "社保卡补办",
        "通知",
        "停水",
        "社保卡丢了怎么补办",
        "停电通知",
    ] {
        let parsed = SearchQuery::parse(&segmenter, query)?;
        let mut stages = vec![("all words", parsed.tsquery_all())];
        if let Some(split) = parsed.tsquery_split() {
            stages.push(("sub-words", split));
        }
        stages.push(("any word", parsed.tsquery_any()));
        for (label, matching) in &stages {
            for kind in [None, Some("service")] {
                let filter = SearchFilter {
                    account: ACCOUNT,
                    kind,
                    category: None,
                    limit: 10,
                };
                let plan: Vec<String> = sqlx::query_scalar(&format!(
                    "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {}",
                    search_sql(&filter)
                ))
                // Planned with its values, as the service's statement is.
                .persistent(false)
                .bind(matching)
                .bind(ACCOUNT)
                .bind(None::<String>)
                .bind(10i64)
                .fetch_all(db)
                .await?;
                let time = plan
                    .iter()
                    .find(|l| l.starts_with("Execution Time"))
                    .map_or("", String::as_str);
                let buffers = plan
                    .iter()
                    .find(|l| l.trim_start().starts_with("Buffers"))
                    .map_or("", |l| l.trim());
                let kinds = kind.unwrap_or("all kinds");
                println!("{query} — {label}, {kinds} ({matching}): {time}; {buffers}");
                if plans {
                    for line in &plan {
                        println!("    {line}");
                    }
                }
            }
        }
    }
    Ok(())
}

async fn fill_articles(db: &sqlx::PgPool, articles: usize) -> anyhow::Result<()> {
    let words = content_svc::store::services::dictionary_words(db).await?;
    let segmenter = Segmenter::new(words.iter().map(String::as_str));

    let started = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let generated: Vec<Article> = (0..articles).map(|_| article(&mut rng)).collect();
    // Segmentation is CPU-bound: split it over the cores.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = generated.len().div_ceil(workers).max(1);
    let segmented: Vec<Vec<(String, String, String)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = generated
            .chunks(chunk)
            .map(|part| {
                let segmenter = segmenter.clone();
                scope.spawn(move || {
                    part.iter()
                        .map(|a| {
                            (
                                segmenter.indexable(&a.title),
                                segmenter.indexable(&a.digest),
                                segmenter.indexable(&strip_html(&a.body)),
                            )
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("segmenting thread"))
            .collect()
    });
    let segmented: Vec<(String, String, String)> = segmented.into_iter().flatten().collect();
    println!(
        "{articles} articles generated and segmented in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let urls: Vec<String> = (0..articles)
        .map(|i| format!("https://mp.weixin.qq.com/s/bench{i}"))
        .collect();
    for (batch, (articles, words)) in generated
        .chunks(5_000)
        .zip(segmented.chunks(5_000))
        .enumerate()
    {
        let docs: Vec<IndexDoc<'_>> = articles
            .iter()
            .zip(words)
            .enumerate()
            .map(|(i, (a, (title, digest, body)))| IndexDoc {
                kind: "article",
                ref_id: uuid::Uuid::now_v7(),
                accounts: vec![ACCOUNT.to_owned()],
                category: "",
                title: &a.title,
                summary: &a.digest,
                url: &urls[batch * 5_000 + i],
                enabled: true,
                title_words: title.clone(),
                keyword_words: digest.clone(),
                body_words: body.clone(),
            })
            .collect();
        let mut tx = db.begin().await?;
        insert_many(&mut tx, &docs).await?;
        tx.commit().await?;
    }
    for table in ["search_documents", "search_headlines"] {
        sqlx::query(&format!("VACUUM ANALYZE {table}"))
            .execute(db)
            .await?;
    }
    let (rows, size, headlines, headline_size): (i64, String, i64, String) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM search_documents),
                pg_size_pretty(pg_total_relation_size('search_documents')),
                (SELECT count(*) FROM search_headlines),
                pg_size_pretty(pg_total_relation_size('search_headlines'))",
    )
    .fetch_one(db)
    .await?;
    println!(
        "{rows} documents indexed ({size} with indexes; search_headlines {headlines} rows, \
         {headline_size}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    Ok(())
}

async fn run_queries(app: Application, concurrency: usize, seconds: u64) -> anyhow::Result<()> {
    let port = app.grpc_port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(
            Channel::from_shared(format!("http://127.0.0.1:{port}"))?
                .connect()
                .await?,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let mut client = ContentServiceClient::new(channels[worker % channels.len()].clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xA076_1D64_78BD_642F ^ ((worker as u64 + 1) * 0x9E37));
            let mut latencies = Vec::new();
            let mut by_query: Vec<(&'static str, &'static str, Duration)> = Vec::new();
            let mut empty = 0usize;
            let mut failed: Vec<tonic::Status> = Vec::new();
            while Instant::now() < deadline {
                let query = *rng.pick(&QUERIES);
                // The mix: 60 % everything, 25 % services only (the reply path),
                // 10 % articles only, 5 % one category.
                let roll = rng.next() % 100;
                let (kind, category, mix) = match roll {
                    0..60 => (pb::SearchKind::Unspecified, "", "all kinds"),
                    60..85 => (pb::SearchKind::Service, "", "services"),
                    85..95 => (pb::SearchKind::Article, "", "articles"),
                    _ => (pb::SearchKind::Unspecified, "social_security", "category"),
                };
                let mut request = tonic::Request::new(pb::SearchRequest {
                    account: ACCOUNT.into(),
                    query: query.into(),
                    kind: kind as i32,
                    category: category.into(),
                    limit: 10,
                });
                request.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {KEY}").parse().expect("ascii"),
                );
                let sent = Instant::now();
                match client.search(request).await {
                    Ok(reply) => {
                        latencies.push(sent.elapsed());
                        by_query.push((query, mix, sent.elapsed()));
                        if reply.into_inner().hits.is_empty() {
                            empty += 1;
                        }
                    }
                    Err(status) => failed.push(status),
                }
            }
            (latencies, by_query, empty, failed)
        }));
    }
    let mut latencies = Vec::new();
    let mut by_query = Vec::new();
    let mut empty = 0;
    let mut failed = Vec::new();
    for task in tasks {
        let (l, q, e, f) = task.await?;
        latencies.extend(l);
        by_query.extend(q);
        empty += e;
        failed.extend(f);
    }
    if let Some(first) = failed.first() {
        println!("{} queries failed; the first: {first:?}", failed.len());
    }
    if latencies.is_empty() {
        anyhow::bail!("no query succeeded");
    }
    latencies.sort();
    let n = latencies.len();
    println!(
        "{concurrency} concurrent query loops for {seconds} s: {n} queries, {:.0} queries/s, \
         p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({empty} without a hit)",
        n as f64 / seconds as f64,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.90).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    // Where the time goes: the query shapes slowest on average.
    let mut shapes: std::collections::BTreeMap<(&str, &str), Vec<Duration>> = Default::default();
    for (query, mix, took) in by_query {
        shapes.entry((query, mix)).or_default().push(took);
    }
    let mut shapes: Vec<_> = shapes
        .into_iter()
        .map(|(shape, took)| {
            (
                shape,
                took.iter().sum::<Duration>() / took.len() as u32,
                took.len(),
            )
        })
        .collect();
    shapes.sort_by_key(|(_, mean, _)| std::cmp::Reverse(*mean));
    for ((query, mix), mean, n) in shapes.iter().take(8) {
        println!(
            "    slowest: {query} ({mix}): mean {:.1} ms over {n}",
            mean.as_secs_f64() * 1e3
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
