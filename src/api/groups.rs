//! `/api/groups/` and `/api/assign-roles/`: superuser only.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, SentUri};
use super::pagination::{GroupList, Origin, Pagination, page_request};
use super::schemas::ErrorDetail;
use crate::db::entities::group;
use crate::domain::accounts::groups::{self as domain, MAX_NAME};
use crate::input::{Input, QueryParams, Text};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(retrieve, update, destroy))
        .routes(routes!(assign, unassign))
}

const GROUP_ID: &str = "The group's id (a positive integer; anything else is a 404)";

#[derive(Serialize, ToSchema)]
#[schema(as = Group)]
pub struct GroupOut {
    #[schema(minimum = 1)]
    pub id: i32,
    pub name: String,
}

impl From<group::Model> for GroupOut {
    fn from(g: group::Model) -> Self {
        GroupOut {
            id: g.id,
            name: g.name,
        }
    }
}

/// A group's name: unique case-insensitively.
#[derive(ToSchema)]
pub struct GroupWrite {
    #[schema(min_length = 1, max_length = 150, pattern = r"\S")]
    pub name: String,
}

/// A group's name as sent: on PATCH it may be missing.
pub struct GroupPatch {
    pub name: Option<String>,
}

/// A membership: a user and a group.
#[derive(ToSchema)]
pub struct RoleAssignment {
    pub user_id: Uuid,
    /// The group's id (a numeric string is accepted too).
    #[schema(minimum = 1)]
    pub group_id: i32,
}

impl RoleAssignment {
    /// Both ids, or the field errors.
    fn read(input: &mut Input) -> ApiResult<Self> {
        let user_id = input.uuid("user_id", true);
        let group_id = input.integer("group_id", true, 1, i32::MAX as i64);
        match (user_id, group_id) {
            (Some(user_id), Some(group_id)) if input.errors.is_empty() => Ok(RoleAssignment {
                user_id,
                group_id: group_id as i32,
            }),
            _ => Err(ApiError::Validation(std::mem::take(&mut input.errors))),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"message": "User alice assigned to group organizer", "user_id": "0193a4c2-7d1e-7c3a-9b1f-2f0e5d6c7b8a", "group_id": 2}))]
pub struct RoleAssigned {
    /// `User <username> assigned to group <name>`.
    pub message: String,
    pub user_id: Uuid,
    pub group_id: i32,
}

/// A group id in a path: anything but a positive integer names nothing.
fn group_id(raw: &str) -> ApiResult<i32> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// List groups (superuser)
#[utoipa::path(
    get, path = "/api/groups", tag = "groups", operation_id = "groups_list",
    params(Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of groups", body = GroupList),
        (status = 403, description = "Not allowed"),
    )
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    RawQuery(raw): RawQuery,
    SentUri(uri): SentUri,
    origin: Origin,
) -> ApiResult<Json<GroupList>> {
    let query = QueryParams::parse(raw.as_deref());
    let page = domain::list(&state, &caller, page_request(&query)).await?;
    Ok(Json(GroupList::new(page, GroupOut::from, &uri, &origin)))
}

/// Create a group (superuser)
#[utoipa::path(
    post, path = "/api/groups", tag = "groups", operation_id = "groups_create",
    request_body = GroupWrite,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Created", body = GroupOut),
        (status = 403, description = "Not allowed"),
    )
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<GroupOut>)> {
    domain::authorize(&caller)?;
    let mut input = body.input(false)?;
    let name = input.text("name", Text::required(MAX_NAME));
    if let Some(name) = &name {
        domain::check_name(&state, name, None, &mut input.errors).await?;
    }
    let Some(write) = name
        .map(|name| GroupWrite { name })
        .filter(|_| input.errors.is_empty())
    else {
        return Err(ApiError::Validation(input.errors));
    };
    let created = domain::create(&state, &caller, write.name).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Read a group (superuser)
#[utoipa::path(
    get, path = "/api/groups/{id}", tag = "groups", operation_id = "groups_retrieve",
    params(("id" = i32, Path, minimum = 1, description = GROUP_ID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The group", body = GroupOut),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such group"),
    )
)]
async fn retrieve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<GroupOut>> {
    domain::authorize(&caller)?;
    Ok(Json(
        domain::get(&state, &caller, group_id(&id)?).await?.into(),
    ))
}

/// Rename a group (superuser)
///
/// PUT requires `name`; PATCH may leave it out.
#[utoipa::path(
    method(put, patch), path = "/api/groups/{id}", tag = "groups", operation_id = "groups_update",
    params(("id" = i32, Path, minimum = 1, description = GROUP_ID)),
    request_body = GroupWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = GroupOut),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such group"),
    )
)]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    method: Method,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<GroupOut>> {
    let partial = method == Method::PATCH;
    domain::authorize(&caller)?;
    let found = domain::get(&state, &caller, group_id(&id)?).await?;
    let mut input = body.input(partial)?;
    let patch = GroupPatch {
        name: input.text("name", Text::required(MAX_NAME)),
    };
    if let Some(name) = &patch.name {
        domain::check_name(&state, name, Some(found.id), &mut input.errors).await?;
    }
    input.finish()?;
    let renamed = domain::rename(&state, &caller, found.id, patch.name).await?;
    Ok(Json(renamed.into()))
}

/// Delete a group and its memberships (superuser)
#[utoipa::path(
    delete, path = "/api/groups/{id}", tag = "groups", operation_id = "groups_destroy",
    params(("id" = i32, Path, minimum = 1, description = GROUP_ID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such group"),
    )
)]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    domain::authorize(&caller)?;
    domain::delete(&state, &caller, group_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Put a user in a group (superuser)
#[utoipa::path(
    post, path = "/api/assign-roles", tag = "groups", operation_id = "assign_roles_create",
    request_body = RoleAssignment,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Assigned", body = RoleAssigned),
        (status = 200, description = "Already a member; nothing changed", body = RoleAssigned),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "Unknown user or group", body = ErrorDetail,
            example = json!({"detail": "Not found."})),
    )
)]
async fn assign(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<RoleAssigned>)> {
    domain::authorize(&caller)?;
    let mut input = body.input(false)?;
    let wanted = RoleAssignment::read(&mut input)?;
    let done = domain::assign(&state, &caller, wanted.user_id, wanted.group_id).await?;
    let status = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(RoleAssigned {
            message: format!(
                "User {} assigned to group {}",
                done.user.username, done.group.name
            ),
            user_id: done.user.id,
            group_id: done.group.id,
        }),
    ))
}

/// Take a user out of a group (superuser)
#[utoipa::path(
    delete, path = "/api/assign-roles", tag = "groups", operation_id = "assign_roles_destroy",
    request_body = RoleAssignment,
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "Unknown user or group, or not a member", body = ErrorDetail,
            example = json!({"detail": "Not found."})),
    )
)]
async fn unassign(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<StatusCode> {
    domain::authorize(&caller)?;
    let mut input = body.input(false)?;
    let wanted = RoleAssignment::read(&mut input)?;
    domain::unassign(&state, &caller, wanted.user_id, wanted.group_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
