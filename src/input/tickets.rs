//! A ticket type's fields as sent (the API's JSON, the console's form),
//! read by DRF's rules; money in minor units.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Input, Text};
use crate::domain::events::MAX_QUOTA;
use crate::domain::tickets::{MAX_NAME, NewTicket, TicketChanges};

/// A ticket's fields as sent: on PATCH any may be missing.
pub struct TicketPatch {
    pub event_id: Option<Uuid>,
    pub name: Option<String>,
    pub price: Option<i64>,
    pub sales_start: Option<DateTime<Utc>>,
    pub sales_end: Option<DateTime<Utc>>,
    /// Not below `sold` (409).
    pub quota: Option<i64>,
    /// 1–10080 minutes, or `null` (`Some(None)`): no window.
    pub payment_window_minutes: Option<Option<i32>>,
    /// Not listed publicly (default false).
    pub hidden: Option<bool>,
    /// A waiting list when sold out (default false).
    pub waitlist: Option<bool>,
    /// 1–720 hours an offer holds a seat (default 48).
    pub waitlist_offer_hours: Option<i32>,
}

/// The longest payment window: a week.
pub const MAX_PAYMENT_WINDOW: i64 = 10_080;

impl TicketPatch {
    /// Reads the fields sent; missing required ones are errors unless
    /// `input` is partial. Money is read into minor units.
    pub fn read(input: &mut Input, tz: chrono_tz::Tz) -> Self {
        TicketPatch {
            event_id: input.uuid("event_id", true),
            name: input.text("name", Text::required(MAX_NAME)),
            price: input.money("price", true),
            sales_start: input.datetime("sales_start", true, tz),
            sales_end: input.datetime("sales_end", true, tz),
            quota: input.integer("quota", true, 0, MAX_QUOTA),
            payment_window_minutes: input
                .nullable_integer("payment_window_minutes", 1, MAX_PAYMENT_WINDOW)
                .map(|minutes| minutes.and_then(|m| i32::try_from(m).ok())),
            hidden: input.boolean("hidden", false),
            waitlist: input.boolean("waitlist", false),
            waitlist_offer_hours: input
                .integer("waitlist_offer_hours", false, 1, 720)
                .and_then(|h| i32::try_from(h).ok()),
        }
    }

    /// Every field, or `None` (their errors are recorded).
    pub fn complete(self) -> Option<NewTicket> {
        Some(NewTicket {
            event_id: self.event_id?,
            name: self.name?,
            price_minor: self.price?,
            sales_start: self.sales_start?,
            sales_end: self.sales_end?,
            quota: self.quota?,
            payment_window_minutes: self.payment_window_minutes.flatten(),
            hidden: self.hidden.unwrap_or(false),
            waitlist: self.waitlist.unwrap_or(false),
            waitlist_offer_hours: self.waitlist_offer_hours.unwrap_or(48),
        })
    }
}

impl From<TicketPatch> for TicketChanges {
    fn from(p: TicketPatch) -> Self {
        TicketChanges {
            event_id: p.event_id,
            name: p.name,
            price_minor: p.price,
            sales_start: p.sales_start,
            sales_end: p.sales_end,
            quota: p.quota,
            payment_window_minutes: p.payment_window_minutes,
            hidden: p.hidden,
            waitlist: p.waitlist,
            waitlist_offer_hours: p.waitlist_offer_hours,
        }
    }
}
