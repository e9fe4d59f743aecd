//! Webhook endpoints (API.md §11): who may keep which, their secrets, the
//! delivery log, retries and test messages. The messages themselves are
//! made from audit entries (`db::webhooks`) and sent by the worker
//! (`jobs::webhooks`).
//!
//! Superusers and admins keep endpoints for every event; organisers for
//! their own events (one, or all of theirs). Everyone else: 403. An
//! endpoint is its owner's: others (admins aside) get 403.

use base64::Engine;
use chrono::Utc;
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use super::{Caller, DomainError, DomainResult, FieldErrors, Page, PageRequest};
use crate::db::audit::{self, Action, Changes, Entry};
use crate::db::entities::{event, outbox, webhook_attempt, webhook_endpoint, webhook_type};
use crate::db::webhooks::{dedupe_key, job};
use crate::state::AppState;

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: chrono::Duration = chrono::Duration::hours(24);

/// The entities whose actions may be subscribed to (`<entity>.*`).
const ENTITIES: &[&str] = &[
    "event",
    "ticket",
    "registration",
    "payment",
    "checkin",
    "poster",
    "user",
    "group",
    "role",
    "job",
    "signing_key",
    "data",
];

/// An endpoint with its type patterns.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub endpoint: webhook_endpoint::Model,
    pub types: Vec<String>,
}

/// A new endpoint, as sent.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub event_id: Option<Uuid>,
    pub types: Vec<String>,
    pub description: String,
    pub enabled: bool,
}

/// The fields to change (`None`: unchanged; `event_id: Some(None)`: all
/// events).
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub event_id: Option<Option<Uuid>>,
    pub types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A fresh signing secret: `whsec_` + base64 of 32 random bytes.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Superuser, admin or organiser (403 otherwise).
async fn authorize(state: &AppState, caller: &Caller) -> DomainResult<()> {
    if caller.is_admin() {
        return Ok(());
    }
    super::tickets::authorize_create(state, caller)
        .await
        .map_err(|_| DomainError::Forbidden)
}

/// The type patterns as sent, checked and lower-cased: `*`,
/// `<entity>.*` or a known action.
fn check_types(types: &[String], errors: &mut FieldErrors) -> Vec<String> {
    if types.is_empty() {
        errors.add("types", "Name at least one message type, or \"*\" for all.");
        return Vec::new();
    }
    let mut checked: Vec<String> = Vec::new();
    for raw in types {
        let pattern = raw.trim().to_lowercase();
        let known = pattern == "*"
            || pattern
                .strip_suffix(".*")
                .is_some_and(|entity| ENTITIES.contains(&entity))
            || Action::parse(&pattern).is_some_and(|a| !a.as_str().starts_with("webhook."));
        if !known {
            errors.add("types", format!("\"{raw}\" is not a message type."));
        } else if !checked.contains(&pattern) {
            checked.push(pattern);
        }
    }
    checked
}

fn check_url(state: &AppState, url: &str, errors: &mut FieldErrors) {
    if url.chars().count() > 2000 {
        errors.add("url", "Ensure this field has no more than 2000 characters.");
    } else if let Some(why) =
        crate::jobs::webhooks::refusal(url, state.config.webhook_allow_private)
    {
        errors.add("url", why);
    }
}

/// The event an endpoint is scoped to: it must exist (400 on `event`) and
/// the caller must manage it (403).
async fn check_event(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
    errors: &mut FieldErrors,
) -> DomainResult<()> {
    match event::Entity::find_by_id(event_id)
        .one(state.db.conn())
        .await?
    {
        None => {
            errors.add("event", "No event with this id.");
            Ok(())
        }
        Some(e) if caller.manages_event(e.organizer_id) => Ok(()),
        Some(_) => Err(DomainError::Forbidden),
    }
}

async fn types_of(state: &AppState, endpoint: Uuid) -> DomainResult<Vec<String>> {
    let mut types: Vec<String> = webhook_type::Entity::find()
        .filter(webhook_type::Column::EndpointId.eq(endpoint))
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(|t| t.pattern)
        .collect();
    types.sort();
    Ok(types)
}

async fn set_types(
    db: &impl sea_orm::ConnectionTrait,
    endpoint: Uuid,
    types: &[String],
) -> DomainResult<()> {
    webhook_type::Entity::delete_many()
        .filter(webhook_type::Column::EndpointId.eq(endpoint))
        .exec(db)
        .await?;
    webhook_type::Entity::insert_many(types.iter().map(|p| webhook_type::ActiveModel {
        endpoint_id: Set(endpoint),
        pattern: Set(p.clone()),
    }))
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The caller's endpoints (all of them for superuser and admin), newest
/// first.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    request: PageRequest,
) -> DomainResult<Page<Webhook>> {
    authorize(state, caller).await?;
    let mut select = webhook_endpoint::Entity::find();
    if !caller.is_admin() {
        select = select.filter(webhook_endpoint::Column::OwnerId.eq(caller.id));
    }
    let select = select
        .order_by_desc(webhook_endpoint::Column::CreatedAt)
        .order_by_desc(webhook_endpoint::Column::Id);
    let page = super::fetch_page(state.db.conn(), select, request).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for endpoint in page.items.iter().cloned() {
        let types = types_of(state, endpoint.id).await?;
        items.push(Webhook { endpoint, types });
    }
    Ok(page.with_items(items))
}

/// One endpoint: 404 when unknown, 403 when not the caller's (admins see
/// all).
pub async fn get(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<Webhook> {
    authorize(state, caller).await?;
    let endpoint = webhook_endpoint::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)?;
    if !caller.is_admin() && endpoint.owner_id != caller.id {
        return Err(DomainError::Forbidden);
    }
    let types = types_of(state, endpoint.id).await?;
    Ok(Webhook { endpoint, types })
}

/// Adds an endpoint; its secret is in the answer, this once.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    new: NewWebhook,
    mut errors: FieldErrors,
) -> DomainResult<Webhook> {
    authorize(state, caller).await?;
    check_url(state, &new.url, &mut errors);
    let types = check_types(&new.types, &mut errors);
    if let Some(event_id) = new.event_id {
        check_event(state, caller, event_id, &mut errors).await?;
    }
    errors.into_result()?;
    let now = crate::db::now();
    let model = webhook_endpoint::ActiveModel {
        id: Set(Uuid::now_v7()),
        owner_id: Set(caller.id),
        url: Set(new.url),
        event_id: Set(new.event_id),
        description: Set(new.description),
        enabled: Set(new.enabled),
        disabled_reason: Set(None),
        all_events: Set(caller.is_admin()),
        secret: Set(new_secret()),
        previous_secret: Set(None),
        previous_secret_until: Set(None),
        first_failure_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let txn = state.db.begin_write().await?;
    let created = model.insert(&*txn).await?;
    set_types(&*txn, created.id, &types).await?;
    let entry = Entry::created(Action::WebhookCreated, &created);
    audit::record_one(&*txn, &caller.audit(), entry).await?;
    txn.commit().await?;
    tracing::info!(
        "Webhook endpoint {} ({}) added by {}",
        created.id,
        crate::db::webhooks::redacted_url(&created.url),
        caller.username
    );
    Ok(Webhook {
        endpoint: created,
        types,
    })
}

/// Changes an endpoint. Enabling it again clears why it was disabled.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    changes: WebhookChanges,
    mut errors: FieldErrors,
) -> DomainResult<Webhook> {
    let found = get(state, caller, id).await?;
    if let Some(url) = &changes.url {
        check_url(state, url, &mut errors);
    }
    let types = changes
        .types
        .as_ref()
        .map(|types| check_types(types, &mut errors));
    if let Some(Some(event_id)) = changes.event_id {
        check_event(state, caller, event_id, &mut errors).await?;
    }
    errors.into_result()?;
    let before = found.endpoint.clone();
    let mut model: webhook_endpoint::ActiveModel = found.endpoint.into();
    if let Some(url) = changes.url {
        model.url = Set(url);
    }
    if let Some(event_id) = changes.event_id {
        model.event_id = Set(event_id);
    }
    if let Some(description) = changes.description {
        model.description = Set(description);
    }
    if let Some(enabled) = changes.enabled {
        model.enabled = Set(enabled);
        if enabled {
            model.disabled_reason = Set(None);
            model.first_failure_at = Set(None);
        }
    }
    model.updated_at = Set(crate::db::now());
    let txn = state.db.begin_write().await?;
    let updated = model.update(&*txn).await?;
    let mut entry = Entry::updated(Action::WebhookUpdated, &before, &updated);
    if let Some(types) = &types {
        set_types(&*txn, updated.id, types).await?;
        if *types != found.types {
            entry.changes = entry
                .changes
                .with("types", found.types.clone(), types.clone());
        }
    }
    audit::record_one(&*txn, &caller.audit(), entry).await?;
    txn.commit().await?;
    Ok(Webhook {
        endpoint: updated,
        types: types.unwrap_or(found.types),
    })
}

/// Deletes an endpoint, its queued messages and its delivery log.
pub async fn delete(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<()> {
    let found = get(state, caller, id).await?;
    let txn = state.db.begin_write().await?;
    webhook_endpoint::Entity::delete_by_id(found.endpoint.id)
        .exec(&*txn)
        .await?;
    let entry = Entry::deleted(Action::WebhookDeleted, &found.endpoint);
    audit::record_one(&*txn, &caller.audit(), entry).await?;
    txn.commit().await?;
    tracing::info!(
        "Webhook endpoint {} deleted by {}",
        found.endpoint.id,
        caller.username
    );
    Ok(())
}

/// A new secret; the previous one keeps signing (beside it) for
/// `ROTATION_OVERLAP`, so receivers can switch without losing a message.
pub async fn rotate_secret(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<Webhook> {
    let found = get(state, caller, id).await?;
    let before = found.endpoint.clone();
    let now = crate::db::now();
    let mut model: webhook_endpoint::ActiveModel = found.endpoint.into();
    model.previous_secret = Set(Some(before.secret.clone()));
    model.previous_secret_until = Set(Some(now + ROTATION_OVERLAP));
    model.secret = Set(new_secret());
    model.updated_at = Set(now);
    let txn = state.db.begin_write().await?;
    let updated = model.update(&*txn).await?;
    let entry = Entry::updated(Action::WebhookSecretRotated, &before, &updated);
    audit::record_one(&*txn, &caller.audit(), entry).await?;
    txn.commit().await?;
    Ok(Webhook {
        endpoint: updated,
        types: found.types,
    })
}

/// An endpoint's delivery attempts, newest first.
pub async fn deliveries(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    request: PageRequest,
) -> DomainResult<Page<webhook_attempt::Model>> {
    let found = get(state, caller, id).await?;
    let select = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::EndpointId.eq(found.endpoint.id))
        .order_by_desc(webhook_attempt::Column::Id);
    Ok(super::fetch_page(state.db.conn(), select, request).await?)
}

fn refuse_disabled(endpoint: &webhook_endpoint::Model) -> DomainResult<()> {
    if endpoint.enabled {
        Ok(())
    } else {
        Err(DomainError::Conflict(
            "This endpoint is disabled; enable it first.".into(),
        ))
    }
}

/// Sends a message again now (whatever became of it before): 404 when
/// the endpoint never had it.
pub async fn retry(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    message_id: Uuid,
) -> DomainResult<()> {
    let found = get(state, caller, id).await?;
    refuse_disabled(&found.endpoint)?;
    let now = state.clock.now();
    let key = dedupe_key(found.endpoint.id, message_id);
    let txn = state.db.begin_write().await?;
    // Not while a worker sends it: its outcome would overwrite the reset.
    let queued = outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value("pending"))
        .col_expr(outbox::Column::RunAt, Expr::value(now))
        .col_expr(outbox::Column::Attempts, Expr::value(0))
        .col_expr(
            outbox::Column::FinishedAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .filter(outbox::Column::DedupeKey.eq(key.as_str()))
        .filter(
            sea_orm::Condition::any()
                .add(outbox::Column::LockedUntil.is_null())
                .add(outbox::Column::LockedUntil.lt(now)),
        )
        .exec(&*txn)
        .await?;
    if queued.rows_affected == 0 {
        let job_row = outbox::Entity::find()
            .filter(outbox::Column::DedupeKey.eq(key.as_str()))
            .one(&*txn)
            .await?;
        let logged = webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::EndpointId.eq(found.endpoint.id))
            .filter(webhook_attempt::Column::MessageId.eq(message_id))
            .one(&*txn)
            .await?
            .is_some();
        match (job_row, logged) {
            (Some(_), _) => {
                return Err(DomainError::Conflict(
                    "This message is being sent right now.".into(),
                ));
            }
            // Its job was pruned (housekeeping); its log remains: queued anew.
            (None, true) => {
                outbox::Entity::insert(job(found.endpoint.id, message_id, now))
                    .exec_without_returning(&*txn)
                    .await?;
            }
            (None, false) => return Err(DomainError::NotFound),
        }
    }
    let entry = Entry::about(
        Action::WebhookRetried,
        "webhook",
        found.endpoint.id.to_string(),
        None,
        Changes::none().with("message", None::<String>, message_id.to_string()),
    );
    audit::record_one(&*txn, &caller.audit(), entry).await?;
    txn.commit().await?;
    Ok(())
}

/// Queues a `webhook.test` message for this endpoint alone; its id.
pub async fn test(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<Uuid> {
    let found = get(state, caller, id).await?;
    refuse_disabled(&found.endpoint)?;
    let txn = state.db.begin_write().await?;
    let mut entry = Entry::about(
        Action::WebhookTested,
        "webhook",
        found.endpoint.id.to_string(),
        None,
        Changes::none(),
    );
    let mut data = serde_json::Map::new();
    data.insert("endpoint".into(), found.endpoint.id.to_string().into());
    entry.data = Some(data);
    let message = audit::record_one(&*txn, &caller.audit(), entry).await?;
    outbox::Entity::insert(job(found.endpoint.id, message, state.clock.now()))
        .exec_without_returning(&*txn)
        .await?;
    txn.commit().await?;
    Ok(message)
}
