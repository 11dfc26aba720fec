//! The rules every new migration of every service keeps, so that the previous release's
//! binary keeps working on the migrated database: a rollout runs both, a rollback runs
//! the old one on it. The migrations written before these rules are listed as they are
//! (stats-svc 0008 broke them: its NOT NULL column without a default failed the previous
//! binary's session INSERT).

use std::path::{Path, PathBuf};

/// The last migration of each service written before the rules; later ones keep them.
const GRANDFATHERED: [(&str, u32); 3] = [
    ("interaction-svc", 9),
    ("content-svc", 15),
    ("stats-svc", 11),
];

/// The same for the rule that nothing slow follows an `ALTER TABLE` of the same table
/// (added with the migrations' lock timeout): the last migration of each service
/// released before it.
const GRANDFATHERED_SLOW_AFTER_ALTER: [(&str, u32); 3] = [
    ("interaction-svc", 12),
    ("content-svc", 18),
    ("stats-svc", 15),
];

fn migrations(service: &str) -> Vec<(u32, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(service)
        .join("migrations");
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?.to_owned();
            let number = name.split('_').next()?.parse().ok()?;
            name.ends_with(".sql").then_some((number, path))
        })
        .collect();
    found.sort();
    found
}

/// The statements of a migration, upper-cased, comments removed, whitespace folded.
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    without_comments
        .split(';')
        .map(|s| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// What a migration does that the previous release, still running during a rollout or
/// back after a rollback, cannot take: columns it reads changed, or a table altered and
/// then backfilled or indexed in the same transaction (its reads wait for all of it).
/// A plain index on an existing table is not refused: CONCURRENTLY is only safe from the
/// release after the polling migrator (platform/README.md, "Writing a migration"), so
/// each such migration says in its comments which lock it takes and for how long.
fn violations(sql: &str) -> Vec<String> {
    let mut found = Vec::new();
    // Tables an earlier statement of this migration altered: their ACCESS EXCLUSIVE
    // lock lasts until the migration commits, so nothing slow may follow on them
    // (platform/README.md, "Writing a migration").
    let mut altered: Vec<String> = Vec::new();
    for statement in statements(sql) {
        if statement.contains("INDEX CONCURRENTLY") && !statement.contains("IF NOT EXISTS") {
            found.push(format!(
                "a concurrent index build without IF NOT EXISTS (a pod stopped after the build \
                 and before sqlx recorded the migration would fail every later start-up with \
                 \"already exists\"): {statement}"
            ));
        }
        if let Some(table) = slow_on(&statement)
            && altered.contains(&table)
        {
            found.push(format!(
                "a backfill or index build on {table} after altering it in the same migration \
                 (its reads wait for the whole of it): {statement}"
            ));
        }
        if !statement.starts_with("ALTER TABLE") {
            continue;
        }
        if let Some(table) = table_after(&statement, "ALTER TABLE ") {
            altered.push(table);
        }
        for clause in statement.split(',') {
            if clause.contains("ADD COLUMN")
                && clause.contains("NOT NULL")
                && !clause.contains("DEFAULT")
            {
                found.push(format!("NOT NULL column without a default: {clause}"));
            }
        }
        if statement.contains("SET NOT NULL") {
            found.push(format!("SET NOT NULL on existing rows: {statement}"));
        }
        if statement.contains("DROP COLUMN")
            || statement.contains(" RENAME ")
            || statement.contains(" TYPE ")
        {
            found.push(format!(
                "drops, renames or retypes what the previous release reads: {statement}"
            ));
        }
    }
    found
}

/// The table a statement scans or rewrites: an `UPDATE`, an `INSERT ... SELECT` or a
/// `CREATE INDEX` (not CONCURRENTLY, which cannot run in a migration's transaction).
fn slow_on(statement: &str) -> Option<String> {
    if statement.starts_with("UPDATE ") {
        table_after(statement, "UPDATE ")
    } else if statement.starts_with("INSERT INTO ") && statement.contains(" SELECT ") {
        table_after(statement, "INSERT INTO ")
    } else if statement.starts_with("CREATE INDEX") || statement.starts_with("CREATE UNIQUE INDEX")
    {
        table_after(statement, " ON ")
    } else {
        None
    }
}

/// The table named right after `keyword` (skipping `IF EXISTS` and `ONLY`).
fn table_after(statement: &str, keyword: &str) -> Option<String> {
    let rest = &statement[statement.find(keyword)? + keyword.len()..];
    rest.split_whitespace()
        .find(|word| !matches!(*word, "IF" | "EXISTS" | "ONLY"))
        .map(|word| word.split('(').next().unwrap_or(word).to_owned())
}

#[test]
fn new_migrations_keep_the_previous_release_working() {
    let mut broken = Vec::new();
    for (service, last_grandfathered) in GRANDFATHERED {
        let all = migrations(service);
        assert!(
            all.iter().any(|(n, _)| *n == last_grandfathered),
            "{service}: migration {last_grandfathered} not found"
        );
        for (number, path) in all {
            if number <= last_grandfathered {
                continue;
            }
            let sql = std::fs::read_to_string(&path).unwrap();
            let slow_rule_from = GRANDFATHERED_SLOW_AFTER_ALTER
                .iter()
                .find(|(s, _)| *s == service)
                .map_or(0, |(_, n)| *n);
            for violation in violations(&sql) {
                if number <= slow_rule_from && violation.starts_with("a backfill or index build") {
                    continue;
                }
                broken.push(format!("{}: {violation}", path.display()));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_rules_catch_what_breaks_the_previous_release() {
    assert_eq!(
        violations("ALTER TABLE dashboard_sessions ADD COLUMN key_digest bytea NOT NULL;").len(),
        1
    );
    assert_eq!(
        violations("ALTER TABLE t ALTER COLUMN c SET NOT NULL;").len(),
        1
    );
    assert_eq!(violations("ALTER TABLE t DROP COLUMN c;").len(), 1);
    assert_eq!(violations("ALTER TABLE t RENAME COLUMN c TO d;").len(), 1);
    assert_eq!(
        violations(
            "ALTER TABLE article_versions ADD COLUMN source_url text;\n\
             UPDATE article_versions v SET source_url = a.source_url FROM articles a;"
        )
        .len(),
        1
    );
    assert_eq!(
        violations(
            "ALTER TABLE tickets ADD COLUMN erased_at timestamptz;\n\
             CREATE INDEX tickets_retention ON tickets (closed_at) WHERE erased_at IS NULL;"
        )
        .len(),
        1
    );
    assert_eq!(
        violations("CREATE INDEX CONCURRENTLY tickets_closed ON tickets (closed_at);").len(),
        1
    );
    assert!(
        violations(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS tickets_closed ON tickets (closed_at);"
        )
        .is_empty()
    );
    assert!(
        violations(
            "ALTER TABLE ticket_messages ADD COLUMN request_id text; -- NOT NULL later\n\
             ALTER TABLE articles ADD COLUMN generation integer NOT NULL DEFAULT 0,\n\
                 ADD COLUMN note text;\n\
             CREATE TABLE refolds (id bigint PRIMARY KEY, phase text NOT NULL);\n\
             CREATE INDEX refolds_phase ON refolds (phase);"
        )
        .is_empty()
    );
}
