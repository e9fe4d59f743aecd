//! Database errors, classified in one place by their SQLSTATE (PostgreSQL)
//! or result code (SQLite) and constraint name — never by message text,
//! which changes with the server's version and locale.

use std::ops::Deref;

use sea_orm::{DbErr, RuntimeErr};

/// What a failed statement means to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbFailure {
    /// The database could not be reached, or asked for the work to be
    /// retried (deadlock, serialisation failure, shutting down, busy).
    Unavailable,
    /// A unique constraint; its name when the driver reports it (PostgreSQL).
    UniqueViolation(Option<String>),
    /// A foreign key: a referenced row is gone, or a restricted row is still
    /// referenced.
    ForeignKeyViolation,
    /// Anything else: a bug.
    Other,
}

/// The driver's code and constraint name, when the error came from the
/// database server itself.
fn database_error(err: &DbErr) -> Option<(String, Option<String>)> {
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = err
    else {
        return None;
    };
    match e.deref() {
        sea_orm::sqlx::Error::Database(db) => Some((
            db.code().map(|c| c.into_owned()).unwrap_or_default(),
            db.constraint().map(str::to_owned),
        )),
        _ => None,
    }
}

/// True for transport failures reported by the driver (not by the server).
fn transport_failure(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    matches!(
        e.deref(),
        sea_orm::sqlx::Error::Io(_)
            | sea_orm::sqlx::Error::PoolTimedOut
            | sea_orm::sqlx::Error::PoolClosed
            | sea_orm::sqlx::Error::WorkerCrashed
            | sea_orm::sqlx::Error::Tls(_)
    )
}

/// The database could not be reached at all (no connection, a broken
/// one): trying again at once is pointless.
pub fn is_unreachable(err: &DbErr) -> bool {
    matches!(err, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) || transport_failure(err)
}

pub fn classify(err: &DbErr) -> DbFailure {
    if is_unreachable(err) {
        return DbFailure::Unavailable;
    }
    let Some((code, constraint)) = database_error(err) else {
        return DbFailure::Other;
    };
    match code.as_str() {
        // PostgreSQL: unique_violation; SQLite: SQLITE_CONSTRAINT_UNIQUE and
        // SQLITE_CONSTRAINT_PRIMARYKEY.
        "23505" | "2067" | "1555" => DbFailure::UniqueViolation(constraint),
        // PostgreSQL: foreign_key_violation; SQLite: SQLITE_CONSTRAINT_FOREIGNKEY.
        "23503" | "787" => DbFailure::ForeignKeyViolation,
        // PostgreSQL: serialization_failure, deadlock_detected,
        // too_many_connections, admin/crash shutdown, cannot_connect_now.
        "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03" => DbFailure::Unavailable,
        // PostgreSQL class 08: connection exceptions.
        c if c.starts_with("08") => DbFailure::Unavailable,
        // SQLite: SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
        c if c.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6)) => DbFailure::Unavailable,
        _ => DbFailure::Other,
    }
}

/// True when the database could not be reached (as opposed to a bad query).
pub fn is_connection_error(err: &DbErr) -> bool {
    classify(err) == DbFailure::Unavailable
}

/// True when `err` is a violated foreign key.
pub fn is_fk_violation(err: &DbErr) -> bool {
    classify(err) == DbFailure::ForeignKeyViolation
}

/// True when `err` is a violated unique constraint.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(classify(err), DbFailure::UniqueViolation(_))
}
