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
//! writer serialises claims), under a lease: a worker killed mid-send loses
//! its lease and another worker finishes the job. Failures are retried with
//! exponential backoff and jitter, and after `MAX_ATTEMPTS` the job is dead
//! (logged at ERROR, counted in `/readyz`).

pub mod housekeeping;
pub mod reminders;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{ColumnTrait, Condition, EntityTrait, Order, PaginatorTrait, QueryFilter};
use tokio::sync::watch;
use uuid::Uuid;

use crate::db::entities::outbox;
use crate::state::AppState;

/// How long a claimed job belongs to its worker.
pub const LEASE: Duration = Duration::from_secs(120);
/// Attempts before a job is dead.
pub const MAX_ATTEMPTS: i32 = 8;
/// Jobs claimed per round trip.
const BATCH: u64 = 20;

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
    let lease_end = now + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::minutes(2));
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
    update
        .filter(outbox::Column::Id.eq(job.id))
        .filter(outbox::Column::LockedBy.eq(worker))
        .exec(&*txn)
        .await?;
    txn.commit().await
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
    loop {
        let jobs = claim(state, worker, BATCH).await?;
        if jobs.is_empty() {
            break;
        }
        for job in &jobs {
            let outcome = reminders::run_job(state, job).await;
            match &outcome {
                Outcome::Sent => report.sent += 1,
                Outcome::Skipped(_) => report.skipped += 1,
                Outcome::Failed(_) => report.failed += 1,
            }
            finish(state, job, worker, &outcome).await?;
        }
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
