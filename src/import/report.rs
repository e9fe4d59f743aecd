//! What an import did: per table counts, and every row skipped, altered or
//! worth a look, with its reason.

use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Not imported.
    Skipped,
    /// Imported with a value changed.
    Altered,
    /// Imported as is, but someone should know.
    Notice,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Skipped => "SKIPPED",
            Kind::Altered => "ALTERED",
            Kind::Notice => "NOTICE",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Note {
    pub table: &'static str,
    pub id: String,
    pub kind: Kind,
    pub reason: String,
}

#[derive(Clone, Debug, Default)]
pub struct TableStats {
    pub read: usize,
    pub created: usize,
    pub updated: usize,
    pub skipped: usize,
}

/// The tables in the order they are imported.
pub const TABLES: [&str; 8] = [
    "users",
    "groups",
    "memberships",
    "events",
    "tickets",
    "registrations",
    "payments",
    "posters",
];

#[derive(Debug, Default)]
pub struct Report {
    pub stats: Vec<(&'static str, TableStats)>,
    pub notes: Vec<Note>,
    /// Facts about the whole import (choices made, counts of kinds).
    pub remarks: Vec<String>,
}

impl Report {
    pub fn new() -> Self {
        Report {
            stats: TABLES.iter().map(|t| (*t, TableStats::default())).collect(),
            notes: Vec::new(),
            remarks: Vec::new(),
        }
    }

    pub fn table(&mut self, name: &'static str) -> &mut TableStats {
        if let Some(i) = self.stats.iter().position(|(t, _)| *t == name) {
            &mut self.stats[i].1
        } else {
            self.stats.push((name, TableStats::default()));
            let last = self.stats.len() - 1;
            &mut self.stats[last].1
        }
    }

    pub fn get(&self, name: &str) -> TableStats {
        self.stats
            .iter()
            .find(|(t, _)| *t == name)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }

    pub fn note(&mut self, table: &'static str, id: impl ToString, kind: Kind, reason: String) {
        if kind == Kind::Skipped {
            self.table(table).skipped += 1;
        }
        self.notes.push(Note {
            table,
            id: id.to_string(),
            kind,
            reason,
        });
    }

    pub fn totals(&self) -> (usize, usize) {
        self.stats
            .iter()
            .fold((0, 0), |(c, u), (_, s)| (c + s.created, u + s.updated))
    }

    /// The summary table alone.
    pub fn summary_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<14} {:>9} {:>9} {:>9} {:>9}",
            "table", "read", "created", "updated", "skipped"
        );
        for (name, s) in &self.stats {
            let _ = writeln!(
                out,
                "{:<14} {:>9} {:>9} {:>9} {:>9}",
                name, s.read, s.created, s.updated, s.skipped
            );
        }
        out
    }

    /// The whole report: table, remarks, then every note by table.
    pub fn render(&self, heading: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{heading}\n");
        out.push_str(&self.summary_table());
        if !self.remarks.is_empty() {
            let _ = writeln!(out, "\nRemarks:");
            for remark in &self.remarks {
                let _ = writeln!(out, "  - {remark}");
            }
        }
        if self.notes.is_empty() {
            let _ = writeln!(
                out,
                "\nNo row was skipped, nor altered beyond the remarks above."
            );
        } else {
            let _ = writeln!(
                out,
                "\nRows skipped, altered or to look at ({}):",
                self.notes.len()
            );
            for table in TABLES {
                for note in self.notes.iter().filter(|n| n.table == table) {
                    let _ = writeln!(
                        out,
                        "  {:<7} {:<13} {} — {}",
                        note.kind.label(),
                        note.table,
                        note.id,
                        note.reason
                    );
                }
            }
        }
        out
    }
}
