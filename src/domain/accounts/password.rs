//! Password hashing (Argon2id), verification of hashes imported from Django,
//! and Django's four default password validators.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
/// stays bounded (each computation takes 19 MiB, from `MEMORY`).
static HASHING_PERMITS: LazyLock<usize> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores.saturating_sub(1).max(1)
});
static HASHING: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(*HASHING_PERMITS));

/// Argon2's working memory, reused: at most `HASHING_PERMITS` buffers of
/// the default parameters' size (19 MiB), each allocated at its first use
/// and kept, instead of 19 MiB allocated and freed per hash — which the
/// allocator kept anyway, once per malloc arena the blocking threads landed
/// in (hundreds of MiB after a login storm).
static MEMORY: BlockPool = BlockPool {
    idle: Mutex::new(Vec::new()),
};

struct BlockPool {
    idle: Mutex<Vec<Box<[Block]>>>,
}

impl BlockPool {
    /// The blocks of the default parameters (`Params::DEFAULT`).
    const BLOCKS: usize = Params::DEFAULT.block_count();

    /// A buffer of `BLOCKS` blocks: an idle one, or a new one.
    fn take(&self) -> anyhow::Result<Box<[Block]>> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(blocks) => Ok(blocks),
            None => allocate_blocks(Self::BLOCKS),
        }
    }

    /// Keeps `blocks` for the next hash, unless as many are idle as hashes
    /// may run at once (a caller outside `HASHING`, e.g. a test, may
    /// have made one more).
    fn give_back(&self, blocks: Box<[Block]>) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < *HASHING_PERMITS
        {
            idle.push(blocks);
        }
    }

    /// Runs `f` with memory for `params`: a pooled buffer for the default
    /// size or less, a one-off allocation for larger (imported) parameters.
    fn with<T>(&self, params: &Params, f: impl FnOnce(&mut [Block]) -> T) -> anyhow::Result<T> {
        let needed = params.block_count();
        if needed > Self::BLOCKS {
            let mut blocks = allocate_blocks(needed)?;
            return Ok(f(&mut blocks[..]));
        }
        let mut blocks = self.take()?;
        let result = f(&mut blocks[..needed]);
        self.give_back(blocks);
        Ok(result)
    }
}

/// `count` zeroed blocks, or an error (never an abort) if the memory is not
/// there.
fn allocate_blocks(count: usize) -> anyhow::Result<Box<[Block]>> {
    let mut blocks = Vec::new();
    blocks
        .try_reserve_exact(count)
        .map_err(|e| anyhow::anyhow!("argon2: cannot allocate {count} KiB: {e}"))?;
    blocks.resize(count, Block::new());
    Ok(blocks.into_boxed_slice())
}

/// `hash` on the blocking pool, within the hashing limit.
pub async fn hash_async(password: String) -> anyhow::Result<String> {
    let permit = HASHING
        .acquire()
        .await
        .map_err(|e| anyhow::anyhow!("hashing limiter closed: {e}"))?;
    // The permit goes with the computation: if this request is dropped
    // (client gone, timeout), the computation still runs to its end and
    // holds its memory until then, so the next one must still wait.
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        hash(&password)
    })
    .await
    .map_err(|e| anyhow::anyhow!("password hashing task failed: {e}"))?
}

/// `verify` on the blocking pool, within the hashing limit.
pub async fn verify_async(password: String, stored: String) -> anyhow::Result<Verified> {
    let permit = HASHING
        .acquire()
        .await
        .map_err(|e| anyhow::anyhow!("hashing limiter closed: {e}"))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        verify(&password, &stored)
    })
    .await
    .map_err(|e| anyhow::anyhow!("password check task failed: {e}"))
}

/// Hashes with Argon2id (default parameters: m=19456, t=2, p=1) and a
/// random 16-byte salt, in the PHC string format — the string
/// `Argon2::default().hash_password` gives. CPU-heavy: call from the
/// blocking pool.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = argon2::password_hash::try_generate_salt()
        .map_err(|e| anyhow::anyhow!("no random salt: {e}"))?;
    hash_with_salt(password, &salt)
}

fn hash_with_salt(password: &str, salt: &[u8]) -> anyhow::Result<String> {
    let params = Params::DEFAULT;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    MEMORY
        .with(&params, |blocks| {
            argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
        })?
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?,
        salt: Some(Salt::new(salt).map_err(|e| anyhow::anyhow!("argon2 salt: {e}"))?),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?),
    };
    Ok(phc.to_string())
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
    match verify_argon2(password.as_bytes(), &parsed) {
        true if imported => Verified::YesRehash,
        true => Verified::Yes,
        false => Verified::No,
    }
}

/// What `Argon2::default().verify_password` does — the algorithm, version
/// and parameters the PHC string names, its output compared in constant
/// time — with the working memory from `MEMORY`.
fn verify_argon2(password: &[u8], parsed: &PasswordHash) -> bool {
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(parsed) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let computed = MEMORY.with(&params, |blocks| {
        argon2.hash_password_into_with_memory(password, salt.as_ref(), &mut out, blocks)
    });
    matches!(computed, Ok(Ok(()))) && constant_time_eq(&out, expected.as_ref())
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
    fn pooled_memory_gives_the_strings_argon2_gives() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let salt = b"0123456789abcdef";
        let ours = hash_with_salt("Correct-Horse-9", salt).expect("hash");
        let theirs = Argon2::default()
            .hash_password_with_salt(b"Correct-Horse-9", salt)
            .expect("argon2")
            .to_string();
        assert_eq!(ours, theirs);
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(
            Argon2::default()
                .verify_password(b"Correct-Horse-9", &parsed)
                .is_ok()
        );
        // Twice more: reused memory gives the same answer.
        for _ in 0..2 {
            assert_eq!(
                hash_with_salt("Correct-Horse-9", salt).expect("hash"),
                theirs
            );
        }
    }

    #[test]
    fn other_parameters_verify_too() {
        use argon2::PasswordHasher;
        // Smaller than the pooled buffers, larger (a one-off allocation),
        // another variant and version, a 16-byte output.
        for (algorithm, version, params) in [
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(64, 3, 1, None),
            ),
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(20 * 1024, 1, 2, None),
            ),
            (
                Algorithm::Argon2i,
                Version::V0x10,
                Params::new(256, 2, 1, Some(16)),
            ),
            (
                Algorithm::Argon2d,
                Version::V0x13,
                Params::new(128, 1, 4, None),
            ),
        ] {
            let params = params.expect("params");
            let stored = Argon2::new(algorithm, version, params)
                .hash_password_with_salt(b"Other-Params-1", b"saltsaltsalt")
                .expect("argon2")
                .to_string();
            assert_eq!(verify("Other-Params-1", &stored), Verified::Yes, "{stored}");
            assert_eq!(verify("Other-Params-2", &stored), Verified::No, "{stored}");
            let django = format!("argon2{stored}");
            assert_eq!(verify("Other-Params-1", &django), Verified::YesRehash);
        }
        assert_eq!(
            verify("x", "$argon2id$v=19$m=19456,t=2,p=1$garbage"),
            Verified::No
        );
        assert_eq!(
            verify(
                "x",
                "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E"
            ),
            Verified::No
        );
    }

    #[test]
    fn hashes_at_once_each_verify() {
        let threads: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    let password = format!("Concurrent-{i}");
                    let h = hash(&password).expect("hash");
                    (password, h)
                })
            })
            .collect();
        for thread in threads {
            let (password, h) = thread.join().expect("thread");
            assert_eq!(verify(&password, &h), Verified::Yes);
        }
        let idle = MEMORY.idle.lock().expect("pool").len();
        assert!(idle <= *HASHING_PERMITS, "{idle} idle buffers");
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
