//! The hand-written tower `Service` every request passes through, in
//! place of the generic layers it replaces (tower-http's request-id pair and
//! panic catcher, a `from_fn` middleware, tower's load shedding, timeout and
//! concurrency limit with axum's error handler), each of which boxed, cloned
//! or looked up the same things again, and each of which added a future
//! around the handler's:
//!
//! [`Front`] gives the request its id (the client's, or a new one), keeps
//! the URI as sent and trims its trailing slash, sheds load (at most
//! `MAX_IN_FLIGHT` requests in flight in the whole server; the others
//! answered 503 at once, except the probes `/healthz`, `/readyz` and
//! `/metrics`), answers 408 when a request takes
//! longer than `REQUEST_TIMEOUT` (the timer is only set for a request not
//! answered at its first poll), turns a handler's panic into a 500, gives
//! the bodies axum leaves as plain text the contract's JSON, records the
//! request's metrics, writes its access line and adds the security headers
//! — to every response, a shed or a panicked one included. Its future
//! ([`Answer`]) is written out, not boxed: hyper keeps it in the
//! connection's task, around the router's.
//!
//! With CORS origins configured, tower-http's CORS layer sits behind
//! `Front`, and the limits move behind it, into [`Guard`]: their answers
//! then carry CORS headers, and CORS preflights are never shed.
//!
//! `app::app` builds the whole stack once: Front (which also trims the
//! trailing slash) → (CORS → Guard →) router.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;
use tracing::Level;

use super::error::ApiError;
use super::extract::SentUri;
use super::{AccessLogUser, InternalErrorCause, RouteTemplate, schemas};

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request limits: at most `MAX_IN_FLIGHT` requests in flight in the
/// whole server (the others answered 503 at once, except the probes) and
/// `REQUEST_TIMEOUT` for each. Enforced by [`Front`] itself when no CORS
/// origins are configured, else by [`Guard`] behind the CORS layer.
#[derive(Clone)]
pub struct Limits {
    /// One per request in flight, shared by every clone.
    permits: Arc<Semaphore>,
    /// `REQUEST_TIMEOUT`.
    timeout: Duration,
}

impl Limits {
    pub fn new(max_in_flight: usize, timeout: Duration) -> Self {
        Limits {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            timeout,
        }
    }

    /// `req` passed to `inner` within the limits: its answer (a 408 once
    /// the timeout has passed, a 500 if the handler panicked), holding a
    /// slot until then (none for a probe); or `Full` when every slot is
    /// taken: it is then answered 503 at once ([`overloaded`]), not queued.
    fn within<S>(&self, inner: &mut S, req: Request) -> Result<Within<S::Future>, Full>
    where
        S: Service<Request, Response = Response, Error = Infallible>,
    {
        let permit = if is_probe(req.uri().path()) {
            None
        } else {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return Err(Full),
            }
        };
        Ok(Within {
            call: inner.call(req),
            timer: None,
            limit: self.timeout,
            permit,
        })
    }
}

/// Every request slot is taken.
struct Full;

/// The probes: never shed (a liveness check refused under load would get a
/// busy server restarted).
fn is_probe(path: &str) -> bool {
    matches!(
        path.trim_end_matches('/'),
        "/healthz" | "/readyz" | "/metrics"
    )
}

/// The whole stack, as the server runs it (see `app::app`).
#[derive(Clone)]
pub struct Front<S> {
    inner: S,
    /// No CORS origins: `Vary` and `OPTIONS` answered here.
    plain_cors: bool,
    /// Enforced here when no CORS layer sits behind (`Guard` does it there).
    limits: Option<Limits>,
    /// The names requests may give as `Host` (`ALLOWED_HOSTS`), and
    /// `PUBLIC_URL`, handed to the handlers that build absolute URLs.
    names: Arc<Names>,
}

/// What the front door knows of this server's names.
pub struct Names {
    pub allowed: crate::hosts::AllowedHosts,
    pub public_url: Option<PublicUrl>,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// `PUBLIC_URL`, as a request extension for [`super::pagination::Origin`].
#[derive(Clone)]
pub struct PublicUrl(pub Arc<str>);

impl<S> Front<S> {
    /// `limits` enforced here (`Some`), or by a [`Guard`] inside `inner`.
    ///
    /// With no CORS origins configured (`plain_cors`), the front door also
    /// gives every response the `Vary` that `tower_http`'s CORS layer gives
    /// them and answers `OPTIONS` as that layer does (200, empty), without
    /// that layer's per-request header maps; with origins configured, that
    /// layer sits behind this one.
    pub fn new(inner: S, plain_cors: bool, limits: Option<Limits>, names: Arc<Names>) -> Self {
        Front {
            inner,
            plain_cors,
            limits,
            names,
        }
    }
}

/// What the CORS layer's `Vary` says (the headers a preflight varies on).
static CORS_VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

impl<S> Front<S> {
    /// The client a trusted load balancer forwarded this request for: the
    /// last address in `X-Forwarded-For` that is not itself a trusted
    /// proxy (each proxy appends the address it was reached from, so what
    /// lies left of the first untrusted one could have been written by the
    /// client). `None`: the connection's peer is the client.
    fn forwarded_client(&self, req: &Request) -> Option<std::net::IpAddr> {
        let trusted = &self.names.trusted_proxies;
        if trusted.is_empty() {
            return None;
        }
        let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
        let peer = crate::connection::peer_ip()?;
        if !is_trusted(&peer) {
            return None;
        }
        // Read from the right (the nearest hop) and only as far as needed:
        // whatever a client wrote at the left, garbage included, is never
        // read once an untrusted hop is found.
        let hops: Vec<&str> = req
            .headers()
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        let mut client = None;
        for hop in hops.into_iter().rev() {
            let Ok(hop) = hop.trim().parse::<std::net::IpAddr>() else {
                break;
            };
            client = Some(hop);
            if !is_trusted(&hop) {
                break;
            }
        }
        client
    }
}

static X_FORWARDED_FOR: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-forwarded-for");

impl<S> Service<Request> for Front<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let started = Instant::now();
        // The client's id is kept when it is a plain token (API.md §12:
        // `[A-Za-z0-9._-]{1,64}`, nothing that could add a field to a log
        // line); otherwise one is drawn here, in its place.
        let request_id = match req.headers().get(&X_REQUEST_ID) {
            Some(id) if is_plain_request_id(id.as_bytes()) => id.clone(),
            _ => {
                let id = new_request_id();
                req.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
                id
            }
        };
        crate::connection::answering(&request_id, self.forwarded_client(&req));
        if let Some(public_url) = &self.names.public_url {
            req.extensions_mut().insert(public_url.clone());
        }
        // The URI as the client sent it: the access log's path and, when
        // its trailing slash is trimmed, the handlers' `SentUri`. Cloning a
        // `Uri` bumps a reference count.
        let sent = req.uri().clone();
        let method = req.method().clone();
        if let Some(trimmed) = trim_slashes(&sent) {
            req.extensions_mut().insert(SentUri(sent.clone()));
            *req.uri_mut() = trimmed;
        }
        // The inner service is called here, not in the future: it was
        // readied by `poll_ready`, and no clone of it is needed.
        let state = if !self.serves_host(&req) {
            // Django's answer to a `Host` outside ALLOWED_HOSTS (API.md §12).
            AnswerState::Ready {
                response: Some(json_body(
                    StatusCode::BAD_REQUEST.into_response(),
                    json!({"detail": "Bad Request (400)"}),
                )),
            }
        } else if self.plain_cors && method == Method::OPTIONS {
            // `OPTIONS` without CORS origins: the CORS layer's empty 200.
            AnswerState::Ready {
                response: Some(Response::new(Body::empty())),
            }
        } else {
            match &self.limits {
                None => AnswerState::Inner {
                    call: self.inner.call(req),
                },
                // Judged on the path as trimmed: `//healthz/` is a probe too.
                Some(limits) => match limits.within(&mut self.inner, req) {
                    Ok(call) => AnswerState::Limited { call },
                    Err(Full) => AnswerState::Ready {
                        response: Some(overloaded()),
                    },
                },
            }
        };
        Answer {
            state,
            request: Some(Sent {
                started,
                request_id,
                method,
                sent,
                plain_cors: self.plain_cors,
            }),
        }
    }
}

impl<S> Front<S> {
    /// Whether the request names an allowed host: its `Host` header, else
    /// the authority of an absolute-form URI. A request naming none (HTTP/1.0)
    /// is served: its links then follow `PUBLIC_URL` or say `localhost`. The
    /// probes are served whatever they name (load balancers and monitors
    /// address a host by its IP address).
    fn serves_host(&self, req: &Request) -> bool {
        let named = match req.headers().get(header::HOST) {
            Some(host) => host.as_bytes(),
            None => match req.uri().authority() {
                Some(authority) => authority.as_str().as_bytes(),
                None => return true,
            },
        };
        self.names.allowed.allows(named) || is_probe(req.uri().path())
    }
}

/// What the front door keeps of a request until its answer.
struct Sent {
    started: Instant,
    request_id: HeaderValue,
    method: Method,
    /// The URI as the client sent it.
    sent: Uri,
    plain_cors: bool,
}

pin_project_lite::pin_project! {
    /// The answer to one request, as the front door gives it: the inner
    /// answer, its contract body, metrics, access line and headers.
    ///
    /// Written out rather than an `async` block: such a block keeps what
    /// it captured beside what it moved into its locals, and this future
    /// (the router's, with the request, inside) is moved on every request.
    pub struct Answer<F> {
        #[pin]
        state: AnswerState<F>,
        // Taken when the answer is given.
        request: Option<Sent>,
    }
}

pin_project_lite::pin_project! {
    /// How the request is answered, decided in `Front::call`.
    #[project = AnswerStateProj]
    enum AnswerState<F> {
        // Here and now: a preflight, or shed.
        Ready { response: Option<Response> },
        // By the inner service (its own limits, if any, inside it).
        Inner { #[pin] call: F },
        // By the inner service, within the limits.
        Limited { #[pin] call: Within<F> },
        // A body rewritten to the contract's JSON (`contract_body`), which
        // may read the body first: rare, so boxed.
        Rewriting { body: Pin<Box<dyn Future<Output = Response> + Send>> },
    }
}

impl<F> Future for Answer<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.request.is_none() {
            // Polled after its answer was given.
            return Poll::Pending;
        }
        loop {
            let (response, rewritten) = match this.state.as_mut().project() {
                AnswerStateProj::Ready { response } => (response.take(), false),
                AnswerStateProj::Inner { call } => match std::task::ready!(call.poll(cx)) {
                    Ok(response) => (Some(response), false),
                    Err(never) => match never {},
                },
                AnswerStateProj::Limited { call } => {
                    (Some(std::task::ready!(call.poll(cx))), false)
                }
                AnswerStateProj::Rewriting { body } => {
                    (Some(std::task::ready!(body.as_mut().poll(cx))), true)
                }
            };
            let (Some(response), Some(request)) = (response, this.request.as_ref()) else {
                return Poll::Pending;
            };
            if !rewritten && needs_contract_body(&response) {
                let body = contract_body(
                    response,
                    request.method.clone(),
                    request.sent.clone(),
                    request.request_id.clone(),
                );
                this.state.set(AnswerState::Rewriting {
                    body: Box::pin(body),
                });
                continue;
            }
            let Some(request) = this.request.take() else {
                return Poll::Pending;
            };
            return Poll::Ready(Ok(finish(response, request)));
        }
    }
}

/// What every response gets on its way out: its metrics, its access line,
/// the CORS `Vary` (without CORS origins), the request id and the security
/// headers.
fn finish(mut response: Response, request: Sent) -> Response {
    let Sent {
        started,
        request_id,
        method,
        sent,
        plain_cors,
    } = request;
    let request_id_text = request_id.to_str().unwrap_or("-");
    let elapsed = started.elapsed();
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or("unmatched", |r| r.0);
    crate::metrics::METRICS.record_request(route, &method, response.status(), elapsed);
    access_line(&method, &sent, &response, elapsed, request_id_text);
    let headers = response.headers_mut();
    // Room for the headers added below, in one step: at most that many (a
    // map grows when asked for more than it holds).
    let docs = is_docs(sent.path());
    headers.reserve(usize::from(plain_cors) + 1 + SECURITY_HEADERS.len() + usize::from(docs));
    if plain_cors {
        headers.append(header::VARY, CORS_VARY.clone());
    }
    headers.entry(X_REQUEST_ID.clone()).or_insert(request_id);
    security_headers(docs, headers);
    response
}

impl<S> Front<S>
where
    Self: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    <Self as Service<Request>>::Future: Send + 'static,
{
    /// Answers one request on a copy of the stack (what hyper calls for
    /// each request of a connection). The stack is always ready (it applies
    /// no back-pressure: an overloaded server answers 503 instead), so the
    /// request is called at once, without `Oneshot`'s state machine or a
    /// box; were it ever not ready, the request would wait for it as usual.
    pub fn answer(
        &self,
        req: Request,
    ) -> futures::future::Either<
        <Self as Service<Request>>::Future,
        tower::util::Oneshot<Self, Request>,
    > {
        let mut front = self.clone();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match front.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => futures::future::Either::Left(front.call(req)),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => futures::future::Either::Right(tower::ServiceExt::oneshot(front, req)),
        }
    }
}

/// Load shedding and the request timeout behind the CORS layer (when CORS
/// origins are configured), so that their answers carry CORS headers and
/// CORS preflights (answered by that layer) are never shed.
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    limits: Limits,
}

impl<S> Guard<S> {
    pub fn new(inner: S, limits: Limits) -> Self {
        Guard { inner, limits }
    }
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures::future::Either<
        futures::future::Map<Within<S::Future>, fn(Response) -> Result<Response, Infallible>>,
        std::future::Ready<Result<Response, Infallible>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match self.limits.within(&mut self.inner, req) {
            Ok(answer) => futures::future::Either::Left(answer.map(Ok)),
            Err(Full) => futures::future::Either::Right(std::future::ready(Ok(overloaded()))),
        }
    }
}

pin_project_lite::pin_project! {
    /// The handler's answer, holding its request slot until then; a 408
    /// (empty body) once `limit` has passed; a 500 if the handler panicked.
    /// The timer is only set (and allocated) when the handler does not
    /// answer at its first poll: a constant or in-process cached answer
    /// sets none.
    pub struct Within<F> {
        #[pin]
        call: F,
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
        limit: Duration,
        permit: Option<OwnedSemaphorePermit>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for Within<F> {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let this = self.project();
        let answer = match std::panic::catch_unwind(AssertUnwindSafe(|| this.call.poll(cx))) {
            Ok(Poll::Ready(Ok(response))) => response,
            Ok(Poll::Ready(Err(never))) => match never {},
            Err(panic) => panicked(panic),
            Ok(Poll::Pending) => {
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(*this.limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => StatusCode::REQUEST_TIMEOUT.into_response(),
                    Poll::Pending => return Poll::Pending,
                }
            }
        };
        // The slot is free as soon as the answer is known.
        this.permit.take();
        Poll::Ready(answer)
    }
}

/// The URI without the slashes that end its path (and with one slash to
/// begin it), so that `/api/events/` and `/api/events` are one route:
/// `None` when there is nothing to trim. What `tower_http`'s
/// `NormalizePath::trim_trailing_slash` does, without its `format!`s and
/// second parse (they were a twentieth of a cached read, and Django's
/// clients end every path with a slash).
fn trim_slashes(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    if !path.ends_with('/') && !path.starts_with("//") {
        return None;
    }
    let kept = path.trim_matches('/');
    let query = uri.query();
    let mut text = String::with_capacity(2 + kept.len() + query.map_or(0, str::len));
    text.push('/');
    text.push_str(kept);
    if let Some(query) = query {
        text.push('?');
        text.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::from_maybe_shared(Bytes::from(text)).ok()?);
    Uri::from_parts(parts).ok()
}

/// A random UUID (v4) from a fast per-thread generator (xoshiro, seeded
/// from the operating system's entropy): an id to find a request by, not
/// a secret, so a few instructions rather than a ChaCha block.
/// 1 to 64 letters, digits, `.`, `_` or `-`.
fn is_plain_request_id(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn new_request_id() -> HeaderValue {
    use rand::{Rng, SeedableRng};
    thread_local! {
        static IDS: std::cell::RefCell<rand::rngs::SmallRng> =
            std::cell::RefCell::new(rand::rngs::SmallRng::from_entropy());
    }
    let bytes = IDS
        .try_with(|ids| ids.borrow_mut().r#gen::<[u8; 16]>())
        .unwrap_or_else(|_| rand::random());
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
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

/// Whether [`contract_body`] has a body to rewrite: a 4xx that is neither
/// JSON nor a console page (axum's 405, the body limit's 413, extractor
/// rejections), or a 500 of the API.
fn needs_contract_body(response: &Response) -> bool {
    let status = response.status();
    (status.is_client_error() && !is_json(response) && !is_html(response))
        || (status == StatusCode::INTERNAL_SERVER_ERROR && !is_html(response))
}

/// Gives the bodies axum leaves empty or plain the contract's JSON (405
/// keeping `Allow`, the body limit's 413, extractor rejections); logs every
/// 500 at ERROR with its request id and cause, and puts the request id in
/// its body. For the responses [`needs_contract_body`] picks.
async fn contract_body(
    response: Response,
    method: Method,
    sent: Uri,
    request_id: HeaderValue,
) -> Response {
    let request_id = request_id.to_str().unwrap_or("-");
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED if !is_json(&response) && !is_html(&response) => json_body(
            response,
            json!({ "detail": format!("Method \"{method}\" not allowed.") }),
        ),
        StatusCode::PAYLOAD_TOO_LARGE if !is_json(&response) && !is_html(&response) => json_body(
            response,
            json!({ "detail": super::error::PAYLOAD_TOO_LARGE }),
        ),
        // Extractor rejections (e.g. an undecodable path) are plain text;
        // the console's pages are HTML on purpose.
        status if status.is_client_error() && !is_json(&response) && !is_html(&response) => {
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
/// float formatting cost more than the rest of a `/healthz` request),
/// straight into the line written to the log batch (`logging::write_info`),
/// as the line of an event named `request` would be.
fn access_line(
    method: &Method,
    sent: &axum::http::Uri,
    response: &Response,
    elapsed: std::time::Duration,
    request_id: &str,
) {
    if !access_log_on() {
        return;
    }
    let write = |line: &mut String| {
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
    };
    if !crate::logging::write_info(module_path!(), "request", line!(), write) {
        let mut line = String::with_capacity(160);
        write(&mut line);
        tracing::info!(name: "request", "{line}");
    }
}

/// Whether the filter lets the access line through. Asked of `tracing`
/// once logging is installed, then kept: the filter is fixed at start-up,
/// and the line is written outside any span, so the answer cannot change
/// (asking cost a seventieth of a `/healthz` request). Asked every time
/// before that (an application inside tests, logging through `tracing`).
fn access_log_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if let Some(on) = ON.get() {
        return *on;
    }
    let on = tracing::enabled!(Level::INFO);
    if crate::logging::is_installed() {
        let _ = ON.set(on);
    }
    on
}

/// The headers every response carries.
static SECURITY_HEADERS: [(HeaderName, HeaderValue); 3] = [
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
];

/// The API docs page and its assets (a strict CSP: all served from here).
fn is_docs(path: &str) -> bool {
    path.starts_with("/api/docs")
}

/// Adds the headers every response carries; the docs page (`docs`) also
/// gets a strict CSP (its assets are all served from here).
fn security_headers(docs: bool, headers: &mut axum::http::HeaderMap) {
    for (name, value) in &SECURITY_HEADERS {
        headers.insert(name.clone(), value.clone());
    }
    if docs {
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
