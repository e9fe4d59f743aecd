//! Accounts: users, their groups and roles, passwords, logins and tokens.

pub mod groups;
pub mod links;
pub mod login;
pub mod password;
pub mod sessions;

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use tracing::instrument;
use uuid::Uuid;

use super::events::like_contains;
use super::{Caller, DomainError, DomainResult, FieldErrors, Page, PageRequest};
use crate::cache::Family;
use crate::db::audit::{self, Action, Changes, Entry};
use crate::db::callers::CallerRow;
use crate::db::entities::{event, group, registration, user, user_group};
use crate::db::errors::is_fk_violation;
use crate::state::AppState;
use password::UserAttributes;

pub const MAX_USERNAME: usize = 150;
pub const MAX_EMAIL: usize = 254;
pub const MAX_NAME: usize = 150;

const USERNAME_TAKEN: &str = "A user with that username already exists.";
const EMAIL_TAKEN: &str = "A user with that email already exists.";

/// Why a verified token's user may not act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CallerRefused {
    Unknown,
    Inactive,
}

/// The caller behind a verified token, as it runs for every authenticated
/// request: from the cache (family `Accounts`, moved by every change to a
/// user's activation, superuser flag, groups or existence), else from the
/// database, read together with the other callers asked for at the same
/// time (`db::callers`).
pub async fn load_caller(
    state: &AppState,
    user_id: Uuid,
) -> DomainResult<Result<Caller, CallerRefused>> {
    let found = state
        .cache
        .shared(Family::Accounts, &format!("caller:{user_id}"), || async {
            Ok::<_, DomainError>(judge_caller(state.callers.get(user_id).await?))
        })
        .await?;
    Ok((*found).clone())
}

/// What a token's user id resolves to.
pub type LoadedCaller = Result<Caller, CallerRefused>;

/// A user as authentication read it, judged: active users act with their
/// groups' names lower-cased.
fn judge_caller(row: Option<CallerRow>) -> LoadedCaller {
    match row {
        None => Err(CallerRefused::Unknown),
        Some(row) if !row.is_active => Err(CallerRefused::Inactive),
        Some(row) => Ok(Caller {
            id: row.id,
            username: row.username,
            is_superuser: row.is_superuser,
            groups: row.groups.iter().map(|g| g.to_lowercase()).collect(),
            unverified: row.unverified,
        }),
    }
}

/// A user and the names of their groups, sorted.
#[derive(Debug, Clone)]
pub struct UserWithGroups {
    pub user: user::Model,
    pub groups: Vec<String>,
}

/// The names of a user's groups, sorted.
pub async fn group_names(
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> Result<Vec<String>, sea_orm::DbErr> {
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

async fn with_groups(state: &AppState, user: user::Model) -> DomainResult<UserWithGroups> {
    let groups = group_names(state.db.conn(), user.id).await?;
    Ok(UserWithGroups { user, groups })
}

/// The key a username is unique by (API.md §12): NFKC-normalised, then
/// lowercased, so `ｐｌａｉｎ`, `𝐩𝐥𝐚𝐢𝐧` and `Plain` are all `plain` and `ﬁsh`
/// is `fish` (Django's `normalize_username` does the same NFKC step).
pub(crate) fn username_key(username: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    username.nfkc().collect::<String>().to_lowercase()
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

/// A new account, from a sign-up or the CLI.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    pub is_superuser: bool,
    /// A sign-up: the address is to be verified through a mailed link.
    /// `None` (the CLI, admins): the account counts as verified.
    pub verification: Option<Verification>,
}

/// How a sign-up verifies its e-mail address.
#[derive(Debug, Clone)]
pub struct Verification {
    /// May not register before verifying (the console's sign-up); else
    /// only under `REQUIRE_EMAIL_VERIFICATION`.
    pub required: bool,
    /// Where the mailed link points (scheme, host, path prefix).
    pub origin: String,
}

/// The fields an account update sets (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

struct AccountFields<'a> {
    /// Fields being set (None: unchanged).
    username: Option<&'a str>,
    email: Option<&'a str>,
    password: Option<&'a str>,
    /// The values the account will have, for the password similarity rule.
    current_username: &'a str,
    current_email: &'a str,
    first_name: &'a str,
    last_name: &'a str,
}

/// Checks username/email format and uniqueness (excluding `except`), and the
/// password rules against the account's attributes.
async fn validate_account(
    db: &impl ConnectionTrait,
    errors: &mut FieldErrors,
    fields: &AccountFields<'_>,
    except: Option<Uuid>,
) -> DomainResult<()> {
    if let Some(username) = fields.username {
        if !valid_username(username) {
            errors.add(
                "username",
                "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
            );
        } else if taken(
            db,
            user::Column::UsernameKey,
            &username_key(username),
            except,
        )
        .await?
        {
            errors.add("username", USERNAME_TAKEN);
        }
    }
    if let Some(email) = fields.email {
        if !valid_email(email) {
            errors.add("email", "Enter a valid email address.");
        } else if taken(db, user::Column::EmailKey, &email.to_lowercase(), except).await? {
            errors.add("email", EMAIL_TAKEN);
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

async fn taken(
    db: &impl ConnectionTrait,
    column: user::Column,
    key: &str,
    except: Option<Uuid>,
) -> DomainResult<bool> {
    let mut query = user::Entity::find().filter(column.eq(key));
    if let Some(id) = except {
        query = query.filter(user::Column::Id.ne(id));
    }
    Ok(query.count(db).await? > 0)
}

/// A unique violation on `users` lost a race with another write: which
/// field it concerns, found by looking again (the index names differ between
/// backends; SQLite reports none).
async fn duplicate_account(state: &AppState, email: &str, except: Option<Uuid>) -> DomainError {
    let db = state.db.conn();
    match taken(db, user::Column::EmailKey, &email.to_lowercase(), except).await {
        Ok(true) => DomainError::Invalid(FieldErrors::single("email", EMAIL_TAKEN)),
        Ok(false) => DomainError::Invalid(FieldErrors::single("username", USERNAME_TAKEN)),
        Err(err) => err,
    }
}

/// Hashes a password off the async runtime (Argon2 takes tens of ms of CPU).
pub async fn hash_password(password: String) -> DomainResult<String> {
    Ok(password::hash_async(password).await?)
}

/// Checks a new account against every rule, adding to what the front door
/// already found (a field it reported is not judged again): one answer
/// names every bad field.
pub async fn validate_new_user(
    state: &AppState,
    new: &NewUser,
    mut errors: FieldErrors,
) -> DomainResult<()> {
    let db = state.db.conn();
    let mut too_long = FieldErrors::default();
    if new.username.chars().count() > MAX_USERNAME {
        too_long.add(
            "username",
            "Ensure this field has no more than 150 characters.",
        );
    }
    if new.email.chars().count() > MAX_EMAIL {
        too_long.add(
            "email",
            "Ensure this field has no more than 254 characters.",
        );
    }
    if !too_long.is_empty() {
        for (field, messages) in too_long.0 {
            for message in messages {
                errors.add(&field, message);
            }
        }
        return errors.into_result();
    }
    let judged = |field: &str| !errors.has(field);
    let fields = AccountFields {
        username: judged("username").then_some(new.username.as_str()),
        email: judged("email").then_some(new.email.as_str()),
        password: judged("password").then_some(new.password.as_str()),
        current_username: &new.username,
        current_email: &new.email,
        first_name: &new.first_name,
        last_name: &new.last_name,
    };
    validate_account(db, &mut errors, &fields, None).await?;
    errors.into_result()
}

/// Validates and stores a new account (sign-up and `createsuperuser`).
/// The audit log names `by`, or else the new account itself (a sign-up).
#[instrument(name = "create_user", skip_all)]
pub async fn create_user(
    state: &AppState,
    new: NewUser,
    by: Option<audit::Context>,
) -> DomainResult<user::Model> {
    validate_new_user(state, &new, FieldErrors::default()).await?;
    let hash = hash_password(new.password).await?;
    let model = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        username_key: Set(username_key(&new.username)),
        username: Set(new.username.clone()),
        email_key: Set(new.email.to_lowercase()),
        email: Set(new.email.clone()),
        password: Set(hash),
        first_name: Set(new.first_name.clone()),
        last_name: Set(new.last_name.clone()),
        is_superuser: Set(new.is_superuser),
        is_active: Set(true),
        date_joined: Set(crate::db::now()),
    };
    let txn = state.db.begin_write().await?;
    let created = match model.insert(&*txn).await {
        Ok(created) => created,
        Err(e) if crate::db::errors::is_unique_violation(&e) => {
            drop(txn);
            return Err(duplicate_account(state, &new.email, None).await);
        }
        Err(e) => return Err(e.into()),
    };
    let by = by.unwrap_or_else(|| audit::Context::user(created.id, &created.username));
    audit::record_one(&*txn, &by, Entry::created(Action::UserCreated, &created)).await?;
    if let Some(verification) = &new.verification {
        links::start_verification(
            &*txn,
            state,
            created.id,
            verification.required,
            &verification.origin,
        )
        .await?;
    }
    txn.commit().await?;
    tracing::info!(
        "User {} ({}) created{}",
        created.username,
        created.id,
        if created.is_superuser {
            " as a superuser"
        } else {
            ""
        }
    );
    Ok(created)
}

/// Superuser and admin (403 otherwise).
pub fn authorize_list(caller: &Caller) -> DomainResult<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// Accounts, oldest first; `search` matches username or e-mail.
pub async fn list_users(
    state: &AppState,
    caller: &Caller,
    search: Option<&str>,
    page: PageRequest,
) -> DomainResult<Page<UserWithGroups>> {
    authorize_list(caller)?;
    let mut select = user::Entity::find();
    if let Some(search) = search {
        let pattern = like_contains(search);
        select = select.filter(
            Condition::any()
                .add(Expr::col(user::Column::UsernameKey).like(pattern.clone()))
                .add(Expr::col(user::Column::EmailKey).like(pattern)),
        );
    }
    let select = select
        .order_by_asc(user::Column::DateJoined)
        .order_by_asc(user::Column::Id);
    let db = state.db.conn();
    let page = super::fetch_page(db, select, page).await?;
    let ids: Vec<Uuid> = page.items.iter().map(|u| u.id).collect();
    let mut groups = groups_of(db, &ids).await?;
    Ok(page.map(|user| UserWithGroups {
        groups: groups.remove(&user.id).unwrap_or_default(),
        user,
    }))
}

async fn find_user(state: &AppState, id: Uuid) -> DomainResult<user::Model> {
    user::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)
}

/// An account: self, admin and superuser may read it.
pub async fn get_user(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<UserWithGroups> {
    let found = find_user(state, id).await?;
    if found.id != caller.id && !caller.is_admin() {
        return Err(DomainError::Forbidden);
    }
    with_groups(state, found).await
}

/// Only the account's owner and superusers change or delete it (admins may
/// read accounts but not change them).
fn may_change_account(caller: &Caller, account: &user::Model) -> bool {
    caller.id == account.id || caller.is_superuser
}

/// The account the caller may change (404, then 403).
pub async fn get_changeable(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> DomainResult<user::Model> {
    let found = find_user(state, id).await?;
    if !may_change_account(caller, &found) {
        return Err(DomainError::Forbidden);
    }
    Ok(found)
}

/// Changes the fields given. `errors` carries what the front door already
/// found wrong, so one answer names every bad field. A person who changes
/// their own address is sent a verification link for it (`origin`: where
/// the link points); an address changed by an admin is theirs to vouch for.
#[instrument(name = "update_user", skip_all, fields(user = %caller.username))]
pub async fn update_user(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    changes: UserChanges,
    mut errors: FieldErrors,
    origin: &str,
) -> DomainResult<UserWithGroups> {
    let found = get_changeable(state, caller, id).await?;
    validate_account(
        state.db.conn(),
        &mut errors,
        &AccountFields {
            username: changes.username.as_deref(),
            email: changes.email.as_deref(),
            password: changes.password.as_deref(),
            current_username: changes.username.as_deref().unwrap_or(&found.username),
            current_email: changes.email.as_deref().unwrap_or(&found.email),
            first_name: changes.first_name.as_deref().unwrap_or(&found.first_name),
            last_name: changes.last_name.as_deref().unwrap_or(&found.last_name),
        },
        Some(found.id),
    )
    .await?;
    errors.into_result()?;

    let mut model: user::ActiveModel = found.clone().into();
    if let Some(username) = &changes.username {
        model.username_key = Set(username_key(username));
        model.username = Set(username.clone());
    }
    if let Some(email) = &changes.email {
        model.email_key = Set(email.to_lowercase());
        model.email = Set(email.clone());
    }
    if let Some(first_name) = changes.first_name {
        model.first_name = Set(first_name);
    }
    if let Some(last_name) = changes.last_name {
        model.last_name = Set(last_name);
    }
    // Setting the password the account already has is not a change.
    let new_password = match changes.password {
        Some(password) => {
            let same = matches!(
                password::verify_async(password.clone(), found.password.clone()).await?,
                password::Verified::Yes | password::Verified::YesRehash
            );
            (!same).then_some(password)
        }
        None => None,
    };
    let password_changed = new_password.is_some();
    if let Some(password) = new_password {
        model.password = Set(hash_password(password).await?);
    }
    let txn = state.db.begin_write().await?;
    if password_changed {
        // A new password signs out every browser of the account and every
        // refresh token issued before it (API.md §12).
        sessions::end_all_for(&*txn, found.id).await?;
        login::password_changed(&*txn, found.id).await?;
    }
    let updated = match model.update(&*txn).await {
        Ok(updated) => updated,
        Err(e) if crate::db::errors::is_unique_violation(&e) => {
            drop(txn);
            let email = changes.email.as_deref().unwrap_or(&found.email);
            return Err(duplicate_account(state, email, Some(found.id)).await);
        }
        Err(e) => return Err(e.into()),
    };
    if updated.email_key != found.email_key && caller.id == found.id {
        links::reverify_changed_address(&*txn, state, found.id, origin).await?;
    }
    // A new password has its own entry; the update's names the other fields.
    let mut entries = Vec::new();
    let others = Changes::updated(&found, &updated).without("password");
    if !others.is_empty() || !password_changed {
        entries.push(Entry::of(Action::UserUpdated, &updated, others));
    }
    if password_changed {
        entries.push(Entry::of(
            Action::UserPasswordChanged,
            &updated,
            Changes::none().with("password", found.password.clone(), updated.password.clone()),
        ));
    }
    audit::record(&*txn, &caller.audit(), entries).await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Accounts]).await;
    tracing::info!("User {} updated by {}", updated.id, caller.username);
    with_groups(state, updated).await
}

/// Deletes an account with its registrations (their places released) and
/// payments. Refused while the user organises events.
#[instrument(name = "delete_user", skip_all, fields(user = %caller.username))]
pub async fn delete_user(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<()> {
    let found = get_changeable(state, caller, id).await?;
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
        return Err(DomainError::Conflict(format!(
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
        super::registrations::delete_and_release(&*txn, registration_id).await?;
    }
    // Seats offered to them from waiting lists go back too.
    crate::db::waitlist::release_offers_of(&*txn, found.id).await?;
    match user::Entity::delete_by_id(found.id).exec(&*txn).await {
        Ok(_) => {}
        // An event was assigned to the user meanwhile (RESTRICT foreign key).
        Err(e) if is_fk_violation(&e) => {
            return Err(DomainError::Conflict(
                "This user organises events; reassign or delete them first.".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::deleted(Action::UserDeleted, &found),
    )
    .await?;
    txn.commit().await?;
    // The user's registrations released their places.
    state
        .cache
        .invalidate(&[Family::Tickets, Family::Accounts])
        .await;
    tracing::info!(
        "User {} ({}) deleted by {}",
        found.username,
        found.id,
        caller.username
    );
    Ok(())
}

/// Accounts by id, for lists that show who did something.
pub async fn users_by_id(
    state: &AppState,
    ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, user::Model>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids.iter().copied()))
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect())
}

/// Activates or deactivates an account (superusers only; admins read
/// accounts but do not change them). A deactivated account can neither sign
/// in nor use its tokens, and every console session it had ends in the same
/// transaction. Nobody deactivates their own account (they would lock
/// themselves out): an error on `is_active`.
#[instrument(name = "set_user_active", skip_all, fields(user = %caller.username))]
pub async fn set_active(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    active: bool,
) -> DomainResult<user::Model> {
    let found = find_user(state, id).await?;
    if !caller.is_superuser {
        return Err(DomainError::Forbidden);
    }
    if !active && found.id == caller.id {
        return Err(DomainError::Invalid(FieldErrors::single(
            "is_active",
            "You cannot deactivate your own account.",
        )));
    }
    let txn = state.db.begin_write().await?;
    if !active {
        sessions::end_all_for(&*txn, found.id).await?;
    }
    let mut model: user::ActiveModel = found.clone().into();
    model.is_active = Set(active);
    let updated = model.update(&*txn).await?;
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::updated(Action::UserUpdated, &found, &updated),
    )
    .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Accounts]).await;
    tracing::info!(
        "User {} ({}) {} by {}",
        updated.id,
        updated.username,
        if active { "activated" } else { "deactivated" },
        caller.username
    );
    Ok(updated)
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
