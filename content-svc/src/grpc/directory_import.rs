//! `ImportServices`: a directory seed file over gRPC (`govwx directory import`).
//! Decodes, checks the caller's role, calls `app::directory`'s import, encodes.

use platform::Role;
use proto::content::v1 as pb;
use tonic::{Request, Response};

use super::{ContentGrpc, GrpcError, Reply, who};

/// Admins import any department's lines, editors their own department's.
const IMPORTERS: &[Role] = &[Role::Editor, Role::Admin];

impl ContentGrpc {
    pub(super) async fn import_services_door(
        &self,
        request: Request<pb::ImportServicesRequest>,
    ) -> Reply<pb::ImportServicesResponse> {
        let who = who(&request, IMPORTERS)?;
        let req = request.into_inner();
        let plan = self
            .directory
            .import(&who, &req.content, req.dry_run)
            .await
            .map_err(GrpcError::from)?;
        let count = |change| plan.iter().filter(|l| l.change == change).count() as u32;
        use crate::app::directory::ImportChange;
        Ok(Response::new(pb::ImportServicesResponse {
            created: count(ImportChange::Created),
            updated: count(ImportChange::Updated),
            unchanged: count(ImportChange::Unchanged),
            services: plan
                .iter()
                .map(|l| pb::ImportedService {
                    line: u32::try_from(l.line).unwrap_or(u32::MAX),
                    id: l.id.to_string(),
                    account: l.account.clone(),
                    name: l.name.clone(),
                    change: l.change.as_str().to_owned(),
                })
                .collect(),
        }))
    }
}
