//! What `/readyz` reports (and the console's service status): whether each
//! dependency answers.

use serde::Serialize;
use utoipa::ToSchema;

use crate::config::DatabaseConfig;
use crate::state::AppState;

/// One dependency's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DependencyState {
    /// `ok`, `unavailable` (`degraded` for a cache that fell back).
    pub status: &'static str,
    /// Which implementation is configured (e.g. `sqlite`, `postgresql`,
    /// `s3`, `local`, `redis`, `in-process`, `smtp`, `files`).
    pub backend: String,
}

/// The background job queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobsState {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = i64)]
    pub queue_depth: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = i64)]
    pub dead_jobs: Option<u64>,
    /// `unknown` when the queue could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = String)]
    pub status: Option<&'static str>,
}

/// The state of every dependency; 503 when the database is unreachable.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    pub database: DependencyState,
    pub storage: DependencyState,
    pub cache: DependencyState,
    pub mail: DependencyState,
    pub jobs: JobsState,
}

impl Readiness {
    /// Ready while the database answers.
    pub fn is_ready(&self) -> bool {
        self.status == "ok"
    }
}

fn state_of(ok: bool, backend: &str) -> DependencyState {
    DependencyState {
        status: if ok { "ok" } else { "unavailable" },
        backend: backend.to_string(),
    }
}

/// Reaches every dependency (the database for at most 2 s).
pub async fn check(state: &AppState) -> Readiness {
    let backend = match state.config.database {
        DatabaseConfig::Sqlite { .. } => "sqlite",
        DatabaseConfig::Postgres { .. } => "postgresql",
    };
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), state.db.ping()).await;
    let database_ok = match ping {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::error!("readiness: database unreachable: {e}");
            false
        }
        Err(_) => {
            tracing::error!("readiness: database did not answer within 2 s");
            false
        }
    };
    let storage_backend = if state.storage.is_s3() { "s3" } else { "local" };
    let storage_ok = match state.storage.ping().await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("readiness: object storage unavailable: {e}");
            false
        }
    };
    let mail_backend = if state.mailer.is_smtp() {
        "smtp"
    } else {
        "files"
    };
    let mail_ok = match state.mailer.ping().await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("readiness: mail unavailable: {e}");
            false
        }
    };
    let jobs = match crate::jobs::stats(state).await {
        Ok((queue_depth, dead_jobs)) => JobsState {
            queue_depth: Some(queue_depth),
            dead_jobs: Some(dead_jobs),
            status: None,
        },
        Err(_) => JobsState {
            queue_depth: None,
            dead_jobs: None,
            status: Some("unknown"),
        },
    };
    let cache_status = state.cache.status().await;
    Readiness {
        status: if database_ok { "ok" } else { "unavailable" },
        database: state_of(database_ok, backend),
        storage: state_of(storage_ok, storage_backend),
        cache: DependencyState {
            status: if cache_status.healthy {
                "ok"
            } else {
                "degraded"
            },
            backend: cache_status.backend.to_string(),
        },
        mail: state_of(mail_ok, mail_backend),
        jobs,
    }
}
