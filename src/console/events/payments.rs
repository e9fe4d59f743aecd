//! Payments on the event page: those who manage the event moving a
//! payment's status along the state machine; a refund, and a payment
//! completed below the amount due, confirmed on their own page first.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use uuid::Uuid;

use crate::console::attendee::Confirm;
use crate::console::format::{
    Pager, amount, method_words, page_number, pager, payment_status_words, person, short,
};
use crate::console::{
    Frame, Visit, path_uuid, posted, query_text, redirect_with, refusal, refusal_words, render,
    visit,
};
use crate::domain::payments::{self, PaymentChanges, PaymentFilter};
use crate::domain::{FieldErrors, PageRequest, accounts, events};
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

/// Completing a payment below the amount due is asked first: the
/// confirmation sends it forced (recorded in the log).
pub(super) async fn complete_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/payments/{id}/complete");
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, &here, "events").await);
    let id = page_or_return!(path_uuid(&id));
    let found = match payments::get_changeable(&state, &caller, id).await {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let due = match payments::amount_due(state.db.conn(), found.registration_id).await {
        Ok(due) => due,
        Err(e) => return refusal(e.into()),
    };
    let who = match accounts::users_by_id(&state, &[found.user_id]).await {
        Ok(people) => people.get(&found.user_id).map(person).unwrap_or_default(),
        Err(e) => return refusal(e),
    };
    Confirm {
        frame: &frame,
        title: "Mark completed though it is short?".into(),
        question: format!(
            "{who} paid {} of the {} due. Mark the payment completed anyway?",
            amount(&state, found.amount_paid_minor),
            amount(&state, due)
        ),
        consequences: vec![
            "Their ticket counts as paid: the rest will not be asked for.".into(),
            "The history records that it was completed below the amount due.".into(),
        ],
        action: format!("/console/payments/{id}"),
        button: "Mark completed anyway",
        back: format!("/console/events/{}/#payments", found.event_id),
        fields: vec![("status", "completed".into()), ("force", "true".into())],
    }
    .page()
}

/// A payment's status moved by those who manage its event, only along the
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
    let back = match crate::console::local_next(Some(fields.get("back"))).as_str() {
        "/console/" => format!("/console/events/{}/#payments", found.event_id),
        other => other.to_owned(),
    };
    let mut errors = FieldErrors::default();
    let to = crate::input::canonical_choice(fields.get("status"), payments::STATUSES, &[]);
    if to.is_none() {
        errors.add("payment_status", "Choose a status.");
    }
    let changes = PaymentChanges {
        status: to,
        force: fields.get("force") == "true",
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

/// One payment in the payments list.
struct ListedPayment {
    id: Uuid,
    person: String,
    event_id: Uuid,
    event: String,
    method: String,
    due: String,
    paid: String,
    short: bool,
    status: String,
    status_words: String,
    when: String,
    has_proof: bool,
    /// (target status, button words) the state machine allows.
    moves: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "payments.html")]
struct PaymentsPage<'a> {
    frame: &'a Frame,
    rows: Vec<ListedPayment>,
    pager: Pager,
    status: String,
    statuses: &'static [(&'static str, &'static str)],
    /// Where the move buttons come back to.
    back: String,
}

/// The status filter's choices; pending first, as the default.
const STATUS_CHOICES: &[(&str, &str)] = &[
    ("pending", "Pending: to confirm"),
    ("completed", "Paid"),
    ("failed", "Failed"),
    ("refunded", "Refunded"),
    ("all", "All"),
];

/// Payments of the events the caller manages (all of them for superuser
/// and admin), those waiting for a decision first, with their proofs and
/// the moves the state machine allows.
pub(super) async fn payments_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, "/console/payments/", "payments").await);
    if !frame.may_manage {
        return crate::console::not_found_page();
    }
    let raw = query.as_deref();
    let status = match query_text(raw, "status").as_str() {
        "" => "pending".to_owned(),
        s if STATUS_CHOICES.iter().any(|(v, _)| *v == s) => s.to_owned(),
        _ => "pending".to_owned(),
    };
    let filter = PaymentFilter {
        status: (status != "all").then(|| status.clone()),
        ..PaymentFilter::default()
    };
    let request = PageRequest {
        page: page_number(raw),
        size: 50,
    };
    let loaded = async {
        let page = payments::list(&state, &caller, &filter, request).await?;
        let registrations: Vec<Uuid> = page.items.iter().map(|p| p.registration_id).collect();
        let due = payments::amounts_due(&state, &registrations).await?;
        let event_ids: Vec<Uuid> = page.items.iter().map(|p| p.event_id).collect();
        let named = events::by_ids(&state, &event_ids).await?;
        let user_ids: Vec<Uuid> = page.items.iter().map(|p| p.user_id).collect();
        let people = accounts::users_by_id(&state, &user_ids).await?;
        Ok::<_, crate::domain::DomainError>((page, due, named, people))
    }
    .await;
    let (page, due, named, people) = match loaded {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let back = format!("/console/payments/?status={status}");
    let pager = pager(&page, "/console/payments/", &[("status", &status)]);
    let rows = page
        .items
        .into_iter()
        // Only the events the caller manages (an organiser's own tickets
        // elsewhere are not theirs to move).
        .filter(|p| {
            named
                .get(&p.event_id)
                .is_some_and(|e| caller.manages_event(e.organizer_id))
        })
        .map(|p| {
            let owed = due.get(&p.registration_id).copied().unwrap_or(0);
            ListedPayment {
                id: p.id,
                person: people.get(&p.user_id).map(person).unwrap_or_default(),
                event_id: p.event_id,
                event: named
                    .get(&p.event_id)
                    .map(|e| e.name.clone())
                    .unwrap_or_default(),
                method: method_words(&p.payment_method),
                due: amount(&state, owed),
                paid: amount(&state, p.amount_paid_minor),
                short: p.amount_paid_minor < owed,
                status_words: payment_status_words(&p.payment_status).to_owned(),
                when: match &p.paid_at {
                    Some(paid) => format!("paid {}", short(&state, paid)),
                    None => format!("sent {}", short(&state, &p.created_at)),
                },
                has_proof: p.proof_key.is_some(),
                moves: super::page::MOVES
                    .iter()
                    .filter(|(from, _, _)| *from == p.payment_status)
                    .map(|(_, to, words)| ((*to).to_string(), (*words).to_string()))
                    .collect(),
                status: p.payment_status,
            }
        })
        .collect();
    let html = PaymentsPage {
        frame: &frame,
        rows,
        pager,
        status,
        statuses: STATUS_CHOICES,
        back,
    }
    .render();
    render(&frame, StatusCode::OK, html)
}

/// Cash taken at the door for a registration: a completed `cash` payment of
/// the amount due, by one who manages its event.
pub(super) async fn took_cash(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (visit, _) = page_or_return!(posted(&state, &headers, &body, "/console/events/").await);
    let id = page_or_return!(path_uuid(&id));
    let due = match payments::amount_due(state.db.conn(), id).await {
        Ok(due) => due,
        Err(e) => return refusal(e.into()),
    };
    let new = payments::NewPayment {
        registration_id: id,
        payment_method: "cash".into(),
        amount_paid_minor: due,
        status: Some("completed".into()),
    };
    match payments::create(&state, &visit.caller, new, None, |_| String::new()).await {
        Ok(payments::Created::New(p)) => redirect_with(
            &state,
            &format!("/console/events/{}/#registrations", p.event_id),
            "ok",
            &format!(
                "Cash payment of {} recorded.",
                amount(&state, p.amount_paid_minor)
            ),
        ),
        // No idempotency key is sent: nothing is ever replayed.
        Ok(payments::Created::Replayed(_)) => {
            redirect_with(&state, "/console/events/", "ok", "Cash payment recorded.")
        }
        Err(e @ (crate::domain::DomainError::NotFound | crate::domain::DomainError::Forbidden)) => {
            refusal(e)
        }
        Err(e) => redirect_with(&state, "/console/events/", "error", &refusal_words(&e)),
    }
}
