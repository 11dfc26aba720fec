//! Images for articles. An editor uploads an image (`UploadImage`: the bytes, kept
//! in `article_images`) and refers to it in a body as `<img src="image:{id}">` or as
//! the cover (`cover_image_id`). When the article is sent, each body image is
//! uploaded with `media/uploadimg` and its reference replaced by WeChat's URL, and
//! a cover image becomes a permanent material (`material/add_material`); what WeChat
//! gave back is kept, so an image is uploaded once however often it is sent. Two
//! sends at once may both upload it: the first answer kept is the one both use,
//! and a second material is deleted (`material/del_material`).
//! Images already on WeChat's host (`mmbiz.qpic.cn`) pass as they are; any other
//! image URL is refused when the article is saved, since WeChat would drop it.

use platform::Role;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;
use wechat::api::media::ImageFile;
use wechat::api::publish::DraftArticle;

use super::AppError;
use super::articles::Who;
use super::publishing::{Publisher, SendError, draft};
use crate::domain::article::{ArticleContent, replace_image};
use crate::domain::media::{self, ImageKind};
use crate::domain::request::{CreateKind, CreateRequest, RequestIdError};
use crate::store::articles::ArticleRow;
use crate::store::media::{self as store, ImageRow, NewImage};

/// The image use cases.
#[derive(Clone)]
pub struct Media {
    db: PgPool,
    publisher: Publisher,
}

impl Media {
    pub fn new(db: PgPool, publisher: Publisher) -> Self {
        Self { db, publisher }
    }

    /// Stores an uploaded image of `account` for the caller's department (editors).
    /// A retry of a call that gave `request` is answered with the image that call
    /// stored.
    pub async fn upload(
        &self,
        who: &Who,
        account: &str,
        data: &[u8],
        request: Option<&CreateRequest>,
    ) -> Result<ImageRow, AppError> {
        if !who
            .actor
            .roles
            .iter()
            .any(|r| matches!(r, Role::Editor | Role::Admin))
        {
            return Err(crate::domain::review::ReviewError::RoleNeeded {
                role: "editor",
                action: "upload an image",
            }
            .into());
        }
        if !who.accounts.contains(account) {
            return Err(AppError::NotFound);
        }
        let kind = media::check_image(data)?;
        let id = Uuid::now_v7();
        let mut tx = self.db.begin().await?;
        let create = CreateKind::Image;
        if let Some(earlier) =
            super::requests::claim(&mut tx, account, request, create, &who.department, id).await?
        {
            drop(tx);
            return store::get_many(&self.db, &[earlier])
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    RequestIdError::Gone {
                        id: request
                            .map(|r| r.id.as_str().to_owned())
                            .unwrap_or_default(),
                        what: "image",
                        result: earlier,
                    }
                    .into()
                });
        }
        let filename = format!("{id}.{}", kind.extension());
        let image = store::insert(
            &mut *tx,
            &NewImage {
                id,
                account,
                department: &who.department,
                filename: &filename,
                content_type: kind.content_type(),
                bytes: data,
                uploaded_by: &who.actor.id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(image)
    }

    /// The WeChat drafts of a message's articles (headline first): body images
    /// uploaded and their references rewritten, a cover image made a material.
    pub async fn drafts(&self, rows: &[ArticleRow]) -> Result<Vec<DraftArticle>, SendError> {
        let mut drafts = Vec::with_capacity(rows.len());
        for row in rows {
            let content = row.content();
            let mut body = row.body.clone();
            for id in content.body_images() {
                let url = self.body_url(&row.account, id).await?;
                body = replace_image(&body, id, &url);
            }
            let thumb = match row.cover_image_id {
                Some(id) => self.cover_media_id(&row.account, id).await?,
                None => row.cover_media_id.clone(),
            };
            drafts.push(draft(row, body, thumb));
        }
        Ok(drafts)
    }

    async fn image(&self, account: &str, id: Uuid) -> Result<ImageRow, SendError> {
        store::get_many(&self.db, &[id])
            .await?
            .into_iter()
            .find(|image| image.account == account)
            .ok_or_else(|| SendError::Permanent(format!("image {id} is not uploaded to {account}")))
    }

    async fn body_url(&self, account: &str, id: Uuid) -> Result<String, SendError> {
        let image = self.image(account, id).await?;
        if let Some(url) = image.wechat_url {
            return Ok(url);
        }
        let bytes = store::bytes(&self.db, id).await?;
        let url = self
            .publisher
            .upload_image(account, file(&image, &bytes))
            .await?;
        // Two sends at once may both upload it: the first URL kept is the one every
        // draft uses (the other copy takes no quota and nobody sees it).
        let kept = store::set_wechat_url(&self.db, id, &url).await?;
        tracing::info!(image = %id, account, "body image uploaded to wechat");
        Ok(kept)
    }

    /// The image's permanent material, made on its first send. Two sends at once
    /// (two articles with one cover, a preview and a send) may both make one: the
    /// first kept wins (compare-and-set) and the other deletes its own, since every
    /// material takes a place in the account's quota (100,000 images) for good.
    async fn cover_media_id(&self, account: &str, id: Uuid) -> Result<String, SendError> {
        let image = self.image(account, id).await?;
        if let Some(media_id) = image.material_media_id {
            return Ok(media_id);
        }
        let bytes = store::bytes(&self.db, id).await?;
        let media_id = self
            .publisher
            .add_image_material(account, file(&image, &bytes))
            .await?;
        let kept = match store::set_material(&self.db, id, &media_id).await {
            Ok(kept) => kept,
            Err(error) => {
                // The UPDATE may have committed before the answer was lost (the
                // connection dropped before RETURNING was read): this media id may be
                // the stored one, and deleting it would fail every later send of the
                // cover. Deleted only when the row is read to hold another material
                // (the compare-and-set never stores a second); otherwise left, logged
                // and counted as possibly leaked, a quota place at worst.
                match self.image(account, id).await {
                    Ok(image) if image.material_media_id.as_deref() == Some(&media_id) => {
                        tracing::info!(image = %id, account, %error, "cover material kept though its answer was lost");
                        return Ok(media_id);
                    }
                    Ok(image) if image.material_media_id.is_some() => {
                        self.delete_material(account, id, &media_id).await;
                    }
                    reread => {
                        metrics::counter!("content_material_possibly_leaked_total").increment(1);
                        tracing::warn!(
                            image = %id,
                            account,
                            media_id,
                            %error,
                            reread_failed = reread.is_err(),
                            "a new permanent material may or may not be kept (its update's answer was lost); not deleted, it may take a place in the quota"
                        );
                    }
                }
                return Err(error.into());
            }
        };
        if kept == media_id {
            tracing::info!(image = %id, account, "cover image added as permanent material");
        } else {
            tracing::info!(
                image = %id,
                account,
                kept = %kept,
                "cover image was made a material by another send meanwhile; deleting this one"
            );
            self.delete_material(account, id, &media_id).await;
        }
        Ok(kept)
    }

    /// Deletes a material nothing refers to. A failure does not fail the send (the
    /// kept material is what it uses): it is logged and counted, the media id
    /// named, for whoever frees the account's quota.
    async fn delete_material(&self, account: &str, id: Uuid, media_id: &str) {
        if let Err(error) = self.publisher.delete_material(account, media_id).await {
            metrics::counter!("content_material_delete_failures_total").increment(1);
            tracing::warn!(
                image = %id,
                account,
                media_id,
                error = %error,
                "an unused permanent material could not be deleted; it takes a place in the quota"
            );
        }
    }
}

fn file<'a>(image: &'a ImageRow, bytes: &'a [u8]) -> ImageFile<'a> {
    ImageFile {
        filename: &image.filename,
        content_type: ImageKind::from_content_type(&image.content_type)
            .map(ImageKind::content_type)
            .unwrap_or("image/jpeg"),
        bytes,
    }
}

/// Checks, in the saving transaction, that every image an article refers to was
/// uploaded to its account; the error names the field and the image.
pub async fn check_images(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    content: &ArticleContent,
) -> Result<(), AppError> {
    let mut wanted: Vec<(&'static str, Uuid)> = content
        .body_images()
        .into_iter()
        .map(|id| ("body", id))
        .collect();
    if let Some(id) = content.cover_image_id {
        wanted.push(("cover_image_id", id));
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = wanted.iter().map(|(_, id)| *id).collect();
    let found = store::accounts_of(tx, &ids).await?;
    for (field, id) in wanted {
        if !found.iter().any(|(f, a)| *f == id && a == account) {
            return Err(AppError::Invalid(format!(
                "{field}: image {id} was not uploaded to account {account}"
            )));
        }
    }
    Ok(())
}
