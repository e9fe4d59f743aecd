//! Background work through a transactional outbox.
//!
//! A job row is written in the same transaction as the change that causes it
//! (a registration → its confirmation). Reminders are derived from event start
//! times by `reminders::schedule`, each keyed by (registration, start time)
//! with a unique constraint, so any number of workers send each reminder once
//! and a moved start time gets a reminder of its own.
//!
//! Workers claim due rows with one guarded `UPDATE … WHERE id IN (SELECT …
//! FOR UPDATE SKIP LOCKED)` (the lock clause on PostgreSQL; SQLite's single
//! writer serialises claims), under a lease per job (`OUTBOX_LEASE`): a
//! worker claims only as many jobs as it starts at once
//! (`WORKER_CONCURRENCY`), runs them side by side, and renews each job's
//! lease while its send runs, so a slow receiver never lets another worker
//! take over a job that is still being sent (which would send it twice);
//! a worker killed mid-send stops renewing, and another worker finishes the
//! job once the lease has run out. Failures are retried with exponential
//! backoff and jitter, and after `MAX_ATTEMPTS` the job is dead (logged at
//! ERROR, counted in `/readyz`).

pub mod housekeeping;
pub mod reminders;

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter,
    QuerySelect,
};
use tokio::sync::watch;
use uuid::Uuid;

use crate::db::audit::{self, Action, Changes, Entry};
use crate::db::entities::{outbox, registration};
use crate::db::outbox::{KIND_CONFIRMATION, KIND_REMINDER};
use crate::state::AppState;

/// Attempts before a job is dead.
pub const MAX_ATTEMPTS: i32 = 8;

/// Delay before attempt `attempts + 1`: 1 min doubling (capped at 2 h),
/// ±20 % jitter so that failed jobs don't retry in lockstep.
pub fn backoff(attempts: i32) -> chrono::Duration {
    let base_secs = std::cmp::min(
        60i64.saturating_mul(1i64 << Ord::clamp(attempts, 0, 7)),
        7200,
    );
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    chrono::Duration::milliseconds((base_secs as f64 * 1000.0 * jitter) as i64)
}

/// Claims up to `limit` due jobs for `worker`.
pub async fn claim(
    state: &AppState,
    worker: &str,
    limit: u64,
) -> Result<Vec<outbox::Model>, sea_orm::DbErr> {
    let now = state.clock.now();
    let lease_end = now + lease(state);
    let due = Query::select()
        .column(outbox::Column::Id)
        .from(outbox::Entity)
        .and_where(outbox::Column::Status.eq("pending"))
        .and_where(outbox::Column::RunAt.lte(now))
        .cond_where(
            Condition::any()
                .add(outbox::Column::LockedUntil.is_null())
                .add(outbox::Column::LockedUntil.lt(now)),
        )
        .order_by(outbox::Column::RunAt, Order::Asc)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    let txn = state.db.begin_write().await?;
    let claimed = outbox::Entity::update_many()
        .col_expr(outbox::Column::LockedUntil, Expr::value(Some(lease_end)))
        .col_expr(
            outbox::Column::LockedBy,
            Expr::value(Some(worker.to_string())),
        )
        .col_expr(
            outbox::Column::Attempts,
            Expr::col(outbox::Column::Attempts).add(1),
        )
        .filter(outbox::Column::Id.in_subquery(due))
        .exec_with_returning(&*txn)
        .await?;
    txn.commit().await?;
    Ok(claimed)
}

/// `OUTBOX_LEASE`, as a span of the clock.
fn lease(state: &AppState) -> chrono::Duration {
    chrono::Duration::from_std(state.config.outbox_lease).unwrap_or(chrono::Duration::minutes(2))
}

/// Extends a running job's lease (if `worker` still holds it); false when
/// it no longer does.
async fn renew(state: &AppState, job: Uuid, worker: &str) -> Result<bool, sea_orm::DbErr> {
    let lease_end = state.clock.now() + lease(state);
    let txn = state.db.begin_write().await?;
    let renewed = outbox::Entity::update_many()
        .col_expr(outbox::Column::LockedUntil, Expr::value(Some(lease_end)))
        .filter(outbox::Column::Id.eq(job))
        .filter(outbox::Column::LockedBy.eq(worker))
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    Ok(renewed.rows_affected == 1)
}

/// Runs one claimed job, renewing its lease every third of it until the
/// job is done.
async fn run_leased(
    state: &AppState,
    worker: &str,
    job: outbox::Model,
) -> (outbox::Model, Outcome) {
    let claimed = job.clone();
    let work = reminders::run_job(state, &claimed);
    tokio::pin!(work);
    let mut beat = tokio::time::interval(state.config.outbox_lease / 3);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: the claim has just set the lease.
    beat.tick().await;
    loop {
        tokio::select! {
            outcome = &mut work => return (job, outcome),
            _ = beat.tick() => match renew(state, job.id, worker).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    "Job {} ({}) outlived its lease: another worker may run it too",
                    job.id,
                    job.kind
                ),
                Err(e) => tracing::warn!("Job {}: its lease could not be renewed: {e}", job.id),
            },
        }
    }
}

/// What happened to a job.
pub enum Outcome {
    Sent,
    /// Nothing to send any more (cancelled event, moved start time…).
    Skipped(String),
    Failed(anyhow::Error),
}

/// Records a job's outcome, if the worker still holds its lease.
async fn finish(
    state: &AppState,
    job: &outbox::Model,
    worker: &str,
    outcome: &Outcome,
) -> Result<(), sea_orm::DbErr> {
    let now = state.clock.now();
    let mut update = outbox::Entity::update_many()
        .col_expr(
            outbox::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            outbox::Column::LockedBy,
            Expr::value(Option::<String>::None),
        );
    match outcome {
        Outcome::Sent => {
            update = update
                .col_expr(outbox::Column::Status, Expr::value("done"))
                .col_expr(outbox::Column::FinishedAt, Expr::value(Some(now)));
        }
        Outcome::Skipped(why) => {
            update = update
                .col_expr(outbox::Column::Status, Expr::value("skipped"))
                .col_expr(outbox::Column::LastError, Expr::value(Some(why.clone())))
                .col_expr(outbox::Column::FinishedAt, Expr::value(Some(now)));
        }
        Outcome::Failed(err) => {
            let message = format!("{err:#}");
            if job.attempts >= MAX_ATTEMPTS {
                tracing::error!(
                    "Job {} ({} for registration {}) is dead after {} attempts: {message}",
                    job.id,
                    job.kind,
                    job.registration_id,
                    job.attempts
                );
                update = update
                    .col_expr(outbox::Column::Status, Expr::value("dead"))
                    .col_expr(outbox::Column::FinishedAt, Expr::value(Some(now)));
            } else {
                let retry_at = now + backoff(job.attempts - 1);
                tracing::warn!(
                    "Job {} ({}) failed (attempt {}), retrying at {retry_at}: {message}",
                    job.id,
                    job.kind,
                    job.attempts
                );
                update = update.col_expr(outbox::Column::RunAt, Expr::value(retry_at));
            }
            update = update.col_expr(outbox::Column::LastError, Expr::value(Some(message)));
        }
    }
    let txn = state.db.begin_write().await?;
    let finished = update
        .filter(outbox::Column::Id.eq(job.id))
        .filter(outbox::Column::LockedBy.eq(worker))
        .exec(&*txn)
        .await?;
    if finished.rows_affected > 0
        && let Outcome::Sent = outcome
    {
        log_sent(&*txn, job).await?;
    }
    txn.commit().await
}

/// The audit entry of a mail sent: on its registration, by the system.
async fn log_sent(txn: &impl ConnectionTrait, job: &outbox::Model) -> Result<(), sea_orm::DbErr> {
    let action = match job.kind.as_str() {
        KIND_CONFIRMATION => Action::RegistrationConfirmationSent,
        KIND_REMINDER => Action::RegistrationReminderSent,
        _ => return Ok(()),
    };
    let event_id: Option<Uuid> = registration::Entity::find_by_id(job.registration_id)
        .select_only()
        .column(registration::Column::EventId)
        .into_tuple()
        .one(txn)
        .await?;
    let entry = Entry {
        action,
        entity_type: "registration",
        entity_id: job.registration_id.to_string(),
        event_id,
        changes: Changes::none(),
    };
    audit::record_one(txn, &audit::Context::system(), entry).await
}

/// Counts of one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub reminders_scheduled: usize,
    pub sent: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// One pass: schedule due reminders, then run every due job.
pub async fn run_pass(state: &AppState, worker: &str) -> anyhow::Result<PassReport> {
    let mut report = PassReport {
        reminders_scheduled: reminders::schedule(state).await?,
        ..Default::default()
    };
    // Jobs are claimed only when they can start at once: a job claimed and
    // left waiting would see its lease run out and be sent by another
    // worker as well.
    let slots = state.config.worker_concurrency;
    let mut running = futures::stream::FuturesUnordered::new();
    loop {
        // Claimed when a slot is free (at the start, and after each job).
        if running.len() < slots {
            let free = u64::try_from(slots - running.len()).unwrap_or(1);
            for job in claim(state, worker, free).await? {
                running.push(run_leased(state, worker, job));
            }
        }
        let Some((job, outcome)) = futures::StreamExt::next(&mut running).await else {
            break;
        };
        match &outcome {
            Outcome::Sent => report.sent += 1,
            Outcome::Skipped(_) => report.skipped += 1,
            Outcome::Failed(_) => report.failed += 1,
        }
        finish(state, &job, worker, &outcome).await?;
    }
    Ok(report)
}

/// A worker: passes every `WORKER_POLL_INTERVAL` until `shutdown` is true.
pub async fn run_worker(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let worker = format!("{}-{}", hostname(), Uuid::now_v7().simple());
    tracing::info!(
        "Worker {worker} started (mail: {})",
        state.mailer.describe()
    );
    let poll = state.config.worker_poll;
    // Workers also prune what only grows (never the API-only hosts).
    let housekeeping = tokio::spawn(housekeeping::run(state.clone()));
    loop {
        match run_pass(&state, &worker).await {
            Ok(report) if report.sent + report.failed + report.skipped > 0 => {
                tracing::info!(
                    "Worker pass: {} sent, {} failed, {} skipped, {} reminders scheduled",
                    report.sent,
                    report.failed,
                    report.skipped,
                    report.reminders_scheduled
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!("Worker pass failed: {e:#}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            break;
        }
    }
    housekeeping.abort();
    tracing::info!("Worker {worker} stopped");
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into())
}

/// Pending jobs and dead jobs, for `/readyz`.
pub async fn stats(state: &AppState) -> Result<(u64, u64), sea_orm::DbErr> {
    let pending = outbox::Entity::find()
        .filter(outbox::Column::Status.eq("pending"))
        .count(state.db.conn())
        .await?;
    let dead = outbox::Entity::find()
        .filter(outbox::Column::Status.eq("dead"))
        .count(state.db.conn())
        .await?;
    Ok((pending, dead))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_minute_with_jitter() {
        for (attempts, base) in [
            (0, 60.0),
            (1, 120.0),
            (2, 240.0),
            (6, 3840.0),
            (7, 7200.0),
            (20, 7200.0),
        ] {
            let secs = backoff(attempts).num_milliseconds() as f64 / 1000.0;
            assert!(
                secs >= base * 0.8 && secs <= base * 1.2,
                "{attempts}: {secs}"
            );
        }
    }
}
