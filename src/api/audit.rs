//! The audit log (API.md §10): `GET /api/audit/`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::Uri;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::ApiResult;
use super::extract::{AuthUser, SentUri};
use super::pagination::{Links, Origin, Pagination, page_request};
use super::schemas::datetime;
use crate::db::entities::audit_entry;
use crate::domain::FieldErrors;
use crate::domain::audit::{self as domain, ActorFilter, AuditFilter};
use crate::input::QueryParams;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Who made a change.
#[derive(Serialize, ToSchema)]
pub struct ActorOut {
    /// `user`, `system` or `cli`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The account, for `user`.
    #[schema(required = true)]
    pub id: Option<Uuid>,
    /// Its username when the change was made, for `user`.
    #[schema(required = true)]
    pub username: Option<String>,
}

/// What a change was made to.
#[derive(Serialize, ToSchema)]
pub struct EntityOut {
    /// `event`, `ticket`, `registration`, `payment`, `checkin`, `poster`,
    /// `user`, `group`, `job`, `signing_key` or `data`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its id (a UUID, or a group's number, as text).
    pub id: String,
}

/// One entry of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditEntryOut {
    pub id: Uuid,
    #[serde(serialize_with = "datetime")]
    pub occurred_at: DateTime<Utc>,
    pub actor: ActorOut,
    /// `<entity>.<verb>`, e.g. `registration.created`.
    pub action: String,
    pub entity: EntityOut,
    /// The event the entity belongs to.
    #[schema(required = true)]
    pub event: Option<Uuid>,
    /// `{"field": [before, after]}`; secrets read `"********"`.
    #[schema(value_type = Object)]
    pub changes: Value,
    /// The client's address, for a change made by a request.
    #[schema(required = true)]
    pub ip: Option<String>,
    /// The request's `X-Request-Id`, for a change made by a request.
    #[schema(required = true)]
    pub request_id: Option<String>,
}

impl From<audit_entry::Model> for AuditEntryOut {
    fn from(m: audit_entry::Model) -> Self {
        AuditEntryOut {
            id: m.id,
            occurred_at: m.occurred_at,
            actor: ActorOut {
                kind: m.actor_type,
                id: m.actor_id,
                username: m.actor_username,
            },
            action: m.action,
            entity: EntityOut {
                kind: m.entity_type,
                id: m.entity_id,
            },
            event: m.event_id,
            changes: serde_json::from_str(&m.changes).unwrap_or(Value::Null),
            ip: m.ip,
            request_id: m.request_id,
        }
    }
}

/// A page of audit entries, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditEntryOut>,
    #[schema(minimum = 0)]
    pub count: u64,
    #[schema(minimum = 1)]
    pub page: u64,
    #[schema(minimum = 1, maximum = 100)]
    pub page_size: u64,
    #[schema(minimum = 1)]
    pub total_pages: u64,
    /// Absolute URL of the next page (it carries `before`, the last id of
    /// this page), or `null` on the last.
    #[schema(required = true, format = "uri")]
    pub next: Option<String>,
    /// Absolute URL of the previous page, or `null` on the first.
    #[schema(required = true, format = "uri")]
    pub previous: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilters {
    /// `event`, `registration`, `payment`, `user`…
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// Entries of this event.
    pub event: Option<Uuid>,
    /// An account's id or username, or `system` / `cli`.
    pub actor: Option<String>,
    /// Actions beginning with this, e.g. `registration.` or `payment.updated`.
    pub action: Option<String>,
    /// Entries at or after this time.
    pub since: Option<String>,
    /// Entries at or before this time.
    pub until: Option<String>,
    /// The last id of the page before (set by `next` links).
    pub before: Option<Uuid>,
}

/// List audit entries (superuser, admin: all; organisers: their events')
#[utoipa::path(
    get, path = "/api/audit", tag = "audit", operation_id = "audit_list",
    params(AuditFilters, Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of entries, newest first", body = AuditList),
        (status = 400, description = "A bad filter value"),
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
) -> ApiResult<Json<AuditList>> {
    let query = QueryParams::parse(raw.as_deref());
    let mut errors = FieldErrors::default();
    let text = |name: &str| {
        query
            .get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let filter = AuditFilter {
        entity_type: text("entity_type").map(|v| v.to_lowercase()),
        entity_id: text("entity_id").map(|v| v.to_lowercase()),
        event: query.uuid("event", &mut errors),
        actor: text("actor").map(|v| ActorFilter::parse(&v)),
        action: text("action").map(|v| v.to_lowercase()),
        since: query.datetime("since", state.config.time_zone, &mut errors),
        until: query.datetime("until", state.config.time_zone, &mut errors),
    };
    let before = query.uuid("before", &mut errors);
    errors.into_result()?;
    let page = domain::list(&state, &caller, &filter, page_request(&query), before).await?;
    let last = page.items.last().map(|e| e.id);
    let links = Links::of(&page, &uri, &origin);
    let next = links.next.and_then(|url| Some(keyed(&url, last?)));
    Ok(Json(AuditList {
        count: page.count,
        page: page.number,
        page_size: page.size,
        total_pages: page.total_pages,
        entries: page.items.into_iter().map(AuditEntryOut::from).collect(),
        next,
        previous: links.previous.map(|url| unkeyed(&url)),
    }))
}

/// A page link read by key: `before` = the last id seen.
fn keyed(url: &str, last: Uuid) -> String {
    format!("{}&before={last}", unkeyed(url))
}

/// A page link without the key (the previous page is read by number).
fn unkeyed(url: &str) -> String {
    let Ok(uri) = url.parse::<Uri>() else {
        return url.to_owned();
    };
    let kept: Vec<(String, String)> = QueryParams::parse(uri.query())
        .0
        .into_iter()
        .filter(|(k, _)| k != "before")
        .collect();
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &kept {
        query.append_pair(k, v);
    }
    let base = url.split('?').next().unwrap_or(url);
    format!("{base}?{}", query.finish())
}
