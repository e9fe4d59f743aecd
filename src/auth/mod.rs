//! Who is calling, and what they may do.
//!
//! The `authenticate` middleware resolves the bearer token on every request —
//! public routes too, as DRF does: a bad token is a 401 anywhere. Handlers
//! then take `AuthUser` (must be logged in) or `MaybeUser` (may be anonymous).

pub mod jwt;
pub mod password;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sea_orm::{ColumnTrait, EntityTrait, JoinType, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::AppState;
use crate::db::entities::{group, user, user_group};
use crate::error::ApiError;
use jwt::TokenType;

/// The authenticated caller and their roles.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub id: Uuid,
    pub username: String,
    pub is_superuser: bool,
    /// Lower-cased names of the caller's groups.
    pub groups: Vec<String>,
}

impl CurrentUser {
    fn in_group(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g == name)
    }

    /// Superuser or member of `admin`: may manage anything but groups.
    pub fn is_admin(&self) -> bool {
        self.is_superuser || self.in_group("admin")
    }

    /// May create events: superuser, admin or organizer.
    pub fn can_create_events(&self) -> bool {
        self.is_admin() || self.in_group("organizer")
    }

    /// "Manages an event": superuser, admin, or the event's organizer.
    pub fn manages_event(&self, organizer_id: Uuid) -> bool {
        self.is_admin() || self.id == organizer_id
    }
}

/// The result of authentication, stored in the request's extensions.
#[derive(Clone)]
struct Authentication(Option<CurrentUser>);

/// The caller, who must be authenticated (else 401).
pub struct AuthUser(pub CurrentUser);

/// The caller, or `None` for an anonymous request.
pub struct MaybeUser(pub Option<CurrentUser>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(MaybeUser(
            parts
                .extensions
                .get::<Authentication>()
                .and_then(|a| a.0.clone()),
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match MaybeUser::from_request_parts(parts, state).await?.0 {
            Some(user) => Ok(AuthUser(user)),
            None => Err(ApiError::not_authenticated()),
        }
    }
}

/// Middleware: resolves `Authorization: Bearer <access token>`.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match resolve(&state, req.headers().get(AUTHORIZATION)).await {
        Ok(user) => {
            let user_id = user.as_ref().map(|u| u.id);
            req.extensions_mut().insert(Authentication(user));
            let mut response = next.run(req).await;
            if let Some(id) = user_id {
                response
                    .extensions_mut()
                    .insert(crate::api::AccessLogUser(id));
            }
            response
        }
        Err(err) => err.into_response(),
    }
}

/// Longest `Authorization` header considered; a JWT of ours is ~300 bytes.
const MAX_AUTHORIZATION_LEN: usize = 4096;

async fn resolve(
    state: &AppState,
    header: Option<&axum::http::HeaderValue>,
) -> Result<Option<CurrentUser>, ApiError> {
    let Some(header) = header else {
        return Ok(None);
    };
    let bad_header = |detail: &str| ApiError::Unauthorized {
        detail: detail.to_string(),
        code: Some("token_not_valid"),
    };
    if header.len() > MAX_AUTHORIZATION_LEN {
        return Err(bad_header("Authorization header is too long."));
    }
    let value = header
        .to_str()
        .map_err(|_| bad_header("Authorization header is not valid text."))?;
    let mut parts = value.split_whitespace();
    let (Some(scheme), token, extra) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad_header(
            "Authorization header must contain two space-delimited values",
        ));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(bad_header(
            "Authorization header must use the Bearer scheme.",
        ));
    }
    let (Some(token), None) = (token, extra) else {
        return Err(bad_header(
            "Authorization header must contain two space-delimited values",
        ));
    };
    let Some((_, user_id)) = state.jwt.verify(token, TokenType::Access) else {
        return Err(ApiError::token_not_valid());
    };
    let user = load_current_user(state, user_id).await?;
    Ok(Some(user))
}

/// Loads a user and their groups for a verified token: one round trip (the
/// user left-joined to their groups), as it runs for every authenticated
/// request.
async fn load_current_user(state: &AppState, user_id: Uuid) -> Result<CurrentUser, ApiError> {
    let rows: Vec<(Uuid, String, bool, bool, Option<String>)> = user::Entity::find_by_id(user_id)
        .select_only()
        .column(user::Column::Id)
        .column(user::Column::Username)
        .column(user::Column::IsSuperuser)
        .column(user::Column::IsActive)
        .column(group::Column::Name)
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
        .into_tuple()
        .all(state.db.conn())
        .await?;
    let Some((id, username, is_superuser, is_active, _)) = rows.first().cloned() else {
        return Err(ApiError::Unauthorized {
            detail: "User not found".into(),
            code: Some("token_not_valid"),
        });
    };
    if !is_active {
        return Err(ApiError::Unauthorized {
            detail: "User is inactive".into(),
            code: Some("token_not_valid"),
        });
    }
    let groups = rows
        .into_iter()
        .filter_map(|(.., group)| group.map(|g| g.to_lowercase()))
        .collect();
    Ok(CurrentUser {
        id,
        username,
        is_superuser,
        groups,
    })
}

/// The names of a user's groups, sorted.
pub async fn group_names(
    db: &impl sea_orm::ConnectionTrait,
    user_id: Uuid,
) -> Result<Vec<String>, sea_orm::DbErr> {
    // One round trip: this runs for every authenticated request.
    let mut names: Vec<String> = group::Entity::find()
        .select_only()
        .column(group::Column::Name)
        .filter(
            group::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(user_group::Column::GroupId)
                    .from(user_group::Entity)
                    .and_where(user_group::Column::UserId.eq(user_id))
                    .to_owned(),
            ),
        )
        .into_tuple()
        .all(db)
        .await?;
    names.sort();
    Ok(names)
}
