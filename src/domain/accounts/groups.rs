//! Groups and role assignments: superuser only. The roles of API.md §3 are
//! the groups named `admin` and `organizer`.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use tracing::instrument;
use uuid::Uuid;

use crate::cache::Family;
use crate::db::audit::{self, Action, Changes, Entry};
use crate::db::entities::{group, user, user_group};
use crate::db::errors::is_unique_violation;
use crate::domain::{Caller, DomainError, DomainResult, FieldErrors, Page, PageRequest};
use crate::state::AppState;

pub const MAX_NAME: usize = 150;
const DUPLICATE_NAME: &str = "group with this name already exists.";

/// Only superusers manage groups (admins get 403).
pub fn authorize(caller: &Caller) -> DomainResult<()> {
    if caller.is_superuser {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// Adds an error on `name` when another group already has it
/// (case-insensitively).
pub async fn check_name(
    state: &AppState,
    name: &str,
    except: Option<i32>,
    errors: &mut FieldErrors,
) -> DomainResult<()> {
    let mut query = group::Entity::find().filter(group::Column::NameKey.eq(name.to_lowercase()));
    if let Some(id) = except {
        query = query.filter(group::Column::Id.ne(id));
    }
    if query.count(state.db.conn()).await? > 0 {
        errors.add("name", DUPLICATE_NAME);
    }
    Ok(())
}

pub async fn list(
    state: &AppState,
    caller: &Caller,
    page: PageRequest,
) -> DomainResult<Page<group::Model>> {
    authorize(caller)?;
    let select = group::Entity::find().order_by_asc(group::Column::Id);
    Ok(crate::domain::fetch_page(state.db.conn(), select, page).await?)
}

#[instrument(name = "create_group", skip_all, fields(user = %caller.username))]
pub async fn create(state: &AppState, caller: &Caller, name: String) -> DomainResult<group::Model> {
    authorize(caller)?;
    let mut errors = FieldErrors::default();
    check_name(state, &name, None, &mut errors).await?;
    errors.into_result()?;
    let txn = state.db.begin_write().await?;
    let created = group::ActiveModel {
        name_key: Set(name.to_lowercase()),
        name: Set(name),
        ..Default::default()
    }
    .insert(&*txn)
    .await;
    let created = match created {
        Ok(g) => g,
        Err(e) if is_unique_violation(&e) => {
            return Err(DomainError::Invalid(FieldErrors::single(
                "name",
                DUPLICATE_NAME,
            )));
        }
        Err(e) => return Err(e.into()),
    };
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::created(Action::GroupCreated, &created),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(
        "Group {} ({}) created by {}",
        created.name,
        created.id,
        caller.username
    );
    Ok(created)
}

pub async fn get(state: &AppState, caller: &Caller, id: i32) -> DomainResult<group::Model> {
    authorize(caller)?;
    group::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)
}

/// Renames a group (`None`: nothing to change).
#[instrument(name = "rename_group", skip_all, fields(user = %caller.username))]
pub async fn rename(
    state: &AppState,
    caller: &Caller,
    id: i32,
    name: Option<String>,
) -> DomainResult<group::Model> {
    let found = get(state, caller, id).await?;
    let Some(name) = name else {
        return Ok(found);
    };
    let mut errors = FieldErrors::default();
    check_name(state, &name, Some(found.id), &mut errors).await?;
    errors.into_result()?;
    let mut model: group::ActiveModel = found.clone().into();
    model.name_key = Set(name.to_lowercase());
    model.name = Set(name);
    let txn = state.db.begin_write().await?;
    let updated = match model.update(&*txn).await {
        Ok(g) => g,
        Err(e) if is_unique_violation(&e) => {
            return Err(DomainError::Invalid(FieldErrors::single(
                "name",
                DUPLICATE_NAME,
            )));
        }
        Err(e) => return Err(e.into()),
    };
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::updated(Action::GroupUpdated, &found, &updated),
    )
    .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Accounts]).await;
    tracing::info!(
        "Group {} renamed to {} by {}",
        updated.id,
        updated.name,
        caller.username
    );
    Ok(updated)
}

/// Deletes a group; its memberships go with it.
#[instrument(name = "delete_group", skip_all, fields(user = %caller.username))]
pub async fn delete(state: &AppState, caller: &Caller, id: i32) -> DomainResult<()> {
    let found = get(state, caller, id).await?;
    let txn = state.db.begin_write().await?;
    // Memberships go with the group (ON DELETE CASCADE).
    group::Entity::delete_by_id(found.id).exec(&*txn).await?;
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::deleted(Action::GroupDeleted, &found),
    )
    .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Accounts]).await;
    tracing::info!(
        "Group {} ({}) deleted by {}",
        found.name,
        found.id,
        caller.username
    );
    Ok(())
}

/// A user and a group named by a role assignment (404 for either unknown).
async fn membership(
    state: &AppState,
    user_id: Uuid,
    group_id: i32,
) -> DomainResult<(user::Model, group::Model)> {
    let account = user::Entity::find_by_id(user_id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)?;
    let group = group::Entity::find_by_id(group_id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)?;
    Ok((account, group))
}

/// The outcome of a role assignment.
pub struct Assignment {
    pub user: user::Model,
    pub group: group::Model,
    /// False when the user already was a member.
    pub created: bool,
}

#[instrument(name = "assign_role", skip_all, fields(user = %caller.username))]
pub async fn assign(
    state: &AppState,
    caller: &Caller,
    user_id: Uuid,
    group_id: i32,
) -> DomainResult<Assignment> {
    authorize(caller)?;
    let (account, group) = membership(state, user_id, group_id).await?;
    let txn = state.db.begin_write().await?;
    let inserted = user_group::ActiveModel {
        user_id: Set(account.id),
        group_id: Set(group.id),
    }
    .insert(&*txn)
    .await;
    let created = match inserted {
        Ok(_) => true,
        Err(e) if is_unique_violation(&e) => false,
        Err(e) => return Err(e.into()),
    };
    if created {
        let entry = Entry::of(
            Action::RoleAssigned,
            &account,
            Changes::none().with("group", None::<String>, group.name.clone()),
        );
        audit::record_one(&*txn, &caller.audit(), entry).await?;
    }
    txn.commit().await?;
    state.cache.invalidate(&[Family::Accounts]).await;
    if created {
        tracing::info!(
            "Role assigned: {} added to group {} by {}",
            account.username,
            group.name,
            caller.username
        );
    }
    Ok(Assignment {
        user: account,
        group,
        created,
    })
}

#[instrument(name = "unassign_role", skip_all, fields(user = %caller.username))]
pub async fn unassign(
    state: &AppState,
    caller: &Caller,
    user_id: Uuid,
    group_id: i32,
) -> DomainResult<()> {
    authorize(caller)?;
    let (account, group) = membership(state, user_id, group_id).await?;
    let txn = state.db.begin_write().await?;
    let removed = user_group::Entity::delete_many()
        .filter(user_group::Column::UserId.eq(account.id))
        .filter(user_group::Column::GroupId.eq(group.id))
        .exec(&*txn)
        .await?;
    if removed.rows_affected > 0 {
        let entry = Entry::of(
            Action::RoleRemoved,
            &account,
            Changes::none().with("group", group.name.clone(), None::<String>),
        );
        audit::record_one(&*txn, &caller.audit(), entry).await?;
    }
    txn.commit().await?;
    state.cache.invalidate(&[Family::Accounts]).await;
    if removed.rows_affected == 0 {
        return Err(DomainError::NotFound);
    }
    tracing::info!(
        "Role removed: {} taken out of group {} by {}",
        account.username,
        group.name,
        caller.username
    );
    Ok(())
}

/// How many members each group has (superusers only, as the groups).
pub async fn member_counts(
    state: &AppState,
    caller: &Caller,
) -> DomainResult<std::collections::HashMap<i32, u64>> {
    #[derive(sea_orm::FromQueryResult)]
    struct Members {
        group_id: i32,
        n: i64,
    }
    authorize(caller)?;
    Ok(user_group::Entity::find()
        .select_only()
        .column(user_group::Column::GroupId)
        .column_as(user_group::Column::UserId.count(), "n")
        .group_by(user_group::Column::GroupId)
        .into_model::<Members>()
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(|m| (m.group_id, m.n.max(0) as u64))
        .collect())
}

/// A group's members, by username (superuser only).
pub async fn members(state: &AppState, caller: &Caller, id: i32) -> DomainResult<Vec<user::Model>> {
    let found = get(state, caller, id).await?;
    Ok(user::Entity::find()
        .filter(
            user::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(user_group::Column::UserId)
                    .from(user_group::Entity)
                    .and_where(user_group::Column::GroupId.eq(found.id))
                    .to_owned(),
            ),
        )
        .order_by_asc(user::Column::UsernameKey)
        .all(state.db.conn())
        .await?)
}
