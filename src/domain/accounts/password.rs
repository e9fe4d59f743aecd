//! Password hashing (Argon2id), verification of hashes imported from Django,
//! and Django's four default password validators.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;
use sha2::Sha256;

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but stored in an older scheme: store a fresh Argon2id hash.
    YesRehash,
}

/// Concurrent Argon2 computations allowed: one core is always left to the
/// async runtime, so a login storm cannot starve other requests, and memory
/// stays bounded (each computation takes 19 MiB).
static HASHING: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::sync::Semaphore::new(cores.saturating_sub(1).max(1))
});

/// `hash` on the blocking pool, within the hashing limit.
pub async fn hash_async(password: String) -> anyhow::Result<String> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| anyhow::anyhow!("hashing limiter closed: {e}"))?;
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| anyhow::anyhow!("password hashing task failed: {e}"))?
}

/// `verify` on the blocking pool, within the hashing limit.
pub async fn verify_async(password: String, stored: String) -> anyhow::Result<Verified> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| anyhow::anyhow!("hashing limiter closed: {e}"))?;
    tokio::task::spawn_blocking(move || verify(&password, &stored))
        .await
        .map_err(|e| anyhow::anyhow!("password check task failed: {e}"))
}

/// Hashes with Argon2id and a random salt (PHC string format). CPU-heavy:
/// call from the blocking pool.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let hashed: Result<PasswordHash, _> = Argon2::default().hash_password(password.as_bytes());
    hashed
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
}

/// Checks a password against a stored hash: our Argon2id PHC strings,
/// Django's `argon2$argon2id$…` and `pbkdf2_sha256$<iterations>$<salt>$<hash>`.
/// CPU-heavy: call from the blocking pool.
pub fn verify(password: &str, stored: &str) -> Verified {
    if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
        return if verify_django_pbkdf2(password, rest) {
            Verified::YesRehash
        } else {
            Verified::No
        };
    }
    let (phc, imported) = match stored.strip_prefix("argon2") {
        Some(rest) if rest.starts_with("$argon2") => (rest, true),
        _ => (stored, false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verified::No;
    };
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) if imported => Verified::YesRehash,
        Ok(()) => Verified::Yes,
        Err(_) => Verified::No,
    }
}

fn verify_django_pbkdf2(password: &str, rest: &str) -> bool {
    let mut parts = rest.splitn(3, '$');
    let (Some(iterations), Some(salt), Some(expected)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(iterations) = iterations.parse::<u32>() else {
        return false;
    };
    if iterations == 0 || iterations > 10_000_000 {
        return false;
    }
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(expected) else {
        return false;
    };
    if expected.len() != 32 {
        return false;
    }
    let mut derived = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        iterations,
        &mut derived,
    );
    constant_time_eq(&derived, &expected)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
});

/// The account attributes a password must not resemble.
pub struct UserAttributes<'a> {
    pub username: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
}

/// Django's `AUTH_PASSWORD_VALIDATORS` defaults: similarity to the user's
/// attributes, minimum length 8, not common, not entirely numeric. Returns
/// every failing rule's message.
pub fn validate(password: &str, user: &UserAttributes<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(attribute) = too_similar(password, user) {
        errors.push(format!("The password is too similar to the {attribute}."));
    }
    if password.chars().count() < 8 {
        errors
            .push("This password is too short. It must contain at least 8 characters.".to_string());
    }
    if COMMON_PASSWORDS.contains(password.to_lowercase().trim()) {
        errors.push("This password is too common.".to_string());
    }
    if !password.is_empty() && password.chars().all(|c| c.is_numeric()) {
        errors.push("This password is entirely numeric.".to_string());
    }
    errors
}

const MAX_SIMILARITY: f64 = 0.7;

/// Django's `UserAttributeSimilarityValidator`: each attribute, and each part
/// of it split on non-word characters, compared with `SequenceMatcher.quick_ratio`.
fn too_similar(password: &str, user: &UserAttributes<'_>) -> Option<&'static str> {
    let password: Vec<char> = password.to_lowercase().chars().collect();
    let attributes = [
        ("username", user.username),
        ("first name", user.first_name),
        ("last name", user.last_name),
        ("email address", user.email),
    ];
    for (name, value) in attributes {
        if value.is_empty() {
            continue;
        }
        let value = value.to_lowercase();
        let mut parts: Vec<&str> = value
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .collect();
        parts.push(&value);
        for part in parts {
            let part: Vec<char> = part.chars().collect();
            if exceeds_maximum_length_ratio(password.len(), part.len()) {
                continue;
            }
            if quick_ratio(&password, &part) >= MAX_SIMILARITY {
                return Some(name);
            }
        }
    }
    None
}

fn exceeds_maximum_length_ratio(password_len: usize, value_len: usize) -> bool {
    let length_bound_similarity = MAX_SIMILARITY / 2.0 * password_len as f64;
    password_len >= 10 * value_len && (value_len as f64) < length_bound_similarity
}

/// `difflib.SequenceMatcher(a=a, b=b).quick_ratio()`.
fn quick_ratio(a: &[char], b: &[char]) -> f64 {
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    let mut counts: HashMap<char, i64> = HashMap::new();
    for c in b {
        *counts.entry(*c).or_default() += 1;
    }
    let mut matches = 0usize;
    for c in a {
        if let Some(n) = counts.get_mut(c)
            && *n > 0
        {
            *n -= 1;
            matches += 1;
        }
    }
    2.0 * matches as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserAttributes<'static> {
        UserAttributes {
            username: "alice",
            first_name: "",
            last_name: "",
            email: "alice@example.com",
        }
    }

    #[test]
    fn argon2_round_trip() {
        let h = hash("Correct-Horse-9").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(verify("Correct-Horse-9", &h), Verified::Yes);
        assert_eq!(verify("wrong", &h), Verified::No);
    }

    #[test]
    fn django_pbkdf2_hashes_verify_and_ask_for_rehash() {
        // make_password("Secr3t-pass", salt="abc123salt", hasher="pbkdf2_sha256") with 1000 iterations.
        let mut derived = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"Secr3t-pass", b"abc123salt", 1000, &mut derived);
        let stored = format!(
            "pbkdf2_sha256$1000$abc123salt${}",
            base64::engine::general_purpose::STANDARD.encode(derived)
        );
        assert_eq!(verify("Secr3t-pass", &stored), Verified::YesRehash);
        assert_eq!(verify("nope", &stored), Verified::No);
        assert_eq!(verify("x", "pbkdf2_sha256$garbage"), Verified::No);
    }

    #[test]
    fn known_django_vector() {
        // What Django stores for make_password('lètmein', 'seasalt') at 260_000
        // iterations (Django 3.2's default), computed with Python's hashlib.
        let stored = "pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=";
        assert_eq!(verify("lètmein", stored), Verified::YesRehash);
    }

    #[test]
    fn django_validators() {
        assert!(validate("Zq8#mn4!Lw", &alice()).is_empty());
        assert!(validate("short1!", &alice())[0].contains("too short"));
        assert!(
            validate("password", &alice())
                .iter()
                .any(|e| e.contains("too common"))
        );
        assert!(
            validate("8274619305", &alice())
                .iter()
                .any(|e| e.contains("entirely numeric"))
        );
        assert!(
            validate("alice123", &alice())
                .iter()
                .any(|e| e.contains("similar to the username"))
        );
    }
}
