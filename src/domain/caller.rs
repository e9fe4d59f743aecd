//! Who is asking, with their roles (API.md §3).

use uuid::Uuid;

/// An authenticated, active user and the names of their groups.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Caller {
    pub id: Uuid,
    pub username: String,
    pub is_superuser: bool,
    /// Lower-cased names of the caller's groups.
    pub groups: Vec<String>,
    /// `Some(required)` while the account has not verified its e-mail
    /// address; `required`: it may not register until it has.
    #[serde(default)]
    pub unverified: Option<bool>,
}

impl Caller {
    fn in_group(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g == name)
    }

    /// Superuser or member of `admin`: may manage anything but groups.
    pub fn is_admin(&self) -> bool {
        self.is_superuser || self.in_group("admin")
    }

    /// May create events: superuser, admin or organizer.
    pub fn can_create_events(&self) -> bool {
        self.is_admin() || self.in_group("organizer")
    }

    /// "Manages an event": superuser, admin, or the event's organizer.
    pub fn manages_event(&self, organizer_id: Uuid) -> bool {
        self.is_admin() || self.id == organizer_id
    }
}

impl Caller {
    /// Who the audit log names for this caller's writes, from the request
    /// being served.
    pub fn audit(&self) -> crate::db::audit::Context {
        crate::db::audit::Context::user(self.id, &self.username)
    }
}
