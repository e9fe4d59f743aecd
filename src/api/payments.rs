//! `/api/payments/`: payments for registrations, with `Idempotency-Key`.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Duration;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use super::input::{JsonBody, QueryParams, Text, format_datetime, money_json, path_id};
use super::pagination::{envelope, fetch_page};
use crate::AppState;
use crate::auth::AuthUser;
use crate::db::entities::{idempotency_key, payment, registration};
use crate::error::{ApiError, ApiResult, FieldErrors, is_unique_violation};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/payments", get(list).post(create))
        .route(
            "/payments/{id}",
            get(retrieve).put(update).patch(update).delete(destroy),
        )
}

pub const STATUSES: &[&str] = &["pending", "completed", "failed", "refunded"];

/// The status moves an update may make (and any status to itself).
fn transition_allowed(from: &str, to: &str) -> bool {
    from == to
        || matches!(
            (from, to),
            ("pending", "completed")
                | ("pending", "failed")
                | ("failed", "pending")
                | ("completed", "refunded")
        )
}

/// How long an `Idempotency-Key` is remembered.
const IDEMPOTENCY_WINDOW_HOURS: i64 = 24;

pub fn payment_json(p: &payment::Model) -> Value {
    json!({
        "id": p.id.to_string(),
        "registration": p.registration_id.to_string(),
        "payment_method": p.payment_method,
        "payment_status": p.payment_status,
        "amount_paid": money_json(p.amount_paid_minor),
        "paid_at": p.paid_at.as_ref().map(format_datetime),
        "created_at": format_datetime(&p.created_at),
        "updated_at": format_datetime(&p.updated_at),
    })
}

const ALREADY_COMPLETED: &str = "This registration already has a completed payment.";

async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let query = QueryParams::parse(raw.as_deref());
    let mut errors = FieldErrors::default();
    let mut select = super::registrations::scoped_to_caller(
        payment::Entity::find(),
        &caller,
        payment::Column::UserId,
        payment::Column::EventId,
    );
    if let Some(id) = query.uuid("registration", &mut errors) {
        select = select.filter(payment::Column::RegistrationId.eq(id));
    }
    if let Some(status) = query.choice("payment_status", STATUSES, &[], &mut errors) {
        select = select.filter(payment::Column::PaymentStatus.eq(status));
    }
    errors.into_result()?;
    let select = select
        .order_by_asc(payment::Column::CreatedAt)
        .order_by_asc(payment::Column::Id);
    let (rows, page) = fetch_page(state.db.conn(), select, &query).await?;
    let items = rows.iter().map(payment_json).collect();
    Ok(Json(envelope("payments", items, &page, &uri, &headers)))
}

/// The caller's `Idempotency-Key`, if any (400 if unusable).
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII.".into()))?
        .trim();
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 characters long.".into(),
        ));
    }
    Ok(Some(key.to_string()))
}

/// The response first given for this user and key within the window.
async fn remembered(
    db: &impl sea_orm::ConnectionTrait,
    user_id: Uuid,
    key: &str,
) -> ApiResult<Option<(StatusCode, Json<Value>)>> {
    let since = crate::db::now() - Duration::hours(IDEMPOTENCY_WINDOW_HOURS);
    let found = idempotency_key::Entity::find_by_id((user_id, key.to_string()))
        .filter(idempotency_key::Column::CreatedAt.gt(since))
        .one(db)
        .await?;
    let Some(found) = found else {
        return Ok(None);
    };
    let status = StatusCode::from_u16(found.status_code as u16).unwrap_or(StatusCode::CREATED);
    let body: Value = serde_json::from_str(&found.response_body)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored idempotent response: {e}")))?;
    Ok(Some((status, Json(body))))
}

#[instrument(name = "create", skip_all, fields(user = %caller.username))]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = idempotency_key(&headers)?;
    if let Some(key) = &key
        && let Some(previous) = remembered(state.db.conn(), caller.id, key).await?
    {
        tracing::info!(
            "Payment request replayed for idempotency key of {}",
            caller.username
        );
        return Ok(previous);
    }

    let mut input = body.input(false)?;
    let registration_id = input.uuid("registration_id", true);
    let payment_method = input.text("payment_method", Text::required(50));
    let amount_paid = input.money("amount_paid", true);
    let status = input.choice("payment_status", false, STATUSES, &[]);
    let mut errors = std::mem::take(&mut input.errors);
    let found = match registration_id {
        Some(id) => {
            let r = registration::Entity::find_by_id(id)
                .one(state.db.conn())
                .await?;
            if r.is_none() {
                errors.add(
                    "registration_id",
                    format!("Invalid pk \"{id}\" - object does not exist."),
                );
            }
            r
        }
        None => None,
    };
    if let Some(r) = &found
        && r.user_id != caller.id
        && !caller.is_admin()
    {
        return Err(ApiError::Forbidden);
    }
    let status = status.unwrap_or_else(|| "pending".into());
    if status != "pending" && !caller.is_admin() && errors.is_empty() {
        return Err(ApiError::Forbidden);
    }
    errors.into_result()?;
    let (Some(r), Some(payment_method), Some(amount_paid)) = (found, payment_method, amount_paid)
    else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "payment fields missing after validation"
        )));
    };

    let now = crate::db::now();
    let txn = state.db.begin_write().await?;
    if let Some(key) = &key {
        // The key is claimed first, in the payment's transaction: a
        // concurrent request with the same key waits on it, then loses the
        // race on the primary key and answers with the winner's response;
        // and the payment exists if and only if the key is remembered.
        let stale_cutoff = now - Duration::hours(IDEMPOTENCY_WINDOW_HOURS);
        idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::UserId.eq(caller.id))
            .filter(idempotency_key::Column::Key.eq(key.clone()))
            .filter(idempotency_key::Column::CreatedAt.lte(stale_cutoff))
            .exec(&*txn)
            .await?;
        let claimed = idempotency_key::ActiveModel {
            user_id: Set(caller.id),
            key: Set(key.clone()),
            status_code: Set(StatusCode::CREATED.as_u16() as i32),
            response_body: Set(String::new()),
            created_at: Set(now),
        }
        .insert(&*txn)
        .await;
        match claimed {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                drop(txn);
                if let Some(previous) = remembered(state.db.conn(), caller.id, key).await? {
                    return Ok(previous);
                }
                return Err(ApiError::Conflict(
                    "A request with this Idempotency-Key is being processed.".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let inserted = payment::ActiveModel {
        id: Set(Uuid::now_v7()),
        registration_id: Set(r.id),
        user_id: Set(r.user_id),
        event_id: Set(r.event_id),
        payment_method: Set(payment_method),
        paid_at: Set((status == "completed").then_some(now)),
        payment_status: Set(status),
        amount_paid_minor: Set(amount_paid),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&*txn)
    .await;
    let created = match inserted {
        Ok(p) => p,
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(ALREADY_COMPLETED.into()));
        }
        Err(e) => return Err(e.into()),
    };
    let body = payment_json(&created);
    if let Some(key) = &key {
        idempotency_key::Entity::update_many()
            .col_expr(
                idempotency_key::Column::ResponseBody,
                sea_orm::sea_query::Expr::value(body.to_string()),
            )
            .filter(idempotency_key::Column::UserId.eq(caller.id))
            .filter(idempotency_key::Column::Key.eq(key.clone()))
            .exec(&*txn)
            .await?;
    }
    txn.commit().await?;
    tracing::info!(
        "Payment {} ({}) for registration {} created by {}",
        created.id,
        created.payment_status,
        created.registration_id,
        caller.username
    );
    Ok((StatusCode::CREATED, Json(body)))
}

async fn find_payment(state: &AppState, raw_id: &str) -> ApiResult<payment::Model> {
    let id = path_id(raw_id)?;
    payment::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(ApiError::NotFound)
}

async fn retrieve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let found = find_payment(&state, &id).await?;
    if found.user_id != caller.id
        && !caller.manages_event(super::registrations::organizer_of(&state, found.event_id).await?)
    {
        return Err(ApiError::Forbidden);
    }
    Ok(Json(payment_json(&found)))
}

#[instrument(name = "update", skip_all, fields(user = %caller.username))]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    method: Method,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let found = find_payment(&state, &id).await?;
    if !caller.is_admin() {
        return Err(ApiError::Forbidden);
    }
    let mut input = body.input(method == Method::PATCH)?;
    let payment_method = input.text("payment_method", Text::required(50));
    let amount_paid = input.money("amount_paid", true);
    let status = input.choice("payment_status", false, STATUSES, &[]);
    if let Some(to) = &status
        && !transition_allowed(&found.payment_status, to)
    {
        input.errors.add(
            "payment_status",
            format!(
                "Cannot change the status from \"{}\" to \"{to}\".",
                found.payment_status
            ),
        );
    }
    input.finish()?;

    let now = crate::db::now();
    let mut model: payment::ActiveModel = found.clone().into();
    if let Some(v) = payment_method {
        model.payment_method = Set(v);
    }
    if let Some(v) = amount_paid {
        model.amount_paid_minor = Set(v);
    }
    if let Some(to) = status {
        if to == "completed" && found.payment_status != "completed" {
            model.paid_at = Set(Some(now));
        }
        if to == "pending" || to == "failed" {
            model.paid_at = Set(None);
        }
        model.payment_status = Set(to);
    }
    model.updated_at = Set(now);
    let txn = state.db.begin_write().await?;
    // Guarded on the status the transition was checked against: a concurrent
    // change makes this one a conflict instead of a forbidden move.
    let result = payment::Entity::update_many()
        .set(model)
        .filter(payment::Column::Id.eq(found.id))
        .filter(payment::Column::PaymentStatus.eq(found.payment_status.clone()))
        .exec(&*txn)
        .await;
    match result {
        Ok(r) if r.rows_affected == 1 => {}
        Ok(_) => {
            return Err(ApiError::Conflict(
                "The payment was changed meanwhile; read it again.".into(),
            ));
        }
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(ALREADY_COMPLETED.into()));
        }
        Err(e) => return Err(e.into()),
    }
    let updated = payment::Entity::find_by_id(found.id)
        .one(&*txn)
        .await?
        .ok_or(ApiError::NotFound)?;
    txn.commit().await?;
    tracing::info!(
        "Payment {} updated by {} (status {})",
        updated.id,
        caller.username,
        updated.payment_status
    );
    Ok(Json(payment_json(&updated)))
}

#[instrument(name = "destroy", skip_all, fields(user = %caller.username))]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let found = find_payment(&state, &id).await?;
    if !caller.is_admin() {
        return Err(ApiError::Forbidden);
    }
    let txn = state.db.begin_write().await?;
    payment::Entity::delete_by_id(found.id).exec(&*txn).await?;
    txn.commit().await?;
    tracing::info!("Payment {} deleted by {}", found.id, caller.username);
    Ok(StatusCode::NO_CONTENT)
}
