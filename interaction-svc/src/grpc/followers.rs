//! Follower RPCs: read (agents, viewers), tag (agents) and erase a citizen's data
//! on request (admins).

use platform::grpc::caller;
use proto::interaction::v1 as pb;
use tonic::{Request, Response, Status};

use super::{
    ADMINS, AGENTS, GrpcError, InteractionGrpc, MAX_NOTE_CHARS, NAME_CONTROL_REFUSED, READERS,
    account_id, bounded, convert, name, non_empty, open_id,
};
use crate::domain::PageSize;
use crate::domain::follower::{FollowerInputError, FollowerTag};
use crate::store::followers_read::{FollowerQuery, MAX_TAGS_PER_FOLLOWER, Tagged};
use crate::store::retention::{ERASED_OPENID, Erasure, ErasureRequest};

impl InteractionGrpc {
    pub(super) async fn get_follower(
        &self,
        request: Request<pb::GetFollowerRequest>,
    ) -> Result<Response<pb::Follower>, Status> {
        let caller = caller(&request)?;
        caller.require_any(READERS)?;
        let account = account_id(&request.get_ref().account)?;
        let openid = open_id(&request.get_ref().openid)?;
        if !caller.may_access(account.as_str()) {
            return Err(GrpcError::FollowerNotFound(openid.to_string()).into());
        }
        let row = self
            .followers
            .get(&account, &openid)
            .await
            .map_err(GrpcError::from)?
            .ok_or_else(|| GrpcError::FollowerNotFound(openid.to_string()))?;
        Ok(Response::new(convert::follower(row)))
    }

    pub(super) async fn list_followers(
        &self,
        request: Request<pb::ListFollowersRequest>,
    ) -> Result<Response<pb::ListFollowersResponse>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(READERS)?;
        let request = request.into_inner();
        let account = account_id(&request.account)?;
        if !caller.may_access(account.as_str()) {
            return Err(GrpcError::AccountNotFound(account.to_string()).into());
        }
        let tag = match request.tag.trim() {
            "" => None,
            raw => Some(FollowerTag::parse(raw).map_err(GrpcError::from)?),
        };
        let page_size = PageSize::parse(request.page_size).map_err(GrpcError::from)?;
        let after = non_empty("page_token", &request.page_token)?;
        let query = FollowerQuery {
            account: &account,
            tag: tag.as_ref(),
            limit: page_size.get(),
            after: after.as_deref(),
        };
        let (rows, next) = self.followers.list(&query).await.map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListFollowersResponse {
            followers: rows.into_iter().map(convert::follower).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    pub(super) async fn tag_follower(
        &self,
        request: Request<pb::TagFollowerRequest>,
    ) -> Result<Response<pb::Follower>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(AGENTS)?;
        let request = request.into_inner();
        let account = account_id(&request.account)?;
        let openid = open_id(&request.openid)?;
        if !caller.may_access(account.as_str()) {
            return Err(GrpcError::FollowerNotFound(openid.to_string()).into());
        }
        // A tag is a name (shown in lists, mirrored to WeChat's tags later), checked
        // as agents' names are: no control character at all, line breaks included.
        // The error names the list and the tag. Only a tag to add (`strict`): one to
        // remove is checked for what could ever be stored (`FollowerTag::parse`),
        // since tags with U+2028/U+2029 were stored before those were refused, and
        // removing one is the only way to free its slot.
        let parse = |field: &'static str, raw: &[String], strict: bool| {
            raw.iter()
                .map(|tag| {
                    let refused = |reason: &str| {
                        GrpcError::invalid(field, format!("tag {:?} {reason}", tag.trim()))
                    };
                    if strict {
                        name(field, tag, usize::MAX).map_err(|error| match error {
                            GrpcError::Invalid { reason, .. } => refused(&reason),
                            other => other,
                        })?;
                    }
                    FollowerTag::parse(tag).map_err(|error| match error {
                        FollowerInputError::TagControl(_) => refused(NAME_CONTROL_REFUSED),
                        other => GrpcError::invalid(field, other.to_string()),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        if request.add.len() + request.remove.len() > MAX_TAGS_PER_FOLLOWER {
            return Err(GrpcError::invalid(
                "add",
                format!("a follower carries at most {MAX_TAGS_PER_FOLLOWER} tags (WeChat's limit)"),
            )
            .into());
        }
        let (add, remove) = (
            parse("add", &request.add, true)?,
            parse("remove", &request.remove, false)?,
        );
        if add.is_empty() && remove.is_empty() {
            return Err(GrpcError::invalid("add", "name at least one tag to add or remove").into());
        }
        let row = self
            .followers
            .tag(&account, &openid, &add, &remove)
            .await
            .map_err(GrpcError::from)?;
        match row {
            Tagged::Done(row) => Ok(Response::new(convert::follower(row))),
            Tagged::NotFound => Err(GrpcError::FollowerNotFound(openid.to_string()).into()),
            Tagged::TooMany => Err(GrpcError::invalid(
                "add",
                format!("a follower carries at most {MAX_TAGS_PER_FOLLOWER} tags (WeChat's limit)"),
            )
            .into()),
        }
    }

    pub(super) async fn erase_citizen(
        &self,
        request: Request<pb::EraseCitizenRequest>,
    ) -> Result<Response<pb::EraseCitizenResponse>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(ADMINS)?;
        let request = request.into_inner();
        let account = account_id(&request.account)?;
        let openid = open_id(&request.openid)?;
        if openid.as_str() == ERASED_OPENID {
            return Err(
                GrpcError::invalid("openid", "names no citizen (erased tickets' mark)").into(),
            );
        }
        let reason = bounded("reason", &request.reason, MAX_NOTE_CHARS)?;
        if reason.is_empty() {
            return Err(GrpcError::invalid(
                "reason",
                "must say which request of the citizen this is (kept in the audit)",
            )
            .into());
        }
        if !caller.may_access(account.as_str()) {
            return Err(GrpcError::AccountNotFound(account.to_string()).into());
        }
        let erasure = self
            .followers
            .erase(&ErasureRequest {
                account: &account,
                openid: &openid,
                requested_by: &caller.department,
                key_id: &caller.key_id,
                reason,
            })
            .await
            .map_err(GrpcError::from)?;
        match erasure {
            Erasure::Done { audit_id, removed } => {
                let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
                Ok(Response::new(pb::EraseCitizenResponse {
                    erasure_id: audit_id.to_string(),
                    followers: count(removed.followers),
                    follower_tags: count(removed.follower_tags),
                    directory_answers: count(removed.directory_answers),
                    tickets: count(removed.tickets),
                    messages: count(removed.messages),
                    transitions: count(removed.transitions),
                    decided_replies: count(removed.decided_replies),
                }))
            }
            Erasure::OpenTickets(open) => Err(GrpcError::OpenTickets(open).into()),
        }
    }
}
