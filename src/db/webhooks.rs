//! Webhook messages made from audit entries (API.md §11), queued in the
//! same transaction: for each new entry, one outbox job per enabled
//! endpoint whose types match its action and whose owner may see its event.
//! The job names the entry (`message_id`, the `webhook-id`); the body is
//! made from the entry when the job runs, the same for every attempt.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Set,
};
use uuid::Uuid;

use super::entities::{
    event, group, outbox, user, user_group, webhook_attempt, webhook_endpoint, webhook_type,
};
use super::outbox::{KIND_WEBHOOK, KIND_WEBHOOK_DISABLED};

/// An audit entry as the fan-out needs it.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: Uuid,
    pub action: String,
    pub event_id: Option<Uuid>,
    /// The event's organiser, when known.
    pub organizer_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// Actions never sent: the endpoints' own bookkeeping.
fn is_sent(action: &str) -> bool {
    !action.starts_with("webhook.")
}

/// A URL as logs and the audit log show it: credentials and query (where
/// receivers' tokens often are) masked.
pub fn redacted_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return super::audit::MASK.to_owned();
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let _ = parsed.set_username(super::audit::MASK);
        let _ = parsed.set_password(None);
    }
    if parsed.query().is_some() {
        parsed.set_query(Some(super::audit::MASK));
    }
    parsed.to_string()
}

/// Whether a type pattern (`*`, `registration.*`, `checkin.created`)
/// matches an action.
pub fn matches(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => pattern == action,
    }
}

/// Every type pattern that matches an action: `*`, `<entity>.*` and the
/// action itself (what an SQL statement compares patterns with).
pub fn patterns_matching(action: &str) -> Vec<String> {
    let mut patterns = vec!["*".to_owned(), action.to_owned()];
    if let Some((entity, _)) = action.split_once('.') {
        patterns.push(format!("{entity}.*"));
    }
    patterns
}

/// The outbox key of one message for one endpoint.
pub fn dedupe_key(endpoint: Uuid, message: Uuid) -> String {
    format!("webhook:{endpoint}:{message}")
}

/// A job sending `message` to `endpoint`, due at `at`.
pub fn job(endpoint: Uuid, message: Uuid, at: DateTime<Utc>) -> outbox::ActiveModel {
    outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(KIND_WEBHOOK.into()),
        registration_id: Set(None),
        endpoint_id: Set(Some(endpoint)),
        message_id: Set(Some(message)),
        dedupe_key: Set(dedupe_key(endpoint, message)),
        event_start: Set(None),
        run_at: Set(at),
        attempts: Set(0),
        locked_until: Set(None),
        locked_by: Set(None),
        status: Set("pending".into()),
        last_error: Set(None),
        created_at: Set(at),
        finished_at: Set(None),
        payload: Set(None),
    }
}

/// (endpoint, message index) for every delivery `messages` make.
async fn routes(
    db: &impl ConnectionTrait,
    messages: &[Message],
) -> Result<Vec<(Uuid, usize)>, DbErr> {
    if !messages.iter().any(|m| is_sent(&m.action)) {
        return Ok(Vec::new());
    }
    let endpoints = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .all(db)
        .await?;
    if endpoints.is_empty() {
        return Ok(Vec::new());
    }
    let mut patterns: HashMap<Uuid, Vec<String>> = HashMap::new();
    for t in webhook_type::Entity::find()
        .filter(webhook_type::Column::EndpointId.is_in(endpoints.iter().map(|e| e.id)))
        .all(db)
        .await?
    {
        patterns.entry(t.endpoint_id).or_default().push(t.pattern);
    }
    // Organisers of the messages' events, for endpoints of organisers.
    let mut organizers: HashMap<Uuid, Uuid> = messages
        .iter()
        .filter_map(|m| Some((m.event_id?, m.organizer_id?)))
        .collect();
    if endpoints.iter().any(|e| !e.all_events) {
        let events: HashSet<Uuid> = messages
            .iter()
            .filter(|m| m.organizer_id.is_none())
            .filter_map(|m| m.event_id)
            .collect();
        if !events.is_empty() {
            let rows: Vec<(Uuid, Uuid)> = event::Entity::find()
                .select_only()
                .column(event::Column::Id)
                .column(event::Column::OrganizerId)
                .filter(event::Column::Id.is_in(events))
                .into_tuple()
                .all(db)
                .await?;
            organizers.extend(rows);
        }
    }
    let mut found = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let action = message.action.as_str();
        if !is_sent(action) {
            continue;
        }
        for endpoint in &endpoints {
            let in_scope = match endpoint.event_id {
                Some(only) => message.event_id == Some(only),
                None => true,
            };
            let visible = endpoint.all_events
                || message
                    .event_id
                    .and_then(|e| organizers.get(&e))
                    .is_some_and(|organizer| *organizer == endpoint.owner_id);
            let wanted = patterns
                .get(&endpoint.id)
                .is_some_and(|ps| ps.iter().any(|p| matches(p, action)));
            if in_scope && visible && wanted {
                found.push((endpoint.id, i));
            }
        }
    }
    Ok(found)
}

/// Whether an endpoint's owner may still see a message (roles change):
/// superuser and admin see all; an organiser those of their events (by the
/// organiser the entry recorded, so an event's deletion is still theirs).
pub async fn owner_may_see(
    db: &impl ConnectionTrait,
    endpoint: &webhook_endpoint::Model,
    organizer_id: Option<Uuid>,
) -> Result<bool, DbErr> {
    let Some(owner) = user::Entity::find_by_id(endpoint.owner_id).one(db).await? else {
        return Ok(false);
    };
    if !owner.is_active {
        return Ok(false);
    }
    if owner.is_superuser {
        return Ok(true);
    }
    let admin_group = group::Entity::find()
        .filter(group::Column::NameKey.eq("admin"))
        .one(db)
        .await?;
    let admin = match admin_group {
        Some(g) => user_group::Entity::find_by_id((owner.id, g.id))
            .one(db)
            .await?
            .is_some(),
        None => false,
    };
    if admin {
        return Ok(true);
    }
    // Entries outside any event are for those who see everything.
    Ok(organizer_id == Some(owner.id))
}

/// An endpoint and its owner.
pub async fn endpoint_and_owner(
    db: &impl ConnectionTrait,
    endpoint_id: Uuid,
) -> Result<Option<(webhook_endpoint::Model, user::Model)>, DbErr> {
    let Some(endpoint) = webhook_endpoint::Entity::find_by_id(endpoint_id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let owner = user::Entity::find_by_id(endpoint.owner_id).one(db).await?;
    Ok(owner.map(|owner| (endpoint, owner)))
}

/// What one attempt saw, as the delivery log keeps it.
pub struct AttemptSeen<'a> {
    pub message_type: &'a str,
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    pub response_body: &'a str,
    pub error: Option<&'a str>,
}

/// Adds an attempt to the delivery log.
pub async fn record_attempt(
    db: &impl ConnectionTrait,
    endpoint: Uuid,
    message: Uuid,
    attempt: i32,
    seen: AttemptSeen<'_>,
    next_attempt_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    webhook_attempt::ActiveModel {
        id: Set(Uuid::now_v7()),
        endpoint_id: Set(endpoint),
        message_id: Set(message),
        message_type: Set(seen.message_type.to_owned()),
        attempt: Set(attempt),
        status_code: Set(seen.status_code.map(i32::from)),
        duration_ms: Set(seen.duration_ms),
        response_body: Set(seen.response_body.to_owned()),
        error: Set(seen.error.map(str::to_owned)),
        next_attempt_at: Set(next_attempt_at),
        attempted_at: Set(at),
    }
    .insert(db)
    .await
    .map(|_| ())
}

/// Whether an endpoint still exists (its delivery log goes with it).
pub async fn exists(db: &impl ConnectionTrait, endpoint: Uuid) -> Result<bool, DbErr> {
    Ok(webhook_endpoint::Entity::find_by_id(endpoint)
        .one(db)
        .await?
        .is_some())
}

/// A delivery succeeded: the endpoint is no longer failing.
pub async fn delivered(db: &impl ConnectionTrait, endpoint: Uuid) -> Result<(), DbErr> {
    webhook_endpoint::Entity::update_many()
        .col_expr(
            webhook_endpoint::Column::FirstFailureAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(webhook_endpoint::Column::Id.eq(endpoint))
        .filter(webhook_endpoint::Column::FirstFailureAt.is_not_null())
        .exec(db)
        .await
        .map(|_| ())
}

/// A delivery failed: the endpoint has been failing since then (if not
/// already).
pub async fn failing(
    db: &impl ConnectionTrait,
    endpoint: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    webhook_endpoint::Entity::update_many()
        .col_expr(
            webhook_endpoint::Column::FirstFailureAt,
            Expr::value(Some(now)),
        )
        .filter(webhook_endpoint::Column::Id.eq(endpoint))
        .filter(webhook_endpoint::Column::FirstFailureAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

/// Disables an endpoint with its reason (logged by the system), and, when
/// `tell_owner`, queues the mail that tells its owner. An endpoint already
/// disabled is left as it is.
pub async fn disable(
    db: &impl ConnectionTrait,
    endpoint: Uuid,
    reason: &str,
    tell_owner: bool,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let Some(before) = webhook_endpoint::Entity::find_by_id(endpoint)
        .one(db)
        .await?
    else {
        return Ok(());
    };
    if !before.enabled {
        return Ok(());
    }
    let mut model: webhook_endpoint::ActiveModel = before.clone().into();
    model.enabled = Set(false);
    model.disabled_reason = Set(Some(reason.to_owned()));
    model.updated_at = Set(now);
    let after = model.update(db).await?;
    super::audit::record_one(
        db,
        &super::audit::Context::system(),
        super::audit::Entry::updated(super::audit::Action::WebhookDisabled, &before, &after),
    )
    .await?;
    if tell_owner {
        outbox::ActiveModel {
            id: Set(Uuid::now_v7()),
            kind: Set(KIND_WEBHOOK_DISABLED.into()),
            registration_id: Set(None),
            endpoint_id: Set(Some(endpoint)),
            message_id: Set(None),
            dedupe_key: Set(format!(
                "webhook_disabled:{endpoint}:{}",
                now.timestamp_millis()
            )),
            event_start: Set(None),
            run_at: Set(now),
            attempts: Set(0),
            locked_until: Set(None),
            locked_by: Set(None),
            status: Set("pending".into()),
            last_error: Set(None),
            created_at: Set(now),
            finished_at: Set(None),
            payload: Set(None),
        }
        .insert(db)
        .await?;
    }
    tracing::warn!(
        "Webhook endpoint {endpoint} ({}) disabled: {reason}",
        before.url
    );
    Ok(())
}

/// Queues the messages of new audit entries, in their transaction.
pub async fn fan_out(db: &impl ConnectionTrait, messages: &[Message]) -> Result<(), DbErr> {
    let found = routes(db, messages).await?;
    for chunk in found.chunks(1_000) {
        let jobs = chunk.iter().map(|(endpoint, i)| {
            let message = &messages[*i];
            job(*endpoint, message.id, message.at)
        });
        outbox::Entity::insert_many(jobs)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_by_prefix_or_whole() {
        assert!(matches("*", "registration.created"));
        assert!(matches("registration.*", "registration.created"));
        assert!(!matches("registration.*", "payment.updated"));
        assert!(matches("checkin.created", "checkin.created"));
        assert!(!matches("checkin.created", "checkin.deleted"));
        assert!(!is_sent("webhook.tested"));
        for action in ["registration.created", "checkin.deleted"] {
            for pattern in [
                "*",
                "registration.*",
                "registration.created",
                "checkin.*",
                "payment.*",
            ] {
                assert_eq!(
                    patterns_matching(action).contains(&pattern.to_owned()),
                    matches(pattern, action),
                    "{pattern} / {action}"
                );
            }
        }
        assert_eq!(
            redacted_url("https://bob:pw@hooks.example.com/in?token=abc"),
            "https://********@hooks.example.com/in?********"
        );
        assert_eq!(
            redacted_url("https://example.com/a"),
            "https://example.com/a"
        );
    }
}
