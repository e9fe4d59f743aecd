//! The background job queue as people see it: how many jobs wait, which
//! died (with their last error), and a retry for a dead job. Superuser and
//! admin only. The worker itself lives in `crate::jobs`.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tracing::instrument;
use uuid::Uuid;

use super::{Caller, DomainError, DomainResult, Page, PageRequest};
use crate::db::audit::{self, Action, Changes, Entry};
use crate::db::entities::outbox;
use crate::state::AppState;

/// Superuser and admin (403 otherwise).
pub fn authorize(caller: &Caller) -> DomainResult<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// The queue: jobs waiting (`pending`), jobs given up on (`dead`), and one
/// page of the dead ones, the most recent first.
pub struct Overview {
    pub pending: u64,
    pub dead: u64,
    pub dead_jobs: Page<outbox::Model>,
}

pub async fn overview(
    state: &AppState,
    caller: &Caller,
    page: PageRequest,
) -> DomainResult<Overview> {
    authorize(caller)?;
    let (pending, dead) = crate::jobs::stats(state).await?;
    let select = outbox::Entity::find()
        .filter(outbox::Column::Status.eq("dead"))
        .order_by_desc(outbox::Column::FinishedAt)
        .order_by_desc(outbox::Column::Id);
    let dead_jobs = super::fetch_page(state.db.conn(), select, page).await?;
    Ok(Overview {
        pending,
        dead,
        dead_jobs,
    })
}

/// Gives a dead job a fresh start: pending, due now, its attempts counted
/// from zero (its last error is kept until it runs again). A job that is not
/// dead (already retried, or unknown) is a 404.
#[instrument(name = "retry_job", skip_all, fields(user = %caller.username))]
pub async fn retry(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<outbox::Model> {
    authorize(caller)?;
    let now = state.clock.now();
    let txn = state.db.begin_write().await?;
    let updated = outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value("pending"))
        .col_expr(outbox::Column::RunAt, Expr::value(now))
        .col_expr(outbox::Column::Attempts, Expr::value(0))
        .col_expr(
            outbox::Column::LockedUntil,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .col_expr(
            outbox::Column::LockedBy,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            outbox::Column::FinishedAt,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .filter(outbox::Column::Id.eq(id))
        .filter(outbox::Column::Status.eq("dead"))
        .exec_with_returning(&*txn)
        .await?;
    let job = updated.into_iter().next().ok_or(DomainError::NotFound)?;
    let entry = Entry::about(
        Action::JobRetried,
        "job",
        job.id.to_string(),
        None,
        Changes::none().with("status", "dead", "pending"),
    );
    audit::record_one(&*txn, &caller.audit(), entry).await?;
    txn.commit().await?;
    tracing::info!(
        "Job {} ({} for {}) retried by {}",
        job.id,
        job.kind,
        job.subject(),
        caller.username
    );
    Ok(job)
}
