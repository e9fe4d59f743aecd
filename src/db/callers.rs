//! The users behind bearer tokens, as every authenticated request needs
//! them: first reads of callers asked for at the same time go to the
//! database together (a burst of new callers when a ticket sale opens is a
//! few statements, not one per request). `domain::accounts::load_caller`
//! judges what is read and caches it.

use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::sea_query::{Expr, ExprTrait, PgFunc};
use sea_orm::{ColumnTrait, DbBackend, DbErr, EntityTrait, JoinType, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::Database;
use super::batch::{Batcher, padded};
use super::entities::{email_verification, group, user, user_group};

/// A user with the names of their groups (as stored), active or not.
#[derive(Debug, Clone)]
pub struct CallerRow {
    pub id: Uuid,
    pub username: String,
    pub is_superuser: bool,
    pub is_active: bool,
    pub groups: Vec<String>,
    /// `Some(required)` while the e-mail address is not verified.
    pub unverified: Option<bool>,
}

/// The batched reader of callers (`None`: no such user).
pub type CallerReads = Arc<Batcher<Uuid, Option<CallerRow>>>;

pub fn caller_reads(db: Database) -> CallerReads {
    Batcher::new(db, |db, ids| Box::pin(read_callers(db, ids)))
}

/// A user's row joined to one of its groups and its pending verification:
/// id, username, superuser, active, group name, verification required.
type JoinedRow = (Uuid, String, bool, bool, Option<String>, Option<bool>);

/// Users with their groups in one round trip (the users left-joined to their
/// groups), one answer per id.
async fn read_callers(db: Database, ids: Vec<Uuid>) -> Result<Vec<Option<CallerRow>>, DbErr> {
    let rows: Vec<JoinedRow> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .column(user::Column::Username)
        .column(user::Column::IsSuperuser)
        .column(user::Column::IsActive)
        .column(group::Column::Name)
        .column(email_verification::Column::Required)
        .join_rev(
            JoinType::LeftJoin,
            user_group::Entity::belongs_to(user::Entity)
                .from(user_group::Column::UserId)
                .to(user::Column::Id)
                .into(),
        )
        .join(
            JoinType::LeftJoin,
            user_group::Entity::belongs_to(group::Entity)
                .from(user_group::Column::GroupId)
                .to(group::Column::Id)
                .into(),
        )
        .join_rev(
            JoinType::LeftJoin,
            email_verification::Entity::belongs_to(user::Entity)
                .from(email_verification::Column::UserId)
                .to(user::Column::Id)
                .into(),
        )
        .filter(match db.backend() {
            // One array parameter: one statement, prepared once.
            DbBackend::Postgres => {
                Expr::col((user::Entity, user::Column::Id)).eq(PgFunc::any(Expr::val(ids.clone())))
            }
            _ => user::Column::Id.is_in(padded(ids.clone())),
        })
        .into_tuple()
        .all(db.conn())
        .await?;
    let mut found: HashMap<Uuid, CallerRow> = HashMap::with_capacity(ids.len());
    for (id, username, is_superuser, is_active, group, unverified) in rows {
        let row = found.entry(id).or_insert_with(|| CallerRow {
            id,
            username,
            is_superuser,
            is_active,
            groups: Vec::new(),
            unverified,
        });
        if let Some(group) = group {
            row.groups.push(group);
        }
    }
    Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
}
