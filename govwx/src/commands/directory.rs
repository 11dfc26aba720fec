//! `govwx directory …`: the convenience-service directory (content-svc).

use proto::content::v1::{ImportServicesRequest, ListServicesRequest};
use serde_json::json;

use crate::cli::Directory;
use crate::client::Target;
use crate::error::Error;
use crate::output::{Out, or_dash, shorten, table};

pub async fn run(command: Directory, target: &Target, out: &Out) -> Result<(), Error> {
    let mut client = target.content().await?;
    match command {
        Directory::List { account, category } => {
            let request = ListServicesRequest {
                account: account.account,
                category: category.unwrap_or_default(),
            };
            let services = client
                .list_services(request)
                .await
                .map_err(|s| target.status(s))?
                .into_inner()
                .services;
            if out.json {
                let services: Vec<_> = services
                    .iter()
                    .map(|s| {
                        json!({
                            "id": s.id,
                            "account": s.account,
                            "category": s.category,
                            "name": s.name,
                            "url": s.url,
                            "description": s.description,
                            "department": s.department,
                        })
                    })
                    .collect();
                return out.document(&json!({ "services": services }));
            }
            if services.is_empty() {
                eprintln!("no services");
                return Ok(());
            }
            let rows = services.iter().map(|s| {
                vec![
                    s.category.clone(),
                    s.name.clone(),
                    or_dash(&s.department),
                    s.url.clone(),
                    shorten(&s.description, 30),
                ]
            });
            out.line(&table(
                &["category", "name", "department", "url", "description"],
                rows,
            ))
        }
        Directory::Import { file, dry_run } => {
            let content = super::lexicon::read_text(&file)?;
            let result = client
                .import_services(ImportServicesRequest { content, dry_run })
                .await
                .map_err(|s| target.status(s))?
                .into_inner();
            if out.json {
                let services: Vec<_> = result
                    .services
                    .iter()
                    .map(|s| {
                        json!({
                            "line": s.line, "id": s.id, "account": s.account,
                            "name": s.name, "change": s.change,
                        })
                    })
                    .collect();
                return out.document(&json!({
                    "dry_run": dry_run,
                    "created": result.created,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                    "services": services,
                }));
            }
            let rows = result
                .services
                .iter()
                .filter(|s| s.change != "unchanged")
                .map(|s| {
                    vec![
                        s.line.to_string(),
                        s.change.clone(),
                        s.account.clone(),
                        s.name.clone(),
                        s.id.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            if !rows.is_empty() {
                out.line(&table(&["line", "change", "account", "name", "id"], rows))?;
            }
            out.line(&format!(
                "{}{} created, {} updated, {} unchanged",
                if dry_run {
                    "dry run (nothing written): "
                } else {
                    ""
                },
                result.created,
                result.updated,
                result.unchanged
            ))
        }
    }
}
