//! From the Django rows and what the target already holds to the rows to
//! write: mapping, validation, de-duplication and counters. Pure: nothing
//! here reads or writes a database, so `--dry-run` is the same plan, unwritten.
//!
//! - `table`: what every table goes through (rows read, skipped with a
//!   reason, planned only when new or changed).
//! - `values`: money, statuses, password hashes and file names as Django
//!   stored them.

mod table;
mod values;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::report::Report;
use super::source::Snapshot;
use crate::db::entities::{event, group, payment, registration, ticket, user};
use table::{EVENTS, GROUPS, MEMBERSHIPS, PAYMENTS, POSTERS, REGISTRATIONS, TICKETS, USERS};
pub use values::original_name;
use values::{
    classify_password, is_our_hash, map_event_status, map_payment_status, parse_minor_units,
};

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

/// Builds the plan; fills the report's read / created / updated / skipped
/// counts (but for posters, decided when their objects are read) and notes.
pub fn plan(src: &Snapshot, target: &Target, now: DateTime<Utc>, report: &mut Report) -> Plan {
    let mut plan = Plan::default();

    // ---- users
    USERS.read(report, src.users.len());
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
        let username_key = crate::domain::accounts::username_key(&u.username);
        let email_key = u.email.to_lowercase();
        if let Some(owner) = username_owner.get(&username_key).filter(|o| **o != u.id) {
            USERS.skip(
                report,
                u.id,
                format!(
                    "username {:?} is already taken (case-insensitively) by account {owner}",
                    u.username
                ),
            );
            continue;
        }
        if let Some(owner) = email_owner.get(&email_key).filter(|o| **o != u.id) {
            USERS.skip(
                report,
                u.id,
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
        USERS.keep(report, existing, desired, &mut plan.users);
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
    GROUPS.read(report, src.groups.len());
    let mut group_keys: HashMap<i32, String> = HashMap::new();
    let mut known_keys: HashSet<String> =
        target.groups.iter().map(|g| g.name_key.clone()).collect();
    for g in &src.groups {
        let key = g.name.to_lowercase();
        group_keys.insert(g.id, key.clone());
        if known_keys.insert(key) {
            GROUPS.created(report);
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
    MEMBERSHIPS.read(report, src.memberships.len());
    for m in &src.memberships {
        let id = format!("{}/{}", m.user_id, m.group_id);
        let Some(key) = group_keys.get(&m.group_id) else {
            MEMBERSHIPS.skip(
                report,
                id,
                format!("group {} does not exist in the source", m.group_id),
            );
            continue;
        };
        if !users.contains(&m.user_id) {
            MEMBERSHIPS.skip(report, id, format!("user {} was not imported", m.user_id));
            continue;
        }
        if members.insert((m.user_id, key.clone())) {
            MEMBERSHIPS.created(report);
            plan.memberships.push((m.user_id, key.clone()));
        }
    }

    // ---- events, tickets: which are importable
    EVENTS.read(report, src.events.len());
    let mut event_ids: HashSet<Uuid> = target.events.keys().copied().collect();
    let mut accepted_events = Vec::new();
    for e in &src.events {
        if !users.contains(&e.organizer_id) {
            EVENTS.skip(
                report,
                e.id,
                format!("its organizer {} was not imported", e.organizer_id),
            );
            continue;
        }
        event_ids.insert(e.id);
        accepted_events.push(e);
    }
    TICKETS.read(report, src.tickets.len());
    let mut ticket_event: HashMap<Uuid, Uuid> = target
        .tickets
        .values()
        .map(|t| (t.id, t.event_id))
        .collect();
    let mut accepted_tickets = Vec::new();
    for t in &src.tickets {
        if !event_ids.contains(&t.event_id) {
            TICKETS.skip(
                report,
                t.id,
                format!("its event {} was not imported", t.event_id),
            );
            continue;
        }
        let Some(price) = parse_minor_units(&t.price) else {
            TICKETS.skip(
                report,
                t.id,
                format!("price {:?} is not an amount of money", t.price),
            );
            continue;
        };
        ticket_event.insert(t.id, t.event_id);
        accepted_tickets.push((t, price));
    }

    // What a registration of each ticket owes: its price.
    let mut ticket_price: HashMap<Uuid, i64> = target
        .tickets
        .values()
        .map(|t| (t.id, t.price_minor))
        .collect();
    for (t, price) in &accepted_tickets {
        ticket_price.insert(t.id, *price);
    }

    // ---- registrations: all kept but one per (ticket, user)
    REGISTRATIONS.read(report, src.registrations.len());
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
    // Short codes are unique: those already here, and those given below.
    let mut short_codes: std::collections::HashSet<String> = target
        .registrations
        .values()
        .map(|r| r.short_code.clone())
        .collect();
    for r in &src.registrations {
        let Some(event_id) = ticket_event.get(&r.ticket_id).copied() else {
            REGISTRATIONS.skip(
                report,
                r.id,
                format!("its ticket {} was not imported", r.ticket_id),
            );
            continue;
        };
        if !users.contains(&r.user_id) {
            REGISTRATIONS.skip(
                report,
                r.id,
                format!("its user {} was not imported", r.user_id),
            );
            continue;
        }
        let pair = (r.ticket_id, r.user_id);
        if let Some(owner) = pair_owner.get(&pair).filter(|o| **o != r.id) {
            REGISTRATIONS.skip(report, r.id, format!(
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
            // A registration imported again keeps the code printed on it; a
            // new one gets a code drawn from its id (so two runs agree).
            short_code: match target.registrations.get(&r.id) {
                Some(kept) => kept.short_code.clone(),
                None => {
                    let mut draw = 0u32;
                    loop {
                        let seed = [r.id.as_bytes().as_slice(), &draw.to_be_bytes()].concat();
                        let code = crate::ticket_codes::derived_short_code(&seed);
                        if short_codes.insert(code.clone()) {
                            break code;
                        }
                        draw += 1;
                    }
                }
            },
            // The Django service held every seat until cancelled.
            status: "confirmed".into(),
            hold_expires_at: None,
            // What it owes is its ticket's price, unless a voucher was used
            // here since the last import.
            voucher_id: target.registrations.get(&r.id).and_then(|k| k.voucher_id),
            amount_due_minor: target
                .registrations
                .get(&r.id)
                .and_then(|k| k.amount_due_minor)
                .or_else(|| ticket_price.get(&r.ticket_id).copied()),
        };
        REGISTRATIONS.keep(
            report,
            target.registrations.get(&r.id),
            desired,
            &mut plan.registrations,
        );
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
            TICKETS.notice(report, t.id, format!(
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
            // A window set here since the last import is kept.
            payment_window_minutes: target
                .tickets
                .get(&t.id)
                .and_then(|kept| kept.payment_window_minutes),
            hidden: target.tickets.get(&t.id).is_some_and(|kept| kept.hidden),
            waitlist: target.tickets.get(&t.id).is_some_and(|kept| kept.waitlist),
            waitlist_offer_hours: target
                .tickets
                .get(&t.id)
                .map_or(48, |kept| kept.waitlist_offer_hours),
            offered: target.tickets.get(&t.id).map_or(0, |kept| kept.offered),
        };
        TICKETS.keep(
            report,
            target.tickets.get(&t.id),
            desired,
            &mut plan.tickets,
        );
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
                EVENTS.altered(report, e.id, why);
            }
        }
        let count = registered.get(&e.id).copied().unwrap_or(0);
        if count > e.quota {
            EVENTS.notice(report, e.id, format!(
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
        let desired = event::Model {
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
            // Offers of a waiting list set up here since stay open.
            offered: existing.map_or(0, |x| x.offered),
            organizer_id: e.organizer_id,
            // Django had one zone for all: the server's, until set here.
            timezone: existing.and_then(|x| x.timezone.clone()),
            payment_instructions: existing.and_then(|x| x.payment_instructions.clone()),
            created_at,
            updated_at: created_at,
        };
        EVENTS.keep_stamped(report, existing, desired, now, &mut plan.events);
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
    PAYMENTS.read(report, src.payments.len());
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
            PAYMENTS.skip(
                report,
                p.id,
                format!("its registration {} was not imported", p.registration_id),
            );
            continue;
        };
        let Some(user_id) = reg_user.get(&registration_id).copied() else {
            PAYMENTS.skip(
                report,
                p.id,
                format!("its registration {} was not imported", p.registration_id),
            );
            continue;
        };
        let Some(amount) = parse_minor_units(&p.amount_paid) else {
            PAYMENTS.skip(
                report,
                p.id,
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
                PAYMENTS.skip(report, p.id, format!(
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
                PAYMENTS.altered(report, p.id, why);
            }
        }
        if moved {
            PAYMENTS.altered(report, p.id, format!(
                    "registration {} was a duplicate: the payment belongs to the kept registration {registration_id}",
                    p.registration_id
                ),
            );
        }
        let existing = target.payments.get(&p.id);
        let desired = payment::Model {
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
            proof_key: existing.and_then(|x| x.proof_key.clone()),
            proof_type: existing.and_then(|x| x.proof_type.clone()),
            proof_name: existing.and_then(|x| x.proof_name.clone()),
        };
        PAYMENTS.keep_stamped(report, existing, desired, now, &mut plan.payments);
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
    POSTERS.read(report, src.media.len());
    let mut key_users: HashMap<&str, usize> = HashMap::new();
    for m in &src.media {
        *key_users.entry(m.image.as_str()).or_default() += 1;
    }
    for m in &src.media {
        if !event_ids.contains(&m.event_id) {
            POSTERS.skip(
                report,
                m.id,
                format!("its event {} was not imported", m.event_id),
            );
            continue;
        }
        if let Some(n) = key_users.get(m.image.as_str()).filter(|n| **n > 1) {
            POSTERS.notice(report, m.id, format!(
                    "object {:?} is shared by {n} rows (same file name uploaded twice; the later bytes won in Django): each row gets its own copy",
                    m.image
                ),
            );
        }
        plan.media.push(m.clone());
    }
    plan
}
