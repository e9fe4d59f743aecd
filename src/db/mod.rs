//! The database: connection (SQLite or PostgreSQL), migrations, and write
//! transactions that are safe under concurrency on both backends.

pub mod audit;
pub mod batch;
pub mod callers;
pub mod entities;
pub mod errors;
pub mod links;
pub mod migration;
pub mod outbox;
pub mod registration_writer;
pub mod waitlist;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::config::{Config, DatabaseConfig};

/// A pooled connection idle this long is pinged before use (it may have
/// been cut by a restart or a firewall); busy connections are not: a ping on
/// every checkout would double the round trips of every query.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// Each SQLite connection's page cache, in KiB.
const SQLITE_PAGE_CACHE_KIB: u32 = 512;

/// A pool plus what it takes to write safely to it.
#[derive(Clone)]
pub struct Database {
    conn: DatabaseConnection,
    /// SQLite allows one writer at a time. Write transactions of this process
    /// queue here (fair, no busy polling) and then start with
    /// `BEGIN IMMEDIATE`, which makes other processes wait on `busy_timeout`
    /// instead of failing with "database is locked".
    sqlite_writer: Option<Arc<Mutex<()>>>,
}

/// A write transaction. Dropping it without `commit` rolls back.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _writer: Option<OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
}

/// The advisory lock key migrations are applied under (PostgreSQL): any
/// fixed number no other program on the database uses ("DicoMigr").
const MIGRATION_LOCK: i64 = 0x4469_636f_4d69_6772;

impl Database {
    /// Connects to the configured database (creating the SQLite file and its
    /// directory if needed). Does not migrate.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        match &config.database {
            DatabaseConfig::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("cannot create the database directory {}", dir.display())
                    })?;
                }
                let mut opts = ConnectOptions::new(format!("sqlite://{}", path.display()));
                opts.max_connections(8)
                    .min_connections(1)
                    .acquire_timeout(Duration::from_secs(10))
                    .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
                    .sqlx_logging(false)
                    .map_sqlx_sqlite_opts(|o| {
                        o.create_if_missing(true)
                            .journal_mode(SqliteJournalMode::Wal)
                            .synchronous(SqliteSynchronous::Normal)
                            .busy_timeout(Duration::from_secs(30))
                            .foreign_keys(true)
                            // Each connection keeps its own page cache (2 MiB
                            // by default: 16 MiB for the pool, measured on
                            // `bench/run.sh --embedded`); the operating
                            // system's file cache holds the database anyway.
                            .pragma("cache_size", format!("-{SQLITE_PAGE_CACHE_KIB}"))
                    });
                let conn = sea_orm::Database::connect(opts).await.with_context(|| {
                    format!("cannot open the SQLite database {}", path.display())
                })?;
                Ok(Database {
                    conn,
                    sqlite_writer: Some(Arc::new(Mutex::new(()))),
                })
            }
            DatabaseConfig::Postgres { url } => {
                let mut opts = ConnectOptions::new(url.clone());
                // While PostgreSQL is down, a request waits at most the
                // acquire timeout for a connection, then gets a 503.
                opts.max_connections(config.database_pool_size)
                    .min_connections(1)
                    .connect_timeout(config.database_acquire_timeout)
                    .acquire_timeout(config.database_acquire_timeout)
                    .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
                    .sqlx_logging(false);
                if let Some(port) = tcp_port_of(url) {
                    opts.map_sqlx_postgres_pool_opts(move |pool| {
                        pool.after_connect(move |_, _| {
                            Box::pin(async move {
                                no_delay_towards(port);
                                Ok(())
                            })
                        })
                    });
                }
                let conn = sea_orm::Database::connect(opts).await.with_context(|| {
                    format!(
                        "cannot connect to PostgreSQL at {}",
                        crate::config::mask_url_password(url)
                    )
                })?;
                Ok(Database {
                    conn,
                    sqlite_writer: None,
                })
            }
        }
    }

    /// Applies pending migrations; returns the names of those applied now
    /// (empty when the schema was already up to date).
    ///
    /// On PostgreSQL, hosts started together migrate one at a time: each
    /// holds a session advisory lock (on a connection of its own) while it
    /// looks for pending migrations and applies them, so the second finds
    /// nothing left to do instead of failing on tables the first created.
    pub async fn migrate(&self) -> anyhow::Result<Vec<String>> {
        let lock = match self.backend() {
            DbBackend::Postgres => {
                let mut held = self
                    .conn
                    .get_postgres_connection_pool()
                    .acquire()
                    .await
                    .context("cannot connect to apply migrations")?;
                sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut *held)
                    .await
                    .context("cannot take the migration lock")?;
                Some(held)
            }
            _ => None,
        };
        let applied = async {
            let pending = self.pending_migrations().await?;
            migration::Migrator::up(&self.conn, None)
                .await
                .context("database migration failed")?;
            Ok(pending)
        }
        .await;
        if let Some(mut held) = lock {
            // Also released when the session ends; a failed unlock closes it.
            if sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *held)
                .await
                .is_err()
            {
                drop(held.detach());
            }
        }
        applied
    }

    /// The migrations not applied yet, oldest first. Read-only: it creates
    /// nothing (`check` must not change the database it looks at).
    pub async fn pending_migrations(&self) -> anyhow::Result<Vec<String>> {
        Ok(
            migration::Migrator::get_pending_migrations_read_only(&self.conn)
                .await
                .context("cannot read the applied migrations")?
                .iter()
                .map(|m| m.name().to_string())
                .collect(),
        )
    }

    /// Tells every running server that data changed behind its back (a CLI
    /// command): each one watches this stamp and drops its cached reads when
    /// it moves (see `cache::watch_stamp`).
    pub async fn bump_cache_stamp(&self) -> Result<(), DbErr> {
        self.conn
            .execute_unprepared("UPDATE cache_stamp SET generation = generation + 1 WHERE id = 1")
            .await
            .map(|_| ())
    }

    /// The current cache stamp (0 before the first bump).
    pub async fn cache_stamp(&self) -> Result<i64, DbErr> {
        let row = self
            .conn
            .query_one_raw(sea_orm::Statement::from_string(
                self.backend(),
                "SELECT generation FROM cache_stamp WHERE id = 1",
            ))
            .await?;
        match row {
            Some(row) => row.try_get_by_index::<i64>(0),
            None => Ok(0),
        }
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Begins a transaction that will write.
    pub async fn begin_write(&self) -> Result<WriteTxn, DbErr> {
        match &self.sqlite_writer {
            Some(lock) => {
                let guard = lock.clone().lock_owned().await;
                let txn = self
                    .conn
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..Default::default()
                    })
                    .await?;
                Ok(WriteTxn {
                    txn,
                    _writer: Some(guard),
                })
            }
            None => Ok(WriteTxn {
                txn: self.conn.begin().await?,
                _writer: None,
            }),
        }
    }

    /// Begins a read-only transaction whose statements PostgreSQL plans for
    /// the values they are given each time (`plan_cache_mode =
    /// force_custom_plan`), not once for any value. For reads whose best
    /// plan depends on the value: a search inside an event of 100,000
    /// registrations starts from the few matching people, inside an event of
    /// ten from its registrations; a plan made for "an average event" picks
    /// the second for both (2 s instead of 20 ms on the big one).
    pub async fn begin_planned_per_value(&self) -> Result<DatabaseTransaction, DbErr> {
        let txn = self.conn.begin().await?;
        if self.backend() == DbBackend::Postgres {
            txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
                .await?;
        }
        Ok(txn)
    }

    /// The rows of one statement that PostgreSQL plans for the values it is
    /// given, each time, without a transaction: sent as the protocol's
    /// unnamed statement (parsed, planned for its values, run), where a
    /// pooled statement would after five runs keep one plan made for any
    /// value. For reads whose best plan depends on the value (how many rows
    /// an event, an organiser or a mark's snapshot holds), when
    /// `begin_planned_per_value`'s three more round trips are not worth it.
    /// On SQLite, a plain query.
    pub async fn query_planned_per_value(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        if self.backend() != DbBackend::Postgres {
            return self.conn.query_all_raw(stmt).await;
        }
        let values = stmt.values.unwrap_or(sea_orm::Values(Vec::new()));
        sea_orm::sqlx::query_with(
            sea_orm::sqlx::AssertSqlSafe(stmt.sql),
            sea_query_sqlx::SqlxValues(values),
        )
        .persistent(false)
        .fetch_all(self.conn.get_postgres_connection_pool())
        .await
        .map(|rows| rows.into_iter().map(sea_orm::QueryResult::from).collect())
        .map_err(|e| DbErr::Query(sea_orm::RuntimeErr::SqlxError(Arc::new(e))))
    }

    /// Pool connections: (open, idle, maximum).
    pub fn pool_usage(&self) -> (u32, usize, u32) {
        match self.backend() {
            DbBackend::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
            _ => {
                let pool = self.conn.get_sqlite_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
        }
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.execute_unprepared("SELECT 1").await.map(|_| ())
    }
}

/// The current time at the precision stored (microseconds), so a value
/// returned after a write equals the value read back later.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::Timelike;
    let now = chrono::Utc::now();
    now.with_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now)
}

/// The TCP port of a PostgreSQL URL (`None` for a Unix socket).
fn tcp_port_of(url: &str) -> Option<u16> {
    use std::str::FromStr;
    let options = sea_orm::sqlx::postgres::PgConnectOptions::from_str(url).ok()?;
    (!options.get_host().starts_with('/')).then(|| options.get_port())
}

/// Turns Nagle's algorithm off on this process's TCP connections to
/// PostgreSQL's port (called as each pooled connection opens). sqlx leaves
/// it on: a statement written in two segments then waits for the server's
/// delayed acknowledgement, 40 ms on Linux — measured on the door's scans
/// (`bench/run.sh`, paced at 500/s): p99 107 ms over TCP against 11 ms over
/// a Unix socket. sqlx does not give the socket to its callers, so the
/// process's open files are looked through for sockets whose peer has that
/// port; the one just opened is among them (setting the option again on
/// the others changes nothing). Linux only (`/proc/self/fd`).
#[cfg(target_os = "linux")]
fn no_delay_towards(port: u16) {
    use std::os::fd::BorrowedFd;
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is only borrowed for two system calls. If
        // another thread closes it meanwhile (or reuses the number), they
        // fail or apply to that other socket, which is checked by its peer
        // port first; no memory is touched through it.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&borrowed);
        let towards_database = socket
            .peer_addr()
            .ok()
            .and_then(|peer| peer.as_socket())
            .is_some_and(|peer| peer.port() == port);
        if towards_database && socket.tcp_nodelay().is_ok_and(|on| !on) {
            let _ = socket.set_tcp_nodelay(true);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn no_delay_towards(_port: u16) {}
