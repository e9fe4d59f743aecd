//! Schema migrations: one code path for SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CoreSchema),
            Box::new(MediaSchema),
            Box::new(OutboxSchema),
            Box::new(CategoryIndex),
            Box::new(CheckinSchema),
            Box::new(CacheStamp),
            Box::new(ConsoleSessions),
            Box::new(ConsoleIndexes),
            Box::new(HousekeepingIndexes),
        ]
    }
}

/// Accounts, roles, events, tickets, registrations, payments and the
/// bookkeeping tables of authentication and idempotency.
struct CoreSchema;

impl MigrationName for CoreSchema {
    fn name(&self) -> &str {
        "m20261125_000001_core_schema"
    }
}

fn fk(
    from_table: &'static str,
    from_col: &'static str,
    to_table: &'static str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from_table}_{from_col}"))
        .from(from_table, from_col)
        .to(to_table, "id")
        .on_delete(on_delete)
        .to_owned()
}

fn index(table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(format!("idx_{table}_{}", cols.join("_")))
        .table(table);
    for col in cols {
        stmt.col(*col);
    }
    stmt.to_owned()
}

fn unique_index(table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = index(table, cols);
    stmt.name(format!("uq_{table}_{}", cols.join("_"))).unique();
    stmt
}

#[async_trait::async_trait]
impl MigrationTrait for CoreSchema {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("users")
                .col(pk_uuid("id"))
                .col(string_len("username", 150))
                .col(string_len("username_key", 150))
                .col(string_len("email", 254))
                .col(string_len("email_key", 254))
                .col(string_len("password", 255))
                .col(string_len("first_name", 150))
                .col(string_len("last_name", 150))
                .col(boolean("is_superuser"))
                .col(boolean("is_active"))
                .col(timestamp_with_time_zone("date_joined"))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index("users", &["username_key"]))
            .await?;
        m.create_index(unique_index("users", &["email_key"]))
            .await?;

        m.create_table(
            Table::create()
                .table("groups")
                .col(pk_auto("id"))
                .col(string_len("name", 150))
                .col(string_len("name_key", 150))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index("groups", &["name_key"]))
            .await?;

        m.create_table(
            Table::create()
                .table("user_groups")
                .col(uuid("user_id"))
                .col(integer("group_id"))
                .primary_key(Index::create().col("user_id").col("group_id"))
                .foreign_key(&mut fk(
                    "user_groups",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "user_groups",
                    "group_id",
                    "groups",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("user_groups", &["group_id"])).await?;

        m.create_table(
            Table::create()
                .table("events")
                .col(pk_uuid("id"))
                .col(string_len("name", 255))
                .col(text("description"))
                .col(string_len("location", 255))
                .col(timestamp_with_time_zone("start_time"))
                .col(timestamp_with_time_zone("end_time"))
                .col(string_len("status", 20))
                .col(string_len("category", 100))
                .col(big_integer("quota"))
                .col(big_integer("registered").default(0))
                .col(uuid("organizer_id"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk(
                    "events",
                    "organizer_id",
                    "users",
                    ForeignKeyAction::Restrict,
                ))
                .to_owned(),
        )
        .await?;
        for cols in [
            &["start_time", "id"][..],
            &["organizer_id"],
            &["status"],
            &["category"],
            &["created_at", "id"],
            &["name", "id"],
            &["quota", "id"],
        ] {
            m.create_index(index("events", cols)).await?;
        }

        m.create_table(
            Table::create()
                .table("tickets")
                .col(pk_uuid("id"))
                .col(uuid("event_id"))
                .col(string_len("name", 100))
                .col(big_integer("price_minor"))
                .col(timestamp_with_time_zone("sales_start"))
                .col(timestamp_with_time_zone("sales_end"))
                .col(big_integer("quota"))
                .col(big_integer("sold").default(0))
                .foreign_key(&mut fk(
                    "tickets",
                    "event_id",
                    "events",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("tickets", &["event_id"])).await?;

        m.create_table(
            Table::create()
                .table("registrations")
                .col(pk_uuid("id"))
                .col(uuid("ticket_id"))
                .col(uuid("user_id"))
                .col(uuid("event_id"))
                .col(timestamp_with_time_zone("registered_at"))
                .foreign_key(&mut fk(
                    "registrations",
                    "ticket_id",
                    "tickets",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "registrations",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "registrations",
                    "event_id",
                    "events",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index("registrations", &["ticket_id", "user_id"]))
            .await?;
        m.create_index(index("registrations", &["user_id"])).await?;
        m.create_index(index("registrations", &["event_id"]))
            .await?;

        m.create_table(
            Table::create()
                .table("payments")
                .col(pk_uuid("id"))
                .col(uuid("registration_id"))
                .col(uuid("user_id"))
                .col(uuid("event_id"))
                .col(string_len("payment_method", 50))
                .col(string_len("payment_status", 20))
                .col(big_integer("amount_paid_minor"))
                .col(timestamp_with_time_zone_null("paid_at"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk(
                    "payments",
                    "registration_id",
                    "registrations",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("payments", &["registration_id"]))
            .await?;
        m.create_index(index("payments", &["user_id"])).await?;
        m.create_index(index("payments", &["event_id"])).await?;
        // At most one completed payment per registration, enforced by the
        // database so that concurrent requests cannot both complete one.
        // The statement is the same on SQLite and PostgreSQL.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_payments_completed ON payments (registration_id) \
                 WHERE payment_status = 'completed'",
            )
            .await?;

        m.create_table(
            Table::create()
                .table("revoked_tokens")
                .col(string_len("jti", 64).primary_key())
                .col(timestamp_with_time_zone("expires_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("idempotency_keys")
                .col(uuid("user_id"))
                .col(string_len("key", 255))
                .col(integer("status_code"))
                .col(text("response_body"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("user_id").col("key"))
                .foreign_key(&mut fk(
                    "idempotency_keys",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("login_failures")
                .col(big_pk_auto("id"))
                .col(string_len("key", 300))
                .col(timestamp_with_time_zone("failed_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("login_failures", &["key", "failed_at"]))
            .await?;
        Ok(())
    }
}

/// Posters stored in object storage.
struct MediaSchema;

impl MigrationName for MediaSchema {
    fn name(&self) -> &str {
        "m20261125_000002_media"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for MediaSchema {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("media")
                .col(pk_uuid("id"))
                .col(uuid("event_id"))
                .col(string_len("object_key", 255))
                .col(string_len("original_name", 255))
                .col(string_len("content_type", 100))
                .col(big_integer("size"))
                .col(string_len("sha256", 64))
                .col(timestamp_with_time_zone("uploaded_at"))
                .foreign_key(&mut fk(
                    "media",
                    "event_id",
                    "events",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("media", &["event_id", "uploaded_at"]))
            .await?;
        m.create_index(unique_index("media", &["object_key"]))
            .await?;
        Ok(())
    }
}

/// The transactional outbox of background jobs.
struct OutboxSchema;

impl MigrationName for OutboxSchema {
    fn name(&self) -> &str {
        "m20261125_000003_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxSchema {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("outbox")
                .col(pk_uuid("id"))
                .col(string_len("kind", 30))
                .col(uuid("registration_id"))
                .col(string_len("dedupe_key", 200))
                .col(timestamp_with_time_zone_null("event_start"))
                .col(timestamp_with_time_zone("run_at"))
                .col(integer("attempts").default(0))
                .col(timestamp_with_time_zone_null("locked_until"))
                .col(string_len_null("locked_by", 100))
                .col(string_len("status", 10))
                .col(text_null("last_error"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("finished_at"))
                .foreign_key(&mut fk(
                    "outbox",
                    "registration_id",
                    "registrations",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index("outbox", &["dedupe_key"]))
            .await?;
        m.create_index(index("outbox", &["status", "run_at"]))
            .await?;
        m.create_index(index("outbox", &["registration_id"]))
            .await?;
        Ok(())
    }
}

/// The category filter is case-insensitive (`lower(category) = …`): an
/// expression index serves it, together with the default ordering.
struct CategoryIndex;

impl MigrationName for CategoryIndex {
    fn name(&self) -> &str {
        "m20261125_000004_category_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CategoryIndex {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Same statement on SQLite and PostgreSQL.
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_events_category_lower ON events (lower(category), start_time, id)",
            )
            .await?;
        Ok(())
    }
}

/// Check-in at the door: the ticket signing keys ever used (so codes signed
/// before a rotation still verify), the check-ins, and the registrations
/// revoked (deleted or moved) that offline door apps must refuse.
struct CheckinSchema;

impl MigrationName for CheckinSchema {
    fn name(&self) -> &str {
        "m20261201_000005_checkins"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CheckinSchema {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("ticket_keys")
                .col(string_len("kid", 16).primary_key())
                .col(string_len("public_key", 64))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("checkins")
                .col(pk_uuid("id"))
                .col(uuid("registration_id"))
                .col(uuid("event_id"))
                .col(uuid("ticket_id"))
                .col(uuid("user_id"))
                .col(timestamp_with_time_zone("checked_in_at"))
                .col(uuid_null("checked_in_by"))
                .col(boolean("forced").default(false))
                .col(boolean("offline").default(false))
                .col(boolean("conflict").default(false))
                .col(timestamp_with_time_zone("recorded_at"))
                .foreign_key(&mut fk(
                    "checkins",
                    "registration_id",
                    "registrations",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "checkins",
                    "checked_in_by",
                    "users",
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;
        // One admission per registration, decided by the database whatever
        // the number of scanners and processes; double entries found later
        // (offline scans) are kept beside it, flagged `conflict`.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_checkins_admitted ON checkins (registration_id) \
                 WHERE conflict = false",
            )
            .await?;
        m.create_index(index("checkins", &["event_id", "checked_in_at"]))
            .await?;
        m.create_index(index("checkins", &["ticket_id"])).await?;
        m.create_table(
            Table::create()
                .table("registration_revocations")
                .col(uuid("registration_id"))
                .col(uuid("event_id"))
                .col(timestamp_with_time_zone("revoked_at"))
                // A registration moved twice is revoked for both events.
                .primary_key(Index::create().col("registration_id").col("event_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "registration_revocations",
            &["event_id", "revoked_at"],
        ))
        .await?;
        Ok(())
    }
}

/// One row whose number CLI commands that write (`truncate`,
/// `createsuperuser`, `import-django`) bump: a running server cannot be
/// reached in its memory, so it watches this stamp and drops its cached
/// reads when it moves.
struct CacheStamp;

impl MigrationName for CacheStamp {
    fn name(&self) -> &str {
        "m20261201_000006_cache_stamp"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CacheStamp {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("cache_stamp")
                .col(integer("id").primary_key())
                .col(big_integer("generation").default(0))
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared("INSERT INTO cache_stamp (id, generation) VALUES (1, 0)")
            .await?;
        Ok(())
    }
}

/// Sessions of the web console: the hash of an opaque cookie, its user and
/// its CSRF token.
struct ConsoleSessions;

impl MigrationName for ConsoleSessions {
    fn name(&self) -> &str {
        "m20261201_000007_console_sessions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ConsoleSessions {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("console_sessions")
                .col(string_len("id", 64).primary_key())
                .col(uuid("user_id"))
                .col(string_len("csrf_token", 64))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("last_seen_at"))
                .foreign_key(&mut fk(
                    "console_sessions",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("console_sessions", &["user_id"]))
            .await?;
        Ok(())
    }
}

/// What the console's pages read often: an event's registrations in
/// registration order (its roster, the registrations-per-day chart), the
/// registrations of the last day (the staff dashboard), payments by status.
struct ConsoleIndexes;

impl MigrationName for ConsoleIndexes {
    fn name(&self) -> &str {
        "m20261201_000008_console_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ConsoleIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index("registrations", &["event_id", "registered_at"]))
            .await?;
        m.create_index(index("registrations", &["registered_at"]))
            .await?;
        m.create_index(index("payments", &["payment_status"]))
            .await?;
        Ok(())
    }
}

/// What housekeeping (`jobs::housekeeping`) prunes by: each table's age
/// column, so that a pass reads only the rows it deletes.
struct HousekeepingIndexes;

impl MigrationName for HousekeepingIndexes {
    fn name(&self) -> &str {
        "m20261204_000009_housekeeping_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for HousekeepingIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index("outbox", &["status", "finished_at"]))
            .await?;
        m.create_index(index("idempotency_keys", &["created_at"]))
            .await?;
        m.create_index(index("console_sessions", &["last_seen_at"]))
            .await?;
        m.create_index(index("revoked_tokens", &["expires_at"]))
            .await?;
        m.create_index(index("login_failures", &["failed_at"]))
            .await?;
        Ok(())
    }
}
