//! Pruning what only grows. Every registration leaves two finished outbox
//! jobs, every keyed payment or scan an idempotency key, every sign-in a
//! console session, every logout a revoked token, every wrong password a
//! failure row; left alone they become the largest tables. A worker prunes
//! them every `HOUSEKEEPING_INTERVAL`, in statements of at most `BATCH`
//! rows (each a short transaction: a backlog never holds a long lock), what
//! can no longer matter:
//!
//! | table | pruned when |
//! |---|---|
//! | `outbox` | done or skipped more than `OUTBOX_RETENTION_DAYS` ago, and (a reminder) its event has started — so a reminder is never enqueued twice; dead jobs stay for staff |
//! | `idempotency_keys` | older than 24 h (a retry after that is a new request, API.md §7) |
//! | `console_sessions` | idle longer than `SESSION_IDLE` (refused when presented anyway) |
//! | `revoked_tokens` | past the token's own expiry (refused for it anyway) |
//! | `login_failures` | older than `LOGIN_THROTTLE_WINDOW` (they no longer count) |
//!
//! Several workers may prune at once: a row deleted by one is simply not
//! found by the other.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter};

use crate::db::entities::{console_session, idempotency_key, login_failure, outbox, revoked_token};
use crate::state::AppState;

/// Rows deleted per statement.
pub const BATCH: u64 = 500;

/// How long an idempotency key answers a retry.
pub const IDEMPOTENCY_KEY_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

/// Rows pruned by one pass, per table (in the order of the table above).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub outbox: u64,
    pub idempotency_keys: u64,
    pub console_sessions: u64,
    pub revoked_tokens: u64,
    pub login_failures: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.outbox
            + self.idempotency_keys
            + self.console_sessions
            + self.revoked_tokens
            + self.login_failures
    }
}

impl std::fmt::Display for Pruned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "outbox {}, idempotency_keys {}, console_sessions {}, revoked_tokens {}, login_failures {}",
            self.outbox,
            self.idempotency_keys,
            self.console_sessions,
            self.revoked_tokens,
            self.login_failures
        )
    }
}

fn days(n: u32) -> chrono::Duration {
    chrono::Duration::days(i64::from(n))
}

fn span(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Prunes every table once, as of `now`; each table until nothing is left
/// to prune.
pub async fn pass(state: &AppState, now: DateTime<Utc>) -> Result<Pruned, DbErr> {
    let config = &state.config;
    let finished_before = now - days(config.outbox_retention_days);
    let outbox = drain(
        state,
        outbox::Entity,
        &[outbox::Column::Id],
        Condition::all()
            .add(outbox::Column::Status.is_in(["done", "skipped"]))
            .add(outbox::Column::FinishedAt.lt(finished_before))
            .add(
                Condition::any()
                    .add(outbox::Column::EventStart.is_null())
                    .add(outbox::Column::EventStart.lt(now)),
            ),
    )
    .await?;
    let idempotency_keys = drain(
        state,
        idempotency_key::Entity,
        &[
            idempotency_key::Column::UserId,
            idempotency_key::Column::Key,
        ],
        Condition::all().add(idempotency_key::Column::CreatedAt.lt(now - IDEMPOTENCY_KEY_LIFETIME)),
    )
    .await?;
    let console_sessions = drain(
        state,
        console_session::Entity,
        &[console_session::Column::Id],
        Condition::all()
            .add(console_session::Column::LastSeenAt.lt(now - span(config.session_idle))),
    )
    .await?;
    let revoked_tokens = drain(
        state,
        revoked_token::Entity,
        &[revoked_token::Column::Jti],
        Condition::all().add(revoked_token::Column::ExpiresAt.lt(now)),
    )
    .await?;
    let login_failures = drain(
        state,
        login_failure::Entity,
        &[login_failure::Column::Id],
        Condition::all()
            .add(login_failure::Column::FailedAt.lt(now - span(config.login_throttle.window))),
    )
    .await?;
    Ok(Pruned {
        outbox,
        idempotency_keys,
        console_sessions,
        revoked_tokens,
        login_failures,
    })
}

/// Deletes the rows of `entity` that meet `condition`, at most `BATCH` per
/// statement (picked by their primary `key`, one column or two), until a
/// statement deletes fewer.
async fn drain<E, C>(
    state: &AppState,
    entity: E,
    key: &[C],
    condition: Condition,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    C: ColumnTrait,
{
    let mut total = 0;
    loop {
        let batch = Query::select()
            .columns(key.iter().copied())
            .from(entity)
            .cond_where(condition.clone())
            .limit(BATCH)
            .to_owned();
        let txn = state.db.begin_write().await?;
        let deleted = E::delete_many()
            .filter(Expr::tuple(key.iter().map(|c| Expr::col(*c))).in_subquery(batch))
            .exec(&*txn)
            .await?
            .rows_affected;
        txn.commit().await?;
        total += deleted;
        if deleted < BATCH {
            return Ok(total);
        }
    }
}

/// Prunes every `HOUSEKEEPING_INTERVAL` for as long as the worker runs.
pub async fn run(state: AppState) {
    let mut interval = tokio::time::interval(state.config.housekeeping_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let started = std::time::Instant::now();
        match pass(&state, state.clock.now()).await {
            Ok(pruned) if pruned.total() == 0 => {}
            Ok(pruned) => tracing::info!(
                "housekeeping pruned {} rows in {} ms ({pruned})",
                pruned.total(),
                started.elapsed().as_millis()
            ),
            // The database is down: the next pass prunes what this one did not.
            Err(e) => tracing::warn!("housekeeping could not prune: {e}"),
        }
    }
}
