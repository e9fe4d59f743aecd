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
            Box::new(ScaleSchema),
            Box::new(IdempotencyFingerprints),
            Box::new(PasswordChanges),
            Box::new(EventTextSearch),
            Box::new(AuditLog),
            Box::new(Webhooks),
            Box::new(Door),
            Box::new(EventTimeZones),
            Box::new(AccountMail),
            Box::new(Paying),
            Box::new(PaymentWindows),
            Box::new(Vouchers),
            Box::new(WaitingLists),
            Box::new(AuditCountMark),
            Box::new(ListedRegistrations),
            Box::new(EventAuditInScope),
            Box::new(RosterByPerson),
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

/// Flat cost at a million rows (README "Scale"): the tallies an event's
/// numbers are read from instead of counting its rows, kept by triggers so
/// that every write (cascades, the importer and the CLI included) moves
/// them in its own transaction; indexes that serve each list in its order
/// (and its deep pages from the index alone); on PostgreSQL, trigram
/// indexes for the `contains` searches.
struct ScaleSchema;

impl MigrationName for ScaleSchema {
    fn name(&self) -> &str {
        "m20261205_000010_scale"
    }
}

/// PostgreSQL: one function per tallied table, run for each changed row
/// when its transaction commits (a constraint trigger, deferred): a tally's
/// row is locked last and only for the commit, after the counters the
/// write already holds, in the same order for every write — no new waiting
/// on a busy event, no deadlock.
const PG_TALLY_TRIGGERS: &str = r#"
CREATE FUNCTION tally_payment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE payment_tallies
           SET n = n - 1, amount_minor = amount_minor - OLD.amount_paid_minor
         WHERE event_id = OLD.event_id AND payment_status = OLD.payment_status;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO payment_tallies (event_id, payment_status, n, amount_minor)
        VALUES (NEW.event_id, NEW.payment_status, 1, NEW.amount_paid_minor)
        ON CONFLICT (event_id, payment_status) DO UPDATE
           SET n = payment_tallies.n + 1,
               amount_minor = payment_tallies.amount_minor + EXCLUDED.amount_minor;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER payments_tally AFTER INSERT OR DELETE
    OR UPDATE OF event_id, payment_status, amount_paid_minor ON payments
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tally_payment();

CREATE FUNCTION tally_checkin() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE checkin_tallies
           SET admitted = admitted - CASE WHEN OLD.conflict THEN 0 ELSE 1 END,
               conflicts = conflicts + CASE WHEN OLD.conflict THEN -1 ELSE 0 END
         WHERE ticket_id = OLD.ticket_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO checkin_tallies (ticket_id, event_id, admitted, conflicts)
        VALUES (NEW.ticket_id, NEW.event_id,
                CASE WHEN NEW.conflict THEN 0 ELSE 1 END, CASE WHEN NEW.conflict THEN 1 ELSE 0 END)
        ON CONFLICT (ticket_id) DO UPDATE
           SET admitted = checkin_tallies.admitted + EXCLUDED.admitted,
               conflicts = checkin_tallies.conflicts + EXCLUDED.conflicts;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER checkins_tally AFTER INSERT OR DELETE
    OR UPDATE OF ticket_id, conflict ON checkins
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tally_checkin();

CREATE FUNCTION tally_registration() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE registration_tallies SET n = n - 1
         WHERE event_id = OLD.event_id
           AND slot = floor(extract(epoch FROM OLD.registered_at) / 900)::bigint;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO registration_tallies (event_id, slot, n)
        VALUES (NEW.event_id, floor(extract(epoch FROM NEW.registered_at) / 900)::bigint, 1)
        ON CONFLICT (event_id, slot) DO UPDATE SET n = registration_tallies.n + 1;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER registrations_tally AFTER INSERT OR DELETE
    OR UPDATE OF event_id, registered_at ON registrations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tally_registration();

CREATE FUNCTION tally_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE event_tallies SET n = n - 1
         WHERE status = OLD.status AND category_key = lower(OLD.category);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO event_tallies (status, category_key, n)
        VALUES (NEW.status, lower(NEW.category), 1)
        ON CONFLICT (status, category_key) DO UPDATE SET n = event_tallies.n + 1;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER events_tally AFTER INSERT OR DELETE
    OR UPDATE OF status, category ON events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tally_event();
"#;

/// SQLite: the same, one trigger per operation (a deletion only ever
/// lowers an existing row, so a tally whose event is being deleted is not
/// created again). A missing row is inserted `WHERE NOT EXISTS`, not with
/// `INSERT OR IGNORE`: an outer statement's conflict clause (the importer's
/// upserts) would override the trigger's.
const SQLITE_TALLY_TRIGGERS: [&str; 12] = [
    "CREATE TRIGGER events_tally_insert AFTER INSERT ON events BEGIN
        INSERT INTO event_tallies (status, category_key, n)
            SELECT NEW.status, lower(NEW.category), 0 WHERE NOT EXISTS (SELECT 1 FROM event_tallies
             WHERE status = NEW.status AND category_key = lower(NEW.category));
        UPDATE event_tallies SET n = n + 1
         WHERE status = NEW.status AND category_key = lower(NEW.category);
    END",
    "CREATE TRIGGER events_tally_delete AFTER DELETE ON events BEGIN
        UPDATE event_tallies SET n = n - 1
         WHERE status = OLD.status AND category_key = lower(OLD.category);
    END",
    "CREATE TRIGGER events_tally_update AFTER UPDATE OF status, category ON events BEGIN
        UPDATE event_tallies SET n = n - 1
         WHERE status = OLD.status AND category_key = lower(OLD.category);
        INSERT INTO event_tallies (status, category_key, n)
            SELECT NEW.status, lower(NEW.category), 0 WHERE NOT EXISTS (SELECT 1 FROM event_tallies
             WHERE status = NEW.status AND category_key = lower(NEW.category));
        UPDATE event_tallies SET n = n + 1
         WHERE status = NEW.status AND category_key = lower(NEW.category);
    END",
    "CREATE TRIGGER registrations_tally_insert AFTER INSERT ON registrations BEGIN
        INSERT INTO registration_tallies (event_id, slot, n)
            SELECT NEW.event_id, unixepoch(NEW.registered_at) / 900, 0 WHERE NOT EXISTS (SELECT 1
              FROM registration_tallies
             WHERE event_id = NEW.event_id AND slot = unixepoch(NEW.registered_at) / 900);
        UPDATE registration_tallies SET n = n + 1
         WHERE event_id = NEW.event_id AND slot = unixepoch(NEW.registered_at) / 900;
    END",
    "CREATE TRIGGER registrations_tally_delete AFTER DELETE ON registrations BEGIN
        UPDATE registration_tallies SET n = n - 1
         WHERE event_id = OLD.event_id AND slot = unixepoch(OLD.registered_at) / 900;
    END",
    "CREATE TRIGGER registrations_tally_update
        AFTER UPDATE OF event_id, registered_at ON registrations BEGIN
        UPDATE registration_tallies SET n = n - 1
         WHERE event_id = OLD.event_id AND slot = unixepoch(OLD.registered_at) / 900;
        INSERT INTO registration_tallies (event_id, slot, n)
            SELECT NEW.event_id, unixepoch(NEW.registered_at) / 900, 0 WHERE NOT EXISTS (SELECT 1
              FROM registration_tallies
             WHERE event_id = NEW.event_id AND slot = unixepoch(NEW.registered_at) / 900);
        UPDATE registration_tallies SET n = n + 1
         WHERE event_id = NEW.event_id AND slot = unixepoch(NEW.registered_at) / 900;
    END",
    "CREATE TRIGGER payments_tally_insert AFTER INSERT ON payments BEGIN
        INSERT INTO payment_tallies (event_id, payment_status, n, amount_minor)
            SELECT NEW.event_id, NEW.payment_status, 0, 0 WHERE NOT EXISTS (SELECT 1
              FROM payment_tallies
             WHERE event_id = NEW.event_id AND payment_status = NEW.payment_status);
        UPDATE payment_tallies SET n = n + 1, amount_minor = amount_minor + NEW.amount_paid_minor
         WHERE event_id = NEW.event_id AND payment_status = NEW.payment_status;
    END",
    "CREATE TRIGGER payments_tally_delete AFTER DELETE ON payments BEGIN
        UPDATE payment_tallies SET n = n - 1, amount_minor = amount_minor - OLD.amount_paid_minor
         WHERE event_id = OLD.event_id AND payment_status = OLD.payment_status;
    END",
    "CREATE TRIGGER payments_tally_update
        AFTER UPDATE OF event_id, payment_status, amount_paid_minor ON payments BEGIN
        UPDATE payment_tallies SET n = n - 1, amount_minor = amount_minor - OLD.amount_paid_minor
         WHERE event_id = OLD.event_id AND payment_status = OLD.payment_status;
        INSERT INTO payment_tallies (event_id, payment_status, n, amount_minor)
            SELECT NEW.event_id, NEW.payment_status, 0, 0 WHERE NOT EXISTS (SELECT 1
              FROM payment_tallies
             WHERE event_id = NEW.event_id AND payment_status = NEW.payment_status);
        UPDATE payment_tallies SET n = n + 1, amount_minor = amount_minor + NEW.amount_paid_minor
         WHERE event_id = NEW.event_id AND payment_status = NEW.payment_status;
    END",
    "CREATE TRIGGER checkins_tally_insert AFTER INSERT ON checkins BEGIN
        INSERT INTO checkin_tallies (ticket_id, event_id, admitted, conflicts)
            SELECT NEW.ticket_id, NEW.event_id, 0, 0 WHERE NOT EXISTS (SELECT 1
              FROM checkin_tallies WHERE ticket_id = NEW.ticket_id);
        UPDATE checkin_tallies
           SET admitted = admitted + CASE WHEN NEW.conflict THEN 0 ELSE 1 END,
               conflicts = conflicts + CASE WHEN NEW.conflict THEN 1 ELSE 0 END
         WHERE ticket_id = NEW.ticket_id;
    END",
    "CREATE TRIGGER checkins_tally_delete AFTER DELETE ON checkins BEGIN
        UPDATE checkin_tallies
           SET admitted = admitted - CASE WHEN OLD.conflict THEN 0 ELSE 1 END,
               conflicts = conflicts - CASE WHEN OLD.conflict THEN 1 ELSE 0 END
         WHERE ticket_id = OLD.ticket_id;
    END",
    "CREATE TRIGGER checkins_tally_update AFTER UPDATE OF ticket_id, conflict ON checkins BEGIN
        UPDATE checkin_tallies
           SET admitted = admitted - CASE WHEN OLD.conflict THEN 0 ELSE 1 END,
               conflicts = conflicts - CASE WHEN OLD.conflict THEN 1 ELSE 0 END
         WHERE ticket_id = OLD.ticket_id;
        INSERT INTO checkin_tallies (ticket_id, event_id, admitted, conflicts)
            SELECT NEW.ticket_id, NEW.event_id, 0, 0 WHERE NOT EXISTS (SELECT 1
              FROM checkin_tallies WHERE ticket_id = NEW.ticket_id);
        UPDATE checkin_tallies
           SET admitted = admitted + CASE WHEN NEW.conflict THEN 0 ELSE 1 END,
               conflicts = conflicts + CASE WHEN NEW.conflict THEN 1 ELSE 0 END
         WHERE ticket_id = NEW.ticket_id;
    END",
];

/// The tallies of the rows already there (the same statements on both but
/// the registrations' time slot).
const TALLY_BACKFILL: [&str; 3] = [
    "INSERT INTO event_tallies (status, category_key, n)
     SELECT status, lower(category), COUNT(*) FROM events GROUP BY status, lower(category)",
    "INSERT INTO payment_tallies (event_id, payment_status, n, amount_minor)
     SELECT event_id, payment_status, COUNT(*), COALESCE(SUM(amount_paid_minor), 0)
       FROM payments WHERE event_id IN (SELECT id FROM events)
      GROUP BY event_id, payment_status",
    "INSERT INTO checkin_tallies (ticket_id, event_id, admitted, conflicts)
     SELECT ticket_id, event_id,
            SUM(CASE WHEN conflict THEN 0 ELSE 1 END), SUM(CASE WHEN conflict THEN 1 ELSE 0 END)
       FROM checkins WHERE ticket_id IN (SELECT id FROM tickets)
      GROUP BY ticket_id, event_id",
];

/// PostgreSQL: `lower(column) LIKE '%…%'` (events' search and location,
/// the roster's search) from trigram indexes instead of reading every row.
const PG_TRIGRAM_INDEXES: [&str; 8] = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX idx_events_name_trgm ON events USING gin (lower(name) gin_trgm_ops)",
    "CREATE INDEX idx_events_description_trgm ON events USING gin (lower(description) gin_trgm_ops)",
    "CREATE INDEX idx_events_location_trgm ON events USING gin (lower(location) gin_trgm_ops)",
    "CREATE INDEX idx_users_username_key_trgm ON users USING gin (username_key gin_trgm_ops)",
    "CREATE INDEX idx_users_email_key_trgm ON users USING gin (email_key gin_trgm_ops)",
    "CREATE INDEX idx_users_first_name_trgm ON users USING gin (lower(first_name) gin_trgm_ops)",
    "CREATE INDEX idx_users_last_name_trgm ON users USING gin (lower(last_name) gin_trgm_ops)",
];

#[async_trait::async_trait]
impl MigrationTrait for ScaleSchema {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("event_tallies")
                .col(string_len("status", 20))
                .col(string_len("category_key", 100))
                .col(big_integer("n").default(0))
                .primary_key(Index::create().col("status").col("category_key"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("payment_tallies")
                .col(uuid("event_id"))
                .col(string_len("payment_status", 20))
                .col(big_integer("n").default(0))
                .col(big_integer("amount_minor").default(0))
                .primary_key(Index::create().col("event_id").col("payment_status"))
                .foreign_key(&mut fk(
                    "payment_tallies",
                    "event_id",
                    "events",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("checkin_tallies")
                .col(uuid("ticket_id").primary_key())
                .col(uuid("event_id"))
                .col(big_integer("admitted").default(0))
                .col(big_integer("conflicts").default(0))
                .foreign_key(&mut fk(
                    "checkin_tallies",
                    "ticket_id",
                    "tickets",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("checkin_tallies", &["event_id"]))
            .await?;
        m.create_table(
            Table::create()
                .table("registration_tallies")
                .col(uuid("event_id"))
                .col(big_integer("slot"))
                .col(big_integer("n").default(0))
                .primary_key(Index::create().col("event_id").col("slot"))
                .foreign_key(&mut fk(
                    "registration_tallies",
                    "event_id",
                    "events",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        let conn = m.get_connection();
        for statement in TALLY_BACKFILL {
            conn.execute_unprepared(statement).await?;
        }
        let slot = match m.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                "floor(extract(epoch FROM registered_at) / 900)::bigint"
            }
            _ => "unixepoch(registered_at) / 900",
        };
        conn.execute_unprepared(&format!(
            "INSERT INTO registration_tallies (event_id, slot, n) \
             SELECT event_id, {slot}, COUNT(*) FROM registrations \
              WHERE event_id IN (SELECT id FROM events) GROUP BY event_id, {slot}"
        ))
        .await?;
        match m.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                conn.execute_unprepared(PG_TALLY_TRIGGERS).await?;
                for statement in PG_TRIGRAM_INDEXES {
                    conn.execute_unprepared(statement).await?;
                }
            }
            _ => {
                for statement in SQLITE_TALLY_TRIGGERS {
                    conn.execute_unprepared(statement).await?;
                }
            }
        }

        // Each list's order from one index, with the id: a deep page is
        // found from the index alone, then its rows are read.
        m.drop_index(
            Index::drop()
                .name("idx_registrations_event_id_registered_at")
                .table("registrations")
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("idx_registrations_event_id")
                .table("registrations")
                .to_owned(),
        )
        .await?;
        m.create_index(index("registrations", &["event_id", "registered_at", "id"]))
            .await?;
        m.create_index(index("registrations", &["user_id", "registered_at", "id"]))
            .await?;
        m.drop_index(
            Index::drop()
                .name("idx_registrations_user_id")
                .table("registrations")
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("idx_payments_event_id")
                .table("payments")
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("idx_payments_payment_status")
                .table("payments")
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "payments",
            &["event_id", "payment_status", "created_at", "id"],
        ))
        .await?;
        m.create_index(index("payments", &["payment_status", "created_at", "id"]))
            .await?;
        m.create_index(index("payments", &["event_id", "created_at", "id"]))
            .await?;
        m.create_index(index("payments", &["user_id", "created_at", "id"]))
            .await?;
        m.drop_index(
            Index::drop()
                .name("idx_payments_user_id")
                .table("payments")
                .to_owned(),
        )
        .await?;
        m.create_index(index("checkins", &["event_id", "recorded_at", "id"]))
            .await?;
        Ok(())
    }
}

/// Idempotency keys bound to their request (API.md §7): the fingerprint of
/// the body a key was first used with. Keys stored before (without their
/// endpoint's name) are forgotten: a retry across the upgrade is processed
/// anew.
struct IdempotencyFingerprints;

impl MigrationName for IdempotencyFingerprints {
    fn name(&self) -> &str {
        "m20261205_000011_idempotency_fingerprints"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IdempotencyFingerprints {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("idempotency_keys")
                .add_column(string_len("fingerprint", 64).default(""))
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared("DELETE FROM idempotency_keys")
            .await?;
        Ok(())
    }
}

/// When each account's password last changed (API.md §12): a refresh
/// token issued before it is refused.
struct PasswordChanges;

impl MigrationName for PasswordChanges {
    fn name(&self) -> &str {
        "m20261205_000012_password_changes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PasswordChanges {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("password_changes")
                .col(uuid("user_id").primary_key())
                .col(timestamp_with_time_zone("changed_at"))
                .foreign_key(&mut fk(
                    "password_changes",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await
    }
}

/// The events search (name or description contains the text) through one
/// trigram index over both, joined by U+001F (a character no search can
/// span: a text containing it is searched column by column), in place of
/// one index per column: one index scan instead of two (bench/scale.sh).
struct EventTextSearch;

impl MigrationName for EventTextSearch {
    fn name(&self) -> &str {
        "m20261206_000013_event_text_search"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for EventTextSearch {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE INDEX idx_events_text_trgm ON events \
             USING gin (lower(name || E'\\x1f' || description) gin_trgm_ops)",
        )
        .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS idx_events_description_trgm")
            .await?;
        Ok(())
    }
}

/// The audit log (API.md §10): append-only, enforced by triggers that
/// refuse `UPDATE` and `DELETE` (and, on PostgreSQL, `TRUNCATE`). No foreign
/// keys: an entry outlives what it names (its event's organiser is kept on
/// it, so organisers still see the entries of an event once deleted). Its
/// indexes serve the list's filters, each ending with the id the list is
/// ordered by.
struct AuditLog;

impl MigrationName for AuditLog {
    fn name(&self) -> &str {
        "m20261207_000014_audit_log"
    }
}

const AUDIT_REFUSAL: &str = "audit entries are never changed or deleted";

#[async_trait::async_trait]
impl MigrationTrait for AuditLog {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("audit_entries")
                .col(pk_uuid("id"))
                .col(timestamp_with_time_zone("occurred_at"))
                .col(string("actor_type"))
                .col(uuid_null("actor_id"))
                .col(string_null("actor_username"))
                .col(string("action"))
                .col(string("entity_type"))
                .col(string("entity_id"))
                .col(uuid_null("event_id"))
                .col(uuid_null("organizer_id"))
                .col(text("changes"))
                .col(string_null("ip"))
                .col(string_null("request_id"))
                .to_owned(),
        )
        .await?;
        for cols in [
            &["event_id", "id"][..],
            &["organizer_id", "id"][..],
            &["entity_type", "entity_id", "id"][..],
            &["actor_id", "id"][..],
        ] {
            m.create_index(index("audit_entries", cols)).await?;
        }
        let db = m.get_connection();
        if m.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            db.execute_unprepared(&format!(
                "CREATE FUNCTION audit_entries_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN RAISE EXCEPTION '{AUDIT_REFUSAL}' USING ERRCODE = 'insufficient_privilege'; END $$"
            ))
            .await?;
            db.execute_unprepared(
                "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries \
                 FOR EACH ROW EXECUTE FUNCTION audit_entries_refuse()",
            )
            .await?;
            db.execute_unprepared(
                "CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries \
                 FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse()",
            )
            .await?;
        } else {
            for (name, what) in [("no_update", "UPDATE"), ("no_delete", "DELETE")] {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER audit_entries_{name} BEFORE {what} ON audit_entries \
                     BEGIN SELECT RAISE(ABORT, '{AUDIT_REFUSAL}'); END"
                ))
                .await?;
            }
        }
        Ok(())
    }
}

/// Webhooks (API.md §11): endpoints with their type patterns, the log of
/// every delivery attempt, and the outbox made generic: a job is about a
/// registration (mails) or a message for an endpoint (`endpoint_id`,
/// `message_id`: the audit entry it was made from). The audit entry keeps
/// the entity as the API shows it after the change (`data`), which the
/// message carries. SQLite cannot drop a NOT NULL: the outbox is rebuilt
/// (on both backends, one code path).
struct Webhooks;

impl MigrationName for Webhooks {
    fn name(&self) -> &str {
        "m20261207_000015_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Webhooks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("webhook_endpoints")
                .col(pk_uuid("id"))
                .col(uuid("owner_id"))
                .col(text("url"))
                .col(uuid_null("event_id"))
                .col(text("description"))
                .col(boolean("enabled"))
                .col(text_null("disabled_reason"))
                .col(boolean("all_events"))
                .col(text("secret"))
                .col(text_null("previous_secret"))
                .col(timestamp_with_time_zone_null("previous_secret_until"))
                .col(timestamp_with_time_zone_null("first_failure_at"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk(
                    "webhook_endpoints",
                    "owner_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "webhook_endpoints",
                    "event_id",
                    "events",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("webhook_endpoints", &["owner_id"]))
            .await?;
        m.create_table(
            Table::create()
                .table("webhook_types")
                .col(uuid("endpoint_id"))
                .col(string("pattern"))
                .primary_key(Index::create().col("endpoint_id").col("pattern"))
                .foreign_key(&mut fk(
                    "webhook_types",
                    "endpoint_id",
                    "webhook_endpoints",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("webhook_attempts")
                .col(pk_uuid("id"))
                .col(uuid("endpoint_id"))
                .col(uuid("message_id"))
                .col(string("message_type"))
                .col(integer("attempt"))
                .col(integer_null("status_code"))
                .col(big_integer("duration_ms"))
                .col(text("response_body"))
                .col(text_null("error"))
                .col(timestamp_with_time_zone_null("next_attempt_at"))
                .col(timestamp_with_time_zone("attempted_at"))
                .foreign_key(&mut fk(
                    "webhook_attempts",
                    "endpoint_id",
                    "webhook_endpoints",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("webhook_attempts", &["endpoint_id", "id"]))
            .await?;
        m.alter_table(
            Table::alter()
                .table("audit_entries")
                .add_column(text_null("data"))
                .to_owned(),
        )
        .await?;

        // The outbox, rebuilt with a nullable registration and the
        // message's columns; rows and indexes carried over.
        m.create_table(
            Table::create()
                .table("outbox_v2")
                .col(pk_uuid("id"))
                .col(string_len("kind", 30))
                .col(uuid_null("registration_id"))
                .col(uuid_null("endpoint_id"))
                .col(uuid_null("message_id"))
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
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_outbox_registration_id_v2")
                        .from("outbox_v2", "registration_id")
                        .to("registrations", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_outbox_endpoint_id")
                        .from("outbox_v2", "endpoint_id")
                        .to("webhook_endpoints", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        // One call, so one connection (SQLite): another connection of the
        // pool may still see the old table while the new one takes its name
        // and its indexes' names.
        db.execute_unprepared(
            "INSERT INTO outbox_v2 (id, kind, registration_id, dedupe_key, event_start, run_at, \
             attempts, locked_until, locked_by, status, last_error, created_at, finished_at) \
             SELECT id, kind, registration_id, dedupe_key, event_start, run_at, attempts, \
             locked_until, locked_by, status, last_error, created_at, finished_at FROM outbox; \
             DROP TABLE outbox; \
             ALTER TABLE outbox_v2 RENAME TO outbox; \
             CREATE UNIQUE INDEX uq_outbox_dedupe_key ON outbox (dedupe_key); \
             CREATE INDEX idx_outbox_status_run_at ON outbox (status, run_at); \
             CREATE INDEX idx_outbox_registration_id ON outbox (registration_id); \
             CREATE INDEX idx_outbox_status_finished_at ON outbox (status, finished_at); \
             CREATE INDEX idx_outbox_endpoint_id_message_id ON outbox (endpoint_id, message_id)",
        )
        .await?;
        Ok(())
    }
}

/// The door (API.md §7): a short code per registration (10 Crockford
/// base32 characters, unique), how each check-in was made (`scan` or
/// `manual`), and the event a console session's door mode is at.
struct Door;

impl MigrationName for Door {
    fn name(&self) -> &str {
        "m20261208_000016_door"
    }
}

/// A random short code, as SQL, one per row (for the registrations made
/// before short codes existed).
fn random_short_code_sql(backend: sea_orm::DbBackend) -> String {
    let alphabet = crate::ticket_codes::SHORT_CODE_ALPHABET;
    let one = match backend {
        sea_orm::DbBackend::Postgres => {
            format!("substr('{alphabet}', 1 + floor(random() * 32)::int, 1)")
        }
        _ => format!("substr('{alphabet}', 1 + (abs(random()) % 32), 1)"),
    };
    vec![one; crate::ticket_codes::SHORT_CODE_LEN].join(" || ")
}

#[async_trait::async_trait]
impl MigrationTrait for Door {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("registrations")
                .add_column(string_len_null("short_code", 10))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("checkins")
                .add_column(string_len("method", 10).default("scan"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("console_sessions")
                .add_column(uuid_null("door_event_id"))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        let backend = db.get_database_backend();
        let code = random_short_code_sql(backend);
        db.execute_unprepared(&format!(
            "UPDATE registrations SET short_code = {code} WHERE short_code IS NULL"
        ))
        .await?;
        // Two registrations drawing the same code (about one in a billion
        // per pair of a million): drawn again until none do.
        for _ in 0..100 {
            let redrawn = db
                .execute_unprepared(&format!(
                    "UPDATE registrations SET short_code = {code} WHERE short_code IN \
                     (SELECT short_code FROM registrations GROUP BY short_code \
                      HAVING count(*) > 1)"
                ))
                .await?;
            if redrawn.rows_affected() == 0 {
                break;
            }
        }
        m.create_index(unique_index("registrations", &["short_code"]))
            .await?;
        if backend == sea_orm::DbBackend::Postgres {
            db.execute_unprepared("ALTER TABLE registrations ALTER COLUMN short_code SET NOT NULL")
                .await?;
        }
        Ok(())
    }
}

/// Where each event happens (API.md §8.1): an IANA time zone name, `NULL`
/// for the server's `TIME_ZONE`.
struct EventTimeZones;

impl MigrationName for EventTimeZones {
    fn name(&self) -> &str {
        "m20261208_000017_event_time_zones"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for EventTimeZones {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("events")
                .add_column(string_len_null("timezone", 64))
                .to_owned(),
        )
        .await
    }
}

/// Sign-up's e-mail verification and password reset by mail (API.md
/// §8.1): the accounts still to verify their address (no row: verified, as
/// every account made before), the one-use tokens mailed to people (kept as
/// the SHA-256 of the link's secret only), and a payload for outbox jobs
/// that need more than a registration (a link's origin, what changed).
struct AccountMail;

impl MigrationName for AccountMail {
    fn name(&self) -> &str {
        "m20261209_000018_account_mail"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AccountMail {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("email_verifications")
                .col(uuid("user_id").primary_key())
                .col(boolean("required"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut fk(
                    "email_verifications",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("account_tokens")
                .col(pk_uuid("id"))
                .col(uuid("user_id"))
                .col(string_len("purpose", 16))
                .col(string_len("token_hash", 64))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .col(timestamp_with_time_zone_null("used_at"))
                .foreign_key(&mut fk(
                    "account_tokens",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index("account_tokens", &["token_hash"]))
            .await?;
        m.create_index(index("account_tokens", &["user_id", "purpose"]))
            .await?;
        m.alter_table(
            Table::alter()
                .table("outbox")
                .add_column(text_null("payload"))
                .to_owned(),
        )
        .await
    }
}

/// Paying (API.md §8.1): an event's payment instructions (bank account and
/// the like, shown to its attendees), and a payment's proof of transfer (an
/// object stored like posters, under `proofs/`).
struct Paying;

impl MigrationName for Paying {
    fn name(&self) -> &str {
        "m20261209_000019_paying"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Paying {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("events")
                .add_column(text_null("payment_instructions"))
                .to_owned(),
        )
        .await?;
        for column in ["proof_key", "proof_type", "proof_name"] {
            m.alter_table(
                Table::alter()
                    .table("payments")
                    .add_column(text_null(column))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

/// Payment windows (API.md §9): a ticket may hold an unpaid registration's
/// seat for a while only. A registration is `confirmed`, `awaiting_payment`
/// (until `hold_expires_at`) or `expired`; every existing one is confirmed.
/// The partial index finds the overdue holds of an event (and of all events,
/// for the sweep) without reading the confirmed ones.
struct PaymentWindows;

impl MigrationName for PaymentWindows {
    fn name(&self) -> &str {
        "m20261210_000020_payment_windows"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PaymentWindows {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("tickets")
                .add_column(integer_null("payment_window_minutes"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("registrations")
                .add_column(string("status").default("confirmed"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("registrations")
                .add_column(timestamp_with_time_zone_null("hold_expires_at"))
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_registrations_holds ON registrations (hold_expires_at, event_id) \
                 WHERE status = 'awaiting_payment'",
            )
            .await?;
        Ok(())
    }
}

/// Vouchers and hidden tickets (API.md §9): a voucher is a code of one
/// event (unique per event, case-insensitive: `code_key`), for some of its
/// tickets or all (`ticket_ids`, a JSON array, empty = all), with a
/// discount, a guarded use counter and an end. A registration keeps the
/// voucher it used and what it owes (`amount_due_minor`, the price after
/// discount; every existing registration owes its ticket's price).
struct Vouchers;

impl MigrationName for Vouchers {
    fn name(&self) -> &str {
        "m20261210_000021_vouchers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Vouchers {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("tickets")
                .add_column(boolean("hidden").default(false))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("vouchers")
                .col(pk_uuid("id"))
                .col(uuid("event_id"))
                .col(string_len("code", 64))
                .col(string_len("code_key", 64))
                .col(text("ticket_ids").default("[]"))
                .col(string_len("discount_type", 16))
                .col(big_integer("discount_value").default(0))
                .col(integer_null("max_uses"))
                .col(integer("uses").default(0))
                .col(timestamp_with_time_zone_null("valid_until"))
                .col(boolean("unlocks_hidden").default(false))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut fk(
                    "vouchers",
                    "event_id",
                    "events",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index("vouchers", &["event_id", "code_key"]))
            .await?;
        m.alter_table(
            Table::alter()
                .table("registrations")
                .add_column(uuid_null("voucher_id"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("registrations")
                .add_column(big_integer_null("amount_due_minor"))
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "UPDATE registrations SET amount_due_minor = \
                 (SELECT price_minor FROM tickets WHERE tickets.id = registrations.ticket_id)",
            )
            .await?;
        m.create_index(index("registrations", &["voucher_id"]))
            .await?;
        Ok(())
    }
}

/// Waiting lists (API.md §9): a ticket may take a queue when sold out. An
/// entry waits (`seq`: its place in the order of joining), is offered a
/// freed seat until `offer_expires_at`, and ends accepted, expired, left or
/// closed. Open offers hold seats: `offered` on the ticket and its event,
/// counted against the quota with `sold` and `registered`.
struct WaitingLists;

impl MigrationName for WaitingLists {
    fn name(&self) -> &str {
        "m20261210_000022_waiting_lists"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for WaitingLists {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            ("tickets", boolean("waitlist").default(false)),
            ("tickets", integer("waitlist_offer_hours").default(48)),
            ("tickets", big_integer("offered").default(0)),
            ("events", big_integer("offered").default(0)),
        ] {
            m.alter_table(Table::alter().table(table).add_column(column).to_owned())
                .await?;
        }
        m.create_table(
            Table::create()
                .table("waitlist_entries")
                .col(pk_uuid("id"))
                .col(uuid("ticket_id"))
                .col(uuid("event_id"))
                .col(uuid("user_id"))
                .col(big_integer("seq"))
                .col(string_len("status", 16))
                .col(timestamp_with_time_zone_null("offer_expires_at"))
                .col(uuid_null("registration_id"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut fk(
                    "waitlist_entries",
                    "ticket_id",
                    "tickets",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "waitlist_entries",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index("waitlist_entries", &["ticket_id", "user_id"]))
            .await?;
        m.create_index(index("waitlist_entries", &["ticket_id", "status", "seq"]))
            .await?;
        m.create_index(index("waitlist_entries", &["status", "offer_expires_at"]))
            .await?;
        m.create_index(index("waitlist_entries", &["user_id"]))
            .await?;
        Ok(())
    }
}

/// Runs `sql` on PostgreSQL; nothing on SQLite (for what only PostgreSQL
/// has or needs).
async fn on_postgres_only(m: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if m.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        m.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}

/// Audit counts without counting the log (PostgreSQL; `db::audit::count`).
/// Each entry records the transaction that wrote it (`txid`, indexed);
/// `audit_count_marks` holds one snapshot and the number of entries it
/// sees, `audit_count_tallies` that number per (organiser, event). The
/// workers move both forward together (`db::audit::advance_count_mark`). A
/// count is the mark's number (or its tallies') plus the entries the
/// snapshot does not see: those written since, found by their `txid`.
/// Entries older than this migration have no `txid` and are all in the
/// first mark: the table's lock taken by `ALTER TABLE` waits for every
/// transaction still writing to it, so they are committed before the mark
/// is taken. SQLite counts its entries.
struct AuditCountMark;

impl MigrationName for AuditCountMark {
    fn name(&self) -> &str {
        "m20261211_000023_audit_count_mark"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AuditCountMark {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // No default in `ADD COLUMN`: a volatile one would rewrite the table.
        on_postgres_only(
            m,
                "ALTER TABLE audit_entries ADD COLUMN txid xid8; \
                 ALTER TABLE audit_entries ALTER COLUMN txid SET DEFAULT pg_current_xact_id(); \
                 CREATE INDEX idx_audit_entries_txid ON audit_entries (txid) WHERE txid IS NOT NULL; \
                 CREATE TABLE audit_count_marks (id smallint PRIMARY KEY, \
                   snap pg_snapshot NOT NULL, total bigint NOT NULL); \
                 CREATE TABLE audit_count_tallies (organizer_id uuid, event_id uuid, \
                   total bigint NOT NULL); \
                 CREATE UNIQUE INDEX uq_audit_count_tallies_organizer_id_event_id \
                   ON audit_count_tallies (organizer_id, event_id) NULLS NOT DISTINCT; \
                 CREATE INDEX idx_audit_count_tallies_event_id ON audit_count_tallies (event_id); \
                 WITH tallied AS (INSERT INTO audit_count_tallies (organizer_id, event_id, total) \
                   SELECT organizer_id, event_id, count(*) FROM audit_entries \
                   GROUP BY organizer_id, event_id) \
                 INSERT INTO audit_count_marks (id, snap, total) \
                   SELECT 1, pg_current_snapshot(), count(*) FROM audit_entries",
        )
        .await
    }
}

/// Lists of an event's registrations leave out expired holds (`status <>
/// 'expired'`, the box office): the index they walk in registration order
/// carries each row's status (PostgreSQL, `INCLUDE`), so a deep page is
/// still found from the index alone instead of by sorting the event's rows
/// (bench/scale.sh: page 4,500 of the big event took 50 ms, 400 at 16
/// connections). Status changes already touch the table's indexes (the
/// holds' partial index names it), so this costs the writes nothing more.
struct ListedRegistrations;

impl MigrationName for ListedRegistrations {
    fn name(&self) -> &str {
        "m20261211_000024_listed_registrations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ListedRegistrations {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        on_postgres_only(
            m,
            "CREATE INDEX idx_registrations_event_id_registered_at_id_status \
               ON registrations (event_id, registered_at, id) INCLUDE (status); \
             DROP INDEX idx_registrations_event_id_registered_at_id",
        )
        .await
    }
}

/// An organiser's entries of one event, newest first, from one index: the
/// console's event page and `GET /api/audit/?event=` as an organiser. With
/// only `(event_id, id)` and `(organizer_id, id)`, a plan made for any value
/// intersects both (every entry of a big event, then a sort), and one made
/// for the values walks the organiser's entries hoping the event's come
/// soon.
struct EventAuditInScope;

impl MigrationName for EventAuditInScope {
    fn name(&self) -> &str {
        "m20261212_000025_event_audit_in_scope"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for EventAuditInScope {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index("audit_entries", &["organizer_id", "event_id", "id"]))
            .await
    }
}

/// An event's registrations of given people (the roster's and the door's
/// name search: the people found first, then theirs at this event), one
/// index seek per person. Without it, a plan made for any event intersects
/// the event's index with the people's (a big event's 100,000 entries read
/// to keep a hundred); with it, the pooled statement's one plan is right at
/// every size.
struct RosterByPerson;

impl MigrationName for RosterByPerson {
    fn name(&self) -> &str {
        "m20261213_000026_roster_by_person"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RosterByPerson {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index("registrations", &["event_id", "user_id"]))
            .await
    }
}
