//! `/metrics`: Prometheus text that reflects traffic.

use crate::helpers::TestApp;

crate::backend_tests!(metrics_parse_and_count_requests);

/// Fetches and parses `/metrics` with a Prometheus text parser.
async fn scrape(app: &TestApp) -> prometheus_parse::Scrape {
    let res = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"]
        .to_str()
        .expect("type")
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = res.text().await.expect("text");
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

async fn metrics_parse_and_count_requests(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Measured", 10).await;
    let route = [
        ("route", "/api/events/:id"),
        ("method", "GET"),
        ("status", "200"),
    ];
    let before = scrape(app).await;
    let hits_before = value(
        &before,
        "dicoevent_cache_lookups_total",
        &[("result", "hit")],
    );
    for _ in 0..3 {
        app.get(&format!("/api/events/{event}/"), None)
            .await
            .assert(200);
    }
    app.get("/api/nothing-here", None).await.assert(404);
    // A method the route does not take: counted under the route.
    let refused = app
        .client
        .delete(app.url("/api/events/"))
        .send()
        .await
        .expect("delete");
    assert_eq!(refused.status(), 405);
    // Methods clients invent share one label: they cannot grow the
    // registry one series each.
    for invented in ["FROBNICATE", "XYZZY"] {
        let method = reqwest::Method::from_bytes(invented.as_bytes()).expect("method");
        let answer = app
            .client
            .request(method, app.url("/api/events/"))
            .send()
            .await
            .expect("invented method");
        assert_eq!(answer.status(), 405);
    }
    let after = scrape(app).await;
    assert!(
        value(
            &after,
            "dicoevent_http_requests_total",
            &[
                ("route", "/api/events"),
                ("method", "other"),
                ("status", "405")
            ]
        ) >= 2.0
    );
    assert!(
        !after
            .samples
            .iter()
            .any(|s| matches!(s.labels.get("method"), Some("FROBNICATE" | "XYZZY"))),
        "no series per invented method"
    );
    let counted = value(&after, "dicoevent_http_requests_total", &route)
        - value(&before, "dicoevent_http_requests_total", &route);
    assert!(counted >= 3.0, "the three reads are counted: {counted}");
    assert!(
        value(
            &after,
            "dicoevent_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= 1.0
    );
    assert!(
        value(
            &after,
            "dicoevent_http_requests_total",
            &[
                ("route", "/api/events"),
                ("method", "DELETE"),
                ("status", "405")
            ]
        ) >= 1.0
    );
    assert!(
        value(
            &after,
            "dicoevent_cache_lookups_total",
            &[("result", "hit")]
        ) >= hits_before + 2.0
    );
    let histogram = after.samples.iter().any(|s| {
        s.metric == "dicoevent_http_request_duration_seconds"
            && s.labels.get("route") == Some("/api/events/:id")
    });
    assert!(histogram, "latency histogram by route");
    for gauge in ["dicoevent_outbox_queue_depth", "dicoevent_outbox_dead_jobs"] {
        assert!(after.samples.iter().any(|s| s.metric == gauge), "{gauge}");
    }
    assert!(value(&after, "dicoevent_db_pool_connections", &[("state", "max")]) >= 1.0);
    assert!(
        after.docs.contains_key("dicoevent_emails_total")
            || after
                .samples
                .iter()
                .all(|s| s.metric != "dicoevent_emails_total")
    );
}
