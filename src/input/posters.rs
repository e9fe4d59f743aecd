//! The poster upload form (the API's `POST /api/events/upload/` and the
//! console's poster form): the image kept up to its size limit, the rest of
//! the body read and discarded, so that an oversized file gets a 400 naming
//! the field rather than a cut connection.

use std::collections::HashMap;

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use bytes::BytesMut;

use crate::domain::posters::{MAX_POSTER_BYTES, PosterImage};

/// How much of a refused upload is read (and discarded) so that the client
/// receives the 400; beyond this the server answers 413.
pub const MAX_UPLOAD_BODY: usize = 10 * 1024 * 1024;

/// A poster form (the API's and the console's): the file field `image`,
/// kept up to the size limit (the rest read and discarded), and the text
/// fields named in `texts` (the first 1 KiB of each, trimmed).
pub async fn read_poster_form(
    form: Multipart,
    texts: &[&str],
) -> Result<(HashMap<String, String>, Option<PosterImage>), MultipartError> {
    read_file_form(form, "image", MAX_POSTER_BYTES, texts).await
}

/// A form with one file field (`file_field`, its first `max + 1` bytes
/// kept and its whole size counted) and the text fields named in `texts`.
pub async fn read_file_form(
    mut form: Multipart,
    file_field: &str,
    max: usize,
    texts: &[&str],
) -> Result<(HashMap<String, String>, Option<PosterImage>), MultipartError> {
    let mut fields = HashMap::new();
    let mut image = None;
    while let Some(mut field) = form.next_field().await? {
        let name = field.name().unwrap_or("").to_string();
        if name == file_field && image.is_none() {
            let file_name = field.file_name().map(str::to_owned);
            let mut kept = BytesMut::new();
            let mut size = 0usize;
            while let Some(chunk) = field.chunk().await? {
                size += chunk.len();
                let room = (max + 1).saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            image = Some(PosterImage {
                bytes: kept.freeze(),
                size,
                file_name,
            });
        } else if texts.contains(&name.as_str()) && !fields.contains_key(&name) {
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await? {
                if text.len() < 1024 {
                    text.extend_from_slice(&chunk);
                }
            }
            fields.insert(name, String::from_utf8_lossy(&text).trim().to_string());
        } else {
            while field.chunk().await?.is_some() {}
        }
    }
    Ok((fields, image))
}
