//! `dicoevent import-django`: moves a Django DicoEvent installation (its
//! PostgreSQL database and poster bucket) into ours, keeping every id.
//!
//! The whole source is read in one snapshot, compared with what the target
//! holds, and only new or changed rows are written, table by table in
//! batches of one transaction each (so a re-run after more activity on the
//! old service brings just the difference, and a run that stopped half-way
//! is finished by the next). Posters are stored first and their row
//! committed after; their object names derive from the source row id, so an
//! object left without a row by a crash is overwritten by the re-run.

mod media;
mod plan;
mod report;
mod source;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Iterable, NotSet, Set,
};

use crate::config::{Config, DatabaseConfig};
use crate::db::Database;
use crate::db::audit::{self, Action, Entry, Snapshot};
use crate::db::entities::user_group;
use crate::db::entities::{event, group, media as media_row, payment, registration, ticket, user};
use crate::storage::Storage;
use plan::{Plan, Target};
use report::{Kind, Report};

/// `import-django`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ImportArgs {
    /// The Django service's PostgreSQL database (postgres://user:pass@host:5432/db).
    #[arg(long, value_name = "URL")]
    pub from: Option<String>,
    /// The Django installation's .env: its DATABASE_* and MINIO_* variables
    /// name the source (flags given as well win).
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// The Django service's MinIO/S3 endpoint (host:port means http://).
    #[arg(long, value_name = "URL")]
    pub media_endpoint: Option<String>,
    #[arg(long, value_name = "KEY")]
    pub media_access_key: Option<String>,
    #[arg(long, value_name = "SECRET")]
    pub media_secret_key: Option<String>,
    /// The source bucket [default: media].
    #[arg(long, value_name = "NAME")]
    pub media_bucket: Option<String>,
    /// A directory holding the source bucket's objects (one file per key),
    /// instead of an S3 endpoint.
    #[arg(long, value_name = "DIR")]
    pub media_dir: Option<PathBuf>,
    /// Report what would happen; write nothing (database or storage).
    #[arg(long)]
    pub dry_run: bool,
    /// Where to write the report [default: import-report-<time>.txt here].
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Rows per INSERT statement and transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub batch_size: u32,
}

/// A progress bar per table on a terminal; INFO lines otherwise.
struct Progress {
    terminal: bool,
}

impl Progress {
    fn bar(&self, table: &str, len: usize) -> ProgressBar {
        if !self.terminal {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len as u64).with_prefix(table.to_string());
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>14} [{bar:40}] {pos}/{len} ({elapsed})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }

    /// Logs a batch's progress when there is no bar; at most one line per
    /// ten batches, plus the last.
    fn batch_done(&self, table: &str, batch: usize, batches: usize, done: usize, total: usize) {
        if !self.terminal && (batch.is_multiple_of(10) || batch == batches) {
            tracing::info!("import-django: {table} {done}/{total} written");
        }
    }
}

pub async fn run(config: Config, args: ImportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let settings = source::resolve(&args)?;
    let source_conn = source::connect(&settings.database_url).await?;
    let objects = media::SourceObjects::open(&settings.media)?;
    tracing::info!(
        "import-django: reading {} and posters from the {}{}",
        crate::config::mask_url_password(&settings.database_url),
        settings.media.describe(),
        if args.dry_run { " (dry run)" } else { "" }
    );
    let snapshot = source::read_all(&source_conn).await?;
    source_conn.close().await.ok();

    let db = open_target(&config, args.dry_run).await?;
    let target = match &db {
        Some(db) => load_target(db).await?,
        None => Target::default(),
    };
    let mut report = Report::new();
    let now = crate::db::now();
    let plan = plan::plan(&snapshot, &target, now, &mut report);
    let progress = Progress {
        terminal: std::io::stderr().is_terminal(),
    };
    let storage = match (&db, args.dry_run) {
        (Some(_), false) => Some(Storage::open(&config).await?),
        _ => None,
    };
    let writer = Writer {
        db: db.as_ref().filter(|_| !args.dry_run),
        batch: args.batch_size as usize,
        progress: &progress,
    };
    write_all(&writer, plan.clone_rows(), &target, &mut report).await?;
    import_posters(
        &writer,
        storage.as_ref(),
        &objects,
        &plan.media,
        &target,
        &mut report,
    )
    .await?;

    if !args.dry_run
        && let Some(db) = db.as_ref()
    {
        // Running servers must not keep serving the lists cached before.
        crate::cache::refresh_running_servers(&config, db).await?;
        report.remarks.push(format!(
            "the read cache ({}) of running servers was invalidated",
            crate::cache::Cache::open(&config)?.describe(),
        ));
    }

    let (created, updated) = report.totals();
    let heading = format!(
        "{} from {} and the {} into {} ({:.1} s)",
        if args.dry_run {
            "DRY RUN of import-django — nothing was written; what would happen"
        } else {
            "import-django"
        },
        crate::config::mask_url_password(&settings.database_url),
        settings.media.describe(),
        config.database.describe(),
        started.elapsed().as_secs_f64()
    );
    let text = report.render(&heading);
    let report_path = args.report.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "import-report-{}.txt",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    });
    println!("{text}");
    match std::fs::write(&report_path, &text) {
        Ok(()) => println!("Report written to {}", report_path.display()),
        Err(e) => eprintln!(
            "warning: could not write the report to {}: {e}",
            report_path.display()
        ),
    }
    let skipped: usize = report.stats.iter().map(|(_, s)| s.skipped).sum();
    tracing::info!(
        "import-django {}: {created} rows created, {updated} updated, {skipped} skipped; report {}",
        if args.dry_run {
            "dry run finished (nothing written)"
        } else {
            "finished"
        },
        report_path.display()
    );
    Ok(())
}

/// The target database; on a dry run, never created nor migrated (an
/// absent or empty one reads as empty).
async fn open_target(config: &Config, dry_run: bool) -> anyhow::Result<Option<Database>> {
    if dry_run {
        if let DatabaseConfig::Sqlite { path } = &config.database
            && !path.exists()
        {
            return Ok(None);
        }
        let db = Database::connect(config).await?;
        let migrated = db
            .conn()
            .execute_unprepared("SELECT 1 FROM media WHERE 1 = 0")
            .await
            .is_ok();
        return Ok(migrated.then_some(db));
    }
    let db = Database::connect(config).await?;
    db.migrate().await?;
    Ok(Some(db))
}

async fn load_target(db: &Database) -> anyhow::Result<Target> {
    let conn = db.conn();
    let context = "cannot read the target database";
    Ok(Target {
        users: user::Entity::find()
            .all(conn)
            .await
            .context(context)?
            .into_iter()
            .map(|m| (m.id, m))
            .collect(),
        groups: group::Entity::find().all(conn).await.context(context)?,
        memberships: user_group::Entity::find()
            .all(conn)
            .await
            .context(context)?
            .into_iter()
            .map(|m| (m.user_id, m.group_id))
            .collect(),
        events: by_id(
            event::Entity::find().all(conn).await.context(context)?,
            |m| m.id,
        ),
        tickets: by_id(
            ticket::Entity::find().all(conn).await.context(context)?,
            |m| m.id,
        ),
        registrations: by_id(
            registration::Entity::find()
                .all(conn)
                .await
                .context(context)?,
            |m| m.id,
        ),
        payments: by_id(
            payment::Entity::find().all(conn).await.context(context)?,
            |m| m.id,
        ),
        media: by_id(
            media_row::Entity::find().all(conn).await.context(context)?,
            |m| m.id,
        ),
    })
}

fn by_id<M>(rows: Vec<M>, id: impl Fn(&M) -> uuid::Uuid) -> HashMap<uuid::Uuid, M> {
    rows.into_iter().map(|m| (id(&m), m)).collect()
}

/// Writes batches; `db` is `None` on a dry run.
struct Writer<'a> {
    db: Option<&'a Database>,
    batch: usize,
    progress: &'a Progress,
}

impl Writer<'_> {
    /// Inserts or updates (by primary key) in batches, one multi-row
    /// statement and one transaction each.
    async fn upsert<E>(
        &self,
        table: &'static str,
        rows: Vec<E::Model>,
        on_conflict: OnConflict,
        action: Action,
    ) -> anyhow::Result<()>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Clone + Send + Snapshot,
        E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    {
        let Some(db) = self.db else {
            return Ok(());
        };
        let bar = self.progress.bar(table, rows.len());
        // SQLite takes at most 32,766 parameters in one statement.
        let per_statement = self
            .batch
            .min(30_000 / E::Column::iter().count().max(1))
            .max(1);
        let batches = rows.len().div_ceil(per_statement);
        let mut done = 0;
        for (i, chunk) in rows.chunks(per_statement).enumerate() {
            let write = async {
                let txn = db.begin_write().await?;
                E::insert_many(
                    chunk
                        .iter()
                        .cloned()
                        .map(IntoActiveModel::into_active_model),
                )
                .on_conflict(on_conflict.clone())
                .exec_without_returning(&*txn)
                .await?;
                let entries = chunk.iter().map(|row| Entry::created(action, row));
                audit::record(&*txn, &audit::Context::cli(), entries).await?;
                txn.commit().await
            };
            write.await.with_context(|| {
                format!(
                    "writing {table}: batch {} of {batches} failed and was rolled back ({done} rows of {table} were committed before it); run the same command again to finish",
                    i + 1
                )
            })?;
            done += chunk.len();
            bar.inc(chunk.len() as u64);
            self.progress
                .batch_done(table, i + 1, batches, done, rows.len());
        }
        bar.finish_and_clear();
        Ok(())
    }
}

/// Every column but the key: what an upsert replaces.
fn update_all<C: sea_orm::ColumnTrait + Iterable + sea_orm::IdenStatic>(key: C) -> OnConflict {
    OnConflict::column(key)
        .update_columns(C::iter().filter(|c| c.as_str() != key.as_str()))
        .to_owned()
}

/// The rows of a plan, taken out of it (posters are handled apart).
struct Rows {
    users: Vec<user::Model>,
    new_groups: Vec<String>,
    memberships: Vec<(uuid::Uuid, String)>,
    events: Vec<event::Model>,
    tickets: Vec<ticket::Model>,
    registrations: Vec<registration::Model>,
    payments: Vec<payment::Model>,
}

impl Plan {
    fn clone_rows(&self) -> Rows {
        Rows {
            users: self.users.clone(),
            new_groups: self.new_groups.clone(),
            memberships: self.memberships.clone(),
            events: self.events.clone(),
            tickets: self.tickets.clone(),
            registrations: self.registrations.clone(),
            payments: self.payments.clone(),
        }
    }
}

fn table_done(report: &Report, table: &str, dry_run: bool) {
    let s = report.get(table);
    tracing::info!(
        "import-django: {table} {}: {} read, {} created, {} updated, {} skipped",
        if dry_run { "planned" } else { "imported" },
        s.read,
        s.created,
        s.updated,
        s.skipped
    );
}

async fn write_all(
    w: &Writer<'_>,
    rows: Rows,
    target: &Target,
    report: &mut Report,
) -> anyhow::Result<()> {
    let dry = w.db.is_none();
    w.upsert::<user::Entity>(
        "users",
        rows.users,
        update_all(user::Column::Id),
        Action::UserImported,
    )
    .await?;
    table_done(report, "users", dry);

    let mut group_ids: HashMap<String, i32> = target
        .groups
        .iter()
        .map(|g| (g.name_key.clone(), g.id))
        .collect();
    if let Some(db) = w.db
        && !rows.new_groups.is_empty()
    {
        let txn = db.begin_write().await?;
        for name in &rows.new_groups {
            let created = group::ActiveModel {
                id: NotSet,
                name: Set(name.clone()),
                name_key: Set(name.to_lowercase()),
            }
            .insert(&*txn)
            .await
            .with_context(|| format!("creating group {name:?}"))?;
            audit::record_one(
                &*txn,
                &audit::Context::cli(),
                Entry::created(Action::GroupImported, &created),
            )
            .await?;
            group_ids.insert(created.name_key, created.id);
        }
        txn.commit().await.context("creating groups")?;
    }
    table_done(report, "groups", dry);
    let memberships: Vec<user_group::Model> = rows
        .memberships
        .iter()
        .filter_map(|(user_id, key)| {
            group_ids.get(key).map(|group_id| user_group::Model {
                user_id: *user_id,
                group_id: *group_id,
            })
        })
        .collect();
    w.upsert::<user_group::Entity>(
        "memberships",
        memberships,
        OnConflict::columns([user_group::Column::UserId, user_group::Column::GroupId])
            .do_nothing()
            .to_owned(),
        Action::RoleImported,
    )
    .await?;
    table_done(report, "memberships", dry);
    w.upsert::<event::Entity>(
        "events",
        rows.events,
        update_all(event::Column::Id),
        Action::EventImported,
    )
    .await?;
    table_done(report, "events", dry);
    w.upsert::<ticket::Entity>(
        "tickets",
        rows.tickets,
        update_all(ticket::Column::Id),
        Action::TicketImported,
    )
    .await?;
    table_done(report, "tickets", dry);
    w.upsert::<registration::Entity>(
        "registrations",
        rows.registrations,
        update_all(registration::Column::Id),
        Action::RegistrationImported,
    )
    .await?;
    table_done(report, "registrations", dry);
    w.upsert::<payment::Entity>(
        "payments",
        rows.payments,
        update_all(payment::Column::Id),
        Action::PaymentImported,
    )
    .await?;
    table_done(report, "payments", dry);
    Ok(())
}

/// Each poster: read from the source, checked by its bytes, stored under
/// our own name (derived from the source row id), then its row committed.
async fn import_posters(
    w: &Writer<'_>,
    storage: Option<&Storage>,
    objects: &media::SourceObjects,
    rows: &[source::Media],
    target: &Target,
    report: &mut Report,
) -> anyhow::Result<()> {
    let bar = w.progress.bar("posters", rows.len());
    let mut last_log = Instant::now();
    for (i, m) in rows.iter().enumerate() {
        bar.inc(1);
        if !w.progress.terminal && last_log.elapsed() > Duration::from_secs(5) {
            tracing::info!("import-django: posters {}/{} checked", i, rows.len());
            last_log = Instant::now();
        }
        let bytes = match objects.fetch(&m.image).await? {
            media::Fetched::Found(bytes) => bytes,
            media::Fetched::Missing => {
                report.note(
                    "posters",
                    m.id,
                    Kind::Skipped,
                    format!("object {:?} is missing from the source", m.image),
                );
                continue;
            }
        };
        let Some((content_type, extension)) = crate::domain::posters::sniff_image(&bytes) else {
            report.note(
                "posters",
                m.id,
                Kind::Skipped,
                format!(
                    "object {:?} ({} bytes) is not a JPEG, PNG, GIF or WebP image",
                    m.image,
                    bytes.len()
                ),
            );
            continue;
        };
        let desired = media_row::Model {
            id: m.id,
            event_id: m.event_id,
            object_key: format!("posters/{}/{}.{extension}", m.event_id, m.id),
            original_name: plan::original_name(&m.image),
            content_type: content_type.to_string(),
            size: bytes.len() as i64,
            sha256: crate::digest::sha256_hex(&bytes),
            uploaded_at: m.uploaded_at,
        };
        let existing = target.media.get(&m.id);
        if existing == Some(&desired) {
            continue;
        }
        if existing.is_some() {
            report.table("posters").updated += 1;
        } else {
            report.table("posters").created += 1;
        }
        let (Some(db), Some(storage)) = (w.db, storage) else {
            continue;
        };
        storage
            .put(&desired.object_key, bytes)
            .await
            .with_context(|| format!("storing poster {} ({:?})", m.id, m.image))?;
        let commit = async {
            let txn = db.begin_write().await?;
            media_row::Entity::insert(desired.clone().into_active_model())
                .on_conflict(update_all(media_row::Column::Id))
                .exec_without_returning(&*txn)
                .await?;
            audit::record_one(
                &*txn,
                &audit::Context::cli(),
                Entry::created(Action::PosterImported, &desired),
            )
            .await?;
            txn.commit().await
        };
        commit.await.with_context(|| {
            format!(
                "writing poster row {} (its object {} is stored and will be overwritten by the re-run); run the same command again to finish",
                m.id, desired.object_key
            )
        })?;
        if let Some(old) = existing.filter(|e| e.object_key != desired.object_key)
            && let Err(e) = storage.delete(&old.object_key).await
        {
            tracing::warn!(
                "could not delete the replaced poster object {}: {e}; the poster sweep of serve will",
                old.object_key
            );
        }
    }
    bar.finish_and_clear();
    table_done(report, "posters", w.db.is_none());
    Ok(())
}
