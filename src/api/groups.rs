//! `/api/groups/` and `/api/assign-roles/`: superuser only.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use super::input::{Input, JsonBody, QueryParams, Text};
use super::pagination::{envelope, fetch_page};
use crate::AppState;
use crate::auth::{AuthUser, CurrentUser};
use crate::db::entities::{group, user, user_group};
use crate::error::{ApiError, ApiResult, is_unique_violation};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route(
            "/groups/{id}",
            get(retrieve).put(update).patch(update).delete(destroy),
        )
        .route("/assign-roles", post(assign).delete(unassign))
}

fn group_json(g: &group::Model) -> Value {
    json!({ "id": g.id, "name": g.name })
}

fn require_superuser(caller: &CurrentUser) -> ApiResult<()> {
    if caller.is_superuser {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

const DUPLICATE_NAME: &str = "group with this name already exists.";

async fn name_taken(state: &AppState, name: &str, except: Option<i32>) -> ApiResult<bool> {
    let mut query = group::Entity::find().filter(group::Column::NameKey.eq(name.to_lowercase()));
    if let Some(id) = except {
        query = query.filter(group::Column::Id.ne(id));
    }
    Ok(query.count(state.db.conn()).await? > 0)
}

async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    require_superuser(&caller)?;
    let query = QueryParams::parse(raw.as_deref());
    let select = group::Entity::find().order_by_asc(group::Column::Id);
    let (rows, page) = fetch_page(state.db.conn(), select, &query).await?;
    let items = rows.iter().map(group_json).collect();
    Ok(Json(envelope("groups", items, &page, &uri, &headers)))
}

#[instrument(name = "create", skip_all, fields(user = %caller.username))]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    require_superuser(&caller)?;
    let mut input = body.input(false)?;
    let name = input.text("name", Text::required(150));
    if let Some(name) = &name
        && name_taken(&state, name, None).await?
    {
        input.errors.add("name", DUPLICATE_NAME);
    }
    input.finish()?;
    let name = name.unwrap_or_default();
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
        Err(e) if is_unique_violation(&e) => return Err(ApiError::field("name", DUPLICATE_NAME)),
        Err(e) => return Err(e.into()),
    };
    txn.commit().await?;
    tracing::info!(
        "Group {} ({}) created by {}",
        created.name,
        created.id,
        caller.username
    );
    Ok((StatusCode::CREATED, Json(group_json(&created))))
}

/// Group ids are positive integers; anything else in a path is a 404.
async fn find_group(state: &AppState, raw_id: &str) -> ApiResult<group::Model> {
    let id: i32 = raw_id.parse().map_err(|_| ApiError::NotFound)?;
    group::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(ApiError::NotFound)
}

async fn retrieve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    require_superuser(&caller)?;
    Ok(Json(group_json(&find_group(&state, &id).await?)))
}

#[instrument(name = "update", skip_all, fields(user = %caller.username))]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    method: axum::http::Method,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    require_superuser(&caller)?;
    let found = find_group(&state, &id).await?;
    let mut input = body.input(method == axum::http::Method::PATCH)?;
    let name = input.text("name", Text::required(150));
    if let Some(name) = &name
        && name_taken(&state, name, Some(found.id)).await?
    {
        input.errors.add("name", DUPLICATE_NAME);
    }
    input.finish()?;
    let Some(name) = name else {
        return Ok(Json(group_json(&found)));
    };
    let mut model: group::ActiveModel = found.into();
    model.name_key = Set(name.to_lowercase());
    model.name = Set(name);
    let txn = state.db.begin_write().await?;
    let updated = match model.update(&*txn).await {
        Ok(g) => g,
        Err(e) if is_unique_violation(&e) => return Err(ApiError::field("name", DUPLICATE_NAME)),
        Err(e) => return Err(e.into()),
    };
    txn.commit().await?;
    tracing::info!(
        "Group {} renamed to {} by {}",
        updated.id,
        updated.name,
        caller.username
    );
    Ok(Json(group_json(&updated)))
}

#[instrument(name = "destroy", skip_all, fields(user = %caller.username))]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require_superuser(&caller)?;
    let found = find_group(&state, &id).await?;
    let txn = state.db.begin_write().await?;
    // Memberships go with the group (ON DELETE CASCADE).
    group::Entity::delete_by_id(found.id).exec(&*txn).await?;
    txn.commit().await?;
    tracing::info!(
        "Group {} ({}) deleted by {}",
        found.name,
        found.id,
        caller.username
    );
    Ok(StatusCode::NO_CONTENT)
}

/// `{"user_id", "group_id"}` read and resolved: 400 for malformed ids, 404
/// for unknown ones.
async fn membership(state: &AppState, input: &mut Input) -> ApiResult<(user::Model, group::Model)> {
    let user_id: Option<Uuid> = input.uuid("user_id", true);
    let group_id = input.integer("group_id", true, 1, i32::MAX as i64);
    std::mem::take(&mut input.errors).into_result()?;
    let (Some(user_id), Some(group_id)) = (user_id, group_id) else {
        return Err(ApiError::NotFound);
    };
    let account = user::Entity::find_by_id(user_id)
        .one(state.db.conn())
        .await?
        .ok_or(ApiError::NotFound)?;
    let group = group::Entity::find_by_id(group_id as i32)
        .one(state.db.conn())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((account, group))
}

#[instrument(name = "assign", skip_all, fields(user = %caller.username))]
async fn assign(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    require_superuser(&caller)?;
    let mut input = body.input(false)?;
    let (account, group) = membership(&state, &mut input).await?;
    let txn = state.db.begin_write().await?;
    let inserted = user_group::ActiveModel {
        user_id: Set(account.id),
        group_id: Set(group.id),
    }
    .insert(&*txn)
    .await;
    let status = match inserted {
        Ok(_) => StatusCode::CREATED,
        Err(e) if is_unique_violation(&e) => StatusCode::OK,
        Err(e) => return Err(e.into()),
    };
    txn.commit().await?;
    if status == StatusCode::CREATED {
        tracing::info!(
            "Role assigned: {} added to group {} by {}",
            account.username,
            group.name,
            caller.username
        );
    }
    Ok((
        status,
        Json(json!({
            "message": format!("User {} assigned to group {}", account.username, group.name),
            "user_id": account.id.to_string(),
            "group_id": group.id,
        })),
    ))
}

#[instrument(name = "unassign", skip_all, fields(user = %caller.username))]
async fn unassign(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<StatusCode> {
    require_superuser(&caller)?;
    let mut input = body.input(false)?;
    let (account, group) = membership(&state, &mut input).await?;
    let txn = state.db.begin_write().await?;
    let removed = user_group::Entity::delete_many()
        .filter(user_group::Column::UserId.eq(account.id))
        .filter(user_group::Column::GroupId.eq(group.id))
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    if removed.rows_affected == 0 {
        return Err(ApiError::NotFound);
    }
    tracing::info!(
        "Role removed: {} taken out of group {} by {}",
        account.username,
        group.name,
        caller.username
    );
    Ok(StatusCode::NO_CONTENT)
}
