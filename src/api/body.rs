//! What an API request carries besides its fields: the JSON body (its
//! content type and shape checked before the fields are read by
//! `crate::input`), path ids and the `Idempotency-Key` header.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::error::ApiError;
use crate::input::Input;

/// A path id: a malformed UUID is a 404, like an unknown one.
pub fn path_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)
}

/// The caller's `Idempotency-Key`, if any (400 if unusable).
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII.".into()))?
        .trim();
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 characters long.".into(),
        ));
    }
    Ok(Some(key.to_string()))
}

/// The raw body of a JSON request. Parsing is deferred to the handler so that
/// authentication, existence and permission are decided first (DRF's order).
pub struct JsonBody {
    content_type: Option<String>,
    bytes: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(format!("Could not read the request body: {rejection}"))
            }
        })?;
        Ok(JsonBody {
            content_type,
            bytes,
        })
    }
}

impl JsonBody {
    /// The body as a JSON object: 415 for another content type, 400 for
    /// broken JSON or a JSON value that is not an object. An empty body
    /// without a content type is an empty object (as DRF sees it).
    pub fn object(&self) -> Result<Map<String, Value>, ApiError> {
        match &self.content_type {
            None if self.bytes.iter().all(u8::is_ascii_whitespace) => return Ok(Map::new()),
            None => return Err(ApiError::UnsupportedMediaType(String::new())),
            Some(ct) => {
                let essence = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                let is_json = essence == "application/json"
                    || (essence.starts_with("application/") && essence.ends_with("+json"));
                if !is_json {
                    return Err(ApiError::UnsupportedMediaType(ct.clone()));
                }
            }
        }
        if self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&self.bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(ApiError::field(
                "non_field_errors",
                format!(
                    "Invalid data. Expected a dictionary, but got {}.",
                    json_type_name(&other)
                ),
            )),
            Err(e) => Err(ApiError::BadRequest(format!("JSON parse error - {e}"))),
        }
    }

    /// What the request asks, for binding an `Idempotency-Key` to it: a
    /// SHA-256 (hex) of the JSON body with its object keys sorted (the same
    /// request sent with its fields in another order or other spacing is
    /// the same request), or of the raw bytes when they are not JSON.
    pub fn fingerprint(&self) -> String {
        fn sorted(value: Value) -> Value {
            match value {
                Value::Object(map) => {
                    let mut entries: Vec<(String, Value)> =
                        map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                    Value::Object(entries.into_iter().collect())
                }
                Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
                other => other,
            }
        }
        let canonical = match serde_json::from_slice::<Value>(&self.bytes) {
            Ok(value) => sorted(value).to_string().into_bytes(),
            Err(_) => self.bytes.to_vec(),
        };
        crate::digest::sha256_hex(canonical)
    }

    /// The body as an `Input` for validation.
    pub fn input(&self, partial: bool) -> Result<Input, ApiError> {
        Ok(Input::new(self.object()?, partial))
    }
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}
