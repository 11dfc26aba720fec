//! Hostile input for the callback query parser (issue 16, item 2): it never panics,
//! refuses any signed parameter that appears twice however its name is spelt, and
//! reads every value back decoded.
//!
//! A child of `callback` so it sees the parsed fields. The normal run keeps
//! proptest's default 256 cases; `deploy/dev/fuzz.sh` raises `PROPTEST_CASES`.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

const SIGNED: &[&str] = &[
    "signature",
    "timestamp",
    "nonce",
    "echostr",
    "encrypt_type",
    "msg_signature",
];

/// Names that decode to a signed one, and decoys that must not.
fn name() -> impl Strategy<Value = (String, String)> {
    let signed = prop::sample::select(SIGNED).prop_map(str::to_owned);
    prop_oneof![
        // As WeChat sends it.
        signed.clone().prop_map(|n| (n.clone(), n)),
        // Every byte percent-encoded, upper- or lower-case hex.
        (signed.clone(), any::<bool>()).prop_map(|(n, upper)| {
            let encoded = n
                .bytes()
                .map(|b| {
                    if upper {
                        format!("%{b:02X}")
                    } else {
                        format!("%{b:02x}")
                    }
                })
                .collect();
            (encoded, n)
        }),
        // One byte percent-encoded.
        (signed, any::<usize>()).prop_map(|(n, at)| {
            let at = at % n.len();
            let encoded = format!("{}%{:02x}{}", &n[..at], n.as_bytes()[at], &n[at + 1..]);
            (encoded, n)
        }),
        // Decoys: other case, a trailing `+` (a space), a prefix, unsigned names.
        prop::sample::select(vec![
            "Signature",
            "signature+",
            "xsignature",
            "msg_signature_",
            "openid",
            "",
            "%00signature",
            "sig%6eature%20",
        ])
        .prop_map(|n| {
            let decoded: String = form_urlencoded::parse(format!("{n}=").as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            (n.to_owned(), decoded)
        }),
    ]
}

fn value() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        any::<String>().prop_map(|v| (form_urlencoded::byte_serialize(v.as_bytes()).collect(), v)),
        "[A-Za-z0-9._~-]{0,40}".prop_map(|v| (v.clone(), v)),
    ]
}

fn pairs() -> impl Strategy<Value = Vec<((String, String), (String, String))>> {
    prop::collection::vec((name(), value()), 0..10)
}

fn field<'a>(query: &'a CallbackQuery<'_>, name: &str) -> Option<&'a str> {
    match name {
        "signature" => query.signature.as_deref(),
        "timestamp" => query.timestamp.as_deref(),
        "nonce" => query.nonce.as_deref(),
        "echostr" => query.echostr.as_deref(),
        "encrypt_type" => query.encrypt_type.as_deref(),
        "msg_signature" => query.msg_signature.as_deref(),
        _ => None,
    }
}

proptest! {
    #[test]
    fn any_query_string_parses_or_is_refused(raw in any::<String>()) {
        let _ = CallbackQuery::parse(Some(&raw));
    }

    #[test]
    fn a_repeated_signed_parameter_is_always_refused(pairs in pairs(), separators in any::<u64>()) {
        // `&&` and a leading or trailing `&` are empty pairs, which must not matter.
        let raw = pairs
            .iter()
            .enumerate()
            .map(|(i, ((name, _), (value, _)))| {
                let extra = if separators >> (i % 64) & 1 == 1 { "&" } else { "" };
                format!("{extra}{name}={value}")
            })
            .collect::<Vec<_>>()
            .join("&");
        let mut seen: HashMap<&str, Vec<&str>> = HashMap::new();
        for ((_, name), (_, value)) in &pairs {
            seen.entry(name.as_str()).or_default().push(value.as_str());
        }
        let repeated = SIGNED
            .iter()
            .any(|name| seen.get(name).is_some_and(|values| values.len() > 1));

        match CallbackQuery::parse(Some(&raw)) {
            Ok(query) => {
                prop_assert!(!repeated, "accepted a repeated signed parameter in {raw:?}");
                for name in SIGNED {
                    let expected = seen.get(name).map(|values| values[0]);
                    prop_assert_eq!(field(&query, name), expected, "{} in {:?}", name, raw);
                }
            }
            Err(error) => {
                prop_assert!(repeated, "refused {raw:?}: {error:?}");
                prop_assert!(matches!(error, CallbackError::BadQuery("query")));
            }
        }
    }
}
