//! Configuration: the environment (and a `.env` file) read and validated once.
//!
//! Variable names are the Django service's, so an existing `.env` keeps working.
//! A bad value is reported with the variable's name; nothing here panics.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;

/// A configuration value that could not be used, named by its variable.
/// `LOG_LEVEL` when unset: dependencies that log every statement or
/// connection are quiet.
pub const DEFAULT_LOG_FILTER: &str =
    "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,hyper=warn,tower_http=warn";

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

impl ConfigError {
    fn new(variable: &str, message: impl Into<String>) -> Self {
        Self {
            variable: variable.to_string(),
            message: message.into(),
        }
    }
}

/// Every variable DicoEvent reads (here and elsewhere).
const KNOWN_VARIABLES: &[&str] = &[
    "ADMISSION_OPENS_BEFORE",
    "ALLOWED_HOSTS",
    "CACHE_PREFIX",
    "CACHE_TTL",
    "CORS_ALLOWED_ORIGINS",
    "CURRENCY",
    "DATABASE_ACQUIRE_TIMEOUT",
    "DATABASE_HOST",
    "DATABASE_NAME",
    "DATABASE_PASSWORD",
    "DATABASE_POOL_SIZE",
    "DATABASE_PORT",
    "DATABASE_URL",
    "DATABASE_USER",
    "DATA_DIR",
    "DICOEVENT_SUPERUSER_PASSWORD",
    "HEADER_READ_TIMEOUT",
    "HOST",
    "HOSTNAME",
    "HOUSEKEEPING_INTERVAL",
    "JWT_ACCESS_TTL",
    "JWT_REFRESH_TTL",
    "JWT_REVOKE_ACCESS_ON_PASSWORD_CHANGE",
    "LOGIN_THROTTLE_ADDRESS_FAILURES",
    "LOGIN_THROTTLE_FAILURES",
    "LOGIN_THROTTLE_WINDOW",
    "LOG_DIR",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "LOG_RETENTION_DAYS",
    "MAIL_FROM",
    "MAIL_HOST",
    "MAIL_PASSWORD",
    "MAIL_PORT",
    "MAIL_TLS",
    "MAIL_USER",
    "MAX_IN_FLIGHT",
    "MINIO_ACCESS_KEY",
    "MINIO_BUCKET_NAME",
    "MINIO_ENDPOINT_URL",
    "MINIO_REGION",
    "MINIO_SECRET_KEY",
    "OUTBOX_LEASE",
    "OUTBOX_RETENTION_DAYS",
    "PORT",
    "PUBLIC_URL",
    "REDIS_DB",
    "REDIS_HOST",
    "REDIS_PASSWORD",
    "REDIS_PORT",
    "REDIS_URL",
    "REQUEST_TIMEOUT",
    "REQUIRE_EMAIL_VERIFICATION",
    "RUST_BACKTRACE",
    "RUST_LOG",
    "SECRET_KEY",
    "SESSION_COOKIE_SECURE",
    "SESSION_IDLE",
    "TICKET_SIGNING_KEY",
    "TIME_ZONE",
    "TRUSTED_PROXIES",
    "WORKER_CONCURRENCY",
    "WORKER_POLL_INTERVAL",
];

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// The embedded default: one SQLite file.
    Sqlite { path: PathBuf },
    /// A PostgreSQL server, as a `postgres://` URL.
    Postgres { url: String },
}

impl DatabaseConfig {
    /// The connection URL with any password masked, for logs and `check`.
    pub fn describe(&self) -> String {
        match self {
            DatabaseConfig::Sqlite { path } => format!("sqlite {}", path.display()),
            DatabaseConfig::Postgres { url } => format!("postgresql {}", mask_url_password(url)),
        }
    }
}

/// S3/MinIO object storage for posters.
#[derive(Clone, Debug)]
pub struct S3Config {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    pub region: String,
}

/// How to talk to the SMTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a local test server).
    None,
}

/// SMTP settings; without them, mail is written to `<data dir>/outbox/`.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub tls: MailTls,
}

/// Login throttling: at most `max_failures` failed logins per username from
/// one client address, and `max_failures_per_address` per address, within
/// `window`.
#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    pub max_failures: u32,
    /// Per client address: higher, since many users may share an address
    /// (an office, a NAT) and one user's typos must not lock out the others.
    pub max_failures_per_address: u32,
    pub window: Duration,
}

#[derive(Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub database_pool_size: u32,
    /// Longest a request waits for a PostgreSQL connection (then 503).
    pub database_acquire_timeout: Duration,
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    pub log_retention_days: u32,
    /// `LOG_FORMAT=json`: JSON lines instead of the text line format.
    pub log_json: bool,
    /// `LOG_LEVEL`, in `RUST_LOG` syntax.
    pub log_filter: String,
    pub host: String,
    pub port: u16,
    /// `None` means: use (or create) `data/secret_key`.
    pub secret_key: Option<String>,
    /// The Ed25519 seed that signs ticket codes (`TICKET_SIGNING_KEY`,
    /// base64 of 32 bytes); `None`: use (or create) `data/ticket_key`.
    pub ticket_signing_key: Option<[u8; 32]>,
    pub time_zone: Tz,
    /// How amounts are labelled on the console's pages (`IDR`, `Rp`, `€`…).
    pub currency: String,
    pub cache_ttl: Duration,
    pub jwt_access_ttl: Duration,
    pub jwt_refresh_ttl: Duration,
    /// Access tokens issued before a password change are refused too
    /// (`JWT_REVOKE_ACCESS_ON_PASSWORD_CHANGE`; default: they live out
    /// their lifetime, as SimpleJWT's do).
    pub jwt_revoke_access_on_password_change: bool,
    pub login_throttle: ThrottleConfig,
    /// `None`: posters are files under `<data dir>/media`.
    pub s3: Option<S3Config>,
    /// `None`: the in-process cache.
    pub redis_url: Option<String>,
    /// Prefix of every cache key (several deployments can share a Redis).
    pub cache_prefix: String,
    /// `None`: mail goes to `.eml` files under `<data dir>/outbox/`.
    pub smtp: Option<SmtpConfig>,
    /// The sender of every message.
    pub mail_from: String,
    /// How often a worker looks for due jobs.
    pub worker_poll: Duration,
    /// Jobs a worker runs at once (`WORKER_CONCURRENCY`).
    pub worker_concurrency: usize,
    /// How long a claimed job belongs to its worker without a renewal
    /// (`OUTBOX_LEASE`); renewed every third of it while the job runs.
    pub outbox_lease: Duration,
    /// Webhook deliveries a worker makes at once (`WEBHOOK_CONCURRENCY`),
    /// apart from the mails: a receiver that hangs delays only its own.
    pub webhook_concurrency: usize,
    /// Webhooks may go to `http://` and to loopback and private addresses
    /// (`WEBHOOK_ALLOW_PRIVATE`; tests and receivers inside the network).
    pub webhook_allow_private: bool,
    /// Longest a request may take (a slow client included) before a 408.
    pub request_timeout: Duration,
    /// Longest a client may take to send a request's headers (on a new or
    /// kept-alive connection) before the connection is closed.
    pub header_read_timeout: Duration,
    /// Requests handled at once; beyond it, a 503 rather than a collapse.
    pub max_in_flight: usize,
    /// Origins allowed by CORS (`*` for any); empty: no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// `ALLOWED_HOSTS`: the `Host` names served (`None`: the default,
    /// see `hosts::AllowedHosts::new`).
    pub allowed_hosts: Option<Vec<crate::hosts::HostPattern>>,
    /// `PUBLIC_URL` without its trailing slash: where absolute URLs point.
    pub public_url: Option<String>,
    /// `TRUSTED_PROXIES`: the load balancers whose `X-Forwarded-For` names
    /// the client (login throttling, the audit log); empty: none is trusted.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A console session ends after this long without a request.
    pub session_idle: Duration,
    /// A scan that names its event admits from this long before the event's
    /// start until its end (`ADMISSION_OPENS_BEFORE`, default 6h).
    pub admission_opens_before: Duration,
    /// Console cookies only over HTTPS (`SESSION_COOKIE_SECURE=true`).
    pub session_cookie_secure: bool,
    /// Accounts made through `POST /api/users/` may not register before
    /// verifying their address (`REQUIRE_EMAIL_VERIFICATION=true`); those
    /// made through the console's sign-up never may.
    pub require_email_verification: bool,
    /// How often a worker prunes what only grows (`jobs::housekeeping`).
    pub housekeeping_interval: Duration,
    /// Finished outbox jobs are kept this many days (dead ones for ever).
    pub outbox_retention_days: u32,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database", &self.database.describe())
            .field("data_dir", &self.data_dir)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "********"))
            .field(
                "ticket_signing_key",
                &self.ticket_signing_key.as_ref().map(|_| "********"),
            )
            .field("time_zone", &self.time_zone)
            .field("currency", &self.currency)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the process environment, after loading `.env` from the working
    /// directory if there is one (variables already set win).
    pub fn from_env() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigError::new(".env", e.to_string())),
        }
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_vars(&vars)
    }

    /// The variables set in the working directory's `.env` that DicoEvent
    /// does not read: an existing Django installation's `.env` carries its
    /// own (`CELERY_BROKER_URL`, `DJANGO_SETTINGS_MODULE`, …), which are
    /// ignored rather than refused. Only the file is looked at: the process
    /// environment is full of unrelated variables (`PATH`, `HOME`).
    pub fn ignored_dotenv_variables() -> Vec<String> {
        let Ok(entries) = dotenvy::dotenv_iter() else {
            return Vec::new();
        };
        let mut ignored: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|(name, _)| name)
            .filter(|name| !KNOWN_VARIABLES.contains(&name.as_str()))
            .collect();
        ignored.sort();
        ignored.dedup();
        ignored
    }

    /// Builds the configuration from a set of variables (the environment, or a
    /// map in tests).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "data".into()));
        let database = database_from_vars(&get, &data_dir)?;
        let time_zone = match get("TIME_ZONE") {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                ConfigError::new(
                    "TIME_ZONE",
                    format!(
                        "unknown time zone {name:?} (expected an IANA name such as Asia/Jakarta)"
                    ),
                )
            })?,
        };
        let currency = match get("CURRENCY") {
            None => "IDR".to_string(),
            Some(c) if c.chars().count() <= 8 && !c.chars().any(char::is_control) => c,
            Some(c) => {
                return Err(ConfigError::new(
                    "CURRENCY",
                    format!(
                        "{c:?} is not a currency label (at most 8 characters, e.g. IDR, Rp, EUR)"
                    ),
                ));
            }
        };
        let port = match get("PORT") {
            None => 8000,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| ConfigError::new("PORT", format!("{p:?} is not a port number")))?,
        };
        let log_json = match get("LOG_FORMAT").map(|f| f.to_ascii_lowercase()).as_deref() {
            None | Some("text") | Some("plain") => false,
            Some("json") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("{other:?} is not a log format (expected text or json)"),
                ));
            }
        };
        let log_filter = get("LOG_LEVEL").unwrap_or_else(|| DEFAULT_LOG_FILTER.into());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_filter) {
            return Err(ConfigError::new(
                "LOG_LEVEL",
                format!("invalid filter: {e}"),
            ));
        }
        let secret_key = get("SECRET_KEY");
        if let Some(key) = &secret_key
            && key.len() < 16
        {
            return Err(ConfigError::new(
                "SECRET_KEY",
                "must be at least 16 characters long",
            ));
        }
        let ticket_signing_key = match get("TICKET_SIGNING_KEY") {
            None => None,
            Some(raw) => Some(
                crate::ticket_codes::parse_seed(&raw)
                    .map_err(|message| ConfigError::new("TICKET_SIGNING_KEY", message))?,
            ),
        };
        let s3 = match get("MINIO_ENDPOINT_URL") {
            None => None,
            Some(endpoint) => {
                // The Django service's boto setup took `host:port` without a
                // scheme and spoke plain http to it.
                let endpoint = if endpoint.contains("://") {
                    endpoint
                } else {
                    format!("http://{endpoint}")
                };
                if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                    return Err(ConfigError::new(
                        "MINIO_ENDPOINT_URL",
                        format!("{endpoint:?} is not an http:// or https:// URL"),
                    ));
                }
                let required = |name: &str| {
                    get(name).ok_or_else(|| {
                        ConfigError::new(name, "required when MINIO_ENDPOINT_URL is set")
                    })
                };
                Some(S3Config {
                    endpoint,
                    access_key: required("MINIO_ACCESS_KEY")?,
                    secret_key: required("MINIO_SECRET_KEY")?,
                    bucket: get("MINIO_BUCKET_NAME").unwrap_or_else(|| "media".into()),
                    region: get("MINIO_REGION").unwrap_or_else(|| "us-east-1".into()),
                })
            }
        };
        let redis_url = redis_from_vars(&get)?;
        let smtp = smtp_from_vars(&get)?;
        let mail_from =
            get("MAIL_FROM").unwrap_or_else(|| "DicoEvent <noreply@dicoevent.local>".into());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::new(
                "MAIL_FROM",
                format!(
                    "{mail_from:?} is not an e-mail address (e.g. DicoEvent <noreply@example.com>)"
                ),
            ));
        }
        Ok(Config {
            smtp,
            mail_from,
            worker_poll: parse_duration_var(&get, "WORKER_POLL_INTERVAL", Duration::from_secs(5))?,
            worker_concurrency: parse_number(&get, "WORKER_CONCURRENCY", 8, 1, 1000)?,
            outbox_lease: match parse_duration_var(&get, "OUTBOX_LEASE", Duration::from_secs(120))?
            {
                lease if lease >= Duration::from_secs(1) => lease,
                _ => {
                    return Err(ConfigError::new(
                        "OUTBOX_LEASE",
                        "must be at least 1 second (e.g. 120s, 2m)",
                    ));
                }
            },
            request_timeout: parse_duration_var(&get, "REQUEST_TIMEOUT", Duration::from_secs(30))?,
            header_read_timeout: parse_duration_var(
                &get,
                "HEADER_READ_TIMEOUT",
                Duration::from_secs(10),
            )?,
            max_in_flight: parse_number(&get, "MAX_IN_FLIGHT", 1024, 1, 1_000_000)?,
            cors_allowed_origins: cors_from_vars(&get)?,
            allowed_hosts: allowed_hosts_from_vars(&get)?,
            trusted_proxies: trusted_proxies_from_vars(&get)?,
            public_url: get("PUBLIC_URL")
                .map(|raw| {
                    crate::hosts::parse_public_url(&raw)
                        .map_err(|message| ConfigError::new("PUBLIC_URL", message))
                })
                .transpose()?,
            session_idle: parse_duration_var(&get, "SESSION_IDLE", Duration::from_secs(8 * 3600))?,
            admission_opens_before: parse_duration_var(
                &get,
                "ADMISSION_OPENS_BEFORE",
                Duration::from_secs(6 * 3600),
            )?,
            session_cookie_secure: parse_bool(&get, "SESSION_COOKIE_SECURE")?,
            require_email_verification: parse_bool(&get, "REQUIRE_EMAIL_VERIFICATION")?,
            jwt_revoke_access_on_password_change: parse_bool(
                &get,
                "JWT_REVOKE_ACCESS_ON_PASSWORD_CHANGE",
            )?,
            webhook_concurrency: parse_number(&get, "WEBHOOK_CONCURRENCY", 16, 1, 1000)?,
            webhook_allow_private: parse_bool(&get, "WEBHOOK_ALLOW_PRIVATE")?,
            redis_url,
            cache_prefix: get("CACHE_PREFIX").unwrap_or_else(|| "dicoevent".into()),
            s3,
            database,
            database_pool_size: parse_number(&get, "DATABASE_POOL_SIZE", 10, 1, 1000)?,
            database_acquire_timeout: parse_duration_var(
                &get,
                "DATABASE_ACQUIRE_TIMEOUT",
                Duration::from_secs(1),
            )?,
            data_dir,
            log_dir: PathBuf::from(get("LOG_DIR").unwrap_or_else(|| "logs".into())),
            log_retention_days: parse_number(&get, "LOG_RETENTION_DAYS", 14, 1, 36500)?,
            housekeeping_interval: parse_duration_var(
                &get,
                "HOUSEKEEPING_INTERVAL",
                Duration::from_secs(10 * 60),
            )?,
            outbox_retention_days: parse_number(&get, "OUTBOX_RETENTION_DAYS", 7, 1, 36500)?,
            log_json,
            log_filter,
            host: get("HOST").unwrap_or_else(|| "127.0.0.1".into()),
            port,
            secret_key,
            ticket_signing_key,
            time_zone,
            currency,
            // 0 turns the cache off (every read from the database).
            cache_ttl: match get("CACHE_TTL").as_deref() {
                Some("0") => Duration::ZERO,
                _ => parse_duration_var(&get, "CACHE_TTL", Duration::from_secs(3600))?,
            },
            jwt_access_ttl: parse_duration_var(
                &get,
                "JWT_ACCESS_TTL",
                Duration::from_secs(3 * 3600),
            )?,
            jwt_refresh_ttl: parse_duration_var(
                &get,
                "JWT_REFRESH_TTL",
                Duration::from_secs(24 * 3600),
            )?,
            login_throttle: ThrottleConfig {
                max_failures: parse_number(&get, "LOGIN_THROTTLE_FAILURES", 10, 1, 1_000_000)?,
                max_failures_per_address: parse_number(
                    &get,
                    "LOGIN_THROTTLE_ADDRESS_FAILURES",
                    50,
                    1,
                    1_000_000,
                )?,
                window: parse_duration_var(
                    &get,
                    "LOGIN_THROTTLE_WINDOW",
                    Duration::from_secs(15 * 60),
                )?,
            },
        })
    }

    /// The configuration as `NAME = value` lines, secrets masked.
    pub fn summary(&self) -> Vec<(String, String)> {
        vec![
            ("database".into(), self.database.describe()),
            ("DATA_DIR".into(), self.data_dir.display().to_string()),
            ("LOG_DIR".into(), self.log_dir.display().to_string()),
            ("LOG_LEVEL".into(), self.log_filter.clone()),
            (
                "LOG_RETENTION_DAYS".into(),
                self.log_retention_days.to_string(),
            ),
            (
                "OUTBOX_RETENTION_DAYS".into(),
                self.outbox_retention_days.to_string(),
            ),
            (
                "HOUSEKEEPING_INTERVAL".into(),
                format!("{}s", self.housekeeping_interval.as_secs()),
            ),
            ("HOST:PORT".into(), format!("{}:{}", self.host, self.port)),
            (
                "ALLOWED_HOSTS".into(),
                match &self.allowed_hosts {
                    Some(patterns) => patterns
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    None => "127.0.0.1,localhost (the default, with the bind address and PUBLIC_URL's host)".into(),
                },
            ),
            (
                "PUBLIC_URL".into(),
                self.public_url
                    .clone()
                    .unwrap_or_else(|| "(unset: links follow the request's Host)".into()),
            ),
            (
                "SECRET_KEY".into(),
                match &self.secret_key {
                    Some(_) => "******** (from the environment)".into(),
                    None => format!("{}", self.data_dir.join("secret_key").display()),
                },
            ),
            ("TIME_ZONE".into(), self.time_zone.to_string()),
            (
                "TRUSTED_PROXIES".into(),
                if self.trusted_proxies.is_empty() {
                    "(none: X-Forwarded-For is ignored)".into()
                } else {
                    self.trusted_proxies
                        .iter()
                        .map(|net| net.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                },
            ),
            (
                "REQUIRE_EMAIL_VERIFICATION".into(),
                self.require_email_verification.to_string(),
            ),
            ("CURRENCY".into(), self.currency.clone()),
            (
                "posters".into(),
                match &self.s3 {
                    Some(s3) => format!(
                        "S3 bucket {:?} at {} (access key {}, secret ********)",
                        s3.bucket, s3.endpoint, s3.access_key
                    ),
                    None => format!("local files in {}", self.data_dir.join("media").display()),
                },
            ),
            (
                "cache".into(),
                match &self.redis_url {
                    Some(url) => format!("Redis at {}", mask_url_password(url)),
                    None => "in-process".into(),
                },
            ),
            ("CACHE_TTL".into(), format!("{}s", self.cache_ttl.as_secs())),
            (
                "mail".into(),
                match &self.smtp {
                    Some(s) => format!(
                        "SMTP {}:{} ({:?}, user {}, password {})",
                        s.host,
                        s.port,
                        s.tls,
                        s.user.as_deref().unwrap_or("-"),
                        if s.password.is_some() {
                            "********"
                        } else {
                            "-"
                        }
                    ),
                    None => format!("files in {}", self.data_dir.join("outbox").display()),
                },
            ),
            ("MAIL_FROM".into(), self.mail_from.clone()),
            (
                "JWT_ACCESS_TTL".into(),
                format!("{}s", self.jwt_access_ttl.as_secs()),
            ),
            (
                "JWT_REFRESH_TTL".into(),
                format!("{}s", self.jwt_refresh_ttl.as_secs()),
            ),
        ]
    }
}

fn database_from_vars(
    get: &impl Fn(&str) -> Option<String>,
    data_dir: &Path,
) -> Result<DatabaseConfig, ConfigError> {
    if let Some(url) = get("DATABASE_URL") {
        return if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseConfig::Postgres { url })
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            Ok(DatabaseConfig::Sqlite {
                path: PathBuf::from(path),
            })
        } else {
            Err(ConfigError::new(
                "DATABASE_URL",
                "expected a postgres://… or sqlite://… URL",
            ))
        };
    }
    let name = get("DATABASE_NAME");
    let user = get("DATABASE_USER");
    if name.is_none() && user.is_none() && get("DATABASE_HOST").is_none() {
        return Ok(DatabaseConfig::Sqlite {
            path: data_dir.join("dicoevent.sqlite3"),
        });
    }
    let name = name.ok_or_else(|| {
        ConfigError::new(
            "DATABASE_NAME",
            "required when DATABASE_USER or DATABASE_HOST is set",
        )
    })?;
    let host = get("DATABASE_HOST").unwrap_or_else(|| "localhost".into());
    let port: u16 = match get("DATABASE_PORT") {
        None => 5432,
        Some(p) => p.parse().map_err(|_| {
            ConfigError::new("DATABASE_PORT", format!("{p:?} is not a port number"))
        })?,
    };
    let credentials = match (user, get("DATABASE_PASSWORD")) {
        (Some(u), Some(p)) => format!("{}:{}@", percent_encode(&u), percent_encode(&p)),
        (Some(u), None) => format!("{}@", percent_encode(&u)),
        (None, _) => String::new(),
    };
    Ok(DatabaseConfig::Postgres {
        url: format!(
            "postgres://{credentials}{host}:{port}/{}",
            percent_encode(&name)
        ),
    })
}

fn cors_from_vars(get: &impl Fn(&str) -> Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = get("CORS_ALLOWED_ORIGINS") else {
        return Ok(Vec::new());
    };
    let origins: Vec<String> = raw
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    for origin in &origins {
        let valid = origin == "*"
            || ((origin.starts_with("http://") || origin.starts_with("https://"))
                && axum::http::HeaderValue::from_str(origin).is_ok());
        if !valid {
            return Err(ConfigError::new(
                "CORS_ALLOWED_ORIGINS",
                format!("{origin:?} is not an origin (e.g. https://app.example.com) or *"),
            ));
        }
    }
    Ok(origins)
}

/// A yes/no variable: unset or empty is no.
fn parse_bool(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<bool, ConfigError> {
    match get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("false" | "0" | "no" | "off") => Ok(false),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some(other) => Err(ConfigError::new(
            name,
            format!("{other:?} is not true or false"),
        )),
    }
}

/// `TRUSTED_PROXIES`: addresses or networks (`10.0.0.5`, `10.0.0.0/24`,
/// `::1`), separated by commas or spaces.
fn trusted_proxies_from_vars(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let Some(raw) = get("TRUSTED_PROXIES") else {
        return Ok(Vec::new());
    };
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::new(
                        "TRUSTED_PROXIES",
                        format!(
                            "{entry:?} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
                        ),
                    )
                })
        })
        .collect()
}

/// `ALLOWED_HOSTS`: names separated by commas (or spaces, as some Django
/// settings split them); unset or empty: the default.
fn allowed_hosts_from_vars(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Vec<crate::hosts::HostPattern>>, ConfigError> {
    let Some(raw) = get("ALLOWED_HOSTS") else {
        return Ok(None);
    };
    let patterns = raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            crate::hosts::HostPattern::parse(entry)
                .map_err(|message| ConfigError::new("ALLOWED_HOSTS", message))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!patterns.is_empty()).then_some(patterns))
}

fn smtp_from_vars(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<SmtpConfig>, ConfigError> {
    // Checked even without MAIL_HOST: a typo must not wait for the day
    // the mail server is configured.
    let tls = match get("MAIL_TLS").map(|t| t.to_ascii_lowercase()).as_deref() {
        None | Some("starttls") => MailTls::StartTls,
        Some("tls") | Some("ssl") => MailTls::Tls,
        Some("none") | Some("off") => MailTls::None,
        Some(other) => {
            return Err(ConfigError::new(
                "MAIL_TLS",
                format!("{other:?} is not one of starttls, tls (or ssl), none (or off)"),
            ));
        }
    };
    let Some(host) = get("MAIL_HOST") else {
        return Ok(None);
    };
    let port = match get("MAIL_PORT") {
        None => match tls {
            MailTls::Tls => 465,
            _ => 587,
        },
        Some(p) => p
            .parse()
            .map_err(|_| ConfigError::new("MAIL_PORT", format!("{p:?} is not a port number")))?,
    };
    Ok(Some(SmtpConfig {
        host,
        port,
        user: get("MAIL_USER"),
        password: get("MAIL_PASSWORD"),
        tls,
    }))
}

fn redis_from_vars(get: &impl Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
    if let Some(url) = get("REDIS_URL") {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(ConfigError::new("REDIS_URL", "expected a redis://… URL"));
        }
        return Ok(Some(url));
    }
    let Some(host) = get("REDIS_HOST") else {
        return Ok(None);
    };
    let port: u16 = match get("REDIS_PORT") {
        None => 6379,
        Some(p) => p
            .parse()
            .map_err(|_| ConfigError::new("REDIS_PORT", format!("{p:?} is not a port number")))?,
    };
    let db: u32 = match get("REDIS_DB") {
        None => 0,
        Some(d) => d
            .parse()
            .map_err(|_| ConfigError::new("REDIS_DB", format!("{d:?} is not a database number")))?,
    };
    let auth = match get("REDIS_PASSWORD") {
        Some(p) => format!(":{}@", percent_encode(&p)),
        None => String::new(),
    };
    Ok(Some(format!("redis://{auth}{host}:{port}/{db}")))
}

fn parse_number<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    match get(name) {
        None => Ok(default),
        Some(raw) => match raw.parse::<T>() {
            Ok(v) if v >= min && v <= max => Ok(v),
            _ => Err(ConfigError::new(
                name,
                format!("{raw:?} is not a whole number between {min} and {max}"),
            )),
        },
    }
}

fn parse_duration_var(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(raw) => parse_duration(&raw).ok_or_else(|| {
            ConfigError::new(
                name,
                format!("{raw:?} is not a duration (e.g. 3600, 90s, 15m, 3h, 1d)"),
            )
        }),
    }
}

/// `3600`, `90s`, `15m`, `3h`, `1d` → a positive duration.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let (digits, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => raw.split_at(i),
        None => (raw, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let secs = match unit.trim() {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86400)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `postgres://user:secret@host/db` → `postgres://user:********@host/db`.
pub fn mask_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:********{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_to_sqlite_in_data_dir() {
        let c = Config::from_vars(&vars(&[])).expect("defaults are valid");
        assert_eq!(
            c.database,
            DatabaseConfig::Sqlite {
                path: PathBuf::from("data/dicoevent.sqlite3")
            }
        );
        assert_eq!(c.port, 8000);
        assert_eq!(c.jwt_access_ttl, Duration::from_secs(10800));
    }

    #[test]
    fn django_database_variables_build_a_postgres_url() {
        let c = Config::from_vars(&vars(&[
            ("DATABASE_NAME", "dico"),
            ("DATABASE_USER", "app"),
            ("DATABASE_PASSWORD", "p@ss:word"),
            ("DATABASE_HOST", "db"),
        ]))
        .expect("valid");
        assert_eq!(
            c.database,
            DatabaseConfig::Postgres {
                url: "postgres://app:p%40ss%3Aword@db:5432/dico".into()
            }
        );
        assert!(!c.database.describe().contains("p%40ss"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_vars(&vars(&[("PORT", "eighty")])).expect_err("bad port");
        assert_eq!(err.variable, "PORT");
        let err = Config::from_vars(&vars(&[("TIME_ZONE", "Mars/Olympus")])).expect_err("bad tz");
        assert_eq!(err.variable, "TIME_ZONE");
        let err = Config::from_vars(&vars(&[("JWT_ACCESS_TTL", "soon")])).expect_err("bad ttl");
        assert_eq!(err.variable, "JWT_ACCESS_TTL");
        // Checked even while no mail server is configured.
        let err = Config::from_vars(&vars(&[("MAIL_TLS", "yes")])).expect_err("bad tls");
        assert_eq!(err.variable, "MAIL_TLS");
        let err = Config::from_vars(&vars(&[("ADMISSION_OPENS_BEFORE", "early")]))
            .expect_err("bad admission window");
        assert_eq!(err.variable, "ADMISSION_OPENS_BEFORE");
        assert!(Config::from_vars(&vars(&[("MAIL_TLS", "ssl")])).is_ok());
    }

    #[test]
    fn a_minio_endpoint_without_a_scheme_means_http() {
        let c = Config::from_vars(&vars(&[
            ("MINIO_ENDPOINT_URL", "localhost:9000"),
            ("MINIO_ACCESS_KEY", "k"),
            ("MINIO_SECRET_KEY", "s"),
        ]))
        .expect("valid");
        assert_eq!(
            c.s3.map(|s| s.endpoint).as_deref(),
            Some("http://localhost:9000")
        );
        let err = Config::from_vars(&vars(&[("MINIO_ENDPOINT_URL", "ftp://host:21")]))
            .expect_err("not http");
        assert_eq!(err.variable, "MINIO_ENDPOINT_URL");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3h"), Some(Duration::from_secs(10800)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("x"), None);
    }
}
