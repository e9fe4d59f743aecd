//! `/api/users/`: sign-up, the account list for staff, and each user's own
//! account.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::body::{JsonBody, path_id};
use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, SentUri};
use super::pagination::{Origin, Pagination, UserList, page_request};
use super::schemas::{FieldErrorsBody, ID_UUID, datetime};
use crate::domain::FieldErrors;
use crate::domain::accounts::{
    self as domain, MAX_EMAIL, MAX_NAME, MAX_USERNAME, NewUser, UserChanges, UserWithGroups,
};
use crate::input::{Input, QueryParams, Text};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(me))
        .routes(routes!(retrieve, update, destroy))
}

/// An account (never its password or hash).
#[derive(Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserOut {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// Names of the groups the user belongs to (`admin`, `organizer`, …).
    pub groups: Vec<String>,
    pub is_superuser: bool,
    #[serde(serialize_with = "datetime")]
    pub date_joined: DateTime<Utc>,
}

impl From<UserWithGroups> for UserOut {
    fn from(u: UserWithGroups) -> Self {
        UserOut {
            id: u.user.id,
            username: u.user.username,
            email: u.user.email,
            first_name: u.user.first_name,
            last_name: u.user.last_name,
            groups: u.groups,
            is_superuser: u.user.is_superuser,
            date_joined: u.user.date_joined,
        }
    }
}

/// Sign-up. The password must have at least 8 characters, not be entirely
/// numeric, not be a common password, and not be too similar to the
/// username or email.
#[derive(ToSchema)]
pub struct UserCreate {
    /// Letters, digits and `@.+-_`; unique case-insensitively.
    #[schema(min_length = 1, max_length = 150, pattern = r"^[\w.@+-]+$")]
    pub username: String,
    #[schema(format = Password, min_length = 8, max_length = 4096, pattern = r"\D")]
    pub password: String,
    /// Unique case-insensitively.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(max_length = 150, required = false, value_type = String)]
    pub first_name: Option<String>,
    #[schema(max_length = 150, required = false, value_type = String)]
    pub last_name: Option<String>,
}

/// A change to an account: only the fields sent change (for PUT too).
#[derive(ToSchema)]
pub struct UserUpdate {
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r"^[\w.@+-]+$",
        value_type = String,
        required = false
    )]
    pub username: Option<String>,
    #[schema(format = Email, max_length = 254, value_type = String, required = false)]
    pub email: Option<String>,
    #[schema(format = Password, min_length = 8, max_length = 4096, pattern = r"\D", value_type = String, required = false)]
    pub password: Option<String>,
    #[schema(max_length = 150, value_type = String, required = false)]
    pub first_name: Option<String>,
    #[schema(max_length = 150, value_type = String, required = false)]
    pub last_name: Option<String>,
}

impl UserUpdate {
    /// Reads the fields; `required` marks username, email and password as
    /// required (sign-up).
    fn read(input: &mut Input, required: bool) -> Self {
        UserUpdate {
            username: input.text("username", Text::required(MAX_USERNAME)),
            email: input.text("email", Text::required(MAX_EMAIL)),
            password: input.password("password", required),
            first_name: input.text("first_name", Text::optional(MAX_NAME)),
            last_name: input.text("last_name", Text::optional(MAX_NAME)),
        }
    }
}

/// `search`: part of a username or email.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilters {
    /// Username or email contains (case-insensitive).
    pub search: Option<String>,
}

/// List users (superuser, admin)
#[utoipa::path(
    get, path = "/api/users", tag = "users", operation_id = "users_list",
    params(UserFilters, Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of users", body = UserList),
        (status = 400, description = "A bad filter value", body = FieldErrorsBody,
            example = json!({"search": ["Null characters are not allowed."]})),
        (status = 403, description = "Not allowed"),
    )
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    RawQuery(raw): RawQuery,
    SentUri(uri): SentUri,
    origin: Origin,
) -> ApiResult<Json<UserList>> {
    domain::authorize_list(&caller)?;
    let query = QueryParams::parse(raw.as_deref());
    let mut errors = FieldErrors::default();
    let filters = UserFilters {
        search: query.text("search", &mut errors).map(str::to_owned),
    };
    errors.into_result()?;
    let page = domain::list_users(
        &state,
        &caller,
        filters.search.as_deref(),
        page_request(&query),
    )
    .await?;
    Ok(Json(UserList::new(page, UserOut::from, &uri, &origin)))
}

/// Sign up (no authentication needed)
#[utoipa::path(
    post, path = "/api/users", tag = "users", operation_id = "users_create",
    request_body = UserCreate,
    security((), ("jwt" = [])),
    responses(
        (status = 201, description = "Created", body = UserOut),
    )
)]
async fn create(
    State(state): State<AppState>,
    origin: Origin,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<UserOut>)> {
    let mut input = body.input(false)?;
    let fields = UserUpdate::read(&mut input, true);
    // Report the format errors of the fields that were given, too.
    let (Some(username), Some(email), Some(password)) =
        (fields.username, fields.email, fields.password)
    else {
        return Err(ApiError::Validation(input.errors));
    };
    input.finish()?;
    let signup = UserCreate {
        username,
        password,
        email,
        first_name: fields.first_name,
        last_name: fields.last_name,
    };
    let created = domain::create_user(
        &state,
        NewUser {
            username: signup.username,
            email: signup.email,
            password: signup.password,
            first_name: signup.first_name.unwrap_or_default(),
            last_name: signup.last_name.unwrap_or_default(),
            is_superuser: false,
            verification: Some(domain::Verification {
                required: false,
                origin: origin.as_str().to_owned(),
            }),
        },
        None,
    )
    .await?;
    let out = UserWithGroups {
        user: created,
        groups: Vec::new(),
    };
    Ok((StatusCode::CREATED, Json(out.into())))
}

/// The authenticated user's own record
#[utoipa::path(
    get, path = "/api/users/me", tag = "users", operation_id = "users_me",
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The caller's account", body = UserOut),
    )
)]
async fn me(State(state): State<AppState>, AuthUser(caller): AuthUser) -> ApiResult<Json<UserOut>> {
    Ok(Json(
        domain::get_user(&state, &caller, caller.id).await?.into(),
    ))
}

/// Read a user (self, admin, superuser)
#[utoipa::path(
    get, path = "/api/users/{id}", tag = "users", operation_id = "users_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The user", body = UserOut),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such user"),
    )
)]
async fn retrieve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<UserOut>> {
    Ok(Json(
        domain::get_user(&state, &caller, path_id(&id)?)
            .await?
            .into(),
    ))
}

/// Change a user (self, superuser)
///
/// PUT and PATCH are both partial: only the fields sent change.
#[utoipa::path(
    method(put, patch), path = "/api/users/{id}", tag = "users", operation_id = "users_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = UserUpdate,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = UserOut),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such user"),
    )
)]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    origin: Origin,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<UserOut>> {
    // 404 and 403 before the body is looked at (DRF's order).
    let found = domain::get_changeable(&state, &caller, path_id(&id)?).await?;
    let mut input = body.input(true)?;
    let fields = UserUpdate::read(&mut input, false);
    let changes = UserChanges {
        username: fields.username,
        email: fields.email,
        password: fields.password,
        first_name: fields.first_name,
        last_name: fields.last_name,
    };
    let errors = std::mem::take(&mut input.errors);
    let updated =
        domain::update_user(&state, &caller, found.id, changes, errors, origin.as_str()).await?;
    Ok(Json(updated.into()))
}

/// Delete a user (self, superuser)
///
/// Their registrations and payments go with them. A user who organises
/// events gets 409 until the events are reassigned or deleted.
#[utoipa::path(
    delete, path = "/api/users/{id}", tag = "users", operation_id = "users_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such user"),
        (status = 409, description = "The user organises events",
            example = json!({"detail": "This user organises 2 event(s); reassign or delete them first."})),
    )
)]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    domain::delete_user(&state, &caller, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
