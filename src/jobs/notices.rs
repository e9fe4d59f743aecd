//! Telling attendees that their event changed (API.md §8.1): cancelled,
//! moved, or somewhere else. One job per registration is queued in the
//! event update's transaction (`db::outbox::enqueue_event_change`); each
//! sends one mail saying what changed, before and after.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::Outcome;
use super::letters::{Action, Letter, greeting};
use super::reminders::{Context, event_card, footer, format_when, load};
use crate::db::entities::{outbox, payment};
use crate::db::outbox::EventChange;
use crate::state::AppState;

pub async fn run_job(state: &AppState, job: &outbox::Model) -> Outcome {
    let Some(registration_id) = job.registration_id else {
        return Outcome::Skipped("the job names no registration".into());
    };
    let Some(change) = job
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<EventChange>(p).ok())
    else {
        return Outcome::Skipped("the job says nothing about a change".into());
    };
    let context = match load(state, registration_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Outcome::Skipped("the registration no longer exists".into()),
        Err(e) => return Outcome::Failed(e),
    };
    let paid = match payment::Entity::find()
        .filter(payment::Column::RegistrationId.eq(registration_id))
        .filter(payment::Column::PaymentStatus.eq("completed"))
        .all(state.db.conn())
        .await
    {
        Ok(found) => found.iter().map(|p| p.amount_paid_minor).sum::<i64>(),
        Err(e) => return Outcome::Failed(e.into()),
    };
    let email = match letter(state, &context, &change, paid).into_email() {
        Ok(email) => email,
        Err(e) => return Outcome::Failed(e),
    };
    super::letters::send(state, job, &email).await
}

/// The time something was, beside the new one (whose zone is named
/// already): "Saturday 5 December 2026 at 23:51 WIB".
fn was_when(at: &chrono::DateTime<chrono::Utc>, zone: chrono_tz::Tz) -> String {
    at.with_timezone(&zone)
        .format("%A %-d %B %Y at %H:%M %Z")
        .to_string()
}

/// The mail: what changed, as "now — was …" lines in the event's zone.
fn letter(state: &AppState, c: &Context, change: &EventChange, paid_minor: i64) -> Letter {
    let zone = c.event.zone(state.config.time_zone);
    let name = &c.event.name;
    let mut details = Vec::new();
    let (subject, headline) = if change.cancelled {
        if paid_minor > 0 {
            details.push(format!(
                "You paid {}: the organiser will refund it.",
                crate::money::amount(&state.config.currency, paid_minor)
            ));
        }
        details.push("Your ticket is no longer valid. We are sorry.".into());
        (
            format!("Cancelled: {name}"),
            format!("{name} is cancelled."),
        )
    } else {
        if let Some((was, now)) = &change.start_time {
            details.push(format!(
                "Starts: {} — was {}",
                format_when(now, zone),
                was_when(was, zone)
            ));
        }
        if let Some((was, now)) = &change.end_time {
            details.push(format!(
                "Ends: {} — was {}",
                format_when(now, zone),
                was_when(was, zone)
            ));
        }
        if let Some((was, now)) = &change.location {
            details.push(format!("Place: {now} — was {was}"));
        }
        details
            .push("Your ticket stays valid: nothing to do unless you can no longer come.".into());
        let what = match (
            change.start_time.is_some() || change.end_time.is_some(),
            change.location.is_some(),
        ) {
            (true, true) => "has a new time and place",
            (true, false) => "has a new time",
            _ => "has a new place",
        };
        (format!("Changed: {name} {what}"), format!("{name} {what}."))
    };
    details.insert(0, format!("Ticket: {}", c.ticket.name));
    Letter {
        to: c.user.email.clone(),
        subject,
        greeting: greeting(&c.user),
        headline,
        event: Some(event_card(state, &c.event)),
        action: (!change.cancelled).then(|| Action {
            label: "View my ticket".into(),
            url: format!("{}/console/my/", state.mail_origin()),
        }),
        ticket: None,
        details,
        footer: footer(&c.event),
    }
}

/// The mail telling someone their unpaid hold expired (API.md §9): the
/// seat went back on sale; registering again (while there is room) gives a
/// new window. A hold revived or paid since is not told.
pub async fn run_hold_expired(state: &AppState, job: &outbox::Model) -> Outcome {
    let Some(registration_id) = job.registration_id else {
        return Outcome::Skipped("the job names no registration".into());
    };
    let context = match load(state, registration_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Outcome::Skipped("the registration no longer exists".into()),
        Err(e) => return Outcome::Failed(e),
    };
    if context.registration.status != crate::db::registration_writer::EXPIRED {
        return Outcome::Skipped("the registration holds its seat again".into());
    }
    let zone = context.event.zone(state.config.time_zone);
    let name = &context.event.name;
    let mut details = vec![format!("Ticket: {}", context.ticket.name)];
    if let Some(until) = &context.registration.hold_expires_at {
        details.push(format!("Pay by: {} (passed)", format_when(until, zone)));
    }
    details.push(
        "No payment of it was confirmed in time, so the seat went back on sale. \
         Register again to get a new payment window, while seats remain."
            .into(),
    );
    let letter = Letter {
        to: context.user.email.clone(),
        subject: format!("Your hold on {name} has expired"),
        greeting: greeting(&context.user),
        headline: format!("Your unpaid ticket for {name} has expired."),
        event: Some(event_card(state, &context.event)),
        action: Some(Action {
            label: "Register again".into(),
            url: format!("{}/e/{}", state.mail_origin(), context.event.id),
        }),
        ticket: None,
        details,
        footer: footer(&context.event),
    };
    let email = match letter.into_email() {
        Ok(email) => email,
        Err(e) => return Outcome::Failed(e),
    };
    super::letters::send(state, job, &email).await
}

/// The mail offering a seat to the first person waiting (API.md §9): the
/// seat is held for them until the offer's end; they accept on My tickets.
/// An offer accepted, left or lapsed since is not sent.
pub async fn run_waitlist_offer(state: &AppState, job: &outbox::Model) -> Outcome {
    use crate::db::entities::{event, ticket, user, waitlist_entry};
    let Some(entry_id) = job
        .payload
        .as_deref()
        .and_then(|p| uuid::Uuid::parse_str(p).ok())
    else {
        return Outcome::Skipped("the job names no waiting-list entry".into());
    };
    let db = state.db.conn();
    let loaded = async {
        let Some(entry) = waitlist_entry::Entity::find_by_id(entry_id).one(db).await? else {
            return Ok::<_, sea_orm::DbErr>(None);
        };
        let person = user::Entity::find_by_id(entry.user_id).one(db).await?;
        let seat = ticket::Entity::find_by_id(entry.ticket_id).one(db).await?;
        let happening = event::Entity::find_by_id(entry.event_id).one(db).await?;
        Ok(match (person, seat, happening) {
            (Some(p), Some(t), Some(e)) => Some((entry, p, t, e)),
            _ => None,
        })
    }
    .await;
    let (entry, person, seat, happening) = match loaded {
        Ok(Some(found)) => found,
        Ok(None) => return Outcome::Skipped("the entry no longer exists".into()),
        Err(e) => return Outcome::Failed(e.into()),
    };
    if entry.status != crate::db::waitlist::OFFERED {
        return Outcome::Skipped(format!("the entry is {} now", entry.status));
    }
    let zone = happening.zone(state.config.time_zone);
    let name = &happening.name;
    let mut details = vec![format!("Ticket: {}", seat.name)];
    if let Some(until) = &entry.offer_expires_at {
        details.push(format!(
            "The seat is held for you until {}. After that it goes to the next person in line.",
            format_when(until, zone)
        ));
    }
    let letter = Letter {
        to: person.email.clone(),
        subject: format!("A seat for {name} is yours"),
        greeting: greeting(&person),
        headline: format!("A seat for {name} is free, and it is yours if you want it."),
        event: Some(event_card(state, &happening)),
        action: Some(Action {
            label: "Accept the seat".into(),
            url: format!("{}/console/my/", state.mail_origin()),
        }),
        ticket: None,
        details,
        footer: format!("Sent by DicoEvent because you joined the waiting list for {name}."),
    };
    let email = match letter.into_email() {
        Ok(email) => email,
        Err(e) => return Outcome::Failed(e),
    };
    super::letters::send(state, job, &email).await
}
