//! `govwx rules …`: auto-reply and routing rules of an account.

use proto::interaction::v1::{
    CreateReplyRuleRequest, CreateRoutingRuleRequest, DeleteRuleRequest, ListReplyRulesRequest,
    ListRoutingRulesRequest, MatchKind, ReplyRule, RoutingRule,
};
use serde_json::json;

use crate::cli::{AddRule, MatchArg, RuleKind, Rules};
use crate::client::Target;
use crate::error::Error;
use crate::json;
use crate::output::{Out, or_dash, shorten, table};

/// What a re-run of `rules add` with its request id does.
const RETRY: &str = "to get the rule this call adds instead of adding a second one";

/// Says how to retry a create whose rule may have been added all the same.
fn retry_hint(error: tonic::Status, request_id: &str) -> tonic::Status {
    if super::may_have_been_done(&error) {
        eprintln!("govwx: to retry without adding a second rule, add --request-id {request_id}");
    }
    error
}

pub async fn run(command: Rules, target: &Target, out: &Out) -> Result<(), Error> {
    let mut client = target.interaction().await?;
    let status = |s| target.status(s);
    match command {
        Rules::List { account, kind } => {
            let account = account.account;
            let reply = if kind != Some(RuleKind::Routing) {
                let request = ListReplyRulesRequest {
                    account: account.clone(),
                };
                let rules = client.list_reply_rules(request).await.map_err(status)?;
                rules.into_inner().rules
            } else {
                Vec::new()
            };
            let routing = if kind != Some(RuleKind::Reply) {
                let request = ListRoutingRulesRequest { account };
                let rules = client.list_routing_rules(request).await.map_err(status)?;
                rules.into_inner().rules
            } else {
                Vec::new()
            };
            if out.json {
                return out.document(&json!({
                    "reply_rules": reply.iter().map(json::reply_rule).collect::<Vec<_>>(),
                    "routing_rules": routing.iter().map(json::routing_rule).collect::<Vec<_>>(),
                }));
            }
            let mut sections = Vec::new();
            if kind != Some(RuleKind::Routing) {
                sections.push(format!("REPLY RULES\n{}", reply_table(&reply)));
            }
            if kind != Some(RuleKind::Reply) {
                sections.push(format!("ROUTING RULES\n{}", routing_table(&routing)));
            }
            out.line(&sections.join("\n\n"))
        }
        Rules::Add(AddRule::Reply {
            account,
            match_kind,
            patterns,
            text,
            priority,
            resolves,
            disabled,
            request_id,
        }) => {
            let request_id = super::request_id(request_id, RETRY);
            let rule = CreateReplyRuleRequest {
                account: account.account,
                r#match: match_kind_of(match_kind) as i32,
                patterns,
                priority,
                text,
                news: Vec::new(),
                resolves,
                enabled: !disabled,
                request_id: request_id.clone(),
            };
            let rule = client
                .create_reply_rule(rule)
                .await
                .map_err(|e| retry_hint(e, &request_id))
                .map_err(status)?
                .into_inner();
            if out.json {
                return out.document(&json::reply_rule(&rule));
            }
            out.line(&reply_table(&[rule]))
        }
        Rules::Add(AddRule::Routing {
            account,
            keywords,
            department,
            category,
            priority,
            request_id,
        }) => {
            let request_id = super::request_id(request_id, RETRY);
            let rule = CreateRoutingRuleRequest {
                account: account.account,
                keywords,
                category,
                department,
                priority,
                request_id: request_id.clone(),
            };
            let rule = client
                .create_routing_rule(rule)
                .await
                .map_err(|e| retry_hint(e, &request_id))
                .map_err(status)?
                .into_inner();
            if out.json {
                return out.document(&json::routing_rule(&rule));
            }
            out.line(&routing_table(&[rule]))
        }
        Rules::Rm { kind, id } => {
            let request = DeleteRuleRequest { id: id.clone() };
            match kind {
                RuleKind::Reply => client.delete_reply_rule(request).await,
                RuleKind::Routing => client.delete_routing_rule(request).await,
            }
            .map_err(status)?;
            if out.json {
                return out.document(&json!({ "deleted": id }));
            }
            out.line(&format!("deleted rule {id}"))
        }
    }
}

fn match_kind_of(kind: MatchArg) -> MatchKind {
    match kind {
        MatchArg::Exact => MatchKind::Exact,
        MatchArg::Contains => MatchKind::Contains,
        MatchArg::Regex => MatchKind::Regex,
        MatchArg::MenuClick => MatchKind::MenuClick,
        MatchArg::Subscribe => MatchKind::Subscribe,
    }
}

fn reply_table(rules: &[ReplyRule]) -> String {
    let rows = rules.iter().map(|r| {
        let answer = if r.news.is_empty() {
            r.text.clone()
        } else {
            format!("{} news item(s)", r.news.len())
        };
        vec![
            r.id.clone(),
            json::match_kind(r.r#match),
            or_dash(&r.patterns.join(", ")),
            r.priority.to_string(),
            if r.resolves { "yes" } else { "no" }.to_owned(),
            if r.enabled { "yes" } else { "no" }.to_owned(),
            shorten(&answer, 40),
        ]
    });
    table(
        &[
            "id", "match", "patterns", "priority", "resolves", "enabled", "answer",
        ],
        rows,
    )
}

fn routing_table(rules: &[RoutingRule]) -> String {
    let rows = rules.iter().map(|r| {
        vec![
            r.id.clone(),
            if r.keywords.is_empty() {
                "(default)".to_owned()
            } else {
                r.keywords.join(", ")
            },
            r.department.clone(),
            or_dash(&r.category),
            r.priority.to_string(),
        ]
    });
    table(
        &["id", "keywords", "department", "category", "priority"],
        rows,
    )
}
