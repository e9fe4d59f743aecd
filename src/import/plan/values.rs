//! Values as Django stored them, read the way DicoEvent stores them: money,
//! statuses, password hashes and poster file names.

use std::collections::BTreeMap;

use super::table::USERS;
use crate::import::report::Report;
use crate::import::source;

/// Parses PostgreSQL's text of a `numeric(12,2)` into minor units, exactly
/// (never through a float).
pub fn parse_minor_units(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // More than two decimals is fine only if the extra ones are zeros.
    let (cents, rest) = fraction.split_at(fraction.len().min(2));
    if rest.bytes().any(|b| b != b'0') {
        return None;
    }
    let cents = format!("{cents:0<2}");
    let whole: i64 = whole.parse().ok()?;
    let cents: i64 = cents.parse().ok()?;
    let value = whole.checked_mul(100)?.checked_add(cents)?;
    Some(if negative { -value } else { value })
}

/// Our event status for a Django one, and why it changed (if it did).
pub fn map_event_status(raw: &str) -> (&'static str, Option<String>) {
    let key = raw.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    let known = match key.as_str() {
        "draft" => Some("draft"),
        "scheduled" => Some("scheduled"),
        "ongoing" => Some("ongoing"),
        "completed" => Some("completed"),
        "cancelled" => Some("cancelled"),
        _ => None,
    };
    if let Some(status) = known {
        return if status == raw {
            (status, None)
        } else {
            (status, Some(format!("status {raw:?} → {status:?}")))
        };
    }
    let nearest = match key.as_str() {
        "canceled" | "cancel" | "canceled_by_organizer" | "called_off" | "aborted" => "cancelled",
        "done" | "finished" | "ended" | "over" | "past" | "closed" | "complete" => "completed",
        "active" | "live" | "running" | "in_progress" | "started" | "happening" => "ongoing",
        "unpublished" | "hidden" | "pending_review" => "draft",
        // Anything else (planned, upcoming, open, published, postponed, …)
        // still lies ahead as far as we can tell.
        _ => "scheduled",
    };
    let reason = if key == "canceled" {
        format!("status {raw:?} → \"cancelled\" (our spelling)")
    } else {
        format!("unknown status {raw:?} → {nearest:?} (nearest)")
    };
    (nearest, Some(reason))
}

/// Our payment status for a Django one, and why it changed (if it did).
pub fn map_payment_status(raw: &str) -> (&'static str, Option<String>) {
    let key = raw.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    let known = match key.as_str() {
        "pending" => Some("pending"),
        "completed" => Some("completed"),
        "failed" => Some("failed"),
        "refunded" => Some("refunded"),
        _ => None,
    };
    if let Some(status) = known {
        return if status == raw {
            (status, None)
        } else {
            (status, Some(format!("payment_status {raw:?} → {status:?}")))
        };
    }
    let nearest = match key.as_str() {
        "paid" | "success" | "succeeded" | "successful" | "settled" | "captured" | "complete"
        | "done" => "completed",
        "refund" | "refunded_partially" | "partially_refunded" | "chargeback" | "reversed" => {
            "refunded"
        }
        "cancelled" | "canceled" | "declined" | "rejected" | "error" | "expired" | "denied"
        | "voided" | "void" => "failed",
        // Anything else: no money known to have moved.
        _ => "pending",
    };
    let reason = if key == "paid" {
        format!("payment_status {raw:?} → \"completed\"")
    } else {
        format!("unknown payment_status {raw:?} → {nearest:?} (nearest)")
    };
    (nearest, Some(reason))
}

/// Our own hashes are PHC strings (`$argon2id$…`); Django's never start with `$`.
pub(super) fn is_our_hash(stored: &str) -> bool {
    stored.starts_with('$')
}

/// The file name of an object key, kept as the poster's original name.
pub fn original_name(key: &str) -> String {
    let base = key.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ' | '(' | ')') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "upload".into()
    } else {
        cleaned
    }
}

/// Notes what the import can tell of a Django password hash (unusable, a
/// hasher DicoEvent cannot verify) and counts pbkdf2 iterations.
pub(super) fn classify_password(
    u: &source::User,
    iterations: &mut BTreeMap<String, usize>,
    report: &mut Report,
) {
    let stored = u.password.as_str();
    if stored.is_empty() || stored.starts_with('!') {
        USERS.notice(report, u.id, format!(
                "{}: unusable password (Django's set_unusable_password): kept unusable, the account cannot log in until its password is reset",
                u.username
            ),
        );
    } else if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
        let n = rest.split('$').next().unwrap_or("?").to_string();
        *iterations.entry(n).or_default() += 1;
    } else if stored.starts_with("argon2$argon2") {
        // Django's Argon2 hasher: verified as well, and re-hashed at login.
    } else {
        let hasher = stored.split('$').next().unwrap_or("").to_string();
        USERS.notice(report, u.id, format!(
                "{}: password hashed with {hasher:?}, which DicoEvent cannot verify: kept, but the user must reset the password",
                u.username
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_parsed_exactly() {
        assert_eq!(parse_minor_units("150000.50"), Some(15_000_050));
        assert_eq!(parse_minor_units("0.00"), Some(0));
        assert_eq!(parse_minor_units("7"), Some(700));
        assert_eq!(parse_minor_units("7.5"), Some(750));
        assert_eq!(parse_minor_units("-1.25"), Some(-125));
        assert_eq!(parse_minor_units("9999999999.99"), Some(999_999_999_999));
        assert_eq!(parse_minor_units("1.230"), Some(123));
        assert_eq!(parse_minor_units("1.234"), None);
        assert_eq!(parse_minor_units("NaN"), None);
        assert_eq!(parse_minor_units(""), None);
        assert_eq!(parse_minor_units("1e5"), None);
    }

    #[test]
    fn statuses_map_to_the_nearest() {
        assert_eq!(map_event_status("scheduled"), ("scheduled", None));
        assert_eq!(map_event_status("canceled").0, "cancelled");
        assert_eq!(map_event_status("Postponed").0, "scheduled");
        assert_eq!(map_event_status("in progress").0, "ongoing");
        assert!(map_event_status("Completed").1.is_some());
        assert_eq!(map_payment_status("paid").0, "completed");
        assert_eq!(map_payment_status("refund").0, "refunded");
        assert_eq!(map_payment_status("declined").0, "failed");
        assert_eq!(map_payment_status("whatever").0, "pending");
        assert_eq!(map_payment_status("failed"), ("failed", None));
    }

    #[test]
    fn original_names_are_file_names() {
        assert_eq!(original_name("posters/a b.png"), "a b.png");
        assert_eq!(original_name("../x<y>.jpg"), "x_y_.jpg");
        assert_eq!(original_name(""), "upload");
    }
}
