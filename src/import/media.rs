//! The Django service's poster objects: a MinIO/S3 bucket or a directory.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use super::source::MediaSource;

pub enum SourceObjects {
    Dir(PathBuf),
    S3(Box<dyn ObjectStore>, String),
}

/// What reading one object gave.
pub enum Fetched {
    Found(Bytes),
    Missing,
}

impl SourceObjects {
    pub fn open(source: &MediaSource) -> anyhow::Result<Self> {
        match source {
            MediaSource::Dir(dir) => Ok(SourceObjects::Dir(dir.clone())),
            MediaSource::S3 {
                endpoint,
                access_key,
                secret_key,
                bucket,
            } => {
                let store = AmazonS3Builder::new()
                    .with_endpoint(endpoint.trim_end_matches('/'))
                    .with_access_key_id(access_key)
                    .with_secret_access_key(secret_key)
                    .with_bucket_name(bucket)
                    .with_region("us-east-1")
                    .with_virtual_hosted_style_request(false)
                    .with_retry(RetryConfig {
                        max_retries: 3,
                        retry_timeout: Duration::from_secs(30),
                        ..Default::default()
                    })
                    .with_client_options(
                        ClientOptions::new()
                            .with_allow_http(true)
                            .with_connect_timeout(Duration::from_secs(5))
                            .with_timeout(Duration::from_secs(120)),
                    )
                    .build()
                    .context("invalid source S3 settings (--media-* / MINIO_*)")?;
                Ok(SourceObjects::S3(Box::new(store), source.describe()))
            }
        }
    }

    /// Reads one object. A missing object is an answer; an unreachable
    /// store is an error (the import stops, a re-run resumes).
    pub async fn fetch(&self, key: &str) -> anyhow::Result<Fetched> {
        match self {
            SourceObjects::Dir(dir) => {
                let Some(path) = safe_join(dir, key) else {
                    return Ok(Fetched::Missing);
                };
                match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Fetched::Found(Bytes::from(bytes))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Fetched::Missing),
                    Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
                }
            }
            SourceObjects::S3(store, description) => {
                let path = ObjectPath::parse(key).unwrap_or_else(|_| ObjectPath::from(key));
                match store.get(&path).await {
                    Ok(got) => Ok(Fetched::Found(got.bytes().await.with_context(|| {
                        format!("cannot read object {key:?} from the {description}")
                    })?)),
                    Err(object_store::Error::NotFound { .. }) => Ok(Fetched::Missing),
                    Err(e) => Err(anyhow::anyhow!(
                        "cannot read object {key:?} from the {description}: {e}"
                    )),
                }
            }
        }
    }
}

/// The file for an object key, never outside the directory (the key comes
/// from the database and could hold `..`).
fn safe_join(dir: &Path, key: &str) -> Option<PathBuf> {
    let relative = Path::new(key);
    if key.is_empty()
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(dir.join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_the_directory() {
        let dir = Path::new("/m");
        assert_eq!(safe_join(dir, "a/b.jpg"), Some(PathBuf::from("/m/a/b.jpg")));
        assert_eq!(safe_join(dir, "../etc/passwd"), None);
        assert_eq!(safe_join(dir, "/etc/passwd"), None);
        assert_eq!(safe_join(dir, ""), None);
    }
}
