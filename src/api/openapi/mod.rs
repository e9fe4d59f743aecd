//! `GET /api/schema/`: the OpenAPI 3.1 document of the API, generated from
//! the code with utoipa; `GET /api/docs/`: Swagger UI reading it, served
//! from assets compiled into the binary (no network needed).

use std::sync::{Arc, LazyLock};

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{Object, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::schemas;
use crate::state::AppState;

/// Where the document is served (and what the docs page loads).
pub const SCHEMA_URL: &str = "/api/schema/";
/// The docs page. Assets are requested relative to it.
pub const DOCS_URL: &str = "/api/docs/";

/// `/api/schema` and `/api/docs`. The
/// `NormalizePathLayer` in front trims trailing slashes, so `/api/docs/`
/// arrives as `/api/docs`; assets arrive as `/api/docs/<file>`. (utoipa-swagger-ui's
/// own axum router is not used: it redirects `/api/docs` to `/api/docs/`,
/// which the trimming turns back into `/api/docs`, a redirect loop.)
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(schema))
        .routes(routes!(docs_index))
        .route("/api/docs/{*file}", get(docs_asset))
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
and returned in lower case. Every response carries `X-Request-Id` (the client's, if it sent one). \
A request whose `Host` is not allowed (`ALLOWED_HOSTS`) is answered `400 {\"detail\": \"Bad Request (400)\"}`.\n\n\
Authentication: `Authorization: Bearer <access token>` from `POST /api/login/`. An invalid or \
expired token is refused with 401 on every route that reads the header, public ones included.",
    ),
    components(
        // Schemas reached only from query parameters or reusable responses
        // are not collected from the paths.
        schemas(
            schemas::FieldErrorsBody,
            schemas::ErrorDetail,
            schemas::ValidationError,
            schemas::AuthenticationError,
            schemas::InternalError,
            schemas::EventStatus,
            schemas::PaymentStatus,
        ),
    ),
    tags(
        (name = "auth", description = "JWT tokens (SimpleJWT-compatible)"),
        (name = "users", description = "Accounts"),
        (name = "groups", description = "Roles: groups and memberships (superuser only)"),
        (name = "events", description = "Events"),
        (name = "tickets", description = "Ticket types of events"),
        (name = "registrations", description = "Registrations of users on tickets"),
        (name = "payments", description = "Payments of registrations"),
        (name = "posters", description = "Event posters in object storage"),
        (name = "checkins", description = "Signed ticket codes and check-in at the door"),
        (name = "audit", description = "The audit log: who changed what, and when"),
        (name = "waitlist", description = "Waiting lists of sold-out tickets: places in line, offers of freed seats"),
        (name = "vouchers", description = "Vouchers of an event: discounts and hidden tickets, with a use counter that never passes its limit"),
        (name = "webhooks", description = "Webhook endpoints: signed messages made from the audit log (Standard Webhooks)"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "documentation", description = "This document and its page"),
    )
)]
struct ApiDoc;

/// The standard error responses: status, name, description, schema, and
/// the header that goes with them.
type ErrorResponse = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);

const ERROR_RESPONSES: &[ErrorResponse] = &[
    (
        "400",
        "BadRequest",
        "Validation failed: field errors `{\"field\": [\"message\"]}`, or `{\"detail\": \"…\"}` for a body that is not valid JSON",
        "ValidationError",
        None,
    ),
    (
        "401",
        "Unauthorized",
        "Not authenticated: credentials missing where needed, or a token that is invalid, expired, of the wrong type or whose user no longer exists (on any endpoint that reads the `Authorization` header)",
        "AuthenticationError",
        Some(("WWW-Authenticate", "`Bearer realm=\"api\"`")),
    ),
    (
        "403",
        "Forbidden",
        "Authenticated but not allowed",
        "ErrorDetail",
        None,
    ),
    (
        "404",
        "NotFound",
        "No such resource (a malformed id in the path is a 404 too)",
        "ErrorDetail",
        None,
    ),
    (
        "405",
        "MethodNotAllowed",
        "Method not allowed on this route",
        "ErrorDetail",
        Some(("Allow", "The methods the route accepts")),
    ),
    (
        "409",
        "Conflict",
        "A business rule refuses the change (sold out, duplicate, …)",
        "ErrorDetail",
        None,
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is over the size limit (1 MiB for JSON)",
        "ErrorDetail",
        None,
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body's content type is not accepted",
        "ErrorDetail",
        None,
    ),
    (
        "429",
        "Throttled",
        "Too many failed attempts; retry later",
        "ErrorDetail",
        Some(("Retry-After", "Seconds to wait")),
    ),
    (
        "500",
        "InternalServerError",
        "A bug; the body carries the request id",
        "InternalError",
        None,
    ),
    (
        "503",
        "ServiceUnavailable",
        "A dependency this request needs (database, object storage) is unavailable, or the server is full; retry shortly",
        "ErrorDetail",
        Some(("Retry-After", "Seconds to wait")),
    ),
];

/// The example body of a standard error response.
fn error_example(status: &str) -> Option<serde_json::Value> {
    Some(match status {
        "400" => json!({"name": ["This field is required."]}),
        "403" => json!({"detail": "You do not have permission to perform this action."}),
        "404" => json!({"detail": "Not found."}),
        "405" => json!({"detail": "Method \"PATCH\" not allowed."}),
        "409" => json!({"detail": "Sold out."}),
        "413" => json!({"detail": "Request body is too large (the limit is 1 MiB)."}),
        "415" => json!({"detail": "Unsupported media type \"text/plain\" in request."}),
        "429" => json!({"detail": "Request was throttled. Expected available in 840 seconds."}),
        "503" => json!({"detail": "The database is unavailable. Try again shortly."}),
        _ => return None,
    })
}

/// The name of the standard response of an error status.
fn standard_response(status: &str) -> Option<&'static str> {
    ERROR_RESPONSES
        .iter()
        .find(|(s, ..)| *s == status)
        .map(|(_, name, ..)| *name)
}

/// The security scheme, the standard error responses, and what every
/// operation of a kind shares, set in one place rather than repeated on
/// each handler:
/// - an error status a handler lists without a body is the standard one;
/// - 401 wherever the bearer token is read (a bad token is refused even on
///   public routes), and no security requirement on routes anyone may call;
/// - optional headers typed as strings (not nullable);
/// - 400 (if not already listed), 413 and 415 wherever a JSON body is read;
/// - 503 on every `/api/` route (the database, or object storage, is down);
/// - 500 everywhere;
/// - a PATCH body is optional (none is an empty change, as in DRF);
/// - paths under `/api/` are written with their trailing slash, as the
///   Django service's clients know them (both forms are served).
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
        for (status, name, description, schema, header) in ERROR_RESPONSES {
            let mut content = ContentBuilder::new().schema(Some(Ref::from_schema_name(*schema)));
            if let Some(example) = error_example(status) {
                content = content.example(Some(example));
            }
            let mut response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", content.build());
            if let Some((header, about)) = header {
                response = response.header(
                    *header,
                    HeaderBuilder::new()
                        .schema(Some(Object::with_type(Type::String)))
                        .description(Some(*about))
                        .build(),
                );
            }
            components
                .responses
                .insert((*name).to_string(), RefOr::T(response.build()));
        }
        split_partial_updates(openapi);
        let paths = std::mem::take(&mut openapi.paths.paths);
        for (path, mut item) in paths {
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
                // A route anyone may call (a token is read if sent) has no
                // security requirement: `[{}]` makes client generators
                // demand an authenticated client for login and public reads.
                let anonymous = operation.security.as_ref().is_some_and(|requirements| {
                    serde_json::to_value(requirements)
                        .ok()
                        .and_then(|v| v.as_array().cloned())
                        .is_some_and(|all| all.iter().any(|r| r == &json!({})))
                });
                if anonymous {
                    operation.security = None;
                }
                // An optional header is a string that may be left out, never
                // a null (what utoipa writes for `Option<String>`).
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let RefOr::T(parameter) = parameter
                        && parameter.parameter_in == ParameterIn::Header
                    {
                        parameter.schema =
                            Some(RefOr::T(Schema::Object(Object::with_type(Type::String))));
                    }
                }
                let reads_json = operation
                    .request_body
                    .as_ref()
                    .is_some_and(|body| match body {
                        RefOr::T(body) => body.content.contains_key("application/json"),
                        RefOr::Ref(_) => false,
                    });
                let responses = &mut operation.responses.responses;
                for (status, response) in responses.iter_mut() {
                    if let (RefOr::T(r), Some(name)) = (&*response, standard_response(status))
                        && r.content.is_empty()
                    {
                        *response = RefOr::Ref(Ref::from_response_name(name));
                    }
                }
                let mut add = |status: &str| {
                    if let Some(name) = standard_response(status) {
                        responses
                            .entry(status.to_string())
                            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                    }
                };
                if reads_token {
                    add("401");
                }
                if reads_json {
                    add("400");
                    add("413");
                    add("415");
                }
                if path.starts_with("/api/") {
                    add("503");
                }
                add("500");
            }
            // Not after a file name (`…/ticket.svg`).
            let last = path.rsplit('/').next().unwrap_or("");
            let path = if path.starts_with("/api/") && !path.ends_with('/') && !last.contains('.') {
                format!("{path}/")
            } else {
                path
            };
            openapi.paths.paths.insert(path, item);
        }
    }
}

/// PUT and PATCH of a resource are one handler (PATCH reads its body
/// partially), so they arrive as one operation under both methods. Here the
/// PATCH copy gets its own id (`…_partial_update`) and, when the body is an
/// `…Write` schema, an `…Patch` schema derived from it: the same fields, none
/// required.
fn split_partial_updates(openapi: &mut utoipa::openapi::OpenApi) {
    let mut derived: Vec<(String, String)> = Vec::new();
    for item in openapi.paths.paths.values_mut() {
        let (Some(put), Some(patch)) = (&item.put, &mut item.patch) else {
            continue;
        };
        if put.operation_id != patch.operation_id {
            continue;
        }
        patch.operation_id = put
            .operation_id
            .as_ref()
            .map(|id| id.replacen("_update", "_partial_update", 1));
        let Some(RefOr::T(body)) = patch.request_body.as_mut() else {
            continue;
        };
        for content in body.content.values_mut() {
            let RefOr::T(content) = content else {
                continue;
            };
            let Some(RefOr::Ref(reference)) = &content.schema else {
                continue;
            };
            let Some(write) = reference
                .ref_location
                .strip_prefix("#/components/schemas/")
                .filter(|name| name.ends_with("Write"))
                .map(str::to_owned)
            else {
                continue;
            };
            let partial = format!("{}Patch", write.trim_end_matches("Write"));
            content.schema = Some(RefOr::Ref(Ref::from_schema_name(&partial)));
            derived.push((write, partial));
        }
    }
    let Some(components) = openapi.components.as_mut() else {
        return;
    };
    for (write, partial) in derived {
        if let Some(RefOr::T(Schema::Object(mut object))) = components.schemas.get(&write).cloned()
        {
            object.required.clear();
            object.description = Some(format!("A partial change: any of the fields of `{write}`."));
            components
                .schemas
                .insert(partial, RefOr::T(Schema::Object(object)));
        }
    }
}

/// The document of the given routes: the common parts (info, tags, shared
/// schemas), then what each handler declares, then the conventions.
pub fn document_of(routes: OpenApiRouter<AppState>) -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    document.merge(routes.into_openapi());
    Conventions.modify(&mut document);
    document
}

/// The document as served: built and serialised once.
static DOCUMENT_JSON: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(
        super::document()
            .to_json()
            .expect("the OpenAPI document serialises to JSON"),
    )
});

/// This OpenAPI document
#[utoipa::path(
    get, path = "/api/schema", tag = "documentation", operation_id = "schema_retrieve",
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of the API",
            content_type = "application/json", body = Object),
    )
)]
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

/// A page to read this document (Swagger UI, served from the binary)
#[utoipa::path(
    get, path = "/api/docs", tag = "documentation", operation_id = "docs_retrieve",
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "The documentation page", content_type = "text/html", body = String),
    )
)]
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
