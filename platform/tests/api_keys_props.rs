//! Hostile input for the `API_KEYS` parser (issue 16, item 2): it never panics, reads
//! every well-formed entry, and its errors never carry a key.
//!
//! The normal run keeps proptest's default 256 cases; `deploy/dev/fuzz.sh` raises
//! `PROPTEST_CASES` and reruns with fresh seeds.

use platform::grpc::{AccountScope, ApiKeys, Role};
use proptest::prelude::*;

const ROLES: &[&str] = &[
    "editor",
    "reviewer",
    "publisher",
    "agent",
    "admin",
    "viewer",
];

/// Keys made of characters an operator might paste, separators included, so the
/// entry and field splitting meets them.
fn key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_=/+:@,#*. -]{8,48}"
}

/// One entry with each field either right, wrong or in the wrong place.
fn entry(key: String) -> impl Strategy<Value = String> {
    let department = prop_oneof!["[a-z-]{1,16}", Just(String::new()), "[ -~]{0,12}"];
    let accounts = prop_oneof![
        Just(String::new()),
        Just("@*".to_owned()),
        "@[a-z]{1,8}(\\+[a-z]{1,8}){0,3}",
        "@[ -~]{0,12}",
    ];
    let roles = prop_oneof![
        prop::sample::subsequence(ROLES, 1..=ROLES.len()).prop_map(|r| r.join("+")),
        "[ -~]{0,16}",
    ];
    (department, accounts, roles, 0..4u8).prop_map(move |(department, accounts, roles, shape)| {
        match shape {
            // The documented order.
            0 => format!("{department}{accounts}:{roles}:{key}"),
            // Key and roles swapped: an easy slip when copying from a vault.
            1 => format!("{department}{accounts}:{key}:{roles}"),
            // A field forgotten.
            2 => format!("{department}:{key}"),
            // The key first.
            _ => format!("{key}:{roles}:{department}"),
        }
    })
}

fn config() -> impl Strategy<Value = (Vec<String>, String)> {
    prop::collection::vec(key(), 1..4).prop_flat_map(|keys| {
        let entries: Vec<_> = keys.iter().cloned().map(entry).collect();
        let separator = prop::sample::select(vec![",", "\n", " ,\n# comment\n", ",,"]);
        (Just(keys), entries, separator)
            .prop_map(|(keys, entries, separator)| (keys, entries.join(separator)))
    })
}

/// The key and any 8-character window of it, so an error that quotes part of a key
/// (split at a comma, say) is caught too.
fn leaks(error: &str, key: &str) -> bool {
    let chars: Vec<char> = key.chars().collect();
    error.contains(key)
        || chars
            .windows(8)
            .any(|w| error.contains(&w.iter().collect::<String>()))
}

proptest! {
    #[test]
    fn any_text_parses_or_is_refused(raw in any::<String>()) {
        let _ = ApiKeys::parse(&raw);
    }

    #[test]
    fn errors_never_contain_a_key((keys, raw) in config()) {
        if let Err(error) = ApiKeys::parse(&raw) {
            for key in &keys {
                prop_assert!(!leaks(&error, key), "{error:?} quotes key {key:?}");
            }
        }
    }

    #[test]
    fn every_well_formed_entry_is_read(
        entries in prop::collection::btree_map(
            "[A-Za-z0-9_=/+.-]{8,48}",
            (
                "[a-z-]{1,16}",
                prop::collection::btree_set("[a-z0-9_]{1,8}", 0..3),
                prop::sample::subsequence(ROLES, 1..=ROLES.len()),
            ),
            1..5,
        ),
    ) {
        let raw = entries
            .iter()
            .map(|(key, (department, accounts, roles))| {
                let scope = if accounts.is_empty() {
                    String::new()
                } else {
                    format!("@{}", accounts.iter().cloned().collect::<Vec<_>>().join("+"))
                };
                format!("{department}{scope}:{}:{key}", roles.join("+"))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let keys = ApiKeys::parse(&raw).unwrap();
        prop_assert_eq!(keys.len(), entries.len());
        for (key, (department, accounts, roles)) in &entries {
            let caller = keys.lookup(key).unwrap();
            prop_assert_eq!(&caller.department, department);
            let expected: std::collections::BTreeSet<Role> =
                roles.iter().map(|r| r.parse().unwrap()).collect();
            prop_assert_eq!(&caller.roles, &expected);
            let scope = if accounts.is_empty() {
                AccountScope::All
            } else {
                AccountScope::Only(accounts.clone())
            };
            prop_assert_eq!(&caller.accounts, &scope);
        }
    }
}
