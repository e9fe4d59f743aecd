//! Signing in and out: the API's accounts, password check and login
//! throttling; a server-side session per browser.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::{
    Fields, LOGIN_CSRF_COOKIE, SESSION_COOKIE, cookie, error_page, forbidden_page, local_next,
    page, query_value, read_flash, refusal, same_token, session, set_cookie,
};
use crate::domain::DomainError;
use crate::domain::accounts::{self, login, sessions};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/login", get(login_form).post(login_submit))
        .route("/console/logout", post(logout))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf_token: &'a str,
    next: &'a str,
    username: &'a str,
    message: Option<&'a str>,
    notice: Option<&'a str>,
    next_query: String,
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
    let flash = read_flash(&headers);
    let html = LoginPage {
        csrf_token: &csrf,
        next: &next,
        username: "",
        message: None,
        notice: flash.as_ref().map(|f| f.message.as_str()),
        next_query: super::signup::next_query(&next),
    }
    .render();
    let mut response = page(StatusCode::OK, html);
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_CSRF_COOKIE, &csrf, None),
    );
    if flash.is_some() {
        headers.append(
            header::SET_COOKIE,
            set_cookie(&state, super::FLASH_COOKIE, "", Some(0)),
        );
    }
    response
}

async fn login_submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(client) = crate::connection::client_ip() else {
        tracing::error!(
            "a sign-in was not served by Application::run_until_stopped: no client address"
        );
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The server could not tell where this sign-in came from. Try again.",
        );
    };
    let fields = Fields::parse(&body);
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !same_token(expected, fields.get("csrf_token")) {
        return forbidden_page();
    }
    let next = local_next(Some(fields.get("next")));
    let username = fields.get("username").trim();
    let password = fields.get("password");
    let again = |message: &str| {
        let html = LoginPage {
            csrf_token: expected,
            next: &next,
            username,
            message: Some(message),
            notice: None,
            next_query: super::signup::next_query(&next),
        }
        .render();
        page(StatusCode::OK, html)
    };
    if username.is_empty() || password.is_empty() {
        return again("Enter your username and your password.");
    }
    let account =
        match login::verify_credentials(&state, username, password.to_string(), client).await {
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
    let fields = Fields::parse(&body);
    if !same_token(&current.csrf_token, fields.get("csrf_token")) {
        return forbidden_page();
    }
    if let Err(e) = sessions::end(&state, &token, &current.caller).await {
        return refusal(e);
    }
    let mut response = super::redirect_with(&state, "/console/login", "ok", "You are signed out.");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", Some(0)),
    );
    response
}
