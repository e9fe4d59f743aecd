//! Prometheus metrics, served as text at `/metrics`: requests by route
//! template (`/api/events/:id`), method and status; latency histograms by route; cache hits and
//! misses; e-mails sent and failed; outbox depth and dead jobs; database pool
//! usage (the last three read at scrape time).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::db::Database;

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    cache_hits: IntCounter,
    cache_misses: IntCounter,
    emails: IntCounterVec,
    checkins: IntCounterVec,
    queue_depth: IntGauge,
    dead_jobs: IntGauge,
    db_connections: IntGaugeVec,
}

/// One set per process: every server in it shares the counters.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

fn must<T>(result: prometheus::Result<T>, what: &str) -> T {
    match result {
        Ok(v) => v,
        // Metric definitions are static; a failure here is a programming error.
        Err(e) => panic!("invalid metric {what}: {e}"),
    }
}

/// The method label of requests whose method is not one the API serves.
const OTHER_METHOD: &str = "other";

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new_custom(Some("dicoevent".into()), None)
            .unwrap_or_else(|_| Registry::new());
        let http_requests = must(
            IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests by route template, method and status",
                ),
                &["route", "method", "status"],
            ),
            "http_requests_total",
        );
        let http_duration = must(
            HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "HTTP request latency by route template",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                &["route", "method"],
            ),
            "http_request_duration_seconds",
        );
        let cache_lookups = must(
            IntCounterVec::new(
                Opts::new("cache_lookups_total", "Cache lookups by result (hit, miss)"),
                &["result"],
            ),
            "cache_lookups_total",
        );
        let emails = must(
            IntCounterVec::new(
                Opts::new("emails_total", "E-mails by kind and outcome (sent, failed)"),
                &["kind", "outcome"],
            ),
            "emails_total",
        );
        let checkins = must(
            IntCounterVec::new(
                Opts::new(
                    "checkins_total",
                    "Ticket scans at the door by result (admitted, already_checked_in, invalid_code, wrong_event, revoked, forbidden, event_cancelled, not_yet_valid, event_ended, unpaid)",
                ),
                &["result"],
            ),
            "checkins_total",
        );
        let queue_depth = must(
            IntGauge::new("outbox_queue_depth", "Background jobs waiting to run"),
            "outbox_queue_depth",
        );
        let dead_jobs = must(
            IntGauge::new("outbox_dead_jobs", "Background jobs that gave up"),
            "outbox_dead_jobs",
        );
        let db_connections = must(
            IntGaugeVec::new(
                Opts::new(
                    "db_pool_connections",
                    "Database pool connections by state (idle, in_use, max)",
                ),
                &["state"],
            ),
            "db_pool_connections",
        );
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(cache_lookups.clone()),
            Box::new(emails.clone()),
            Box::new(checkins.clone()),
            Box::new(queue_depth.clone()),
            Box::new(dead_jobs.clone()),
            Box::new(db_connections.clone()),
        ] {
            must(registry.register(collector), "registration");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            cache_hits: cache_lookups.with_label_values(&["hit"]),
            cache_misses: cache_lookups.with_label_values(&["miss"]),
            emails,
            checkins,
            queue_depth,
            dead_jobs,
            db_connections,
        }
    }

    /// One request: its count and its latency. `route` is an interned
    /// route label (`api::endpoint`'s, or a constant): each worker thread
    /// keeps the series it has used, found by the label's address, so that
    /// a request neither hashes its labels nor takes the registry's lock.
    pub fn record_request(
        &self,
        route: &'static str,
        method: &Method,
        status: StatusCode,
        elapsed: Duration,
    ) {
        /// (route label's address and length, method, status) → its two
        /// series. Hashed with `FxHash`: the keys are the server's own.
        type Series =
            HashMap<(usize, usize, u8, u16), (IntCounter, Histogram), rustc_hash::FxBuildHasher>;
        thread_local! {
            static SERIES: RefCell<Series> = RefCell::new(Series::default());
        }
        let seconds = elapsed.as_secs_f64();
        let resolve = |method: &str| {
            (
                self.http_requests
                    .with_label_values(&[route, method, status.as_str()]),
                self.http_duration.with_label_values(&[route, method]),
            )
        };
        let standard = match *method {
            Method::GET => 0,
            Method::POST => 1,
            Method::PUT => 2,
            Method::PATCH => 3,
            Method::DELETE => 4,
            Method::HEAD => 5,
            Method::OPTIONS => 6,
            // The rest (CONNECT, TRACE and the methods clients invent) are
            // counted under one label, `other`: a label per invented method
            // would let any client grow the registry without bound. Rare,
            // so not remembered per thread.
            _ => {
                let (count, duration) = resolve(OTHER_METHOD);
                count.inc();
                duration.observe(seconds);
                return;
            }
        };
        let key = (
            route.as_ptr() as usize,
            route.len(),
            standard,
            status.as_u16(),
        );
        SERIES.with(|series| {
            let mut series = series.borrow_mut();
            let (count, duration) = series
                .entry(key)
                .or_insert_with(|| resolve(method.as_str()));
            count.inc();
            duration.observe(seconds);
        });
    }

    pub fn record_cache(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    pub fn record_email(&self, kind: &str, sent: bool) {
        self.emails
            .with_label_values(&[kind, if sent { "sent" } else { "failed" }])
            .inc();
    }

    pub fn record_checkin(&self, result: &str) {
        self.checkins.with_label_values(&[result]).inc();
    }

    /// The text exposition, with the scrape-time gauges refreshed: the
    /// outbox's pending and dead jobs as just counted (`None` when they
    /// could not be: the last figures stay), the database pool's usage.
    pub fn render(&self, outbox: Option<(u64, u64)>, db: &Database) -> String {
        if let Some((pending, dead)) = outbox {
            self.queue_depth.set(pending as i64);
            self.dead_jobs.set(dead as i64);
        }
        let (size, idle, max) = db.pool_usage();
        self.db_connections
            .with_label_values(&["idle"])
            .set(idle as i64);
        self.db_connections
            .with_label_values(&["in_use"])
            .set(i64::from(size) - idle as i64);
        self.db_connections
            .with_label_values(&["max"])
            .set(max as i64);
        let mut buffer = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!("cannot encode metrics: {e}");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }
}
