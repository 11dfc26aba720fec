//! `ScreenText`: a text or HTML file screened against the lexicon, each hit with
//! its line and column in the text as sent.

use proto::content::v1 as pb;
use tonic::Code;

use crate::helpers::{AUTHOR_KEY, REVIEWER_KEY, VIEWER_KEY, authed, spawn_app};

#[tokio::test]
async fn hits_are_placed_by_line_and_column_in_text_and_html() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let text = "第一行没有问题。\n请勿使用 ＶＰＮ 翻-牆 软件，\n谨防刷单返利。";
    let hits = client
        .screen_text(authed(
            pb::ScreenTextRequest {
                text: text.into(),
                html: false,
            },
            AUTHOR_KEY,
        ))
        .await
        .expect("an editor screens a draft")
        .into_inner()
        .hits;
    let found: Vec<_> = hits
        .iter()
        .map(|h| {
            (
                h.line,
                h.column,
                h.text.as_str(),
                h.word.as_str(),
                h.category.as_str(),
            )
        })
        .collect();
    // 翻墙软件 overlaps vpn翻墙: a hit of its own (leftmost-longest matching hid it).
    assert_eq!(
        found,
        [
            (2, 6, "ＶＰＮ 翻-牆", "vpn翻墙", "political"),
            (2, 10, "翻-牆 软件", "翻墙软件", "political"),
            (3, 3, "刷单返利", "刷单返利", "fraud"),
        ]
    );

    // In HTML a word split by tags or written as entities is found, at its place
    // in the file; markup and comments are not screened.
    let html = "<p class=\"刷单返利\">通知</p>\n<p>请勿<b>刷单</b>&#36820;利</p><!-- 刷单返利 -->";
    let hits = client
        .screen_text(authed(
            pb::ScreenTextRequest {
                text: html.into(),
                html: true,
            },
            REVIEWER_KEY,
        ))
        .await
        .expect("a reviewer screens HTML")
        .into_inner()
        .hits;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!((hits[0].line, hits[0].column), (2, 9));
    assert_eq!(hits[0].text, "刷单</b>&#36820;利");

    let status = client
        .screen_text(authed(pb::ScreenTextRequest::default(), VIEWER_KEY))
        .await
        .expect_err("a viewer");
    assert_eq!(status.code(), Code::PermissionDenied);
    app.stop().await;
}

#[tokio::test]
async fn html_is_screened_as_saving_the_article_screens_it() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let screen = |text: &str| pb::ScreenTextRequest {
        text: text.into(),
        html: true,
    };
    // Saving drops <rp> with its text (hidden where ruby is shown) and hits 代开发票.
    let hits = client
        .screen_text(authed(screen("<p>代<rp>x</rp>开发票</p>"), AUTHOR_KEY))
        .await
        .expect("an editor screens a draft")
        .into_inner()
        .hits;
    let found: Vec<_> = hits
        .iter()
        .map(|h| (h.line, h.column, h.text.as_str(), h.word.as_str()))
        .collect();
    assert_eq!(found, [(1, 4, "代<rp>x</rp>开发票", "代开发票")]);

    // Saving refuses text in the colour behind it: so does the check before it.
    let status = client
        .screen_text(authed(
            screen(r#"<p>代开<span style="color:#ffffff">x</span>发票</p>"#),
            AUTHOR_KEY,
        ))
        .await
        .expect_err("white text on the white page");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("body: "),
        "{}",
        status.message()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_text_that_saving_refuses_for_a_bidi_override_is_refused_by_the_check_before_it() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    // Screened as 票发开代 (no hit), shown as 代开发票: saving the body refuses it, so
    // the check an editor runs first must not answer "clean".
    for (text, html, field) in [
        ("<p>&#x202E;票发开代&#x202C;</p>", true, "body"),
        ("<p>\u{202E}票发开代\u{202C}</p>", true, "body"),
        ("\u{202E}票发开代\u{202C}", false, "text"),
    ] {
        let status = client
            .screen_text(authed(
                pb::ScreenTextRequest {
                    text: text.into(),
                    html,
                },
                AUTHOR_KEY,
            ))
            .await
            .expect_err("saving refuses a right-to-left override");
        assert_eq!(status.code(), Code::InvalidArgument, "{text:?}");
        assert_eq!(
            status.message(),
            format!(
                "{field} must not hold U+202E (RIGHT-TO-LEFT OVERRIDE): it changes the order \
                 readers see the text in"
            ),
            "{text:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_hit_is_placed_after_dropped_ruby_text_holding_its_own_characters() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    // <rp>'s text is dropped by saving; a 代 or 开 in it is not where the hit is.
    for (html, column, text) in [
        ("<p><rp>代</rp>代开发票</p>", 14, "代开发票"),
        ("<p>代<rp>开</rp>开发票</p>", 4, "代<rp>开</rp>开发票"),
        ("<p>代开<rp>发票</rp>发票</p>", 4, "代开<rp>发票</rp>发票"),
        ("<p><ruby>代<rp>(代</rp></ruby>代开发票</p>", 29, "代开发票"),
    ] {
        let hits = client
            .screen_text(authed(
                pb::ScreenTextRequest {
                    text: html.into(),
                    html: true,
                },
                AUTHOR_KEY,
            ))
            .await
            .expect("an editor screens a draft")
            .into_inner()
            .hits;
        let found: Vec<_> = hits
            .iter()
            .filter(|h| h.word == "代开发票")
            .map(|h| (h.line, h.column, h.text.as_str()))
            .collect();
        assert_eq!(found, [(1, column, text)], "{html}");
    }
    app.stop().await;
}
