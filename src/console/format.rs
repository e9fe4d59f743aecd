//! How numbers, dates, names and pages read on the console's pages.

use chrono::{DateTime, Utc};

use crate::db::entities::user;
use crate::domain::Page;
use crate::money::group_digits;
use crate::state::AppState;

/// "Sat 10 Jan 2027, 19:00 (in 40 days)" in the configured time zone.
pub fn when(state: &AppState, at: &DateTime<Utc>) -> String {
    relative(state.config.time_zone, at, "%a %-d %b %Y, %H:%M")
}

/// A moment in `zone` as `format` writes it, with how far off its day is:
/// "… (today)", "… (in 40 days)", "… (3 days ago)".
fn relative(zone: chrono_tz::Tz, at: &DateTime<Utc>, format: &str) -> String {
    let local = at.with_timezone(&zone);
    let days = (local.date_naive() - Utc::now().with_timezone(&zone).date_naive()).num_days();
    let relative = match days {
        0 => "today".to_string(),
        1 => "tomorrow".to_string(),
        d if d > 1 => format!("in {d} days"),
        -1 => "yesterday".to_string(),
        d => format!("{} days ago", -d),
    };
    format!("{} ({relative})", local.format(format))
}

/// Every IANA time zone name, for the event form's suggestions.
pub fn time_zones() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|z| z.name())
}

/// "Mon 1 Mar 2027, 18:00–21:00 WIB (Asia/Jakarta)": an event's start and
/// end where it happens (the end's date too when it ends another day).
pub fn event_span(zone: chrono_tz::Tz, start: &DateTime<Utc>, end: &DateTime<Utc>) -> String {
    let (from, to) = (start.with_timezone(&zone), end.with_timezone(&zone));
    let until = if to.date_naive() == from.date_naive() {
        to.format("%H:%M").to_string()
    } else {
        to.format("%a %-d %b %Y, %H:%M").to_string()
    };
    let abbreviation = to.format("%Z").to_string();
    // "UTC (UTC)" says it twice.
    let named = if abbreviation == zone.name() {
        String::new()
    } else {
        format!(" ({})", zone.name())
    };
    format!(
        "{}–{until} {abbreviation}{named}",
        from.format("%a %-d %b %Y, %H:%M"),
    )
}

/// "Sat 10 Jan 2027, 19:00 WIB (in 40 days)": a moment of an event, where
/// it happens, with how far off it is.
pub fn when_in(zone: chrono_tz::Tz, at: &DateTime<Utc>) -> String {
    relative(zone, at, "%a %-d %b %Y, %H:%M %Z")
}

/// "Sat 5 Dec 2026, 18:30 WIB (45 minutes left)": the end of a payment
/// window, where the event happens, with the time left as of `now`.
pub fn countdown(zone: chrono_tz::Tz, at: &DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (*at - now).num_minutes();
    let left = match minutes {
        m if m < 1 => "less than a minute left".to_owned(),
        1 => "1 minute left".to_owned(),
        m if m < 120 => format!("{m} minutes left"),
        m if m < 48 * 60 => format!("{} hours left", m / 60),
        m => format!("{} days left", m / (24 * 60)),
    };
    format!(
        "{} ({left})",
        at.with_timezone(&zone).format("%a %-d %b %Y, %H:%M %Z")
    )
}

/// When an event starts, where it happens: "Sat 10 Jan 2027, 19:00 WIB
/// (in 40 days)".
pub fn event_when(state: &AppState, event: &crate::db::entities::event::Model) -> String {
    when_in(
        crate::domain::events::zone_of(state, event),
        &event.start_time,
    )
}

/// "10 Jan 2027, 19:00 WIB": a moment in a zone, briefly.
pub fn short_in(zone: chrono_tz::Tz, at: &DateTime<Utc>) -> String {
    at.with_timezone(&zone)
        .format("%-d %b %Y, %H:%M %Z")
        .to_string()
}

/// The value of a `datetime-local` field in an event's zone.
pub fn field_datetime_in(zone: chrono_tz::Tz, at: &DateTime<Utc>) -> String {
    at.with_timezone(&zone).format("%Y-%m-%dT%H:%M").to_string()
}

/// "10 Jan 2027, 19:00" in the configured time zone.
pub fn short(state: &AppState, at: &DateTime<Utc>) -> String {
    at.with_timezone(&state.config.time_zone)
        .format("%-d %b %Y, %H:%M")
        .to_string()
}

/// A registration's payment in words, with its badge's class: `Free` (a
/// free ticket), `Paid`, `Payment pending`, `Payment failed`, `Refunded`,
/// `Not paid` (a priced ticket without a payment).
pub fn payment_words(priced: bool, status: Option<&str>) -> (&'static str, &'static str) {
    match (priced, status) {
        (false, _) => ("Free", "free"),
        (true, Some("completed")) => ("Paid", "completed"),
        (true, Some("pending")) => ("Payment pending", "pending"),
        (true, Some("failed")) => ("Payment failed", "failed"),
        (true, Some("refunded")) => ("Refunded", "refunded"),
        (true, _) => ("Not paid", "unpaid"),
    }
}

/// A payment's own status in words: `Paid`, `Pending`, `Failed`, `Refunded`.
pub fn payment_status_words(status: &str) -> &'static str {
    match status {
        "completed" => "Paid",
        "pending" => "Pending",
        "failed" => "Failed",
        "refunded" => "Refunded",
        _ => "Unknown",
    }
}

/// A payment method as people write it: `bank_transfer` → `Bank transfer`
/// (`QRIS` stays as it is).
pub fn method_words(method: &str) -> String {
    let spaced = method.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Whether a ticket type is on sale now (`open`: its event takes
/// registrations; `left`: what it can still sell), and how its sales stand
/// in words, its moments written by `moment`.
pub fn sales_state(
    open: bool,
    ticket: &crate::db::entities::ticket::Model,
    left: i64,
    moment: impl Fn(&DateTime<Utc>) -> String,
) -> (bool, String) {
    let now = Utc::now();
    let on_sale = open && ticket.sales_start <= now && now < ticket.sales_end && left > 0;
    let words = if !open {
        "Not on sale".to_string()
    } else if now < ticket.sales_start {
        format!("On sale from {}", moment(&ticket.sales_start))
    } else if now >= ticket.sales_end {
        "Sales have ended".to_string()
    } else if left == 0 {
        "Sold out".to_string()
    } else {
        format!("On sale until {}", moment(&ticket.sales_end))
    };
    (on_sale, words)
}

/// A ticket's price as an attendee reads it: "Free", or "IDR 75,000".
pub fn price(state: &AppState, minor: i64) -> String {
    if minor == 0 {
        "Free".into()
    } else {
        amount(state, minor)
    }
}

/// A count with thousands separators: 10,000.
pub fn count(n: u64) -> String {
    group_digits(&n.to_string())
}

/// An amount with the configured currency label: `IDR 150,000`.
pub fn amount(state: &AppState, minor: i64) -> String {
    crate::money::amount(&state.config.currency, minor)
}

/// A person's name, or their username when they gave none.
pub fn person(user: &user::Model) -> String {
    let name = format!("{} {}", user.first_name, user.last_name);
    let name = name.trim();
    if name.is_empty() {
        user.username.clone()
    } else {
        name.to_string()
    }
}

/// The person's name and username, for door staff.
pub fn full_name(user: &user::Model) -> String {
    let name = person(user);
    if name == user.username {
        name
    } else {
        format!("{name} ({})", user.username)
    }
}

/// A value for a CSV cell that a spreadsheet will not run: one starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`
/// (the `csv` crate does the quoting).
pub fn csv_text(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// RFC 3339 in UTC with `Z`, as the API writes datetimes.
pub fn rfc3339(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// "1–50 of 10,000" and the previous/next links of a page.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Pager {
    pub first: String,
    pub last: String,
    pub count: String,
    pub previous: Option<String>,
    pub next: Option<String>,
}

/// The pager of `page`; `params` are the list's other query parameters,
/// kept in the links.
pub fn pager<T>(page: &Page<T>, path: &str, params: &[(&str, &str)]) -> Pager {
    pager_with(page, path, params, "page")
}

/// A pager whose page number travels in `page_param` (for a second list on
/// one page).
pub fn pager_with<T>(
    page: &Page<T>,
    path: &str,
    params: &[(&str, &str)],
    page_param: &str,
) -> Pager {
    let first = if page.count == 0 {
        0
    } else {
        (page.number - 1) * page.size + 1
    };
    let last = first + page.items.len() as u64 - u64::from(first > 0);
    let link = |number: u64| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
            query.append_pair(k, v);
        }
        query.append_pair(page_param, &number.to_string());
        format!("{path}?{}", query.finish())
    };
    Pager {
        first: count(first),
        last: count(last),
        count: count(page.count),
        previous: (page.number > 1).then(|| link(page.number - 1)),
        next: (page.number < page.total_pages).then(|| link(page.number + 1)),
    }
}

/// `?page=` (1 when absent or not a number).
pub fn page_number(query: Option<&str>) -> u64 {
    super::query_value(query, "page")
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::money;

    #[test]
    fn money_and_counts_read_with_separators() {
        assert_eq!(money(15_000_000), "150,000");
        assert_eq!(money(1250), "12.50");
        assert_eq!(money(-1250), "-12.50");
        assert_eq!(money(0), "0");
        assert_eq!(count(10_000), "10,000");
        assert_eq!(count(999), "999");
    }

    #[test]
    fn csv_formulas_are_neutralised() {
        assert_eq!(csv_text("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_text("@x"), "'@x");
        assert_eq!(csv_text("\tx"), "'\tx");
        assert_eq!(csv_text("Ayu"), "Ayu");
    }
}
