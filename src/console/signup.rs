//! Making an account and getting back into one (API.md §8.1): the sign-up
//! form, the e-mail verification link, and the password reset by mail.
//! The rules are the API's (`domain::accounts`); the links are
//! `domain::accounts::links`.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::{
    Fields, FormState, LOGIN_CSRF_COOKIE, SESSION_COOKIE, cookie, forbidden_page, local_next, page,
    posted, query_value, redirect_with, refusal, same_token, session, set_cookie,
};
use crate::api::pagination::Origin;
use crate::domain::accounts::links::{self, LinkRefused};
use crate::domain::accounts::{self, NewUser, Verification, sessions};
use crate::domain::{DomainError, FieldErrors};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/signup", get(signup_form).post(signup_submit))
        .route("/console/verify/{token}", get(verify))
        .route("/console/verify", post(resend))
        .route(
            "/console/password-reset",
            get(reset_request_form).post(reset_request_submit),
        )
        .route(
            "/console/password-reset/{token}",
            get(reset_form).post(reset_submit),
        )
}

/// `next`, URL-encoded for a link, or empty for the console's home.
pub(crate) fn next_query(next: &str) -> String {
    if next == "/console/" {
        String::new()
    } else {
        form_urlencoded::byte_serialize(next.as_bytes()).collect()
    }
}

/// The CSRF value of a form shown to someone not signed in (kept in a
/// cookie and sent back with the form), and whether the cookie is new.
fn anonymous_csrf(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, LOGIN_CSRF_COOKIE) {
        Some(found) if !found.is_empty() => (found.to_owned(), false),
        _ => (sessions::random_token(), true),
    }
}

/// A page for someone not signed in, setting the CSRF cookie if it is new.
fn anonymous_page(
    state: &AppState,
    status: StatusCode,
    html: Result<String, askama::Error>,
    csrf: &str,
    new: bool,
) -> Response {
    let mut response = page(status, html);
    if new {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(state, LOGIN_CSRF_COOKIE, csrf, None),
        );
    }
    response
}

/// The form's CSRF value checked against the cookie's.
fn anonymous_form(headers: &HeaderMap, body: &Bytes) -> Result<(String, Fields), Response> {
    let fields = Fields::parse(body);
    let expected = cookie(headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !same_token(expected, fields.get("csrf_token")) {
        return Err(forbidden_page());
    }
    Ok((expected.to_owned(), fields))
}

const SIGNUP_FIELDS: &[&str] = &["username", "email", "first_name", "last_name", "password"];

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage<'a> {
    csrf_token: &'a str,
    next: &'a str,
    next_query: String,
    form: &'a FormState,
}

async fn signup_form(
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
    let (csrf, new) = anonymous_csrf(&headers);
    let form = FormState::new(SIGNUP_FIELDS, &[]);
    let html = SignupPage {
        csrf_token: &csrf,
        next_query: next_query(&next),
        next: &next,
        form: &form,
    }
    .render();
    anonymous_page(&state, StatusCode::OK, html, &csrf, new)
}

async fn signup_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    origin: Origin,
    body: Bytes,
) -> Response {
    let (csrf, fields) = page_or_return!(anonymous_form(&headers, &body));
    let next = local_next(Some(fields.get("next")));
    let again = |errors: FieldErrors| {
        let form = FormState::submitted(SIGNUP_FIELDS, &fields, errors);
        let html = SignupPage {
            csrf_token: &csrf,
            next_query: next_query(&next),
            next: &next,
            form: &form,
        }
        .render();
        page(StatusCode::BAD_REQUEST, html)
    };
    let mut errors = FieldErrors::default();
    for (name, value) in [
        ("username", fields.get("username").trim()),
        ("email", fields.get("email").trim()),
        ("password", fields.get("password")),
    ] {
        if value.is_empty() {
            errors.add(name, "This field may not be blank.");
        }
    }
    for name in ["first_name", "last_name"] {
        if fields.get(name).trim().chars().count() > accounts::MAX_NAME {
            errors.add(name, "Ensure this field has no more than 150 characters.");
        }
    }
    let new = NewUser {
        username: fields.get("username").trim().to_owned(),
        email: fields.get("email").trim().to_owned(),
        password: fields.get("password").to_owned(),
        first_name: fields.get("first_name").trim().to_owned(),
        last_name: fields.get("last_name").trim().to_owned(),
        is_superuser: false,
        verification: Some(Verification {
            required: true,
            origin: origin.as_str().to_owned(),
        }),
    };
    // Every field judged at once, the blank ones included.
    if !errors.is_empty() {
        return match accounts::validate_new_user(&state, &new, errors).await {
            Err(DomainError::Invalid(errors)) => again(errors),
            Err(e) => refusal(e),
            Ok(()) => refusal(DomainError::Internal(anyhow::anyhow!(
                "blank sign-up fields judged good"
            ))),
        };
    }
    let created = match accounts::create_user(&state, new, None).await {
        Ok(created) => created,
        Err(DomainError::Invalid(errors)) => return again(errors),
        Err(e) => return refusal(e),
    };
    let caller = match accounts::load_caller(&state, created.id).await {
        Ok(Ok(caller)) => caller,
        Ok(Err(_)) => return refusal(DomainError::NotFound),
        Err(e) => return refusal(e),
    };
    let token = match sessions::start(&state, caller).await {
        Ok((token, _)) => token,
        Err(e) => return refusal(e),
    };
    let mut response = redirect_with(
        &state,
        &next,
        "ok",
        &format!(
            "Welcome, {}! We sent a link to {}: open it to verify your address, then you can register.",
            created.username, created.email
        ),
    );
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

#[derive(Template)]
#[template(path = "link.html")]
struct LinkPage<'a> {
    title: &'a str,
    message: &'a str,
    good: bool,
    next_href: &'a str,
    next_label: &'a str,
}

fn link_page(status: StatusCode, page_of: LinkPage<'_>) -> Response {
    page(status, page_of.render())
}

/// Why a link does not open, for people.
fn refused_words(why: LinkRefused, what: &str) -> String {
    match why {
        LinkRefused::Unknown => format!(
            "This link is not one of ours, or it was cut short. Copy the whole address from the mail, or ask for a new {what}."
        ),
        LinkRefused::Used => {
            format!("This link was already used. Ask for a new {what} if you need one.")
        }
        LinkRefused::Expired => format!("This link has expired. Ask for a new {what}."),
    }
}

/// The verification link: opening it verifies the address (a mail
/// program's preview opening it does no harm: it proves the mailbox).
async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let signed_in = matches!(session(&state, &headers).await, Ok(Some(_)));
    let (next_href, next_label) = if signed_in {
        ("/console/browse/", "Browse events")
    } else {
        ("/console/login", "Sign in")
    };
    match links::verify_email(&state, &token).await {
        Ok(Ok(account)) => link_page(
            StatusCode::OK,
            LinkPage {
                title: "Address verified",
                message: &format!(
                    "Thank you, {}: {} is verified. You can register for events now.",
                    account.username, account.email
                ),
                good: true,
                next_href,
                next_label,
            },
        ),
        Ok(Err(why)) => {
            let (href, label) = if signed_in {
                ("/console/", "Send a new link from the console")
            } else {
                ("/console/login", "Sign in to get a new link")
            };
            link_page(
                StatusCode::NOT_FOUND,
                LinkPage {
                    title: "This link does not work",
                    message: &refused_words(why, "verification link"),
                    good: false,
                    next_href: href,
                    next_label: label,
                },
            )
        }
        Err(e) => refusal(e),
    }
}

/// "Send the link again", from a signed-in page.
async fn resend(
    State(state): State<AppState>,
    headers: HeaderMap,
    origin: Origin,
    body: Bytes,
) -> Response {
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, "/console/").await);
    let back = local_next(Some(fields.get("next")));
    match links::resend_verification(&state, &visit.caller, origin.as_str()).await {
        Ok(true) => redirect_with(
            &state,
            &back,
            "ok",
            "A new verification link is on its way to your e-mail address.",
        ),
        Ok(false) => redirect_with(&state, &back, "ok", "Your address is already verified."),
        Err(e) => refusal(e),
    }
}

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetRequestPage<'a> {
    csrf_token: &'a str,
    email: &'a str,
    sent: bool,
    message: Option<&'a str>,
}

async fn reset_request_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (csrf, new) = anonymous_csrf(&headers);
    let html = ResetRequestPage {
        csrf_token: &csrf,
        email: "",
        sent: false,
        message: None,
    }
    .render();
    anonymous_page(&state, StatusCode::OK, html, &csrf, new)
}

async fn reset_request_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    origin: Origin,
    body: Bytes,
) -> Response {
    let (csrf, fields) = page_or_return!(anonymous_form(&headers, &body));
    let email = fields.get("email").trim();
    if !accounts::valid_email(email) {
        let html = ResetRequestPage {
            csrf_token: &csrf,
            email,
            sent: false,
            message: Some("Enter a valid e-mail address."),
        }
        .render();
        return page(StatusCode::BAD_REQUEST, html);
    }
    if let Err(e) = links::request_password_reset(&state, email, origin.as_str()).await {
        return refusal(e);
    }
    let html = ResetRequestPage {
        csrf_token: &csrf,
        email,
        sent: true,
        message: None,
    }
    .render();
    page(StatusCode::OK, html)
}

#[derive(Template)]
#[template(path = "password_new.html")]
struct NewPasswordPage<'a> {
    csrf_token: &'a str,
    token: &'a str,
    username: &'a str,
    error: Option<String>,
}

fn bad_reset_link(why: LinkRefused) -> Response {
    link_page(
        StatusCode::NOT_FOUND,
        LinkPage {
            title: "This link does not work",
            message: &refused_words(why, "password reset link"),
            good: false,
            next_href: "/console/password-reset",
            next_label: "Ask for a new link",
        },
    )
}

async fn reset_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let account = match links::reset_account(&state, &token).await {
        Ok(Ok(account)) => account,
        Ok(Err(why)) => return bad_reset_link(why),
        Err(e) => return refusal(e),
    };
    let (csrf, new) = anonymous_csrf(&headers);
    let html = NewPasswordPage {
        csrf_token: &csrf,
        token: &token,
        username: &account.username,
        error: None,
    }
    .render();
    let mut response = anonymous_page(&state, StatusCode::OK, html, &csrf, new);
    // The link's secret is in this page's address: not to be sent on.
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn reset_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let (csrf, fields) = page_or_return!(anonymous_form(&headers, &body));
    let password = fields.get("password").to_owned();
    let again = |username: &str, error: String| {
        let html = NewPasswordPage {
            csrf_token: &csrf,
            token: &token,
            username,
            error: Some(error),
        }
        .render();
        page(StatusCode::BAD_REQUEST, html)
    };
    if password.is_empty() {
        return match links::reset_account(&state, &token).await {
            Ok(Ok(account)) => again(&account.username, "Enter a new password.".into()),
            Ok(Err(why)) => bad_reset_link(why),
            Err(e) => refusal(e),
        };
    }
    match links::reset_password(&state, &token, password).await {
        Ok(Ok(account)) => {
            let mut response = redirect_with(
                &state,
                "/console/login",
                "ok",
                &format!(
                    "Your new password is set, {}. Sign in with it.",
                    account.username
                ),
            );
            // Whoever was signed in on this browser is signed out too.
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, "", Some(0)),
            );
            response
        }
        Ok(Err(why)) => bad_reset_link(why),
        Err(DomainError::Invalid(errors)) => {
            let words: Vec<String> = errors.0.into_values().flatten().collect();
            match links::reset_account(&state, &token).await {
                Ok(Ok(account)) => again(&account.username, words.join(" ")),
                Ok(Err(why)) => bad_reset_link(why),
                Err(e) => refusal(e),
            }
        }
        Err(e) => refusal(e),
    }
}
