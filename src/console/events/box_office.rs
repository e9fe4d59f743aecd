//! The event page's box office (API.md §9): its vouchers (add, list with
//! uses, disable, delete) and its waiting lists (who is in line, who has an
//! offer). Read fresh on every visit, beside the cached view.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use uuid::Uuid;

use crate::console::{FormState, path_uuid, posted, redirect_with, refusal, refusal_words};
use crate::domain::vouchers::{self, NewVoucher, VoucherChanges};
use crate::domain::{Caller, DomainError, PageRequest};
use crate::input::Input;
use crate::state::AppState;

use super::managed;
use super::page::{Submitted, render_event};

/// The fields of the voucher form.
pub(super) const VOUCHER_FIELDS: &[&str] = &[
    "code",
    "discount_type",
    "discount_value",
    "max_uses",
    "valid_until",
    "unlocks_hidden",
];

/// A voucher as the event page lists it.
pub(super) struct VoucherRow {
    pub id: Uuid,
    pub code: String,
    /// "20 % off", "IDR 50,000 off", "No discount".
    pub discount: String,
    /// "3 of 10", "3 (no limit)".
    pub uses: String,
    /// "All tickets" or their names.
    pub tickets: String,
    /// "Until …", "Ended …" or "No end".
    pub valid: String,
    pub active: bool,
    pub unlocks_hidden: bool,
}

/// Someone in a waiting line, as the event page lists them.
pub(super) struct LineRow {
    pub ticket: String,
    pub person: String,
    /// "3rd in line", "Offered until …", "Accepted"…
    pub standing: String,
}

/// The event's vouchers and waiting lines, formatted.
pub(super) async fn load(
    state: &AppState,
    caller: &Caller,
    event: Uuid,
) -> Result<(Vec<VoucherRow>, Vec<LineRow>), DomainError> {
    let found = crate::domain::events::get_managed(state, caller, event).await?;
    let zone = crate::domain::events::zone_of(state, &found);
    let now = state.clock.now();
    let tickets = crate::domain::tickets::list(
        state,
        Some(event),
        true,
        &[],
        PageRequest { page: 1, size: 100 },
        None,
    )
    .await?;
    let name_of = |id: &Uuid| {
        tickets
            .items
            .iter()
            .find(|t| t.ticket.id == *id)
            .map_or_else(|| "a deleted ticket".to_owned(), |t| t.ticket.name.clone())
    };
    let vouchers = vouchers::list(
        state,
        caller,
        Some(event),
        PageRequest { page: 1, size: 100 },
    )
    .await?
    .items
    .into_iter()
    .map(|v| {
        let ids = vouchers::tickets_of(&v);
        let ended = v.valid_until.is_some_and(|u| u <= now);
        VoucherRow {
            id: v.id,
            discount: match v.discount_type.as_str() {
                "percent" => format!("{} % off", crate::money::money(v.discount_value)),
                "fixed" => format!(
                    "{} off",
                    crate::money::amount(&state.config.currency, v.discount_value)
                ),
                _ => "No discount".into(),
            },
            uses: match v.max_uses {
                Some(max) => format!("{} of {max}", v.uses),
                None => format!("{} (no limit)", v.uses),
            },
            tickets: if ids.is_empty() {
                "All tickets".into()
            } else {
                ids.iter().map(name_of).collect::<Vec<_>>().join(", ")
            },
            valid: match v.valid_until {
                Some(u) if ended => format!("Ended {}", crate::console::format::short_in(zone, &u)),
                Some(u) => format!("Until {}", crate::console::format::short_in(zone, &u)),
                None => "No end".into(),
            },
            active: !ended && v.max_uses.is_none_or(|m| v.uses < m),
            unlocks_hidden: v.unlocks_hidden,
            code: v.code,
        }
    })
    .collect();
    let mut lines = Vec::new();
    for t in &tickets.items {
        if !t.ticket.waitlist {
            continue;
        }
        let page = crate::domain::waitlist::list(
            state,
            caller,
            Some(t.ticket.id),
            PageRequest { page: 1, size: 100 },
        )
        .await?;
        let people: Vec<Uuid> = page.items.iter().map(|p| p.entry.user_id).collect();
        let named = crate::domain::accounts::users_by_id(state, &people).await?;
        for place in page.items {
            let e = &place.entry;
            if !matches!(e.status.as_str(), "waiting" | "offered") {
                continue;
            }
            lines.push(LineRow {
                ticket: t.ticket.name.clone(),
                person: named
                    .get(&e.user_id)
                    .map_or_else(|| e.user_id.to_string(), |u| u.email.clone()),
                standing: match (e.status.as_str(), place.position, e.offer_expires_at) {
                    ("offered", _, Some(until)) => format!(
                        "Offered until {}",
                        crate::console::format::short_in(zone, &until)
                    ),
                    (_, Some(n), _) => format!("Number {n} in line"),
                    (status, _, _) => status.to_owned(),
                },
            });
        }
    }
    Ok((vouchers, lines))
}

/// Adds a voucher from the event page's form (the API's rules and words).
pub(super) async fn add_voucher(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let back = format!("/console/events/{id}/");
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, &back).await);
    let id = page_or_return!(path_uuid(&id));
    let event = match managed(&state, &visit.caller, id).await {
        Ok(event) => event,
        Err(response) => return response,
    };
    let mut json = fields.to_json(VOUCHER_FIELDS);
    let on = json.get("unlocks_hidden").and_then(|v| v.as_str()) == Some("on");
    json.insert("unlocks_hidden".into(), serde_json::Value::Bool(on));
    for optional in ["discount_value", "max_uses", "valid_until"] {
        if json
            .get(optional)
            .and_then(|v| v.as_str())
            .is_some_and(|v| v.trim().is_empty())
        {
            json.remove(optional);
        }
    }
    let mut input = Input::new(json, false);
    let zone = crate::domain::events::zone_of(&state, &event);
    let code = input.text("code", crate::input::Text::required(vouchers::MAX_CODE));
    let discount_type = input.choice("discount_type", false, vouchers::DISCOUNT_TYPES, &[]);
    let discount_value = input.money("discount_value", false);
    let max_uses = input
        .integer("max_uses", false, 1, i64::from(i32::MAX))
        .and_then(|m| i32::try_from(m).ok());
    let valid_until = input.datetime("valid_until", false, zone);
    let unlocks_hidden = input.boolean("unlocks_hidden", false);
    let errors = std::mem::take(&mut input.errors);
    let new = NewVoucher {
        event_id: event.id,
        code: code.unwrap_or_default(),
        tickets: Vec::new(),
        discount_type: discount_type.unwrap_or_else(|| "none".into()),
        discount_value: discount_value.unwrap_or(0),
        max_uses,
        valid_until,
        unlocks_hidden: unlocks_hidden.unwrap_or(false),
    };
    match vouchers::create(&state, &visit.caller, new, errors).await {
        Ok(made) => redirect_with(
            &state,
            &format!("{back}#vouchers"),
            "ok",
            &format!("Voucher {} added.", made.code),
        ),
        Err(DomainError::Invalid(errors)) => {
            let submitted = Submitted {
                voucher: Some(FormState::submitted(VOUCHER_FIELDS, &fields, errors)),
                ..Submitted::default()
            };
            render_event(&state, visit, id, None, submitted, StatusCode::BAD_REQUEST).await
        }
        Err(e) => refusal(e),
    }
}

/// Ends a voucher now (it stays listed with its uses).
pub(super) async fn disable_voucher(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (visit, fields) =
        page_or_return!(posted(&state, &headers, &body, "/console/events/").await);
    let id = page_or_return!(path_uuid(&id));
    let back = format!(
        "/console/events/{}/#vouchers",
        fields.get("event_id").trim()
    );
    let changes = VoucherChanges {
        valid_until: Some(Some(state.clock.now())),
        ..VoucherChanges::default()
    };
    match vouchers::update(&state, &visit.caller, id, changes, Default::default()).await {
        Ok(v) => redirect_with(
            &state,
            &format!("/console/events/{}/#vouchers", v.event_id),
            "ok",
            &format!("Voucher {} disabled: it can no longer be used.", v.code),
        ),
        Err(e @ (DomainError::NotFound | DomainError::Forbidden)) => refusal(e),
        Err(e) => redirect_with(&state, &back, "error", &refusal_words(&e)),
    }
}
