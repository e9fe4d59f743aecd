//! `/api/payments/`: payments for registrations, with `Idempotency-Key`.

use crate::domain::idempotency::{Endpoint, RequestKey};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::body::{JsonBody, path_id};
use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, SentUri};
use super::pagination::{Origin, Pagination, PaymentList, page_request};
use super::schemas::{FieldErrorsBody, ID_UUID, PaymentStatus, datetime, money, optional_datetime};
use crate::db::entities::payment;
use crate::domain::FieldErrors;
use crate::domain::payments::{
    self as domain, Created, MAX_METHOD, NewPayment, PaymentChanges, PaymentFilter, STATUSES,
};
use crate::input::{Input, QueryParams, Text};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(retrieve, update, destroy))
}

#[derive(Serialize, ToSchema)]
#[schema(as = Payment)]
pub struct PaymentOut {
    pub id: Uuid,
    pub registration: Uuid,
    pub payment_method: String,
    #[schema(value_type = PaymentStatus)]
    pub payment_status: String,
    #[serde(serialize_with = "money")]
    #[schema(minimum = 0, value_type = f64)]
    pub amount_paid: i64,
    /// When it became `completed`, else `null`.
    #[serde(serialize_with = "optional_datetime")]
    #[schema(required = true)]
    pub paid_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "datetime")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "datetime")]
    pub updated_at: DateTime<Utc>,
}

impl From<payment::Model> for PaymentOut {
    fn from(p: payment::Model) -> Self {
        PaymentOut {
            id: p.id,
            registration: p.registration_id,
            payment_method: p.payment_method,
            payment_status: p.payment_status,
            amount_paid: p.amount_paid_minor,
            paid_at: p.paid_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A new payment.
#[derive(ToSchema)]
pub struct PaymentCreate {
    pub registration_id: Uuid,
    /// E.g. `QRIS`, `bank_transfer`.
    #[schema(min_length = 1, max_length = 50, pattern = r"\S")]
    pub payment_method: String,
    /// At most two decimals; never negative.
    #[schema(minimum = 0, maximum = 9999999999.99, value_type = f64)]
    pub amount_paid: i64,
    /// Default `pending`; only those who manage the event (superuser,
    /// admin, its organiser) may create another status, such as a
    /// `completed` cash payment at the door (taken as sent).
    #[schema(required = false, value_type = PaymentStatus)]
    pub payment_status: Option<String>,
}

/// A payment's fields on PUT.
#[derive(ToSchema)]
pub struct PaymentWrite {
    #[schema(min_length = 1, max_length = 50, pattern = r"\S")]
    pub payment_method: String,
    #[schema(minimum = 0, maximum = 9999999999.99, value_type = f64)]
    pub amount_paid: i64,
    #[schema(required = false, value_type = PaymentStatus)]
    pub payment_status: Option<String>,
    /// `true`: mark `completed` even below the amount due (logged).
    #[schema(required = false)]
    pub force: Option<bool>,
}

/// A payment's fields as sent: on PATCH any may be missing.
pub struct PaymentPatch {
    pub payment_method: Option<String>,
    pub amount_paid: Option<i64>,
    pub payment_status: Option<String>,
    pub force: Option<bool>,
}

impl PaymentPatch {
    fn read(input: &mut Input) -> Self {
        PaymentPatch {
            payment_method: input.text("payment_method", Text::required(MAX_METHOD)),
            amount_paid: input.money("amount_paid", true),
            payment_status: input.choice("payment_status", false, STATUSES, &[]),
            force: input.boolean("force", false),
        }
    }
}

impl From<PaymentPatch> for PaymentChanges {
    fn from(p: PaymentPatch) -> Self {
        PaymentChanges {
            payment_method: p.payment_method,
            amount_paid_minor: p.amount_paid,
            status: p.payment_status,
            force: p.force.unwrap_or(false),
        }
    }
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentFilters {
    pub registration: Option<Uuid>,
    #[param(value_type = Option<PaymentStatus>)]
    pub payment_status: Option<String>,
}

/// List payments (scoped like registrations)
#[utoipa::path(
    get, path = "/api/payments", tag = "payments", operation_id = "payments_list",
    params(PaymentFilters, Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of payments", body = PaymentList),
        (status = 400, description = "A bad filter value", body = FieldErrorsBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    RawQuery(raw): RawQuery,
    SentUri(uri): SentUri,
    origin: Origin,
) -> ApiResult<Json<PaymentList>> {
    let query = QueryParams::parse(raw.as_deref());
    let mut errors = FieldErrors::default();
    let filters = PaymentFilters {
        registration: query.uuid("registration", &mut errors),
        payment_status: query.choice("payment_status", STATUSES, &[], &mut errors),
    };
    errors.into_result()?;
    let filter = PaymentFilter {
        registration: filters.registration,
        status: filters.payment_status,
        event: None,
    };
    let page = domain::list(&state, &caller, &filter, page_request(&query)).await?;
    Ok(Json(PaymentList::new(
        page,
        PaymentOut::from,
        &uri,
        &origin,
    )))
}

/// Create a payment
///
/// The registration's user, superuser and admin; only superuser and admin
/// may create a payment in a status other than `pending`. At most one
/// `completed` payment per registration (409). An `Idempotency-Key` header
/// makes retries safe: the same key from the same user within 24 hours
/// returns the first response and creates nothing.
#[utoipa::path(
    post, path = "/api/payments", tag = "payments", operation_id = "payments_create",
    request_body = PaymentCreate,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters")),
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Created (or the first answer to this Idempotency-Key)", body = PaymentOut),
        (status = 403, description = "Not allowed"),
        (status = 409, description = "The registration already has a completed payment",
            example = json!({"detail": "This registration already has a completed payment."})),
        (status = 422, description = "The Idempotency-Key was used with another request body",
            body = super::schemas::ErrorDetail,
            example = json!({"detail": "Idempotency-Key reused with a different request."})),
    )
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let key = super::body::idempotency_key(&headers)?
        .map(|sent| RequestKey::new(Endpoint::Payments, &sent, body.fingerprint()));
    if let Some(key) = &key
        && let Some(previous) =
            crate::domain::idempotency::remembered(&state, caller.id, key).await?
    {
        tracing::info!(
            "Payment request replayed for idempotency key of {}",
            caller.username
        );
        return super::replay(previous);
    }
    let mut input = body.input(false)?;
    let registration_id = input.uuid("registration_id", true);
    let fields = PaymentPatch::read(&mut input);
    let mut errors = std::mem::take(&mut input.errors);
    let found = match registration_id {
        Some(id) => domain::check_registration(&state, &caller, id, &mut errors).await?,
        None => None,
    };
    // A status only the event's managers may set is refused once the input
    // is valid.
    if errors.is_empty() {
        let manages = match &found {
            Some(r) => domain::manages(&state, &caller, r).await?,
            None => caller.is_admin(),
        };
        domain::check_status_allowed(manages, fields.payment_status.as_deref())?;
    }
    let create = match (registration_id, fields.payment_method, fields.amount_paid) {
        (Some(registration_id), Some(payment_method), Some(amount_paid)) if errors.is_empty() => {
            PaymentCreate {
                registration_id,
                payment_method,
                amount_paid,
                payment_status: fields.payment_status,
            }
        }
        _ => return Err(ApiError::Validation(errors)),
    };
    let new = NewPayment {
        registration_id: create.registration_id,
        payment_method: create.payment_method,
        amount_paid_minor: create.amount_paid,
        status: create.payment_status,
    };
    let created = domain::create(&state, &caller, new, key.as_ref(), |p| {
        serde_json::to_string(&PaymentOut::from(p.clone())).unwrap_or_default()
    })
    .await?;
    match created {
        Created::New(p) => Ok((StatusCode::CREATED, Json(PaymentOut::from(p))).into_response()),
        Created::Replayed(previous) => super::replay(previous),
    }
}

/// Read a payment (its registration's user, or those who manage the event)
#[utoipa::path(
    get, path = "/api/payments/{id}", tag = "payments", operation_id = "payments_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The payment", body = PaymentOut),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such payment"),
    )
)]
async fn retrieve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<PaymentOut>> {
    Ok(Json(
        domain::get(&state, &caller, path_id(&id)?).await?.into(),
    ))
}

/// Change a payment (superuser, admin)
///
/// PUT: `payment_method` and `amount_paid` are required; PATCH changes the
/// fields sent. Status moves: `pending→completed`, `pending→failed`,
/// `failed→pending`, `completed→refunded` (and to itself); others are a
/// 400 on `payment_status`.
#[utoipa::path(
    method(put, patch), path = "/api/payments/{id}", tag = "payments", operation_id = "payments_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = PaymentWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = PaymentOut),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such payment"),
        (status = 409, description = "Another completed payment, or changed meanwhile"),
    )
)]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    method: Method,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<PaymentOut>> {
    let partial = method == Method::PATCH;
    // 404 and 403 before the body is looked at (DRF's order).
    let found = domain::get_changeable(&state, &caller, path_id(&id)?).await?;
    let mut input = body.input(partial)?;
    let fields = PaymentPatch::read(&mut input);
    let errors = std::mem::take(&mut input.errors);
    let updated = domain::update(&state, &caller, found.id, fields.into(), errors).await?;
    Ok(Json(updated.into()))
}

/// Delete a payment (superuser, admin)
#[utoipa::path(
    delete, path = "/api/payments/{id}", tag = "payments", operation_id = "payments_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such payment"),
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
