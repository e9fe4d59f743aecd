//! The web console (API.md §8): server-rendered pages for people, over the
//! same domain functions as the API (no rule is written here).
//!
//! - `auth`: sign-in, sign-out (server-side sessions, CSRF per session).
//! - `signup`: sign-up, e-mail verification, password reset by mail.
//! - `events`: organisers' events: list, create, the event page (details,
//!   tickets, posters, registrations, payments, check-ins, charts), delete,
//!   the CSV export.
//! - `attendee`: "My tickets" with QR codes, browsing events, registering
//!   and cancelling.
//! - `admin`: users, groups, background jobs, service status.
//! - `history`: the audit log, per event and as a whole.
//! - `webhooks`: endpoints, their secrets and delivery logs.
//! - `scan`: the door.
//! - `public`: what anyone sees without an account: `/`, `/e/{id}` and
//!   its calendar file.
//! - `charts`, `format`: SVG charts and the way numbers and dates read.
//!
//! Pages work without JavaScript; every asset is compiled into the binary;
//! every page sends a CSP without inline scripts.

// Handlers return early with the page to send (a sign-in redirect, a 403,
// a 404) as `Err(Response)`, axum's way; its size does not matter here.
#![allow(clippy::result_large_err)]

/// The value of a step that may end the request with a page instead (a
/// sign-in redirect, a 403, a 404): that page is returned as it is.
macro_rules! page_or_return {
    ($step:expr) => {
        match $step {
            Ok(value) => value,
            Err(response) => return response,
        }
    };
}

mod admin;
mod attendee;
mod auth;
mod charts;
mod events;
pub(crate) mod format;
mod history;
mod public;
mod scan;
mod signup;
mod webhooks;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::domain::accounts::sessions;
use crate::domain::{Caller, DomainError, checkins};
use crate::state::AppState;

/// The session cookie (an opaque random value; the server keeps its hash).
const SESSION_COOKIE: &str = "dicoevent_session";
/// The CSRF cookie of the sign-in form (there is no session yet).
const LOGIN_CSRF_COOKIE: &str = "dicoevent_csrf";
/// The message shown once on the page after an action (`ok:` or `error:`
/// and the words, URL-encoded).
const FLASH_COOKIE: &str = "dicoevent_flash";

/// No inline scripts, nothing from elsewhere, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'self'";

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(signup::router())
        .merge(events::router())
        .merge(attendee::router())
        .merge(admin::router())
        .merge(history::router())
        .merge(webhooks::router())
        .merge(scan::router())
        .merge(public::router())
        .route("/console/static/scan.js", get(scan_script))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/static/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/console/{*rest}", get(not_found))
        .route("/admin", get(to_console))
}

/// What every signed-in page shows around its content: who is signed in,
/// the sections they may use, the CSRF token for the forms, the flash.
pub(crate) struct Frame {
    pub username: String,
    pub roles: String,
    pub csrf_token: String,
    pub may_scan: bool,
    pub may_manage: bool,
    pub is_admin: bool,
    pub is_superuser: bool,
    /// The section of the top bar this page belongs to.
    pub section: &'static str,
    pub flash: Option<Flash>,
    secure: bool,
}

/// A one-line message after an action.
pub(crate) struct Flash {
    /// `ok` or `error` (the colour; the words say it too).
    pub kind: &'static str,
    pub message: String,
}

/// A signed-in request: who asks, and the page frame for them.
pub(crate) struct Visit {
    pub caller: Caller,
    pub frame: Frame,
    /// The session cookie's value (to change what the session remembers).
    pub session_token: String,
    /// The event whose door this browser is at (the scan page).
    pub door_event: Option<uuid::Uuid>,
}

fn roles_of(caller: &Caller) -> String {
    let mut roles: Vec<&str> = Vec::new();
    if caller.is_superuser {
        roles.push("superuser");
    }
    roles.extend(
        caller
            .groups
            .iter()
            .map(String::as_str)
            .filter(|g| *g == "admin" || *g == "organizer"),
    );
    roles.join(", ")
}

fn read_flash(headers: &HeaderMap) -> Option<Flash> {
    let raw = cookie(headers, FLASH_COOKIE)?;
    let decoded: String = form_urlencoded::parse(format!("f={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    let (kind, message) = decoded.split_once(':')?;
    let kind = match kind {
        "ok" => "ok",
        "error" => "error",
        _ => return None,
    };
    let message: String = message.chars().take(300).collect();
    (!message.is_empty()).then_some(Flash { kind, message })
}

/// The signed-in visitor of `here` (a local path), or the response to send
/// instead: `303` to the sign-in page for someone not signed in.
async fn visit(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
    section: &'static str,
) -> Result<Visit, Response> {
    let (session_token, current) = match session(state, headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(login_redirect(here)),
        Err(e) => return Err(refusal(e)),
    };
    let caller = current.caller;
    let may_scan = checkins::may_scan(state, &caller).await.map_err(refusal)?;
    let frame = Frame {
        username: caller.username.clone(),
        roles: roles_of(&caller),
        csrf_token: current.csrf_token,
        may_scan,
        may_manage: may_scan,
        is_admin: caller.is_admin(),
        is_superuser: caller.is_superuser,
        section,
        flash: read_flash(headers),
        secure: state.config.session_cookie_secure,
    };
    Ok(Visit {
        caller,
        frame,
        session_token,
        door_event: current.door_event,
    })
}

/// A form posted by a signed-in visitor, its CSRF token checked: anonymous
/// → `303` to sign in; a missing or wrong token → `403`, nothing done.
async fn posted(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    back: &str,
) -> Result<(Visit, Fields), Response> {
    let visit = visit(state, headers, back, "").await?;
    let fields = Fields::parse(body);
    check_csrf(&visit, fields.get("csrf_token"))?;
    Ok((visit, fields))
}

fn check_csrf(visit: &Visit, sent: &str) -> Result<(), Response> {
    if same_token(&visit.frame.csrf_token, sent) {
        Ok(())
    } else {
        Err(forbidden_page())
    }
}

/// The fields of a submitted form (the first value of each name).
pub(crate) struct Fields(std::collections::HashMap<String, String>);

impl Fields {
    fn parse(body: &[u8]) -> Self {
        let mut map = std::collections::HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Fields(map)
    }

    fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    /// The fields as a JSON object of strings, for the API's field parser
    /// (so a form and a JSON body follow the same rules and messages).
    fn to_json(&self, names: &[&str]) -> serde_json::Map<String, serde_json::Value> {
        names
            .iter()
            .filter_map(|name| {
                let value = self.0.get(*name)?;
                Some((
                    (*name).to_string(),
                    serde_json::Value::String(value.clone()),
                ))
            })
            .collect()
    }
}

/// A rendered page with the console's headers; a flash shown on it is
/// cleared.
fn render(frame: &Frame, status: StatusCode, html: Result<String, askama::Error>) -> Response {
    let mut response = page(status, html);
    if frame.flash.is_some() {
        response.headers_mut().append(
            header::SET_COOKIE,
            cookie_header(frame.secure, FLASH_COOKIE, "", Some(0)),
        );
    }
    response
}

/// `303` to `to` with a message for the next page.
fn redirect_with(state: &AppState, to: &str, kind: &'static str, message: &str) -> Response {
    let value: String =
        form_urlencoded::byte_serialize(format!("{kind}:{message}").as_bytes()).collect();
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, FLASH_COOKIE, &value, None),
    );
    response
}

/// A rendered page with the console's headers.
fn page(status: StatusCode, html: Result<String, askama::Error>) -> Response {
    let (status, body) = match html {
        Ok(body) => (status, body),
        Err(e) => {
            tracing::error!("cannot render a console page: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>Something went wrong on our side.</p>"
                    .to_string(),
            )
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let mut response = page(status, ErrorPage { title, message }.render());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            crate::api::error::UNAVAILABLE_RETRY_AFTER.clone(),
        );
    }
    response
}

/// A domain refusal as a page, with the API's status codes.
fn refusal(err: DomainError) -> Response {
    match err {
        DomainError::NotFound => not_found_page(),
        DomainError::Forbidden => error_page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Your account may not do this. Ask an administrator if you think it should.",
        ),
        DomainError::Unavailable(message) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            &message,
        ),
        DomainError::Invalid(errors) => {
            let message: Vec<String> = errors.0.into_values().flatten().collect();
            error_page(StatusCode::BAD_REQUEST, "Not done", &message.join(" "))
        }
        conflict @ (DomainError::SoldOut
        | DomainError::AlreadyRegistered { .. }
        | DomainError::SalesClosed(_)
        | DomainError::AlreadyPaid
        | DomainError::Unverified
        | DomainError::HoldExpired
        | DomainError::Conflict(_)) => {
            error_page(StatusCode::CONFLICT, "Not done", &conflict.to_string())
        }
        other => {
            tracing::error!("console: {other}");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Something went wrong on our side. It has been logged; try again.",
            )
        }
    }
}

/// A refusal in words for a flash message after a quiet action.
fn refusal_words(err: &DomainError) -> String {
    match err {
        DomainError::Invalid(errors) => errors
            .0
            .values()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
        DomainError::NotFound => "It no longer exists.".into(),
        DomainError::Forbidden => "Your account may not do this.".into(),
        DomainError::Internal(_) => "Something went wrong on our side; try again.".into(),
        other => other.to_string(),
    }
}

fn not_found_page() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing here, or it is not yours to see.",
    )
}

/// A form that did not come from this site (or an expired one).
fn forbidden_page() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Not allowed",
        "This form has expired or did not come from this site. Go back, reload the page and try again.",
    )
}

async fn not_found() -> Response {
    not_found_page()
}

/// Where the Django service had its admin site: 301, as Django's redirects.
async fn to_console() -> Response {
    (
        StatusCode::MOVED_PERMANENTLY,
        [(header::LOCATION, HeaderValue::from_static("/console/"))],
    )
        .into_response()
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

async fn stylesheet() -> Response {
    asset(include_str!("static/console.css"), "text/css")
}

/// The site's icon (also at `/favicon.ico`, where browsers look first).
async fn favicon() -> Response {
    asset(include_str!("static/favicon.svg"), "image/svg+xml")
}

async fn scan_script() -> Response {
    asset(
        include_str!("static/scan.js"),
        "text/javascript; charset=utf-8",
    )
}

/// A cookie's value from the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for one of our cookies (`max_age` 0 deletes it).
fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    cookie_header(state.config.session_cookie_secure, name, value, max_age)
}

fn cookie_header(secure: bool, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Equal without leaking where they differ through timing.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The signed-in session, if any.
async fn session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(String, sessions::Session)>, DomainError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(sessions::resume(state, token)
        .await?
        .map(|s| (token.to_string(), s)))
}

/// Only a path on this site (no scheme, no `//host`, no backslash tricks).
fn local_next(raw: Option<&str>) -> String {
    match raw {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.contains('\\')
                && !next.chars().any(char::is_control) =>
        {
            next.to_string()
        }
        _ => "/console/".to_string(),
    }
}

fn query_value(raw: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A trimmed query parameter, empty when absent.
fn query_text(raw: Option<&str>, name: &str) -> String {
    query_value(raw, name)
        .map(|q| q.trim().to_string())
        .unwrap_or_default()
}

fn login_redirect(next: &str) -> Response {
    let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    Redirect::to(&format!("/console/login?next={next}")).into_response()
}

/// An id in a path; anything else is a page that does not exist.
fn path_uuid(raw: &str) -> Result<uuid::Uuid, Response> {
    uuid::Uuid::parse_str(raw).map_err(|_| not_found_page())
}

/// A message as a sentence: its first letter a capital.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A form as shown: the values to put in its fields (what was entered, or
/// the current values) and the errors under them.
pub(crate) struct FormState {
    values: std::collections::HashMap<String, String>,
    errors: crate::domain::FieldErrors,
    /// The fields the form shows; errors on other names are shown at the
    /// top of the form.
    fields: &'static [&'static str],
}

impl FormState {
    fn new(fields: &'static [&'static str], values: &[(&str, String)]) -> Self {
        FormState {
            values: values
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
            errors: crate::domain::FieldErrors::default(),
            fields,
        }
    }

    /// What was submitted, to show again with its errors.
    fn submitted(
        fields: &'static [&'static str],
        sent: &Fields,
        errors: crate::domain::FieldErrors,
    ) -> Self {
        FormState {
            values: fields
                .iter()
                .map(|f| ((*f).to_string(), sent.get(f).to_string()))
                .collect(),
            errors,
            fields,
        }
    }

    pub fn value(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    /// The field's errors in one line, each a sentence (the API keeps
    /// DRF's "group with this name already exists."; a page starts it with
    /// a capital).
    pub fn error(&self, name: &str) -> Option<String> {
        self.errors.0.get(name).map(|m| {
            m.iter()
                .map(|message| sentence(message))
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    /// Errors that belong to no field of the form.
    pub fn others(&self) -> Vec<String> {
        self.errors
            .0
            .iter()
            .filter(|(k, _)| !self.fields.contains(&k.as_str()))
            .flat_map(|(_, v)| v.iter().cloned())
            .collect()
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}
