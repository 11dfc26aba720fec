//! The root README's "See it work" runs here, line for line: every `sh` block of
//! that section is run by `bash` in the repository's root against this stack
//! (interaction-svc and content-svc with the local run's admin key, the mock
//! WeChat API), with `govwx` on the PATH. Each command must exit 0, or the code a
//! trailing `# … exits N` comment names. Placeholders (`<a ticket id from the
//! list>`, `<the id>`) become a real ticket's id and the mock's address replaces
//! `127.0.0.1:9100`; `cargo install` lines are skipped (the binary under test is
//! used), `tickets watch` runs after the script (with its `export`s) until it prints a ticket a citizen
//! opens, and the grpcurl block (the alternative client, not packaged by Debian) is
//! left out. A changed README changes this test: keep them together.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{DEV_ADMIN_KEY, Stack};

const README: &str = include_str!("../../../README.md");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The `sh` blocks of "See it work", each a list of commands (continuations joined).
fn see_it_work() -> Vec<Vec<String>> {
    let start = README
        .find("### See it work")
        .expect("the README has a See it work section");
    let rest = &README[start..];
    let section = &rest[..rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3)];
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```sh" {
            continue;
        }
        let mut block = Vec::new();
        let mut pending = String::new();
        for line in lines.by_ref() {
            if line.trim() == "```" {
                break;
            }
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                continue;
            }
            pending.push_str(line);
            if !pending.trim().is_empty() {
                block.push(std::mem::take(&mut pending));
            }
            pending.clear();
        }
        blocks.push(block);
    }
    blocks
}

/// The exit code a line's `# … exits N` comment names, else 0.
fn expected_exit(line: &str) -> i32 {
    line.split_once('#')
        .and_then(|(_, comment)| comment.split("exits ").nth(1))
        .and_then(|n| n.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn every_example_of_the_readme_runs_against_the_local_stack() {
    let stack = Stack::with_content().await;
    let bin = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("readme-bin-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_govwx"), bin.join("govwx")).unwrap();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
    let mock = stack
        .mock
        .base_url()
        .trim_start_matches("http://")
        .to_owned();

    // The queue the README's commands work on: a ticket of a citizen inside the
    // 48-hour window (answered by the first block), and a newer one (the script's).
    stack.citizen_wrote("o-readme-first").await;
    let first = stack
        .insert_ticket("o-readme-first", "citizen-services", "社保卡丢了怎么办")
        .await;
    stack.citizen_wrote("o-readme-second").await;
    let second = stack
        .insert_ticket("o-readme-second", "citizen-services", "公积金提取要多久")
        .await;

    // One script, as one terminal session: the README's `export` holds for the
    // blocks after it.
    let mut script = String::new();
    let mut ran = 0;
    let mut watch = None;
    let mut exports = String::new();
    for block in see_it_work()
        .iter()
        .filter(|b| !b.iter().any(|l| l.contains("grpcurl")))
    {
        for line in block {
            let line = line.trim();
            if line.starts_with("cargo install") {
                continue;
            }
            if line.contains("tickets watch") {
                watch = Some(line.to_owned());
                continue;
            }
            if line.starts_with("export ") {
                exports.push_str(line);
                exports.push('\n');
            }
            ran += 1;
            let command = line
                .replace("<a ticket id from the list>", &first)
                .replace("<the id>", &first)
                .replace("127.0.0.1:9100", &mock);
            script.push_str(&format!(
                "{command}\nrc=$?; if [ \"$rc\" -ne {} ]; then echo \"README command {ran} exited $rc\" >&2; exit 1; fi\n",
                expected_exit(line),
            ));
        }
    }
    let output = readme_shell(&stack, &path)
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .expect("bash runs");
    let outputs = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "README script failed:\n{script}\nstdout:\n{outputs}\nstderr:\n{stderr}"
    );
    assert!(ran >= 8, "only {ran} README commands found");
    // What the commands did: both tickets answered through the mock API, the
    // second closed, the directory searched.
    assert!(outputs.contains(&first), "{outputs}");
    let sent = stack.mock.state().calls_to("/cgi-bin/message/custom/send");
    for openid in ["o-readme-first", "o-readme-second"] {
        assert!(
            sent.iter()
                .any(|c| c.body.as_ref().is_some_and(|b| b["touser"] == openid)),
            "no answer to {openid} reached the mock: {sent:?}"
        );
    }
    let state: String = sqlx::query_scalar("SELECT state FROM tickets WHERE id = $1::uuid")
        .bind(&second)
        .fetch_one(&stack.db)
        .await
        .unwrap();
    assert_eq!(state, "closed");

    // `govwx tickets watch` prints a ticket a citizen opens while it watches.
    let watch = watch.expect("the README shows tickets watch");
    let mut child = readme_shell(&stack, &path)
        .arg("-c")
        .arg(format!("{exports}exec {watch}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let said = tokio::time::timeout(Duration::from_secs(20), stderr.next_line())
        .await
        .expect("watch says it watches")
        .unwrap()
        .unwrap_or_default();
    assert!(said.starts_with("govwx: watching"), "{said}");
    stack
        .citizen_says("o-readme-third", "小区门口路灯坏了")
        .await;
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
            .await
            .expect("watch prints the new ticket")
            .unwrap()
            .expect("watch still running");
        if line.contains("小区门口路灯坏了") {
            assert!(line.contains("opened"), "{line}");
            break;
        }
    }
    drop(child);
    let _ = std::fs::remove_dir_all(&bin);
    stack.stop().await;
}

/// `bash` in the repository's root with the README's environment: govwx on the
/// PATH and pointed at this stack (the README's `export` sets the key).
fn readme_shell(stack: &Stack, path: &str) -> tokio::process::Command {
    let mut command = stack.govwx(DEV_ADMIN_KEY);
    let std = command.as_std_mut();
    let addrs: Vec<(String, String)> = std
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
        .filter(|(k, _)| k.ends_with("_ADDR"))
        .collect();
    let mut bash = tokio::process::Command::new("bash");
    bash.env_clear()
        .envs(addrs)
        .env("PATH", path)
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .current_dir(ROOT)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    bash
}
