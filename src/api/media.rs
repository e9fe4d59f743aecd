//! Posters: `POST /api/events/upload/`, `GET /api/events/{id}/poster/`,
//! `GET` and `DELETE /api/media/{id}/`.
//!
//! Consistency between rows and objects: the object is written first, then
//! the row committed; if the commit fails the object is deleted. A crash
//! between the two leaves an object without a row, which `sweep_orphans`
//! removes. Deletes commit the row removal first, then delete the object
//! (a failed object delete is likewise swept).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::{Bytes, BytesMut};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::instrument;
use uuid::Uuid;

use super::input::{format_datetime, path_id};
use crate::AppState;
use crate::auth::AuthUser;
use crate::db::entities::{event, media};
use crate::error::{ApiError, ApiResult, FieldErrors};
use crate::storage::{StorageError, sniff_image};

/// The largest poster accepted: 500 KiB.
pub const MAX_POSTER_BYTES: usize = 512_000;
/// How much of a refused upload is read (and discarded) so that the client
/// receives the 400; beyond this the server answers 413.
pub const MAX_UPLOAD_BODY: usize = 10 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/events/upload",
            post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY + 64 * 1024)),
        )
        .route("/events/{id}/poster", get(list_for_event))
        .route("/media/{id}", get(serve).delete(destroy))
}

/// The client's file name without directories or odd characters.
fn sanitise_file_name(raw: Option<&str>) -> String {
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn media_json(state: &AppState, m: &media::Model) -> ApiResult<Value> {
    let url = match state.storage.presigned_get(&m.object_key).await {
        Ok(Some(url)) => url,
        Ok(None) => format!("/api/media/{}/", m.id),
        Err(e) => return Err(storage_error(e)),
    };
    Ok(json!({
        "id": m.id.to_string(),
        "event": m.event_id.to_string(),
        "image": m.object_key,
        "original_name": m.original_name,
        "content_type": m.content_type,
        "size": m.size,
        "url": url,
        "uploaded_at": format_datetime(&m.uploaded_at),
    }))
}

fn storage_error(err: StorageError) -> ApiError {
    match err {
        StorageError::NotFound => ApiError::NotFound,
        // Logged by the storage itself, once per outage.
        StorageError::Unavailable(_) => {
            ApiError::Unavailable("Object storage is unavailable. Try again shortly.".into())
        }
    }
}

/// What a multipart upload carried.
struct Upload {
    event: Option<String>,
    /// `None`: no `image` field. Holds at most `MAX_POSTER_BYTES + 1` bytes.
    image: Option<Bytes>,
    image_size: usize,
    file_name: Option<String>,
}

fn multipart_error(err: axum::extract::multipart::MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest(format!("Multipart form parse error - {}", err.body_text()))
    }
}

/// Reads the form: never more than the size limit of the image is kept in
/// memory; the rest is read and discarded.
async fn read_upload(mut form: Multipart) -> ApiResult<Upload> {
    let mut upload = Upload {
        event: None,
        image: None,
        image_size: 0,
        file_name: None,
    };
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("image") if upload.image.is_none() => {
                upload.file_name = field.file_name().map(str::to_owned);
                let mut kept = BytesMut::new();
                let mut size = 0usize;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    size += chunk.len();
                    let room = (MAX_POSTER_BYTES + 1).saturating_sub(kept.len());
                    kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                upload.image = Some(kept.freeze());
                upload.image_size = size;
            }
            Some("event") if upload.event.is_none() => {
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if text.len() < 1024 {
                        text.extend_from_slice(&chunk);
                    }
                }
                upload.event = Some(String::from_utf8_lossy(&text).trim().to_string());
            }
            _ => while field.chunk().await.map_err(multipart_error)?.is_some() {},
        }
    }
    Ok(upload)
}

#[instrument(name = "upload", skip_all, fields(user = %caller.username))]
async fn upload(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    req: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(ApiError::UnsupportedMediaType(content_type));
    }
    let form = Multipart::from_request(req, &state).await.map_err(|e| {
        ApiError::BadRequest(format!("Multipart form parse error - {}", e.body_text()))
    })?;
    let upload = read_upload(form).await?;

    let mut errors = FieldErrors::default();
    let event_id = match upload.event.as_deref() {
        None | Some("") => {
            errors.add("event", "This field is required.");
            None
        }
        Some(raw) => match Uuid::parse_str(raw) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add("event", "Must be a valid UUID.");
                None
            }
        },
    };
    let target = match event_id {
        Some(id) => {
            let found = event::Entity::find_by_id(id).one(state.db.conn()).await?;
            if found.is_none() {
                errors.add(
                    "event",
                    format!("Invalid pk \"{id}\" - object does not exist."),
                );
            }
            found
        }
        None => None,
    };
    if let Some(target) = &target
        && !caller.manages_event(target.organizer_id)
    {
        return Err(ApiError::Forbidden);
    }
    let mut detected = None;
    match &upload.image {
        None => errors.add("image", "No file was submitted."),
        Some(_) if upload.image_size == 0 => errors.add("image", "The submitted file is empty."),
        Some(_) if upload.image_size > MAX_POSTER_BYTES => errors.add(
            "image",
            format!(
                "The file is too large ({} bytes); the limit is {MAX_POSTER_BYTES} bytes (500 KiB).",
                upload.image_size
            ),
        ),
        Some(bytes) => match sniff_image(bytes) {
            Some(kind) => detected = Some(kind),
            None => errors.add(
                "image",
                "Upload a valid image. The file is not a JPEG, PNG, GIF or WebP image.",
            ),
        },
    }
    errors.into_result()?;
    let (Some(target), Some(bytes), Some((content_type, extension))) =
        (target, upload.image, detected)
    else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "upload fields missing after validation"
        )));
    };

    let id = Uuid::now_v7();
    let object_key = format!("posters/{}/{}.{extension}", target.id, Uuid::now_v7());
    let sha256 = hex(&Sha256::digest(&bytes));
    let size = bytes.len() as i64;
    state
        .storage
        .put(&object_key, bytes)
        .await
        .map_err(storage_error)?;

    let row = media::ActiveModel {
        id: Set(id),
        event_id: Set(target.id),
        object_key: Set(object_key.clone()),
        original_name: Set(sanitise_file_name(upload.file_name.as_deref())),
        content_type: Set(content_type.to_string()),
        size: Set(size),
        sha256: Set(sha256),
        uploaded_at: Set(crate::db::now()),
    };
    let committed = async {
        let txn = state.db.begin_write().await?;
        let created = row.insert(&*txn).await?;
        txn.commit().await?;
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
            if crate::error::is_fk_violation(&err) {
                return Err(ApiError::field("event", "The event was deleted meanwhile."));
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
    Ok((
        StatusCode::CREATED,
        Json(media_json(&state, &created).await?),
    ))
}

async fn list_for_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let event_id = path_id(&id)?;
    let exists = event::Entity::find_by_id(event_id)
        .count(state.db.conn())
        .await?
        > 0;
    if !exists {
        return Err(ApiError::NotFound);
    }
    let posters = media::Entity::find()
        .filter(media::Column::EventId.eq(event_id))
        .order_by_desc(media::Column::UploadedAt)
        .order_by_desc(media::Column::Id)
        .all(state.db.conn())
        .await?;
    let mut items = Vec::with_capacity(posters.len());
    for p in &posters {
        items.push(media_json(&state, p).await?);
    }
    Ok(Json(Value::Array(items)))
}

async fn find_media(state: &AppState, raw_id: &str) -> ApiResult<media::Model> {
    let id = path_id(raw_id)?;
    media::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(ApiError::NotFound)
}

/// The stored bytes, with their verified type; `If-None-Match` → 304.
async fn serve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let found = find_media(&state, &id).await?;
    let etag = format!("\"{}\"", found.sha256);
    let cache_control = "public, max-age=86400";
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let bytes = state.storage.get(&found.object_key).await.map_err(|e| {
            if matches!(e, StorageError::NotFound) {
                tracing::error!(
                    "poster {} has a row but no object {}",
                    found.id,
                    found.object_key
                );
            }
            storage_error(e)
        })?;
        let mut r = Response::new(Body::from(bytes.clone()));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&found.content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("inline"),
        );
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

#[instrument(name = "destroy", skip_all, fields(user = %caller.username))]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let found = find_media(&state, &id).await?;
    let organizer = event::Entity::find_by_id(found.event_id)
        .one(state.db.conn())
        .await?
        .map(|e| e.organizer_id)
        .ok_or(ApiError::NotFound)?;
    if !caller.manages_event(organizer) {
        return Err(ApiError::Forbidden);
    }
    let txn = state.db.begin_write().await?;
    media::Entity::delete_by_id(found.id).exec(&*txn).await?;
    txn.commit().await?;
    delete_objects(&state, std::slice::from_ref(&found.object_key)).await;
    tracing::info!("Poster {} deleted by {}", found.id, caller.username);
    Ok(StatusCode::NO_CONTENT)
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
pub async fn object_keys_of_event(state: &AppState, event_id: Uuid) -> ApiResult<Vec<String>> {
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
