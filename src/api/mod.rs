//! The HTTP API: one module per resource, merged into one router with the
//! layers every response goes through.

pub mod auth;
pub mod checkins;
pub mod error;
pub mod events;
pub mod extract;
pub mod groups;
pub mod health;
pub mod input;
pub mod media;
pub mod openapi;
pub mod pagination;
pub mod payments;
pub mod registrations;
pub mod schemas;
pub mod tickets;
pub mod users;

use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

use utoipa_axum::router::OpenApiRouter;

use crate::cache::Family;
use crate::state::AppState;
use error::{ApiError, ApiResult};

/// The largest JSON body accepted (413 above).
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// The routes under `/api/` that read the bearer token: every resource.
fn authenticated_routes() -> OpenApiRouter<AppState> {
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
        .merge(openapi::router())
}

/// The OpenAPI document of every route, generated from the handlers.
pub fn document() -> utoipa::openapi::OpenApi {
    let api = authenticated_routes().merge(auth::public_router());
    openapi::document_of(
        OpenApiRouter::new()
            .nest("/api", api)
            .merge(health::router()),
    )
}

/// Every route, without trailing slashes (`NormalizePathLayer` in front of the
/// router trims them, so `/api/events/` and `/api/events` are one route).
pub fn router(state: AppState) -> Router {
    let (authenticated, _) = authenticated_routes().split_for_parts();
    let (public, _) = auth::public_router().split_for_parts();
    let (operations, _) = health::router().split_for_parts();
    let api = authenticated
        .layer(middleware::from_fn_with_state(
            state.clone(),
            extract::authenticate,
        ))
        .merge(public)
        .route_layer(middleware::from_fn(record_route));
    Router::new()
        .nest("/api", api)
        .merge(operations)
        .merge(crate::console::router())
        .route_layer(middleware::from_fn(record_route))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(CatchPanicLayer::custom(
            |panic: Box<dyn std::any::Any + Send>| {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                ApiError::Internal(anyhow::anyhow!("a request handler panicked: {message}"))
                    .into_response()
            },
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.config.request_timeout,
        ))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(state.config.max_in_flight),
        )
        .layer(middleware::from_fn(observe))
        .layer(cors(&state.config.cors_allowed_origins))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
        .with_state(state)
}

/// Request ids: random UUIDs (v4) drawn from the thread's generator, not
/// from a system call per request.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = uuid::Uuid::encode_buffer();
        HeaderValue::from_str(id.hyphenated().encode_lower(&mut text))
            .ok()
            .map(RequestId::new)
    }
}

/// Beyond `MAX_IN_FLIGHT` concurrent requests: a quick 503, not a queue.
async fn overloaded(_: tower::BoxError) -> ApiError {
    ApiError::Unavailable("The server is busy. Try again shortly.".into())
}

/// CORS for the configured origins (none: no CORS headers, browsers keep
/// their same-origin rule).
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return CorsLayer::new();
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            axum::http::Method::GET,
            axum::http::Method::POST,
            axum::http::Method::PUT,
            axum::http::Method::PATCH,
            axum::http::Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            axum::http::HeaderName::from_static("idempotency-key"),
            axum::http::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            axum::http::HeaderName::from_static("x-request-id"),
            axum::http::HeaderName::from_static("x-data-source"),
            header::RETRY_AFTER,
        ])
        .max_age(std::time::Duration::from_secs(3600))
}

/// Serves a cacheable GET: from the cache (`X-Data-Source: cache`) or
/// loaded from the database (`X-Data-Source: database`) and stored under the
/// generation the lookup saw (which the loader also gets, to key what it may
/// keep itself, like list counts).
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
    let lookup = state.cache.lookup(family, &key).await;
    crate::metrics::METRICS.record_cache(lookup.hit.is_some());
    if let Some(body) = lookup.hit {
        return Ok(json_with_source(body, "cache"));
    }
    let value = load(lookup.generation).await?;
    let body = Bytes::from(
        serde_json::to_vec(&value)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("serialising a response: {e}")))?,
    );
    if let Some(generation) = lookup.generation {
        state
            .cache
            .store(family, generation, &key, body.clone())
            .await;
    }
    Ok(json_with_source(body, "database"))
}

fn json_with_source(body: Bytes, source: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-data-source", HeaderValue::from_static(source));
    response
}

/// The cache key of a list: its query string, and the host and scheme its
/// `next`/`previous` links are built with.
pub fn list_cache_key(uri: &axum::http::Uri, headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    format!("list:{proto}|{host}|{}", uri.query().unwrap_or(""))
}

/// The first answer given for an `Idempotency-Key`, given again.
pub(crate) fn replay(previous: crate::domain::idempotency::Remembered) -> ApiResult<Response> {
    let status = StatusCode::from_u16(previous.status).unwrap_or(StatusCode::CREATED);
    let body: serde_json::Value = serde_json::from_str(&previous.body)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored idempotent response: {e}")))?;
    Ok((status, axum::Json(body)).into_response())
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// The cause of a 500, carried from the error to the access log.
#[derive(Clone)]
pub struct InternalErrorCause(pub String);

/// The route template that matched (`/api/events/:id`), carried to the
/// request metrics.
#[derive(Clone, Copy)]
pub struct RouteTemplate(pub &'static str);

/// The metrics label of a matched route, made once per route and kept for
/// the life of the process (there are as many as routes).
fn route_label(matched: &str) -> &'static str {
    static LABELS: std::sync::OnceLock<
        std::sync::RwLock<std::collections::HashMap<String, &'static str>>,
    > = std::sync::OnceLock::new();
    let labels = LABELS.get_or_init(Default::default);
    if let Some(label) = labels.read().ok().and_then(|l| l.get(matched).copied()) {
        return label;
    }
    // `/api/events/{id}` → `/api/events/:id`: braces in label values trip
    // some Prometheus tooling.
    let label: &'static str = matched.replace('{', ":").replace('}', "").leak();
    if let Ok(mut labels) = labels.write() {
        labels.insert(matched.to_string(), label);
    }
    label
}

/// Route layer: records which route template matched.
async fn record_route(req: Request, next: Next) -> Response {
    let template = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| route_label(p.as_str()));
    let mut response = next.run(req).await;
    // The innermost router's template wins (a nested router's is complete).
    if let Some(template) = template
        && response.extensions().get::<RouteTemplate>().is_none()
    {
        response.extensions_mut().insert(RouteTemplate(template));
    }
    response
}

/// The authenticated user's id, carried from authentication to the access log.
#[derive(Clone)]
pub struct AccessLogUser(pub uuid::Uuid);

/// Runs each request in a `request` span and writes its access line; gives
/// the bodies axum leaves empty the contract's JSON (405 keeping `Allow`,
/// body-limit 413); logs every 500 at ERROR with its request id and cause,
/// and puts the request id in its body.
async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // The path as the client sent it (trailing slash included), recorded
    // before the router trimmed it; the trimmed one when called directly.
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path(), |sent| sent.path())
        .to_owned();
    let request_id_header = req.headers().get("x-request-id").cloned();
    let request_id = request_id_header
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let span = tracing::info_span!("request", request_id = %request_id);
    let response = next.run(req).instrument(span.clone()).await;
    let mut response = match response.status() {
        StatusCode::METHOD_NOT_ALLOWED if !is_json(&response) => json_body(
            response,
            json!({ "detail": format!("Method \"{method}\" not allowed.") }),
        ),
        StatusCode::PAYLOAD_TOO_LARGE if !is_json(&response) => {
            ApiError::PayloadTooLarge.into_response()
        }
        // Extractor rejections (e.g. an undecodable path) are plain text;
        // the console's pages are HTML on purpose.
        status
            if status.is_client_error()
                && !is_json(&response)
                && !is_html(&response)
                && status != StatusCode::NOT_MODIFIED =>
        {
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 16 * 1024)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let detail = if text.trim().is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("Bad request.")
                    .to_string()
            } else {
                text.trim().to_string()
            };
            json_body(
                Response::from_parts(parts, Body::empty()),
                json!({ "detail": detail }),
            )
        }
        StatusCode::INTERNAL_SERVER_ERROR if !is_html(&response) => {
            let cause = response
                .extensions()
                .get::<InternalErrorCause>()
                .map(|c| c.0.clone())
                .unwrap_or_else(|| "no cause recorded".into());
            span.in_scope(|| {
                tracing::error!("500 on {method} {path} (request {request_id}): {cause}")
            });
            let body = schemas::InternalError {
                detail: "Internal server error.".into(),
                request_id: request_id.to_owned(),
            };
            json_body(response, serde_json::to_value(body).unwrap_or_default())
        }
        _ => response,
    };
    let user = response.extensions().get::<AccessLogUser>().map(|u| u.0);
    let elapsed = started.elapsed();
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or("unmatched", |r| r.0);
    crate::metrics::METRICS.record_request(
        route,
        method.as_str(),
        response.status().as_str(),
        elapsed,
    );
    let millis = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| match user {
        Some(user) => tracing::info!(
            "{method} {path} {} {millis:.1}ms request_id={request_id} user={user}",
            response.status().as_u16()
        ),
        None => tracing::info!(
            "{method} {path} {} {millis:.1}ms request_id={request_id} user=-",
            response.status().as_u16()
        ),
    });
    security_headers(&path, response.headers_mut());
    response
}

/// Headers every response carries; the docs page also gets a strict CSP
/// (its assets are all served from here).
fn security_headers(path: &str, headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if path.starts_with("/api/docs") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                 base-uri 'self'; form-action 'none'",
            ),
        );
    }
}

/// Replaces a response's body with JSON, keeping status and headers.
fn json_body(response: Response, body: serde_json::Value) -> Response {
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}
