//! The two hand-written tower `Service`s every request passes through,
//! instead of the generic layers they replace (tower-http's request-id
//! pair and panic catcher, a `from_fn` middleware, tower's load shedding
//! and concurrency limit with axum's error handler), each of which boxed,
//! cloned or looked up the same things again:
//!
//! - [`Front`], first: gives the request its id (the client's, or a new
//!   one), keeps the URI as sent, gives the bodies axum leaves as plain text
//!   the contract's JSON, records the request's metrics, writes its access
//!   line and adds the security headers — to every response, a shed or a
//!   panicked one included.
//! - [`Guard`], behind CORS: sheds load (at most `MAX_IN_FLIGHT` requests
//!   in flight in the whole server; the others answered 503 at once, except
//!   the probes `/healthz`, `/readyz` and `/metrics`), answers 408 when a
//!   request takes longer than `REQUEST_TIMEOUT` (the timer is only set for
//!   a request not answered at its first poll) and turns a handler's panic
//!   into a 500. Being behind CORS, its answers carry CORS headers and
//!   CORS preflights are never shed.
//!
//! `api::app` builds the whole stack once: Front → CORS (when origins are
//! configured) → Guard → trailing-slash trimming → router.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{OriginalUri, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use serde_json::json;
use tokio::sync::Semaphore;
use tower::{Layer, Service};
use tracing::Level;

use super::error::ApiError;
use super::{AccessLogUser, InternalErrorCause, RouteTemplate, schemas};

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

type BoxedAnswer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Wraps a service in [`Front`].
///
/// With no CORS origins configured (`plain_cors`), the front door also
/// gives every response the `Vary` that `tower_http`'s CORS layer gives
/// them and answers `OPTIONS` as that layer does (200, empty), without that
/// layer's per-request header maps; with origins configured, that layer
/// sits behind this one.
#[derive(Clone, Copy)]
pub struct FrontLayer {
    pub plain_cors: bool,
}

impl<S> Layer<S> for FrontLayer {
    type Service = Front<S>;

    fn layer(&self, inner: S) -> Front<S> {
        Front {
            inner,
            plain_cors: self.plain_cors,
        }
    }
}

#[derive(Clone)]
pub struct Front<S> {
    inner: S,
    /// No CORS origins: `Vary` and `OPTIONS` answered here.
    plain_cors: bool,
}

/// What the CORS layer's `Vary` says (the headers a preflight varies on).
static CORS_VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

impl<S> Service<Request> for Front<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxedAnswer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let started = Instant::now();
        // The client's id is kept; otherwise one is drawn here.
        let request_id = match req.headers().get(&X_REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = new_request_id();
                req.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
                id
            }
        };
        // The URI as the client sent it (before the trailing slash is
        // trimmed): the access log's path and the handlers' `OriginalUri`.
        // Cloning a `Uri` bumps a reference count.
        let sent = req.uri().clone();
        let method = req.method().clone();
        req.extensions_mut().insert(OriginalUri(sent.clone()));
        // `OPTIONS` without CORS origins: the CORS layer's empty 200.
        let preflight = self.plain_cors && method == Method::OPTIONS;
        let plain_cors = self.plain_cors;
        // The instance `poll_ready` readied goes with this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = if preflight {
                Response::new(Body::empty())
            } else {
                inner.call(req).await?
            };
            let request_id_text = request_id.to_str().unwrap_or("-");
            let mut response = contract_body(response, &method, &sent, request_id_text).await;
            let elapsed = started.elapsed();
            let route = response
                .extensions()
                .get::<RouteTemplate>()
                .map_or("unmatched", |r| r.0);
            crate::metrics::METRICS.record_request(route, &method, response.status(), elapsed);
            access_line(&method, &sent, &response, elapsed, request_id_text);
            let headers = response.headers_mut();
            // Room for the headers added below, in one step.
            headers.reserve(6);
            if plain_cors {
                headers.append(header::VARY, CORS_VARY.clone());
            }
            headers
                .entry(X_REQUEST_ID.clone())
                .or_insert(request_id.clone());
            security_headers(sent.path(), headers);
            Ok(response)
        })
    }
}

/// Wraps a service in [`Guard`], with at most `max_in_flight` requests
/// inside it at once.
#[derive(Clone)]
pub struct GuardLayer {
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl GuardLayer {
    pub fn new(max_in_flight: usize, timeout: Duration) -> Self {
        GuardLayer {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            timeout,
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            permits: self.permits.clone(),
            timeout: self.timeout,
        }
    }
}

#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    /// One per request in flight, shared by every clone.
    permits: Arc<Semaphore>,
    /// `REQUEST_TIMEOUT`.
    timeout: Duration,
}

/// The probes: never shed (a liveness check refused under load would get a
/// busy server restarted).
fn is_probe(path: &str) -> bool {
    matches!(
        path.trim_end_matches('/'),
        "/healthz" | "/readyz" | "/metrics"
    )
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxedAnswer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // Beyond `MAX_IN_FLIGHT`: answered now, not queued.
        let permit = if is_probe(req.uri().path()) {
            None
        } else {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return Box::pin(std::future::ready(Ok(overloaded()))),
            }
        };
        // The instance `poll_ready` readied goes with this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.timeout;
        Box::pin(async move {
            let within = Within {
                call: inner.call(req),
                timer: None,
                limit,
            };
            let answered = AssertUnwindSafe(within).catch_unwind().await;
            drop(permit);
            Ok(match answered {
                Ok(Ok(response)) => response,
                Err(panic) => panicked(panic),
            })
        })
    }
}

pin_project_lite::pin_project! {
    /// The handler's answer, or a 408 (empty body) once `limit` has passed.
    /// The timer is only set when the handler does not answer at its first
    /// poll: a constant or in-process cached answer sets none.
    struct Within<F> {
        #[pin]
        call: F,
        #[pin]
        timer: Option<tokio::time::Sleep>,
        limit: Duration,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for Within<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(answer) = this.call.poll(cx) {
            return Poll::Ready(answer);
        }
        if this.timer.is_none() {
            this.timer.set(Some(tokio::time::sleep(*this.limit)));
        }
        match this.timer.as_pin_mut().map(|timer| timer.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Ok(StatusCode::REQUEST_TIMEOUT.into_response())),
            _ => Poll::Pending,
        }
    }
}

/// A random UUID (v4) from the thread's generator, not a system call.
fn new_request_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut text))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// Beyond `MAX_IN_FLIGHT` concurrent requests: a quick 503, not a queue.
fn overloaded() -> Response {
    ApiError::Unavailable("The server is busy. Try again shortly.".into()).into_response()
}

/// A handler panicked: a 500 whose cause reaches the error log.
fn panicked(panic: Box<dyn Any + Send>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    ApiError::Internal(anyhow::anyhow!("a request handler panicked: {message}")).into_response()
}

/// Gives the bodies axum leaves empty or plain the contract's JSON (405
/// keeping `Allow`, the body limit's 413, extractor rejections); logs every
/// 500 at ERROR with its request id and cause, and puts the request id in
/// its body.
async fn contract_body(
    response: Response,
    method: &Method,
    sent: &axum::http::Uri,
    request_id: &str,
) -> Response {
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED if !is_json(&response) => json_body(
            response,
            json!({ "detail": format!("Method \"{method}\" not allowed.") }),
        ),
        StatusCode::PAYLOAD_TOO_LARGE if !is_json(&response) => json_body(
            response,
            json!({ "detail": super::error::PAYLOAD_TOO_LARGE }),
        ),
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
            let path = sent.path();
            tracing::error!(
                name: "request",
                "500 on {method} {path} (request {request_id}): {cause}"
            );
            let body = schemas::InternalError {
                detail: "Internal server error.".into(),
                request_id: request_id.to_owned(),
            };
            json_body(response, serde_json::to_value(body).unwrap_or_default())
        }
        _ => response,
    }
}

/// The access line: method, path as sent, status, time (ms, one decimal),
/// request id, user. Put together by hand (`format!`'s machinery and its
/// float formatting cost more than the rest of a `/healthz` request) and
/// written straight into the log batch (`logging::write_info`), as the line
/// of an event named `request` would be.
fn access_line(
    method: &Method,
    sent: &axum::http::Uri,
    response: &Response,
    elapsed: std::time::Duration,
    request_id: &str,
) {
    if !tracing::enabled!(Level::INFO) {
        return;
    }
    let mut line = String::with_capacity(160);
    line.push_str(method.as_str());
    line.push(' ');
    line.push_str(sent.path());
    line.push(' ');
    line.push_str(response.status().as_str());
    line.push(' ');
    let tenths = (elapsed.as_micros() + 50) / 100;
    line.push_str(itoa::Buffer::new().format(tenths / 10));
    line.push('.');
    line.push_str(itoa::Buffer::new().format(tenths % 10));
    line.push_str("ms request_id=");
    line.push_str(request_id);
    line.push_str(" user=");
    match response.extensions().get::<AccessLogUser>() {
        Some(user) => {
            let mut text = uuid::Uuid::encode_buffer();
            line.push_str(user.0.hyphenated().encode_lower(&mut text));
        }
        None => line.push('-'),
    }
    if !crate::logging::write_info(module_path!(), "request", line!(), &line) {
        tracing::info!(name: "request", "{line}");
    }
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
