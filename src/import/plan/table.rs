//! The one mechanism every table of the import goes through.

use chrono::{DateTime, Utc};

use crate::db::entities::{event, payment};
use crate::import::report::{Kind, Report};

/// One table of the import, named as in the report. Every table goes
/// through the same steps: the rows read are counted, a source row is
/// skipped with its reason or noted, and a mapped row is planned only
/// when it is new or differs from the target's row of the same id.
#[derive(Clone, Copy)]
pub(super) struct Table(&'static str);

pub(super) const USERS: Table = Table("users");
pub(super) const GROUPS: Table = Table("groups");
pub(super) const MEMBERSHIPS: Table = Table("memberships");
pub(super) const EVENTS: Table = Table("events");
pub(super) const TICKETS: Table = Table("tickets");
pub(super) const REGISTRATIONS: Table = Table("registrations");
pub(super) const PAYMENTS: Table = Table("payments");
pub(super) const POSTERS: Table = Table("posters");

/// A row that keeps its own creation and change times: the target's are
/// kept, and a row that changes is stamped with the import's time.
pub(super) trait Stamped {
    /// Creation and last change.
    fn stamps(&self) -> (DateTime<Utc>, DateTime<Utc>);
    fn set_stamps(&mut self, created: DateTime<Utc>, updated: DateTime<Utc>);
}

impl Stamped for event::Model {
    fn stamps(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.created_at, self.updated_at)
    }
    fn set_stamps(&mut self, created: DateTime<Utc>, updated: DateTime<Utc>) {
        (self.created_at, self.updated_at) = (created, updated);
    }
}

impl Stamped for payment::Model {
    fn stamps(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.created_at, self.updated_at)
    }
    fn set_stamps(&mut self, created: DateTime<Utc>, updated: DateTime<Utc>) {
        (self.created_at, self.updated_at) = (created, updated);
    }
}

impl Table {
    pub(super) fn read(self, report: &mut Report, rows: usize) {
        report.table(self.0).read = rows;
    }

    /// The source row `id` is not imported, for `reason`.
    pub(super) fn skip(self, report: &mut Report, id: impl ToString, reason: String) {
        report.note(self.0, id, Kind::Skipped, reason);
    }

    /// The source row `id` is imported with a value changed.
    pub(super) fn altered(self, report: &mut Report, id: impl ToString, reason: String) {
        report.note(self.0, id, Kind::Altered, reason);
    }

    /// The source row `id` is imported as is, but someone should know.
    pub(super) fn notice(self, report: &mut Report, id: impl ToString, reason: String) {
        report.note(self.0, id, Kind::Notice, reason);
    }

    /// A row with no counterpart to compare (a group, a membership) is created.
    pub(super) fn created(self, report: &mut Report) {
        report.table(self.0).created += 1;
    }

    /// `desired` is planned when the target has no such row (created) or
    /// a different one (updated).
    pub(super) fn keep<M: PartialEq>(
        self,
        report: &mut Report,
        existing: Option<&M>,
        desired: M,
        plan: &mut Vec<M>,
    ) {
        match existing {
            None => report.table(self.0).created += 1,
            Some(e) if *e != desired => report.table(self.0).updated += 1,
            Some(_) => return,
        }
        plan.push(desired);
    }

    /// As `keep`, for a row with its own times: an existing row keeps its
    /// creation and change times unless it changes, then changed `now`.
    pub(super) fn keep_stamped<M: PartialEq + Stamped>(
        self,
        report: &mut Report,
        existing: Option<&M>,
        mut desired: M,
        now: DateTime<Utc>,
        plan: &mut Vec<M>,
    ) {
        if let Some(current) = existing {
            let (created, updated) = current.stamps();
            desired.set_stamps(created, updated);
            if *current == desired {
                return;
            }
            desired.set_stamps(created, now);
        }
        self.keep(report, existing, desired, plan);
    }
}
