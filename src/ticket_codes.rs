//! Ticket codes: `DE1.<payload>.<signature>`, base64url without padding.
//! The payload is the signing key's id (6 bytes), the registration id and
//! the event id (16 bytes each); the signature is Ed25519 over the ASCII of
//! `DE1.<payload>`. A door app verifies a code offline with the public keys
//! (JWK); the server also checks the registration still exists.
//!
//! About 140 characters: a QR code of version 7 at error correction M.

use std::io::Cursor;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use qrcode::{EcLevel, QrCode};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What every long code starts with.
pub const CODE_PREFIX: &str = "DE1.";
const KID_LEN: usize = 6;
const PAYLOAD_LEN: usize = KID_LEN + 16 + 16;

/// A 32-byte seed from base64 (standard or URL-safe, padded or not).
pub fn parse_seed(raw: &str) -> Result<[u8; 32], String> {
    let raw = raw.trim();
    let bytes = STANDARD
        .decode(raw)
        .or_else(|_| URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')))
        .map_err(|_| "is not base64".to_string())?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("must be 32 bytes of base64, not {}", bytes.len()))
}

/// A key id: the first bytes of the SHA-256 of the public key.
fn kid_bytes(key: &VerifyingKey) -> [u8; KID_LEN] {
    let digest = Sha256::digest(key.as_bytes());
    let mut kid = [0u8; KID_LEN];
    kid.copy_from_slice(&digest[..KID_LEN]);
    kid
}

/// The key id as text (base64url, 8 characters).
pub fn kid_of(key: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(kid_bytes(key))
}

/// A public key as base64url (the JWK `x`).
pub fn public_key_text(key: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// A public key from its base64url text.
pub fn public_key_from_text(text: &str) -> Option<VerifyingKey> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    VerifyingKey::from_bytes(&<[u8; 32]>::try_from(bytes.as_slice()).ok()?).ok()
}

/// The key that signs this server's ticket codes.
pub struct TicketSigner {
    signing: SigningKey,
    kid: String,
}

impl TicketSigner {
    /// `TICKET_SIGNING_KEY`, or a seed generated once into
    /// `<data dir>/ticket_key` (base64) so codes survive restarts.
    pub fn load(configured: Option<[u8; 32]>, data_dir: &Path) -> anyhow::Result<Self> {
        let seed = match configured {
            Some(seed) => seed,
            None => load_or_create_seed(&data_dir.join("ticket_key"))?,
        };
        Ok(Self::from_seed(&seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let kid = kid_of(&signing.verifying_key());
        TicketSigner { signing, kid }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The code of a registration for an event.
    pub fn sign(&self, registration: Uuid, event: Uuid) -> String {
        let mut payload = Vec::with_capacity(PAYLOAD_LEN);
        payload.extend_from_slice(&kid_bytes(&self.signing.verifying_key()));
        payload.extend_from_slice(registration.as_bytes());
        payload.extend_from_slice(event.as_bytes());
        let signed = format!("{CODE_PREFIX}{}", URL_SAFE_NO_PAD.encode(&payload));
        let signature = self.signing.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

fn load_or_create_seed(path: &Path) -> anyhow::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            return parse_seed(&text).map_err(|message| {
                anyhow::anyhow!(
                    "{} {message}; delete it to have a new key generated (codes already issued stop verifying unless its public key is kept)",
                    path.display()
                )
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut seed = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut seed);
    crate::jwt::write_private_file(path, &STANDARD.encode(seed))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(seed)
}

/// A code taken apart, not yet verified.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub kid: String,
    pub registration: Uuid,
    pub event: Uuid,
    signed: String,
    signature: Signature,
}

impl Decoded {
    /// Parses `DE1.<payload>.<signature>`; `None` when malformed.
    pub fn parse(code: &str) -> Option<Decoded> {
        let code = code.trim();
        let rest = code.strip_prefix(CODE_PREFIX)?;
        let (payload_text, signature_text) = rest.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload_text).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature_text).ok()?;
        if payload.len() != PAYLOAD_LEN {
            return None;
        }
        // Canonical encodings only: a code has exactly one spelling.
        if URL_SAFE_NO_PAD.encode(&payload) != payload_text
            || URL_SAFE_NO_PAD.encode(&signature) != signature_text
        {
            return None;
        }
        let signature = Signature::from_bytes(&<[u8; 64]>::try_from(signature.as_slice()).ok()?);
        Some(Decoded {
            kid: URL_SAFE_NO_PAD.encode(&payload[..KID_LEN]),
            registration: Uuid::from_slice(&payload[KID_LEN..KID_LEN + 16]).ok()?,
            event: Uuid::from_slice(&payload[KID_LEN + 16..]).ok()?,
            signed: format!("{CODE_PREFIX}{payload_text}"),
            signature,
        })
    }

    /// Whether `key` signed it.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        key.verify_strict(self.signed.as_bytes(), &self.signature)
            .is_ok()
    }
}

/// The QR code of a ticket code (error correction M).
fn qr(code: &str) -> anyhow::Result<QrCode> {
    QrCode::with_error_correction_level(code.as_bytes(), EcLevel::M)
        .map_err(|e| anyhow::anyhow!("a ticket code does not fit a QR code: {e}"))
}

/// The QR code as SVG, at least 240 px wide.
pub fn qr_svg(code: &str) -> anyhow::Result<String> {
    Ok(qr(code)?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .build())
}

/// The QR code as PNG, at least 240 px wide.
pub fn qr_png(code: &str) -> anyhow::Result<Vec<u8>> {
    let image = qr(code)?
        .render::<image::Luma<u8>>()
        .min_dimensions(240, 240)
        .build();
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Png)
        .context("encoding a QR code as PNG")?;
    Ok(bytes.into_inner())
}

/// The characters of short codes: Crockford's base32 (no I, L, O, U).
pub const SHORT_CODE_ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// A short code's characters (50 random bits).
pub const SHORT_CODE_LEN: usize = 10;

/// A new random short code (stored without dashes, upper case).
pub fn new_short_code() -> String {
    let alphabet = SHORT_CODE_ALPHABET.as_bytes();
    let mut bytes = [0u8; SHORT_CODE_LEN];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(b & 31)]))
        .collect()
}

/// A short code drawn from `seed` (the same seed, the same code): for
/// imports, so that importing again keeps the codes people were given.
pub fn derived_short_code(seed: &[u8]) -> String {
    let alphabet = SHORT_CODE_ALPHABET.as_bytes();
    Sha256::digest(seed)
        .iter()
        .take(SHORT_CODE_LEN)
        .map(|b| char::from(alphabet[usize::from(b & 31)]))
        .collect()
}

/// A short code as typed or read aloud, as stored: case and dashes (and
/// spaces) ignored, and Crockford's look-alikes read as what they look like
/// (I and L as 1, O as 0). `None` when it cannot be a short code.
pub fn normalize_short_code(typed: &str) -> Option<String> {
    let mut code = String::with_capacity(SHORT_CODE_LEN);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'I' | 'L' => '1',
            'O' => '0',
            c if SHORT_CODE_ALPHABET.contains(c) => c,
            _ => return None,
        };
        code.push(c);
        if code.len() > SHORT_CODE_LEN {
            return None;
        }
    }
    (code.len() == SHORT_CODE_LEN).then_some(code)
}

/// A short code as printed: `7KQ4-M2XD-9P`.
pub fn format_short_code(code: &str) -> String {
    let mut shown = String::with_capacity(code.len() + 2);
    for (i, c) in code.chars().enumerate() {
        if i == 4 || i == 8 {
            shown.push('-');
        }
        shown.push(c);
    }
    shown
}

/// The QR version a code needs (for tests and the docs: ≤ 10).
pub fn qr_version(code: &str) -> anyhow::Result<i16> {
    match qr(code)?.version() {
        qrcode::Version::Normal(v) | qrcode::Version::Micro(v) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_verify_and_fit_a_small_qr_code() {
        let signer = TicketSigner::from_seed(&[7u8; 32]);
        let (registration, event) = (Uuid::now_v7(), Uuid::now_v7());
        let code = signer.sign(registration, event);
        let decoded = Decoded::parse(&code).expect("well formed");
        assert_eq!(decoded.registration, registration);
        assert_eq!(decoded.event, event);
        assert_eq!(decoded.kid, signer.kid());
        assert!(decoded.verify(&signer.verifying_key()));
        assert!(qr_version(&code).expect("fits") <= 10);
        let other = TicketSigner::from_seed(&[8u8; 32]);
        assert!(!decoded.verify(&other.verifying_key()));
        assert!(qr_png(&code).expect("png").starts_with(b"\x89PNG"));
        assert!(qr_svg(&code).expect("svg").contains("<svg"));
    }

    #[test]
    fn short_codes_read_as_people_type_them() {
        let code = new_short_code();
        assert_eq!(code.len(), SHORT_CODE_LEN);
        assert!(code.chars().all(|c| SHORT_CODE_ALPHABET.contains(c)));
        assert_ne!(code, new_short_code());
        let shown = format_short_code("7KQ4M2XD9P");
        assert_eq!(shown, "7KQ4-M2XD-9P");
        for typed in [
            "7KQ4-M2XD-9P",
            "7kq4m2xd9p",
            " 7kq4 m2xd 9p ",
            "7KQ4-M2XD-9-P",
        ] {
            assert_eq!(normalize_short_code(typed).as_deref(), Some("7KQ4M2XD9P"));
        }
        // Look-alikes read as digits; U and anything else refused.
        assert_eq!(
            normalize_short_code("ILO0-0000-00").as_deref(),
            Some("1100000000")
        );
        for bad in [
            "7KQ4-M2XD-9U",
            "7KQ4-M2XD-9",
            "7KQ4-M2XD-9PP",
            "",
            "DE1.abc",
            "7KQ4_M2XD_9P",
        ] {
            assert_eq!(normalize_short_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn seeds_are_base64_of_32_bytes() {
        assert!(parse_seed(&STANDARD.encode([1u8; 32])).is_ok());
        assert!(parse_seed(&URL_SAFE_NO_PAD.encode([1u8; 32])).is_ok());
        assert!(parse_seed("short").is_err());
        assert!(parse_seed(&STANDARD.encode([1u8; 16])).is_err());
    }
}
