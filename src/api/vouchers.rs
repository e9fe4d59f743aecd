//! `/api/vouchers/` (API.md §9): codes of an event for a discount or a
//! hidden ticket; those who manage the event.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::body::{JsonBody, path_id};
use super::error::ApiResult;
use super::extract::{AuthUser, SentUri};
use super::pagination::{Origin, Pagination, VoucherList, page_request};
use super::schemas::{FieldErrorsBody, ID_UUID, datetime, money, optional_datetime};
use crate::db::entities::voucher;
use crate::domain::FieldErrors;
use crate::domain::vouchers::{self as domain, DISCOUNT_TYPES, NewVoucher, VoucherChanges};
use crate::input::{Input, QueryParams, Text};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(retrieve, update, destroy))
}

#[derive(Serialize, ToSchema)]
#[schema(as = Voucher)]
pub struct VoucherOut {
    pub id: Uuid,
    /// The event's id.
    pub event: Uuid,
    /// As written; matched case-insensitively (unique per event).
    pub code: String,
    /// The tickets it is for; empty: every ticket of the event.
    pub tickets: Vec<Uuid>,
    /// `percent`, `fixed` or `none`.
    #[schema(example = "percent")]
    pub discount_type: String,
    /// A percentage (`percent`, 0–100) or an amount of money (`fixed`).
    #[serde(serialize_with = "money")]
    #[schema(minimum = 0, value_type = f64)]
    pub discount_value: i64,
    /// `null`: no limit.
    #[schema(required = true, minimum = 1)]
    pub max_uses: Option<i32>,
    /// Registrations holding it now (an expired or deleted one gives its use
    /// back); never above `max_uses`.
    #[schema(minimum = 0)]
    pub uses: i32,
    /// `null`: no end.
    #[serde(serialize_with = "optional_datetime")]
    #[schema(required = true, value_type = Option<DateTime<Utc>>)]
    pub valid_until: Option<DateTime<Utc>>,
    /// Whether it opens the event's hidden tickets it is for.
    pub unlocks_hidden: bool,
    #[serde(serialize_with = "datetime")]
    pub created_at: DateTime<Utc>,
}

impl From<voucher::Model> for VoucherOut {
    fn from(v: voucher::Model) -> Self {
        VoucherOut {
            tickets: domain::tickets_of(&v),
            id: v.id,
            event: v.event_id,
            code: v.code,
            discount_type: v.discount_type,
            discount_value: v.discount_value,
            max_uses: v.max_uses,
            uses: v.uses,
            valid_until: v.valid_until,
            unlocks_hidden: v.unlocks_hidden,
            created_at: v.created_at,
        }
    }
}

/// A voucher as sent (POST: `event` and `code` required; PATCH: any).
#[derive(ToSchema)]
pub struct VoucherWrite {
    /// The event's id (`event_id` is read too).
    pub event: Uuid,
    /// 1–64 letters, digits, `-` or `_`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+$")]
    pub code: String,
    /// Ticket ids of the event; empty or absent: all.
    pub tickets: Option<Vec<Uuid>>,
    /// `percent`, `fixed` or `none` (default).
    #[schema(value_type = Option<String>, example = "percent")]
    pub discount_type: Option<String>,
    /// A percentage (0–100) or an amount (at most two decimals); default 0.
    #[schema(minimum = 0, value_type = Option<f64>)]
    pub discount_value: Option<i64>,
    #[schema(minimum = 1, maximum = 2147483647)]
    pub max_uses: Option<i32>,
    pub valid_until: Option<DateTime<Utc>>,
    pub unlocks_hidden: Option<bool>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VoucherFilters {
    /// The event's id.
    pub event: Option<Uuid>,
}

/// The fields sent; `Some(None)` for a field set to `null`.
fn read(input: &mut Input, tz: chrono_tz::Tz) -> (Option<Uuid>, VoucherChanges) {
    let event = input
        .uuid("event", false)
        .or_else(|| input.uuid("event_id", false));
    let code = input.text("code", Text::required(domain::MAX_CODE));
    let tickets = input.strings("tickets", false).map(|raw| {
        raw.iter()
            .filter_map(|s| match Uuid::parse_str(s.trim()) {
                Ok(id) => Some(id),
                Err(_) => {
                    input
                        .errors
                        .add("tickets", format!("\"{s}\" is not a valid UUID."));
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    let discount_type = input.choice("discount_type", false, DISCOUNT_TYPES, &[]);
    let discount_value = input.money("discount_value", false);
    let max_uses = input
        .nullable_integer("max_uses", 1, i64::from(i32::MAX))
        .map(|m| m.and_then(|m| i32::try_from(m).ok()));
    let valid_until = if input.is_null("valid_until") {
        Some(None)
    } else {
        input.datetime("valid_until", false, tz).map(Some)
    };
    let unlocks_hidden = input.boolean("unlocks_hidden", false);
    (
        event,
        VoucherChanges {
            code,
            tickets,
            discount_type,
            discount_value,
            max_uses,
            valid_until,
            unlocks_hidden,
        },
    )
}

/// List vouchers (superuser, admin: all; organisers: their events')
#[utoipa::path(
    get, path = "/api/vouchers", tag = "vouchers", operation_id = "vouchers_list",
    params(VoucherFilters, Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of vouchers, newest first", body = VoucherList),
        (status = 400, description = "A bad filter value", body = FieldErrorsBody),
        (status = 403, description = "Neither admin nor organiser"),
    )
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    RawQuery(raw): RawQuery,
    SentUri(uri): SentUri,
    origin: Origin,
) -> ApiResult<Json<VoucherList>> {
    let query = QueryParams::parse(raw.as_deref());
    let mut errors = FieldErrors::default();
    let event = query.uuid("event", &mut errors);
    errors.into_result()?;
    let page = domain::list(&state, &caller, event, page_request(&query)).await?;
    Ok(Json(VoucherList::new(
        page,
        VoucherOut::from,
        &uri,
        &origin,
    )))
}

/// Add a voucher to an event (those who manage it)
#[utoipa::path(
    post, path = "/api/vouchers", tag = "vouchers", operation_id = "vouchers_create",
    request_body = VoucherWrite,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Added", body = VoucherOut),
        (status = 400, description = "A bad field (a code already used for the event…)"),
        (status = 403, description = "Not a manager of the event"),
    )
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<VoucherOut>)> {
    let mut input = body.input(false)?;
    let (event, fields) = read(&mut input, state.config.time_zone);
    if event.is_none() && !input.errors.has("event") {
        input.errors.add("event", "This field is required.");
    }
    let errors = std::mem::take(&mut input.errors);
    let new = NewVoucher {
        event_id: event.unwrap_or_else(Uuid::nil),
        code: fields.code.unwrap_or_default(),
        tickets: fields.tickets.unwrap_or_default(),
        discount_type: fields.discount_type.unwrap_or_else(|| "none".into()),
        discount_value: fields.discount_value.unwrap_or(0),
        max_uses: fields.max_uses.flatten(),
        valid_until: fields.valid_until.flatten(),
        unlocks_hidden: fields.unlocks_hidden.unwrap_or(false),
    };
    let created = domain::create(&state, &caller, new, errors).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// One voucher (those who manage its event)
#[utoipa::path(
    get, path = "/api/vouchers/{id}", tag = "vouchers", operation_id = "vouchers_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The voucher", body = VoucherOut),
        (status = 403, description = "Not a manager of its event"),
        (status = 404, description = "No such voucher"),
    )
)]
async fn retrieve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<VoucherOut>> {
    Ok(Json(
        domain::get(&state, &caller, path_id(&id)?).await?.into(),
    ))
}

/// Change a voucher (PUT and PATCH both change the fields sent)
///
/// `max_uses` never goes below `uses` (400); the event does not change.
#[utoipa::path(
    method(put, patch), path = "/api/vouchers/{id}", tag = "vouchers", operation_id = "vouchers_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = VoucherWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Changed", body = VoucherOut),
        (status = 400, description = "A bad field"),
        (status = 403, description = "Not a manager of its event"),
        (status = 404, description = "No such voucher"),
    )
)]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<VoucherOut>> {
    let found = domain::get(&state, &caller, path_id(&id)?).await?;
    let mut input = body.input(true)?;
    let (_, changes) = read(&mut input, state.config.time_zone);
    let errors = std::mem::take(&mut input.errors);
    let updated = domain::update(&state, &caller, found.id, changes, errors).await?;
    Ok(Json(updated.into()))
}

/// Delete a voucher; registrations made with it keep what they owe
#[utoipa::path(
    delete, path = "/api/vouchers/{id}", tag = "vouchers", operation_id = "vouchers_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not a manager of its event"),
        (status = 404, description = "No such voucher"),
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
