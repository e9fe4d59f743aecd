//! `GET /api/schema/`: the OpenAPI 3.1 document of the API, generated from
//! the code with utoipa; `GET /api/docs/`: Swagger UI reading it, served
//! from assets compiled into the binary (no network needed).

mod paths;
pub mod schemas;

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use crate::error::ApiError;

/// Where the document is served (and what the docs page loads).
pub const SCHEMA_URL: &str = "/api/schema/";
/// The docs page. Assets are requested relative to it.
pub const DOCS_URL: &str = "/api/docs/";

/// `/schema` and `/docs` (the router is nested under `/api`). The
/// `NormalizePathLayer` in front trims trailing slashes, so `/api/docs/`
/// arrives as `/api/docs`; assets arrive as `/api/docs/<file>`. (utoipa-swagger-ui's
/// own axum router is not used: it redirects `/api/docs` to `/api/docs/`,
/// which the trimming turns back into `/api/docs`, a redirect loop.)
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/schema", get(schema))
        .route("/docs", get(docs_index))
        .route("/docs/{*file}", get(docs_asset))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DicoEvent API",
        description = "Event management: accounts and roles, events, tickets, registrations, \
payments and posters. Compatible with the Django REST Framework service it replaces: same \
URLs, fields, status codes and error shapes.\n\n\
Every route answers with and without its trailing slash. Bodies are JSON (`application/json`) \
except the poster upload (`multipart/form-data`); unknown body fields are ignored. Ids are UUID \
strings, except group ids (integers). Datetimes are accepted as RFC 3339 or naive \
`YYYY-MM-DD HH:MM[:SS]` (in the server's time zone) and returned as RFC 3339 in UTC with `Z`. \
Money is a JSON number with at most two decimals. Enumerations are accepted case-insensitively \
and returned in lower case. Every response carries `X-Request-Id` (the client's, if it sent one).\n\n\
Authentication: `Authorization: Bearer <access token>` from `POST /api/login/`. An invalid or \
expired token is refused with 401 on every route that reads the header, public ones included.",
    ),
    paths(
        paths::login,
        paths::token,
        paths::token_refresh,
        paths::logout,
        paths::users_list,
        paths::users_create,
        paths::users_me,
        paths::users_retrieve,
        paths::users_update,
        paths::users_partial_update,
        paths::users_destroy,
        paths::groups_list,
        paths::groups_create,
        paths::groups_retrieve,
        paths::groups_update,
        paths::groups_partial_update,
        paths::groups_destroy,
        paths::assign_roles_create,
        paths::assign_roles_destroy,
        paths::events_list,
        paths::events_create,
        paths::events_retrieve,
        paths::events_update,
        paths::events_partial_update,
        paths::events_destroy,
        paths::tickets_list,
        paths::tickets_create,
        paths::tickets_retrieve,
        paths::tickets_update,
        paths::tickets_partial_update,
        paths::tickets_destroy,
        paths::registrations_list,
        paths::registrations_create,
        paths::registrations_retrieve,
        paths::registrations_update,
        paths::registrations_partial_update,
        paths::registrations_destroy,
        paths::payments_list,
        paths::payments_create,
        paths::payments_retrieve,
        paths::payments_update,
        paths::payments_partial_update,
        paths::payments_destroy,
        paths::posters_create,
        paths::posters_list,
        paths::media_retrieve,
        paths::media_destroy,
        paths::healthz,
        paths::readyz,
        paths::metrics,
        paths::schema_retrieve,
        paths::docs_retrieve,
    ),
    components(
        // Schemas reached only from query parameters or reusable responses
        // are not collected from the paths.
        schemas(
            schemas::FieldErrors,
            schemas::ErrorDetail,
            schemas::ValidationError,
            schemas::AuthenticationError,
            schemas::InternalError,
            schemas::EventStatus,
            schemas::EventOrdering,
            schemas::TicketOrdering,
            schemas::PaymentStatus,
        ),
        responses(
            schemas::BadRequest,
            schemas::Unauthorized,
            schemas::Forbidden,
            schemas::NotFound,
            schemas::MethodNotAllowed,
            schemas::Conflict,
            schemas::PayloadTooLarge,
            schemas::UnsupportedMediaType,
            schemas::Throttled,
            schemas::InternalServerError,
            schemas::ServiceUnavailable,
        )
    ),
    modifiers(&Conventions),
    tags(
        (name = "auth", description = "JWT tokens (SimpleJWT-compatible)"),
        (name = "users", description = "Accounts"),
        (name = "groups", description = "Roles: groups and memberships (superuser only)"),
        (name = "events", description = "Events"),
        (name = "tickets", description = "Ticket types of events"),
        (name = "registrations", description = "Registrations of users on tickets"),
        (name = "payments", description = "Payments of registrations"),
        (name = "posters", description = "Event posters in object storage"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "documentation", description = "This document and its page"),
    )
)]
struct ApiDoc;

/// The security scheme, and what every operation of a kind shares, set in
/// one place rather than repeated on each operation:
/// - 401 wherever the bearer token is read (a bad token is refused even on
///   public routes);
/// - 400 (if not already listed), 413 and 415 wherever a JSON body is read;
/// - 503 on every `/api/` route (the database, or object storage, is down);
/// - 500 everywhere;
/// - a PATCH body is optional (none is an empty change, as in DRF).
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /api/login/` (valid 3 hours), \
                         renewed with `POST /api/token/`",
                    ))
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            if let Some(RefOr::T(body)) = item
                .patch
                .as_mut()
                .and_then(|patch| patch.request_body.as_mut())
            {
                body.required = Some(Required::False);
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let reads_token = operation.security.as_ref().is_some_and(|requirements| {
                    serde_json::to_value(requirements)
                        .map(|v| v.to_string().contains("\"jwt\""))
                        .unwrap_or(false)
                });
                let reads_json = operation
                    .request_body
                    .as_ref()
                    .is_some_and(|body| match body {
                        RefOr::T(body) => body.content.contains_key("application/json"),
                        RefOr::Ref(_) => false,
                    });
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, name: &str| {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                };
                if reads_token {
                    add("401", "Unauthorized");
                }
                if reads_json {
                    add("400", "BadRequest");
                    add("413", "PayloadTooLarge");
                    add("415", "UnsupportedMediaType");
                }
                if path.starts_with("/api/") {
                    add("503", "ServiceUnavailable");
                }
                add("500", "InternalServerError");
            }
        }
    }
}

/// The document, built from the code.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as served: built and serialised once.
static DOCUMENT_JSON: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(
        document()
            .to_json()
            .expect("the OpenAPI document serialises to JSON"),
    )
});

async fn schema() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT_JSON.clone(),
    )
        .into_response()
}

/// Swagger UI's configuration: our document, no online validator (the page
/// must work offline), the token kept across reloads.
static SWAGGER_CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        utoipa_swagger_ui::Config::from(SCHEMA_URL)
            .validator_url("none")
            .persist_authorization(true)
            .display_request_duration(true),
    )
});

async fn docs_index() -> Result<Response, ApiError> {
    docs_file("index.html")
}

async fn docs_asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    docs_file(&file)
}

/// A file of the Swagger UI distribution. `index.html` gets a `<base>` so
/// that its relative asset links resolve under `/api/docs/` whether the
/// page was asked for with or without the trailing slash.
fn docs_file(file: &str) -> Result<Response, ApiError> {
    let found = utoipa_swagger_ui::serve(file, SWAGGER_CONFIG.clone())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("serving Swagger UI's {file}: {e}")))?
        .ok_or(ApiError::NotFound)?;
    let bytes = if file == "index.html" {
        let html = String::from_utf8_lossy(&found.bytes).replacen(
            "<head>",
            &format!("<head>\n    <base href=\"{DOCS_URL}\">"),
            1,
        );
        let html = html.replacen(
            "<title>Swagger UI</title>",
            "<title>DicoEvent API</title>",
            1,
        );
        Bytes::from(html)
    } else {
        Bytes::from(found.bytes.into_owned())
    };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&found.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if found.gzpipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}
