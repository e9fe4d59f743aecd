//! The e-mails: a confirmation when a registration is made, and a reminder
//! two hours before the event.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::Outcome;
use super::letters::{Action, EventCard, Letter, TicketPart, greeting};
use crate::db::entities::{event, outbox, registration, ticket, user};
use crate::db::outbox::{KIND_CONFIRMATION, KIND_REMINDER};
use crate::mail::Email;
use crate::state::AppState;

/// How long before the event its reminder goes out.
pub fn lead() -> chrono::Duration {
    chrono::Duration::hours(2)
}

fn reminder_key(registration_id: Uuid, start: &DateTime<Utc>) -> String {
    format!("reminder:{registration_id}:{}", start.timestamp_micros())
}

/// Enqueues the reminders that are due: registrations of events starting
/// within two hours (not cancelled, not yet started) made before their
/// reminder moment, that have no reminder for the event's current start time.
/// Returns how many were enqueued.
pub async fn schedule(state: &AppState) -> anyhow::Result<usize> {
    let now = state.clock.now();
    let events = event::Entity::find()
        .filter(event::Column::StartTime.gt(now))
        .filter(event::Column::StartTime.lte(now + lead()))
        .filter(event::Column::Status.is_not_in(["cancelled", "completed"]))
        .all(state.db.conn())
        .await?;
    let mut scheduled = 0;
    for e in events {
        let moment = e.start_time - lead();
        let registrations = registration::Entity::find()
            .filter(registration::Column::EventId.eq(e.id))
            .filter(registration::Column::RegisteredAt.lte(moment))
            .filter(registration::Column::Status.ne(crate::db::registration_writer::EXPIRED))
            .all(state.db.conn())
            .await?;
        if registrations.is_empty() {
            continue;
        }
        let keys: Vec<String> = registrations
            .iter()
            .map(|r| reminder_key(r.id, &e.start_time))
            .collect();
        let existing: HashSet<String> = outbox::Entity::find()
            .filter(outbox::Column::DedupeKey.is_in(keys.clone()))
            .all(state.db.conn())
            .await?
            .into_iter()
            .map(|o| o.dedupe_key)
            .collect();
        let missing: Vec<outbox::ActiveModel> = registrations
            .iter()
            .zip(keys)
            .filter(|(_, key)| !existing.contains(key))
            .map(|(r, key)| outbox::ActiveModel {
                id: Set(Uuid::now_v7()),
                kind: Set(KIND_REMINDER.into()),
                registration_id: Set(Some(r.id)),
                endpoint_id: Set(None),
                message_id: Set(None),
                dedupe_key: Set(key),
                event_start: Set(Some(e.start_time)),
                run_at: Set(moment),
                attempts: Set(0),
                locked_until: Set(None),
                locked_by: Set(None),
                status: Set("pending".into()),
                last_error: Set(None),
                created_at: Set(now),
                finished_at: Set(None),
                payload: Set(None),
            })
            .collect();
        if missing.is_empty() {
            continue;
        }
        let count = missing.len();
        let txn = state.db.begin_write().await?;
        // Another worker may enqueue the same reminders at the same time: the
        // unique key keeps one of each.
        let inserted = outbox::Entity::insert_many(missing)
            .on_conflict(
                OnConflict::column(outbox::Column::DedupeKey)
                    .do_nothing()
                    .to_owned(),
            )
            .exec(&*txn)
            .await;
        match inserted {
            Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => {}
            Err(err) if crate::db::errors::is_fk_violation(&err) => {
                // A registration was deleted meanwhile; the next pass retries the rest.
                continue;
            }
            Err(err) => return Err(err.into()),
        }
        txn.commit().await?;
        scheduled += count;
    }
    Ok(scheduled)
}

/// Everything a message about a registration needs.
pub(super) struct Context {
    pub registration: registration::Model,
    pub user: user::Model,
    pub event: event::Model,
    pub ticket: ticket::Model,
}

pub(super) async fn load(
    state: &AppState,
    registration_id: Uuid,
) -> anyhow::Result<Option<Context>> {
    let db = state.db.conn();
    let Some(r) = registration::Entity::find_by_id(registration_id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let user = user::Entity::find_by_id(r.user_id).one(db).await?;
    let event = event::Entity::find_by_id(r.event_id).one(db).await?;
    let ticket = ticket::Entity::find_by_id(r.ticket_id).one(db).await?;
    Ok(match (user, event, ticket) {
        (Some(user), Some(event), Some(ticket)) => Some(Context {
            registration: r,
            user,
            event,
            ticket,
        }),
        _ => None,
    })
}

/// Runs one claimed job: decides whether it is still wanted, then sends it.
pub async fn run_job(state: &AppState, job: &outbox::Model) -> Outcome {
    let Some(registration_id) = job.registration_id else {
        return Outcome::Skipped("the job names no registration".into());
    };
    let context = match load(state, registration_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Outcome::Skipped("the registration no longer exists".into()),
        Err(e) => return Outcome::Failed(e),
    };
    if context.event.status == "cancelled" {
        return Outcome::Skipped("the event is cancelled".into());
    }
    let email = match job.kind.as_str() {
        KIND_CONFIRMATION => match confirmation(state, &context) {
            Ok(email) => email,
            Err(e) => return Outcome::Failed(e),
        },
        KIND_REMINDER => {
            if job.event_start != Some(context.event.start_time) {
                return Outcome::Skipped("the event's start time changed".into());
            }
            if state.clock.now() >= context.event.start_time {
                return Outcome::Skipped("the event has already started".into());
            }
            match reminder(state, &context) {
                Ok(email) => email,
                Err(e) => return Outcome::Failed(e),
            }
        }
        other => return Outcome::Skipped(format!("unknown job kind {other:?}")),
    };
    super::letters::send(state, job, &email).await
}

/// "Tuesday 1 December 2026 at 18:00 WIB (Asia/Jakarta)": where the
/// event happens, its zone named; `%-d`, not `%e`, whose space padding gave
/// "Tuesday  1 December".
pub fn format_when(at: &DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let local = at.with_timezone(&tz);
    let abbreviation = local.format("%Z").to_string();
    if abbreviation == tz.name() {
        // "UTC (UTC)" says nothing twice.
        local.format("%A %-d %B %Y at %H:%M %Z").to_string()
    } else {
        local
            .format(&format!("%A %-d %B %Y at %H:%M %Z ({tz})"))
            .to_string()
    }
}

/// What the confirmation says will happen next. A reminder is scheduled
/// only for registrations made before the reminder moment (two hours before
/// the start, see `schedule`): a later (box-office, last-minute)
/// registration must not be promised one.
fn what_next(registered_at: &DateTime<Utc>, start: &DateTime<Utc>) -> &'static str {
    if registered_at >= start {
        "The event has already started: show your ticket code at the door."
    } else if *registered_at > *start - lead() {
        "It starts in less than two hours, so there will be no reminder: this e-mail is the one to keep."
    } else {
        "We will remind you two hours before it starts."
    }
}

/// The event as a mail's card: its day and time where it happens.
pub fn event_card(state: &AppState, event: &event::Model) -> EventCard {
    EventCard {
        name: event.name.clone(),
        when: format_when(&event.start_time, event.zone(state.config.time_zone)),
        place: event.location.clone(),
    }
}

/// The confirmation carries the ticket: the QR code shown inline, the short
/// code to be typed at the door if it does not scan, and the long code.
fn confirmation(state: &AppState, c: &Context) -> anyhow::Result<Email> {
    let code = state.tickets.sign(c.registration.id, c.event.id);
    let png = crate::ticket_codes::qr_png(&code)?;
    Letter {
        to: c.user.email.clone(),
        subject: format!("Registration confirmed: {}", c.event.name),
        greeting: greeting(&c.user),
        headline: format!("You are registered for {}.", c.event.name),
        event: Some(event_card(state, &c.event)),
        action: Some(Action {
            label: "View my ticket".into(),
            url: format!("{}/console/my/", state.mail_origin()),
        }),
        ticket: Some(TicketPart {
            content_id: format!("ticket-{}@dicoevent", c.registration.id.simple()),
            png,
            short_code: crate::ticket_codes::format_short_code(&c.registration.short_code),
            code,
        }),
        details: vec![
            format!("Ticket: {}", c.ticket.name),
            what_next(&c.registration.registered_at, &c.event.start_time).into(),
        ],
        footer: footer(&c.event),
    }
    .into_email()
}

fn reminder(state: &AppState, c: &Context) -> anyhow::Result<Email> {
    Letter {
        to: c.user.email.clone(),
        subject: format!("Reminder: {} starts in two hours", c.event.name),
        greeting: greeting(&c.user),
        headline: format!("{} starts in two hours.", c.event.name),
        event: Some(event_card(state, &c.event)),
        action: Some(Action {
            label: "View my ticket".into(),
            url: format!("{}/console/my/", state.mail_origin()),
        }),
        ticket: None,
        details: vec![
            format!("Ticket: {}", c.ticket.name),
            "Show the QR code of your confirmation, or your short code, at the door. See you there!"
                .into(),
        ],
        footer: footer(&c.event),
    }
    .into_email()
}

/// Why a registration's mail came.
pub(super) fn footer(event: &event::Model) -> String {
    format!(
        "Sent by DicoEvent because you registered for {}.",
        event.name
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_single_digit_day_has_no_padding() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 11, 0, 0).single();
        let at = at.expect("a valid time");
        assert_eq!(
            format_when(&at, chrono_tz::Asia::Jakarta),
            "Tuesday 1 December 2026 at 18:00 WIB (Asia/Jakarta)"
        );
    }

    #[test]
    fn the_confirmation_promises_a_reminder_only_when_one_will_come() {
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 18, 0, 0).single();
        let start = start.expect("a valid time");
        let early = start - chrono::Duration::hours(3);
        let late = start - chrono::Duration::minutes(90);
        assert!(what_next(&early, &start).contains("We will remind you"));
        assert!(what_next(&late, &start).contains("no reminder"));
        assert!(what_next(&start, &start).contains("already started"));
    }
}
