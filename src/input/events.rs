//! An event's fields as sent (the API's JSON, the console's form), read
//! by DRF's rules.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Input, Text};
use crate::domain::events::{EventChanges, MAX_QUOTA, NewEvent, STATUS_ALIASES, STATUSES};

/// An event's fields as sent: on PATCH any may be missing.
#[derive(Default)]
pub struct EventPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub quota: Option<i64>,
    pub category: Option<String>,
    pub status: Option<String>,
    /// Superuser and admin only.
    pub organizer_id: Option<Uuid>,
    /// `Some(None)`: back to the server's `TIME_ZONE`.
    pub timezone: Option<Option<String>>,
    /// `Some(None)`: none (`null` or blank).
    pub payment_instructions: Option<Option<String>>,
}

impl EventPatch {
    /// Reads the fields sent; on PUT and POST (`input` not partial) the
    /// missing required ones are errors.
    pub fn read(input: &mut Input, tz: chrono_tz::Tz) -> Self {
        EventPatch {
            name: input.text("name", Text::required(255)),
            description: input.text(
                "description",
                Text {
                    required: true,
                    max_len: 100_000,
                    allow_blank: true,
                },
            ),
            location: input.text("location", Text::required(255)),
            start_time: input.datetime("start_time", true, tz),
            end_time: input.datetime("end_time", true, tz),
            quota: input.integer("quota", true, 0, MAX_QUOTA),
            category: input.text("category", Text::required(100)),
            status: input.choice("status", false, STATUSES, STATUS_ALIASES),
            organizer_id: input.uuid("organizer_id", false),
            timezone: input.time_zone("timezone"),
            payment_instructions: input.optional_text("payment_instructions", 5000),
        }
    }

    /// Every required field, or `None` (their errors are recorded).
    pub fn complete(self) -> Option<NewEvent> {
        Some(NewEvent {
            name: self.name?,
            description: self.description?,
            location: self.location?,
            start_time: self.start_time?,
            end_time: self.end_time?,
            quota: self.quota?,
            category: self.category?,
            status: self.status,
            organizer_id: self.organizer_id,
            timezone: self.timezone.flatten(),
            payment_instructions: self.payment_instructions.flatten(),
        })
    }
}

impl From<EventPatch> for EventChanges {
    fn from(p: EventPatch) -> Self {
        EventChanges {
            name: p.name,
            description: p.description,
            location: p.location,
            start_time: p.start_time,
            end_time: p.end_time,
            quota: p.quota,
            category: p.category,
            status: p.status,
            organizer_id: p.organizer_id,
            timezone: p.timezone,
            payment_instructions: p.payment_instructions,
        }
    }
}
