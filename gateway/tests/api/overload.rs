//! The in-flight bound (`MAX_IN_FLIGHT`): past it a callback is refused at once with
//! 503 `overloaded`, counted and not published, and the bound frees with the callback
//! that held it.

use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::helpers::{Options, spawn_app_with};
use crate::samples;

#[tokio::test]
async fn a_callback_past_the_in_flight_bound_is_refused_at_once_then_the_bound_frees() {
    let app = spawn_app_with(Options {
        extra: vec![("MAX_IN_FLIGHT", "1")],
        ..Options::default()
    })
    .await;
    let account = app.plain.id.clone();

    // A callback whose body never ends holds the only permit while it is read.
    let held = app
        .plain
        .plain_callback(&samples::text("oHolder", 1, "hello"));
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&held.query)
        .finish();
    let address = app.base.trim_start_matches("http://");
    let mut holder = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /wechat/{account}?{query} HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        held.body.len() + 1
    );
    holder.write_all(head.as_bytes()).await.unwrap();
    holder.write_all(held.body.as_bytes()).await.unwrap();

    // Until the holder has its permit another callback may still get in; each try is
    // a new message.
    let labels = [("account", account.as_str()), ("outcome", "overloaded")];
    let before = app.metric("gateway_callbacks_total", &labels).await;
    let mut refused = None;
    for n in 0..500 {
        let callback = app
            .plain
            .plain_callback(&samples::text("oLater", 100 + n, "hi"));
        let (status, body) = app.post_text(&account, &callback).await;
        if status == 503 {
            refused = Some((body, format!("{account}:oLater:{}", 100 + n)));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (body, refused_id) = refused.expect("a callback past the bound is refused");
    assert_eq!(body, "overloaded");
    let after = app.metric("gateway_callbacks_total", &labels).await;
    assert_eq!(after - before, 1.0, "the refusal is counted once");
    assert!(
        !app.stored()
            .await
            .iter()
            .any(|(_, id, _)| *id == refused_id),
        "a refused callback is not published"
    );

    // The holder's connection ends: its permit is freed and callbacks get in again.
    drop(holder);
    let mut accepted = false;
    for n in 0..500 {
        let callback = app
            .plain
            .plain_callback(&samples::text("oAfter", 1000 + n, "hi"));
        let (status, _) = app.post_text(&account, &callback).await;
        if status == 200 {
            accepted = true;
            break;
        }
        assert_eq!(status, 503, "only the bound refuses");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(accepted, "the bound frees with the callback that held it");
}
