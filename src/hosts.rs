//! The names this server answers to (`ALLOWED_HOSTS`) and the address its
//! absolute URLs point at (`PUBLIC_URL`).
//!
//! A request's `Host` is judged as Django judges it: lower-cased, its port
//! and a trailing dot dropped, then compared with each allowed name — `*`
//! is any host, `.example.com` is `example.com` and every name under it,
//! anything else is one exact name. A `Host` that is not a host name or an
//! IP address is refused whatever the list says.

/// A validated `ALLOWED_HOSTS` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// `.example.com`: `example.com` and every name under it (held without
    /// the leading dot).
    Domain(String),
    /// One name or address (an IPv6 address in brackets).
    Exact(String),
}

impl HostPattern {
    /// An `ALLOWED_HOSTS` entry, or why it cannot be one.
    pub fn parse(entry: &str) -> Result<HostPattern, String> {
        let entry = entry.trim().to_ascii_lowercase();
        if entry == "*" {
            return Ok(HostPattern::Any);
        }
        if entry.contains("://") || entry.contains('/') {
            return Err(format!(
                "{entry:?} is a URL; list host names only (e.g. events.example.com)"
            ));
        }
        if let Some(domain) = entry.strip_prefix('.') {
            if split_host(domain.as_bytes()) == Some((domain, false)) {
                return Ok(HostPattern::Domain(
                    domain.trim_end_matches('.').to_string(),
                ));
            }
        } else {
            match split_host(entry.as_bytes()) {
                Some((name, false)) => {
                    return Ok(HostPattern::Exact(name.trim_end_matches('.').to_string()));
                }
                Some((_, true)) => {
                    return Err(format!(
                        "{entry:?} has a port; list host names without one (any port is allowed)"
                    ));
                }
                None => {}
            }
        }
        Err(format!(
            "{entry:?} is not a host name, an IP address, .domain or *"
        ))
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(exact) => name.eq_ignore_ascii_case(exact),
            HostPattern::Domain(domain) => {
                name.eq_ignore_ascii_case(domain)
                    || (name.len() > domain.len()
                        && name.as_bytes()[name.len() - domain.len() - 1] == b'.'
                        && name[name.len() - domain.len()..].eq_ignore_ascii_case(domain))
            }
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Domain(domain) => write!(f, ".{domain}"),
            HostPattern::Exact(name) => f.write_str(name),
        }
    }
}

/// A `Host` value split into its name (an IPv6 address keeps its
/// brackets) and whether a port followed; `None` when it is neither a host
/// name nor an address, with or without a port (Django's
/// `host_validation_re`).
fn split_host(host: &[u8]) -> Option<(&str, bool)> {
    let (name, port) = if host.first() == Some(&b'[') {
        let close = host.iter().position(|b| *b == b']')?;
        let inner = &host[1..close];
        let ipv6 = inner.contains(&b':')
            && inner
                .iter()
                .all(|b| b.is_ascii_hexdigit() || *b == b':' || *b == b'.');
        if !ipv6 {
            return None;
        }
        (&host[..=close], &host[close + 1..])
    } else {
        match host.iter().position(|b| *b == b':') {
            Some(colon) => (&host[..colon], &host[colon..]),
            None => (host, &host[host.len()..]),
        }
    };
    if name.is_empty()
        || (name[0] != b'['
            && !name
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-'))
    {
        return None;
    }
    let has_port = match port {
        [] => false,
        [b':', digits @ ..] if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => true,
        _ => return None,
    };
    // Checked above: ASCII only.
    let name = std::str::from_utf8(name).ok()?;
    Some((name, has_port))
}

/// The allowed hosts of one server.
#[derive(Clone, Debug)]
pub struct AllowedHosts {
    patterns: Vec<HostPattern>,
}

/// The bind addresses that mean "every interface": their name is not one
/// a client would use.
fn is_wildcard(bind: &str) -> bool {
    matches!(bind, "0.0.0.0" | "::" | "[::]" | "")
}

impl AllowedHosts {
    /// `ALLOWED_HOSTS` when set; else `127.0.0.1`, `localhost`, the bind
    /// address when it is not a wildcard, and the host of `PUBLIC_URL`.
    pub fn new(configured: Option<&[HostPattern]>, bind: &str, public_url: Option<&str>) -> Self {
        if let Some(patterns) = configured {
            return AllowedHosts {
                patterns: patterns.to_vec(),
            };
        }
        let mut patterns = vec![
            HostPattern::Exact("127.0.0.1".into()),
            HostPattern::Exact("localhost".into()),
        ];
        let bind = bind.trim();
        if !is_wildcard(bind) {
            let name = if bind.contains(':') && !bind.starts_with('[') {
                format!("[{bind}]")
            } else {
                bind.to_string()
            };
            if let Ok(pattern) = HostPattern::parse(&name) {
                patterns.push(pattern);
            }
        }
        if let Some(Ok(pattern)) = public_url.and_then(public_url_host).map(HostPattern::parse) {
            patterns.push(pattern);
        }
        patterns.dedup();
        AllowedHosts { patterns }
    }

    /// Whether a request naming `host` (its `Host` header) is served.
    pub fn allows(&self, host: &[u8]) -> bool {
        let Some((name, _)) = split_host(host) else {
            return false;
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        self.patterns.iter().any(|p| p.matches(name))
    }
}

/// `PUBLIC_URL` checked: an `http://` or `https://` URL with a host and
/// no query or fragment, returned without its trailing slash.
pub fn parse_public_url(raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("{raw:?} is not an http:// or https:// URL (e.g. https://events.example.com)")
        })?;
    if rest.contains(['?', '#', '@']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{raw:?} must be a scheme, a host and optionally a port and path (no user, query or fragment)"
        ));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if split_host(authority.as_bytes()).is_none() {
        return Err(format!("{raw:?} has no valid host name"));
    }
    Ok(url.to_string())
}

/// The host name (without port) of a checked `PUBLIC_URL`.
fn public_url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    split_host(authority.as_bytes()).map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> AllowedHosts {
        let patterns: Vec<HostPattern> = list
            .iter()
            .map(|e| HostPattern::parse(e).expect("pattern"))
            .collect();
        AllowedHosts::new(Some(&patterns), "127.0.0.1", None)
    }

    #[test]
    fn hosts_are_judged_as_django_judges_them() {
        let allowed = hosts(&["events.example.com", ".example.org", "[::1]"]);
        for ok in [
            "events.example.com",
            "EVENTS.example.com:8443",
            "events.example.com.",
            "example.org",
            "a.b.example.org:80",
            "[::1]:8000",
        ] {
            assert!(allowed.allows(ok.as_bytes()), "{ok}");
        }
        for refused in [
            "evil.example",
            "events.example.com.evil",
            "badexample.org",
            "events.example.com:x",
            "events.example.com:",
            "user@events.example.com",
            "events example.com",
            "",
            "[zz::1]",
        ] {
            assert!(!allowed.allows(refused.as_bytes()), "{refused}");
        }
        assert!(hosts(&["*"]).allows(b"anything.at.all:1"));
        assert!(!hosts(&["*"]).allows(b"not a host"));
    }

    #[test]
    fn the_default_is_loopback_the_bind_address_and_the_public_host() {
        let default = AllowedHosts::new(None, "10.0.0.5", Some("https://tickets.example.com/app"));
        for ok in [
            "127.0.0.1:8000",
            "localhost",
            "10.0.0.5:8000",
            "tickets.example.com",
        ] {
            assert!(default.allows(ok.as_bytes()), "{ok}");
        }
        assert!(!default.allows(b"example.com"));
        let wildcard = AllowedHosts::new(None, "0.0.0.0", None);
        assert!(!wildcard.allows(b"0.0.0.0"));
        assert!(AllowedHosts::new(None, "::1", None).allows(b"[::1]:8000"));
    }

    #[test]
    fn bad_entries_and_urls_are_named() {
        assert!(HostPattern::parse("https://example.com").is_err());
        assert!(HostPattern::parse("example.com:8000").is_err());
        assert!(HostPattern::parse("exa mple.com").is_err());
        assert_eq!(
            HostPattern::parse(".Example.com").ok(),
            Some(HostPattern::Domain("example.com".into()))
        );
        assert_eq!(
            parse_public_url("https://events.example.com/")
                .ok()
                .as_deref(),
            Some("https://events.example.com")
        );
        assert!(parse_public_url("events.example.com").is_err());
        assert!(parse_public_url("https://events.example.com/?a=1").is_err());
        assert!(parse_public_url("https://").is_err());
    }
}
