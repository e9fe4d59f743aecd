//! From the Django rows and what the target already holds to the rows to
//! write: mapping, validation, de-duplication and counters. Pure: nothing
//! here reads or writes a database, so `--dry-run` is the same plan, unwritten.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::report::{Kind, Report};
use super::source::Snapshot;
use crate::db::entities::{event, group, payment, registration, ticket, user};

/// What the target database holds before the import (every table is small
/// enough to hold in memory: 100,000 registrations are a few MB).
#[derive(Default)]
pub struct Target {
    pub users: HashMap<Uuid, user::Model>,
    pub groups: Vec<group::Model>,
    pub memberships: HashSet<(Uuid, i32)>,
    pub events: HashMap<Uuid, event::Model>,
    pub tickets: HashMap<Uuid, ticket::Model>,
    pub registrations: HashMap<Uuid, registration::Model>,
    pub payments: HashMap<Uuid, payment::Model>,
    pub media: HashMap<Uuid, crate::db::entities::media::Model>,
}

/// The rows to write, each already compared with the target: only new or
/// really changed rows are here.
#[derive(Default)]
pub struct Plan {
    pub users: Vec<user::Model>,
    /// Groups to create, by name (the Django spelling).
    pub new_groups: Vec<String>,
    /// (user, lower-cased group name) pairs to add.
    pub memberships: Vec<(Uuid, String)>,
    pub events: Vec<event::Model>,
    pub tickets: Vec<ticket::Model>,
    pub registrations: Vec<registration::Model>,
    pub payments: Vec<payment::Model>,
    /// Poster rows whose event exists; their objects are checked later.
    pub media: Vec<super::source::Media>,
}

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
fn is_our_hash(stored: &str) -> bool {
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

/// Builds the plan; fills the report's read / created / updated / skipped
/// counts (but for posters, decided when their objects are read) and notes.
pub fn plan(src: &Snapshot, target: &Target, now: DateTime<Utc>, report: &mut Report) -> Plan {
    let mut plan = Plan::default();

    // ---- users
    report.table("users").read = src.users.len();
    let mut username_owner: HashMap<String, Uuid> = target
        .users
        .values()
        .map(|u| (u.username_key.clone(), u.id))
        .collect();
    let mut email_owner: HashMap<String, Uuid> = target
        .users
        .values()
        .map(|u| (u.email_key.clone(), u.id))
        .collect();
    let mut users: HashSet<Uuid> = target.users.keys().copied().collect();
    let mut date_joined: HashMap<Uuid, DateTime<Utc>> = target
        .users
        .values()
        .map(|u| (u.id, u.date_joined))
        .collect();
    let mut iterations: BTreeMap<String, usize> = BTreeMap::new();
    let mut staff_only = 0;
    for u in &src.users {
        let username_key = u.username.to_lowercase();
        let email_key = u.email.to_lowercase();
        if let Some(owner) = username_owner.get(&username_key).filter(|o| **o != u.id) {
            report.note(
                "users",
                u.id,
                Kind::Skipped,
                format!(
                    "username {:?} is already taken (case-insensitively) by account {owner}",
                    u.username
                ),
            );
            continue;
        }
        if let Some(owner) = email_owner.get(&email_key).filter(|o| **o != u.id) {
            report.note(
                "users",
                u.id,
                Kind::Skipped,
                format!(
                    "e-mail {:?} is already taken (case-insensitively) by account {owner}",
                    u.email
                ),
            );
            continue;
        }
        username_owner.insert(username_key.clone(), u.id);
        email_owner.insert(email_key.clone(), u.id);
        users.insert(u.id);
        date_joined.insert(u.id, u.date_joined);
        let existing = target.users.get(&u.id);
        // A hash of ours means the user has logged in here (or reset the
        // password here) since the last import: it is the newer one.
        let password = match existing {
            Some(e) if is_our_hash(&e.password) => e.password.clone(),
            _ => {
                classify_password(u, &mut iterations, report);
                u.password.clone()
            }
        };
        if u.is_staff && !u.is_superuser {
            staff_only += 1;
        }
        let desired = user::Model {
            id: u.id,
            username: u.username.clone(),
            username_key,
            email: u.email.clone(),
            email_key,
            password,
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            is_superuser: u.is_superuser,
            is_active: u.is_active,
            date_joined: u.date_joined,
        };
        match existing {
            None => {
                report.table("users").created += 1;
                plan.users.push(desired);
            }
            Some(e) if *e != desired => {
                report.table("users").updated += 1;
                plan.users.push(desired);
            }
            Some(_) => {}
        }
    }
    if !iterations.is_empty() {
        let parts: Vec<String> = iterations
            .iter()
            .map(|(n, count)| format!("{count} with {n} iterations"))
            .collect();
        report.remarks.push(format!(
            "passwords imported as Django pbkdf2_sha256 hashes ({}): they verify at login and are re-hashed with Argon2id then",
            parts.join(", ")
        ));
    }
    if staff_only > 0 {
        report.remarks.push(format!(
            "{staff_only} non-superuser accounts had Django's is_staff flag, which has no equivalent here: roles come from the groups admin and organizer"
        ));
    }

    // ---- groups and memberships
    report.table("groups").read = src.groups.len();
    let mut group_keys: HashMap<i32, String> = HashMap::new();
    let mut known_keys: HashSet<String> =
        target.groups.iter().map(|g| g.name_key.clone()).collect();
    for g in &src.groups {
        let key = g.name.to_lowercase();
        group_keys.insert(g.id, key.clone());
        if known_keys.insert(key) {
            report.table("groups").created += 1;
            plan.new_groups.push(g.name.clone());
        }
    }
    let target_group_keys: HashMap<i32, &str> = target
        .groups
        .iter()
        .map(|g| (g.id, g.name_key.as_str()))
        .collect();
    let mut members: HashSet<(Uuid, String)> = target
        .memberships
        .iter()
        .filter_map(|(u, g)| target_group_keys.get(g).map(|k| (*u, k.to_string())))
        .collect();
    report.table("memberships").read = src.memberships.len();
    for m in &src.memberships {
        let id = format!("{}/{}", m.user_id, m.group_id);
        let Some(key) = group_keys.get(&m.group_id) else {
            report.note(
                "memberships",
                id,
                Kind::Skipped,
                format!("group {} does not exist in the source", m.group_id),
            );
            continue;
        };
        if !users.contains(&m.user_id) {
            report.note(
                "memberships",
                id,
                Kind::Skipped,
                format!("user {} was not imported", m.user_id),
            );
            continue;
        }
        if members.insert((m.user_id, key.clone())) {
            report.table("memberships").created += 1;
            plan.memberships.push((m.user_id, key.clone()));
        }
    }

    // ---- events, tickets: which are importable
    report.table("events").read = src.events.len();
    let mut event_ids: HashSet<Uuid> = target.events.keys().copied().collect();
    let mut accepted_events = Vec::new();
    for e in &src.events {
        if !users.contains(&e.organizer_id) {
            report.note(
                "events",
                e.id,
                Kind::Skipped,
                format!("its organizer {} was not imported", e.organizer_id),
            );
            continue;
        }
        event_ids.insert(e.id);
        accepted_events.push(e);
    }
    report.table("tickets").read = src.tickets.len();
    let mut ticket_event: HashMap<Uuid, Uuid> = target
        .tickets
        .values()
        .map(|t| (t.id, t.event_id))
        .collect();
    let mut accepted_tickets = Vec::new();
    for t in &src.tickets {
        if !event_ids.contains(&t.event_id) {
            report.note(
                "tickets",
                t.id,
                Kind::Skipped,
                format!("its event {} was not imported", t.event_id),
            );
            continue;
        }
        let Some(price) = parse_minor_units(&t.price) else {
            report.note(
                "tickets",
                t.id,
                Kind::Skipped,
                format!("price {:?} is not an amount of money", t.price),
            );
            continue;
        };
        ticket_event.insert(t.id, t.event_id);
        accepted_tickets.push((t, price));
    }

    // ---- registrations: all kept but one per (ticket, user)
    report.table("registrations").read = src.registrations.len();
    let mut pair_owner: HashMap<(Uuid, Uuid), Uuid> = target
        .registrations
        .values()
        .map(|r| ((r.ticket_id, r.user_id), r.id))
        .collect();
    // Final registrations: the target's, replaced or joined by the source's.
    let mut final_regs: HashMap<Uuid, (Uuid, Uuid)> = target
        .registrations
        .values()
        .map(|r| (r.id, (r.ticket_id, r.event_id)))
        .collect();
    let mut reg_user: HashMap<Uuid, Uuid> = target
        .registrations
        .values()
        .map(|r| (r.id, r.user_id))
        .collect();
    // A duplicate's id → the registration kept in its place.
    let mut replaced_by: HashMap<Uuid, Uuid> = HashMap::new();
    let mut first_trace: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    for r in &src.registrations {
        let Some(event_id) = ticket_event.get(&r.ticket_id).copied() else {
            report.note(
                "registrations",
                r.id,
                Kind::Skipped,
                format!("its ticket {} was not imported", r.ticket_id),
            );
            continue;
        };
        if !users.contains(&r.user_id) {
            report.note(
                "registrations",
                r.id,
                Kind::Skipped,
                format!("its user {} was not imported", r.user_id),
            );
            continue;
        }
        let pair = (r.ticket_id, r.user_id);
        if let Some(owner) = pair_owner.get(&pair).filter(|o| **o != r.id) {
            report.note(
                "registrations",
                r.id,
                Kind::Skipped,
                format!(
                    "duplicate: user {} already has registration {owner} on ticket {} (one per ticket and user here; the earliest is kept, its payments move to it)",
                    r.user_id, r.ticket_id
                ),
            );
            replaced_by.insert(r.id, *owner);
            continue;
        }
        pair_owner.insert(pair, r.id);
        final_regs.insert(r.id, (r.ticket_id, event_id));
        reg_user.insert(r.id, r.user_id);
        first_trace
            .entry(event_id)
            .and_modify(|t| *t = (*t).min(r.registered_at))
            .or_insert(r.registered_at);
        let desired = registration::Model {
            id: r.id,
            ticket_id: r.ticket_id,
            user_id: r.user_id,
            event_id,
            registered_at: r.registered_at,
        };
        match target.registrations.get(&r.id) {
            None => {
                report.table("registrations").created += 1;
                plan.registrations.push(desired);
            }
            Some(e) if *e != desired => {
                report.table("registrations").updated += 1;
                plan.registrations.push(desired);
            }
            Some(_) => {}
        }
    }
    let mut sold: HashMap<Uuid, i64> = HashMap::new();
    let mut registered: HashMap<Uuid, i64> = HashMap::new();
    for (ticket_id, event_id) in final_regs.values() {
        *sold.entry(*ticket_id).or_default() += 1;
        *registered.entry(*event_id).or_default() += 1;
    }

    // ---- tickets with their real counters
    for (t, price) in accepted_tickets {
        let count = sold.get(&t.id).copied().unwrap_or(0);
        if count > t.quota {
            report.note(
                "tickets",
                t.id,
                Kind::Notice,
                format!(
                    "{count} registrations for a quota of {} (the old service did not check capacity): sold = {count}, none left for sale",
                    t.quota
                ),
            );
        }
        let desired = ticket::Model {
            id: t.id,
            event_id: t.event_id,
            name: t.name.clone(),
            price_minor: price,
            sales_start: t.sales_start,
            sales_end: t.sales_end,
            quota: t.quota,
            sold: count,
        };
        match target.tickets.get(&t.id) {
            None => {
                report.table("tickets").created += 1;
                plan.tickets.push(desired);
            }
            Some(e) if *e != desired => {
                report.table("tickets").updated += 1;
                plan.tickets.push(desired);
            }
            Some(_) => {}
        }
    }

    // ---- events
    for m in &src.media {
        first_trace
            .entry(m.event_id)
            .and_modify(|t| *t = (*t).min(m.uploaded_at))
            .or_insert(m.uploaded_at);
    }
    let last_activity = src
        .users
        .iter()
        .map(|u| u.date_joined)
        .chain(src.registrations.iter().map(|r| r.registered_at))
        .chain(src.payments.iter().map(|p| p.paid_at))
        .chain(src.media.iter().map(|m| m.uploaded_at))
        .max()
        .unwrap_or(now);
    let mut canceled = 0;
    for e in accepted_events {
        let (status, why) = map_event_status(&e.status);
        if let Some(why) = why {
            if e.status == "canceled" {
                canceled += 1;
            } else {
                report.note("events", e.id, Kind::Altered, why);
            }
        }
        let count = registered.get(&e.id).copied().unwrap_or(0);
        if count > e.quota {
            report.note(
                "events",
                e.id,
                Kind::Notice,
                format!(
                    "{count} registrations for a quota of {} (the old service did not check capacity)",
                    e.quota
                ),
            );
        }
        // No creation time in the source: the latest moment it can have been
        // created (its first registration or poster, else its start, but not
        // after the source's last activity), and not before its organizer
        // joined. Derived from the source only, so every run agrees.
        let latest = first_trace
            .get(&e.id)
            .copied()
            .unwrap_or(e.start_time)
            .min(e.start_time)
            .min(last_activity);
        let created_at = match date_joined.get(&e.organizer_id) {
            Some(joined) => latest.max(*joined),
            None => latest,
        };
        let existing = target.events.get(&e.id);
        let mut desired = event::Model {
            id: e.id,
            name: e.name.clone(),
            description: e.description.clone(),
            location: e.location.clone(),
            start_time: e.start_time,
            end_time: e.end_time,
            status: status.to_string(),
            category: e.category.clone(),
            quota: e.quota,
            registered: count,
            organizer_id: e.organizer_id,
            created_at,
            updated_at: created_at,
        };
        match existing {
            None => {
                report.table("events").created += 1;
                plan.events.push(desired);
            }
            Some(ex) => {
                desired.created_at = ex.created_at;
                desired.updated_at = ex.updated_at;
                if *ex != desired {
                    desired.updated_at = now;
                    report.table("events").updated += 1;
                    plan.events.push(desired);
                }
            }
        }
    }
    if canceled > 0 {
        report.remarks.push(format!(
            "events with status \"canceled\": {canceled}, now \"cancelled\" (our spelling)"
        ));
    }
    report.remarks.push(
        "events have no creation time in the source: created_at is their first trace (first registration or poster upload, else the start time, at the latest the source's last recorded activity), not before the organizer joined; updated_at likewise, and the import time when a later run changes the event".into(),
    );

    // ---- payments
    report.table("payments").read = src.payments.len();
    let mut completed_owner: HashMap<Uuid, Uuid> = target
        .payments
        .values()
        .filter(|p| p.payment_status == "completed")
        .map(|p| (p.registration_id, p.id))
        .collect();
    let mut paid = 0;
    for p in &src.payments {
        let (registration_id, moved) = match replaced_by.get(&p.registration_id) {
            Some(kept) => (*kept, true),
            None => (p.registration_id, false),
        };
        let Some((_, event_id)) = final_regs.get(&registration_id).copied() else {
            report.note(
                "payments",
                p.id,
                Kind::Skipped,
                format!("its registration {} was not imported", p.registration_id),
            );
            continue;
        };
        let Some(user_id) = reg_user.get(&registration_id).copied() else {
            report.note(
                "payments",
                p.id,
                Kind::Skipped,
                format!("its registration {} was not imported", p.registration_id),
            );
            continue;
        };
        let Some(amount) = parse_minor_units(&p.amount_paid) else {
            report.note(
                "payments",
                p.id,
                Kind::Skipped,
                format!("amount_paid {:?} is not an amount of money", p.amount_paid),
            );
            continue;
        };
        let (status, why) = map_payment_status(&p.payment_status);
        if status == "completed" {
            if let Some(owner) = completed_owner
                .get(&registration_id)
                .filter(|o| **o != p.id)
            {
                report.note(
                    "payments",
                    p.id,
                    Kind::Skipped,
                    format!(
                        "a second completed payment ({} {} by {}) for registration {registration_id}, which already has completed payment {owner}; at most one is allowed here — check whether it must be refunded",
                        p.amount_paid, p.payment_status, p.payment_method
                    ),
                );
                continue;
            }
            completed_owner.insert(registration_id, p.id);
        }
        if let Some(why) = why {
            if p.payment_status == "paid" {
                paid += 1;
            } else {
                report.note("payments", p.id, Kind::Altered, why);
            }
        }
        if moved {
            report.note(
                "payments",
                p.id,
                Kind::Altered,
                format!(
                    "registration {} was a duplicate: the payment belongs to the kept registration {registration_id}",
                    p.registration_id
                ),
            );
        }
        let existing = target.payments.get(&p.id);
        let mut desired = payment::Model {
            id: p.id,
            registration_id,
            user_id,
            event_id,
            payment_method: p.payment_method.clone(),
            payment_status: status.to_string(),
            amount_paid_minor: amount,
            // Ours is the time it became completed; Django's was the creation.
            paid_at: (status == "completed").then_some(p.paid_at),
            created_at: p.paid_at,
            updated_at: p.paid_at,
        };
        match existing {
            None => {
                report.table("payments").created += 1;
                plan.payments.push(desired);
            }
            Some(ex) => {
                desired.created_at = ex.created_at;
                desired.updated_at = ex.updated_at;
                if *ex != desired {
                    desired.updated_at = now;
                    report.table("payments").updated += 1;
                    plan.payments.push(desired);
                }
            }
        }
    }
    if paid > 0 {
        report.remarks.push(format!(
            "payments with status \"paid\": {paid}, now \"completed\""
        ));
    }
    report.remarks.push(
        "payments: created_at is Django's paid_at (set at creation); paid_at is kept only for completed payments (here it means the time of completion)".into(),
    );

    // ---- posters (objects are read later)
    report.table("posters").read = src.media.len();
    let mut key_users: HashMap<&str, usize> = HashMap::new();
    for m in &src.media {
        *key_users.entry(m.image.as_str()).or_default() += 1;
    }
    for m in &src.media {
        if !event_ids.contains(&m.event_id) {
            report.note(
                "posters",
                m.id,
                Kind::Skipped,
                format!("its event {} was not imported", m.event_id),
            );
            continue;
        }
        if let Some(n) = key_users.get(m.image.as_str()).filter(|n| **n > 1) {
            report.note(
                "posters",
                m.id,
                Kind::Notice,
                format!(
                    "object {:?} is shared by {n} rows (same file name uploaded twice; the later bytes won in Django): each row gets its own copy",
                    m.image
                ),
            );
        }
        plan.media.push(m.clone());
    }
    plan
}

fn classify_password(
    u: &super::source::User,
    iterations: &mut BTreeMap<String, usize>,
    report: &mut Report,
) {
    let stored = u.password.as_str();
    if stored.is_empty() || stored.starts_with('!') {
        report.note(
            "users",
            u.id,
            Kind::Notice,
            format!(
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
        report.note(
            "users",
            u.id,
            Kind::Notice,
            format!(
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
