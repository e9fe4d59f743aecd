//! The HTTP API: one module per resource, merged into one router with the
//! layers every response goes through.

pub mod auth;
pub mod events;
pub mod groups;
pub mod health;
pub mod input;
pub mod pagination;
pub mod payments;
pub mod registrations;
pub mod tickets;
pub mod users;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;

/// The largest JSON body accepted (413 above).
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Every route, without trailing slashes (`NormalizePathLayer` in front of the
/// router trims them, so `/api/events/` and `/api/events` are one route).
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(groups::router())
        .merge(events::router())
        .merge(tickets::router())
        .merge(registrations::router())
        .merge(payments::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ));
    Router::new()
        .nest("/api", api)
        .merge(health::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::from_fn(json_error_bodies))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let request_id = req
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %request_id,
                    )
                })
                .on_response(|res: &Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(
                        status = res.status().as_u16(),
                        duration_ms = format_args!("{:.1}", latency.as_secs_f64() * 1000.0),
                        "request finished"
                    );
                }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Gives the bodies axum leaves empty the contract's JSON: 405 (keeping the
/// `Allow` header) and body-limit 413s; adds the request id to every 500.
async fn json_error_bodies(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next.run(req).await;
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED if !is_json(&response) => {
            let (mut parts, _) = response.into_parts();
            let body = json!({ "detail": format!("Method \"{method}\" not allowed.") });
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(body.to_string()))
        }
        StatusCode::PAYLOAD_TOO_LARGE if !is_json(&response) => {
            ApiError::PayloadTooLarge.into_response()
        }
        StatusCode::INTERNAL_SERVER_ERROR => {
            let (mut parts, _) = response.into_parts();
            let request_id = request_id.unwrap_or_else(|| "-".into());
            tracing::error!(request_id = %request_id, %method, "responded 500");
            let body = json!({ "detail": "Internal server error.", "request_id": request_id });
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(body.to_string()))
        }
        _ => response,
    }
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}
