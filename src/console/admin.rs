//! For superuser and admin: users (superuser: activate, deactivate, groups;
//! admin: read-only, as in the API), groups (superuser), the background
//! jobs (queue depth, dead jobs, retry) and the service status.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use uuid::Uuid;

use super::format::{Pager, count, page_number, pager, short};
use super::{
    FormState, Frame, Visit, path_uuid, posted, query_text, redirect_with, refusal, refusal_words,
    render, visit,
};
use crate::domain::accounts::{self, groups, sessions};
use crate::domain::{DomainError, PageRequest, jobs};
use crate::input::{Input, Text};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/users", get(users).post(create_user))
        .route("/console/users/{id}", get(user_page))
        .route("/console/users/{id}/reset", post(send_reset))
        .route("/console/users/{id}/active", post(set_active))
        .route("/console/users/{id}/groups", post(add_group))
        .route(
            "/console/users/{id}/groups/{group}/remove",
            get(remove_group_confirm).post(remove_group),
        )
        .route("/console/groups", get(groups_page).post(create_group))
        .route("/console/groups/{id}", get(group_page).post(rename_group))
        .route(
            "/console/groups/{id}/delete",
            get(group_delete_confirm).post(delete_group),
        )
        .route("/console/jobs", get(jobs_page))
        .route("/console/jobs/{id}/retry", post(retry_job))
        .route("/console/status", get(status_page))
}

struct UserRow {
    id: Uuid,
    username: String,
    name: String,
    email: String,
    groups: String,
    is_active: bool,
    is_superuser: bool,
    joined: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage<'a> {
    frame: &'a Frame,
    q: String,
    rows: Vec<UserRow>,
    pager: Pager,
    /// The new-account form (superuser and admin).
    form: FormState,
}

/// The fields of the new-account form.
const NEW_USER_FIELDS: &[&str] = &["username", "email", "first_name", "last_name"];

async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let visit = page_or_return!(visit(&state, &headers, "/console/users/", "users").await);
    let form = FormState::new(NEW_USER_FIELDS, &[]);
    render_users(&state, visit, query.as_deref(), form, StatusCode::OK).await
}

async fn render_users(
    state: &AppState,
    visit: Visit,
    query: Option<&str>,
    form: FormState,
    status: StatusCode,
) -> Response {
    let state = state.clone();
    let Visit { caller, frame, .. } = visit;
    let q = query_text(query, "q");
    let request = PageRequest {
        page: page_number(query),
        size: 50,
    };
    let listing = match accounts::list_users(
        &state,
        &caller,
        (!q.is_empty()).then_some(q.as_str()),
        request,
    )
    .await
    {
        Ok(listing) => listing,
        Err(e) => return refusal(e),
    };
    let pager = pager(&listing, "/console/users/", &[("q", &q)]);
    let rows = listing
        .items
        .into_iter()
        .map(|u| UserRow {
            id: u.user.id,
            name: super::format::person(&u.user),
            joined: short(&state, &u.user.date_joined),
            username: u.user.username,
            email: u.user.email,
            groups: u.groups.join(", "),
            is_active: u.user.is_active,
            is_superuser: u.user.is_superuser,
        })
        .collect();
    let html = UsersPage {
        frame: &frame,
        q,
        rows,
        pager,
        form,
    }
    .render();
    render(&frame, status, html)
}

/// An admin makes an account for someone: no password is set by anyone
/// but its owner, who gets a link to choose one.
async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    origin: crate::api::pagination::Origin,
    body: Bytes,
) -> Response {
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, "/console/users/").await);
    if !visit.caller.is_admin() {
        return super::forbidden_page();
    }
    let mut errors = crate::domain::FieldErrors::default();
    for name in ["username", "email"] {
        if fields.get(name).trim().is_empty() {
            errors.add(name, "This field may not be blank.");
        }
    }
    let new = accounts::NewUser {
        username: fields.get("username").trim().to_owned(),
        email: fields.get("email").trim().to_owned(),
        // Unknown to everyone: the owner chooses theirs through the link.
        password: format!("{}-Aa1", sessions::random_token()),
        first_name: fields.get("first_name").trim().to_owned(),
        last_name: fields.get("last_name").trim().to_owned(),
        is_superuser: false,
        verification: None,
    };
    let again = |errors| FormState::submitted(NEW_USER_FIELDS, &fields, errors);
    if !errors.is_empty() {
        return match accounts::validate_new_user(&state, &new, errors).await {
            Err(DomainError::Invalid(errors)) => {
                render_users(&state, visit, None, again(errors), StatusCode::BAD_REQUEST).await
            }
            Err(e) => refusal(e),
            Ok(()) => refusal(DomainError::Internal(anyhow::anyhow!(
                "blank account fields judged good"
            ))),
        };
    }
    let created = match accounts::create_user(&state, new, Some(visit.caller.audit())).await {
        Ok(created) => created,
        Err(DomainError::Invalid(errors)) => {
            return render_users(&state, visit, None, again(errors), StatusCode::BAD_REQUEST).await;
        }
        Err(e) => return refusal(e),
    };
    match crate::domain::accounts::links::send_reset_for(
        &state,
        &visit.caller,
        created.id,
        origin.as_str(),
    )
    .await
    {
        Ok(_) => redirect_with(
            &state,
            &format!("/console/users/{}/", created.id),
            "ok",
            &format!(
                "Account {} created. A link to choose a password is on its way to {}.",
                created.username, created.email
            ),
        ),
        Err(e) => refusal(e),
    }
}

/// An admin sends an account a link to choose a new password.
async fn send_reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    origin: crate::api::pagination::Origin,
    body: Bytes,
) -> Response {
    let back = format!("/console/users/{id}/");
    let (visit, _) = page_or_return!(posted(&state, &headers, &body, &back).await);
    let id = page_or_return!(path_uuid(&id));
    match crate::domain::accounts::links::send_reset_for(&state, &visit.caller, id, origin.as_str())
        .await
    {
        Ok(user) => redirect_with(
            &state,
            &back,
            "ok",
            &format!(
                "A link to choose a new password is on its way to {}.",
                user.email
            ),
        ),
        Err(e @ (DomainError::NotFound | DomainError::Forbidden)) => refusal(e),
        Err(e) => redirect_with(&state, &back, "error", &refusal_words(&e)),
    }
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage<'a> {
    frame: &'a Frame,
    id: Uuid,
    username: String,
    name: String,
    email: String,
    is_active: bool,
    is_superuser: bool,
    is_self: bool,
    joined: String,
    /// The user's groups: (id, name); the id is 0 for an admin's read-only view.
    member_of: Vec<(i32, String)>,
    /// Groups the user could join (superuser only).
    others: Vec<(i32, String)>,
}

async fn user_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/users/{id}/");
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, &here, "users").await);
    let id = page_or_return!(path_uuid(&id));
    let loaded = async {
        accounts::authorize_list(&caller)?;
        let found = accounts::get_user(&state, &caller, id).await?;
        let all = if caller.is_superuser {
            groups::list(
                &state,
                &caller,
                PageRequest {
                    page: 1,
                    size: 1000,
                },
            )
            .await?
            .items
        } else {
            Vec::new()
        };
        Ok::<_, DomainError>((found, all))
    }
    .await;
    let (found, all) = match loaded {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let (member_of, others) = if caller.is_superuser {
        all.into_iter()
            .map(|g| (g.id, g.name))
            .partition(|(_, name)| found.groups.contains(name))
    } else {
        (
            found.groups.iter().map(|g| (0, g.clone())).collect(),
            Vec::new(),
        )
    };
    let html = UserPage {
        frame: &frame,
        id: found.user.id,
        name: super::format::person(&found.user),
        joined: short(&state, &found.user.date_joined),
        is_self: found.user.id == caller.id,
        username: found.user.username,
        email: found.user.email,
        is_active: found.user.is_active,
        is_superuser: found.user.is_superuser,
        member_of,
        others,
    }
    .render();
    render(&frame, StatusCode::OK, html)
}

async fn set_active(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let back = format!("/console/users/{id}/");
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, &back).await);
    let id = page_or_return!(path_uuid(&id));
    let active = fields.get("active") == "true";
    match accounts::set_active(&state, &visit.caller, id, active).await {
        Ok(user) => redirect_with(
            &state,
            &back,
            "ok",
            &if active {
                format!("{} can sign in again.", user.username)
            } else {
                format!(
                    "{} is deactivated: signed out everywhere, their tokens refused.",
                    user.username
                )
            },
        ),
        Err(e @ (DomainError::NotFound | DomainError::Forbidden)) => refusal(e),
        Err(e) => redirect_with(&state, &back, "error", &refusal_words(&e)),
    }
}

async fn add_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let back = format!("/console/users/{id}/");
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, &back).await);
    let id = page_or_return!(path_uuid(&id));
    let Ok(group_id) = fields.get("group").trim().parse::<i32>() else {
        return redirect_with(&state, &back, "error", "Choose a group.");
    };
    match groups::assign(&state, &visit.caller, id, group_id).await {
        Ok(done) => redirect_with(
            &state,
            &back,
            "ok",
            &if done.created {
                format!("{} added to {}.", done.user.username, done.group.name)
            } else {
                format!("{} already was in {}.", done.user.username, done.group.name)
            },
        ),
        Err(e @ DomainError::Forbidden) => refusal(e),
        Err(e) => redirect_with(&state, &back, "error", &refusal_words(&e)),
    }
}

/// The confirmation step before a membership is removed.
async fn remove_group_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, group)): Path<(String, String)>,
) -> Response {
    let here = format!("/console/users/{id}/groups/{group}/remove");
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, &here, "users").await);
    let id = page_or_return!(path_uuid(&id));
    let Ok(group_id) = group.parse::<i32>() else {
        return super::not_found_page();
    };
    let loaded = async {
        let group = groups::get(&state, &caller, group_id).await?;
        let found = accounts::get_user(&state, &caller, id).await?;
        if !found.groups.contains(&group.name) {
            return Err(DomainError::NotFound);
        }
        Ok((found, group))
    }
    .await;
    let (found, group) = match loaded {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let loses = match group.name.to_lowercase().as_str() {
        "organizer" => {
            "They can no longer create events; the events they organise stay theirs.".to_string()
        }
        "admin" => "They can no longer manage every event, payment and account.".to_string(),
        _ => format!(
            "What the group “{}” allows ends with their next request.",
            group.name
        ),
    };
    super::attendee::Confirm {
        frame: &frame,
        title: "Remove from this group?".into(),
        question: format!(
            "Remove {} ({}) from the group “{}”?",
            super::format::person(&found.user),
            found.user.username,
            group.name
        ),
        consequences: vec![loses],
        action: here,
        button: "Remove from group",
        back: format!("/console/users/{id}/"),
        fields: Vec::new(),
    }
    .page()
}

async fn remove_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, group)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let back = format!("/console/users/{id}/");
    let (visit, _) = page_or_return!(posted(&state, &headers, &body, &back).await);
    let id = page_or_return!(path_uuid(&id));
    let Ok(group_id) = group.parse::<i32>() else {
        return super::not_found_page();
    };
    match groups::unassign(&state, &visit.caller, id, group_id).await {
        Ok(()) => redirect_with(&state, &back, "ok", "Removed from the group."),
        Err(e @ DomainError::Forbidden) => refusal(e),
        Err(e) => redirect_with(&state, &back, "error", &refusal_words(&e)),
    }
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage<'a> {
    frame: &'a Frame,
    rows: Vec<(i32, String, String)>,
    form: FormState,
}

async fn render_groups(
    state: &AppState,
    visit: Visit,
    form: FormState,
    status: StatusCode,
) -> Response {
    let Visit {
        caller, mut frame, ..
    } = visit;
    frame.section = "groups";
    let loaded = async {
        let all = groups::list(
            state,
            &caller,
            PageRequest {
                page: 1,
                size: 1000,
            },
        )
        .await?;
        let members = groups::member_counts(state, &caller).await?;
        Ok::<_, DomainError>((all, members))
    }
    .await;
    let (all, members) = match loaded {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let rows = all
        .items
        .into_iter()
        .map(|g| {
            let n = members.get(&g.id).copied().unwrap_or(0);
            (g.id, g.name, count(n))
        })
        .collect();
    let html = GroupsPage {
        frame: &frame,
        rows,
        form,
    }
    .render();
    render(&frame, status, html)
}

async fn groups_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match visit(&state, &headers, "/console/groups/", "groups").await {
        Ok(visit) => {
            render_groups(
                &state,
                visit,
                FormState::new(&["name"], &[]),
                StatusCode::OK,
            )
            .await
        }
        Err(response) => response,
    }
}

async fn create_group(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (visit, fields) =
        page_or_return!(posted(&state, &headers, &body, "/console/groups/").await);
    if let Err(e) = groups::authorize(&visit.caller) {
        return refusal(e);
    }
    let mut input = Input::new(fields.to_json(&["name"]), false);
    let name = input.text("name", Text::required(groups::MAX_NAME));
    let outcome = match name.filter(|_| input.errors.is_empty()) {
        Some(name) => groups::create(&state, &visit.caller, name).await,
        None => Err(DomainError::Invalid(input.errors)),
    };
    match outcome {
        Ok(created) => redirect_with(
            &state,
            "/console/groups/",
            "ok",
            &format!("Group “{}” created.", created.name),
        ),
        Err(DomainError::Invalid(errors)) => {
            let form = FormState::submitted(&["name"], &fields, errors);
            render_groups(&state, visit, form, StatusCode::BAD_REQUEST).await
        }
        Err(e) => refusal(e),
    }
}

struct DeadJob {
    id: Uuid,
    kind: String,
    subject: String,
    attempts: i32,
    error: String,
    died: String,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage<'a> {
    frame: &'a Frame,
    pending: String,
    dead: String,
    jobs: Vec<DeadJob>,
    pager: Pager,
}

async fn jobs_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, "/console/jobs/", "jobs").await);
    let request = PageRequest {
        page: page_number(query.as_deref()),
        size: 50,
    };
    let overview = match jobs::overview(&state, &caller, request).await {
        Ok(overview) => overview,
        Err(e) => return refusal(e),
    };
    let pager = pager(&overview.dead_jobs, "/console/jobs/", &[]);
    let html = JobsPage {
        frame: &frame,
        pending: count(overview.pending),
        dead: count(overview.dead),
        jobs: overview
            .dead_jobs
            .items
            .into_iter()
            .map(|j| DeadJob {
                subject: j.subject(),
                id: j.id,
                kind: j.kind,
                attempts: j.attempts,
                error: j.last_error.unwrap_or_default(),
                died: short(&state, j.finished_at.as_ref().unwrap_or(&j.run_at)),
            })
            .collect(),
        pager,
    }
    .render();
    render(&frame, StatusCode::OK, html)
}

async fn retry_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (visit, _) = page_or_return!(posted(&state, &headers, &body, "/console/jobs/").await);
    let id = page_or_return!(path_uuid(&id));
    match jobs::retry(&state, &visit.caller, id).await {
        Ok(job) => redirect_with(
            &state,
            "/console/jobs/",
            "ok",
            &format!(
                "The {} job is queued again; the worker runs it shortly.",
                job.kind
            ),
        ),
        Err(e @ DomainError::Forbidden) => refusal(e),
        Err(DomainError::NotFound) => redirect_with(
            &state,
            "/console/jobs/",
            "error",
            "That job is no longer dead (already retried?).",
        ),
        Err(e) => redirect_with(&state, "/console/jobs/", "error", &refusal_words(&e)),
    }
}

struct Dependency {
    name: &'static str,
    status: String,
    backend: String,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage<'a> {
    frame: &'a Frame,
    ready: bool,
    dependencies: Vec<Dependency>,
    queue_depth: String,
    dead_jobs: String,
    version: &'static str,
}

/// What `/readyz` reports, for people.
async fn status_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, "/console/status/", "status").await);
    if let Err(e) = jobs::authorize(&caller) {
        return refusal(e);
    }
    let r = crate::readiness::check(&state).await;
    let dependency = |name, d: &crate::readiness::DependencyState| Dependency {
        name,
        status: d.status.to_string(),
        backend: d.backend.clone(),
    };
    let html = StatusPage {
        frame: &frame,
        ready: r.is_ready(),
        dependencies: vec![
            dependency("Database", &r.database),
            dependency("Object storage", &r.storage),
            dependency("Cache", &r.cache),
            dependency("Mail", &r.mail),
        ],
        queue_depth: r
            .jobs
            .queue_depth
            .map(count)
            .unwrap_or_else(|| "unknown".into()),
        dead_jobs: r
            .jobs
            .dead_jobs
            .map(count)
            .unwrap_or_else(|| "unknown".into()),
        version: env!("CARGO_PKG_VERSION"),
    }
    .render();
    render(&frame, StatusCode::OK, html)
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage<'a> {
    frame: &'a Frame,
    id: i32,
    name: String,
    /// (user id, username, name)
    members: Vec<(Uuid, String, String)>,
    form: FormState,
}

async fn render_group(
    state: &AppState,
    visit: Visit,
    id: i32,
    form: Option<FormState>,
    status: StatusCode,
) -> Response {
    let Visit {
        caller, mut frame, ..
    } = visit;
    frame.section = "groups";
    let found = match groups::get(state, &caller, id).await {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let members = match groups::members(state, &caller, id).await {
        Ok(members) => members,
        Err(e) => return refusal(e),
    };
    let form = form.unwrap_or_else(|| FormState::new(&["name"], &[("name", found.name.clone())]));
    let html = GroupPage {
        frame: &frame,
        id: found.id,
        name: found.name,
        members: members
            .iter()
            .map(|u| (u.id, u.username.clone(), super::format::person(u)))
            .collect(),
        form,
    }
    .render();
    render(&frame, status, html)
}

fn group_id(raw: &str) -> Result<i32, Response> {
    raw.parse::<i32>().map_err(|_| super::not_found_page())
}

async fn group_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/groups/{id}/");
    let visit = page_or_return!(visit(&state, &headers, &here, "groups").await);
    let id = page_or_return!(group_id(&id));
    render_group(&state, visit, id, None, StatusCode::OK).await
}

async fn rename_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let back = format!("/console/groups/{id}/");
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, &back).await);
    let id = page_or_return!(group_id(&id));
    let mut input = Input::new(fields.to_json(&["name"]), false);
    let name = input.text("name", Text::required(groups::MAX_NAME));
    let outcome = match name.filter(|_| input.errors.is_empty()) {
        Some(name) => groups::rename(&state, &visit.caller, id, Some(name)).await,
        None => Err(DomainError::Invalid(input.errors)),
    };
    match outcome {
        Ok(renamed) => redirect_with(
            &state,
            &back,
            "ok",
            &format!("Group renamed “{}”.", renamed.name),
        ),
        Err(DomainError::Invalid(errors)) => {
            let form = FormState::submitted(&["name"], &fields, errors);
            render_group(&state, visit, id, Some(form), StatusCode::BAD_REQUEST).await
        }
        Err(e) => refusal(e),
    }
}

async fn group_delete_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/groups/{id}/delete");
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, &here, "groups").await);
    let id = page_or_return!(group_id(&id));
    let (found, members) = match (
        groups::get(&state, &caller, id).await,
        groups::members(&state, &caller, id).await,
    ) {
        (Ok(found), Ok(members)) => (found, members),
        (Err(e), _) | (_, Err(e)) => return refusal(e),
    };
    let mut consequences = vec![format!(
        "Its {} {} no longer in it; their accounts stay.",
        count(members.len() as u64),
        if members.len() == 1 {
            "member is"
        } else {
            "members are"
        }
    )];
    if matches!(found.name.to_lowercase().as_str(), "admin" | "organizer") {
        consequences.push(format!(
            "“{}” is a role: its members lose what it lets them do.",
            found.name
        ));
    }
    super::attendee::Confirm {
        frame: &frame,
        title: "Delete this group?".into(),
        question: format!("Delete the group “{}”?", found.name),
        consequences,
        action: here,
        button: "Delete group",
        back: format!("/console/groups/{id}/"),
        fields: Vec::new(),
    }
    .page()
}

async fn delete_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (visit, _) = page_or_return!(posted(&state, &headers, &body, "/console/groups/").await);
    let id = page_or_return!(group_id(&id));
    let name = match groups::get(&state, &visit.caller, id).await {
        Ok(found) => found.name,
        Err(e) => return refusal(e),
    };
    match groups::delete(&state, &visit.caller, id).await {
        Ok(()) => redirect_with(
            &state,
            "/console/groups/",
            "ok",
            &format!("Group “{name}” deleted."),
        ),
        Err(e) => refusal(e),
    }
}
