//! Payments on the event page: staff moving a payment's status along the
//! state machine, a refund confirmed on its own page first.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::console::attendee::Confirm;
use crate::console::format::{amount, person};
use crate::console::{Visit, path_uuid, posted, redirect_with, refusal, refusal_words, visit};
use crate::domain::payments::{self, PaymentChanges};
use crate::domain::{FieldErrors, accounts};
use crate::state::AppState;

/// A refund gives money back: it is confirmed on its own page first.
pub(super) async fn refund_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/payments/{id}/refund");
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, &here, "events").await);
    let id = page_or_return!(path_uuid(&id));
    let found = match payments::get_changeable(&state, &caller, id).await {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let who = match accounts::users_by_id(&state, &[found.user_id]).await {
        Ok(people) => people.get(&found.user_id).map(person).unwrap_or_default(),
        Err(e) => return refusal(e),
    };
    Confirm {
        frame: &frame,
        title: "Mark this payment refunded?".into(),
        question: format!(
            "Mark the payment of {} by {who} ({}) as refunded?",
            amount(&state, found.amount_paid_minor),
            found.payment_method
        ),
        consequences: vec![
            "Do this once the money is back with them: a refund cannot be undone.".into(),
            "Their registration stays; it counts as unpaid again.".into(),
        ],
        action: format!("/console/payments/{id}"),
        button: "Mark refunded",
        back: format!("/console/events/{}/#payments", found.event_id),
        fields: vec![("status", "refunded".into())],
    }
    .page()
}

/// A payment's status moved by staff (superuser and admin), only along the
/// state machine's allowed moves.
pub(super) async fn move_payment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (visit, fields) =
        page_or_return!(posted(&state, &headers, &body, "/console/events/").await);
    let id = page_or_return!(path_uuid(&id));
    let found = match payments::get_changeable(&state, &visit.caller, id).await {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let back = format!("/console/events/{}/#payments", found.event_id);
    let mut errors = FieldErrors::default();
    let to = crate::input::canonical_choice(fields.get("status"), payments::STATUSES, &[]);
    if to.is_none() {
        errors.add("payment_status", "Choose a status.");
    }
    let changes = PaymentChanges {
        status: to,
        ..PaymentChanges::default()
    };
    match payments::update(&state, &visit.caller, id, changes, errors).await {
        Ok(updated) => redirect_with(
            &state,
            &back,
            "ok",
            &format!("Payment marked {}.", updated.payment_status),
        ),
        Err(e) => redirect_with(&state, &back, "error", &refusal_words(&e)),
    }
}
