//! The application's wiring: both front doors (the JSON API under `/api/`,
//! the console under `/console/`) assembled into one router behind one
//! front door (`api::front`).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use tower::Layer;
use tower::util::Either;
use tower_http::cors::Cors;

use crate::api::endpoint::EndpointLayer;
use crate::api::{self, JSON_BODY_LIMIT, front};
use crate::console;
use crate::state::AppState;

/// Every route, without trailing slashes (the front door trims them, so `/api/events/` and `/api/events` are one route).
/// One flat router (each route is registered with its full path: no
/// prefix stripped and no second lookup per request).
pub fn router(state: AppState) -> Router {
    let (authenticated, _) = api::authenticated_routes().split_for_parts();
    let (public, _) = api::public_routes().split_for_parts();
    // The body limit goes in the same layer as the endpoint: each
    // `Router::layer` wraps every route in one more boxed service, cloned
    // and boxed again on every request.
    let body_limit = DefaultBodyLimit::max(JSON_BODY_LIMIT);
    let unauthenticated = public
        .merge(console::router())
        .layer((EndpointLayer::plain(), body_limit));
    authenticated
        .layer((EndpointLayer::authenticating(state.clone()), body_limit))
        .merge(unauthenticated)
        .fallback(api::not_found)
        .with_state(state)
}

/// The whole service, as the server runs it (see `front`): the front door
/// (request id, trailing-slash trimming, load shedding, the request timeout,
/// panics, contract bodies, metrics, access line, security headers), then,
/// when CORS origins are configured, CORS and the limits behind it; the
/// router (with the body limit). Built once; each connection and
/// request clones it (reference counts).
pub type App = front::Front<Either<Cors<front::Guard<Router>>, Router>>;

pub fn app(state: AppState) -> App {
    let limits = front::Limits::new(state.config.max_in_flight, state.config.request_timeout);
    let router = router(state.clone());
    let config = &state.config;
    let names = std::sync::Arc::new(front::Names {
        allowed: crate::hosts::AllowedHosts::new(
            config.allowed_hosts.as_deref(),
            &config.host,
            config.public_url.as_deref(),
        ),
        public_url: config
            .public_url
            .as_deref()
            .map(|url| front::PublicUrl(url.into())),
        trusted_proxies: config.trusted_proxies.clone(),
    });
    match cors(&config.cors_allowed_origins) {
        Some(cors) => front::Front::new(
            Either::Left(cors.layer(front::Guard::new(router, limits))),
            false,
            None,
            names,
        ),
        None => front::Front::new(Either::Right(router), true, Some(limits), names),
    }
}

/// CORS for the configured origins (none: no CORS headers, browsers keep
/// their same-origin rule; the front door then adds the `Vary` alone).
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
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
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("x-data-source"),
                header::RETRY_AFTER,
            ])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}
