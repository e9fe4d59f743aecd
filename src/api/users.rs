//! `/api/users/`: sign-up, the account list for staff, and each user's own
//! account.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use super::input::{Input, JsonBody, QueryParams, Text, format_datetime, like_contains, path_id};
use super::pagination::{envelope, fetch_page};
use super::registrations;
use crate::AppState;
use crate::auth::password::{self, UserAttributes};
use crate::auth::{AuthUser, CurrentUser};
use crate::db::entities::{event, group, registration, user, user_group};
use crate::error::{ApiError, ApiResult, FieldErrors, is_unique_violation};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/me", get(me))
        .route(
            "/users/{id}",
            get(retrieve).put(update).patch(update).delete(destroy),
        )
}

/// The public representation of an account.
pub fn user_json(u: &user::Model, groups: &[String]) -> Value {
    json!({
        "id": u.id.to_string(),
        "username": u.username,
        "email": u.email,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "groups": groups,
        "is_superuser": u.is_superuser,
        "date_joined": format_datetime(&u.date_joined),
    })
}

/// Group names for many users at once.
async fn groups_of(
    db: &impl ConnectionTrait,
    user_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<String>>, sea_orm::DbErr> {
    let mut by_user: HashMap<Uuid, Vec<String>> = HashMap::new();
    if user_ids.is_empty() {
        return Ok(by_user);
    }
    let memberships: Vec<(Uuid, i32)> = user_group::Entity::find()
        .select_only()
        .column(user_group::Column::UserId)
        .column(user_group::Column::GroupId)
        .filter(user_group::Column::UserId.is_in(user_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    let group_ids: Vec<i32> = memberships.iter().map(|(_, g)| *g).collect();
    let names: HashMap<i32, String> = group::Entity::find()
        .filter(group::Column::Id.is_in(group_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    for (user_id, group_id) in memberships {
        if let Some(name) = names.get(&group_id) {
            by_user.entry(user_id).or_default().push(name.clone());
        }
    }
    for names in by_user.values_mut() {
        names.sort();
    }
    Ok(by_user)
}

async fn user_response(db: &impl ConnectionTrait, u: &user::Model) -> ApiResult<Value> {
    let groups = crate::auth::group_names(db, u.id).await?;
    Ok(user_json(u, &groups))
}

/// Django's username rule: letters, digits and `@.+-_`.
fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'))
}

/// A pragmatic form of Django's `EmailValidator`.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().all(char::is_alphabetic) && tld.chars().count() >= 2);
    local_ok && domain_ok
}

/// The fields of a new account, already read from a request or the CLI.
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    pub is_superuser: bool,
}

/// Checks username/email format and uniqueness (excluding `except`), and the
/// password rules against the account's attributes.
async fn validate_account(
    db: &impl ConnectionTrait,
    errors: &mut FieldErrors,
    fields: &AccountFields<'_>,
    except: Option<Uuid>,
) -> ApiResult<()> {
    if let Some(username) = fields.username {
        if !valid_username(username) {
            errors.add(
                "username",
                "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
            );
        } else if taken(
            db,
            user::Column::UsernameKey,
            &username.to_lowercase(),
            except,
        )
        .await?
        {
            errors.add("username", "A user with that username already exists.");
        }
    }
    if let Some(email) = fields.email {
        if !valid_email(email) {
            errors.add("email", "Enter a valid email address.");
        } else if taken(db, user::Column::EmailKey, &email.to_lowercase(), except).await? {
            errors.add("email", "A user with that email already exists.");
        }
    }
    if let Some(pw) = fields.password {
        let attributes = UserAttributes {
            username: fields.current_username,
            first_name: fields.first_name,
            last_name: fields.last_name,
            email: fields.current_email,
        };
        for message in password::validate(pw, &attributes) {
            errors.add("password", message);
        }
    }
    Ok(())
}

struct AccountFields<'a> {
    /// Fields being set (None: unchanged or invalid).
    username: Option<&'a str>,
    email: Option<&'a str>,
    password: Option<&'a str>,
    /// The values the account will have, for the password similarity rule.
    current_username: &'a str,
    current_email: &'a str,
    first_name: &'a str,
    last_name: &'a str,
}

async fn taken(
    db: &impl ConnectionTrait,
    column: user::Column,
    key: &str,
    except: Option<Uuid>,
) -> ApiResult<bool> {
    let mut query = user::Entity::find().filter(column.eq(key));
    if let Some(id) = except {
        query = query.filter(user::Column::Id.ne(id));
    }
    Ok(query.count(db).await? > 0)
}

/// Maps a unique-index violation on `users` to the field it concerns.
fn duplicate_account_error(err: &sea_orm::DbErr) -> ApiError {
    let text = err.to_string();
    if text.contains("email") {
        ApiError::field("email", "A user with that email already exists.")
    } else {
        ApiError::field("username", "A user with that username already exists.")
    }
}

/// Hashes a password off the async runtime (Argon2 takes tens of ms of CPU).
pub async fn hash_password(password: String) -> ApiResult<String> {
    password::hash_async(password)
        .await
        .map_err(ApiError::Internal)
}

/// Validates and stores a new account (sign-up and `createsuperuser`).
pub async fn create_user(state: &AppState, new: NewUser) -> ApiResult<user::Model> {
    let db = state.db.conn();
    let mut errors = FieldErrors::default();
    if new.username.chars().count() > 150 {
        errors.add(
            "username",
            "Ensure this field has no more than 150 characters.",
        );
    }
    if new.email.chars().count() > 254 {
        errors.add(
            "email",
            "Ensure this field has no more than 254 characters.",
        );
    }
    if errors.is_empty() {
        validate_account(
            db,
            &mut errors,
            &AccountFields {
                username: Some(&new.username),
                email: Some(&new.email),
                password: Some(&new.password),
                current_username: &new.username,
                current_email: &new.email,
                first_name: &new.first_name,
                last_name: &new.last_name,
            },
            None,
        )
        .await?;
    }
    errors.into_result()?;
    let hash = hash_password(new.password).await?;
    let model = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        username_key: Set(new.username.to_lowercase()),
        username: Set(new.username),
        email_key: Set(new.email.to_lowercase()),
        email: Set(new.email),
        password: Set(hash),
        first_name: Set(new.first_name),
        last_name: Set(new.last_name),
        is_superuser: Set(new.is_superuser),
        is_active: Set(true),
        date_joined: Set(crate::db::now()),
    };
    let txn = state.db.begin_write().await?;
    let created = match model.insert(&*txn).await {
        Ok(created) => created,
        Err(e) if is_unique_violation(&e) => return Err(duplicate_account_error(&e)),
        Err(e) => return Err(e.into()),
    };
    txn.commit().await?;
    Ok(created)
}

#[instrument(name = "create", skip_all)]
async fn create(
    State(state): State<AppState>,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut input = body.input(false)?;
    let username = input.text("username", Text::required(150));
    let email = input.text("email", Text::required(254));
    let password = input.password("password", true);
    let first_name = input.text("first_name", Text::optional(150));
    let last_name = input.text("last_name", Text::optional(150));
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        // Report the format errors of the fields that were given, too.
        return Err(ApiError::Validation(input.errors));
    };
    input.finish()?;
    let created = create_user(
        &state,
        NewUser {
            username,
            email,
            password,
            first_name: first_name.unwrap_or_default(),
            last_name: last_name.unwrap_or_default(),
            is_superuser: false,
        },
    )
    .await?;
    tracing::info!("User {} ({}) signed up", created.username, created.id);
    Ok((StatusCode::CREATED, Json(user_json(&created, &[]))))
}

#[instrument(name = "list", skip_all, fields(user = %caller.username))]
async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    if !caller.is_admin() {
        return Err(ApiError::Forbidden);
    }
    let query = QueryParams::parse(raw.as_deref());
    let mut errors = FieldErrors::default();
    let mut select = user::Entity::find();
    if let Some(search) = query.text("search", &mut errors) {
        let pattern = like_contains(search);
        select = select.filter(
            Condition::any()
                .add(Expr::col(user::Column::UsernameKey).like(pattern.clone()))
                .add(Expr::col(user::Column::EmailKey).like(pattern)),
        );
    }
    errors.into_result()?;
    let select = select
        .order_by_asc(user::Column::DateJoined)
        .order_by_asc(user::Column::Id);
    let db = state.db.conn();
    let (rows, page) = fetch_page(db, select, &query).await?;
    let ids: Vec<Uuid> = rows.iter().map(|u| u.id).collect();
    let groups = groups_of(db, &ids).await?;
    let items = rows
        .iter()
        .map(|u| user_json(u, groups.get(&u.id).map(Vec::as_slice).unwrap_or(&[])))
        .collect();
    Ok(Json(envelope("users", items, &page, &uri, &headers)))
}

async fn me(State(state): State<AppState>, AuthUser(caller): AuthUser) -> ApiResult<Json<Value>> {
    let found = user::Entity::find_by_id(caller.id)
        .one(state.db.conn())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(user_response(state.db.conn(), &found).await?))
}

async fn find_user(state: &AppState, raw_id: &str) -> ApiResult<user::Model> {
    let id = path_id(raw_id)?;
    user::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(ApiError::NotFound)
}

async fn retrieve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let found = find_user(&state, &id).await?;
    if found.id != caller.id && !caller.is_admin() {
        return Err(ApiError::Forbidden);
    }
    Ok(Json(user_response(state.db.conn(), &found).await?))
}

/// Only the account's owner and superusers change or delete it (admins may
/// read accounts but not change them).
fn may_change_account(caller: &CurrentUser, account: &user::Model) -> bool {
    caller.id == account.id || caller.is_superuser
}

/// PUT and PATCH are both partial: only the fields sent change.
#[instrument(name = "update", skip_all, fields(user = %caller.username))]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let found = find_user(&state, &id).await?;
    if !may_change_account(&caller, &found) {
        return Err(ApiError::Forbidden);
    }
    let mut input: Input = body.input(true)?;
    let username = input.text("username", Text::required(150));
    let email = input.text("email", Text::required(254));
    let password = input.password("password", false);
    let first_name = input.text("first_name", Text::optional(150));
    let last_name = input.text("last_name", Text::optional(150));
    let mut errors = std::mem::take(&mut input.errors);
    validate_account(
        state.db.conn(),
        &mut errors,
        &AccountFields {
            username: username.as_deref(),
            email: email.as_deref(),
            password: password.as_deref(),
            current_username: username.as_deref().unwrap_or(&found.username),
            current_email: email.as_deref().unwrap_or(&found.email),
            first_name: first_name.as_deref().unwrap_or(&found.first_name),
            last_name: last_name.as_deref().unwrap_or(&found.last_name),
        },
        Some(found.id),
    )
    .await?;
    errors.into_result()?;

    let mut model: user::ActiveModel = found.clone().into();
    if let Some(username) = username {
        model.username_key = Set(username.to_lowercase());
        model.username = Set(username);
    }
    if let Some(email) = email {
        model.email_key = Set(email.to_lowercase());
        model.email = Set(email);
    }
    if let Some(first_name) = first_name {
        model.first_name = Set(first_name);
    }
    if let Some(last_name) = last_name {
        model.last_name = Set(last_name);
    }
    if let Some(password) = password {
        model.password = Set(hash_password(password).await?);
    }
    let txn = state.db.begin_write().await?;
    let updated = match model.update(&*txn).await {
        Ok(updated) => updated,
        Err(e) if is_unique_violation(&e) => return Err(duplicate_account_error(&e)),
        Err(e) => return Err(e.into()),
    };
    txn.commit().await?;
    tracing::info!("User {} updated by {}", updated.id, caller.username);
    Ok(Json(user_response(state.db.conn(), &updated).await?))
}

#[instrument(name = "destroy", skip_all, fields(user = %caller.username))]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let found = find_user(&state, &id).await?;
    if !may_change_account(&caller, &found) {
        return Err(ApiError::Forbidden);
    }
    let txn = state.db.begin_write().await?;
    // Lock the account (PostgreSQL; SQLite's writer lock already serialises):
    // a registration for it cannot commit between the release below and the
    // cascade, which would leave its place counted.
    user::Entity::find_by_id(found.id)
        .lock_exclusive()
        .one(&*txn)
        .await?;
    let organised = event::Entity::find()
        .filter(event::Column::OrganizerId.eq(found.id))
        .count(&*txn)
        .await?;
    if organised > 0 {
        return Err(ApiError::Conflict(format!(
            "This user organises {organised} event(s); reassign or delete them first."
        )));
    }
    // Give back the places the user's registrations held.
    let registration_ids: Vec<Uuid> = registration::Entity::find()
        .select_only()
        .column(registration::Column::Id)
        .filter(registration::Column::UserId.eq(found.id))
        .into_tuple()
        .all(&*txn)
        .await?;
    for registration_id in registration_ids {
        registrations::delete_and_release(&*txn, registration_id).await?;
    }
    let deleted = user::Entity::delete_by_id(found.id).exec(&*txn).await;
    match deleted {
        Ok(_) => {}
        // An event was assigned to the user meanwhile (RESTRICT foreign key).
        Err(e) if crate::error::is_fk_violation(&e) => {
            return Err(ApiError::Conflict(
                "This user organises events; reassign or delete them first.".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    txn.commit().await?;
    // The user's registrations released their places.
    state
        .cache
        .invalidate(&[crate::cache::Family::Tickets])
        .await;
    tracing::info!(
        "User {} ({}) deleted by {}",
        found.username,
        found.id,
        caller.username
    );
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_emails() {
        assert!(valid_username("alice.b+c-d_e@x"));
        assert!(!valid_username("alice smith"));
        assert!(!valid_username("alice!"));
        assert!(valid_email("aras@example.com"));
        assert!(valid_email("a.b+tag@mail.example.co.id"));
        assert!(!valid_email("not-an-email"));
        assert!(!valid_email("a@b"));
        assert!(!valid_email("a@@b.com"));
        assert!(!valid_email("a b@c.com"));
    }
}
