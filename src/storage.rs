//! Object storage for posters: S3/MinIO when configured (path-style requests,
//! presigned GET URLs), files under `data/media/` otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::{Method, Signer};
use object_store::{
    ClientOptions, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use crate::config::{Config, S3Config};

/// How long a presigned GET URL stays valid.
pub const PRESIGNED_TTL: Duration = Duration::from_secs(3600);

/// A failure of the storage service itself (unreachable, refused), as
/// opposed to a missing object.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found")]
    NotFound,
    #[error("object storage unavailable: {0}")]
    Unavailable(String),
}

impl From<object_store::Error> for StorageError {
    fn from(err: object_store::Error) -> Self {
        match err {
            object_store::Error::NotFound { .. } => StorageError::NotFound,
            other => StorageError::Unavailable(other.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Set when the store is S3: it signs GET URLs.
    s3: Option<Arc<AmazonS3>>,
    description: String,
    /// Whether an outage is under way (one ERROR when it starts, one INFO
    /// when it ends; WARN for each failure in between).
    down: Arc<AtomicBool>,
}

impl Storage {
    /// Opens the configured storage; on S3 the bucket is created if missing.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        match &config.s3 {
            Some(s3) => Self::open_s3(s3).await,
            None => {
                let root = config.data_dir.join("media");
                std::fs::create_dir_all(&root).with_context(|| {
                    format!("cannot create the media directory {}", root.display())
                })?;
                let store = LocalFileSystem::new_with_prefix(&root)
                    .with_context(|| format!("cannot use {} for media", root.display()))?;
                Ok(Storage {
                    store: Arc::new(store),
                    s3: None,
                    description: format!("local files in {}", root.display()),
                    down: Arc::default(),
                })
            }
        }
    }

    async fn open_s3(s3: &S3Config) -> anyhow::Result<Self> {
        let store = AmazonS3Builder::new()
            .with_endpoint(s3.endpoint.trim_end_matches('/'))
            .with_access_key_id(&s3.access_key)
            .with_secret_access_key(&s3.secret_key)
            .with_bucket_name(&s3.bucket)
            .with_region(&s3.region)
            .with_virtual_hosted_style_request(false)
            // Fail fast: a request waiting on a dead storage server is a
            // request the client is waiting on too.
            .with_retry(RetryConfig {
                max_retries: 1,
                retry_timeout: Duration::from_secs(3),
                ..Default::default()
            })
            .with_client_options(
                // Plain http is allowed: a local MinIO usually has no TLS.
                ClientOptions::new()
                    .with_allow_http(true)
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_timeout(Duration::from_secs(10)),
            )
            .build()
            .context("invalid S3 settings (MINIO_*)")?;
        let store = Arc::new(store);
        let storage = Storage {
            store: store.clone(),
            s3: Some(store),
            description: format!("S3 bucket {:?} at {}", s3.bucket, s3.endpoint),
            down: Arc::default(),
        };
        // Storage down at start-up is not fatal: uploads answer 503 until it
        // is back, and the bucket is created at the first upload then.
        if let Err(e) = storage.ensure_bucket().await {
            tracing::error!(
                "cannot reach or create the S3 bucket {:?} at {} (MINIO_ENDPOINT_URL): {}",
                s3.bucket,
                s3.endpoint,
                e.root_cause()
            );
        }
        Ok(storage)
    }

    /// Creates the bucket when it does not exist (`CreateBucket` through a
    /// presigned PUT on the bucket's path-style URL).
    async fn ensure_bucket(&self) -> anyhow::Result<()> {
        let Some(s3) = &self.s3 else {
            return Ok(());
        };
        match self.store.list(None).try_next().await {
            Ok(_) => return Ok(()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) if e.to_string().contains("NoSuchBucket") => {}
            Err(e) => return Err(e.into()),
        }
        let url = s3
            .signed_url(Method::PUT, &ObjectPath::from(""), Duration::from_secs(60))
            .await?;
        let response = reqwest::Client::new()
            .put(url.as_str())
            .send()
            .await
            .context("CreateBucket request")?;
        let status = response.status();
        if !(status.is_success() || status == reqwest::StatusCode::CONFLICT) {
            anyhow::bail!(
                "CreateBucket answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        tracing::info!("Created the S3 bucket for media ({})", self.description);
        Ok(())
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    pub fn is_s3(&self) -> bool {
        self.s3.is_some()
    }

    /// Logs the start and end of an outage from the outcome of a call.
    fn observe<T>(&self, outcome: Result<T, StorageError>) -> Result<T, StorageError> {
        match &outcome {
            Err(StorageError::Unavailable(cause)) => {
                if self.down.swap(true, Ordering::AcqRel) {
                    tracing::warn!("object storage still unavailable: {cause}");
                } else {
                    tracing::error!(
                        "object storage at {} is unavailable: {cause}",
                        self.description
                    );
                }
            }
            _ => {
                if self.down.swap(false, Ordering::AcqRel) {
                    tracing::info!("object storage at {} is available again", self.description);
                }
            }
        }
        outcome
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let outcome = self.put_once(key, bytes).await;
        self.observe(outcome)
    }

    async fn put_once(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let path = ObjectPath::from(key);
        match self
            .store
            .put(&path, PutPayload::from_bytes(bytes.clone()))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if self.s3.is_some() && e.to_string().contains("NoSuchBucket") => {
                self.ensure_bucket()
                    .await
                    .map_err(|e| StorageError::Unavailable(format!("{e:#}")))?;
                self.store.put(&path, PutPayload::from_bytes(bytes)).await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let outcome = async {
            Ok(self
                .store
                .get(&ObjectPath::from(key))
                .await?
                .bytes()
                .await?)
        }
        .await;
        self.observe(outcome)
    }

    /// Deletes an object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let outcome = match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        };
        self.observe(outcome)
    }

    /// Every object under a prefix.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let prefix = ObjectPath::from(prefix);
        match self.store.list(Some(&prefix)).try_collect().await {
            Ok(objects) => Ok(objects),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// A presigned GET URL on S3; `None` for local storage.
    pub async fn presigned_get(&self, key: &str) -> Result<Option<String>, StorageError> {
        match &self.s3 {
            Some(s3) => Ok(Some(
                s3.signed_url(Method::GET, &ObjectPath::from(key), PRESIGNED_TTL)
                    .await?
                    .to_string(),
            )),
            None => Ok(None),
        }
    }

    /// Reachability, for `/readyz` and `check`.
    pub async fn ping(&self) -> Result<(), StorageError> {
        match tokio::time::timeout(Duration::from_secs(2), self.store.list(None).try_next()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(object_store::Error::NotFound { .. })) => Err(StorageError::NotFound),
            // One readable cause: object_store's messages repeat their
            // whole source chain, so the innermost error says it once.
            Ok(Err(e)) => Err(StorageError::Unavailable(innermost_cause(&e))),
            Err(_) => Err(StorageError::Unavailable("no answer within 2 s".into())),
        }
    }
}

/// The message of the deepest error in a chain (e.g. "Connection refused
/// (os error 111)"), for people: the outer layers repeat it in their own
/// messages.
pub fn innermost_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = err;
    while let Some(source) = deepest.source() {
        deepest = source;
    }
    deepest.to_string()
}
