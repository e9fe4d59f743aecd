//! The audit log (API.md §10): one append-only row per write, inserted in
//! the write's own transaction, so a write that fails leaves no entry and
//! one that commits always has its entry. Who wrote (`Actor`), from where
//! (`Origin`: the request's client address and id), what (`Action`, the
//! entity and the event it belongs to) and the fields that changed, with
//! secrets masked.
//!
//! The table refuses `UPDATE` and `DELETE` (a trigger on both backends), and
//! its ids are UUIDv7 made from `occurred_at`, so the id order is the time
//! order and the list pages by id.

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, Set, Statement,
};
use serde_json::{Map, Number, Value};
use uuid::Uuid;

use super::entities::{
    audit_entry, checkin, event, group, media, payment, registration, ticket, user, user_group,
    voucher, waitlist_entry, webhook_endpoint,
};

/// What a masked value reads as.
pub const MASK: &str = "********";

/// Fields whose values never reach the log.
const SECRET_FIELDS: &[&str] = &["password", "token", "secret", "signing_key", "private_key"];

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user (API, console), or a new account signing itself up.
    User { id: Uuid, username: String },
    /// The server itself: background jobs, start-up.
    System,
    /// The command line (`createsuperuser`, `truncate`, `import-django`).
    Cli,
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::User { .. } => "user",
            Actor::System => "system",
            Actor::Cli => "cli",
        }
    }
}

/// Where a change came from: the request's client address and id, when a
/// request made it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl Origin {
    /// The request being served by this task, if any
    /// (`connection::serving_client`).
    pub fn of_this_request() -> Self {
        Origin {
            ip: crate::connection::client_ip().map(|ip| ip.to_string()),
            request_id: crate::connection::request_id(),
        }
    }
}

/// The actor and origin of the writes one caller makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub actor: Actor,
    pub origin: Origin,
}

impl Context {
    /// A user acting through the request this task serves.
    pub fn user(id: Uuid, username: &str) -> Self {
        Context {
            actor: Actor::User {
                id,
                username: username.to_owned(),
            },
            origin: Origin::of_this_request(),
        }
    }

    pub fn system() -> Self {
        Context {
            actor: Actor::System,
            origin: Origin::default(),
        }
    }

    pub fn cli() -> Self {
        Context {
            actor: Actor::Cli,
            origin: Origin::default(),
        }
    }
}

macro_rules! actions {
    ($($variant:ident => $name:literal,)*) => {
        /// What was done, as the log and webhook types name it
        /// (`<entity>.<verb>`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Action {
            $($variant,)*
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            pub fn parse(text: &str) -> Option<Action> {
                match text {
                    $($name => Some(Action::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    EventCreated => "event.created",
    EventUpdated => "event.updated",
    EventDeleted => "event.deleted",
    EventImported => "event.imported",
    TicketCreated => "ticket.created",
    TicketUpdated => "ticket.updated",
    TicketDeleted => "ticket.deleted",
    TicketImported => "ticket.imported",
    RegistrationCreated => "registration.created",
    RegistrationUpdated => "registration.updated",
    RegistrationCancelled => "registration.cancelled",
    RegistrationImported => "registration.imported",
    RegistrationConfirmationSent => "registration.confirmation_sent",
    RegistrationReminderSent => "registration.reminder_sent",
    RegistrationExpired => "registration.expired",
    PaymentCreated => "payment.created",
    PaymentUpdated => "payment.updated",
    PaymentDeleted => "payment.deleted",
    PaymentImported => "payment.imported",
    CheckinCreated => "checkin.created",
    CheckinDeleted => "checkin.deleted",
    PosterCreated => "poster.created",
    PosterDeleted => "poster.deleted",
    PosterImported => "poster.imported",
    UserCreated => "user.created",
    UserUpdated => "user.updated",
    UserDeleted => "user.deleted",
    UserImported => "user.imported",
    UserPasswordChanged => "user.password_changed",
    UserEmailVerified => "user.email_verified",
    UserPasswordResetRequested => "user.password_reset_requested",
    UserLoggedIn => "user.logged_in",
    UserLoggedOut => "user.logged_out",
    GroupCreated => "group.created",
    GroupUpdated => "group.updated",
    GroupDeleted => "group.deleted",
    GroupImported => "group.imported",
    RoleAssigned => "role.assigned",
    RoleRemoved => "role.removed",
    RoleImported => "role.imported",
    JobRetried => "job.retried",
    WaitlistJoined => "waitlist.joined",
    WaitlistOffered => "waitlist.offered",
    WaitlistAccepted => "waitlist.accepted",
    WaitlistExpired => "waitlist.expired",
    WaitlistLeft => "waitlist.left",
    WaitlistClosed => "waitlist.closed",
    VoucherCreated => "voucher.created",
    VoucherUpdated => "voucher.updated",
    VoucherDeleted => "voucher.deleted",
    WebhookCreated => "webhook.created",
    WebhookUpdated => "webhook.updated",
    WebhookDeleted => "webhook.deleted",
    WebhookSecretRotated => "webhook.secret_rotated",
    WebhookTested => "webhook.tested",
    WebhookRetried => "webhook.retried",
    WebhookDisabled => "webhook.disabled",
    SigningKeyCreated => "signing_key.created",
    DataTruncated => "data.truncated",
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields a change touched: `field → [before, after]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes(Map<String, Value>);

impl Changes {
    pub fn none() -> Self {
        Changes::default()
    }

    /// Every field of a new row, from nothing.
    pub fn created(after: &impl Snapshot) -> Self {
        Changes::between(&Map::new(), &after.snapshot())
    }

    /// Every field of a removed row, to nothing.
    pub fn deleted(before: &impl Snapshot) -> Self {
        Changes::between(&before.snapshot(), &Map::new())
    }

    /// The fields that differ between two versions of a row.
    pub fn updated<S: Snapshot>(before: &S, after: &S) -> Self {
        Changes::between(&before.snapshot(), &after.snapshot())
    }

    fn between(before: &Map<String, Value>, after: &Map<String, Value>) -> Self {
        let mut changes = Changes::default();
        for (field, old) in before {
            let new = after.get(field).unwrap_or(&Value::Null);
            if old != new {
                changes = changes.with(field, old.clone(), new.clone());
            }
        }
        for (field, new) in after {
            if !before.contains_key(field) && !new.is_null() {
                changes = changes.with(field, Value::Null, new.clone());
            }
        }
        changes
    }

    /// One more field; a secret's values are masked.
    pub fn with(mut self, field: &str, before: impl Into<Value>, after: impl Into<Value>) -> Self {
        let (before, after) = (before.into(), after.into());
        let masked = |v: Value| if v.is_null() { v } else { Value::from(MASK) };
        let pair = if SECRET_FIELDS.contains(&field) {
            vec![masked(before), masked(after)]
        } else {
            vec![before, after]
        };
        self.0.insert(field.to_owned(), Value::Array(pair));
        self
    }

    /// The same changes but one field's.
    pub fn without(mut self, field: &str) -> Self {
        self.0.remove(field);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_json(self) -> Value {
        Value::Object(self.0)
    }
}

/// One entry, before it is written.
#[derive(Clone, Debug)]
pub struct Entry {
    pub action: Action,
    pub entity_type: &'static str,
    pub entity_id: String,
    /// The event the entity belongs to (scoping organisers' reads).
    pub event_id: Option<Uuid>,
    pub changes: Changes,
    /// The entity as the API shows it (after the change; before it, for a
    /// deletion), secrets left out: what a webhook message carries.
    pub data: Option<Map<String, Value>>,
}

impl Entry {
    /// The entry with one more field change recorded.
    pub fn with_change(
        mut self,
        field: &str,
        before: impl Into<Value>,
        after: impl Into<Value>,
    ) -> Self {
        self.changes = self.changes.with(field, before, after);
        self
    }

    /// An entry about a row, which names its own entity and event.
    pub fn of(action: Action, row: &impl Snapshot, changes: Changes) -> Self {
        Entry {
            action,
            entity_type: row.entity_type(),
            entity_id: row.entity_id(),
            event_id: row.event_id(),
            changes,
            data: Some(public_fields(row)),
        }
    }

    /// An entry about something that is not a row with a snapshot.
    pub fn about(
        action: Action,
        entity_type: &'static str,
        entity_id: String,
        event_id: Option<Uuid>,
        changes: Changes,
    ) -> Self {
        Entry {
            action,
            entity_type,
            entity_id,
            event_id,
            changes,
            data: None,
        }
    }

    pub fn created(action: Action, row: &impl Snapshot) -> Self {
        Entry::of(action, row, Changes::created(row))
    }

    pub fn deleted(action: Action, row: &impl Snapshot) -> Self {
        Entry::of(action, row, Changes::deleted(row))
    }

    pub fn updated<S: Snapshot>(action: Action, before: &S, after: &S) -> Self {
        Entry::of(action, after, Changes::updated(before, after))
    }
}

/// A row as the log shows it: its entity, its event and its fields under
/// the API's names.
pub trait Snapshot {
    fn entity_type(&self) -> &'static str;
    fn entity_id(&self) -> String;
    fn event_id(&self) -> Option<Uuid>;
    fn snapshot(&self) -> Map<String, Value>;
}

/// A row's fields as the API shows them, with its id, secrets left out.
pub fn public_fields(row: &impl Snapshot) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("id".into(), Value::from(row.entity_id()));
    for (field, value) in row.snapshot() {
        if !SECRET_FIELDS.contains(&field.as_str()) {
            data.insert(field, value);
        }
    }
    data
}

/// Writes entries inside the caller's transaction, in one statement, and
/// queues the webhook messages made from them.
pub async fn record(
    db: &impl ConnectionTrait,
    context: &Context,
    entries: impl IntoIterator<Item = Entry>,
) -> Result<Vec<Uuid>, DbErr> {
    let entries: Vec<Entry> = entries.into_iter().collect();
    let organizers = organizers_of(db, &entries).await?;
    // One call's entries keep their order: each id follows the one before.
    let at = super::now();
    let mut id = id_at(at);
    let mut messages = Vec::new();
    let rows: Vec<audit_entry::ActiveModel> = entries
        .into_iter()
        .map(|entry| {
            let organizer = entry.event_id.and_then(|e| organizers.get(&e).copied());
            messages.push(super::webhooks::Message {
                id,
                action: entry.action.as_str().to_owned(),
                event_id: entry.event_id,
                organizer_id: organizer,
                at,
            });
            let mut row = row(context, entry, id, at);
            row.organizer_id = Set(organizer);
            id = successor(id);
            row
        })
        .collect();
    // SQLite takes at most 32,766 parameters in one statement (12 a row).
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(2_000).collect();
        audit_entry::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    super::webhooks::fan_out(db, &messages).await?;
    Ok(messages.into_iter().map(|m| m.id).collect())
}

/// Writes one entry inside the caller's transaction; its id.
pub async fn record_one(
    db: &impl ConnectionTrait,
    context: &Context,
    entry: Entry,
) -> Result<Uuid, DbErr> {
    let ids = record(db, context, [entry]).await?;
    ids.first()
        .copied()
        .ok_or_else(|| DbErr::Custom("an audit entry was not written".into()))
}

/// The organisers of the entries' events (written before an event is
/// deleted, so that its entries keep their organiser).
async fn organizers_of(
    db: &impl ConnectionTrait,
    entries: &[Entry],
) -> Result<std::collections::HashMap<Uuid, Uuid>, DbErr> {
    let events: std::collections::HashSet<Uuid> =
        entries.iter().filter_map(|e| e.event_id).collect();
    if events.is_empty() {
        return Ok(Default::default());
    }
    let mut found = std::collections::HashMap::new();
    let events: Vec<Uuid> = events.into_iter().collect();
    for chunk in events.chunks(500) {
        let rows: Vec<(Uuid, Uuid)> = event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .column(event::Column::OrganizerId)
            .filter(event::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// The row of an entry; its id carries `at` (UUIDv7), so ids sort by time.
fn row(context: &Context, entry: Entry, id: Uuid, at: DateTime<Utc>) -> audit_entry::ActiveModel {
    let (actor_id, actor_username) = match &context.actor {
        Actor::User { id, username } => (Some(*id), Some(username.clone())),
        _ => (None, None),
    };
    audit_entry::ActiveModel {
        id: Set(id),
        occurred_at: Set(at),
        actor_type: Set(context.actor.kind().to_owned()),
        actor_id: Set(actor_id),
        actor_username: Set(actor_username),
        action: Set(entry.action.as_str().to_owned()),
        entity_type: Set(entry.entity_type.to_owned()),
        entity_id: Set(entry.entity_id),
        event_id: Set(entry.event_id),
        organizer_id: Set(None),
        changes: Set(entry.changes.into_json().to_string()),
        data: Set(entry.data.map(|d| Value::Object(d).to_string())),
        ip: Set(context.origin.ip.clone()),
        request_id: Set(context.origin.request_id.clone()),
    }
}

/// A UUIDv7 whose time is `at` (random below the millisecond).
pub fn id_at(at: DateTime<Utc>) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        millis / 1000,
        u32::try_from(millis % 1000).unwrap_or(0) * 1_000_000,
    ))
}

/// The next UUIDv7 of the same millisecond (its random bits plus one).
fn successor(id: Uuid) -> Uuid {
    const RANDOM_BITS: u128 = (1 << 62) - 1;
    let value = id.as_u128();
    if value & RANDOM_BITS == RANDOM_BITS {
        return id;
    }
    Uuid::from_u128(value + 1)
}

/// The smallest id of any entry at or after `at`.
pub fn first_id_at(at: DateTime<Utc>) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

/// The entries of an organiser and/or an event (`None`: any), counted; both
/// `None`: every entry. On PostgreSQL this reads the workers' mark
/// (migration `AuditCountMark`): the entries its snapshot sees (its number,
/// or its tallies per organiser and event), plus those it does not
/// (written since, found by their `txid`). The cost is that of the entries
/// since the last mark, not of the log. Without a mark row it counts rows.
pub async fn count(
    db: &super::Database,
    organizer: Option<Uuid>,
    event: Option<Uuid>,
) -> Result<u64, DbErr> {
    if db.backend() == DbBackend::Postgres {
        // The mark's values are read first, and the count is planned for
        // them and its scope each time (`query_planned_per_value`): a plan
        // for any value reckons a third of the log past the mark, or walks
        // every entry of a big event's. The count's statement reads the
        // mark again, with its tallies: if a worker moved it in between,
        // the count is taken again. No transaction: one statement is one
        // snapshot.
        for _ in 0..MARK_READS {
            let Some((xmin, snap)) = read_mark(db.conn(), "").await? else {
                break;
            };
            let mut values: Vec<sea_orm::Value> = vec![xmin.into(), snap.clone().into()];
            let mut scope = String::new();
            for (column, id) in [("organizer_id", organizer), ("event_id", event)] {
                if let Some(id) = id {
                    values.push(id.into());
                    scope.push_str(&format!(" AND {column} = ${}", values.len()));
                }
            }
            // Everything: the mark's number; else its tallies in scope.
            let tallied = if scope.is_empty() {
                "m.total".to_owned()
            } else {
                format!(
                    "(SELECT coalesce(sum(total), 0) FROM audit_count_tallies WHERE true{scope})"
                )
            };
            let row = db
                .query_planned_per_value(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    format!(
                        "SELECT m.snap::text AS snap, ({tallied} + (SELECT count(*) \
                         FROM audit_entries WHERE {PAST_THE_MARK}{scope}))::bigint AS n \
                         FROM audit_count_marks m WHERE m.id = 1"
                    ),
                    values,
                ))
                .await?
                .pop();
            let Some(row) = row else { break };
            if row.try_get::<String>("", "snap")? == snap {
                let n: i64 = row.try_get("", "n")?;
                return Ok(u64::try_from(n).unwrap_or(0));
            }
        }
    }
    let mut select = audit_entry::Entity::find();
    if let Some(organizer) = organizer {
        select = select.filter(audit_entry::Column::OrganizerId.eq(organizer));
    }
    if let Some(event) = event {
        select = select.filter(audit_entry::Column::EventId.eq(event));
    }
    select.count(db.conn()).await
}

/// How many times a count reads the mark before it counts rows instead
/// (each retry means a worker moved the mark meanwhile: every few seconds).
const MARK_READS: usize = 3;

/// The entries a mark's snapshot (`$2`, its oldest transaction `$1`) does
/// not see: any it sees was written by a transaction older than `$1` or
/// not running when it was taken.
const PAST_THE_MARK: &str =
    "txid >= $1::xid8 AND NOT pg_visible_in_snapshot(txid, $2::pg_snapshot)";

/// The mark's snapshot: its oldest transaction and the snapshot (as
/// text). `lock`: appended to the query (`FOR UPDATE …`).
async fn read_mark(
    txn: &impl ConnectionTrait,
    lock: &str,
) -> Result<Option<(String, String)>, DbErr> {
    let Some(row) = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT pg_snapshot_xmin(snap)::text AS xmin, snap::text AS snap \
                 FROM audit_count_marks WHERE id = 1 {lock}"
            ),
        ))
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((row.try_get("", "xmin")?, row.try_get("", "snap")?)))
}

/// Moves the count's mark to now: adds the entries the new snapshot sees
/// and the old one did not, to its number and to its tallies per
/// (organiser, event), in one statement (so with one snapshot). A worker
/// does it every few seconds, so a count reads at most a few seconds'
/// entries beyond the mark. Returns false when there is nothing to move
/// (SQLite) or another worker is moving it.
pub async fn advance_count_mark(db: &super::Database) -> Result<bool, DbErr> {
    if db.backend() != DbBackend::Postgres {
        return Ok(false);
    }
    let txn = db.begin_write().await?;
    txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
        .await?;
    // Locked in a statement of its own: the next statement's snapshot is
    // then taken after another worker's move committed, so it sees all
    // that move's snapshot saw. The new snapshot is the statement's own
    // (`pg_current_snapshot`), the one its counts read with.
    let Some((xmin, snap)) = read_mark(&*txn, "FOR UPDATE SKIP LOCKED").await? else {
        return Ok(false);
    };
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "WITH past AS MATERIALIZED (SELECT organizer_id, event_id FROM audit_entries \
               WHERE {PAST_THE_MARK}), \
             tallied AS (INSERT INTO audit_count_tallies (organizer_id, event_id, total) \
               SELECT organizer_id, event_id, count(*) FROM past GROUP BY organizer_id, event_id \
               ON CONFLICT (organizer_id, event_id) \
               DO UPDATE SET total = audit_count_tallies.total + EXCLUDED.total) \
             UPDATE audit_count_marks SET total = total + (SELECT count(*) FROM past), \
             snap = pg_current_snapshot() WHERE id = 1"
        ),
        [xmin.into(), snap.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// Money in minor units as the API writes it: a JSON number (`200000`,
/// `200000.5`).
pub fn money_json(minor: i64) -> Value {
    if minor % 100 == 0 {
        Value::Number(Number::from(minor / 100))
    } else {
        Number::from_f64(minor as f64 / 100.0)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn time(at: &DateTime<Utc>) -> Value {
    Value::from(time_text(at))
}

/// A time as the log (and the API) writes it: RFC 3339 in UTC, the fraction
/// only as long as it needs.
pub fn time_text(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

impl Snapshot for event::Model {
    fn entity_type(&self) -> &'static str {
        "event"
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
    fn event_id(&self) -> Option<Uuid> {
        Some(self.id)
    }
    fn snapshot(&self) -> Map<String, Value> {
        fields([
            ("name", self.name.clone().into()),
            ("description", self.description.clone().into()),
            ("location", self.location.clone().into()),
            ("start_time", time(&self.start_time)),
            ("end_time", time(&self.end_time)),
            ("status", self.status.clone().into()),
            ("category", self.category.clone().into()),
            ("quota", self.quota.into()),
            (
                "payment_instructions",
                self.payment_instructions.clone().into(),
            ),
            ("organizer", self.organizer_id.to_string().into()),
            ("timezone", self.timezone.clone().into()),
        ])
    }
}

impl Snapshot for ticket::Model {
    fn entity_type(&self) -> &'static str {
        "ticket"
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
    fn event_id(&self) -> Option<Uuid> {
        Some(self.event_id)
    }
    fn snapshot(&self) -> Map<String, Value> {
        fields([
            ("event", self.event_id.to_string().into()),
            ("name", self.name.clone().into()),
            ("price", money_json(self.price_minor)),
            ("sales_start", time(&self.sales_start)),
            ("sales_end", time(&self.sales_end)),
            ("quota", self.quota.into()),
            ("payment_window_minutes", self.payment_window_minutes.into()),
            ("hidden", self.hidden.into()),
        ])
    }
}

impl Snapshot for registration::Model {
    fn entity_type(&self) -> &'static str {
        "registration"
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
    fn event_id(&self) -> Option<Uuid> {
        Some(self.event_id)
    }
    fn snapshot(&self) -> Map<String, Value> {
        let mut shown = fields([
            ("ticket", self.ticket_id.to_string().into()),
            ("user", self.user_id.to_string().into()),
            ("event", self.event_id.to_string().into()),
            ("registered_at", time(&self.registered_at)),
            ("status", self.status.clone().into()),
            (
                "hold_expires_at",
                self.hold_expires_at.as_ref().map_or(Value::Null, time),
            ),
        ]);
        // A voucher's registration names it and what it owes (the others
        // owe their ticket's price; the batched writer logs them so too).
        if let Some(voucher) = self.voucher_id {
            shown.insert("voucher".into(), voucher.to_string().into());
            shown.insert(
                "amount_due".into(),
                self.amount_due_minor.map_or(Value::Null, money_json),
            );
        }
        shown
    }
}

impl Snapshot for waitlist_entry::Model {
    fn entity_type(&self) -> &'static str {
        "waitlist_entry"
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
    fn event_id(&self) -> Option<Uuid> {
        Some(self.event_id)
    }
    fn snapshot(&self) -> Map<String, Value> {
        fields([
            ("ticket", self.ticket_id.to_string().into()),
            ("user", self.user_id.to_string().into()),
            ("status", self.status.clone().into()),
            (
                "offer_expires_at",
                self.offer_expires_at.as_ref().map_or(Value::Null, time),
            ),
            (
                "registration",
                self.registration_id
                    .map_or(Value::Null, |r| r.to_string().into()),
            ),
        ])
    }
}

impl Snapshot for voucher::Model {
    fn entity_type(&self) -> &'static str {
        "voucher"
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
    fn event_id(&self) -> Option<Uuid> {
        Some(self.event_id)
    }
    fn snapshot(&self) -> Map<String, Value> {
        let tickets: Value = serde_json::from_str(&self.ticket_ids).unwrap_or(Value::Null);
        fields([
            ("event", self.event_id.to_string().into()),
            ("code", self.code.clone().into()),
            ("tickets", tickets),
            ("discount_type", self.discount_type.clone().into()),
            ("discount_value", money_json(self.discount_value)),
            ("max_uses", self.max_uses.into()),
            (
                "valid_until",
                self.valid_until.as_ref().map_or(Value::Null, time),
            ),
            ("unlocks_hidden", self.unlocks_hidden.into()),
        ])
    }
}

impl Snapshot for payment::Model {
    fn entity_type(&self) -> &'static str {
        "payment"
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
    fn event_id(&self) -> Option<Uuid> {
        Some(self.event_id)
    }
    fn snapshot(&self) -> Map<String, Value> {
        fields([
            ("registration", self.registration_id.to_string().into()),
            ("payment_method", self.payment_method.clone().into()),
            ("payment_status", self.payment_status.clone().into()),
            ("amount_paid", money_json(self.amount_paid_minor)),
            ("paid_at", self.paid_at.as_ref().map_or(Value::Null, time)),
        ])
    }
}

impl Snapshot for checkin::Model {
    fn entity_type(&self) -> &'static str {
        "checkin"
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
    fn event_id(&self) -> Option<Uuid> {
        Some(self.event_id)
    }
    fn snapshot(&self) -> Map<String, Value> {
        fields([
            ("registration", self.registration_id.to_string().into()),
            ("ticket", self.ticket_id.to_string().into()),
            ("user", self.user_id.to_string().into()),
            ("checked_in_at", time(&self.checked_in_at)),
            ("forced", self.forced.into()),
            ("offline", self.offline.into()),
            ("conflict", self.conflict.into()),
            ("method", self.method.clone().into()),
        ])
    }
}

impl Snapshot for media::Model {
    fn entity_type(&self) -> &'static str {
        "poster"
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
    fn event_id(&self) -> Option<Uuid> {
        Some(self.event_id)
    }
    fn snapshot(&self) -> Map<String, Value> {
        fields([
            ("event", self.event_id.to_string().into()),
            ("image", self.object_key.clone().into()),
            ("original_name", self.original_name.clone().into()),
            ("content_type", self.content_type.clone().into()),
            ("size", self.size.into()),
        ])
    }
}

impl Snapshot for user::Model {
    fn entity_type(&self) -> &'static str {
        "user"
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
    fn event_id(&self) -> Option<Uuid> {
        None
    }
    fn snapshot(&self) -> Map<String, Value> {
        fields([
            ("username", self.username.clone().into()),
            ("email", self.email.clone().into()),
            ("password", self.password.clone().into()),
            ("first_name", self.first_name.clone().into()),
            ("last_name", self.last_name.clone().into()),
            ("is_superuser", self.is_superuser.into()),
            ("is_active", self.is_active.into()),
        ])
    }
}

impl Snapshot for group::Model {
    fn entity_type(&self) -> &'static str {
        "group"
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
    fn event_id(&self) -> Option<Uuid> {
        None
    }
    fn snapshot(&self) -> Map<String, Value> {
        fields([("name", self.name.clone().into())])
    }
}

/// An endpoint's entries belong to no event: only those who see everything
/// read them (its URL may carry a receiver's token: masked).
impl Snapshot for webhook_endpoint::Model {
    fn entity_type(&self) -> &'static str {
        "webhook"
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
    fn event_id(&self) -> Option<Uuid> {
        None
    }
    fn snapshot(&self) -> Map<String, Value> {
        fields([
            ("url", super::webhooks::redacted_url(&self.url).into()),
            (
                "event",
                self.event_id.map_or(Value::Null, |e| e.to_string().into()),
            ),
            ("description", self.description.clone().into()),
            ("enabled", self.enabled.into()),
            ("disabled_reason", self.disabled_reason.clone().into()),
            ("secret", self.secret.clone().into()),
        ])
    }
}

/// A membership is logged on its user.
impl Snapshot for user_group::Model {
    fn entity_type(&self) -> &'static str {
        "user"
    }
    fn entity_id(&self) -> String {
        self.user_id.to_string()
    }
    fn event_id(&self) -> Option<Uuid> {
        None
    }
    fn snapshot(&self) -> Map<String, Value> {
        fields([("group_id", self.group_id.into())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_back_as_themselves() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(*action));
        }
        assert_eq!(Action::parse("event.exploded"), None);
    }

    #[test]
    fn changes_name_what_differs_and_mask_secrets() {
        let changes = Changes::between(
            &fields([("a", 1.into()), ("b", 2.into()), ("password", "x".into())]),
            &fields([("a", 1.into()), ("b", 3.into()), ("password", "y".into())]),
        );
        assert_eq!(
            changes.into_json(),
            serde_json::json!({"b": [2, 3], "password": [MASK, MASK]})
        );
        let created = Changes::between(&Map::new(), &fields([("token", "t".into())]));
        assert_eq!(
            created.into_json(),
            serde_json::json!({"token": [null, MASK]})
        );
    }

    #[test]
    fn ids_follow_the_time() {
        let at = DateTime::parse_from_rfc3339("2026-12-05T10:00:00.123Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("a valid time");
        let later = at + chrono::Duration::milliseconds(1);
        assert!(first_id_at(at) <= id_at(at));
        assert!(id_at(at) < first_id_at(later));
        assert!(id_at(at) < id_at(later));
        let id = id_at(at);
        assert!(successor(id) > id);
        assert_eq!(successor(id).get_version_num(), 7);
    }
}
