//! Text that would show citizens a word in an order the sensitive-word screener did
//! not read (a bidirectional formatting character) is refused at the door, naming
//! the field and the code point; a style that hides part of an article is dropped.

use proto::content::v1 as pb;
use tonic::Code;
use wechat_sim::api_server::AccountKind;

use crate::articles::{Stack, create, spawn_stack};
use crate::helpers::{AUTHOR_KEY, WATER_EDITOR_KEY, authed, by, spawn_app};

#[tokio::test]
async fn a_directory_service_named_with_a_right_to_left_override_is_refused_naming_the_code_point()
{
    let app = spawn_app().await;
    // Screened as 票发开代 (no hit), shown on the hall as 代开发票.
    let service = pb::Service {
        account: "chenzhou".into(),
        category: "utilities".into(),
        name: "\u{202E}票发开代\u{202C}".into(),
        url: "https://water.example.gov.cn/pay".into(),
        enabled: true,
        ..pb::Service::default()
    };
    let status = app
        .client
        .clone()
        .create_service(authed(service, WATER_EDITOR_KEY))
        .await
        .expect_err("a right-to-left override in the name");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "name must not hold U+202E (RIGHT-TO-LEFT OVERRIDE): it changes the order readers \
         see the text in"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_article_with_a_bidi_override_is_refused_and_a_hidden_span_is_shown() {
    let stack = spawn_stack(AccountKind::Service).await;
    let status = create_as_li(&stack, "\u{202E}票发开代\u{202C}", "<p>本周六停水。</p>")
        .await
        .expect_err("a right-to-left override in the title");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("title must not hold U+202E"),
        "{}",
        status.message()
    );
    // The same character as an HTML character reference in the body.
    let status = create_as_li(&stack, "停水通知", "<p>&#x202E;票发开代&#x202C;</p>")
        .await
        .expect_err("a right-to-left override in the body");
    assert!(
        status.message().starts_with("body must not hold U+202E"),
        "{}",
        status.message()
    );

    let created = create_as_li(
        &stack,
        "停水通知",
        r#"<p style="text-align:center">本周六<span style="display:none">不</span>停水。</p>"#,
    )
    .await
    .expect("created");
    let body = body_as_li(&stack, &created.id).await;
    assert_eq!(
        body,
        r#"<p style="text-align:center">本周六<span>不</span>停水。</p>"#
    );
}

#[tokio::test]
async fn an_article_with_text_in_the_colour_behind_it_is_refused_naming_the_body() {
    let stack = spawn_stack(AccountKind::Service).await;
    // Screened as 代开x发票 (no hit), read as 代开 发票.
    let status = create_as_li(
        &stack,
        "停水通知",
        r#"<p>代开<span style="color:#ffffff">x</span>发票</p>"#,
    )
    .await
    .expect_err("white text on the white page");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("body: the text \"x\" is #ffffff on #ffffff, a contrast of 1.00"),
        "{}",
        status.message()
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn white_text_on_a_pasted_background_or_in_a_mark_saves_and_keeps_its_background() {
    let stack = spawn_stack(AccountKind::Service).await;
    // The `background` shorthand editors paste (white on red), and white text
    // inherited into <mark> (black on yellow, as browsers draw it): readers see both.
    let created = create_as_li(
        &stack,
        "停水通知",
        r#"<section style="background:#c00;color:#fff">白字</section><p style="color:#fff;background-color:#c00">停水<mark>今日</mark></p>"#,
    )
    .await
    .expect("white on red, and a mark, are seen by readers");
    let body = body_as_li(&stack, &created.id).await;
    assert!(
        body.starts_with(r#"<section style="background-color:#c00;color:#fff">白字</section>"#),
        "{body}"
    );

    // White on a white background is still hidden from readers.
    let status = create_as_li(
        &stack,
        "停水通知",
        r#"<section style="background:#fff;color:#fff">白字</section>"#,
    )
    .await
    .expect_err("white on white");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("body: the text \"白字\" is #ffffff on #ffffff"),
        "{}",
        status.message()
    );
    stack.app.stop().await;
}

/// 李, an author, writes the free publication `title` with `body`.
async fn create_as_li(
    stack: &Stack,
    title: &str,
    body: &str,
) -> Result<pb::Article, tonic::Status> {
    stack
        .app
        .client
        .clone()
        .create_article(by(
            create(title, body, pb::Channel::Freepublish),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The body of article `id` as 李 reads it back: what the sanitizer kept.
async fn body_as_li(stack: &Stack, id: &str) -> String {
    stack
        .app
        .client
        .clone()
        .get_article(by(
            pb::GetArticleRequest { id: id.to_owned() },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("readable")
        .into_inner()
        .article
        .and_then(|a| a.content)
        .expect("content")
        .body
}
