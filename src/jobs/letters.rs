//! Every mail's shape, in the house style (`templates/mail/letter.*`): the
//! product's name, a greeting, one sentence saying why it came, the event
//! as a card, the one thing to do as a button, the ticket (QR and short
//! code) when there is one, details, a footer saying why it was sent. The
//! text part says the same in the same order.

use askama::Template;

use crate::mail::{Email, InlineImage};

/// An event as a mail shows it.
pub struct EventCard {
    pub name: String,
    /// Day and time in the event's zone, the zone named.
    pub when: String,
    pub place: String,
}

/// The button (and, in the text part, the line) of the one thing to do.
pub struct Action {
    pub label: String,
    pub url: String,
}

/// A ticket in a mail: the QR code (an inline image), the short code in
/// large letters and the long code for door apps.
pub struct TicketPart {
    pub content_id: String,
    pub png: Vec<u8>,
    pub short_code: String,
    pub code: String,
}

/// What one mail says.
pub struct Letter {
    pub to: String,
    pub subject: String,
    pub greeting: String,
    pub headline: String,
    pub event: Option<EventCard>,
    pub action: Option<Action>,
    pub ticket: Option<TicketPart>,
    pub details: Vec<String>,
    pub footer: String,
}

#[derive(Template)]
#[template(path = "mail/letter.html")]
struct Html<'a> {
    subject: &'a str,
    greeting: &'a str,
    headline: &'a str,
    event: &'a Option<EventCard>,
    action: &'a Option<Action>,
    ticket: &'a Option<TicketPart>,
    details: &'a [String],
    footer: &'a str,
}

#[derive(Template)]
#[template(path = "mail/letter.txt")]
struct Text<'a> {
    greeting: &'a str,
    headline: &'a str,
    event: &'a Option<EventCard>,
    action: &'a Option<Action>,
    ticket: &'a Option<TicketPart>,
    details: &'a [String],
    footer: &'a str,
}

impl Letter {
    /// The message, both parts rendered.
    pub fn into_email(self) -> anyhow::Result<Email> {
        let html = Html {
            subject: &self.subject,
            greeting: &self.greeting,
            headline: &self.headline,
            event: &self.event,
            action: &self.action,
            ticket: &self.ticket,
            details: &self.details,
            footer: &self.footer,
        }
        .render()?;
        let text = Text {
            greeting: &self.greeting,
            headline: &self.headline,
            event: &self.event,
            action: &self.action,
            ticket: &self.ticket,
            details: &self.details,
            footer: &self.footer,
        }
        .render()?;
        let images = match self.ticket {
            Some(ticket) => vec![InlineImage {
                content_id: ticket.content_id,
                file_name: "ticket-qr.png".into(),
                png: ticket.png,
            }],
            None => Vec::new(),
        };
        Ok(Email {
            to: self.to,
            subject: self.subject,
            text,
            html,
            images,
        })
    }
}

/// How a mail greets a person: their first name, else their username.
pub fn greeting(user: &crate::db::entities::user::Model) -> String {
    if user.first_name.is_empty() {
        user.username.clone()
    } else {
        user.first_name.clone()
    }
}

/// Sends a job's mail, counts it in the metrics and logs it: the outcome
/// the job ends with.
pub async fn send(
    state: &crate::state::AppState,
    job: &crate::db::entities::outbox::Model,
    email: &Email,
) -> super::Outcome {
    match state.mailer.send(&job.id.to_string(), email).await {
        Ok(()) => {
            crate::metrics::METRICS.record_email(&job.kind, true);
            tracing::info!(
                "Mail sent: {} for {} to {}",
                job.kind,
                job.subject(),
                email.to
            );
            super::Outcome::Sent
        }
        Err(e) => {
            crate::metrics::METRICS.record_email(&job.kind, false);
            tracing::warn!("Mail failed: {} to {}: {e:#}", job.kind, email.to);
            super::Outcome::Failed(e)
        }
    }
}
