//! DicoEvent: an event-management backend.
//!
//! `Application::build` wires configuration, database and router together and
//! binds the listener (port 0 in tests); `run_until_stopped` serves until a
//! shutdown signal, draining in-flight requests.

pub mod api;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod jobs;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod storage;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::ServiceExt;
use axum::extract::Request;
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

use crate::auth::jwt::JwtKeys;
use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Database;
use crate::mail::Mailer;
use crate::storage::Storage;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub storage: Storage,
    pub cache: Cache,
    pub mailer: Mailer,
    pub clock: Clock,
    pub jwt: Arc<JwtKeys>,
    pub config: Arc<Config>,
}

impl AppState {
    /// Connects to the database and loads the signing key; does not migrate.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let db = Database::connect(&config).await?;
        let secret =
            auth::jwt::load_or_create_secret(config.secret_key.as_deref(), &config.data_dir)?;
        let jwt = JwtKeys::new(&secret, config.jwt_access_ttl, config.jwt_refresh_ttl);
        let storage = Storage::open(&config).await?;
        let cache = Cache::open(&config)?;
        let mailer = Mailer::open(&config)?;
        Ok(AppState {
            db,
            storage,
            cache,
            mailer,
            clock: Clock::default(),
            jwt: Arc::new(jwt),
            config: Arc::new(config),
        })
    }
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Connects, migrates and binds `host:port` from the configuration.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let address = format!("{}:{}", config.host, config.port);
        let state = AppState::new(config).await?;
        state.db.migrate().await?;
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        Ok(Application { listener, state })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = api::router(self.state.clone());
        let app = NormalizePathLayer::trim_trailing_slash().layer(router);
        axum::serve(
            self.listener,
            ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
#[tracing::instrument(name = "shutdown_signal")]
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
