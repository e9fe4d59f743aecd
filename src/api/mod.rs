//! The HTTP API: one module per resource, and what they share (errors,
//! extractors, pagination, the OpenAPI document, the front door every
//! response goes through). `crate::app` assembles the router.

pub mod audit;
pub mod auth;
pub mod body;
pub mod checkins;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod extract;
pub mod front;
pub mod groups;
pub mod health;
pub mod media;
pub mod openapi;
pub mod pagination;
pub mod payments;
pub mod registrations;
pub mod schemas;
pub mod tickets;
pub mod users;
pub mod vouchers;
pub mod waitlist;
pub mod webhooks;

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use utoipa_axum::router::OpenApiRouter;

use crate::cache::Family;
use crate::state::AppState;
pub use endpoint::RouteTemplate;
use error::{ApiError, ApiResult};

/// The largest JSON body accepted (413 above).
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// The routes under `/api/` that read the bearer token: every resource.
pub fn authenticated_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(groups::router())
        .merge(events::router())
        .merge(tickets::router())
        .merge(registrations::router())
        .merge(payments::router())
        .merge(media::router())
        .merge(checkins::router())
        .merge(audit::router())
        .merge(vouchers::router())
        .merge(waitlist::router())
        .merge(webhooks::router())
        .merge(openapi::router())
}

/// The routes that never read a token: login and token refresh, and the
/// operations probes (`/healthz`, `/readyz`, `/metrics`).
pub fn public_routes() -> OpenApiRouter<AppState> {
    auth::public_router().merge(health::router())
}

/// The OpenAPI document of every route, generated from the handlers.
pub fn document() -> utoipa::openapi::OpenApi {
    openapi::document_of(authenticated_routes().merge(public_routes()))
}

/// Serves a cacheable GET: from the cache (`X-Data-Source: cache`) or
/// loaded from the database (`X-Data-Source: database`) and stored under the
/// generation the lookup saw (which the loader also gets, to key what it may
/// keep itself, like list counts). Concurrent misses of one key wait for a
/// single load (`Cache::response`).
pub async fn cached<F, Fut, T>(
    state: &AppState,
    family: Family,
    key: String,
    load: F,
) -> ApiResult<Response>
where
    F: FnOnce(Option<u64>) -> Fut,
    Fut: std::future::Future<Output = ApiResult<T>>,
    T: serde::Serialize,
{
    let answer = state
        .cache
        .response(family, &key, |generation| async move {
            let value = load(generation).await?;
            serde_json::to_vec(&value)
                .map(Bytes::from)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("serialising a response: {e}")))
        })
        .await;
    // An error comes from a load: a miss.
    crate::metrics::METRICS.record_cache(answer.as_ref().is_ok_and(|a| a.hit));
    let answer = answer?;
    let source = if answer.hit { "cache" } else { "database" };
    Ok(json_with_source(answer.body, source))
}

/// Where a cached read's answer came from (`cache` or `database`).
static X_DATA_SOURCE: HeaderName = HeaderName::from_static("x-data-source");

fn json_with_source(body: Bytes, source: &'static str) -> Response {
    let mut response = json_response(Body::from(body));
    response
        .headers_mut()
        .insert(X_DATA_SOURCE.clone(), HeaderValue::from_static(source));
    response
}

/// How many headers a hot response is given room for: its own, the
/// `Content-Length` the router adds, and the front door's (`Vary`, the
/// request id, the security headers).
const RESPONSE_HEADERS: usize = 12;

/// A 200 of JSON `body` whose header map has room for every header it
/// will carry: a new map is made for 6 and would be grown (re-hashed) on
/// the way out. For the hot reads (cached reads, `/healthz`).
pub fn json_response(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.reserve(RESPONSE_HEADERS);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The cache key of a list: its query string, and the origin its
/// `next`/`previous` links are built with.
pub fn list_cache_key(uri: &axum::http::Uri, origin: &pagination::Origin) -> String {
    let origin = origin.as_str();
    let query = uri.query().unwrap_or("");
    let mut key = String::with_capacity(7 + origin.len() + query.len());
    for part in ["list:", origin, "|", query] {
        key.push_str(part);
    }
    key
}

/// The cache key of one object: `prefix` and its id (made on every cached
/// read, so without `format!`).
pub fn id_key(prefix: &str, id: uuid::Uuid) -> String {
    let mut text = uuid::Uuid::encode_buffer();
    let id = id.hyphenated().encode_lower(&mut text);
    let mut key = String::with_capacity(prefix.len() + id.len());
    key.push_str(prefix);
    key.push_str(id);
    key
}

/// The first answer given for an `Idempotency-Key`, given again.
pub(crate) fn replay(previous: crate::domain::idempotency::Remembered) -> ApiResult<Response> {
    let status = StatusCode::from_u16(previous.status).unwrap_or(StatusCode::CREATED);
    let body: serde_json::Value = serde_json::from_str(&previous.body)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored idempotent response: {e}")))?;
    Ok((status, axum::Json(body)).into_response())
}

/// The answer for a path no route serves (the router's fallback).
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// The cause of a 500, carried from the error to the access log.
#[derive(Clone)]
pub struct InternalErrorCause(pub String);

/// The authenticated user's id, carried from authentication to the access log.
#[derive(Clone)]
pub struct AccessLogUser(pub uuid::Uuid);
