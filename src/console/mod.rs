//! The web console (API.md §8): server-rendered pages for people, over the
//! same domain rules as the API. This first part: sign-in with the API's
//! accounts, password rules and login throttling; server-side sessions with
//! a CSRF token on every form; sign-out; the dashboard; `/admin/` → here.
//!
//! Pages never need JavaScript; the stylesheet is compiled into the binary.

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};

use crate::domain::accounts::{self, login, sessions};
use crate::domain::checkins::{self, Scan, ScanRefused};
use crate::domain::events::EventFilter;
use crate::domain::{Caller, DomainError, PageRequest};
use crate::state::AppState;

/// The session cookie (an opaque random value; the server keeps its hash).
const SESSION_COOKIE: &str = "dicoevent_session";
/// The CSRF cookie of the sign-in form (there is no session yet).
const LOGIN_CSRF_COOKIE: &str = "dicoevent_csrf";

/// No inline scripts, nothing from elsewhere, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'self'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(dashboard))
        .route("/console/login", get(login_form).post(login_submit))
        .route("/console/logout", axum::routing::post(logout))
        .route("/console/my", get(my_tickets))
        .route("/console/events", get(events_list))
        .route("/console/events/{id}", get(event_page))
        .route(
            "/console/events/{id}/registrations.csv",
            get(registrations_csv),
        )
        .route("/console/scan", get(scan_form).post(scan_submit))
        .route("/console/static/scan.js", get(scan_script))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/{*rest}", get(not_found))
        .route("/admin", get(to_console))
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
    page(status, ErrorPage { title, message }.render())
}

/// A domain refusal as a page, with the API's status codes.
fn refusal(err: DomainError) -> Response {
    match err {
        DomainError::NotFound => not_found_page(),
        DomainError::Forbidden => forbidden_page(),
        DomainError::Unavailable(message) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            &message,
        ),
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

fn not_found_page() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing here, or it is not yours to see.",
    )
}

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

async fn stylesheet() -> Response {
    let mut response = include_str!("static/console.css").into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

async fn scan_script() -> Response {
    let mut response = include_str!("static/scan.js").into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
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
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if state.config.session_cookie_secure {
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

fn login_redirect(next: &str) -> Response {
    let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    Redirect::to(&format!("/console/login?next={next}")).into_response()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf_token: &'a str,
    next: &'a str,
    username: &'a str,
    message: Option<&'a str>,
}

async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let next = local_next(query_value(query.as_deref(), "next").as_deref());
    match session(&state, &headers).await {
        Ok(Some(_)) => return Redirect::to(&next).into_response(),
        Ok(None) => {}
        Err(e) => return refusal(e),
    }
    let csrf = cookie(&headers, LOGIN_CSRF_COOKIE)
        .map(str::to_owned)
        .unwrap_or_else(sessions::random_token);
    let html = LoginPage {
        csrf_token: &csrf,
        next: &next,
        username: "",
        message: None,
    }
    .render();
    let mut response = page(StatusCode::OK, html);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_CSRF_COOKIE, &csrf, None),
    );
    response
}

/// The fields of a submitted form.
fn form_fields(body: &Bytes) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !same_token(expected, field("csrf_token")) {
        return forbidden_page();
    }
    let next = local_next(Some(field("next")));
    let username = field("username").trim();
    let again = |message: &str| {
        let html = LoginPage {
            csrf_token: expected,
            next: &next,
            username,
            message: Some(message),
        }
        .render();
        page(StatusCode::OK, html)
    };
    if username.is_empty() || field("password").is_empty() {
        return again("Enter your username and your password.");
    }
    let account = match login::verify_credentials(
        &state,
        username,
        field("password").to_string(),
        client.ip(),
    )
    .await
    {
        Ok(account) => account,
        Err(DomainError::BadCredentials) => {
            return again("Your username or password is not right. Check them and try again.");
        }
        Err(DomainError::Throttled { retry_after }) => {
            let minutes = retry_after.div_ceil(60);
            let mut response = error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                &format!(
                    "Too many failed sign-ins. Try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
        Err(e) => return refusal(e),
    };
    let caller = match accounts::load_caller(&state, account.id).await {
        Ok(Ok(caller)) => caller,
        Ok(Err(_)) => return again("This account cannot sign in."),
        Err(e) => return refusal(e),
    };
    let token = match sessions::start(&state, caller).await {
        Ok((token, _)) => token,
        Err(e) => return refusal(e),
    };
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &token, None),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_CSRF_COOKIE, "", Some(0)),
    );
    response
}

async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (token, current) = match session(&state, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return Redirect::to("/console/login").into_response(),
        Err(e) => return refusal(e),
    };
    let fields = form_fields(&body);
    let sent = fields.get("csrf_token").map(String::as_str).unwrap_or("");
    if !same_token(&current.csrf_token, sent) {
        return forbidden_page();
    }
    if let Err(e) = sessions::end(&state, &token, &current.caller).await {
        return refusal(e);
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", Some(0)),
    );
    response
}

/// An event row of the dashboard.
struct EventRow {
    name: String,
    status: String,
    starts: String,
    registered: i64,
    quota: i64,
    checked_in: u64,
}

/// A ticket card of the dashboard.
struct TicketCard {
    event: String,
    ticket: String,
    starts: String,
    location: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard<'a> {
    username: &'a str,
    roles: String,
    csrf_token: &'a str,
    may_scan: bool,
    display_name: &'a str,
    organised: Vec<EventRow>,
    tickets: Vec<TicketCard>,
}

/// "Sat 10 Jan 2027, 19:00 (in 40 days)" in the configured time zone.
fn when(state: &AppState, at: &DateTime<Utc>) -> String {
    let local = at.with_timezone(&state.config.time_zone);
    let days = (at.date_naive() - Utc::now().date_naive()).num_days();
    let relative = match days {
        0 => "today".to_string(),
        1 => "tomorrow".to_string(),
        d if d > 1 => format!("in {d} days"),
        -1 => "yesterday".to_string(),
        d => format!("{} days ago", -d),
    };
    format!("{} ({relative})", local.format("%a %-d %b %Y, %H:%M"))
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

async fn dashboard(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let current = match session(&state, &headers).await {
        Ok(Some((_, current))) => current,
        Ok(None) => return login_redirect("/console/"),
        Err(e) => return refusal(e),
    };
    let caller = &current.caller;
    let organised = match crate::domain::events::list(
        &state,
        &EventFilter {
            organizer: Some(caller.id),
            start_after: Some(Utc::now()),
            ..EventFilter::default()
        },
        &[("start_time", false)],
        PageRequest { page: 1, size: 5 },
        None,
    )
    .await
    {
        Ok(page) => page.items,
        Err(e) => return refusal(e),
    };
    let held = match crate::domain::registrations::holdings(&state, caller).await {
        Ok(held) => held,
        Err(e) => return refusal(e),
    };
    let may_scan = match checkins::may_scan(&state, caller).await {
        Ok(may) => may,
        Err(e) => return refusal(e),
    };
    let event_ids: Vec<uuid::Uuid> = organised.iter().map(|e| e.id).collect();
    let admitted = match checkins::admitted_per_event(&state, &event_ids).await {
        Ok(counts) => counts,
        Err(e) => return refusal(e),
    };
    let html = Dashboard {
        username: &caller.username,
        roles: roles_of(caller),
        csrf_token: &current.csrf_token,
        may_scan,
        display_name: &caller.username,
        organised: organised
            .into_iter()
            .map(|e| EventRow {
                checked_in: admitted.get(&e.id).copied().unwrap_or(0),
                starts: when(&state, &e.start_time),
                name: e.name,
                status: e.status,
                registered: e.registered,
                quota: e.quota,
            })
            .collect(),
        tickets: held
            .into_iter()
            .map(|h| TicketCard {
                starts: when(&state, &h.event.start_time),
                event: h.event.name,
                ticket: h.ticket.name,
                location: h.event.location,
            })
            .collect(),
    }
    .render();
    page(StatusCode::OK, html)
}

/// A ticket card of "My tickets".
struct HeldTicket {
    event: String,
    ticket: String,
    starts: String,
    location: String,
    payment: String,
    code: String,
    qr_svg: String,
}

#[derive(Template)]
#[template(path = "my.html")]
struct MyTickets<'a> {
    username: &'a str,
    roles: String,
    csrf_token: &'a str,
    may_scan: bool,
    tickets: Vec<HeldTicket>,
}

/// The QR code as markup to put in the page (without its XML prologue).
fn inline_svg(code: &str) -> Result<String, DomainError> {
    let svg = crate::ticket_codes::qr_svg(code)?;
    Ok(match svg.find("<svg") {
        Some(start) => svg[start..].to_string(),
        None => svg,
    })
}

async fn my_tickets(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let current = match session(&state, &headers).await {
        Ok(Some((_, current))) => current,
        Ok(None) => return login_redirect("/console/my/"),
        Err(e) => return refusal(e),
    };
    let caller = &current.caller;
    let result = async {
        let held = crate::domain::registrations::holdings(&state, caller).await?;
        let ids: Vec<uuid::Uuid> = held.iter().map(|h| h.registration.id).collect();
        let payments = crate::domain::payments::status_by_registration(&state, &ids).await?;
        let mut tickets = Vec::with_capacity(held.len());
        for h in held {
            let code = checkins::ticket_code(&state, caller, h.registration.id)
                .await?
                .code;
            let payment = if h.ticket.price_minor == 0 {
                "free".to_string()
            } else {
                payments
                    .get(&h.registration.id)
                    .cloned()
                    .unwrap_or_else(|| "not paid".to_string())
            };
            tickets.push(HeldTicket {
                qr_svg: inline_svg(&code)?,
                code,
                starts: when(&state, &h.event.start_time),
                event: h.event.name,
                ticket: h.ticket.name,
                location: h.event.location,
                payment,
            });
        }
        let may_scan = checkins::may_scan(&state, caller).await?;
        Ok::<_, DomainError>((tickets, may_scan))
    }
    .await;
    let (tickets, may_scan) = match result {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let html = MyTickets {
        username: &caller.username,
        roles: roles_of(caller),
        csrf_token: &current.csrf_token,
        may_scan,
        tickets,
    }
    .render();
    page(StatusCode::OK, html)
}

/// The last scan's answer, for people at the door.
struct ScanResult {
    /// `admitted`, `refused` or `warning` (the colour; the words say it too).
    kind: &'static str,
    headline: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "scan.html")]
struct ScanPage<'a> {
    username: &'a str,
    roles: String,
    csrf_token: &'a str,
    may_scan: bool,
    result: Option<ScanResult>,
    admitted: u64,
}

/// The scan page for a caller who may scan; 403 for anyone else.
async fn render_scan(
    state: &AppState,
    current: &sessions::Session,
    result: Option<ScanResult>,
) -> Response {
    let caller = &current.caller;
    match checkins::may_scan(state, caller).await {
        Ok(true) => {}
        Ok(false) => {
            return error_page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Only those who run events scan tickets.",
            );
        }
        Err(e) => return refusal(e),
    }
    // Since midnight where the event happens (the configured time zone).
    let tz = state.config.time_zone;
    let today = Utc::now()
        .with_timezone(&tz)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|midnight| chrono::TimeZone::from_local_datetime(&tz, &midnight).earliest())
        .map_or_else(
            || Utc::now() - chrono::Duration::hours(24),
            |t| t.with_timezone(&Utc),
        );
    let admitted = match checkins::admitted_by(state, caller, today).await {
        Ok(n) => n,
        Err(e) => return refusal(e),
    };
    let html = ScanPage {
        username: &caller.username,
        roles: roles_of(caller),
        csrf_token: &current.csrf_token,
        may_scan: true,
        result,
        admitted,
    }
    .render();
    page(StatusCode::OK, html)
}

async fn scan_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session(&state, &headers).await {
        Ok(Some((_, current))) => render_scan(&state, &current, None).await,
        Ok(None) => login_redirect("/console/scan/"),
        Err(e) => refusal(e),
    }
}

async fn scan_submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let current = match session(&state, &headers).await {
        Ok(Some((_, current))) => current,
        Ok(None) => return login_redirect("/console/scan/"),
        Err(e) => return refusal(e),
    };
    let fields = form_fields(&body);
    let sent = fields.get("csrf_token").map(String::as_str).unwrap_or("");
    if !same_token(&current.csrf_token, sent) {
        return forbidden_page();
    }
    let code = fields
        .get("code")
        .map(|c| c.trim())
        .unwrap_or("")
        .to_string();
    let force = fields.get("force").is_some_and(|v| v == "true");
    let outcome = checkins::scan(
        &state,
        &current.caller,
        Scan {
            code,
            force,
            scanned_at: None,
        },
        None,
    )
    .await;
    let result = match outcome {
        Ok(a) => ScanResult {
            kind: "admitted",
            headline: format!("Admitted: {}", full_name(&a.user)),
            detail: if a.checkin.forced {
                "Not paid — admitted because you chose to.".into()
            } else {
                String::new()
            },
        },
        Err(ScanRefused::AlreadyCheckedIn { at, by }) => {
            let who = match by {
                Some(id) => match accounts::load_caller(&state, id).await {
                    Ok(Ok(scanner)) => format!(" by {}", scanner.username),
                    _ => String::new(),
                },
                None => String::new(),
            };
            let local = at.with_timezone(&state.config.time_zone);
            ScanResult {
                kind: "warning",
                headline: "Already checked in".into(),
                detail: format!("At {}{who}.", local.format("%H:%M on %a %-d %b")),
            }
        }
        Err(ScanRefused::InvalidCode) => refused("Invalid ticket", "This is not a ticket of ours."),
        Err(ScanRefused::Revoked) => refused(
            "Ticket cancelled",
            "This registration no longer exists.",
        ),
        Err(ScanRefused::Forbidden) => refused(
            "Another event's ticket",
            "You do not run the event this ticket is for.",
        ),
        Err(ScanRefused::EventCancelled) => refused("Event cancelled", "This event is cancelled."),
        Err(ScanRefused::Unpaid) => ScanResult {
            kind: "warning",
            headline: "Not paid".into(),
            detail: "The ticket has no completed payment. Tick \"Admit even if not paid\" to let them in."
                .into(),
        },
        Err(ScanRefused::Replay(_)) => refused("Already answered", "This scan was sent twice."),
        Err(ScanRefused::Failed(e)) => return refusal(e),
    };
    render_scan(&state, &current, Some(result)).await
}

fn refused(headline: &str, detail: &str) -> ScanResult {
    ScanResult {
        kind: "refused",
        headline: headline.into(),
        detail: detail.into(),
    }
}

/// The person's name and username, for door staff.
fn full_name(user: &crate::db::entities::user::Model) -> String {
    let name = person(user);
    if name == user.username {
        name
    } else {
        format!("{name} ({})", user.username)
    }
}

/// The link to another page of a list, its other parameters kept.
fn page_link(path: &str, q: &str, number: u64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        query.append_pair("q", q);
    }
    query.append_pair("page", &number.to_string());
    format!("{path}?{}", query.finish())
}

/// "1–50 of 10,000" and the previous/next links of a page.
struct Pager {
    first: u64,
    last: u64,
    count: u64,
    previous: Option<String>,
    next: Option<String>,
}

fn pager<T>(page: &crate::domain::Page<T>, path: &str, q: &str) -> Pager {
    let first = if page.count == 0 {
        0
    } else {
        (page.number - 1) * page.size + 1
    };
    Pager {
        first,
        last: first + page.items.len() as u64 - u64::from(first > 0),
        count: page.count,
        previous: (page.number > 1).then(|| page_link(path, q, page.number - 1)),
        next: (page.number < page.total_pages).then(|| page_link(path, q, page.number + 1)),
    }
}

fn page_number(query: Option<&str>) -> u64 {
    query_value(query, "page")
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1)
}

struct EventListRow {
    id: uuid::Uuid,
    name: String,
    status: String,
    starts: String,
    location: String,
    registered: i64,
    quota: i64,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage<'a> {
    username: &'a str,
    roles: String,
    csrf_token: &'a str,
    may_scan: bool,
    q: String,
    rows: Vec<EventListRow>,
    first: u64,
    last: u64,
    count: u64,
    previous: Option<String>,
    next: Option<String>,
}

/// The events the user manages (all for superuser and admin), searchable.
async fn events_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let current = match session(&state, &headers).await {
        Ok(Some((_, current))) => current,
        Ok(None) => return login_redirect("/console/events/"),
        Err(e) => return refusal(e),
    };
    let caller = &current.caller;
    let q = query_value(query.as_deref(), "q")
        .map(|q| q.trim().to_string())
        .unwrap_or_default();
    let filter = EventFilter {
        organizer: (!caller.is_admin()).then_some(caller.id),
        search: (!q.is_empty()).then(|| q.clone()),
        ..EventFilter::default()
    };
    let request = PageRequest {
        page: page_number(query.as_deref()),
        size: 50,
    };
    let listed = async {
        let listing =
            crate::domain::events::list(&state, &filter, &[("start_time", true)], request, None)
                .await?;
        let may_scan = checkins::may_scan(&state, caller).await?;
        Ok::<_, DomainError>((listing, may_scan))
    }
    .await;
    let (listing, may_scan) = match listed {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let p = pager(&listing, "/console/events/", &q);
    let rows = listing
        .items
        .into_iter()
        .map(|e| EventListRow {
            starts: when(&state, &e.start_time),
            id: e.id,
            name: e.name,
            status: e.status,
            location: e.location,
            registered: e.registered,
            quota: e.quota,
        })
        .collect();
    let html = EventsPage {
        username: &caller.username,
        roles: roles_of(caller),
        csrf_token: &current.csrf_token,
        may_scan,
        q,
        rows,
        first: p.first,
        last: p.last,
        count: p.count,
        previous: p.previous,
        next: p.next,
    }
    .render();
    page(StatusCode::OK, html)
}

/// Money in minor units as people read it: `Rp 150.000` style is a locale
/// choice; this uses thousands separators and two decimals when needed.
fn money_text(minor: i64) -> String {
    let units = minor / 100;
    let cents = (minor % 100).abs();
    let digits = units.abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if minor < 0 { "-" } else { "" };
    if cents == 0 {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{cents:02}")
    }
}

struct TicketRow {
    name: String,
    price: String,
    sold: i64,
    quota: i64,
    available: i64,
    checked_in: u64,
}

struct RosterLine {
    name: String,
    email: String,
    ticket: String,
    registered: String,
    payment: String,
    checked_in: String,
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage<'a> {
    username: &'a str,
    roles: String,
    csrf_token: &'a str,
    may_scan: bool,
    id: uuid::Uuid,
    name: String,
    status: String,
    starts: String,
    location: String,
    quota: i64,
    registered: u64,
    paid: u64,
    checked_in: u64,
    revenue: String,
    tickets: Vec<TicketRow>,
    q: String,
    registrations: Vec<RosterLine>,
    first: u64,
    last: u64,
    count: u64,
    previous: Option<String>,
    next: Option<String>,
}

fn person(user: &crate::db::entities::user::Model) -> String {
    let name = format!("{} {}", user.first_name, user.last_name);
    let name = name.trim();
    if name.is_empty() {
        user.username.clone()
    } else {
        name.to_string()
    }
}

/// One event: its numbers, tickets and registrations. An event the user
/// does not manage is a 404, as if it did not exist.
async fn event_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let path = format!("/console/events/{id}/");
    let current = match session(&state, &headers).await {
        Ok(Some((_, current))) => current,
        Ok(None) => return login_redirect(&path),
        Err(e) => return refusal(e),
    };
    let caller = &current.caller;
    let Ok(event_id) = uuid::Uuid::parse_str(&id) else {
        return not_found_page();
    };
    let q = query_value(query.as_deref(), "q")
        .map(|q| q.trim().to_string())
        .unwrap_or_default();
    let request = PageRequest {
        page: page_number(query.as_deref()),
        size: 50,
    };
    let loaded = async {
        let event = crate::domain::events::get_managed(&state, caller, event_id).await?;
        let stats = checkins::stats(&state, caller, event_id).await?;
        let tickets = crate::domain::tickets::list(
            &state,
            Some(event_id),
            &[],
            PageRequest { page: 1, size: 100 },
            None,
        )
        .await?;
        let roster =
            crate::domain::registrations::roster(&state, caller, event_id, Some(&q), request)
                .await?;
        let may_scan = checkins::may_scan(&state, caller).await?;
        Ok::<_, DomainError>((event, stats, tickets, roster, may_scan))
    }
    .await;
    let (event, stats, tickets, roster, may_scan) = match loaded {
        Ok(found) => found,
        // Not theirs: as if it did not exist.
        Err(DomainError::Forbidden) => return not_found_page(),
        Err(e) => return refusal(e),
    };
    let admitted: std::collections::HashMap<uuid::Uuid, u64> =
        stats.tickets.iter().map(|t| (t.id, t.checked_in)).collect();
    let p = pager(&roster, &path, &q);
    let tz = state.config.time_zone;
    let html = EventPage {
        username: &caller.username,
        roles: roles_of(caller),
        csrf_token: &current.csrf_token,
        may_scan,
        id: event.id,
        starts: when(&state, &event.start_time),
        name: event.name,
        status: event.status,
        location: event.location,
        quota: event.quota,
        registered: stats.registered,
        paid: stats
            .payments
            .iter()
            .find(|(s, _)| *s == "completed")
            .map_or(0, |(_, n)| *n),
        checked_in: stats.checked_in,
        revenue: money_text(stats.revenue_minor),
        tickets: tickets
            .items
            .into_iter()
            .map(|t| TicketRow {
                available: t.available(),
                checked_in: admitted.get(&t.ticket.id).copied().unwrap_or(0),
                name: t.ticket.name,
                price: money_text(t.ticket.price_minor),
                sold: t.ticket.sold,
                quota: t.ticket.quota,
            })
            .collect(),
        q,
        registrations: roster
            .items
            .into_iter()
            .map(|r| RosterLine {
                name: person(&r.user),
                email: r.user.email,
                ticket: r.ticket,
                registered: r
                    .registration
                    .registered_at
                    .with_timezone(&tz)
                    .format("%-d %b %Y, %H:%M")
                    .to_string(),
                payment: r.payment_status.unwrap_or_else(|| "none".into()),
                checked_in: r
                    .checked_in_at
                    .map(|t| t.with_timezone(&tz).format("%-d %b, %H:%M").to_string())
                    .unwrap_or_default(),
            })
            .collect(),
        first: p.first,
        last: p.last,
        count: p.count,
        previous: p.previous,
        next: p.next,
    }
    .render();
    page(StatusCode::OK, html)
}

/// A CSV field: quoted when it holds a separator, a quote or a line break;
/// a leading `=`, `+`, `-` or `@` is neutralised so spreadsheets do not run
/// it as a formula.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// RFC 3339 in UTC with `Z`, as the API writes datetimes.
fn rfc3339(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Every registration of an event as CSV (API.md §8's header).
async fn registrations_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let current = match session(&state, &headers).await {
        Ok(Some((_, current))) => current,
        Ok(None) => return login_redirect(&format!("/console/events/{id}/")),
        Err(e) => return refusal(e),
    };
    let Ok(event_id) = uuid::Uuid::parse_str(&id) else {
        return not_found_page();
    };
    let mut csv = String::from(
        "registration_id,username,email,first_name,last_name,ticket,registered_at,payment_status,checked_in_at\r\n",
    );
    let mut number = 1;
    loop {
        let roster = match crate::domain::registrations::roster(
            &state,
            &current.caller,
            event_id,
            None,
            PageRequest {
                page: number,
                size: 500,
            },
        )
        .await
        {
            Ok(roster) => roster,
            Err(DomainError::Forbidden) => return not_found_page(),
            Err(e) => return refusal(e),
        };
        for r in &roster.items {
            let fields = [
                r.registration.id.to_string(),
                r.user.username.clone(),
                r.user.email.clone(),
                r.user.first_name.clone(),
                r.user.last_name.clone(),
                r.ticket.clone(),
                rfc3339(&r.registration.registered_at),
                r.payment_status.clone().unwrap_or_default(),
                r.checked_in_at.as_ref().map(rfc3339).unwrap_or_default(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            csv.push_str(&line.join(","));
            csv.push_str("\r\n");
        }
        if roster.number >= roster.total_pages {
            break;
        }
        number += 1;
    }
    let mut response = csv.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"registrations-{event_id}.csv\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
