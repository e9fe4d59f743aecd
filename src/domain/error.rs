//! What a domain operation can refuse. Each front door renders these in its
//! own shape, in one place (`api::error` for DRF JSON).

use std::collections::BTreeMap;

use sea_orm::DbErr;

use crate::db::errors::{DbFailure, classify};

/// Field name → messages, as DRF's `serializer.errors`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_default()
            .push(message.into());
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, else `Invalid`.
    pub fn into_result(self) -> Result<(), DomainError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(self))
        }
    }

    /// One error on one field.
    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        errors
    }
}

/// The message for an id that names nothing (DRF's wording).
pub fn does_not_exist(id: impl std::fmt::Display) -> String {
    format!("Invalid pk \"{id}\" - object does not exist.")
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Input that breaks a rule, by field.
    #[error("invalid input: {0:?}")]
    Invalid(FieldErrors),
    #[error("not found")]
    NotFound,
    /// The caller may not do this.
    #[error("forbidden")]
    Forbidden,
    #[error("Sold out.")]
    SoldOut,
    /// The user already holds a registration on this ticket; `own` when the
    /// caller is that user.
    #[error("{}", if *own { "You are already registered for this ticket." } else { "This user is already registered for this ticket." })]
    AlreadyRegistered { own: bool },
    /// Self-service registration outside the event's or ticket's window.
    #[error("{0}")]
    SalesClosed(String),
    #[error("This registration already has a completed payment.")]
    AlreadyPaid,
    /// An account that must verify its e-mail address before registering
    /// (API.md §8.1).
    #[error("Verify your e-mail address first.")]
    Unverified,
    /// Paying a registration whose payment window has passed (API.md §9).
    #[error("The hold has expired.")]
    HoldExpired,
    /// Any other business conflict, with the message for people.
    #[error("{0}")]
    Conflict(String),
    /// Wrong username or password, or an inactive account.
    #[error("No active account found with the given credentials")]
    BadCredentials,
    /// A refresh token that is not (or no longer) good; why, for people.
    #[error("{0}")]
    TokenNotValid(&'static str),
    /// Too many failed logins; allowed again after this many seconds.
    #[error("throttled for {retry_after}s")]
    Throttled { retry_after: u64 },
    /// An `Idempotency-Key` already used for a request with another body.
    #[error("Idempotency-Key reused with a different request.")]
    IdempotencyKeyReused,
    /// A dependency this operation needs is down; worth retrying.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure.
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

pub type DomainResult<T> = Result<T, DomainError>;

impl From<DbErr> for DomainError {
    fn from(err: DbErr) -> Self {
        match classify(&err) {
            DbFailure::Unavailable => {
                DomainError::Unavailable("The database is unavailable. Try again shortly.".into())
            }
            _ => DomainError::Internal(anyhow::Error::new(err)),
        }
    }
}

impl crate::cache::LoadError for DomainError {
    fn unavailable_message(&self) -> Option<&str> {
        match self {
            DomainError::Unavailable(message) => Some(message),
            _ => None,
        }
    }

    fn unavailable(message: String) -> Self {
        DomainError::Unavailable(message)
    }
}

impl From<anyhow::Error> for DomainError {
    fn from(err: anyhow::Error) -> Self {
        DomainError::Internal(err)
    }
}
