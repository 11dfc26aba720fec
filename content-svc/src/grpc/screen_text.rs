//! `ScreenText`: a text screened against the install's lexicon, each hit with its
//! line and column (`govwx lexicon check FILE`).

use platform::Role;
use platform::grpc::caller;
use proto::content::v1 as pb;
use tonic::{Request, Response};

use super::{ContentGrpc, GrpcError, Reply};

/// Whoever writes or reviews articles may check a text before submitting it.
const SCREENERS: &[Role] = &[Role::Editor, Role::Reviewer, Role::Publisher];

fn wire(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl ContentGrpc {
    pub(super) async fn screen_text_door(
        &self,
        request: Request<pb::ScreenTextRequest>,
    ) -> Reply<pb::ScreenTextResponse> {
        caller(&request)?.require_any(SCREENERS)?;
        let req = request.get_ref();
        let hits = self
            .articles
            .lexicon()
            .screen_text(&req.text, req.html)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::ScreenTextResponse {
            hits: hits
                .into_iter()
                .map(|h| pb::TextHit {
                    line: wire(h.line),
                    column: wire(h.column),
                    start: wire(h.start),
                    end: wire(h.end),
                    text: h.text,
                    word: h.word,
                    category: h.category.as_str().to_owned(),
                })
                .collect(),
        }))
    }
}
