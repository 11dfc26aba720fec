//! Followers over gRPC: agents and viewers read them, agents tag them.

use proto::interaction::v1::{GetFollowerRequest, ListFollowersRequest, TagFollowerRequest};
use tonic::Code;

use crate::helpers::{ACCOUNT, EDITOR_KEY, SOCIAL_AGENT_KEY, SOCIAL_VIEWER_KEY, spawn_app};

fn tag(openid: &str, add: &[&str], remove: &[&str]) -> TagFollowerRequest {
    TagFollowerRequest {
        account: ACCOUNT.into(),
        openid: openid.into(),
        add: add.iter().map(|t| t.to_string()).collect(),
        remove: remove.iter().map(|t| t.to_string()).collect(),
    }
}

#[tokio::test]
async fn an_agent_tags_a_follower_and_a_viewer_reads_the_tags() {
    let app = spawn_app().await;
    app.insert_follower("o-alice", Some(10)).await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;

    agent
        .tag_follower(tag("o-alice", &["志愿者", "低保户"], &[]))
        .await
        .unwrap();
    let tagged = agent
        .tag_follower(tag("o-alice", &[], &["低保户"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tagged.tags, ["志愿者"]);

    let seen = app
        .client(Some(SOCIAL_VIEWER_KEY))
        .await
        .get_follower(GetFollowerRequest {
            account: ACCOUNT.into(),
            openid: "o-alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.tags, ["志愿者"]);
    assert!(seen.subscribed);
    assert!(seen.last_interaction_at.is_some());
}

#[tokio::test]
async fn followers_are_listed_by_tag_and_paged() {
    let app = spawn_app().await;
    for openid in ["o-a", "o-b", "o-c"] {
        app.insert_follower(openid, None).await;
    }
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    for openid in ["o-a", "o-c"] {
        agent
            .tag_follower(tag(openid, &["志愿者"], &[]))
            .await
            .unwrap();
    }

    let volunteers = agent
        .list_followers(ListFollowersRequest {
            account: ACCOUNT.into(),
            tag: "志愿者".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = volunteers
        .followers
        .iter()
        .map(|f| f.openid.as_str())
        .collect();
    assert_eq!(ids, ["o-a", "o-c"]);

    let first = agent
        .list_followers(ListFollowersRequest {
            account: ACCOUNT.into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.followers.len(), 2);
    let rest = agent
        .list_followers(ListFollowersRequest {
            account: ACCOUNT.into(),
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.followers.len(), 1);
    assert_eq!(rest.followers[0].openid, "o-c");
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn tagging_needs_an_agent_and_a_known_follower_and_valid_tags() {
    let app = spawn_app().await;
    app.insert_follower("o-alice", None).await;

    let viewer = app
        .client(Some(SOCIAL_VIEWER_KEY))
        .await
        .tag_follower(tag("o-alice", &["志愿者"], &[]))
        .await
        .unwrap_err();
    assert_eq!(viewer.code(), Code::PermissionDenied);
    let editor = app
        .client(Some(EDITOR_KEY))
        .await
        .get_follower(GetFollowerRequest {
            account: ACCOUNT.into(),
            openid: "o-alice".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(editor.code(), Code::PermissionDenied);

    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let unknown = agent
        .tag_follower(tag("o-nobody", &["志愿者"], &[]))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let too_long = agent
        .tag_follower(tag("o-alice", &["一二三四五六七八九十一"], &[]))
        .await
        .unwrap_err();
    assert_eq!(too_long.code(), Code::InvalidArgument);
    let nothing = agent
        .tag_follower(tag("o-alice", &[], &[]))
        .await
        .unwrap_err();
    assert_eq!(nothing.code(), Code::InvalidArgument);
    assert!(
        nothing.message().starts_with("add:"),
        "{}",
        nothing.message()
    );
    let no_openid = agent
        .get_follower(GetFollowerRequest {
            account: ACCOUNT.into(),
            openid: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(no_openid.code(), Code::InvalidArgument);
    assert!(
        no_openid.message().starts_with("openid:"),
        "{}",
        no_openid.message()
    );
}

/// A tag is a name, as an agent's is: a line break or any other control character in
/// it is refused (INVALID_ARGUMENT naming the list and saying what is wrong), and
/// nothing is tagged.
#[tokio::test]
async fn tags_with_a_line_break_or_control_character_are_refused() {
    let app = spawn_app().await;
    app.insert_follower("o-alice", None).await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    for (add, remove, field) in [
        (&["志愿者\n低保户"][..], &[][..], "add"),
        (&["志愿者\r\n低保户"], &[], "add"),
        (&["志愿者", "低\t保户"], &[], "add"),
        (&["志愿者"], &["低保\u{0}户"], "remove"),
        (&["志\u{1b}[31m愿者"], &[], "add"),
        // Unicode's line and paragraph separators break a line as \n does. (A tag
        // to remove may hold them: one stored before they were refused is removed,
        // `a_tag_stored_with_a_line_separator_can_still_be_removed`.)
        (&["志愿者\u{2028}低保户"], &[], "add"),
    ] {
        let refused = agent
            .tag_follower(tag("o-alice", add, remove))
            .await
            .expect_err("a tag with a control character");
        assert_eq!(refused.code(), Code::InvalidArgument, "{add:?} {remove:?}");
        assert!(
            refused.message().starts_with(&format!("{field}: tag ")),
            "{add:?} {remove:?}: {}",
            refused.message()
        );
        assert!(
            refused
                .message()
                .contains("must not hold control characters (line breaks and tabs included)"),
            "{}",
            refused.message()
        );
    }
    let follower = agent
        .get_follower(GetFollowerRequest {
            account: ACCOUNT.into(),
            openid: "o-alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        follower.tags.is_empty(),
        "nothing tagged: {:?}",
        follower.tags
    );
}

/// Tags were refused for Unicode's line and paragraph separators only after some
/// were stored with one (control characters proper never were). Removing such a
/// tag is the only way to free its slot among a follower's tags, so the remove list
/// is checked for what could be stored, not for what may be added now.
#[tokio::test]
async fn a_tag_stored_with_a_line_separator_can_still_be_removed() {
    let app = spawn_app().await;
    app.insert_follower("o-alice", None).await;
    let stored = "志愿者\u{2028}低保户";
    sqlx::query("INSERT INTO follower_tags (account, openid, tag) VALUES ($1, $2, $3)")
        .bind(ACCOUNT)
        .bind("o-alice")
        .bind(stored)
        .execute(&app.db)
        .await
        .expect("a tag stored before separators were refused");
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;

    let removed = agent
        .tag_follower(tag("o-alice", &[], &[stored]))
        .await
        .expect("a stored tag can be removed")
        .into_inner();
    assert!(removed.tags.is_empty(), "{:?}", removed.tags);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM follower_tags WHERE openid = $1")
        .bind("o-alice")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    // Adding one is still refused.
    let refused = agent
        .tag_follower(tag("o-alice", &[stored], &[]))
        .await
        .expect_err("a separator in a tag to add");
    assert_eq!(refused.code(), Code::InvalidArgument);
}
