//! `AppState`: the services every front door (API, console, CLI, worker)
//! and the domain reach. It depends on infrastructure modules, and on the
//! domain only for the type of its batched caller reads.

use std::sync::Arc;

use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Database;
use crate::jwt::JwtKeys;
use crate::mail::Mailer;
use crate::storage::Storage;
use crate::ticket_codes::TicketSigner;

/// What every handler can reach: a handle (one reference count) on the
/// services, cloned for every request by the router and its middleware.
#[derive(Clone)]
pub struct AppState {
    services: Arc<Services>,
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

/// The services themselves, reached through `AppState`.
pub struct Services {
    pub db: Database,
    pub storage: Storage,
    pub cache: Cache,
    pub mailer: Mailer,
    pub clock: Clock,
    pub jwt: Arc<JwtKeys>,
    pub config: Arc<Config>,
    /// The key that signs ticket codes.
    pub tickets: Arc<TicketSigner>,
    /// Registrations waiting to be written together (PostgreSQL).
    pub registration_queues: Arc<crate::db::registration_writer::Queues>,
    /// Callers read from the database together (`db::callers`).
    pub callers: crate::db::callers::CallerReads,
    /// The key the secrets of mailed links are derived from
    /// (`domain::accounts::links`), itself derived from `SECRET_KEY`.
    pub link_key: [u8; 32],
    /// `http://host:port` as this server listens, once bound: where mails
    /// written without a request point when `PUBLIC_URL` is unset.
    pub listen_origin: std::sync::OnceLock<String>,
}

impl AppState {
    /// Where links in mails point: `PUBLIC_URL`, else this server as
    /// reached from its own machine (a laptop's `http://127.0.0.1:8000`).
    pub fn mail_origin(&self) -> String {
        if let Some(url) = &self.config.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        if let Some(bound) = self.listen_origin.get() {
            return bound.clone();
        }
        format!("http://127.0.0.1:{}", self.config.port)
    }

    /// Connects to the database and loads the signing key; does not migrate.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let db = Database::connect(&config).await?;
        let secret =
            crate::jwt::load_or_create_secret(config.secret_key.as_deref(), &config.data_dir)?;
        let jwt = JwtKeys::new(&secret, config.jwt_access_ttl, config.jwt_refresh_ttl);
        let link_key = crate::db::links::derive_key(&secret);
        let tickets = TicketSigner::load(config.ticket_signing_key, &config.data_dir)?;
        let storage = Storage::open(&config).await?;
        let cache = Cache::open(&config)?;
        let mailer = Mailer::open(&config)?;
        let callers = crate::db::callers::caller_reads(db.clone());
        Ok(AppState {
            services: Arc::new(Services {
                callers,
                link_key,
                listen_origin: std::sync::OnceLock::new(),
                db,
                storage,
                cache,
                mailer,
                clock: Clock::default(),
                jwt: Arc::new(jwt),
                tickets: Arc::new(tickets),
                config: Arc::new(config),
                registration_queues: Arc::default(),
            }),
        })
    }
}
