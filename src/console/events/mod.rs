//! Organisers' events (superuser and admin: all). Another organiser's
//! event is a 404, as if it did not exist.
//!
//! - `list`: the events list.
//! - `page`: the event page (everything it shows, read and cached).
//! - `forms`: creating, editing and deleting an event.
//! - `tickets`, `posters`: adding and deleting ticket types and posters.
//! - `payments`: staff moving payments, refunds confirmed first.
//! - `export`: the registrations as CSV.

mod box_office;
mod export;
mod forms;
mod list;
mod page;
mod payments;
mod posters;
mod tickets;

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use uuid::Uuid;

use super::format::count;
use super::{Frame, not_found_page, refusal};
use crate::domain::{Caller, DomainError, events};
use crate::state::AppState;

use export::registrations_csv;
use forms::{create, delete, delete_confirm, new_form, update};
use list::list;
use page::event_page;
use payments::{complete_confirm, move_payment, payments_page, refund_confirm, took_cash};
use posters::{poster_delete, poster_delete_confirm, upload_poster};
use tickets::{add_ticket, ticket_delete, ticket_delete_confirm, ticket_edit, ticket_edit_form};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/events", get(list))
        .route("/console/events/new", get(new_form).post(create))
        .route("/console/events/{id}", get(event_page).post(update))
        .route(
            "/console/events/{id}/delete",
            get(delete_confirm).post(delete),
        )
        .route("/console/events/{id}/tickets", post(add_ticket))
        .route(
            "/console/events/{id}/posters",
            post(upload_poster).layer(axum::extract::DefaultBodyLimit::max(
                crate::input::posters::MAX_UPLOAD_BODY + 64 * 1024,
            )),
        )
        .route(
            "/console/events/{id}/registrations.csv",
            get(registrations_csv),
        )
        .route(
            "/console/tickets/{id}/edit",
            get(ticket_edit_form).post(ticket_edit),
        )
        .route(
            "/console/tickets/{id}/delete",
            get(ticket_delete_confirm).post(ticket_delete),
        )
        .route(
            "/console/posters/{id}/delete",
            get(poster_delete_confirm).post(poster_delete),
        )
        .route(
            "/console/events/{id}/vouchers",
            post(box_office::add_voucher),
        )
        .route(
            "/console/vouchers/{id}/disable",
            post(box_office::disable_voucher),
        )
        .route("/console/payments", get(payments_page))
        .route("/console/registrations/{id}/cash", post(took_cash))
        .route("/console/payments/{id}", post(move_payment))
        .route("/console/payments/{id}/refund", get(refund_confirm))
        .route("/console/payments/{id}/complete", get(complete_confirm))
}

/// Those who may not create events have no events section.
pub(super) fn refuse_unless_manager(frame: &Frame) -> Result<(), Response> {
    if frame.may_manage {
        Ok(())
    } else {
        Err(refusal(DomainError::Forbidden))
    }
}

/// The fields of the event form.
pub(super) const EVENT_FIELDS: &[&str] = &[
    "name",
    "description",
    "location",
    "start_time",
    "end_time",
    "quota",
    "category",
    "status",
    "timezone",
    "payment_instructions",
];

/// The fields of the ticket form.
pub(super) const TICKET_FIELDS: &[&str] = &[
    "name",
    "price",
    "sales_start",
    "sales_end",
    "quota",
    "payment_window_minutes",
    "waitlist",
    "waitlist_offer_hours",
    "hidden",
];

/// An event the caller manages (another's is a 404 page).
pub(super) async fn managed(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<crate::db::entities::event::Model, Response> {
    match events::get_managed(state, caller, id).await {
        Ok(event) => Ok(event),
        Err(DomainError::Forbidden) => Err(not_found_page()),
        Err(e) => Err(refusal(e)),
    }
}

pub(super) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}
