//! The audit log for people: the History section of each event page and
//! the log page (`/console/history/`: admins see everything, organisers
//! their events). Same domain list and scoping as `GET /api/audit/`.

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::Value;
use uuid::Uuid;

use super::format::{Pager, pager, short};
use super::{Frame, query_text, refusal, render, visit};
use crate::db::entities::audit_entry;
use crate::domain::audit::{self, ActorFilter, AuditFilter};
use crate::domain::{Caller, DomainError, PageRequest};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/history", get(history_page))
}

/// One field of a change, as it reads.
pub(crate) struct FieldChange {
    pub field: String,
    /// `None` when the field had no value before (a new row).
    pub before: Option<String>,
    pub after: String,
}

/// One entry, as a table row reads it.
pub(crate) struct HistoryRow {
    pub when: String,
    pub who: String,
    pub action: String,
    pub what: String,
    /// The event page it concerns, when there is one.
    pub event: Option<Uuid>,
    pub changes: Vec<FieldChange>,
}

fn shown(state: &AppState, value: &Value) -> String {
    if let Some(at) = value
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    {
        return short(state, &at.with_timezone(&chrono::Utc));
    }
    match value {
        Value::Null => "—".into(),
        Value::String(s) if s.is_empty() => "(empty)".into(),
        Value::String(s) => {
            let mut s: String = s.chars().take(80).collect();
            if s.len() < value.as_str().map_or(0, str::len) {
                s.push('…');
            }
            s
        }
        other => other.to_string(),
    }
}

pub(crate) fn rows(state: &AppState, entries: Vec<audit_entry::Model>) -> Vec<HistoryRow> {
    entries
        .into_iter()
        .map(|e| {
            let changes = match serde_json::from_str::<Value>(&e.changes) {
                Ok(Value::Object(map)) => map
                    .into_iter()
                    .map(|(field, pair)| FieldChange {
                        field: field.replace('_', " "),
                        before: (!pair[0].is_null()).then(|| shown(state, &pair[0])),
                        after: shown(state, &pair[1]),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let who = match (e.actor_type.as_str(), e.actor_username) {
                ("user", Some(name)) => name,
                ("cli", _) => "command line".into(),
                ("system", _) => "DicoEvent".into(),
                (kind, _) => kind.to_owned(),
            };
            HistoryRow {
                when: short(state, &e.occurred_at),
                who,
                action: e.action.replace(['.', '_'], " "),
                what: format!(
                    "{} {}",
                    e.entity_type.replace('_', " "),
                    short_id(&e.entity_id)
                ),
                event: e.event_id,
                changes,
            }
        })
        .collect()
}

/// The last 8 characters of an id: a UUIDv7 begins with its time, so its
/// end tells rows apart.
fn short_id(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

/// The latest entries of an event, for its page.
pub(crate) async fn of_event(
    state: &AppState,
    caller: &Caller,
    event: Uuid,
    size: u64,
) -> Result<(Vec<HistoryRow>, u64), DomainError> {
    let filter = AuditFilter {
        event: Some(event),
        ..AuditFilter::default()
    };
    let page = audit::list(state, caller, &filter, PageRequest { page: 1, size }, None).await?;
    Ok((rows(state, page.items), page.count))
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage<'a> {
    frame: &'a Frame,
    rows: Vec<HistoryRow>,
    pager: Pager,
    action: String,
    actor: String,
    event: String,
}

async fn history_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let visit = match visit(&state, &headers, "/console/history/", "history").await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let query = query.as_deref();
    let action = query_text(query, "action");
    let actor = query_text(query, "actor");
    let event = query_text(query, "event");
    let filter = AuditFilter {
        action: (!action.is_empty()).then(|| action.to_lowercase()),
        actor: (!actor.is_empty()).then(|| ActorFilter::parse(&actor)),
        // A malformed event id matches nothing rather than everything.
        event: (!event.is_empty()).then(|| Uuid::parse_str(&event).unwrap_or(Uuid::nil())),
        ..AuditFilter::default()
    };
    let request = PageRequest {
        page: super::format::page_number(query),
        size: 50,
    };
    let page = match audit::list(&state, &visit.caller, &filter, request, None).await {
        Ok(page) => page,
        Err(e) => return refusal(e),
    };
    let pager = pager(
        &page,
        "/console/history/",
        &[("action", &action), ("actor", &actor), ("event", &event)],
    );
    let html = HistoryPage {
        frame: &visit.frame,
        rows: rows(&state, page.items),
        pager,
        action,
        actor,
        event,
    }
    .render();
    render(&visit.frame, StatusCode::OK, html)
}
