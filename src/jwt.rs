//! SimpleJWT-compatible tokens: HS256, claims `token_type`, `exp`, `iat`,
//! `jti`, `user_id`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub token_type: TokenType,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub user_id: String,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRefused {
    /// Signed by us and of the right type, but past its expiry.
    Expired,
    /// Anything else: tampered with, of another type, not a token.
    Invalid,
}

/// Signing keys and lifetimes.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

/// Clock skew tolerated on `iat`: a token issued further in the future than
/// this was not issued by us.
const IAT_LEEWAY_SECS: i64 = 30;

impl JwtKeys {
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            access_ttl,
            refresh_ttl,
        }
    }

    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Issues a token of the given type for a user.
    pub fn issue(&self, user_id: Uuid, token_type: TokenType) -> anyhow::Result<(String, Claims)> {
        let now = Utc::now().timestamp();
        let ttl = match token_type {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh => self.refresh_ttl,
        };
        let claims = Claims {
            token_type,
            exp: now + ttl.as_secs() as i64,
            iat: now,
            jti: Uuid::new_v4().simple().to_string(),
            user_id: user_id.to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("signing a token")?;
        Ok((token, claims))
    }

    /// Verifies signature, algorithm (HS256 only: `none` and asymmetric
    /// algorithms are refused), expiry and type.
    pub fn verify(&self, token: &str, expected: TokenType) -> Option<(Claims, Uuid)> {
        self.check(token, expected).ok()
    }

    /// Like `verify`, telling an expired token (otherwise good: the client
    /// should refresh) from an invalid one (it should log in again).
    pub fn check(&self, token: &str, expected: TokenType) -> Result<(Claims, Uuid), TokenRefused> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenRefused::Expired,
                _ => TokenRefused::Invalid,
            },
        )?;
        let claims = data.claims;
        if claims.token_type != expected || claims.iat > Utc::now().timestamp() + IAT_LEEWAY_SECS {
            return Err(TokenRefused::Invalid);
        }
        let user_id = Uuid::parse_str(&claims.user_id).map_err(|_| TokenRefused::Invalid)?;
        Ok((claims, user_id))
    }
}

/// The signing secret: `SECRET_KEY`, or one generated once and kept in
/// `<data dir>/secret_key` so tokens survive restarts.
pub fn load_or_create_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("secret_key");
    match std::fs::read_to_string(&path) {
        Ok(existing) if existing.trim().len() >= 32 => {
            return Ok(existing.trim().as_bytes().to_vec());
        }
        Ok(_) => anyhow::bail!(
            "{} is too short to be a signing key; delete it to have a new one generated",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    const ALPHABET: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#%^&*(-_=+)";
    let mut rng = rand::thread_rng();
    let secret: String = (0..64)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    write_private_file(&path, &secret)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(secret.into_bytes())
}

/// Writes a new file readable by its owner only (keys, secrets).
pub(crate) fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            b"a-test-secret-of-decent-length",
            Duration::from_secs(60),
            Duration::from_secs(120),
        )
    }

    #[test]
    fn round_trip_and_type_separation() {
        let keys = keys();
        let id = Uuid::now_v7();
        let (access, _) = keys.issue(id, TokenType::Access).expect("issue");
        assert_eq!(
            keys.verify(&access, TokenType::Access).map(|c| c.1),
            Some(id)
        );
        assert!(keys.verify(&access, TokenType::Refresh).is_none());
    }

    #[test]
    fn wrong_key_is_refused() {
        let (token, _) = keys()
            .issue(Uuid::now_v7(), TokenType::Access)
            .expect("issue");
        let other = JwtKeys::new(
            b"another-secret-entirely!",
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert!(other.verify(&token, TokenType::Access).is_none());
    }
}
