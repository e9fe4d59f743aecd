//! Posters: images of an event, validated by their bytes, kept in object
//! storage.
//!
//! Consistency between rows and objects: the object is written first, then
//! the row committed; if the commit fails the object is deleted. A crash
//! between the two leaves an object without a row, which `sweep_orphans`
//! removes. Deletes commit the row removal first, then delete the object
//! (a failed object delete is likewise swept).

use bytes::Bytes;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use tracing::instrument;
use uuid::Uuid;

use super::{Caller, DomainError, DomainResult, FieldErrors, does_not_exist};
use crate::cache::Family;
use crate::db::entities::{event, media};
use crate::db::errors::is_fk_violation;
use crate::state::AppState;
use crate::storage::StorageError;

/// The largest poster accepted: 500 KiB.
pub const MAX_POSTER_BYTES: usize = 512_000;

/// The image formats accepted, recognised by their first bytes: the content
/// type and the file extension.
pub fn sniff_image(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("image/jpeg", "jpg"))
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(("image/gif", "gif"))
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(("image/webp", "webp"))
    } else {
        None
    }
}

/// The client's file name without directories or odd characters.
pub fn sanitise_file_name(raw: Option<&str>) -> String {
    let base = raw.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ' | '(' | ')') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "upload".into()
    } else {
        cleaned
    }
}

pub(crate) fn storage_error(err: StorageError) -> DomainError {
    match err {
        StorageError::NotFound => DomainError::NotFound,
        // Logged by the storage itself, once per outage.
        StorageError::Unavailable(_) => {
            DomainError::Unavailable("Object storage is unavailable. Try again shortly.".into())
        }
    }
}

/// An uploaded file: at most `MAX_POSTER_BYTES + 1` bytes kept, `size` the
/// whole size sent.
#[derive(Debug, Clone)]
pub struct PosterImage {
    pub bytes: Bytes,
    pub size: usize,
    pub file_name: Option<String>,
}

/// An image checked by its bytes.
#[derive(Debug, Clone)]
pub struct CheckedImage {
    pub bytes: Bytes,
    pub content_type: &'static str,
    pub extension: &'static str,
    pub file_name: Option<String>,
}

/// The image rules (present, not empty, JPEG/PNG/GIF/WebP by its bytes,
/// ≤ 500 KiB); errors go on `image`.
pub fn check_image(image: Option<PosterImage>, errors: &mut FieldErrors) -> Option<CheckedImage> {
    let Some(image) = image else {
        errors.add("image", "No file was submitted.");
        return None;
    };
    if image.size == 0 {
        errors.add("image", "The submitted file is empty.");
        return None;
    }
    // The kind first: a large file of the wrong kind is told it is the
    // wrong kind, not that it is large.
    let Some((content_type, extension)) = sniff_image(&image.bytes) else {
        errors.add(
            "image",
            "Upload a valid image. The file is not a JPEG, PNG, GIF or WebP image.",
        );
        return None;
    };
    if image.size > MAX_POSTER_BYTES {
        errors.add(
            "image",
            format!(
                "The file is too large ({} KiB); the limit is 500 KiB.",
                image.size.div_ceil(1024)
            ),
        );
        return None;
    }
    Some(CheckedImage {
        bytes: image.bytes,
        content_type,
        extension,
        file_name: image.file_name,
    })
}

/// The event a poster is for: an error on `event` when unknown, 403 when the
/// caller does not manage it.
pub async fn check_event(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
    errors: &mut FieldErrors,
) -> DomainResult<Option<event::Model>> {
    let found = event::Entity::find_by_id(event_id)
        .one(state.db.conn())
        .await?;
    match found {
        None => {
            errors.add("event", does_not_exist(event_id));
            Ok(None)
        }
        Some(e) if !caller.manages_event(e.organizer_id) => Err(DomainError::Forbidden),
        Some(e) => Ok(Some(e)),
    }
}

/// A poster and the URL that serves it.
#[derive(Debug, Clone)]
pub struct Poster {
    pub media: media::Model,
    /// A presigned S3 URL (1 hour), or this server's `/api/media/{id}/`.
    pub url: String,
}

async fn with_url(state: &AppState, media: media::Model) -> DomainResult<Poster> {
    let url = match state.storage.presigned_get(&media.object_key).await {
        Ok(Some(url)) => url,
        Ok(None) => format!("/api/media/{}/", media.id),
        Err(e) => return Err(storage_error(e)),
    };
    Ok(Poster { media, url })
}

/// Stores a poster for an event the caller manages.
#[instrument(name = "upload_poster", skip_all, fields(user = %caller.username))]
pub async fn upload(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
    image: CheckedImage,
) -> DomainResult<Poster> {
    let mut errors = FieldErrors::default();
    let target = check_event(state, caller, event_id, &mut errors).await?;
    errors.into_result()?;
    let Some(target) = target else {
        return Err(DomainError::NotFound);
    };
    let id = Uuid::now_v7();
    let object_key = format!(
        "posters/{}/{}.{}",
        target.id,
        Uuid::now_v7(),
        image.extension
    );
    let sha256 = crate::digest::sha256_hex(&image.bytes);
    let size = image.bytes.len() as i64;
    state
        .storage
        .put(&object_key, image.bytes)
        .await
        .map_err(storage_error)?;

    let row = media::ActiveModel {
        id: Set(id),
        event_id: Set(target.id),
        object_key: Set(object_key.clone()),
        original_name: Set(sanitise_file_name(image.file_name.as_deref())),
        content_type: Set(image.content_type.to_string()),
        size: Set(size),
        sha256: Set(sha256),
        uploaded_at: Set(crate::db::now()),
    };
    let committed = async {
        let txn = state.db.begin_write().await?;
        let created = row.insert(&*txn).await?;
        crate::db::audit::record_one(
            &*txn,
            &caller.audit(),
            crate::db::audit::Entry::created(crate::db::audit::Action::PosterCreated, &created),
        )
        .await?;
        txn.commit().await?;
        state.cache.invalidate(&[Family::Console]).await;
        Ok::<_, sea_orm::DbErr>(created)
    }
    .await;
    let created = match committed {
        Ok(created) => created,
        Err(err) => {
            // No row: the object must go too.
            if let Err(e) = state.storage.delete(&object_key).await {
                tracing::error!(
                    "could not delete {object_key} after a failed commit: {e}; the sweep will"
                );
            }
            if is_fk_violation(&err) {
                return Err(DomainError::Invalid(FieldErrors::single(
                    "event",
                    "The event was deleted meanwhile.",
                )));
            }
            return Err(err.into());
        }
    };
    tracing::info!(
        "Poster {} uploaded for event {} by {} ({} bytes, {})",
        created.id,
        created.event_id,
        caller.username,
        created.size,
        created.content_type
    );
    with_url(state, created).await
}

/// An event's posters, newest first (not found when the event is unknown).
pub async fn list_for_event(state: &AppState, event_id: Uuid) -> DomainResult<Vec<Poster>> {
    let exists = event::Entity::find_by_id(event_id)
        .count(state.db.conn())
        .await?
        > 0;
    if !exists {
        return Err(DomainError::NotFound);
    }
    let posters = media::Entity::find()
        .filter(media::Column::EventId.eq(event_id))
        .order_by_desc(media::Column::UploadedAt)
        .order_by_desc(media::Column::Id)
        .all(state.db.conn())
        .await?;
    let mut items = Vec::with_capacity(posters.len());
    for p in posters {
        items.push(with_url(state, p).await?);
    }
    Ok(items)
}

pub async fn get(state: &AppState, id: Uuid) -> DomainResult<media::Model> {
    media::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)
}

/// A poster's stored bytes.
pub async fn read(state: &AppState, found: &media::Model) -> DomainResult<Bytes> {
    state.storage.get(&found.object_key).await.map_err(|e| {
        if matches!(e, StorageError::NotFound) {
            tracing::error!(
                "poster {} has a row but no object {}",
                found.id,
                found.object_key
            );
        }
        storage_error(e)
    })
}

#[instrument(name = "delete_poster", skip_all, fields(user = %caller.username))]
pub async fn delete(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<()> {
    let found = get(state, id).await?;
    let organizer = super::registrations::organizer_of(state, found.event_id).await?;
    if !caller.manages_event(organizer) {
        return Err(DomainError::Forbidden);
    }
    let txn = state.db.begin_write().await?;
    media::Entity::delete_by_id(found.id).exec(&*txn).await?;
    crate::db::audit::record_one(
        &*txn,
        &caller.audit(),
        crate::db::audit::Entry::deleted(crate::db::audit::Action::PosterDeleted, &found),
    )
    .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Console]).await;
    delete_objects(state, std::slice::from_ref(&found.object_key)).await;
    tracing::info!("Poster {} deleted by {}", found.id, caller.username);
    Ok(())
}

/// Deletes stored objects whose rows are gone; failures are logged and left
/// to the sweep.
pub async fn delete_objects(state: &AppState, keys: &[String]) {
    for key in keys {
        if let Err(e) = state.storage.delete(key).await {
            tracing::error!("could not delete stored object {key}: {e}; the sweep will retry");
        }
    }
}

/// The object keys of an event's posters (to delete after the event).
pub async fn object_keys_of_event(state: &AppState, event_id: Uuid) -> DomainResult<Vec<String>> {
    Ok(media::Entity::find()
        .filter(media::Column::EventId.eq(event_id))
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(|m| m.object_key)
        .collect())
}

/// Removes stored posters that have no row and are older than `min_age`
/// (younger ones may belong to an upload whose row is being committed).
/// Returns how many were removed.
pub async fn sweep_orphans(
    state: &AppState,
    min_age: std::time::Duration,
) -> anyhow::Result<usize> {
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(min_age)?;
    let objects = state
        .storage
        .list("posters")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut removed = 0;
    for object in objects {
        if object.last_modified > cutoff {
            continue;
        }
        let key = object.location.to_string();
        let has_row = media::Entity::find()
            .filter(media::Column::ObjectKey.eq(key.clone()))
            .count(state.db.conn())
            .await?
            > 0;
        if !has_row {
            state
                .storage
                .delete(&key)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            tracing::warn!("Removed orphaned poster object {key}");
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_their_bytes() {
        assert_eq!(
            sniff_image(b"\x89PNG\r\n\x1a\n...."),
            Some(("image/png", "png"))
        );
        assert_eq!(
            sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(("image/jpeg", "jpg"))
        );
        assert_eq!(sniff_image(b"GIF89a..."), Some(("image/gif", "gif")));
        assert_eq!(
            sniff_image(b"RIFF\x10\0\0\0WEBPVP8 "),
            Some(("image/webp", "webp"))
        );
        assert_eq!(sniff_image(b"<svg xmlns=...>"), None);
        assert_eq!(sniff_image(b"<!DOCTYPE html>"), None);
        assert_eq!(sniff_image(b"%PDF-1.7"), None);
        assert_eq!(sniff_image(b""), None);
    }

    #[test]
    fn file_names_are_sanitised() {
        assert_eq!(sanitise_file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(
            sanitise_file_name(Some("C:\\Users\\me\\poster final.png")),
            "poster final.png"
        );
        assert_eq!(sanitise_file_name(Some("<script>.png")), "_script_.png");
        assert_eq!(sanitise_file_name(Some(".hidden")), "hidden");
        assert_eq!(sanitise_file_name(None), "upload");
    }
}
