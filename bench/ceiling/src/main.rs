//! The benchmark's ceilings: a minimal axum server on the product's stack.
//!
//! - `GET /plain` answers a constant small body;
//! - `GET /redis` answers the value of one Redis `GET` of a fixed key
//!   (through a `ConnectionManager`, as the product's cache does).
//!
//! `dicoevent-ceiling [PORT]` (or `PORT`; default 8090), `REDIS_URL`
//! (default `redis://127.0.0.1:6379/0`). Without Redis, `/redis` answers 503
//! and `/plain` still serves.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

/// The key `/redis` reads, and what is stored there at start-up: about the
/// size of a cached event's JSON.
const KEY: &str = "dicoevent-ceiling:value";
const PLAIN: &str = r#"{"status":"ok"}"#;

#[derive(Clone)]
struct AppState {
    redis: Option<ConnectionManager>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let port = match std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
    {
        Some(p) => p.parse::<u16>().map_err(|e| format!("port {p:?}: {e}"))?,
        None => 8090,
    };
    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_string());
    let redis = match connect(&redis_url).await {
        Ok(manager) => Some(manager),
        Err(err) => {
            eprintln!("redis at {redis_url}: {err}; /redis answers 503");
            None
        }
    };
    let app = Router::new()
        .route("/plain", get(plain))
        .route("/redis", get(from_redis))
        .with_state(AppState { redis });
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?
        // As the product does: small answers sent now, not after Nagle's delay.
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    eprintln!("ceiling listening on http://{address}");
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("serve: {e}"))
}

async fn connect(url: &str) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut manager = ConnectionManager::new(client).await?;
    let value = format!(
        r#"{{"id":"0193a1b2-0000-7000-8000-000000000000","name":"Ceiling","description":"{}"}}"#,
        "x".repeat(400)
    );
    let () = manager.set(KEY, value).await?;
    Ok(manager)
}

async fn plain() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], PLAIN).into_response()
}

async fn from_redis(State(state): State<AppState>) -> Response {
    let Some(mut redis) = state.redis else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    match redis.get::<_, Option<Vec<u8>>>(KEY).await {
        Ok(Some(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
