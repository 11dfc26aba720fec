//! The service hall (办事大厅) on content-svc's own HTTP port, with 临城's seeded
//! directory: served HTML, a search on the page, and the page in headless Chromium
//! at a phone's 375 px width. Screenshots are kept under `target/tmp/content-hall/`.

use std::path::PathBuf;

use platform::testing::TestNats;

use crate::helpers::{TestApp, spawn_app_with};

async fn seeded() -> (TestApp, String) {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/seed/lincheng-directory.tsv");
    let app = spawn_app_with(TestNats::new(), &[("CONTENT_DIRECTORY_FILE", seed)]).await;
    let base = format!("http://127.0.0.1:{}", app.hall_port);
    (app, base)
}

async fn get(url: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let response = reqwest::get(url).await.expect("hall answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap(), headers)
}

#[tokio::test]
async fn the_hall_lists_every_category_with_its_services_and_searches_them() {
    let (app, base) = seeded().await;
    let (status, html, headers) = get(&format!("{base}/hall/lincheng")).await;
    assert_eq!(status, 200);
    assert!(html.contains("<meta name=\"viewport\""));
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'"),
        "no script, nothing from elsewhere"
    );
    assert!(!html.contains("<script"));
    // Every category with a service, in the categories' display order (医保 10,
    // 社保 20, 公积金 30), each service with its fields.
    let medical = html
        .find("id=\"c-medical_insurance\"")
        .expect("医保 listed");
    let social = html.find("id=\"c-social_security\"").expect("社保 listed");
    let fund = html.find("id=\"c-housing_fund\"").expect("公积金 listed");
    assert!(medical < social && social < fund);
    let filled: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT category) FROM directory_entries
          WHERE enabled AND (account = 'lincheng' OR 'lincheng' = ANY (also_shown_on))",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(filled >= 20);
    let sections = html.matches("<section id=\"c-").count();
    assert_eq!(sections as i64, filled, "every category holding a service");
    let card = &html[social..fund];
    for part in ["社保卡补办", "办理方式", "办公时间", "咨询电话", "在线办理"]
    {
        assert!(card.contains(part), "{part} missing from {card}");
    }
    // A service shared with another account shows on its hall too.
    let (status, shared, _) = get(&format!("{base}/hall/lincheng_gov")).await;
    assert_eq!(status, 200);
    assert!(shared.contains("<article id=\"s-"));
    // An account with neither services nor credentials has no hall.
    let (status, missing, _) = get(&format!("{base}/hall/nowhere")).await;
    assert_eq!(status, 404);
    assert!(missing.contains("没有这个办事大厅"));

    // The search box's GET: the 社保卡 service first, its words highlighted.
    let (status, found, _) = get(&format!("{base}/hall/lincheng?q=社保卡补办")).await;
    assert_eq!(status, 200);
    let results = &found[found.find("class=\"results\"").expect("results")..];
    let first = results.find("class=\"hit\"").expect("a hit");
    assert!(
        results[first..].starts_with("class=\"hit\"><h3><a href=\"#s-"),
        "a service links to its card"
    );
    let title_end = results[first..].find("</a>").unwrap();
    assert!(results[first..first + title_end].contains("社保卡补办"));
    assert!(results.contains("<em>"), "matched words highlighted");
    // A query with nothing to search is answered in a sentence.
    let (status, blank, _) = get(&format!("{base}/hall/lincheng?q=%EF%BC%81%EF%BC%9F")).await;
    assert_eq!(status, 200);
    assert!(blank.contains("请输入文字或数字"));
    app.stop().await;
}

#[tokio::test]
async fn the_hall_renders_in_chromium_at_375_px_with_chinese_text() {
    let (app, base) = seeded().await;
    let dir = artefacts();
    // What Chromium rendered from the live page (a search, as the form submits it).
    let dom = chromium(vec![
        "--dump-dom".to_owned(),
        format!("{base}/hall/lincheng?q=%E5%85%AC%E7%A7%AF%E9%87%91%E6%8F%90%E5%8F%96"),
    ])
    .await;
    assert!(dom.contains("办事大厅") && dom.contains("公积金提取"));
    let results = &dom[dom.find("class=\"results\"").expect("results rendered")..];
    let first = &results[..results.find("</article>").expect("a hit")];
    assert!(first.contains(">公积金提取</a>"), "{results}");
    assert!(first.contains("<em>提取</em>"), "highlighted: {results}");

    // Headless Chromium lays a window out at 500 px at least, so the phone is an
    // iframe of 375 px (a frame is its page's viewport, media queries included).
    // The frames hold copies of the served pages (self-contained: the CSS is inline)
    // so the file parent may measure them; the live page's origin may not be read.
    for (name, path) in [
        ("hall", "/hall/lincheng"),
        (
            "hall-search",
            "/hall/lincheng?q=%E7%A4%BE%E4%BF%9D%E5%8D%A1",
        ),
    ] {
        let (status, html, _) = get(&format!("{base}{path}")).await;
        assert_eq!(status, 200);
        std::fs::write(dir.join(format!("{name}.html")), html).unwrap();
        let frame = dir.join(format!("{name}-375.html"));
        std::fs::write(&frame, phone_frame(&format!("{name}.html"))).unwrap();
        let shot = dir.join(format!("{name}-375.png"));
        let _ = std::fs::remove_file(&shot);
        chromium(vec![
            "--allow-file-access-from-files".to_owned(),
            "--window-size=500,1600".to_owned(),
            format!("--screenshot={}", shot.display()),
            format!("file://{}", frame.display()),
        ])
        .await;
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 30_000, "{name}: screenshot of {size} bytes");
        // Nothing is wider than the phone.
        let dom = chromium(vec![
            "--allow-file-access-from-files".to_owned(),
            "--dump-dom".to_owned(),
            format!("file://{}", frame.display()),
        ])
        .await;
        let measured = dom
            .split("<div id=\"o\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .expect("measured");
        assert_eq!(measured, "width 375 of 375", "{name} overflows a phone");
    }
    app.stop().await;
}

/// A page holding `src` in a 375 px wide frame on a grey background, writing the
/// frame's content width into `#o` once it has loaded.
fn phone_frame(src: &str) -> String {
    format!(
        "<!doctype html><html><body style=\"margin:0;background:#888\">\
         <iframe id=\"f\" src=\"{src}\" style=\"display:block;width:375px;height:1600px;border:0;background:#fff\">\
         </iframe><div id=\"o\"></div><script>f.onload=()=>{{const d=f.contentDocument.documentElement;\
         o.textContent='width '+d.scrollWidth+' of '+d.clientWidth}}</script></body></html>"
    )
}

fn artefacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("content-hall");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium (Debian's `chromium`) with `args` and returns its stdout.
async fn chromium(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let profile = tempdir();
        let output = std::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(&args)
            .output()
            .expect("chromium runs (apt-get install chromium fonts-noto-cjk)");
        let _ = std::fs::remove_dir_all(&profile);
        assert!(output.status.success(), "chromium failed: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    })
    .await
    .unwrap()
}

/// A fresh Chromium profile, so parallel runs do not share one.
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("content-hall-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_hall_search_finds_full_width_digits_as_half_width_ones() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/seed/lincheng-directory.tsv");
    let app = crate::helpers::spawn_app_with(
        platform::testing::TestNats::new(),
        &[("CONTENT_DIRECTORY_FILE", seed)],
    )
    .await;
    let base = format!("http://127.0.0.1:{}/hall/lincheng", app.hall_port);
    let client = reqwest::Client::new();
    let mut hits = Vec::new();
    // A citizen's input method may type the hotline's number full-width.
    for query in ["12345", "１２３４５"] {
        let html = client
            .get(&base)
            .query(&[("q", query)])
            .send()
            .await
            .expect("hall answers")
            .text()
            .await
            .expect("page");
        hits.push(html.matches("<article class=\"hit\"").count());
    }
    assert!(hits[0] > 0, "12345 finds the hotline's services");
    assert_eq!(hits[1], hits[0], "１２３４５ finds what 12345 finds");
    app.stop().await;
}

#[tokio::test]
async fn only_a_page_is_cached_and_an_error_page_is_not() {
    let (app, base) = seeded().await;
    let (status, _, headers) = get(&format!("{base}/hall/lincheng")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "public, max-age=60");
    let (status, _, headers) = get(&format!("{base}/hall/nowhere")).await;
    assert_eq!(status, 404);
    assert_eq!(headers["cache-control"], "no-store");
    app.stop().await;
}

#[tokio::test]
async fn the_hall_search_shows_services_before_articles() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/seed/lincheng-directory.tsv");
    let app = spawn_app_with(
        TestNats::new(),
        &[
            ("CONTENT_DIRECTORY_FILE", seed),
            ("CONTENT_SEARCH_IN_MEMORY", "false"),
        ],
    )
    .await;
    // 20 articles with 养老金 in the title; the service has it only in its keywords.
    let titles: Vec<String> = (0..20).map(|n| format!("养老金调整通知第{n}期")).collect();
    let docs: Vec<(&str, &str, &str)> = titles.iter().map(|t| (t.as_str(), "", "")).collect();
    crate::search::index_articles_on(&app, "lincheng", &docs).await;
    let html = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/hall/lincheng", app.hall_port))
        .query(&[("q", "养老金")])
        .send()
        .await
        .expect("hall answers")
        .text()
        .await
        .expect("page");
    let hits: Vec<&str> = html.split("<article class=\"hit\"").skip(1).collect();
    assert!(
        hits.first()
            .is_some_and(|first| first.contains("养老保险待遇领取")),
        "the service comes first: {} hits, the first: {:?}",
        hits.len(),
        hits.first()
            .map(|h| h.chars().take(120).collect::<String>())
    );
    app.stop().await;
}

#[tokio::test]
async fn an_article_holding_every_word_is_not_hidden_by_services_holding_one() {
    use crate::helpers::{ADMIN_KEY, authed};
    use proto::content::v1 as pb;

    let app = crate::helpers::spawn_app().await;
    let mut client = app.client.clone();
    // Twenty services, the hall's page, each holding one word of the query (办理).
    for n in 0..20 {
        client
            .create_service(authed(
                pb::Service {
                    account: "chenzhou".into(),
                    category: "social_security".into(),
                    name: format!("窗口服务第{n}项"),
                    description: "便民服务".into(),
                    how_to_apply: "携带身份证到服务窗口办理".into(),
                    url: "https://hrss.example.gov.cn/".into(),
                    enabled: true,
                    ..pb::Service::default()
                },
                ADMIN_KEY,
            ))
            .await
            .expect("created");
    }
    crate::search::index_articles_on(&app, "chenzhou", &[("居住证办理须知", "", "请携带材料")])
        .await;
    let html = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/hall/chenzhou", app.hall_port))
        .query(&[("q", "居住证办理须知")])
        .send()
        .await
        .expect("hall answers")
        .text()
        .await
        .expect("page");
    let hits: Vec<&str> = html.split("<article class=\"hit\"").skip(1).collect();
    assert!(
        hits.first()
            .is_some_and(|first| first.contains("居住证办理须知")),
        "the article holding every word comes first: {} hits, the first: {:?}",
        hits.len(),
        hits.first()
            .map(|h| h.chars().take(120).collect::<String>())
    );
    assert_eq!(hits.len(), 20, "the rest of the page: the services");
    app.stop().await;
}
