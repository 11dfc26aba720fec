//! Reply and routing rule RPCs (admins only).

use platform::Caller;
use platform::grpc::caller;
use proto::interaction::v1 as pb;
use tonic::{Request, Response, Status};

use prost::Message as _;

use super::{ADMINS, GrpcError, InteractionGrpc, request_id, required};
use crate::domain::rules::parse_id;
use crate::domain::{ReplyRule, RoutingRule};
use crate::store::rules::{CreateRequest, RulesStoreError};

impl InteractionGrpc {
    pub(super) async fn list_reply_rules(
        &self,
        request: Request<pb::ListReplyRulesRequest>,
    ) -> Result<Response<pb::ListReplyRulesResponse>, Status> {
        let caller = caller(&request)?;
        caller.require_any(ADMINS)?;
        let account = reached(caller, required("account", &request.get_ref().account)?)?;
        let found = self
            .rules
            .list_reply_rules(account)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListReplyRulesResponse {
            rules: found.iter().map(ReplyRule::to_proto).collect(),
        }))
    }

    pub(super) async fn create_reply_rule(
        &self,
        request: Request<pb::CreateReplyRuleRequest>,
    ) -> Result<Response<pb::ReplyRule>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(ADMINS)?;
        let mut request = request.into_inner();
        let raw_id = std::mem::take(&mut request.request_id);
        let request_id = request_id(&raw_id)?;
        // What a retry must repeat: the request as received, its id cleared.
        let body = request.encode_to_vec();
        let rule = ReplyRule::from_proto(reply_rule_of(request)).map_err(GrpcError::from)?;
        reached(&caller, &rule.account)?;
        self.configured_account(&rule.account)?;
        let saved = self
            .rules
            .create_reply_rule(rule, created_once(request_id, &body))
            .await
            .map_err(rules_error)?;
        Ok(Response::new(saved.to_proto()))
    }

    pub(super) async fn update_reply_rule(
        &self,
        request: Request<pb::ReplyRule>,
    ) -> Result<Response<pb::ReplyRule>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(ADMINS)?;
        let raw_id = request.get_ref().id.clone();
        required("id", &raw_id)?;
        let rule = ReplyRule::from_proto(request.into_inner()).map_err(GrpcError::from)?;
        let saved = self
            .rules
            .update_reply_rule(rule, caller.accounts.filter().as_deref())
            .await
            .map_err(rules_error)?
            .ok_or(GrpcError::RuleNotFound(raw_id))?;
        Ok(Response::new(saved.to_proto()))
    }

    pub(super) async fn delete_reply_rule(
        &self,
        request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        let caller = caller(&request)?;
        caller.require_any(ADMINS)?;
        let id = rule_id(&request.get_ref().id)?;
        if !self
            .rules
            .delete_reply_rule(id, caller.accounts.filter().as_deref())
            .await
            .map_err(GrpcError::from)?
        {
            return Err(GrpcError::RuleNotFound(id.to_string()).into());
        }
        Ok(Response::new(pb::DeleteRuleResponse {}))
    }

    pub(super) async fn list_routing_rules(
        &self,
        request: Request<pb::ListRoutingRulesRequest>,
    ) -> Result<Response<pb::ListRoutingRulesResponse>, Status> {
        let caller = caller(&request)?;
        caller.require_any(ADMINS)?;
        let account = reached(caller, required("account", &request.get_ref().account)?)?;
        let found = self
            .rules
            .list_routing_rules(account)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListRoutingRulesResponse {
            rules: found.iter().map(RoutingRule::to_proto).collect(),
        }))
    }

    pub(super) async fn create_routing_rule(
        &self,
        request: Request<pb::CreateRoutingRuleRequest>,
    ) -> Result<Response<pb::RoutingRule>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(ADMINS)?;
        let mut request = request.into_inner();
        let raw_id = std::mem::take(&mut request.request_id);
        let request_id = request_id(&raw_id)?;
        // What a retry must repeat: the request as received, its id cleared.
        let body = request.encode_to_vec();
        let rule = RoutingRule::from_proto(routing_rule_of(request)).map_err(GrpcError::from)?;
        reached(&caller, &rule.account)?;
        rule.validate().map_err(GrpcError::from)?;
        self.configured_account(&rule.account)?;
        self.known_department("department", rule.department.trim())?;
        self.serves_account("department", rule.department.trim(), &rule.account)?;
        self.tickets
            .deadline_policy()
            .check_category(&rule.category)
            .map_err(|reason| GrpcError::invalid("category", reason))?;
        let saved = self
            .rules
            .create_routing_rule(rule, created_once(request_id, &body))
            .await
            .map_err(rules_error)?;
        Ok(Response::new(saved.to_proto()))
    }

    pub(super) async fn delete_routing_rule(
        &self,
        request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        let caller = caller(&request)?;
        caller.require_any(ADMINS)?;
        let id = rule_id(&request.get_ref().id)?;
        if !self
            .rules
            .delete_routing_rule(id, caller.accounts.filter().as_deref())
            .await
            .map_err(GrpcError::from)?
        {
            return Err(GrpcError::RuleNotFound(id.to_string()).into());
        }
        Ok(Response::new(pb::DeleteRuleResponse {}))
    }
}

/// `account` if the caller's key reaches it; another account's rules look absent.
fn reached<'a>(caller: &Caller, account: &'a str) -> Result<&'a str, GrpcError> {
    if caller.may_access(account) {
        Ok(account)
    } else {
        Err(GrpcError::AccountNotFound(account.to_owned()))
    }
}

fn rule_id(raw: &str) -> Result<uuid::Uuid, GrpcError> {
    required("id", raw)?;
    Ok(parse_id(raw)?)
}

fn rules_error(error: RulesStoreError) -> GrpcError {
    match error {
        RulesStoreError::Invalid(error) => GrpcError::Rule(error),
        RulesStoreError::Request(conflict) => GrpcError::RuleRequest(conflict),
        RulesStoreError::Db(error) => GrpcError::Database(error),
    }
}

/// A create's request id, if it has one, with the request it came with.
fn created_once<'a>(id: Option<&'a str>, body: &'a [u8]) -> Option<CreateRequest<'a>> {
    id.map(|id| CreateRequest { id, body })
}

/// The rule a create asks for, as `ReplyRule::from_proto` reads it (no id yet).
fn reply_rule_of(request: pb::CreateReplyRuleRequest) -> pb::ReplyRule {
    pb::ReplyRule {
        id: String::new(),
        account: request.account,
        r#match: request.r#match,
        patterns: request.patterns,
        priority: request.priority,
        text: request.text,
        news: request.news,
        resolves: request.resolves,
        enabled: request.enabled,
    }
}

/// The rule a create asks for, as `RoutingRule::from_proto` reads it (no id yet).
fn routing_rule_of(request: pb::CreateRoutingRuleRequest) -> pb::RoutingRule {
    pb::RoutingRule {
        id: String::new(),
        account: request.account,
        keywords: request.keywords,
        category: request.category,
        department: request.department,
        priority: request.priority,
    }
}
