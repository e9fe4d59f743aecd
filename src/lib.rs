//! DicoEvent: an event-management backend.
//!
//! `Application::build` wires configuration, database and router together and
//! binds the listener (port 0 in tests); `run_until_stopped` serves until a
//! shutdown signal, draining in-flight requests.

pub mod api;
pub mod app;
pub mod cache;
pub mod cli;
pub mod clock;
mod coarse_timer;
pub mod config;
pub mod connection;
pub mod console;
pub mod db;
pub mod digest;
pub mod domain;
pub mod hosts;
pub mod import;
pub mod input;
pub mod jobs;
pub mod jwt;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod money;
pub mod readiness;
pub mod state;
pub mod storage;
pub mod ticket_codes;

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::state::AppState;

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
        domain::checkins::record_signing_key(&state).await?;
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        if let Ok(bound) = listener.local_addr() {
            let host = if bound.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else if bound.is_ipv6() {
                format!("[{}]", bound.ip())
            } else {
                bound.ip().to_string()
            };
            let _ = state
                .listen_origin
                .set(format!("http://{host}:{}", bound.port()));
        }
        Ok(Application { listener, state })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The address actually listened on (`host:port`), for the start-up line.
    pub fn local_addr(&self) -> String {
        self.listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| format!("port {}", self.port()))
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish
    /// (for at most 30 s).
    ///
    /// Our own accept loop rather than `axum::serve`, which gives hyper no
    /// timer: without one a client that never finishes its headers holds a
    /// connection for ever. Here each connection gets `HEADER_READ_TIMEOUT`
    /// for every request head (kept-alive connections included), timed by a
    /// `CoarseTimer` (tokio's timer cost a thirtieth of a `/healthz` there).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = app::app(self.state.clone());
        let stamp_watcher = tokio::spawn(watch_cache_stamp(self.state.clone()));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(coarse_timer::CoarseTimer::start(
            self.state.config.header_read_timeout,
        ))
        .header_read_timeout(self.state.config.header_read_timeout);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, remote) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: wait, don't spin.
                        tracing::error!("cannot accept a connection: {err}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Small JSON responses: send them now, not after Nagle's delay.
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY on {remote}: {err}");
            }
            let app = app.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                app.answer(req.map(axum::body::Body::new))
            });
            let connection = http.serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            // The handlers find the client's address in the task
            // (`connection::client_ip`).
            tokio::spawn(connection::serving_client(remote, async move {
                if let Err(err) = connection.await {
                    tracing::debug!("connection from {remote}: {err}");
                }
            }));
        }
        drop(self.listener);
        stamp_watcher.abort();
        if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("requests still running 30 s after shutdown began; stopping anyway");
        }
        Ok(())
    }
}

/// Drops this process's cached reads whenever a CLI command (`truncate`,
/// `createsuperuser`, `import-django`) bumped the database's cache stamp:
/// an in-process cache cannot be reached from another process, and a
/// request must not pay a database round trip to find out. One small read
/// every `cache::STAMP_POLL` per server is the whole cost.
async fn watch_cache_stamp(state: AppState) {
    if !state.cache.is_enabled() {
        return;
    }
    let mut seen: Option<i64> = None;
    let mut interval = tokio::time::interval(cache::STAMP_POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match state.db.cache_stamp().await {
            Ok(stamp) => {
                if seen.is_some_and(|before| before != stamp) {
                    state.cache.invalidate_all().await;
                    tracing::info!(
                        "the data was changed by a command line tool; cached reads dropped"
                    );
                }
                seen = Some(stamp);
            }
            // The database is down: requests report it; look again later.
            Err(e) => tracing::debug!("cannot read the cache stamp: {e}"),
        }
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
