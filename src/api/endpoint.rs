//! The layer around every route's handler ([`EndpointLayer`], applied by
//! `app::router`): it records which route template matched (for the
//! request metrics, written by the front door) and, on the API routes that
//! read the bearer token (every one but login and the token routes),
//! resolves `Authorization: Bearer <access token>` before the handler runs —
//! so a bad token is a 401 on a public read too, and before a 405, as DRF
//! does. Handlers then take `AuthUser` or `MaybeUser` (`api::extract`).
//!
//! One layer for both, because each route layer adds a boxed service and a
//! boxed future to every request of its routes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::extract::{MatchedPath, Request};
use axum::http::header::AUTHORIZATION;
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, Either};

use super::AccessLogUser;
use super::extract::{Authentication, resolve};
use crate::state::AppState;

/// The route template that matched (`/api/events/:id`), carried to the
/// request metrics.
#[derive(Clone, Copy)]
pub struct RouteTemplate(pub &'static str);

/// Wraps each route of a router in an [`Endpoint`].
#[derive(Clone)]
pub struct EndpointLayer {
    /// `Some`: the routes read the bearer token.
    authenticate: Option<AppState>,
}

impl EndpointLayer {
    /// For routes that read the bearer token.
    pub fn authenticating(state: AppState) -> Self {
        EndpointLayer {
            authenticate: Some(state),
        }
    }

    /// For routes that do not (login, tokens, probes, the console).
    pub fn plain() -> Self {
        EndpointLayer { authenticate: None }
    }
}

impl<S> tower::Layer<S> for EndpointLayer {
    type Service = Endpoint<S>;

    fn layer(&self, inner: S) -> Endpoint<S> {
        Endpoint {
            inner,
            authenticate: self.authenticate.clone(),
            label: Arc::default(),
        }
    }
}

#[derive(Clone)]
pub struct Endpoint<S> {
    inner: S,
    authenticate: Option<AppState>,
    /// The route template this endpoint serves and its label, found at its
    /// first request (each endpoint serves one route).
    label: Arc<OnceLock<(Box<str>, &'static str)>>,
}

impl<S> Endpoint<S> {
    /// The metrics label of the route that matched.
    fn label(&self, matched: &str) -> &'static str {
        let (template, label) = self
            .label
            .get_or_init(|| (matched.into(), route_label(matched)));
        if **template == *matched {
            label
        } else {
            route_label(matched)
        }
    }
}

impl<S> tower::Service<Request> for Endpoint<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Recorded<Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let template = req
            .extensions()
            .get::<MatchedPath>()
            .map(|p| self.label(p.as_str()));
        let header = match &self.authenticate {
            Some(state) => req
                .headers()
                .get(AUTHORIZATION)
                .cloned()
                .map(|header| (state.clone(), header)),
            None => None,
        };
        let Some((state, header)) = header else {
            // Anonymous, or a route that does not read the token: no
            // allocation, no boxed future.
            return Recorded {
                inner: Either::Left(self.inner.call(req)),
                template,
            };
        };
        // The instance `poll_ready` readied goes with this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Recorded {
            inner: Either::Right(Box::pin(async move {
                match resolve(&state, &header).await {
                    Ok(user) => {
                        let user_id = user.id;
                        req.extensions_mut().insert(Authentication(user));
                        let mut response = inner.call(req).await?;
                        response.extensions_mut().insert(AccessLogUser(user_id));
                        Ok(response)
                    }
                    Err(err) => Ok(err.into_response()),
                }
            })),
            template,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner answer, with the matched route template in its extensions.
    pub struct Recorded<F> {
        #[pin]
        inner: F,
        template: Option<&'static str>,
    }
}

impl<F> Future for Recorded<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        if let Some(template) = *this.template {
            response.extensions_mut().insert(RouteTemplate(template));
        }
        Poll::Ready(Ok(response))
    }
}

/// The metrics label of a matched route, made once per route and kept for
/// the life of the process (there are as many as routes). Called at each
/// endpoint's first request only (`Endpoint::label` keeps it).
fn route_label(matched: &str) -> &'static str {
    type Labels = std::sync::Mutex<std::collections::HashMap<String, &'static str>>;
    static LABELS: std::sync::OnceLock<Labels> = std::sync::OnceLock::new();
    let mut labels = LABELS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    labels.entry(matched.to_string()).or_insert_with(|| {
        // `/api/events/{id}` → `/api/events/:id`: braces in label values
        // trip some Prometheus tooling.
        matched.replace('{', ":").replace('}', "").leak()
    })
}
