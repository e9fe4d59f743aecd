//! SHA-256 digests written as lowercase hex: stored keys (console sessions,
//! idempotency keys), request fingerprints, object keys and checksums of
//! posters, the short digest a log line gives of an unknown username.

use sha2::{Digest, Sha256};

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `data`, in hex (64 characters).
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    hex(&Sha256::digest(data.as_ref()))
}
