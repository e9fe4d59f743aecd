//! The door: door staff scan or type a ticket's code, the answer comes in a
//! large panel, with a running count. The same `domain::checkins::scan` as
//! `POST /api/checkins/`.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;

use super::format::full_name;
use super::{Frame, Visit, error_page, posted, refusal, render, visit};
use crate::domain::accounts;
use crate::domain::checkins::{self, Scan, ScanRefused};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/scan", get(scan_form).post(scan_submit))
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
    frame: &'a Frame,
    result: Option<ScanResult>,
    admitted: u64,
}

/// The scan page for a caller who may scan; 403 for anyone else.
async fn render_scan(state: &AppState, visit: Visit, result: Option<ScanResult>) -> Response {
    if !visit.frame.may_scan {
        return error_page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Only those who run events scan tickets.",
        );
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
    let admitted = match checkins::admitted_by(state, &visit.caller, today).await {
        Ok(n) => n,
        Err(e) => return refusal(e),
    };
    let mut frame = visit.frame;
    frame.section = "scan";
    let html = ScanPage {
        frame: &frame,
        result,
        admitted,
    }
    .render();
    render(&frame, StatusCode::OK, html)
}

async fn scan_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match visit(&state, &headers, "/console/scan/", "scan").await {
        Ok(visit) => render_scan(&state, visit, None).await,
        Err(response) => response,
    }
}

async fn scan_submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, "/console/scan/").await);
    let code = fields.get("code").trim().to_string();
    let force = fields.get("force") == "true";
    let outcome = checkins::scan(
        &state,
        &visit.caller,
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
        // The console never sends a scan time: only door apps' uploads do.
        Err(ScanRefused::BeforeRegistration) => refused(
            "Scan time refused",
            "The scan is dated before the registration was made.",
        ),
        Err(ScanRefused::Replay(_)) => refused("Already answered", "This scan was sent twice."),
        Err(ScanRefused::Failed(e)) => return refusal(e),
    };
    render_scan(&state, visit, Some(result)).await
}

fn refused(headline: &str, detail: &str) -> ScanResult {
    ScanResult {
        kind: "refused",
        headline: headline.into(),
        detail: detail.into(),
    }
}
