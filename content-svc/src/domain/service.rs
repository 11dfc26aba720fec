//! A convenience service of the directory as written by its owning department:
//! the checks every write (gRPC or seed file) goes through, and the seed format.

use super::text::{TextError, check_line, check_text};
use super::{AccountId, CategoryCode, DirectoryInputError};

/// Why a service cannot be saved. Each message names the field (or seed line).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServiceError {
    #[error(transparent)]
    Directory(#[from] DirectoryInputError),
    #[error("{field} is required")]
    Required { field: &'static str },
    #[error("{field} is {len} characters long; at most {max} are allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} has {count} entries; at most {max} are allowed")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
    #[error(
        "{field} {account:?} holds U+{bad:04X}; an account id is made of a-z, 0-9, '-' and '_' \
         (as in WECHAT_ACCOUNTS)"
    )]
    BadAccount {
        field: &'static str,
        account: String,
        bad: u32,
    },
    /// The url is no link the hall may show; `reason` completes "url …".
    #[error("url {reason}")]
    BadUrl { reason: String },
    #[error(
        "a service needs a destination: url, or miniprogram_appid and miniprogram_path together"
    )]
    NoDestination,
    #[error("miniprogram_appid must be \"wx\" followed by 16 lowercase hex digits")]
    BadAppId,
    #[error("phone may hold only digits, spaces, '-', '+', '(' and ')'")]
    BadPhone,
    #[error("seed line {line}: {reason}")]
    Seed { line: usize, reason: String },
    #[error(transparent)]
    Text(#[from] TextError),
}

/// A service as its department writes it, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDraft {
    /// The account that owns the entry (and shows it).
    pub account: AccountId,
    pub category: CategoryCode,
    pub name: String,
    pub department: String,
    pub description: String,
    pub how_to_apply: String,
    pub url: String,
    pub miniprogram_appid: String,
    pub miniprogram_path: String,
    pub hours: String,
    pub phone: String,
    pub keywords: Vec<String>,
    pub synonyms: Vec<String>,
    /// Accounts showing it besides `account`.
    pub also_shown_on: Vec<AccountId>,
    pub enabled: bool,
    pub position: i32,
}

/// A draft's fields as received, before the checks.
#[derive(Debug, Clone, Default)]
pub struct RawService<'a> {
    pub account: &'a str,
    pub category: &'a str,
    pub name: &'a str,
    pub department: &'a str,
    pub description: &'a str,
    pub how_to_apply: &'a str,
    pub url: &'a str,
    pub miniprogram_appid: &'a str,
    pub miniprogram_path: &'a str,
    pub hours: &'a str,
    pub phone: &'a str,
    pub keywords: Vec<&'a str>,
    pub synonyms: Vec<&'a str>,
    pub also_shown_on: Vec<&'a str>,
    pub enabled: bool,
    pub position: i32,
}

/// Field bounds, in characters (a news card shows about 64 of a title).
const NAME_MAX: usize = 64;
const DEPARTMENT_MAX: usize = 64;
const DESCRIPTION_MAX: usize = 1_000;
const HOW_TO_APPLY_MAX: usize = 2_000;
const URL_MAX: usize = 1_024;
const PATH_MAX: usize = 512;
const HOURS_MAX: usize = 64;
const PHONE_MAX: usize = 32;
const WORD_MAX: usize = 32;
const WORDS_MAX: usize = 32;
const ACCOUNTS_MAX: usize = 64;

/// Checks a link the service hall shows as `href`: an absolute http(s) URL to a
/// host, parsed as a browser parses it (WHATWG, the `url` crate). A prefix check
/// took "https://" alone, "https://exa mple", and "https://a.gov.cn@evil.example",
/// which a reader takes for a.gov.cn and a browser opens on evil.example. The
/// error completes "url …". The URL is kept as written, not normalised, so a
/// re-imported file matches what it stored.
pub fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err("must start with https:// or http://".into());
    }
    // The parser would drop tabs and newlines and trim spaces and control
    // characters silently; stored, they would reach the page as written.
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "holds U+{:04X} (a space or control character); percent-encode it (a space is %20)",
            u32::from(c)
        ));
    }
    let parsed = url::Url::parse(url).map_err(|error| match error {
        url::ParseError::EmptyHost => "has no host after its scheme".to_owned(),
        error => format!("is not a URL: {error}"),
    })?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("has no host after its scheme".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "holds a user name before its host (https://name@host): a reader takes the \
             name for the site, a browser opens the host after '@'"
                .into(),
        );
    }
    Ok(())
}

fn text(
    field: &'static str,
    raw: &str,
    max: usize,
    required: bool,
) -> Result<String, ServiceError> {
    let value = raw.trim();
    // A description and how to apply are shown as paragraphs; every other field
    // is one line.
    if matches!(field, "description" | "how_to_apply") {
        check_text(field, value)?;
    } else {
        check_line(field, value)?;
    }
    if required && value.is_empty() {
        return Err(ServiceError::Required { field });
    }
    let len = value.chars().count();
    if len > max {
        return Err(ServiceError::TooLong { field, len, max });
    }
    Ok(value.to_owned())
}

fn words(field: &'static str, raw: &[&str]) -> Result<Vec<String>, ServiceError> {
    let mut out: Vec<String> = Vec::new();
    for word in raw {
        let word = text(field, word, WORD_MAX, false)?;
        if !word.is_empty() && !out.contains(&word) {
            out.push(word);
        }
    }
    if out.len() > WORDS_MAX {
        return Err(ServiceError::TooMany {
            field,
            count: out.len(),
            max: WORDS_MAX,
        });
    }
    Ok(out)
}

impl ServiceDraft {
    /// Checks every field; the first broken rule is the error.
    pub fn parse(raw: &RawService<'_>) -> Result<Self, ServiceError> {
        check_line("account", raw.account)?;
        let account = AccountId::parse(raw.account.trim()).map_err(DirectoryInputError::from)?;
        check_account("account", &account)?;
        let category = CategoryCode::parse(raw.category.trim())?;
        let url = text("url", raw.url, URL_MAX, false)?;
        if !url.is_empty() {
            check_url(&url).map_err(|reason| ServiceError::BadUrl { reason })?;
        }
        let appid = raw.miniprogram_appid.trim().to_owned();
        let path = text("miniprogram_path", raw.miniprogram_path, PATH_MAX, false)?;
        if !appid.is_empty() {
            let hex = appid.strip_prefix("wx").unwrap_or("");
            if hex.len() != 16
                || !hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(ServiceError::BadAppId);
            }
        }
        if url.is_empty() && (appid.is_empty() || path.is_empty()) {
            return Err(ServiceError::NoDestination);
        }
        let phone = text("phone", raw.phone, PHONE_MAX, false)?;
        if !phone
            .chars()
            .all(|c| c.is_ascii_digit() || " -+()".contains(c))
        {
            return Err(ServiceError::BadPhone);
        }
        let mut also_shown_on = Vec::new();
        for other in &raw.also_shown_on {
            check_line("also_shown_on", other)?;
            let other = AccountId::parse(other.trim()).map_err(DirectoryInputError::from)?;
            check_account("also_shown_on", &other)?;
            if other != account && !also_shown_on.contains(&other) {
                also_shown_on.push(other);
            }
        }
        if also_shown_on.len() > ACCOUNTS_MAX {
            return Err(ServiceError::TooMany {
                field: "also_shown_on",
                count: also_shown_on.len(),
                max: ACCOUNTS_MAX,
            });
        }
        Ok(Self {
            account,
            category,
            name: text("name", raw.name, NAME_MAX, true)?,
            department: text("department", raw.department, DEPARTMENT_MAX, true)?,
            description: text("description", raw.description, DESCRIPTION_MAX, false)?,
            how_to_apply: text("how_to_apply", raw.how_to_apply, HOW_TO_APPLY_MAX, false)?,
            url,
            miniprogram_appid: appid,
            miniprogram_path: path,
            hours: text("hours", raw.hours, HOURS_MAX, false)?,
            phone,
            keywords: words("keywords", &raw.keywords)?,
            synonyms: words("synonyms", &raw.synonyms)?,
            also_shown_on,
            enabled: raw.enabled,
            position: raw.position,
        })
    }

    /// Every account that shows the service: its own first.
    pub fn accounts(&self) -> impl Iterator<Item = &AccountId> {
        std::iter::once(&self.account).chain(&self.also_shown_on)
    }
}

/// Refuses an account id no account can have (WECHAT_ACCOUNTS' ids are a-z, 0-9,
/// '-', '_'): an invisible character (a byte order mark, a zero-width space) pasted
/// with it, or a capital, would make a service no account shows.
fn check_account(field: &'static str, account: &AccountId) -> Result<(), ServiceError> {
    match account
        .as_str()
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        Some(bad) => Err(ServiceError::BadAccount {
            field,
            account: account.as_str().to_owned(),
            bad: bad as u32,
        }),
        None => Ok(()),
    }
}

/// `text` without the byte order mark a spreadsheet (Excel's "UTF-8 CSV") puts
/// before a file: read as part of the first line, it hid a header comment or
/// became part of the first service's account.
pub fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{FEFF}').unwrap_or(text)
}

/// The columns of a seed file, in order (see the README's "Seeding a directory").
pub const SEED_COLUMNS: [&str; 14] = [
    "account",
    "category",
    "name",
    "department",
    "description",
    "how_to_apply",
    "url",
    "miniprogram",
    "hours",
    "phone",
    "keywords",
    "synonyms",
    "also_shown_on",
    "enabled",
];

/// Reads a seed file: UTF-8, one service per line, [`SEED_COLUMNS`] separated by
/// tabs (a leading byte order mark is skipped); `#` starts a comment line; lists are separated by `|`; `miniprogram` is
/// `appid:path` or empty; `enabled` is `yes` or `no`. Position follows line order.
pub fn parse_seed(text: &str) -> Result<Vec<ServiceDraft>, ServiceError> {
    let text = without_bom(text);
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let seed_err = |reason: String| ServiceError::Seed {
            line: line_no,
            reason,
        };
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != SEED_COLUMNS.len() {
            return Err(seed_err(format!(
                "{} columns instead of {} ({})",
                cols.len(),
                SEED_COLUMNS.len(),
                SEED_COLUMNS.join(", ")
            )));
        }
        let list = |i: usize| -> Vec<&str> {
            cols[i]
                .split('|')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .collect()
        };
        let (appid, path) = match cols[7].trim() {
            "" => ("", ""),
            mp => mp
                .split_once(':')
                .ok_or_else(|| seed_err("miniprogram must be appid:path".into()))?,
        };
        let enabled = match cols[13].trim() {
            "yes" => true,
            "no" => false,
            other => {
                return Err(seed_err(format!(
                    "enabled must be yes or no, not {other:?}"
                )));
            }
        };
        let raw = RawService {
            account: cols[0],
            category: cols[1],
            name: cols[2],
            department: cols[3],
            description: cols[4],
            how_to_apply: cols[5],
            url: cols[6],
            miniprogram_appid: appid,
            miniprogram_path: path,
            hours: cols[8],
            phone: cols[9],
            keywords: list(10),
            synonyms: list(11),
            also_shown_on: list(12),
            enabled,
            position: i32::try_from(out.len()).unwrap_or(i32::MAX),
        };
        out.push(ServiceDraft::parse(&raw).map_err(|e| seed_err(e.to_string()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawService<'static> {
        RawService {
            account: "lincheng",
            category: "social_security",
            name: "社保卡补办",
            department: "人社局",
            url: "https://example.gov.cn/sbk",
            keywords: vec!["社保卡", "补卡", "社保卡"],
            enabled: true,
            ..RawService::default()
        }
    }

    const WATER: &str = "chenzhou\tutilities\t水费缴纳\twater\t自来水费在线缴纳\t\thttps://water.example.gov.cn/pay\t\t全天\t0735-96655\t水费|缴费\t\t\tyes";

    #[test]
    fn a_file_saved_by_excel_with_a_byte_order_mark_is_read_as_without() {
        let file = format!("\u{FEFF}# account\tcategory\n{WATER}\n");
        let drafts = parse_seed(&file).unwrap();
        assert_eq!(drafts.len(), 1);
        assert_eq!(drafts[0].account.as_str(), "chenzhou");
        let drafts = parse_seed(&format!("\u{FEFF}{WATER}")).unwrap();
        assert_eq!(drafts[0].account.as_str(), "chenzhou");
    }

    #[test]
    fn an_account_with_a_character_no_account_id_has_is_refused_by_name() {
        let mut r = raw();
        r.account = "lin\u{200B}cheng";
        assert_eq!(
            ServiceDraft::parse(&r).unwrap_err().to_string(),
            "account \"lin\\u{200b}cheng\" holds U+200B; an account id is made of a-z, 0-9, \
             '-' and '_' (as in WECHAT_ACCOUNTS)"
        );
        let mut r = raw();
        r.also_shown_on = vec!["Lincheng_gov"];
        assert_eq!(
            ServiceDraft::parse(&r).unwrap_err().to_string(),
            "also_shown_on \"Lincheng_gov\" holds U+004C; an account id is made of a-z, 0-9, \
             '-' and '_' (as in WECHAT_ACCOUNTS)"
        );
    }

    #[test]
    fn a_good_service_is_kept_with_duplicate_keywords_folded() {
        let draft = ServiceDraft::parse(&raw()).unwrap();
        assert_eq!(draft.name, "社保卡补办");
        assert_eq!(draft.keywords, ["社保卡", "补卡"]);
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let mut r = raw();
        r.name = " ";
        assert_eq!(
            ServiceDraft::parse(&r).unwrap_err().to_string(),
            "name is required"
        );
        let mut r = raw();
        r.url = "";
        assert_eq!(ServiceDraft::parse(&r), Err(ServiceError::NoDestination));
        r.miniprogram_appid = "wx123";
        r.miniprogram_path = "pages/index";
        assert_eq!(ServiceDraft::parse(&r), Err(ServiceError::BadAppId));
        r.miniprogram_appid = "wx0123456789abcdef";
        assert!(ServiceDraft::parse(&r).is_ok());
        let mut r = raw();
        r.url = "javascript:alert(1)";
        assert_eq!(
            ServiceDraft::parse(&r).unwrap_err().to_string(),
            "url must start with https:// or http://"
        );
        let mut r = raw();
        r.phone = "0735-12345; drop";
        assert_eq!(ServiceDraft::parse(&r), Err(ServiceError::BadPhone));
        let long = "长".repeat(NAME_MAX + 1);
        let mut r = raw();
        r.name = &long;
        assert!(
            ServiceDraft::parse(&r)
                .unwrap_err()
                .to_string()
                .starts_with("name is 65")
        );
    }

    /// A URL the hall would link is parsed, not only its prefix looked at: each
    /// refusal says what is wrong with it.
    #[test]
    fn a_url_is_refused_unless_it_is_a_whole_http_link_to_a_host() {
        for (url, reason) in [
            ("https://", "no host"),
            ("http://", "no host"),
            ("https://exa mple.gov.cn/sbk", "U+0020"),
            ("https://example.gov.cn/\u{3000}sbk", "U+3000"),
            ("https://a.gov.cn\u{0}", "control"),
            ("https://user@evil.example", "user name"),
            ("https://a.gov.cn:pw@evil.example/sbk", "user name"),
            ("https://a.gov.cn@evil.example/sbk", "user name"),
            ("javascript:alert(1)", "https://"),
            ("JavaScript://%0aalert(1)", "https://"),
            ("https://[::1/sbk", "not a URL"),
            ("https://exa<mple.gov.cn", "not a URL"),
        ] {
            let mut r = raw();
            r.url = url;
            let error = ServiceDraft::parse(&r).expect_err(url).to_string();
            assert!(
                error.starts_with("url ") && error.contains(reason),
                "{url:?}: {error}"
            );
        }
        for url in [
            "https://example.gov.cn",
            "http://12345.lincheng.gov.cn:8080/办事/社保?from=hall#top",
            "https://10.0.0.1/sbk",
        ] {
            let mut r = raw();
            r.url = url;
            assert!(ServiceDraft::parse(&r).is_ok(), "{url}");
        }
    }

    #[test]
    fn the_shipped_seed_parses() {
        let seed = include_str!("../../seed/lincheng-directory.tsv");
        let services = parse_seed(seed).unwrap();
        assert!(services.len() >= 20, "{}", services.len());
        assert!(services.iter().any(|s| s.name == "社保卡补办"));
    }

    #[test]
    fn a_bad_seed_line_is_named() {
        let err = parse_seed("# c\nlincheng\tsocial_security\n").unwrap_err();
        assert!(
            err.to_string().starts_with("seed line 2: 2 columns"),
            "{err}"
        );
    }
}
