//! `govwx followers …`: an account's followers and their tags, and erasing one
//! citizen's data on request.

use proto::interaction::v1::{
    EraseCitizenRequest, Follower, GetFollowerRequest, ListFollowersRequest, TagFollowerRequest,
};
use serde_json::json;

use crate::cli::Followers;
use crate::client::Target;
use crate::error::Error;
use crate::json;
use crate::output::{Out, fields, or_dash, table};

pub async fn run(command: Followers, target: &Target, out: &Out) -> Result<(), Error> {
    let mut client = target.interaction().await?;
    let status = |s| target.status(s);
    match command {
        Followers::Show { account, openid } => {
            let request = GetFollowerRequest {
                account: account.account,
                openid,
            };
            let follower = client.get_follower(request).await.map_err(status)?;
            show(out, &follower.into_inner())
        }
        Followers::List {
            account,
            tag,
            limit,
            page_token,
        } => {
            let request = ListFollowersRequest {
                account: account.account,
                tag: tag.unwrap_or_default(),
                page_size: limit.unwrap_or(0),
                page_token: page_token.unwrap_or_default(),
            };
            let page = client
                .list_followers(request)
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                let followers: Vec<_> = page
                    .followers
                    .iter()
                    .map(|f| json::follower(out, f))
                    .collect();
                return out.document(&json!({
                    "followers": followers,
                    "next_page_token": page.next_page_token,
                }));
            }
            if page.followers.is_empty() {
                eprintln!("no followers");
                return Ok(());
            }
            let rows = page.followers.iter().map(|f| {
                vec![
                    f.openid.clone(),
                    if f.subscribed { "yes" } else { "no" }.to_owned(),
                    out.time(f.subscribed_at.as_ref()),
                    out.time(f.last_interaction_at.as_ref()),
                    or_dash(&f.tags.join(", ")),
                ]
            });
            out.line(&table(
                &["openid", "subscribed", "since", "last interaction", "tags"],
                rows,
            ))?;
            if !page.next_page_token.is_empty() {
                eprintln!("more: --page-token {}", page.next_page_token);
            }
            Ok(())
        }
        Followers::Tag {
            account,
            openid,
            add,
            remove,
        } => {
            let request = TagFollowerRequest {
                account: account.account,
                openid,
                add,
                remove,
            };
            let follower = client.tag_follower(request).await.map_err(status)?;
            show(out, &follower.into_inner())
        }
        Followers::Erase {
            account,
            openid,
            reason,
        } => {
            let request = EraseCitizenRequest {
                account: account.account,
                openid,
                reason,
            };
            let erased = client
                .erase_citizen(request)
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                return out.document(&json!({
                    "erasure_id": erased.erasure_id,
                    "followers": erased.followers,
                    "follower_tags": erased.follower_tags,
                    "directory_answers": erased.directory_answers,
                    "tickets": erased.tickets,
                    "messages": erased.messages,
                    "transitions": erased.transitions,
                    "decided_replies": erased.decided_replies,
                }));
            }
            out.line(&fields(&[
                ("erasure", erased.erasure_id),
                ("followers", erased.followers.to_string()),
                ("tags", erased.follower_tags.to_string()),
                ("directory answers", erased.directory_answers.to_string()),
                ("tickets anonymised", erased.tickets.to_string()),
                ("messages", erased.messages.to_string()),
                ("history entries", erased.transitions.to_string()),
                ("decided replies", erased.decided_replies.to_string()),
            ]))
        }
    }
}

fn show(out: &Out, f: &Follower) -> Result<(), Error> {
    if out.json {
        return out.document(&json::follower(out, f));
    }
    let location = if f.location_at.is_some() {
        format!(
            "{:.5}, {:.5} ({})",
            f.latitude,
            f.longitude,
            out.time(f.location_at.as_ref())
        )
    } else {
        "-".to_owned()
    };
    out.line(&fields(&[
        ("account", f.account.clone()),
        ("openid", f.openid.clone()),
        (
            "subscribed",
            if f.subscribed { "yes" } else { "no" }.to_owned(),
        ),
        ("subscribed at", out.time(f.subscribed_at.as_ref())),
        ("unsubscribed at", out.time(f.unsubscribed_at.as_ref())),
        ("qr scene", or_dash(&f.qr_scene)),
        ("last interaction", out.time(f.last_interaction_at.as_ref())),
        ("location", location),
        ("tags", or_dash(&f.tags.join(", "))),
    ]))
}
