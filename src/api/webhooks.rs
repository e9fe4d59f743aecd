//! `/api/webhooks/` (API.md §11): endpoints, their secrets, the delivery
//! log, retries and test messages.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::body::{JsonBody, path_id};
use super::error::ApiResult;
use super::extract::{AuthUser, SentUri};
use super::pagination::{DeliveryList, Origin, Pagination, WebhookList, page_request};
use super::schemas::{ID_UUID, datetime, optional_datetime};
use crate::db::entities::webhook_attempt;
use crate::domain::webhooks::{self as domain, NewWebhook, Webhook, WebhookChanges};
use crate::input::{Input, QueryParams, Text};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(retrieve, put, patch, destroy))
        .routes(routes!(rotate_secret))
        .routes(routes!(deliveries))
        .routes(routes!(retry))
        .routes(routes!(test))
}

/// An endpoint, as the API shows it (never its secret, but once).
#[derive(Serialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookOut {
    pub id: Uuid,
    #[schema(format = "uri")]
    pub url: String,
    /// One event's messages, or `null`: every event its owner may see.
    #[schema(required = true)]
    pub event: Option<Uuid>,
    /// Message types: `*`, `<entity>.*` or an action such as
    /// `checkin.created`.
    pub types: Vec<String>,
    pub enabled: bool,
    /// Why it was disabled (a 410 from the receiver, retries spent).
    #[schema(required = true)]
    pub disabled_reason: Option<String>,
    pub description: String,
    #[serde(serialize_with = "datetime")]
    pub created_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookOut {
    fn from(w: Webhook) -> Self {
        WebhookOut {
            id: w.endpoint.id,
            url: w.endpoint.url,
            event: w.endpoint.event_id,
            types: w.types,
            enabled: w.endpoint.enabled,
            disabled_reason: w.endpoint.disabled_reason,
            description: w.endpoint.description,
            created_at: w.endpoint.created_at,
        }
    }
}

/// An endpoint with its signing secret: the answer to a creation and to a
/// rotation, the only times the secret is shown.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookOut,
    /// `whsec_` + base64 of 32 random bytes: keep it, it is not shown again.
    pub secret: String,
}

impl From<Webhook> for WebhookWithSecret {
    fn from(w: Webhook) -> Self {
        let secret = w.endpoint.secret.clone();
        WebhookWithSecret {
            webhook: w.into(),
            secret,
        }
    }
}

/// An endpoint as sent.
#[derive(ToSchema)]
pub struct WebhookWrite {
    /// `https://` to a public address (`http://` and private addresses
    /// with `WEBHOOK_ALLOW_PRIVATE=true`).
    #[schema(format = "uri", max_length = 2000)]
    pub url: String,
    /// An event's id, or `null` for all.
    pub event: Option<Uuid>,
    pub types: Vec<String>,
    pub enabled: Option<bool>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// One delivery attempt.
#[derive(Serialize, ToSchema)]
pub struct DeliveryOut {
    pub id: Uuid,
    /// The message's `webhook-id` (the same on every attempt).
    pub message_id: Uuid,
    #[serde(rename = "type")]
    pub message_type: String,
    /// 1 for the first attempt.
    pub attempt: i32,
    /// The receiver's status, or `null` when it did not answer.
    #[schema(required = true)]
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    /// The first KiB of the receiver's answer.
    pub response_body: String,
    /// What went wrong before an answer (refused, timed out…).
    #[schema(required = true)]
    pub error: Option<String>,
    /// When it is tried again, or `null` (delivered, or given up).
    #[schema(required = true)]
    #[serde(serialize_with = "optional_datetime")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "datetime")]
    pub attempted_at: DateTime<Utc>,
}

impl From<webhook_attempt::Model> for DeliveryOut {
    fn from(a: webhook_attempt::Model) -> Self {
        DeliveryOut {
            id: a.id,
            message_id: a.message_id,
            message_type: a.message_type,
            attempt: a.attempt,
            status_code: a.status_code,
            duration_ms: a.duration_ms,
            response_body: a.response_body,
            error: a.error,
            next_attempt_at: a.next_attempt_at,
            attempted_at: a.attempted_at,
        }
    }
}

/// A message queued (a retry or a test).
#[derive(Serialize, ToSchema)]
pub struct Queued {
    pub message_id: Uuid,
    /// `queued`: the worker sends it within its poll interval.
    pub status: String,
}

/// The fields of a body; `partial` for PATCH.
fn read(input: &mut Input, partial: bool) -> (WebhookChanges, Option<Vec<String>>) {
    let url = input.text("url", Text::required(2000));
    let event = input
        .nullable_uuid("event")
        .or_else(|| input.nullable_uuid("event_id"));
    let types = input.strings("types", !partial);
    let description = input.text("description", Text::optional(500));
    let enabled = input.boolean("enabled", false);
    (
        WebhookChanges {
            url,
            event_id: event,
            types: types.clone(),
            description,
            enabled,
        },
        types,
    )
}

/// List webhook endpoints (superuser, admin: all; organisers: their own)
#[utoipa::path(
    get, path = "/api/webhooks", tag = "webhooks", operation_id = "webhooks_list",
    params(Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of endpoints, newest first", body = WebhookList),
        (status = 401, description = "Not authenticated"),
        (status = 403, description = "Neither admin nor organiser"),
    )
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    RawQuery(raw): RawQuery,
    SentUri(uri): SentUri,
    origin: Origin,
) -> ApiResult<Json<WebhookList>> {
    let query = QueryParams::parse(raw.as_deref());
    let page = domain::list(&state, &caller, page_request(&query)).await?;
    Ok(Json(WebhookList::new(
        page,
        WebhookOut::from,
        &uri,
        &origin,
    )))
}

/// Add a webhook endpoint: its signing secret is in this answer only
#[utoipa::path(
    post, path = "/api/webhooks", tag = "webhooks", operation_id = "webhooks_create",
    request_body = WebhookWrite,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Added", body = WebhookWithSecret),
        (status = 400, description = "A bad field"),
        (status = 401, description = "Not authenticated"),
        (status = 403, description = "Not allowed (or not the organiser of `event`)"),
    )
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<WebhookWithSecret>)> {
    let mut input = body.input(false)?;
    let (fields, types) = read(&mut input, false);
    let errors = std::mem::take(&mut input.errors);
    let new = NewWebhook {
        url: fields.url.clone().unwrap_or_default(),
        event_id: fields.event_id.flatten(),
        types: types.unwrap_or_default(),
        description: fields.description.unwrap_or_default(),
        enabled: fields.enabled.unwrap_or(true),
    };
    let created = domain::create(&state, &caller, new, errors).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// One webhook endpoint
#[utoipa::path(
    get, path = "/api/webhooks/{id}", tag = "webhooks", operation_id = "webhooks_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The endpoint", body = WebhookOut),
        (status = 403, description = "Not the caller's"),
        (status = 404, description = "No such endpoint"),
    )
)]
async fn retrieve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookOut>> {
    let found = domain::get(&state, &caller, path_id(&id)?).await?;
    Ok(Json(found.into()))
}

async fn change(
    state: AppState,
    caller: crate::domain::Caller,
    id: String,
    body: JsonBody,
    method: Method,
) -> ApiResult<Json<WebhookOut>> {
    let id = path_id(&id)?;
    let mut input = body.input(method == Method::PATCH)?;
    let (mut changes, _) = read(&mut input, method == Method::PATCH);
    if method == Method::PUT && changes.event_id.is_none() {
        // PUT names the whole endpoint: no event is all events.
        changes.event_id = Some(None);
    }
    let errors = std::mem::take(&mut input.errors);
    let updated = domain::update(&state, &caller, id, changes, errors).await?;
    Ok(Json(updated.into()))
}

/// Replace a webhook endpoint's fields (url and types required)
#[utoipa::path(
    put, path = "/api/webhooks/{id}", tag = "webhooks", operation_id = "webhooks_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = WebhookWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Changed", body = WebhookOut),
        (status = 400, description = "A bad field"),
        (status = 403, description = "Not the caller's"),
        (status = 404, description = "No such endpoint"),
    )
)]
async fn put(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<WebhookOut>> {
    change(state, caller, id, body, Method::PUT).await
}

/// Change some fields of a webhook endpoint (enabled: true re-enables it)
#[utoipa::path(
    patch, path = "/api/webhooks/{id}", tag = "webhooks", operation_id = "webhooks_partial_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = WebhookWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Changed", body = WebhookOut),
        (status = 400, description = "A bad field"),
        (status = 403, description = "Not the caller's"),
        (status = 404, description = "No such endpoint"),
    )
)]
async fn patch(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<WebhookOut>> {
    change(state, caller, id, body, Method::PATCH).await
}

/// Delete a webhook endpoint, its queued messages and its log
#[utoipa::path(
    delete, path = "/api/webhooks/{id}", tag = "webhooks", operation_id = "webhooks_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not the caller's"),
        (status = 404, description = "No such endpoint"),
    )
)]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    domain::delete(&state, &caller, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret (the previous one signs beside it for 24 h)
#[utoipa::path(
    post, path = "/api/webhooks/{id}/rotate-secret", tag = "webhooks",
    operation_id = "webhooks_rotate_secret",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = WebhookWithSecret),
        (status = 403, description = "Not the caller's"),
        (status = 404, description = "No such endpoint"),
    )
)]
async fn rotate_secret(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookWithSecret>> {
    let rotated = domain::rotate_secret(&state, &caller, path_id(&id)?).await?;
    Ok(Json(rotated.into()))
}

/// An endpoint's delivery attempts, newest first
#[utoipa::path(
    get, path = "/api/webhooks/{id}/deliveries", tag = "webhooks",
    operation_id = "webhooks_deliveries",
    params(("id" = Uuid, Path, description = ID_UUID), Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of attempts", body = DeliveryList),
        (status = 403, description = "Not the caller's"),
        (status = 404, description = "No such endpoint"),
    )
)]
async fn deliveries(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    SentUri(uri): SentUri,
    origin: Origin,
) -> ApiResult<Json<DeliveryList>> {
    let query = QueryParams::parse(raw.as_deref());
    let page = domain::deliveries(&state, &caller, path_id(&id)?, page_request(&query)).await?;
    Ok(Json(DeliveryList::new(
        page,
        DeliveryOut::from,
        &uri,
        &origin,
    )))
}

/// Send a message to this endpoint again, now
#[utoipa::path(
    post, path = "/api/webhooks/{id}/deliveries/{message_id}/retry", tag = "webhooks",
    operation_id = "webhooks_retry",
    params(
        ("id" = Uuid, Path, description = ID_UUID),
        ("message_id" = Uuid, Path, description = "The message's id (`webhook-id`)"),
    ),
    security(("jwt" = [])),
    responses(
        (status = 202, description = "Queued", body = Queued),
        (status = 403, description = "Not the caller's"),
        (status = 404, description = "No such endpoint, or no such message for it"),
        (status = 409, description = "The endpoint is disabled"),
    )
)]
async fn retry(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path((id, message_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Queued>)> {
    let id = path_id(&id)?;
    let message_id = path_id(&message_id)?;
    domain::retry(&state, &caller, id, message_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Queued {
            message_id,
            status: "queued".into(),
        }),
    ))
}

/// Send a test message (type webhook.test) to this endpoint
#[utoipa::path(
    post, path = "/api/webhooks/{id}/test", tag = "webhooks", operation_id = "webhooks_test",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 202, description = "Queued", body = Queued),
        (status = 403, description = "Not the caller's"),
        (status = 404, description = "No such endpoint"),
        (status = 409, description = "The endpoint is disabled"),
    )
)]
async fn test(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Queued>)> {
    let message_id = domain::test(&state, &caller, path_id(&id)?).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Queued {
            message_id,
            status: "queued".into(),
        }),
    ))
}
