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
//!
//! Webhook messages (`webhooks`) ride the same outbox with their own slots
//! (`WEBHOOK_CONCURRENCY`: a receiver that hangs holds only its own
//! delivery), their own retry schedule (about three days, `Retry-After`
//! honoured) and a delivery log: every attempt is a row, even one whose
//! lease ran out, since the receiver saw it.

mod account_mails;
pub mod housekeeping;
mod letters;
mod notices;
pub mod reminders;
pub mod webhooks;

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
use crate::db::links::Purpose;
use crate::db::outbox::{
    KIND_CONFIRMATION, KIND_EVENT_CHANGED, KIND_HOLD_EXPIRED, KIND_PASSWORD_RESET, KIND_REMINDER,
    KIND_VERIFY_EMAIL, KIND_WEBHOOK, KIND_WEBHOOK_DISABLED,
};
use crate::db::webhooks as db_webhooks;
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

/// Which jobs a slot runs: mails, or webhook deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Mail,
    Webhook,
}

impl Class {
    fn of(job: &outbox::Model) -> Class {
        if job.kind == KIND_WEBHOOK {
            Class::Webhook
        } else {
            Class::Mail
        }
    }
}

/// Claims up to `limit` due jobs of a class for `worker`.
pub async fn claim(
    state: &AppState,
    worker: &str,
    limit: u64,
    class: Class,
) -> Result<Vec<outbox::Model>, sea_orm::DbErr> {
    let now = state.clock.now();
    let lease_end = now + lease(state);
    let due = Query::select()
        .column(outbox::Column::Id)
        .from(outbox::Entity)
        .and_where(outbox::Column::Status.eq("pending"))
        .and_where(outbox::Column::RunAt.lte(now))
        .and_where(match class {
            Class::Webhook => outbox::Column::Kind.eq(KIND_WEBHOOK),
            Class::Mail => outbox::Column::Kind.ne(KIND_WEBHOOK),
        })
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
) -> (outbox::Model, Outcome, Option<webhooks::Attempt>) {
    let claimed = job.clone();
    let work = async {
        match claimed.kind.as_str() {
            KIND_WEBHOOK => webhooks::run(state, &claimed).await,
            KIND_WEBHOOK_DISABLED => (webhooks::notify_owner(state, &claimed).await, None),
            KIND_EVENT_CHANGED => (notices::run_job(state, &claimed).await, None),
            KIND_HOLD_EXPIRED => (notices::run_hold_expired(state, &claimed).await, None),
            crate::db::waitlist::KIND_WAITLIST_OFFER => {
                (notices::run_waitlist_offer(state, &claimed).await, None)
            }
            KIND_VERIFY_EMAIL => (
                account_mails::run_job(state, &claimed, Purpose::VerifyEmail).await,
                None,
            ),
            KIND_PASSWORD_RESET => (
                account_mails::run_job(state, &claimed, Purpose::PasswordReset).await,
                None,
            ),
            _ => (reminders::run_job(state, &claimed).await, None),
        }
    };
    tokio::pin!(work);
    let mut beat = tokio::time::interval(state.config.outbox_lease / 3);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: the claim has just set the lease.
    beat.tick().await;
    loop {
        tokio::select! {
            (outcome, attempt) = &mut work => return (job, outcome, attempt),
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
    /// Failed, to be retried no sooner than this (`Retry-After`).
    Later(anyhow::Error, chrono::Duration),
}

impl Outcome {
    fn failure(&self) -> Option<(&anyhow::Error, Option<chrono::Duration>)> {
        match self {
            Outcome::Failed(e) => Some((e, None)),
            Outcome::Later(e, wait) => Some((e, Some(*wait))),
            _ => None,
        }
    }
}

/// When a failed job runs again, or `None` when it is dead: a webhook
/// follows its schedule (a `Retry-After` in place of the step's wait), a
/// mail its backoff.
fn next_run(job: &outbox::Model, wait: Option<chrono::Duration>) -> Option<chrono::Duration> {
    if job.kind == KIND_WEBHOOK {
        let retry = usize::try_from(job.attempts - 1).unwrap_or(0);
        let step = webhooks::retry_delay(retry)?;
        // `Retry-After` may lengthen a step, never shorten it: a receiver
        // answering "retry in 1 s" must not spend the schedule in seconds.
        Some(wait.map_or(step, |w| w.max(step)))
    } else if job.attempts >= MAX_ATTEMPTS {
        None
    } else {
        Some(backoff(job.attempts - 1))
    }
}

/// [`finish`], tried again while the database cannot be reached, for up to
/// half the lease (nobody else can claim the job before its lease runs
/// out): a mail the SMTP server took while PostgreSQL was away is recorded
/// as sent when it is back, not sent again after the lease.
async fn record(
    state: &AppState,
    job: &outbox::Model,
    worker: &str,
    outcome: &Outcome,
    attempt: Option<webhooks::Attempt>,
) -> Result<(), sea_orm::DbErr> {
    let give_up = std::time::Instant::now() + state.config.outbox_lease / 2;
    let mut wait = std::time::Duration::from_millis(200);
    loop {
        match finish(state, job, worker, outcome, attempt.clone()).await {
            Err(e)
                if crate::db::errors::is_connection_error(&e)
                    && std::time::Instant::now() + wait < give_up =>
            {
                tracing::debug!("job {}: recording its outcome again: {e}", job.id);
                tokio::time::sleep(wait).await;
                wait = std::cmp::min(wait * 2, std::time::Duration::from_secs(2));
            }
            recorded => return recorded,
        }
    }
}

/// Records a job's outcome, if the worker still holds its lease, and the
/// attempt it made (always: the receiver saw it). A webhook's endpoint
/// follows: a success clears its failing state, a 410 or a spent schedule
/// disables it (the latter mails its owner).
async fn finish(
    state: &AppState,
    job: &outbox::Model,
    worker: &str,
    outcome: &Outcome,
    attempt: Option<webhooks::Attempt>,
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
    let mut retry_at = None;
    let mut dead = None;
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
        Outcome::Failed(_) | Outcome::Later(..) => {
            let (err, wait) = outcome.failure().unzip();
            let message = err.map(|e| format!("{e:#}")).unwrap_or_default();
            match next_run(job, wait.flatten()) {
                None => {
                    tracing::error!(
                        "Job {} ({} for {}) is dead after {} attempts: {message}",
                        job.id,
                        job.kind,
                        job.subject(),
                        job.attempts
                    );
                    update = update
                        .col_expr(outbox::Column::Status, Expr::value("dead"))
                        .col_expr(outbox::Column::FinishedAt, Expr::value(Some(now)));
                    dead = Some(message.clone());
                }
                Some(after) => {
                    let at = now + after;
                    tracing::warn!(
                        "Job {} ({}) failed (attempt {}), retrying at {at}: {message}",
                        job.id,
                        job.kind,
                        job.attempts
                    );
                    update = update.col_expr(outbox::Column::RunAt, Expr::value(at));
                    retry_at = Some(at);
                }
            }
            update = update.col_expr(outbox::Column::LastError, Expr::value(Some(message)));
        }
    }
    let txn = state.db.begin_write().await?;
    let finished = update
        .filter(outbox::Column::Id.eq(job.id))
        .filter(outbox::Column::LockedBy.eq(worker))
        .exec(&*txn)
        .await?
        .rows_affected
        > 0;
    let endpoint = job.endpoint_id.filter(|_| job.kind == KIND_WEBHOOK);
    if let (Some(attempt), Some(endpoint), Some(message)) = (&attempt, endpoint, job.message_id)
        && (finished || db_webhooks::exists(&*txn, endpoint).await?)
    {
        let next = if finished { retry_at } else { None };
        let seen = db_webhooks::AttemptSeen {
            message_type: &attempt.message_type,
            status_code: attempt.status_code,
            duration_ms: attempt.duration_ms,
            response_body: &attempt.response_body,
            error: attempt.error.as_deref(),
        };
        db_webhooks::record_attempt(&*txn, endpoint, message, job.attempts, seen, next, now)
            .await?;
    }
    if finished {
        if let Outcome::Sent = outcome {
            log_sent(&*txn, job).await?;
        }
        if let Some(endpoint) = endpoint {
            match (outcome, &dead) {
                (Outcome::Sent, _) => db_webhooks::delivered(&*txn, endpoint).await?,
                (_, Some(last)) => {
                    let reason = format!(
                        "Disabled after {} failed attempts over about three days; the last: {last}",
                        job.attempts
                    );
                    db_webhooks::disable(&*txn, endpoint, &reason, true, now).await?;
                }
                (Outcome::Skipped(_), None) if attempt.as_ref().is_some_and(|a| a.gone()) => {
                    let reason = "The receiver answered 410 Gone.";
                    db_webhooks::disable(&*txn, endpoint, reason, false, now).await?;
                }
                (Outcome::Failed(_) | Outcome::Later(..), None) => {
                    db_webhooks::failing(&*txn, endpoint, now).await?;
                }
                _ => {}
            }
        }
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
    let Some(registration_id) = job.registration_id else {
        return Ok(());
    };
    let event_id: Option<Uuid> = registration::Entity::find_by_id(registration_id)
        .select_only()
        .column(registration::Column::EventId)
        .into_tuple()
        .one(txn)
        .await?;
    let entry = Entry::about(
        action,
        "registration",
        registration_id.to_string(),
        event_id,
        Changes::none(),
    );
    audit::record_one(txn, &audit::Context::system(), entry)
        .await
        .map(|_| ())
}

/// Counts of one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Overdue payment holds given back (API.md §9).
    pub holds_expired: usize,
    /// Waiting-list offers made, lapsed, and entries closed (API.md §9).
    pub offers_made: usize,
    pub offers_lapsed: usize,
    pub reminders_scheduled: usize,
    pub sent: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// One pass: expire overdue holds, sweep the waiting lists (lapse offers,
/// offer free seats, close lists that no longer sell), schedule due
/// reminders, then run every due job.
pub async fn run_pass(state: &AppState, worker: &str) -> anyhow::Result<PassReport> {
    let holds_expired = expire_holds(state).await?;
    // After the holds: the seats they freed go to the people waiting.
    let swept = crate::db::waitlist::sweep(&state.db, state.clock.now()).await?;
    if swept != crate::db::waitlist::Swept::default() {
        state
            .cache
            .invalidate(&[crate::cache::Family::Tickets])
            .await;
    }
    let mut report = PassReport {
        holds_expired,
        offers_made: swept.offered,
        offers_lapsed: swept.lapsed,
        reminders_scheduled: reminders::schedule(state).await?,
        ..Default::default()
    };
    // Jobs are claimed only when they can start at once: a job claimed and
    // left waiting would see its lease run out and be sent by another
    // worker as well. Mails and webhook deliveries have slots of their own,
    // and jobs that fall due while others run are claimed every poll
    // interval: a receiver that hangs holds one webhook slot, nothing else.
    let slots = |class| match class {
        Class::Mail => state.config.worker_concurrency,
        Class::Webhook => state.config.webhook_concurrency,
    };
    let mut busy = [0usize; 2];
    // Each job is a task of its own, its outcome recorded in it: a job
    // waiting on the pool while this loop claims (or records) would hold a
    // connection the loop needs.
    let mut running = tokio::task::JoinSet::new();
    // New jobs are claimed for a while, then the pass drains and ends, so
    // that reminders are scheduled and a stop is seen even under steady
    // traffic.
    let started = std::time::Instant::now();
    let claiming_for = std::cmp::max(
        state.config.worker_poll * 6,
        std::time::Duration::from_secs(30),
    );
    loop {
        if started.elapsed() < claiming_for {
            for class in [Class::Mail, Class::Webhook] {
                let taken = busy[class as usize];
                if taken >= slots(class) {
                    continue;
                }
                let free = u64::try_from(slots(class) - taken).unwrap_or(1);
                let claimed = match claim(state, worker, free, class).await {
                    Ok(claimed) => claimed,
                    Err(e) => {
                        // What runs is finished first: aborting it would
                        // lose what its receivers already saw.
                        while running.join_next().await.is_some() {}
                        return Err(e.into());
                    }
                };
                for job in claimed {
                    busy[class as usize] += 1;
                    let (state, worker) = (state.clone(), worker.to_owned());
                    running.spawn(async move {
                        let (job, outcome, attempt) = run_leased(&state, &worker, job).await;
                        let recorded = record(&state, &job, &worker, &outcome, attempt).await;
                        (job, outcome, recorded)
                    });
                }
            }
        }
        if running.is_empty() {
            break;
        }
        let done = tokio::select! {
            done = running.join_next() => done,
            () = tokio::time::sleep(state.config.worker_poll) => continue,
        };
        let Some(done) = done else {
            break;
        };
        let (job, outcome, recorded) = match done {
            Ok(done) => done,
            Err(e) => {
                // A job that panicked: its lease runs out and it is retried.
                tracing::error!("a job's task failed: {e}");
                continue;
            }
        };
        busy[Class::of(&job) as usize] -= 1;
        match &outcome {
            Outcome::Sent => report.sent += 1,
            Outcome::Skipped(_) => report.skipped += 1,
            Outcome::Failed(_) | Outcome::Later(..) => report.failed += 1,
        }
        if let Err(e) = recorded {
            // Its lease runs out and another pass runs it again.
            tracing::error!(
                "Job {} ({}): its outcome was not recorded: {e}",
                job.id,
                job.kind
            );
        }
    }
    Ok(report)
}

/// Gives back every overdue hold (a write that finds its ticket full does
/// it for its event at once; this is for the rest, and for the mails), in
/// transactions of `EXPIRY_BATCH`.
pub async fn expire_holds(state: &AppState) -> Result<usize, sea_orm::DbErr> {
    let now = state.clock.now();
    let mut expired = 0;
    loop {
        let batch = crate::db::registration_writer::expire_overdue(&state.db, None, now).await?;
        if batch.is_empty() {
            break;
        }
        expired += batch.len();
        state
            .cache
            .invalidate(&[crate::cache::Family::Tickets])
            .await;
    }
    if expired > 0 {
        tracing::info!("{expired} overdue payment holds expired");
    }
    Ok(expired)
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
    let audit_count = tokio::spawn(keep_audit_count(state.clone()));
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
    audit_count.abort();
    tracing::info!("Worker {worker} stopped");
}

/// Moves the audit count's mark every `WORKER_POLL_INTERVAL`
/// (`db::audit::advance_count_mark`), on its own clock: a long pass does
/// not let the entries past the mark pile up.
async fn keep_audit_count(state: AppState) {
    let mut interval = tokio::time::interval(state.config.worker_poll);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(e) = crate::db::audit::advance_count_mark(&state.db).await {
            tracing::warn!("the audit log's count mark could not move: {e}");
        }
    }
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
