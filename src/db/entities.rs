//! SeaORM entities, one module per table. Timestamps are UTC; money is in
//! integer minor units (`price_minor`, `amount_paid_minor`).

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub username: String,
        /// Lower-cased username: the case-insensitive unique key.
        pub username_key: String,
        pub email: String,
        /// Lower-cased email: the case-insensitive unique key.
        pub email_key: String,
        pub password: String,
        pub first_name: String,
        pub last_name: String,
        pub is_superuser: bool,
        pub is_active: bool,
        pub date_joined: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod group {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "groups")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub name: String,
        /// Lower-cased name: the case-insensitive unique key.
        pub name_key: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod user_group {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_groups")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub group_id: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        pub description: String,
        pub location: String,
        pub start_time: DateTimeUtc,
        pub end_time: DateTimeUtc,
        pub status: String,
        pub category: String,
        pub quota: i64,
        /// Registrations across all the event's tickets; with `offered`,
        /// never above `quota`.
        pub registered: i64,
        /// Open waiting-list offers of its tickets: seats held.
        pub offered: i64,
        pub organizer_id: Uuid,
        /// IANA name of where it happens (`NULL`: the server's `TIME_ZONE`).
        pub timezone: Option<String>,
        /// How to pay for its priced tickets (a bank account, say), shown
        /// to its attendees.
        pub payment_instructions: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        /// The time zone it happens in: its own, else `default` (the
        /// server's `TIME_ZONE`).
        pub fn zone(&self, default: chrono_tz::Tz) -> chrono_tz::Tz {
            self.timezone
                .as_deref()
                .and_then(|name| name.parse().ok())
                .unwrap_or(default)
        }
    }
}

pub mod ticket {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tickets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub event_id: Uuid,
        pub name: String,
        pub price_minor: i64,
        pub sales_start: DateTimeUtc,
        pub sales_end: DateTimeUtc,
        pub quota: i64,
        /// Registrations for this ticket; never above `quota`.
        pub sold: i64,
        /// How long an unpaid registration of a priced ticket keeps its
        /// seat (API.md §9); `None`: until cancelled.
        pub payment_window_minutes: Option<i32>,
        /// Not listed publicly; registering needs a voucher that unlocks it.
        pub hidden: bool,
        /// Sold out, people may queue; a freed seat is offered to the first.
        pub waitlist: bool,
        pub waitlist_offer_hours: i32,
        /// Open waiting-list offers: seats held, counted with `sold`.
        pub offered: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::event::Entity",
            from = "Column::EventId",
            to = "super::event::Column::Id"
        )]
        Event,
    }

    impl Related<super::event::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Event.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod registration {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "registrations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub ticket_id: Uuid,
        pub user_id: Uuid,
        /// The ticket's event, kept here so lists can be scoped and filtered
        /// by event without a join.
        pub event_id: Uuid,
        pub registered_at: DateTimeUtc,
        /// Printed under the QR code and typed at the door: 10 Crockford
        /// base32 characters, unique (`ticket_codes::new_short_code`).
        pub short_code: String,
        /// `confirmed`, `awaiting_payment` or `expired` (API.md §9).
        pub status: String,
        /// When an `awaiting_payment` registration loses its seat.
        pub hold_expires_at: Option<DateTimeUtc>,
        /// The voucher it was made with.
        pub voucher_id: Option<Uuid>,
        /// What it owes: the ticket's price after the voucher's discount.
        pub amount_due_minor: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod payment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "payments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub registration_id: Uuid,
        /// Denormalised from the registration for scoping (user, event).
        pub user_id: Uuid,
        pub event_id: Uuid,
        pub payment_method: String,
        pub payment_status: String,
        pub amount_paid_minor: i64,
        pub paid_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// The attendee's proof of transfer: the stored object, its content
        /// type and the file name it was sent with.
        pub proof_key: Option<String>,
        pub proof_type: Option<String>,
        pub proof_name: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod revoked_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revoked_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub jti: String,
        pub expires_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod idempotency_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        /// The endpoint's name and the SHA-256 (hex) of the key as sent.
        pub key: String,
        pub status_code: i32,
        pub response_body: String,
        /// SHA-256 (hex) of the request's body, its JSON keys sorted.
        pub fingerprint: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod login_failure {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "login_failures")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// `user:<lower-cased username>` or `addr:<client address>`.
        pub key: String,
        pub failed_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod media {
    use sea_orm::entity::prelude::*;

    /// A poster: the row exists only if its object was stored.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "media")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub event_id: Uuid,
        /// The stored object's name: `posters/<event id>/<uuid>.<ext>`.
        pub object_key: String,
        /// The client's file name, sanitised; never used to store anything.
        pub original_name: String,
        pub content_type: String,
        pub size: i64,
        /// Hex SHA-256 of the bytes (also the ETag).
        pub sha256: String,
        pub uploaded_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod outbox {
    use sea_orm::entity::prelude::*;

    /// A background job, written in the transaction of the change that
    /// causes it and run by any worker (see `crate::jobs`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// `confirmation`, `reminder` (mails about a registration),
        /// `webhook` (a message for an endpoint) or `webhook_disabled` (the
        /// mail telling an endpoint's owner).
        pub kind: String,
        pub registration_id: Option<Uuid>,
        pub endpoint_id: Option<Uuid>,
        /// The audit entry a webhook message is made from (its
        /// `webhook-id`).
        pub message_id: Option<Uuid>,
        /// Unique: `confirmation:<registration>` or
        /// `reminder:<registration>:<event start time>`.
        pub dedupe_key: String,
        /// The event start time a reminder was made for.
        pub event_start: Option<DateTimeUtc>,
        pub run_at: DateTimeUtc,
        pub attempts: i32,
        /// A claimed job belongs to its worker until this lease ends.
        pub locked_until: Option<DateTimeUtc>,
        pub locked_by: Option<String>,
        /// `pending`, `done`, `skipped` or `dead`.
        pub status: String,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
        /// JSON for jobs that need more than the ids above: the origin of
        /// a mailed link and its token (`verify_email`, `password_reset`),
        /// what changed (`event_changed`).
        pub payload: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl outbox::Model {
    /// What the job is about, as people read it.
    pub fn subject(&self) -> String {
        match (self.registration_id, self.endpoint_id, self.message_id) {
            (Some(r), _, _) => format!("registration {r}"),
            (None, Some(e), Some(m)) => format!("message {m} for endpoint {e}"),
            (None, Some(e), None) => format!("endpoint {e}"),
            // Mails of account links carry their token in the payload.
            _ => "an account".into(),
        }
    }
}

pub mod ticket_key {
    use sea_orm::entity::prelude::*;

    /// A ticket signing key's public half, recorded when it first signs:
    /// codes signed before a rotation keep verifying.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kid: String,
        /// Base64url (no padding) of the 32-byte Ed25519 public key.
        pub public_key: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod checkin {
    use sea_orm::entity::prelude::*;

    /// A scan at the door. At most one per registration has
    /// `conflict = false` (a unique index); offline scans that arrive after
    /// another admission are kept with `conflict = true`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "checkins")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub registration_id: Uuid,
        pub event_id: Uuid,
        pub ticket_id: Uuid,
        pub user_id: Uuid,
        /// When the person was admitted (for an offline scan, when it was
        /// scanned at the door).
        pub checked_in_at: DateTimeUtc,
        /// The scanner's account (`NULL` once that account is deleted).
        pub checked_in_by: Option<Uuid>,
        /// Admitted although the ticket was not paid.
        pub forced: bool,
        /// Scanned by a door app without a connection, uploaded later.
        pub offline: bool,
        /// A second entry on the same ticket.
        pub conflict: bool,
        /// `scan` (a code) or `manual` (door staff found the person by name).
        pub method: String,
        /// When the server recorded it.
        pub recorded_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod registration_revocation {
    use sea_orm::entity::prelude::*;

    /// A registration deleted (or moved to another event): its ticket code
    /// no longer admits anyone to `event_id`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "registration_revocations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub registration_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: Uuid,
        pub revoked_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod console_session {
    use sea_orm::entity::prelude::*;

    /// A signed-in browser: the SHA-256 (hex) of its cookie's random value
    /// (a leaked table gives no usable session), its user and CSRF token.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "console_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: Uuid,
        pub csrf_token: String,
        pub created_at: DateTimeUtc,
        pub last_seen_at: DateTimeUtc,
        /// The event whose door this browser is at (the scan page's door mode).
        pub door_event_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod payment_tally {
    use sea_orm::entity::prelude::*;

    /// An event's payments in one status: how many and their sum. Kept by
    /// triggers on `payments` (migration `m20261205_000010_scale`); read,
    /// never written, by the code.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "payment_tallies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub payment_status: String,
        pub n: i64,
        pub amount_minor: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod checkin_tally {
    use sea_orm::entity::prelude::*;

    /// A ticket type's check-ins: people admitted and conflicting offline
    /// scans. Kept by triggers on `checkins`; read, never written, by the
    /// code.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "checkin_tallies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub ticket_id: Uuid,
        pub event_id: Uuid,
        pub admitted: i64,
        pub conflicts: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod registration_tally {
    use sea_orm::entity::prelude::*;

    /// An event's registrations made in one quarter hour (`slot`: Unix time
    /// / 900). Kept by triggers on `registrations`; read, never written, by
    /// the code.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "registration_tallies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub slot: i64,
        pub n: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod event_tally {
    use sea_orm::entity::prelude::*;

    /// How many events have a status and a category (`category_key`: its
    /// lowercase form, as the list filters it). Kept by triggers on
    /// `events`; read, never written, by the code.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_tallies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub status: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub category_key: String,
        pub n: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod password_change {
    use sea_orm::entity::prelude::*;

    /// When an account's password last changed: refresh tokens issued
    /// before are refused.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "password_changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub changed_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod email_verification {
    use sea_orm::entity::prelude::*;

    /// An account still to verify its e-mail address; `required`: it may
    /// not register until it has (a console sign-up), else only when
    /// `REQUIRE_EMAIL_VERIFICATION` is on. No row: verified.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "email_verifications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub required: bool,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod account_token {
    use sea_orm::entity::prelude::*;

    /// A one-use link mailed to a person: `verify_email` or
    /// `password_reset`. Only the SHA-256 of the link's secret is kept.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "account_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub purpose: String,
        pub token_hash: String,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub used_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit_entry {
    use sea_orm::entity::prelude::*;

    /// One write, as the audit log keeps it (see `db::audit`). Never
    /// changed or deleted: a trigger refuses both.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_entries")]
    pub struct Model {
        /// UUIDv7 of `occurred_at`: ids sort by time.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub occurred_at: DateTimeUtc,
        /// `user`, `system` or `cli`.
        pub actor_type: String,
        pub actor_id: Option<Uuid>,
        pub actor_username: Option<String>,
        /// `<entity>.<verb>`, e.g. `registration.created`.
        pub action: String,
        pub entity_type: String,
        pub entity_id: String,
        pub event_id: Option<Uuid>,
        /// That event's organiser when the entry was written (who else may
        /// read it).
        pub organizer_id: Option<Uuid>,
        /// JSON: `{"field": [before, after]}`, secrets masked.
        pub changes: String,
        pub ip: Option<String>,
        pub request_id: Option<String>,
        /// JSON: the entity as the API shows it after the change (before
        /// it, for a deletion), secrets left out: a webhook's `data`.
        pub data: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod webhook_endpoint {
    use sea_orm::entity::prelude::*;

    /// Where webhook messages go (API.md §11).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_endpoints")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub owner_id: Uuid,
        pub url: String,
        /// One event, or `None`: every event the owner may see.
        pub event_id: Option<Uuid>,
        pub description: String,
        pub enabled: bool,
        pub disabled_reason: Option<String>,
        /// The owner saw every event (superuser or admin) when it was
        /// saved; otherwise only the events they organise.
        pub all_events: bool,
        /// `whsec_` + base64 of 32 random bytes.
        pub secret: String,
        /// The secret before the last rotation, still signing until
        /// `previous_secret_until`.
        pub previous_secret: Option<String>,
        pub previous_secret_until: Option<DateTimeUtc>,
        /// When deliveries began failing (reset by a success).
        pub first_failure_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod webhook_type {
    use sea_orm::entity::prelude::*;

    /// One type pattern of an endpoint (`registration.*`, `*`), stored as
    /// its LIKE pattern's source.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_types")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub endpoint_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub pattern: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod webhook_attempt {
    use sea_orm::entity::prelude::*;

    /// One delivery attempt: the delivery log.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_attempts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub endpoint_id: Uuid,
        pub message_id: Uuid,
        pub message_type: String,
        pub attempt: i32,
        pub status_code: Option<i32>,
        pub duration_ms: i64,
        /// The first KiB of the answer.
        pub response_body: String,
        pub error: Option<String>,
        pub next_attempt_at: Option<DateTimeUtc>,
        pub attempted_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod voucher {
    use sea_orm::entity::prelude::*;

    /// A code of one event giving a discount and/or unlocking hidden
    /// tickets (API.md §9). `uses` is a guarded counter, like `sold`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "vouchers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub event_id: Uuid,
        /// As the organiser wrote it.
        pub code: String,
        /// Upper-cased: codes are case-insensitive (unique per event).
        pub code_key: String,
        /// A JSON array of ticket ids; empty: every ticket of the event.
        pub ticket_ids: String,
        /// `percent`, `fixed` or `none`.
        pub discount_type: String,
        /// Hundredths: of a percent (`percent`) or of the currency (`fixed`).
        pub discount_value: i64,
        pub max_uses: Option<i32>,
        pub uses: i32,
        pub valid_until: Option<DateTimeUtc>,
        pub unlocks_hidden: bool,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod waitlist_entry {
    use sea_orm::entity::prelude::*;

    /// A person waiting for a sold-out ticket (API.md §9): `waiting`,
    /// `offered` (a seat held until `offer_expires_at`), then `accepted`,
    /// `expired`, `left` or `closed`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "waitlist_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub ticket_id: Uuid,
        pub event_id: Uuid,
        pub user_id: Uuid,
        /// The order of joining (the position is the rank among those
        /// still waiting).
        pub seq: i64,
        pub status: String,
        pub offer_expires_at: Option<DateTimeUtc>,
        /// The registration an accepted offer became.
        pub registration_id: Option<Uuid>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
