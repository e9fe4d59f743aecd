//! `/healthz` (the process runs) and `/readyz` (its dependencies answer).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::config::DatabaseConfig;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 while the database answers, 503 when it does not.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let backend = match state.config.database {
        DatabaseConfig::Sqlite { .. } => "sqlite",
        DatabaseConfig::Postgres { .. } => "postgresql",
    };
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), state.db.ping()).await;
    let (status, database) = match ping {
        Ok(Ok(())) => (
            StatusCode::OK,
            json!({ "status": "ok", "backend": backend }),
        ),
        Ok(Err(e)) => {
            tracing::error!("readiness: database unreachable: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "status": "unavailable", "backend": backend }),
            )
        }
        Err(_) => {
            tracing::error!("readiness: database did not answer within 2 s");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "status": "unavailable", "backend": backend }),
            )
        }
    };
    let storage_backend = if state.storage.is_s3() { "s3" } else { "local" };
    let storage = match state.storage.ping().await {
        Ok(()) => json!({ "status": "ok", "backend": storage_backend }),
        Err(e) => {
            tracing::warn!("readiness: object storage unavailable: {e}");
            json!({ "status": "unavailable", "backend": storage_backend })
        }
    };
    let mail_backend = if state.mailer.is_smtp() {
        "smtp"
    } else {
        "files"
    };
    let mail = match state.mailer.ping().await {
        Ok(()) => json!({ "status": "ok", "backend": mail_backend }),
        Err(e) => {
            tracing::warn!("readiness: mail unavailable: {e}");
            json!({ "status": "unavailable", "backend": mail_backend })
        }
    };
    let worker = match crate::jobs::stats(&state).await {
        Ok((queue_depth, dead_jobs)) => {
            json!({ "queue_depth": queue_depth, "dead_jobs": dead_jobs })
        }
        Err(_) => json!({ "status": "unknown" }),
    };
    let cache_status = state.cache.status().await;
    let cache = json!({
        "status": if cache_status.healthy { "ok" } else { "degraded" },
        "backend": cache_status.backend,
    });
    let overall = if status == StatusCode::OK {
        "ok"
    } else {
        "unavailable"
    };
    (
        status,
        Json(json!({
            "status": overall,
            "database": database,
            "storage": storage,
            "cache": cache,
            "mail": mail,
            "jobs": worker,
        })),
    )
}
