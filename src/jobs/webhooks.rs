//! Sending webhook messages (API.md §11, Standard Webhooks 1.0).
//!
//! A message is made from its audit entry when its job runs, the same body
//! for every attempt: `{"type", "timestamp", "data"}`. Each attempt is
//! signed afresh (`webhook-timestamp` is the attempt's time) with the
//! endpoint's secret, and with the previous one too while a rotation is
//! under way. Redirects are not followed; an answer is awaited at most
//! `TIMEOUT`; private and loopback addresses are refused at resolution
//! (and as literals) unless `WEBHOOK_ALLOW_PRIVATE`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sea_orm::EntityTrait;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::Outcome;
use crate::db::entities::{audit_entry, outbox, webhook_endpoint};
use crate::state::AppState;

/// How long a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The waits before each retry: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
/// 20 h, 24 h (±10 % each); ten attempts in all, over about three days.
pub const SCHEDULE: [i64; 9] = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// The most of an answer's body kept in the delivery log.
const KEPT_BODY: usize = 1024;

/// The type of the message an endpoint's test sends.
pub const TEST_TYPE: &str = "webhook.test";

/// What one attempt saw, for the delivery log.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub message_type: String,
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    pub response_body: String,
    pub error: Option<String>,
}

impl Attempt {
    /// The receiver answered 410 Gone: the endpoint goes off at once.
    pub fn gone(&self) -> bool {
        self.status_code == Some(410)
    }
}

/// The wait before retry number `retry` (0-based), jittered; `None` once
/// the schedule is spent.
pub fn retry_delay(retry: usize) -> Option<chrono::Duration> {
    let base = *SCHEDULE.get(retry)?;
    let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0.9..1.1);
    Some(chrono::Duration::milliseconds(
        (base as f64 * 1000.0 * jitter) as i64,
    ))
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with a `whsec_`
/// secret; `None` for a secret that is not one.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Whether an address is one webhooks may reach without
/// `WEBHOOK_ALLOW_PRIVATE`: not loopback, private, link-local, shared,
/// unspecified, multicast, documentation or unique-local.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            // IPv4 inside IPv6: mapped, compatible (`::a.b.c.d`), NAT64
            // (64:ff9b::/96) and 6to4 (2002::/16) reach that IPv4 address.
            if let Some(v4) = v6.to_ipv4() {
                return !v6.is_loopback() && !v6.is_unspecified() && is_public(IpAddr::V4(v4));
            }
            if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
                let [.., a, b, c, d] = v6.octets();
                return is_public(IpAddr::from([a, b, c, d]));
            }
            if seg[0] == 0x2002 {
                let o = v6.octets();
                return is_public(IpAddr::from([o[2], o[3], o[4], o[5]]));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] & 0xffc0) == 0xfec0
                || (seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2] == 0x0001)
                || (seg[0] == 0x2001 && seg[1] < 0x0200)
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)
                || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0]))
        }
    }
}

/// Resolves names, keeping only public addresses: a name that resolves to
/// 127.0.0.1 (or is made to, later) cannot reach the inside.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// The client for one setting of `WEBHOOK_ALLOW_PRIVATE`: no redirects,
/// `TIMEOUT` for the whole exchange.
fn client(allow_private: bool) -> Result<&'static reqwest::Client, String> {
    static CLIENTS: [OnceLock<Result<reqwest::Client, String>>; 2] =
        [OnceLock::new(), OnceLock::new()];
    CLIENTS[usize::from(allow_private)]
        .get_or_init(|| {
            // No proxy from the environment: it would resolve (and reach)
            // what the resolver below refuses.
            let mut builder = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(TIMEOUT)
                .user_agent(concat!("DicoEvent-Webhooks/", env!("CARGO_PKG_VERSION")));
            if !allow_private {
                builder = builder.dns_resolver(Arc::new(PublicOnly));
            }
            builder.build().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Why a URL may not be called, or `None` when it may.
pub fn refusal(url: &str, allow_private: bool) -> Option<String> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Some("Enter a valid URL.".into());
    };
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Some("The URL must use https://.".into()),
    }
    let Some(host) = parsed.host_str() else {
        return Some("The URL must name a host.".into());
    };
    if !allow_private {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>()
            && !is_public(ip)
        {
            return Some("The URL must reach a public address.".into());
        }
        if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
            return Some("The URL must reach a public address.".into());
        }
    }
    None
}

/// The body of a message (the same for every attempt) and its type.
pub fn body(entry: &audit_entry::Model) -> (String, String) {
    let kind = if entry.action == crate::db::audit::Action::WebhookTested.as_str() {
        TEST_TYPE.to_owned()
    } else {
        entry.action.clone()
    };
    let mut data: Map<String, Value> = entry
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    if kind == TEST_TYPE {
        data.insert(
            "message".into(),
            Value::from("A test message from DicoEvent: this endpoint is set up."),
        );
    } else {
        data.entry("id")
            .or_insert_with(|| Value::from(entry.entity_id.clone()));
        data.insert(
            "changes".into(),
            serde_json::from_str(&entry.changes).unwrap_or(Value::Null),
        );
    }
    let body = json!({
        "type": kind,
        "timestamp": entry.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "data": data,
    });
    (body.to_string(), kind)
}

/// The signatures of one attempt: the secret's, and the previous secret's
/// while it is still valid, space-separated.
pub fn signatures(
    endpoint: &webhook_endpoint::Model,
    id: &str,
    timestamp: i64,
    body: &str,
    now: DateTime<Utc>,
) -> String {
    let mut secrets = vec![endpoint.secret.as_str()];
    if let (Some(previous), Some(until)) =
        (&endpoint.previous_secret, endpoint.previous_secret_until)
        && until > now
    {
        secrets.push(previous);
    }
    secrets
        .into_iter()
        .filter_map(|s| signature(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Retry-After`: seconds, or an HTTP date; at most a day.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<chrono::Duration> {
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = match raw.parse::<i64>() {
        Ok(seconds) => chrono::Duration::seconds(seconds),
        Err(_) => DateTime::parse_from_rfc2822(raw).ok()?.with_timezone(&Utc) - Utc::now(),
    };
    Some(wait.clamp(chrono::Duration::seconds(1), chrono::Duration::days(1)))
}

/// The first KiB of an answer's body (the rest is not read).
async fn kept_body(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < KEPT_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(KEPT_BODY);
    String::from_utf8_lossy(&kept).into_owned()
}

/// Sends one message to its endpoint: the outcome, and the attempt for the
/// log when one was made.
pub async fn run(state: &AppState, job: &outbox::Model) -> (Outcome, Option<Attempt>) {
    let (Some(endpoint_id), Some(message_id)) = (job.endpoint_id, job.message_id) else {
        return (Outcome::Skipped("the job names no endpoint".into()), None);
    };
    let db = state.db.conn();
    let endpoint = match webhook_endpoint::Entity::find_by_id(endpoint_id)
        .one(db)
        .await
    {
        Ok(Some(e)) => e,
        Ok(None) => return (Outcome::Skipped("the endpoint was deleted".into()), None),
        Err(e) => return (Outcome::Failed(e.into()), None),
    };
    if !endpoint.enabled {
        return (Outcome::Skipped("the endpoint is disabled".into()), None);
    }
    let entry = match audit_entry::Entity::find_by_id(message_id).one(db).await {
        Ok(Some(e)) => e,
        Ok(None) => return (Outcome::Skipped("the message's entry is gone".into()), None),
        Err(e) => return (Outcome::Failed(e.into()), None),
    };
    // A test message is the endpoint's own; anything else must still be
    // its owner's to see.
    let test = entry.action == crate::db::audit::Action::WebhookTested.as_str();
    match crate::db::webhooks::owner_may_see(db, &endpoint, entry.organizer_id).await {
        _ if test => {}
        Ok(true) => {}
        Ok(false) => {
            return (
                Outcome::Skipped("the endpoint's owner may no longer see this event".into()),
                None,
            );
        }
        Err(e) => return (Outcome::Failed(e.into()), None),
    }
    let allow_private = state.config.webhook_allow_private;
    let (body, message_type) = body(&entry);
    let attempt = |status_code, duration_ms, response_body, error: Option<String>| Attempt {
        message_type: message_type.clone(),
        status_code,
        duration_ms,
        response_body,
        error,
    };
    if let Some(why) = refusal(&endpoint.url, allow_private) {
        let error = format!("not sent: {why}");
        return (
            Outcome::Failed(anyhow::anyhow!(error.clone())),
            Some(attempt(None, 0, String::new(), Some(error))),
        );
    }
    let client = match client(allow_private) {
        Ok(c) => c,
        Err(e) => {
            return (
                Outcome::Failed(anyhow::anyhow!("webhook client: {e}")),
                None,
            );
        }
    };
    let id = message_id.to_string();
    // The wall clock, not the worker's: receivers check the timestamp
    // against their own clocks (5 minutes of tolerance, usually).
    let now = crate::db::now();
    let timestamp = now.timestamp();
    let signed = signatures(&endpoint, &id, timestamp, &body, now);
    let started = Instant::now();
    let sent = client
        .post(&endpoint.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signed)
        .body(body)
        .send()
        .await;
    let elapsed = || i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match sent {
        Ok(response) => {
            let status = response.status();
            let wait = retry_after(response.headers());
            let kept = kept_body(response).await;
            let code = status.as_u16();
            let logged = attempt(Some(code), elapsed(), kept, None);
            let outcome = if status.is_success() {
                Outcome::Sent
            } else if code == 410 {
                Outcome::Skipped("the receiver answered 410 Gone: endpoint disabled".into())
            } else {
                let error = anyhow::anyhow!("the receiver answered {status}");
                match wait {
                    Some(wait) => Outcome::Later(error, wait),
                    None => Outcome::Failed(error),
                }
            };
            (outcome, Some(logged))
        }
        Err(e) => {
            let what = if e.is_timeout() {
                format!("no answer within {} s", TIMEOUT.as_secs())
            } else if e.is_connect() {
                format!("could not connect: {}", root_cause(&e))
            } else {
                root_cause(&e)
            };
            (
                Outcome::Failed(anyhow::anyhow!(what.clone())),
                Some(attempt(None, elapsed(), String::new(), Some(what))),
            )
        }
    }
}

/// The innermost cause of an error, which says what happened.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Tells an endpoint's owner that it was disabled.
pub async fn notify_owner(state: &AppState, job: &outbox::Model) -> Outcome {
    let Some(endpoint_id) = job.endpoint_id else {
        return Outcome::Skipped("the job names no endpoint".into());
    };
    let found = crate::db::webhooks::endpoint_and_owner(state.db.conn(), endpoint_id).await;
    let (endpoint, owner) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return Outcome::Skipped("the endpoint or its owner was deleted".into()),
        Err(e) => return Outcome::Failed(e.into()),
    };
    let reason = endpoint
        .disabled_reason
        .clone()
        .unwrap_or_else(|| "its deliveries kept failing".into());
    let letter = super::letters::Letter {
        to: owner.email.clone(),
        subject: "A webhook endpoint was disabled".into(),
        greeting: super::letters::greeting(&owner),
        headline: format!(
            "DicoEvent stopped sending to your webhook endpoint {}.",
            endpoint.url
        ),
        event: None,
        action: None,
        ticket: None,
        details: vec![
            format!("Why: {reason}"),
            format!(
                "Messages are no longer queued for it. Once the receiver works again, enable the endpoint in the console (Webhooks) or with PATCH /api/webhooks/{}/ {{\"enabled\": true}}, and retry the failed messages from its delivery log.",
                endpoint.id
            ),
        ],
        footer: "Sent by DicoEvent because you own this webhook endpoint.".into(),
    };
    let email = match letter.into_email() {
        Ok(email) => email,
        Err(e) => return Outcome::Failed(e),
    };
    match state.mailer.send(&job.id.to_string(), &email).await {
        Ok(()) => Outcome::Sent,
        Err(e) => Outcome::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_standard_one() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(signature("not-a-secret", "id", 1, ""), None);
    }

    #[test]
    fn private_addresses_are_told_apart() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                !is_public(private.parse().expect("an address")),
                "{private}"
            );
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
        ] {
            assert!(is_public(public.parse().expect("an address")), "{public}");
        }
        assert!(refusal("http://example.com/hook", false).is_some());
        assert!(refusal("https://127.0.0.1/hook", false).is_some());
        assert!(refusal("https://[::1]/hook", false).is_some());
        assert!(refusal("https://localhost/hook", false).is_some());
        assert!(refusal("https://example.com/hook", false).is_none());
        assert!(refusal("http://127.0.0.1:9/hook", true).is_none());
        assert!(refusal("ftp://example.com/", true).is_some());
        assert!(refusal("not a url", true).is_some());
    }

    #[test]
    fn the_schedule_spans_about_three_days() {
        let total: i64 = SCHEDULE.iter().sum();
        assert_eq!(
            total,
            5 + 300 + 1_800 + 7_200 + 18_000 + 36_000 + 50_400 + 72_000 + 86_400
        );
        assert!(retry_delay(9).is_none());
        let first = retry_delay(0).expect("a first retry").num_milliseconds();
        assert!((4_500..=5_500).contains(&first), "{first}");
    }
}
