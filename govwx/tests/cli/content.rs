//! The content commands against a real content-svc: a directory seed file imported
//! (again: unchanged; a bad line: one line naming it), searched in Chinese, a
//! file checked against the lexicon, and a lexicon file refused whole.

use crate::helpers::{DEV_ADMIN_KEY, EDITOR_KEY, REVIEWER_KEY, Stack};

const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../content-svc/seed/lincheng-directory.tsv"
);

fn service_lines() -> usize {
    std::fs::read_to_string(SEED)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count()
}

#[tokio::test]
async fn a_seed_file_is_imported_then_searched_in_chinese() {
    let stack = Stack::with_content().await;
    let n = service_lines();

    let dry = stack
        .json(DEV_ADMIN_KEY, &["directory", "import", SEED, "--dry-run"])
        .await;
    assert_eq!(dry["created"], n);
    let imported = stack
        .ok(DEV_ADMIN_KEY, &["directory", "import", SEED])
        .await;
    assert!(
        imported.ends_with(&format!("{n} created, 0 updated, 0 unchanged\n")),
        "{imported}"
    );
    assert!(imported.contains("社保卡补办"), "{imported}");
    let again = stack
        .ok(DEV_ADMIN_KEY, &["directory", "import", SEED])
        .await;
    assert_eq!(again, format!("0 created, 0 updated, {n} unchanged\n"));

    // A bad line: one line naming it, exit 5, nothing written.
    let dir = tempdir();
    let bad = dir.join("bad.tsv");
    let mut text = std::fs::read_to_string(SEED).unwrap();
    text.push_str(
        "lincheng\tplumbing\t管道疏通\t临城市水务局\t\t\thttps://x.example.cn\t\t\t\t\t\t\tyes\n",
    );
    std::fs::write(&bad, &text).unwrap();
    let last = text.lines().count();
    let run = stack
        .run(
            DEV_ADMIN_KEY,
            &["directory", "import", bad.to_str().unwrap()],
        )
        .await;
    assert_eq!(run.code, 5, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "govwx: INVALID_ARGUMENT: seed line {last}: category plumbing is not a directory \
             category (see ListCategories)\n"
        )
    );
    // Another department's services: refused with the role and line.
    let run = stack.run(EDITOR_KEY, &["directory", "import", SEED]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.contains("seed line"), "{run:?}");

    // Search: the best hit first, the matched words marked in the snippet.
    let found = stack
        .ok(
            DEV_ADMIN_KEY,
            &["search", "社保卡补办", "--account", "lincheng"],
        )
        .await;
    let first = found.lines().next().unwrap();
    assert!(
        first.starts_with("1. 社保卡补办   [service social_security]"),
        "{found}"
    );
    assert!(found.contains('【') && !found.contains("<em>"), "{found}");
    let json = stack
        .json(
            DEV_ADMIN_KEY,
            &[
                "search",
                "医疗保险报销",
                "--account",
                "lincheng",
                "--kind",
                "service",
                "--category",
                "medical_insurance",
            ],
        )
        .await;
    let hits = json["hits"].as_array().unwrap();
    assert!(!hits.is_empty(), "{json}");
    assert!(
        hits.iter().all(|h| h["category"] == "medical_insurance"),
        "{json}"
    );
    assert!(
        hits[0]["snippet"].as_str().unwrap().contains("<em>"),
        "{json}"
    );
    let none = stack
        .run(
            DEV_ADMIN_KEY,
            &[
                "search",
                "社保卡补办",
                "--account",
                "lincheng",
                "--kind",
                "article",
            ],
        )
        .await;
    assert_eq!(
        (none.code, none.stdout.as_str(), none.stderr.as_str()),
        (0, "", "no hits\n")
    );
    let bad = stack
        .run(DEV_ADMIN_KEY, &["search", "？！", "--account", "lincheng"])
        .await;
    assert_eq!(bad.code, 5, "{bad:?}");
    assert!(
        bad.stderr.starts_with("govwx: INVALID_ARGUMENT: "),
        "{bad:?}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_file_is_checked_against_the_lexicon_with_every_hit_placed() {
    let stack = Stack::with_content().await;
    let dir = tempdir();
    let notice = dir.join("notice.md");
    std::fs::write(
        &notice,
        "# 停水通知\n\n请勿使用 ＶＰＮ 翻-牆 软件，\n谨防**刷单返利**。\n",
    )
    .unwrap();
    let path = notice.to_str().unwrap();
    let run = stack.run(EDITOR_KEY, &["lexicon", "check", path]).await;
    assert_eq!(run.code, 6, "{run:?}");
    // 翻墙软件 overlaps vpn翻墙: a hit of its own.
    assert_eq!(
        run.stdout,
        format!(
            "{path}:3:6: political: ＶＰＮ 翻-牆 (lexicon: vpn翻墙)\n\
             {path}:3:10: political: 翻-牆 软件 (lexicon: 翻墙软件)\n\
             {path}:4:5: fraud: 刷单返利\n"
        )
    );
    assert_eq!(
        run.stderr,
        format!("govwx: 3 sensitive-word hit(s) in {path}\n")
    );

    let page = dir.join("page.html");
    std::fs::write(
        &page,
        "<p title=\"刷单返利\">通知</p>\n<p>请勿<b>刷单</b>返利</p>\n",
    )
    .unwrap();
    let run = stack
        .run(
            REVIEWER_KEY,
            &["--json", "lexicon", "check", page.to_str().unwrap()],
        )
        .await;
    assert_eq!(run.code, 6, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(json["html"], true);
    let hits = json["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{json}");
    assert_eq!(
        (hits[0]["line"].as_u64(), hits[0]["column"].as_u64()),
        (Some(2), Some(9))
    );

    let clean = dir.join("clean.txt");
    std::fs::write(&clean, "本周六上午停水，请提前储水。\n").unwrap();
    let run = stack
        .run(EDITOR_KEY, &["lexicon", "check", clean.to_str().unwrap()])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "");
    stack.stop().await;
}

#[tokio::test]
async fn a_lexicon_file_with_a_bad_second_line_imports_nothing_and_names_the_line() {
    let stack = Stack::with_content().await;
    let file = tempdir().join("words.txt");
    std::fs::write(&file, "审查测试甲,political\n审查测试乙,politcal\n").unwrap();
    let path = file.to_str().unwrap();

    let run = stack.run(DEV_ADMIN_KEY, &["lexicon", "import", path]).await;

    assert_eq!(run.code, 65, "{run:?}");
    assert!(
        run.stderr.starts_with(&format!("govwx: {path}:2: ")),
        "{run:?}"
    );
    assert!(run.stderr.contains("\"politcal\""), "{run:?}");
    let listed = stack
        .ok(
            DEV_ADMIN_KEY,
            &["lexicon", "list", "--category", "political"],
        )
        .await;
    assert!(!listed.contains("审查测试甲"), "{listed}");
    stack.stop().await;
}

/// A fresh directory under the target dir's tmp (removed with it).
fn tempdir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("govwx-content-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
