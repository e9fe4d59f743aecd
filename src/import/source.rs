//! The Django installation: where it is (flags and its `.env`), and its
//! tables, read with plain SQL.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, QueryResult};
use uuid::Uuid;

use super::ImportArgs;
use crate::config::{Config, DatabaseConfig, mask_url_password};

/// Where the posters of the Django service are.
#[derive(Clone, Debug)]
pub enum MediaSource {
    Dir(PathBuf),
    S3 {
        endpoint: String,
        access_key: String,
        secret_key: String,
        bucket: String,
    },
}

impl MediaSource {
    pub fn describe(&self) -> String {
        match self {
            MediaSource::Dir(dir) => format!("directory {}", dir.display()),
            MediaSource::S3 {
                endpoint, bucket, ..
            } => format!("S3 bucket {bucket:?} at {endpoint}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SourceSettings {
    pub database_url: String,
    pub media: MediaSource,
}

/// The variables of the Django `.env` that say where its data is.
const SOURCE_VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "DATABASE_NAME",
    "DATABASE_USER",
    "DATABASE_PASSWORD",
    "DATABASE_HOST",
    "DATABASE_PORT",
    "MINIO_ENDPOINT_URL",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "MINIO_BUCKET_NAME",
];

/// Flags win over the `.env` file; the `.env` is read with our own
/// configuration rules (the same variable names mean the same things).
pub fn resolve(args: &ImportArgs) -> anyhow::Result<SourceSettings> {
    let mut env_database = None;
    let mut env_s3 = None;
    if let Some(path) = &args.env_file {
        let (database, s3) = read_env_file(path)?;
        env_database = database;
        env_s3 = s3;
    }
    let database_url = match (&args.from, env_database) {
        (Some(url), _) => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                bail!("--from: expected a postgres://… URL (the Django service's database)");
            }
            url.clone()
        }
        (None, Some(url)) => url,
        (None, None) => bail!(
            "no source database: pass --from postgres://… or --env-file with the Django installation's .env"
        ),
    };
    let flag_s3 = args.media_endpoint.as_ref().map(|endpoint| {
        let endpoint = if endpoint.contains("://") {
            endpoint.clone()
        } else {
            format!("http://{endpoint}")
        };
        (
            endpoint,
            args.media_access_key.clone(),
            args.media_secret_key.clone(),
        )
    });
    let media = match (&args.media_dir, flag_s3) {
        (Some(_), Some(_)) => bail!("--media-dir and --media-endpoint are exclusive: pass one"),
        (Some(dir), None) => {
            if !dir.is_dir() {
                bail!("--media-dir {}: not a directory", dir.display());
            }
            MediaSource::Dir(dir.clone())
        }
        (None, Some((endpoint, access_key, secret_key))) => {
            let (env_access, env_secret, env_bucket) = match &env_s3 {
                Some(s3) => (
                    Some(s3.access_key.clone()),
                    Some(s3.secret_key.clone()),
                    Some(s3.bucket.clone()),
                ),
                None => (None, None, None),
            };
            MediaSource::S3 {
                endpoint,
                access_key: access_key
                    .or(env_access)
                    .context("--media-access-key is required with --media-endpoint")?,
                secret_key: secret_key
                    .or(env_secret)
                    .context("--media-secret-key is required with --media-endpoint")?,
                bucket: args
                    .media_bucket
                    .clone()
                    .or(env_bucket)
                    .unwrap_or_else(|| "media".into()),
            }
        }
        (None, None) => match env_s3 {
            Some(s3) => MediaSource::S3 {
                endpoint: s3.endpoint,
                access_key: args.media_access_key.clone().unwrap_or(s3.access_key),
                secret_key: args.media_secret_key.clone().unwrap_or(s3.secret_key),
                bucket: args.media_bucket.clone().unwrap_or(s3.bucket),
            },
            None => bail!(
                "no source for posters: pass --media-dir DIR or --media-endpoint URL (or an --env-file with MINIO_ENDPOINT_URL)"
            ),
        },
    };
    Ok(SourceSettings {
        database_url,
        media,
    })
}

fn read_env_file(path: &Path) -> anyhow::Result<(Option<String>, Option<crate::config::S3Config>)> {
    let entries = dotenvy::from_path_iter(path)
        .with_context(|| format!("cannot read the env file {}", path.display()))?;
    let mut vars = HashMap::new();
    for entry in entries {
        let (name, value) =
            entry.with_context(|| format!("cannot parse the env file {}", path.display()))?;
        if SOURCE_VARIABLES.contains(&name.as_str()) {
            vars.insert(name, value);
        }
    }
    let config = Config::from_vars(&vars).with_context(|| format!("in {}", path.display()))?;
    let database = match config.database {
        DatabaseConfig::Postgres { url } => Some(url),
        DatabaseConfig::Sqlite { .. } if vars.contains_key("DATABASE_URL") => bail!(
            "{}: DATABASE_URL is not a PostgreSQL URL; the Django service's database is PostgreSQL",
            path.display()
        ),
        DatabaseConfig::Sqlite { .. } => None,
    };
    Ok((database, config.s3))
}

/// The tables read, all required.
const TABLES: &[&str] = &[
    "users_user",
    "auth_group",
    "users_user_groups",
    "events_event",
    "events_ticket",
    "events_registration",
    "events_payment",
    "events_media",
];

pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    // One plain connection first: a pool retries until its timeout and then
    // says only "pool timed out"; this says "connection refused", at once.
    let probe = tokio::time::timeout(Duration::from_secs(15), async {
        use sea_orm::sqlx::Connection;
        let conn = sea_orm::sqlx::postgres::PgConnection::connect(url).await?;
        conn.close().await
    })
    .await;
    match probe {
        Ok(Ok(())) => {}
        Ok(Err(e)) => bail!(
            "cannot connect to the Django database at {}: {e}",
            mask_url_password(url)
        ),
        Err(_) => bail!(
            "cannot connect to the Django database at {}: no answer within 15 s",
            mask_url_password(url)
        ),
    }
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(2)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    let conn = sea_orm::Database::connect(opts).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to the Django database at {}: {e}",
            mask_url_password(url)
        )
    })?;
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema()",
        ))
        .await
        .context("cannot list the tables of the Django database")?;
    let present: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<String>("", "name").ok())
        .collect();
    let missing: Vec<&str> = TABLES
        .iter()
        .copied()
        .filter(|t| !present.iter().any(|p| p == t))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the database at {} has no table {} — is it the Django DicoEvent database?",
            mask_url_password(url),
            missing.join(", ")
        );
    }
    Ok(conn)
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    pub is_superuser: bool,
    pub is_staff: bool,
    pub is_active: bool,
    pub date_joined: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub id: i32,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct Membership {
    pub user_id: Uuid,
    pub group_id: i32,
}

#[derive(Clone, Debug)]
pub struct Event {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub location: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub status: String,
    pub category: String,
    pub quota: i64,
    pub organizer_id: Uuid,
}

#[derive(Clone, Debug)]
pub struct Ticket {
    pub id: Uuid,
    pub name: String,
    /// `numeric(12,2)` as PostgreSQL prints it: exact.
    pub price: String,
    pub sales_start: DateTime<Utc>,
    pub sales_end: DateTime<Utc>,
    pub quota: i64,
    pub event_id: Uuid,
}

#[derive(Clone, Debug)]
pub struct Registration {
    pub id: Uuid,
    pub registered_at: DateTime<Utc>,
    pub ticket_id: Uuid,
    pub user_id: Uuid,
}

#[derive(Clone, Debug)]
pub struct Payment {
    pub id: Uuid,
    pub payment_method: String,
    pub payment_status: String,
    pub amount_paid: String,
    pub paid_at: DateTime<Utc>,
    pub registration_id: Uuid,
}

#[derive(Clone, Debug)]
pub struct Media {
    pub id: Uuid,
    /// The object key in the bucket.
    pub image: String,
    pub uploaded_at: DateTime<Utc>,
    pub event_id: Uuid,
}

/// Everything read from the Django database.
#[derive(Default, Debug)]
pub struct Snapshot {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub memberships: Vec<Membership>,
    pub events: Vec<Event>,
    pub tickets: Vec<Ticket>,
    pub registrations: Vec<Registration>,
    pub payments: Vec<Payment>,
    pub media: Vec<Media>,
}

async fn query<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    sql: &str,
) -> anyhow::Result<Vec<QueryResult>> {
    conn.query_all_raw(sea_orm::Statement::from_string(
        DbBackend::Postgres,
        sql.to_string(),
    ))
    .await
    .with_context(|| format!("cannot read the Django table {table}"))
}

fn field<T: sea_orm::TryGetable>(row: &QueryResult, table: &str, col: &str) -> anyhow::Result<T> {
    row.try_get::<T>("", col)
        .map_err(|e| anyhow::anyhow!("unexpected value in {table}.{col}: {e}"))
}

/// Reads every table in one repeatable-read snapshot, so that rows written
/// by a still-running Django service during the read are all in or all out.
pub async fn read_all(conn: &DatabaseConnection) -> anyhow::Result<Snapshot> {
    use sea_orm::TransactionTrait;
    let txn = conn
        .begin_with_config(Some(sea_orm::IsolationLevel::RepeatableRead), None)
        .await
        .context("cannot open a read transaction on the Django database")?;
    let conn = &txn;
    let mut s = Snapshot::default();
    let t = "users_user";
    for r in query(
        conn,
        t,
        "SELECT id, username, email, password, first_name, last_name, is_superuser, is_staff, \
         is_active, date_joined FROM users_user ORDER BY date_joined, id",
    )
    .await?
    {
        s.users.push(User {
            id: field(&r, t, "id")?,
            username: field(&r, t, "username")?,
            email: field(&r, t, "email")?,
            password: field(&r, t, "password")?,
            first_name: field(&r, t, "first_name")?,
            last_name: field(&r, t, "last_name")?,
            is_superuser: field(&r, t, "is_superuser")?,
            is_staff: field(&r, t, "is_staff")?,
            is_active: field(&r, t, "is_active")?,
            date_joined: field(&r, t, "date_joined")?,
        });
    }
    let t = "auth_group";
    for r in query(conn, t, "SELECT id, name FROM auth_group ORDER BY id").await? {
        s.groups.push(Group {
            id: field(&r, t, "id")?,
            name: field(&r, t, "name")?,
        });
    }
    let t = "users_user_groups";
    for r in query(
        conn,
        t,
        "SELECT user_id, group_id FROM users_user_groups ORDER BY id",
    )
    .await?
    {
        s.memberships.push(Membership {
            user_id: field(&r, t, "user_id")?,
            group_id: field(&r, t, "group_id")?,
        });
    }
    let t = "events_event";
    for r in query(
        conn,
        t,
        "SELECT id, name, description, location, start_time, end_time, status, category, \
         quota::bigint AS quota, organizer_id FROM events_event ORDER BY id",
    )
    .await?
    {
        s.events.push(Event {
            id: field(&r, t, "id")?,
            name: field(&r, t, "name")?,
            description: field(&r, t, "description")?,
            location: field(&r, t, "location")?,
            start_time: field(&r, t, "start_time")?,
            end_time: field(&r, t, "end_time")?,
            status: field(&r, t, "status")?,
            category: field(&r, t, "category")?,
            quota: field(&r, t, "quota")?,
            organizer_id: field(&r, t, "organizer_id")?,
        });
    }
    let t = "events_ticket";
    for r in query(
        conn,
        t,
        "SELECT id, name, price::text AS price, sales_start, sales_end, quota::bigint AS quota, \
         event_id FROM events_ticket ORDER BY id",
    )
    .await?
    {
        s.tickets.push(Ticket {
            id: field(&r, t, "id")?,
            name: field(&r, t, "name")?,
            price: field(&r, t, "price")?,
            sales_start: field(&r, t, "sales_start")?,
            sales_end: field(&r, t, "sales_end")?,
            quota: field(&r, t, "quota")?,
            event_id: field(&r, t, "event_id")?,
        });
    }
    let t = "events_registration";
    for r in query(
        conn,
        t,
        "SELECT id, registered_at, ticket_id, user_id FROM events_registration \
         ORDER BY registered_at, id",
    )
    .await?
    {
        s.registrations.push(Registration {
            id: field(&r, t, "id")?,
            registered_at: field(&r, t, "registered_at")?,
            ticket_id: field(&r, t, "ticket_id")?,
            user_id: field(&r, t, "user_id")?,
        });
    }
    let t = "events_payment";
    for r in query(
        conn,
        t,
        "SELECT id, payment_method, payment_status, amount_paid::text AS amount_paid, paid_at, \
         registration_id FROM events_payment ORDER BY paid_at, id",
    )
    .await?
    {
        s.payments.push(Payment {
            id: field(&r, t, "id")?,
            payment_method: field(&r, t, "payment_method")?,
            payment_status: field(&r, t, "payment_status")?,
            amount_paid: field(&r, t, "amount_paid")?,
            paid_at: field(&r, t, "paid_at")?,
            registration_id: field(&r, t, "registration_id")?,
        });
    }
    let t = "events_media";
    for r in query(
        conn,
        t,
        "SELECT id, image, uploaded_at, event_id FROM events_media ORDER BY uploaded_at, id",
    )
    .await?
    {
        s.media.push(Media {
            id: field(&r, t, "id")?,
            image: field(&r, t, "image")?,
            uploaded_at: field(&r, t, "uploaded_at")?,
            event_id: field(&r, t, "event_id")?,
        });
    }
    txn.commit().await.ok();
    Ok(s)
}
