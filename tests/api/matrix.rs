//! The authorization matrix of API.md §3–§4: every route and method of the
//! resources, sent by each kind of caller, answers exactly the status the
//! contract prescribes, and a refused write changes nothing. Then explicit
//! checks that nobody reaches into another account's data or raises their
//! own privileges through a body field.

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{PASSWORD, Reply, TestApp};

crate::backend_tests!(
    authorization_matrix,
    no_cross_account_access_or_privilege_escalation,
);

const FORBIDDEN: &str = "You do not have permission to perform this action.";

// ---------------------------------------------------------------------------
// Callers
// ---------------------------------------------------------------------------

/// The callers of every row, in the order of the `expect` columns.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// No `Authorization` header.
    Anonymous,
    /// A plain user who is the resource: the account itself, the user of the
    /// registration, the payer of the payment.
    Owner,
    /// Another plain user.
    Other,
    /// A member of `organizer` who organises the event the resource hangs on.
    OrgOwner,
    /// A member of `organizer` who does not organise it.
    OrgOther,
    /// A member of `admin`.
    Admin,
    /// `is_superuser`.
    Superuser,
}

const ROLES: [Role; 7] = [
    Role::Anonymous,
    Role::Owner,
    Role::Other,
    Role::OrgOwner,
    Role::OrgOther,
    Role::Admin,
    Role::Superuser,
];

struct Caller {
    id: String,
    token: String,
}

/// Long-lived state shared by the cells that do not change it.
struct Fixture {
    owner: Caller,
    other_token: String,
    org_owner: Caller,
    org_other: Caller,
    admin_token: String,
    superuser_token: String,
    /// A plain user who never calls: the one named in bodies (`user_id`).
    bystander: String,
    /// Organised by `org_owner`.
    event: String,
    ticket: String,
    /// `owner`'s, on `ticket`.
    registration: String,
    /// `owner`'s, pending, for `registration`.
    payment: String,
    /// On `event`.
    poster: String,
    /// Ids that name nothing.
    unknown: String,
    unknown_group: String,
}

/// The ids one cell works on: the fixture's, or fresh ones (`Fresh`).
struct Cell {
    /// Unique per cell; makes names in bodies unique.
    tag: String,
    /// `Role::Owner`'s token: the fixture's owner, or the fresh account.
    owner_token: String,
    user: String,
    group: String,
    event: String,
    ticket: String,
    /// A second ticket on the cell's event: the target of moves.
    spare_ticket: String,
    registration: String,
    payment: String,
    poster: String,
}

// ---------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------

/// What a cell needs of its own, created before it runs, so that one cell's
/// success (a deletion, a move, a completed payment) cannot change the
/// outcome of the next.
#[derive(Clone, Copy, Debug)]
enum Fresh {
    /// The fixture's resources.
    Shared,
    /// A new plain account (the `Owner` caller is that account).
    Account,
    /// A new group.
    Group,
    /// A new group with the bystander in it.
    Membership,
    /// A new event organised by `org_owner`.
    Event,
    /// A new ticket on the fixture's event.
    Ticket,
    /// Two new tickets; `Owner` registered on the first.
    Registration,
    /// `Registration` with a completed payment (made by the superuser).
    PaidRegistration,
    /// `Registration` with a pending payment made by `Owner`.
    Payment,
    /// A new poster on the fixture's event (uploaded by the superuser).
    Poster,
}

enum Body {
    Empty,
    Json(Value),
    /// `multipart/form-data` with a small PNG for this event.
    Poster(String),
}

struct Case {
    method: Method,
    /// With `{user}`, `{group}`, `{event}`, `{ticket}`, `{registration}`,
    /// `{payment}`, `{poster}`, `{unknown}`, `{unknown_group}`.
    path: &'static str,
    fresh: Fresh,
    body: fn(&Fixture, &Cell) -> Body,
    /// One status per caller, in the order of `ROLES`.
    expect: [u16; 7],
}

fn row(
    method: &str,
    path: &'static str,
    fresh: Fresh,
    body: fn(&Fixture, &Cell) -> Body,
    expect: [u16; 7],
) -> Case {
    Case {
        method: Method::from_bytes(method.as_bytes()).expect("an HTTP method"),
        path,
        fresh,
        body,
        expect,
    }
}

/// API.md §4, route by route. Columns:
/// anonymous, owner/self, other user, organizer of the event, another
/// organizer, admin, superuser.
#[rustfmt::skip]
fn matrix() -> Vec<Case> {
    use Fresh::*;
    vec![
        // ---- Users ---------------------------------------------------------------------------------------
        //    method    path                                    fresh              body                  anon self othr org= org≠ admn supr
        row("POST",   "/api/users/",                          Shared,            signup,               [201, 201, 201, 201, 201, 201, 201]),
        row("GET",    "/api/users/",                          Shared,            none,                 [401, 403, 403, 403, 403, 200, 200]),
        row("GET",    "/api/users/me/",                       Shared,            none,                 [401, 200, 200, 200, 200, 200, 200]),
        row("GET",    "/api/users/{user}/",                   Shared,            none,                 [401, 200, 403, 403, 403, 200, 200]),
        // Admins read accounts but do not change them ("self, superuser").
        row("PUT",    "/api/users/{user}/",                   Shared,            first_name,           [401, 200, 403, 403, 403, 403, 200]),
        row("PATCH",  "/api/users/{user}/",                   Shared,            first_name,           [401, 200, 403, 403, 403, 403, 200]),
        row("DELETE", "/api/users/{user}/",                   Account,           none,                 [401, 204, 403, 403, 403, 403, 204]),
        // ---- Groups (superuser only; admins get 403) -----------------------------------------------------
        row("GET",    "/api/groups/",                         Shared,            none,                 [401, 403, 403, 403, 403, 403, 200]),
        row("POST",   "/api/groups/",                         Shared,            group_name,           [401, 403, 403, 403, 403, 403, 201]),
        row("GET",    "/api/groups/{group}/",                 Group,             none,                 [401, 403, 403, 403, 403, 403, 200]),
        row("PUT",    "/api/groups/{group}/",                 Group,             group_name,           [401, 403, 403, 403, 403, 403, 200]),
        row("PATCH",  "/api/groups/{group}/",                 Group,             group_name,           [401, 403, 403, 403, 403, 403, 200]),
        row("DELETE", "/api/groups/{group}/",                 Group,             none,                 [401, 403, 403, 403, 403, 403, 204]),
        row("POST",   "/api/assign-roles/",                   Group,             membership,           [401, 403, 403, 403, 403, 403, 201]),
        row("DELETE", "/api/assign-roles/",                   Membership,        membership,           [401, 403, 403, 403, 403, 403, 204]),
        // ---- Events --------------------------------------------------------------------------------------
        row("GET",    "/api/events/",                         Shared,            none,                 [200, 200, 200, 200, 200, 200, 200]),
        row("POST",   "/api/events/",                         Shared,            new_event,            [401, 403, 403, 201, 201, 201, 201]),
        // organizer_id naming org_owner: only org_owner themselves, admin and superuser may.
        row("POST",   "/api/events/",                         Shared,            event_for_org_owner,  [401, 403, 403, 201, 403, 201, 201]),
        row("GET",    "/api/events/{event}/",                 Shared,            none,                 [200, 200, 200, 200, 200, 200, 200]),
        row("PUT",    "/api/events/{event}/",                 Event,             new_event,            [401, 403, 403, 200, 403, 200, 200]),
        row("PATCH",  "/api/events/{event}/",                 Event,             description,          [401, 403, 403, 200, 403, 200, 200]),
        // "only superuser/admin may change the organiser" — not even the event's organiser.
        row("PATCH",  "/api/events/{event}/",                 Event,             to_org_other,         [401, 403, 403, 403, 403, 200, 200]),
        row("DELETE", "/api/events/{event}/",                 Event,             none,                 [401, 403, 403, 204, 403, 204, 204]),
        // ---- Tickets -------------------------------------------------------------------------------------
        row("GET",    "/api/tickets/",                        Shared,            none,                 [200, 200, 200, 200, 200, 200, 200]),
        row("POST",   "/api/tickets/",                        Shared,            new_ticket,           [401, 403, 403, 201, 403, 201, 201]),
        row("GET",    "/api/tickets/{ticket}/",               Shared,            none,                 [200, 200, 200, 200, 200, 200, 200]),
        row("PUT",    "/api/tickets/{ticket}/",               Ticket,            new_ticket,           [401, 403, 403, 200, 403, 200, 200]),
        row("PATCH",  "/api/tickets/{ticket}/",               Ticket,            ticket_name,          [401, 403, 403, 200, 403, 200, 200]),
        row("DELETE", "/api/tickets/{ticket}/",               Ticket,            none,                 [401, 403, 403, 204, 403, 204, 204]),
        // ---- Registrations -------------------------------------------------------------------------------
        row("GET",    "/api/registrations/",                  Shared,            none,                 [401, 200, 200, 200, 200, 200, 200]),
        row("POST",   "/api/registrations/",                  Ticket,            register_self,        [401, 201, 201, 201, 201, 201, 201]),
        // Naming another user: superuser/admin or managing the ticket's event.
        row("POST",   "/api/registrations/",                  Ticket,            register_bystander,   [401, 403, 403, 201, 403, 201, 201]),
        row("GET",    "/api/registrations/{registration}/",   Shared,            none,                 [401, 200, 403, 200, 403, 200, 200]),
        // Moves: superuser, admin — not its user, not the event's organiser.
        row("PUT",    "/api/registrations/{registration}/",   Registration,      move_to_spare,        [401, 403, 403, 403, 403, 200, 200]),
        row("PATCH",  "/api/registrations/{registration}/",   Registration,      move_to_spare,        [401, 403, 403, 403, 403, 200, 200]),
        row("DELETE", "/api/registrations/{registration}/",   Registration,      none,                 [401, 204, 403, 403, 403, 204, 204]),
        // Its user may cancel only while it has no completed payment.
        row("DELETE", "/api/registrations/{registration}/",   PaidRegistration,  none,                 [401, 403, 403, 403, 403, 204, 204]),
        // ---- Payments ------------------------------------------------------------------------------------
        row("GET",    "/api/payments/",                       Shared,            none,                 [401, 200, 200, 200, 200, 200, 200]),
        // "the registration's user, superuser, admin", and since §8.1 the
        // event's organiser too (cash at the door) — not another organiser.
        row("POST",   "/api/payments/",                       Shared,            pending_payment,      [401, 201, 403, 201, 403, 201, 201]),
        // Only those who manage the event create a payment in a status other than pending.
        row("POST",   "/api/payments/",                       Registration,      completed_payment,    [401, 403, 403, 201, 403, 201, 201]),
        row("GET",    "/api/payments/{payment}/",             Shared,            none,                 [401, 200, 403, 200, 403, 200, 200]),
        // §8.1: the event's organiser moves its payments (status and amount
        // only: a PUT names the method, which stays with superuser and admin).
        row("PUT",    "/api/payments/{payment}/",             Payment,           complete_in_full,     [401, 403, 403, 403, 403, 200, 200]),
        row("PATCH",  "/api/payments/{payment}/",             Payment,           complete,             [401, 403, 403, 200, 403, 200, 200]),
        row("DELETE", "/api/payments/{payment}/",             Payment,           none,                 [401, 403, 403, 403, 403, 204, 204]),
        // ---- Posters -------------------------------------------------------------------------------------
        row("POST",   "/api/events/upload/",                  Shared,            poster,               [401, 403, 403, 201, 403, 201, 201]),
        row("GET",    "/api/events/{event}/poster/",          Shared,            none,                 [200, 200, 200, 200, 200, 200, 200]),
        row("GET",    "/api/media/{poster}/",                 Shared,            none,                 [200, 200, 200, 200, 200, 200, 200]),
        row("DELETE", "/api/media/{poster}/",                 Poster,            none,                 [401, 403, 403, 204, 403, 204, 204]),
        // ---- Unknown ids: authentication (401) → existence (404) → permission (403) ----------------------
        row("GET",    "/api/users/{unknown}/",                Shared,            none,                 [401, 404, 404, 404, 404, 404, 404]),
        row("PATCH",  "/api/users/{unknown}/",                Shared,            first_name,           [401, 404, 404, 404, 404, 404, 404]),
        row("DELETE", "/api/users/{unknown}/",                Shared,            none,                 [401, 404, 404, 404, 404, 404, 404]),
        // Groups are superuser-only as a whole route ("admins get 403"), as a
        // DRF view-level permission: refused before any lookup, so an unknown
        // group id tells a non-superuser nothing. The server does this.
        row("GET",    "/api/groups/{unknown_group}/",         Shared,            none,                 [401, 403, 403, 403, 403, 403, 404]),
        row("PATCH",  "/api/groups/{unknown_group}/",         Shared,            group_name,           [401, 403, 403, 403, 403, 403, 404]),
        row("DELETE", "/api/groups/{unknown_group}/",         Shared,            none,                 [401, 403, 403, 403, 403, 403, 404]),
        row("GET",    "/api/events/{unknown}/",               Shared,            none,                 [404, 404, 404, 404, 404, 404, 404]),
        row("PATCH",  "/api/events/{unknown}/",               Shared,            description,          [401, 404, 404, 404, 404, 404, 404]),
        row("DELETE", "/api/events/{unknown}/",               Shared,            none,                 [401, 404, 404, 404, 404, 404, 404]),
        row("GET",    "/api/tickets/{unknown}/",              Shared,            none,                 [404, 404, 404, 404, 404, 404, 404]),
        row("PATCH",  "/api/tickets/{unknown}/",              Shared,            ticket_name,          [401, 404, 404, 404, 404, 404, 404]),
        row("DELETE", "/api/tickets/{unknown}/",              Shared,            none,                 [401, 404, 404, 404, 404, 404, 404]),
        row("GET",    "/api/registrations/{unknown}/",        Shared,            none,                 [401, 404, 404, 404, 404, 404, 404]),
        row("PATCH",  "/api/registrations/{unknown}/",        Shared,            move_to_spare,        [401, 404, 404, 404, 404, 404, 404]),
        row("DELETE", "/api/registrations/{unknown}/",        Shared,            none,                 [401, 404, 404, 404, 404, 404, 404]),
        row("GET",    "/api/payments/{unknown}/",             Shared,            none,                 [401, 404, 404, 404, 404, 404, 404]),
        row("PATCH",  "/api/payments/{unknown}/",             Shared,            complete,             [401, 404, 404, 404, 404, 404, 404]),
        row("DELETE", "/api/payments/{unknown}/",             Shared,            none,                 [401, 404, 404, 404, 404, 404, 404]),
        row("GET",    "/api/events/{unknown}/poster/",        Shared,            none,                 [404, 404, 404, 404, 404, 404, 404]),
        row("GET",    "/api/media/{unknown}/",                Shared,            none,                 [404, 404, 404, 404, 404, 404, 404]),
        row("DELETE", "/api/media/{unknown}/",                Shared,            none,                 [401, 404, 404, 404, 404, 404, 404]),
    ]
}

// ---- Bodies ---------------------------------------------------------------

fn none(_: &Fixture, _: &Cell) -> Body {
    Body::Empty
}

fn signup(_: &Fixture, c: &Cell) -> Body {
    Body::Json(json!({
        "username": format!("signup-{}", c.tag),
        "email": format!("signup-{}@example.com", c.tag),
        "password": PASSWORD,
    }))
}

fn first_name(_: &Fixture, c: &Cell) -> Body {
    Body::Json(json!({ "first_name": format!("Renamed {}", c.tag) }))
}

fn group_name(_: &Fixture, c: &Cell) -> Body {
    Body::Json(json!({ "name": format!("group-{}", c.tag) }))
}

fn membership(f: &Fixture, c: &Cell) -> Body {
    Body::Json(membership_body(f, c))
}

fn membership_body(f: &Fixture, c: &Cell) -> Value {
    let group_id: i64 = c.group.parse().expect("a group id is a number");
    json!({ "user_id": f.bystander, "group_id": group_id })
}

fn new_event(_: &Fixture, c: &Cell) -> Body {
    Body::Json(TestApp::event_body(&format!("Event {}", c.tag), 50))
}

fn event_for_org_owner(f: &Fixture, c: &Cell) -> Body {
    let mut body = TestApp::event_body(&format!("Event {}", c.tag), 50);
    body["organizer_id"] = json!(f.org_owner.id);
    Body::Json(body)
}

fn description(_: &Fixture, c: &Cell) -> Body {
    Body::Json(json!({ "description": format!("Changed by {}", c.tag) }))
}

fn to_org_other(f: &Fixture, _: &Cell) -> Body {
    Body::Json(json!({ "organizer_id": f.org_other.id }))
}

fn new_ticket(f: &Fixture, c: &Cell) -> Body {
    Body::Json(TestApp::ticket_body(
        &f.event,
        &format!("Ticket {}", c.tag),
        20,
    ))
}

fn ticket_name(_: &Fixture, c: &Cell) -> Body {
    Body::Json(json!({ "name": format!("VIP {}", c.tag) }))
}

fn register_self(_: &Fixture, c: &Cell) -> Body {
    Body::Json(json!({ "ticket_id": c.ticket }))
}

fn register_bystander(f: &Fixture, c: &Cell) -> Body {
    Body::Json(json!({ "ticket_id": c.ticket, "user_id": f.bystander }))
}

fn move_to_spare(_: &Fixture, c: &Cell) -> Body {
    Body::Json(json!({ "ticket_id": c.spare_ticket }))
}

fn payment_body(registration: &str) -> Value {
    json!({
        "registration_id": registration,
        "payment_method": "QRIS",
        "amount_paid": 150000.5,
    })
}

fn pending_payment(_: &Fixture, c: &Cell) -> Body {
    Body::Json(payment_body(&c.registration))
}

fn completed_payment(_: &Fixture, c: &Cell) -> Body {
    let mut body = payment_body(&c.registration);
    body["payment_status"] = json!("completed");
    Body::Json(body)
}

fn complete_in_full(_: &Fixture, _: &Cell) -> Body {
    Body::Json(json!({
        "payment_method": "QRIS",
        "amount_paid": 150000.5,
        "payment_status": "completed",
    }))
}

fn complete(_: &Fixture, _: &Cell) -> Body {
    Body::Json(json!({ "payment_status": "completed" }))
}

fn poster(_: &Fixture, c: &Cell) -> Body {
    Body::Poster(c.event.clone())
}

// ---------------------------------------------------------------------------
// Running it
// ---------------------------------------------------------------------------

/// A response kept as bytes: `GET /api/media/{id}/` is not JSON.
struct Answer {
    status: u16,
    www_authenticate: bool,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    fn excerpt(&self) -> String {
        match std::str::from_utf8(&self.bytes) {
            Ok(text) => text.chars().take(200).collect(),
            Err(_) => format!("<{} bytes>", self.bytes.len()),
        }
    }

    /// The error shape of API.md §1, if the status is an error this test
    /// expects.
    fn shape_problem(&self) -> Option<String> {
        let body = self.json();
        match self.status {
            401 if !self.www_authenticate => Some("401 without WWW-Authenticate".into()),
            401 if !body["detail"].is_string() => Some(format!("401 body {body}")),
            403 if body != json!({ "detail": FORBIDDEN }) => Some(format!("403 body {body}")),
            404 if body != json!({ "detail": "Not found." }) => Some(format!("404 body {body}")),
            _ => None,
        }
    }
}

/// A tiny valid PNG (1×1).
fn png() -> Vec<u8> {
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde\0\0\0\x0cIDATx\x9cc\xf8\xcf\xc0\0\0\x03\x01\x01\0\xc9\xfe\x92\xef\0\0\0\0IEND\xaeB`\x82".to_vec()
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &Body,
) -> Answer {
    let mut req = app.client.request(method, app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req = match body {
        Body::Empty => req,
        Body::Json(value) => req.json(value),
        Body::Poster(event) => req.multipart(
            Form::new().text("event", event.clone()).part(
                "image",
                Part::bytes(png())
                    .file_name("poster.png")
                    .mime_str("image/png")
                    .expect("image/png is a MIME type"),
            ),
        ),
    };
    let res = req.send().await.expect("matrix request sent");
    let status = res.status().as_u16();
    let www_authenticate = res.headers().contains_key("www-authenticate");
    let bytes = res.bytes().await.expect("matrix response body").to_vec();
    Answer {
        status,
        www_authenticate,
        bytes,
    }
}

async fn upload_poster(app: &TestApp, token: &str, event: &str) -> String {
    let answer = send(
        app,
        Method::POST,
        "/api/events/upload/",
        Some(token),
        &Body::Poster(event.to_owned()),
    )
    .await;
    assert_eq!(answer.status, 201, "poster upload: {}", answer.excerpt());
    answer.json()["id"].as_str().expect("poster id").to_owned()
}

async fn create_payment(app: &TestApp, token: &str, body: Value) -> String {
    let reply = app.post("/api/payments/", Some(token), body).await;
    reply.assert(201);
    reply.id()
}

impl Fixture {
    async fn build(app: &TestApp) -> Fixture {
        let (owner_id, owner_token) = app.user("mx-owner").await;
        let (_, other_token) = app.user("mx-other").await;
        let (org_owner_id, org_owner_token) = app.user_in("mx-olga", "organizer").await;
        let (org_other_id, org_other_token) = app.user_in("mx-oscar", "organizer").await;
        let (_, admin_token) = app.user_in("mx-adam", "admin").await;
        let (bystander, _) = app.user("mx-bystander").await;

        let event = app
            .create_event(&org_owner_token, "Matrix event", 100_000)
            .await;
        let ticket = app.create_ticket(&org_owner_token, &event, 100_000).await;
        let registration = app.register(&owner_token, &ticket).await.assert(201).id();
        let payment = create_payment(app, &owner_token, payment_body(&registration)).await;
        let poster = upload_poster(app, &org_owner_token, &event).await;
        Fixture {
            owner: Caller {
                id: owner_id,
                token: owner_token,
            },
            other_token,
            org_owner: Caller {
                id: org_owner_id,
                token: org_owner_token,
            },
            org_other: Caller {
                id: org_other_id,
                token: org_other_token,
            },
            admin_token,
            superuser_token: app.admin_token.clone(),
            bystander,
            event,
            ticket,
            registration,
            payment,
            poster,
            unknown: Uuid::new_v4().to_string(),
            unknown_group: "987654".into(),
        }
    }

    fn token<'a>(&'a self, cell: &'a Cell, role: Role) -> Option<&'a str> {
        match role {
            Role::Anonymous => None,
            Role::Owner => Some(&cell.owner_token),
            Role::Other => Some(&self.other_token),
            Role::OrgOwner => Some(&self.org_owner.token),
            Role::OrgOther => Some(&self.org_other.token),
            Role::Admin => Some(&self.admin_token),
            Role::Superuser => Some(&self.superuser_token),
        }
    }

    /// The cell's ids: the fixture's, with fresh ones where `fresh` asks.
    async fn cell(&self, app: &TestApp, fresh: Fresh, tag: String) -> Cell {
        let mut cell = Cell {
            owner_token: self.owner.token.clone(),
            user: self.owner.id.clone(),
            group: self.unknown_group.clone(),
            event: self.event.clone(),
            ticket: self.ticket.clone(),
            spare_ticket: self.ticket.clone(),
            registration: self.registration.clone(),
            payment: self.payment.clone(),
            poster: self.poster.clone(),
            tag,
        };
        let organizer = &self.org_owner.token;
        match fresh {
            Fresh::Shared => {}
            Fresh::Account => {
                let (id, token) = app.user(&format!("acct-{}", cell.tag)).await;
                cell.user = id;
                cell.owner_token = token;
            }
            Fresh::Group | Fresh::Membership => {
                let reply = app
                    .post(
                        "/api/groups/",
                        Some(&self.superuser_token),
                        json!({ "name": format!("fresh-{}", cell.tag) }),
                    )
                    .await;
                reply.assert(201);
                cell.group = reply.id();
                if matches!(fresh, Fresh::Membership) {
                    let body = membership_body(self, &cell);
                    app.post("/api/assign-roles/", Some(&self.superuser_token), body)
                        .await
                        .assert(201);
                }
            }
            Fresh::Event => {
                cell.event = app
                    .create_event(organizer, &format!("Fresh {}", cell.tag), 50)
                    .await;
            }
            Fresh::Ticket => {
                cell.ticket = app.create_ticket(organizer, &self.event, 20).await;
            }
            Fresh::Registration | Fresh::PaidRegistration | Fresh::Payment => {
                cell.ticket = app.create_ticket(organizer, &self.event, 20).await;
                cell.spare_ticket = app.create_ticket(organizer, &self.event, 20).await;
                cell.registration = app
                    .register(&self.owner.token, &cell.ticket)
                    .await
                    .assert(201)
                    .id();
                if matches!(fresh, Fresh::PaidRegistration) {
                    let mut body = payment_body(&cell.registration);
                    body["payment_status"] = json!("completed");
                    create_payment(app, &self.superuser_token, body).await;
                }
                if matches!(fresh, Fresh::Payment) {
                    cell.payment =
                        create_payment(app, &self.owner.token, payment_body(&cell.registration))
                            .await;
                }
            }
            Fresh::Poster => {
                cell.poster = upload_poster(app, &self.superuser_token, &self.event).await;
            }
        }
        cell
    }

    fn render(&self, template: &str, cell: &Cell) -> String {
        template
            .replace("{user}", &cell.user)
            .replace("{group}", &cell.group)
            .replace("{event}", &cell.event)
            .replace("{ticket}", &cell.ticket)
            .replace("{registration}", &cell.registration)
            .replace("{payment}", &cell.payment)
            .replace("{poster}", &cell.poster)
            .replace("{unknown_group}", &self.unknown_group)
            .replace("{unknown}", &self.unknown)
    }

    /// What the superuser reads to see whether a write changed anything.
    fn witness(&self, case: &Case, cell: &Cell) -> String {
        match case.path {
            "/api/assign-roles/" => format!("/api/users/{}/", self.bystander),
            "/api/events/upload/" => format!("/api/events/{}/poster/", cell.event),
            path if path.contains('{') => self.render(path, cell),
            collection => format!("{collection}?page_size=100"),
        }
    }
}

async fn authorization_matrix(app: &TestApp) {
    let fixture = Fixture::build(app).await;
    let cases = matrix();
    let mut cells = 0usize;
    let mut failures = Vec::new();
    for (r, case) in cases.iter().enumerate() {
        for (c, role) in ROLES.into_iter().enumerate() {
            let cell = fixture.cell(app, case.fresh, format!("r{r}c{c}")).await;
            let expected = case.expect[c];
            let label = format!("{} {} as {role:?}", case.method, case.path);
            // A write the contract refuses must leave what it targets as it was.
            let witness = (case.method != Method::GET && expected >= 400)
                .then(|| fixture.witness(case, &cell));
            let superuser = Some(fixture.superuser_token.as_str());
            let before = match &witness {
                Some(path) => Some(send(app, Method::GET, path, superuser, &Body::Empty).await),
                None => None,
            };
            let answer = send(
                app,
                case.method.clone(),
                &fixture.render(case.path, &cell),
                fixture.token(&cell, role),
                &(case.body)(&fixture, &cell),
            )
            .await;
            cells += 1;
            if answer.status != expected {
                failures.push(format!(
                    "{label}: expected {expected}, got {} {}",
                    answer.status,
                    answer.excerpt()
                ));
                continue;
            }
            if let Some(problem) = answer.shape_problem() {
                failures.push(format!("{label}: {problem}"));
            }
            if let (Some(path), Some(before)) = (&witness, before) {
                let after = send(app, Method::GET, path, superuser, &Body::Empty).await;
                if (after.status, &after.bytes) != (before.status, &before.bytes) {
                    failures.push(format!(
                        "{label}: refused with {expected}, yet {path} changed: {} {} → {} {}",
                        before.status,
                        before.excerpt(),
                        after.status,
                        after.excerpt()
                    ));
                }
            }
        }
    }
    eprintln!(
        "{cells} matrix cells checked ({} routes × {} callers)",
        cases.len(),
        ROLES.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {cells} matrix cells differ from API.md:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Explicit checks: no cross-account access, no escalation through a body
// ---------------------------------------------------------------------------

#[track_caller]
fn forbidden(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status.as_u16(),
        403,
        "{what}: expected 403, body {}",
        reply.body
    );
    assert_eq!(reply.body, json!({ "detail": FORBIDDEN }), "{what}");
}

/// The resource as the superuser reads it.
async fn read(app: &TestApp, path: &str) -> Value {
    let reply = app.get(path, app.admin()).await;
    assert_eq!(
        reply.status.as_u16(),
        200,
        "superuser reads {path}: {}",
        reply.body
    );
    reply.body
}

/// The ids of a list response, sorted.
fn ids(reply: &Reply, key: &str) -> Vec<String> {
    reply.assert(200);
    let mut ids: Vec<String> = reply.body[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key:?} list in {}", reply.body))
        .iter()
        .map(|item| item["id"].as_str().expect("an id").to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn no_cross_account_access_or_privilege_escalation(app: &TestApp) {
    let (alice_id, alice) = app.user("alice").await;
    let (bob_id, bob) = app.user("bob").await;
    let (olga_id, olga) = app.user_in("olga", "organizer").await;
    let (oscar_id, oscar) = app.user_in("oscar", "organizer").await;
    let (adam_id, adam) = app.user_in("adam", "admin").await;
    let event = app.create_event(&olga, "Olga's meetup", 100).await;
    let ticket = app.create_ticket(&olga, &event, 100).await;
    let spare = app.create_ticket(&olga, &event, 100).await;
    let ra = app.register(&alice, &ticket).await.assert(201).id();
    let rb = app.register(&bob, &ticket).await.assert(201).id();
    let pa = create_payment(app, &alice, payment_body(&ra)).await;
    let pb = create_payment(app, &bob, payment_body(&rb)).await;

    // ---- Another user's account: not read, not changed, not deleted ----
    let alice_path = format!("/api/users/{alice_id}/");
    let alice_before = read(app, &alice_path).await;
    forbidden(&app.get(&alice_path, Some(&bob)).await, "bob reads alice");
    let takeover = json!({
        "first_name": "Mallory",
        "email": "mallory@example.com",
        "password": "An0ther-Passw0rd!",
    });
    for (what, token) in [
        ("bob", &bob),
        ("organizer olga", &olga),
        // Admins read accounts; only the account's owner and superusers change them.
        ("admin adam", &adam),
    ] {
        forbidden(
            &app.put(&alice_path, Some(token), takeover.clone()).await,
            &format!("{what} PUTs alice"),
        );
        forbidden(
            &app.patch(&alice_path, Some(token), takeover.clone()).await,
            &format!("{what} PATCHes alice"),
        );
        forbidden(
            &app.delete(&alice_path, Some(token)).await,
            &format!("{what} DELETEs alice"),
        );
    }
    assert_eq!(
        read(app, &alice_path).await,
        alice_before,
        "alice's account changed after refused writes"
    );
    // Her password is still hers.
    app.login_ok("alice", PASSWORD).await;
    for (who, token) in [
        ("alice", &alice),
        ("bob", &bob),
        ("olga", &olga),
        ("oscar", &oscar),
    ] {
        for path in ["/api/users/", "/api/users/?search=alice"] {
            forbidden(
                &app.get(path, Some(token)).await,
                &format!("{who} GET {path}"),
            );
        }
    }

    // ---- Registrations: lists are scoped, another's is untouchable ----
    let list = "/api/registrations/?page_size=100";
    assert_eq!(
        ids(&app.get(list, Some(&bob)).await, "registrations"),
        [rb.as_str()]
    );
    assert_eq!(app.get(list, Some(&bob)).await.body["count"], 1);
    for filter in [
        format!("user={alice_id}"),
        format!("ticket={ticket}&user={alice_id}"),
    ] {
        let path = format!("/api/registrations/?{filter}");
        assert!(
            ids(&app.get(&path, Some(&bob)).await, "registrations").is_empty(),
            "bob sees alice's registration through ?{filter}"
        );
    }
    assert_eq!(
        ids(
            &app.get(&format!("/api/registrations/?ticket={ticket}"), Some(&bob))
                .await,
            "registrations"
        ),
        [rb.as_str()]
    );
    assert_eq!(
        ids(&app.get(list, Some(&alice)).await, "registrations"),
        [ra.as_str()]
    );
    assert!(ids(&app.get(list, Some(&oscar)).await, "registrations").is_empty());
    assert!(ids(&app.get(list, Some(&adam)).await, "registrations").len() >= 2);
    assert_eq!(
        ids(&app.get(list, Some(&olga)).await, "registrations"),
        sorted(vec![ra.clone(), rb.clone()])
    );

    let ra_path = format!("/api/registrations/{ra}/");
    let ra_before = read(app, &ra_path).await;
    let spare_before = read(app, &format!("/api/tickets/{spare}/")).await;
    forbidden(
        &app.get(&ra_path, Some(&bob)).await,
        "bob reads alice's registration",
    );
    forbidden(
        &app.get(&ra_path, Some(&oscar)).await,
        "oscar reads a registration of olga's event",
    );
    for (what, token, body) in [
        (
            "bob takes over",
            &bob,
            json!({ "ticket_id": ticket, "user_id": bob_id }),
        ),
        ("bob moves", &bob, json!({ "ticket_id": spare })),
        // Moves are superuser/admin only: not its user, not the organiser.
        (
            "alice hands over",
            &alice,
            json!({ "ticket_id": ticket, "user_id": bob_id }),
        ),
        ("alice moves", &alice, json!({ "ticket_id": spare })),
        ("olga moves", &olga, json!({ "ticket_id": spare })),
    ] {
        forbidden(
            &app.put(&ra_path, Some(token), body.clone()).await,
            &format!("{what} (PUT)"),
        );
        forbidden(
            &app.patch(&ra_path, Some(token), body).await,
            &format!("{what} (PATCH)"),
        );
    }
    forbidden(
        &app.delete(&ra_path, Some(&bob)).await,
        "bob cancels alice's registration",
    );
    forbidden(
        &app.delete(&ra_path, Some(&olga)).await,
        "olga cancels alice's registration",
    );
    // Registering someone else.
    forbidden(
        &app.post(
            "/api/registrations/",
            Some(&alice),
            json!({ "ticket_id": spare, "user_id": bob_id }),
        )
        .await,
        "alice registers bob",
    );
    forbidden(
        &app.post(
            "/api/registrations/",
            Some(&oscar),
            json!({ "ticket_id": spare, "user_id": alice_id }),
        )
        .await,
        "oscar registers alice on olga's event",
    );
    assert_eq!(
        read(app, &ra_path).await,
        ra_before,
        "alice's registration changed"
    );
    assert_eq!(
        read(app, &format!("/api/tickets/{spare}/")).await,
        spare_before,
        "a refused registration took a place"
    );
    assert_eq!(
        read(app, &format!("/api/registrations/?ticket={spare}")).await["count"],
        0,
        "a refused registration was created"
    );

    // ---- Payments: lists are scoped, another's is untouchable ----
    let list = "/api/payments/?page_size=100";
    assert_eq!(
        ids(&app.get(list, Some(&bob)).await, "payments"),
        [pb.as_str()]
    );
    assert!(
        ids(
            &app.get(&format!("/api/payments/?registration={ra}"), Some(&bob))
                .await,
            "payments"
        )
        .is_empty(),
        "bob sees alice's payment through ?registration="
    );
    assert_eq!(
        ids(
            &app.get("/api/payments/?payment_status=pending", Some(&bob))
                .await,
            "payments"
        ),
        [pb.as_str()]
    );
    assert_eq!(
        ids(&app.get(list, Some(&alice)).await, "payments"),
        [pa.as_str()]
    );
    assert!(ids(&app.get(list, Some(&oscar)).await, "payments").is_empty());
    assert_eq!(
        ids(&app.get(list, Some(&olga)).await, "payments"),
        sorted(vec![pa.clone(), pb.clone()])
    );

    let pa_path = format!("/api/payments/{pa}/");
    let pa_before = read(app, &pa_path).await;
    let payments_of_ra = format!("/api/payments/?registration={ra}");
    let payments_of_ra_before = read(app, &payments_of_ra).await;
    forbidden(
        &app.get(&pa_path, Some(&bob)).await,
        "bob reads alice's payment",
    );
    forbidden(
        &app.get(&pa_path, Some(&oscar)).await,
        "oscar reads a payment of olga's event",
    );
    let completed_in_full = json!({
        "payment_method": "QRIS",
        "amount_paid": 150000.5,
        "payment_status": "completed",
    });
    for (what, token) in [
        ("bob", &bob),
        // A payment's status is its event's managers' business (superuser,
        // admin, the event's organiser: API.md §8.1): not its payer, not
        // another organiser.
        ("alice", &alice),
        ("oscar", &oscar),
    ] {
        forbidden(
            &app.patch(
                &pa_path,
                Some(token),
                json!({ "payment_status": "completed" }),
            )
            .await,
            &format!("{what} PATCHes the payment status"),
        );
        forbidden(
            &app.put(&pa_path, Some(token), completed_in_full.clone())
                .await,
            &format!("{what} PUTs a completed payment"),
        );
        forbidden(
            &app.patch(&pa_path, Some(token), json!({ "amount_paid": 0 }))
                .await,
            &format!("{what} PATCHes the amount"),
        );
        forbidden(
            &app.delete(&pa_path, Some(token)).await,
            &format!("{what} DELETEs the payment"),
        );
    }
    forbidden(
        &app.post("/api/payments/", Some(&bob), payment_body(&ra))
            .await,
        "bob pays for alice's registration",
    );
    forbidden(
        &app.post("/api/payments/", Some(&oscar), payment_body(&ra))
            .await,
        "oscar creates a payment for a registration of olga's event",
    );
    for status in ["completed", "COMPLETED", "refunded", "failed"] {
        let mut body = payment_body(&ra);
        body["payment_status"] = json!(status);
        forbidden(
            &app.post("/api/payments/", Some(&alice), body).await,
            &format!("alice creates her payment as {status:?}"),
        );
    }
    let pa_after = read(app, &pa_path).await;
    assert_eq!(pa_after, pa_before, "alice's payment changed");
    assert_eq!(pa_after["payment_status"], "pending");
    assert_eq!(pa_after["paid_at"], Value::Null);
    assert_eq!(
        read(app, &payments_of_ra).await,
        payments_of_ra_before,
        "a refused payment was created"
    );
    // Server-set payment fields are not taken from the body.
    let forged_id = Uuid::new_v4().to_string();
    let mut body = payment_body(&ra);
    body["paid_at"] = json!("2025-01-01T00:00:00Z");
    body["id"] = json!(forged_id);
    body["registration"] = json!(rb);
    let own = app.post("/api/payments/", Some(&alice), body).await;
    own.assert(201);
    assert_eq!(own.body["payment_status"], "pending");
    assert_eq!(own.body["paid_at"], Value::Null);
    assert_eq!(own.body["registration"], ra.as_str());
    assert_ne!(own.body["id"], forged_id.as_str());

    // ---- Roles cannot be taken through the account's own body ----
    let sneaky = json!({
        "is_superuser": true,
        "is_staff": true,
        "is_active": true,
        "groups": ["admin", "organizer"],
        "organizer": true,
        "role": "admin",
        "id": bob_id,
        "date_joined": "2000-01-01T00:00:00Z",
    });
    let cases = [
        ("alice", &alice, &alice_id, json!([])),
        ("olga", &olga, &olga_id, json!(["organizer"])),
        ("adam", &adam, &adam_id, json!(["admin"])),
    ];
    for (who, token, id, groups) in &cases {
        let path = format!("/api/users/{id}/");
        let before = read(app, &path).await;
        for method in [Method::PATCH, Method::PUT] {
            let reply = app
                .request(method.clone(), &path, Some(token), Some(sneaky.clone()))
                .await;
            // Unknown fields are ignored, never honoured (API.md §1).
            assert_eq!(
                reply.status.as_u16(),
                200,
                "{who} {method} self with role fields: {}",
                reply.body
            );
            assert_eq!(reply.body["is_superuser"], false, "{who} {method}");
            assert_eq!(&reply.body["groups"], groups, "{who} {method}");
        }
        // A listed field alongside: it changes, the role fields don't.
        let mut mixed = sneaky.clone();
        mixed["first_name"] = json!("Renamed");
        app.patch(&path, Some(token), mixed).await.assert(200);
        let mut expected = before.clone();
        expected["first_name"] = json!("Renamed");
        assert_eq!(read(app, &path).await, expected, "{who}'s account");
        let me = app.get("/api/users/me/", Some(token)).await;
        me.assert(200);
        assert_eq!(me.body, expected, "{who} GET /api/users/me/");
        // Still not a superuser where it matters: superuser-only routes.
        forbidden(
            &app.get("/api/groups/", Some(token)).await,
            &format!("{who} lists groups"),
        );
        forbidden(
            &app.post("/api/groups/", Some(token), json!({ "name": "root" }))
                .await,
            &format!("{who} creates a group"),
        );
    }
    // Nor an admin or organizer.
    forbidden(
        &app.get("/api/users/", Some(&alice)).await,
        "alice lists users after PATCH",
    );
    forbidden(
        &app.post("/api/events/", Some(&alice), TestApp::event_body("Mine", 5))
            .await,
        "alice creates an event after PATCH",
    );
    forbidden(
        &app.get("/api/users/", Some(&olga)).await,
        "olga lists users after PATCH",
    );

    // Sign-up cannot ask for roles either.
    let eve = app
        .post(
            "/api/users/",
            None,
            json!({
                "username": "eve",
                "email": "eve@example.com",
                "password": PASSWORD,
                "is_superuser": true,
                "is_staff": true,
                "groups": ["admin"],
            }),
        )
        .await;
    eve.assert(201);
    assert_eq!(eve.body["is_superuser"], false);
    assert_eq!(eve.body["groups"], json!([]));
    let (eve_token, _) = app.login_ok("eve", PASSWORD).await;
    forbidden(
        &app.get("/api/groups/", Some(&eve_token)).await,
        "eve lists groups",
    );
    forbidden(
        &app.get("/api/users/", Some(&eve_token)).await,
        "eve lists users",
    );

    // Group memberships: superuser only, whoever asks for whom.
    let admin_group = app.group("admin").await;
    let organizer_group = app.group("organizer").await;
    let groups_before: Vec<Value> = {
        let mut v = Vec::new();
        for id in [&alice_id, &bob_id, &olga_id, &oscar_id, &adam_id] {
            v.push(read(app, &format!("/api/users/{id}/")).await["groups"].clone());
        }
        v
    };
    for (what, token, user, group) in [
        ("alice joins admin", &alice, &alice_id, admin_group),
        ("olga joins admin", &olga, &olga_id, admin_group),
        ("adam makes bob an admin", &adam, &bob_id, admin_group),
        (
            "adam makes alice an organizer",
            &adam,
            &alice_id,
            organizer_group,
        ),
    ] {
        forbidden(
            &app.post(
                "/api/assign-roles/",
                Some(token),
                json!({ "user_id": user, "group_id": group }),
            )
            .await,
            what,
        );
    }
    forbidden(
        &app.request(
            Method::DELETE,
            "/api/assign-roles/",
            Some(&adam),
            Some(json!({ "user_id": oscar_id, "group_id": organizer_group })),
        )
        .await,
        "adam removes oscar from organizer",
    );
    forbidden(
        &app.patch(
            &format!("/api/groups/{organizer_group}/"),
            Some(&adam),
            json!({ "name": "admin2" }),
        )
        .await,
        "adam renames a group",
    );
    let mut groups_after = Vec::new();
    for id in [&alice_id, &bob_id, &olga_id, &oscar_id, &adam_id] {
        groups_after.push(read(app, &format!("/api/users/{id}/")).await["groups"].clone());
    }
    assert_eq!(groups_after, groups_before, "memberships changed");

    // ---- Events: an organizer organises for themselves only ----
    let organised_by = |id: &str| format!("/api/events/?organizer={id}&page_size=100");
    let mut counts_before = Vec::new();
    for id in [&oscar_id, &alice_id, &app.superuser_id] {
        counts_before.push(read(app, &organised_by(id)).await["count"].clone());
    }
    for (whom, id) in [
        ("oscar", &oscar_id),
        ("alice", &alice_id),
        ("the superuser", &app.superuser_id),
    ] {
        let mut body = TestApp::event_body("Hijacked", 10);
        body["organizer_id"] = json!(id);
        forbidden(
            &app.post("/api/events/", Some(&olga), body).await,
            &format!("olga creates an event organised by {whom}"),
        );
    }
    let mut body = TestApp::event_body("Hijacked", 10);
    body["organizer_id"] = json!(alice_id);
    forbidden(
        &app.post("/api/events/", Some(&alice), body).await,
        "plain alice creates an event naming herself",
    );
    let mut counts_after = Vec::new();
    for id in [&oscar_id, &alice_id, &app.superuser_id] {
        counts_after.push(read(app, &organised_by(id)).await["count"].clone());
    }
    assert_eq!(counts_after, counts_before, "a refused event was created");
    assert_eq!(read(app, "/api/events/?search=Hijacked").await["count"], 0);
    // `organizer` is an output field: as input it is ignored.
    let mut body = TestApp::event_body("Mine", 10);
    body["organizer"] = json!(oscar_id);
    let mine = app.post("/api/events/", Some(&olga), body).await;
    mine.assert(201);
    assert_eq!(mine.body["organizer"], olga_id.as_str());

    let event_path = format!("/api/events/{event}/");
    let event_before = read(app, &event_path).await;
    forbidden(
        &app.patch(
            &event_path,
            Some(&olga),
            json!({ "organizer_id": oscar_id }),
        )
        .await,
        "olga hands her event to oscar",
    );
    let mut full = TestApp::event_body("Olga's meetup", 100);
    full["organizer_id"] = json!(oscar_id);
    forbidden(
        &app.put(&event_path, Some(&olga), full).await,
        "olga hands her event to oscar (PUT)",
    );
    forbidden(
        &app.patch(
            &event_path,
            Some(&oscar),
            json!({ "organizer_id": oscar_id }),
        )
        .await,
        "oscar takes olga's event",
    );
    forbidden(
        &app.patch(&event_path, Some(&oscar), json!({ "quota": 1 }))
            .await,
        "oscar changes olga's event",
    );
    assert_eq!(
        read(app, &event_path).await,
        event_before,
        "olga's event changed"
    );

    // ---- Tickets: counters are the server's ----
    let ticket_path = format!("/api/tickets/{ticket}/");
    let ticket_before = read(app, &ticket_path).await;
    forbidden(
        &app.patch(&ticket_path, Some(&oscar), json!({ "quota": 1 }))
            .await,
        "oscar changes olga's ticket",
    );
    forbidden(
        &app.post(
            "/api/tickets/",
            Some(&oscar),
            TestApp::ticket_body(&event, "Free", 10),
        )
        .await,
        "oscar adds a ticket to olga's event",
    );
    assert_eq!(
        read(app, &ticket_path).await,
        ticket_before,
        "olga's ticket changed"
    );
    let edited = app
        .patch(
            &ticket_path,
            Some(&olga),
            json!({ "sold": 0, "available": 1000, "name": "Regular+" }),
        )
        .await;
    edited.assert(200);
    assert_eq!(edited.body["name"], "Regular+");
    assert_eq!(edited.body["sold"], ticket_before["sold"]);
    assert_eq!(edited.body["available"], ticket_before["available"]);
}
