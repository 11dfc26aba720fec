//! The hall's HTML. Every text from the database is escaped and loses its
//! bidirectional formatting characters ([`shown`]); search snippets arrive escaped
//! with `<em>` around the matched words (`domain::search`).

use std::fmt::Write as _;

use super::SearchOutcome;
use crate::app::hall::HallCategory;
use crate::domain::text::is_bidi_format;
use crate::store::hall::HallRow;

pub use platform::html::esc;

/// Text as the page shows it: escaped, and without bidirectional formatting
/// characters, so it reads in the order the sensitive-word screener read it (input
/// checks refuse them now; a row stored before they did may still hold one).
fn shown(text: &str) -> String {
    esc(&without_bidi(text))
}

fn without_bidi(text: &str) -> String {
    text.chars().filter(|&c| !is_bidi_format(c)).collect()
}

/// Only links the directory would take now are rendered
/// ([`crate::domain::service::check_url`]: http(s) to a host, no user name, no
/// space): this keeps a `javascript:` or `https://a.gov.cn@evil.example` URL off
/// the page even if one got into the database (stored before the check, or by an
/// article's URL).
fn safe_url(url: &str) -> Option<&str> {
    crate::domain::service::check_url(url)
        .is_ok()
        .then_some(url)
}

/// Phone numbers keep digits, `+` and `-` for the `tel:` link.
fn tel(phone: &str) -> String {
    phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+' || *c == '-')
        .collect()
}

const STYLE: &str = "
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#f2f3f5;color:#1f2329;font:15px/1.6 -apple-system,'PingFang SC','Hiragino Sans GB','Microsoft YaHei','Noto Sans CJK SC','Noto Sans SC',sans-serif;overflow-wrap:anywhere}
main{max-width:640px;margin:0 auto;padding:0 0 32px}
header{background:linear-gradient(135deg,#c8161d,#e0452b);color:#fff;padding:20px 16px 16px}
header h1{margin:0;font-size:22px;letter-spacing:2px}
header p{margin:4px 0 0;font-size:13px;opacity:.9}
form{display:flex;gap:8px;margin:12px 0 0}
input[type=search]{flex:1;min-width:0;height:40px;border:0;border-radius:20px;padding:0 16px;font-size:15px;background:#fff;color:#1f2329}
button{height:40px;border:0;border-radius:20px;padding:0 18px;background:#ffd24d;color:#6b2400;font-size:15px;font-weight:600}
nav{display:flex;flex-wrap:wrap;gap:8px;padding:12px 16px;background:#fff;border-bottom:1px solid #e5e6eb}
nav a{display:inline-block;padding:4px 12px;border-radius:14px;background:#fdecec;color:#c8161d;text-decoration:none;font-size:14px}
section{margin:12px 12px 0;background:#fff;border-radius:10px;padding:4px 16px 8px}
h2{font-size:17px;margin:10px 0 4px;padding-left:10px;border-left:4px solid #c8161d}
.results h2{border-color:#ffb400}
article{border-top:1px solid #eef0f3;padding:10px 0}
h2+article{border-top:0}
h3{margin:0;font-size:16px}
h3 a{color:#1f2329;text-decoration:none}
.desc{margin:2px 0 0;color:#4e5969;font-size:14px}
dl{margin:6px 0 0;font-size:14px;display:grid;grid-template-columns:auto 1fr;gap:2px 10px}
dt{color:#86909c}
dd{margin:0;color:#1f2329}
dd a{color:#1664ff}
.go{display:inline-block;margin-top:8px;padding:4px 14px;border:1px solid #c8161d;border-radius:14px;color:#c8161d;text-decoration:none;font-size:14px}
em{font-style:normal;color:#c8161d;background:#fff1b8;padding:0 1px}
.snippet{margin:2px 0 0;color:#4e5969;font-size:14px}
.kind{font-size:12px;color:#86909c;margin-left:6px;font-weight:normal}
.note{color:#86909c;font-size:14px;margin:8px 0}
footer{text-align:center;color:#86909c;font-size:12px;margin:20px 16px 0}
";

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1,viewport-fit=cover\">\
         <meta name=\"format-detection\" content=\"telephone=no\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>",
        esc(title)
    );
}

fn tail(out: &mut String) {
    out.push_str("</main></body></html>");
}

/// A page with a single sentence (not found, unavailable).
pub fn message(title: &str, text: &str) -> String {
    let mut out = String::new();
    head(&mut out, title);
    let _ = write!(
        out,
        "<header><h1>{}</h1></header><section><p class=\"note\">{}</p></section>",
        esc(title),
        esc(text)
    );
    tail(&mut out);
    out
}

/// The hall: header with the search box, the results of `query` if any, the
/// category shortcuts, then every category with its services.
///
/// The account's id is not shown: it is an internal name ("city", "lincheng_gov"),
/// and no display name of an account is configured.
pub fn hall(
    _account: &str,
    categories: &[HallCategory],
    query: &str,
    results: Option<&SearchOutcome>,
) -> String {
    let total: usize = categories.iter().map(|c| c.services.len()).sum();
    let mut out = String::new();
    head(&mut out, "办事大厅");
    let _ = write!(
        out,
        "<header><h1>办事大厅</h1><p>{} 个类别 · {total} 项便民服务</p>\
         <form method=\"get\" action=\"\" role=\"search\">\
         <input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"搜索服务，如：社保卡补办\" \
         aria-label=\"搜索服务\" maxlength=\"100\"><button type=\"submit\">搜索</button></form></header>",
        categories.len(),
        shown(query),
    );
    if let Some(results) = results {
        render_results(&mut out, query, results);
    }
    if !categories.is_empty() {
        out.push_str("<nav aria-label=\"服务类别\">");
        for category in categories {
            let _ = write!(
                out,
                "<a href=\"#c-{}\">{}</a>",
                esc(&category.code),
                shown(&category.name)
            );
        }
        out.push_str("</nav>");
    } else {
        out.push_str("<section><p class=\"note\">暂无便民服务。</p></section>");
    }
    for category in categories {
        let _ = write!(
            out,
            "<section id=\"c-{}\"><h2>{}</h2>",
            esc(&category.code),
            shown(&category.name)
        );
        for service in &category.services {
            render_service(&mut out, service);
        }
        out.push_str("</section>");
    }
    out.push_str("<footer>如需帮助请拨打 12345 政务服务便民热线</footer>");
    tail(&mut out);
    out
}

fn render_results(out: &mut String, query: &str, results: &SearchOutcome) {
    out.push_str("<section class=\"results\" id=\"results\">");
    match results {
        Err(reason) => {
            let _ = write!(out, "<h2>搜索</h2><p class=\"note\">{}</p>", esc(reason));
        }
        Ok(hits) if hits.is_empty() => {
            let _ = write!(
                out,
                "<h2>“{}”的搜索结果</h2><p class=\"note\">没有找到相关服务，换个说法试试，或拨打 12345 咨询。</p>",
                shown(query)
            );
        }
        Ok(hits) => {
            let _ = write!(
                out,
                "<h2>“{}”的搜索结果（{} 条）</h2>",
                shown(query),
                hits.len()
            );
            for hit in hits {
                let row = &hit.row;
                // A service links to its entry below; an article to its page.
                let (href, kind) = if row.kind == "service" {
                    (format!("#s-{}", row.ref_id), "服务")
                } else {
                    (safe_url(&row.url).map(esc).unwrap_or_default(), "文章")
                };
                let _ = write!(
                    out,
                    "<article class=\"hit\"><h3><a href=\"{href}\">{}</a><span class=\"kind\">{kind}</span></h3>\
                     <p class=\"snippet\">{}</p></article>",
                    shown(&row.title),
                    // Escaped by the search, with <em> around matched words.
                    without_bidi(&hit.snippet)
                );
            }
        }
    }
    out.push_str("</section>");
}

fn render_service(out: &mut String, service: &HallRow) {
    let _ = write!(
        out,
        "<article id=\"s-{}\"><h3>{}</h3>",
        service.id,
        shown(&service.name)
    );
    if !service.description.is_empty() {
        let _ = write!(out, "<p class=\"desc\">{}</p>", shown(&service.description));
    }
    out.push_str("<dl>");
    if !service.how_to_apply.is_empty() {
        let _ = write!(
            out,
            "<dt>办理方式</dt><dd>{}</dd>",
            shown(&service.how_to_apply)
        );
    }
    if !service.hours.is_empty() {
        let _ = write!(out, "<dt>办公时间</dt><dd>{}</dd>", shown(&service.hours));
    }
    if !service.phone.is_empty() {
        let _ = write!(
            out,
            "<dt>咨询电话</dt><dd><a href=\"tel:{}\">{}</a></dd>",
            esc(&tel(&service.phone)),
            shown(&service.phone)
        );
    }
    if !service.miniprogram_appid.is_empty() {
        // WeChat's search finds a mini-program by its name, not by AppID or page
        // path, so those are no instructions for a citizen: the way in is told by
        // how to apply or on the phone.
        let way_in = match (service.how_to_apply.is_empty(), service.phone.is_empty()) {
            (false, false) => "进入方式见上方办理方式，或拨打咨询电话",
            (false, true) => "进入方式见上方办理方式",
            (true, false) => "进入方式请拨打咨询电话",
            (true, true) => "进入方式请拨打 12345 咨询",
        };
        let _ = write!(
            out,
            "<dt>小程序</dt><dd>可在微信小程序中办理，{way_in}</dd>"
        );
    }
    out.push_str("</dl>");
    if let Some(url) = safe_url(&service.url) {
        let _ = write!(
            out,
            "<a class=\"go\" href=\"{}\" rel=\"noopener\">在线办理</a>",
            esc(url)
        );
    }
    out.push_str("</article>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, url: &str) -> HallRow {
        HallRow {
            id: uuid::Uuid::nil(),
            category: "social_security".into(),
            category_name: "社保".into(),
            name: name.into(),
            description: "补办<社保卡>".into(),
            how_to_apply: "带身份证到窗口".into(),
            url: url.into(),
            miniprogram_appid: String::new(),
            miniprogram_path: String::new(),
            hours: "工作日 9:00-17:00".into(),
            phone: "0735-12345".into(),
        }
    }

    #[test]
    fn text_is_escaped_and_only_web_links_are_links() {
        let categories = vec![HallCategory {
            code: "social_security".into(),
            name: "社保".into(),
            services: vec![row("社保卡补办", "javascript:alert(1)")],
        }];
        let html = hall("demo", &categories, "<x>", None);
        assert!(html.contains("补办&lt;社保卡&gt;"));
        assert!(html.contains("value=\"&lt;x&gt;\""));
        assert!(!html.contains("javascript:"));
        assert!(html.contains("href=\"tel:0735-12345\""));
        assert!(html.contains("name=\"viewport\""));
    }

    fn hall_of(services: Vec<HallRow>) -> String {
        let categories = vec![HallCategory {
            code: "social_security".into(),
            name: "社保".into(),
            services,
        }];
        hall("lincheng_gov", &categories, "", None)
    }

    #[test]
    fn the_page_does_not_show_the_accounts_internal_id() {
        let html = hall_of(vec![row("社保卡补办", "https://example.gov.cn/sbk")]);
        assert!(!html.contains("lincheng_gov"), "{html}");
        assert!(html.contains("<footer>如需帮助请拨打 12345 政务服务便民热线</footer>"));
    }

    #[test]
    fn a_mini_program_service_tells_how_to_get_in_not_its_appid_or_path() {
        let service = HallRow {
            miniprogram_appid: "wx0123456789abcdef".into(),
            miniprogram_path: "pages/sbk/index".into(),
            ..row("社保卡补办", "")
        };
        let html = hall_of(vec![service.clone()]);
        assert!(!html.contains("wx0123456789abcdef"), "{html}");
        assert!(!html.contains("pages/sbk"), "{html}");
        assert!(html.contains("<dt>办理方式</dt><dd>带身份证到窗口</dd>"));
        assert!(html.contains("href=\"tel:0735-12345\""));
        assert!(
            html.contains("<dd>可在微信小程序中办理，进入方式见上方办理方式，或拨打咨询电话</dd>"),
            "{html}"
        );
        let bare = HallRow {
            how_to_apply: String::new(),
            phone: String::new(),
            ..service
        };
        assert!(
            hall_of(vec![bare])
                .contains("<dd>可在微信小程序中办理，进入方式请拨打 12345 咨询</dd>")
        );
    }

    /// A link stored before the directory parsed URLs (or written past its checks)
    /// is rendered only if the directory would take it now.
    #[test]
    fn a_stored_link_the_directory_would_refuse_is_not_rendered() {
        for url in [
            "https://",
            "https://user@evil.example/sbk",
            "https://exa mple.gov.cn",
            "https://a.gov.cn\u{0}",
            "javascript:alert(1)",
        ] {
            let html = hall_of(vec![row("社保卡补办", url)]);
            assert!(!html.contains("class=\"go\""), "{url:?}: {html}");
        }
        let html = hall_of(vec![row(
            "社保卡补办",
            "https://example.gov.cn/sbk?a=1&b=2",
        )]);
        assert!(
            html.contains("href=\"https://example.gov.cn/sbk?a=1&amp;b=2\""),
            "{html}"
        );
    }

    #[test]
    fn a_stored_right_to_left_override_is_not_shown() {
        let html = hall_of(vec![row(
            "\u{202E}票发开代\u{202C}",
            "https://example.gov.cn/x",
        )]);
        assert!(!html.contains('\u{202E}') && !html.contains('\u{202C}'));
        assert!(html.contains("<h3>票发开代</h3>"), "{html}");
    }
}
