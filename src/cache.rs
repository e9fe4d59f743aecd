//! The read cache: Redis when configured, in-process (moka) otherwise.
//!
//! Invalidation without scanning keys: every entry is tied to its family's
//! generation number. A write bumps the family's generation *after* its
//! transaction commits, so every later read wants the new generation. A read
//! that raced the write looked its generation up before the bump; whatever it
//! stores is tagged with the old generation, which nobody accepts any more —
//! stale data cannot come back. In process the generation is part of the key;
//! in Redis it prefixes the stored value (`<generation>\n<body>`), so that a
//! lookup is one plain `MGET` of the generation and the entry.
//!
//! Redis is never a single point of failure: each read waits at most
//! `REDIS_WAIT`; on failure the cache is bypassed for `RETRY_AFTER` (one ERROR
//! line when Redis goes away, one INFO line when it is back). Generations
//! that could not be bumped during an outage are bumped on recovery, before
//! the cache is read again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Mutex;

use crate::config::Config;

/// The longest a read waits on Redis before going to the database.
pub const REDIS_WAIT: Duration = Duration::from_millis(100);
/// The longest an invalidation waits: longer than a read, since a missed
/// bump could leave other processes serving old data.
pub const BUMP_WAIT: Duration = Duration::from_millis(500);
/// How long Redis is bypassed after a failure before it is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a cached response belongs to; a write invalidates whole families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Event detail and event lists.
    Events,
    /// Ticket detail and ticket lists (`sold`/`available` move with registrations).
    Tickets,
    /// Who a user is when they call: active or not, superuser or not, their
    /// groups (read on every authenticated request).
    Accounts,
    /// The console's summary pages (an event's page, the dashboard): they
    /// show events, tickets, registrations, payments, check-ins, posters and
    /// people's names at once, so every invalidation bumps this family too,
    /// and the writes that touch nothing else cached (payments, check-ins,
    /// posters, users) invalidate it alone.
    Console,
}

/// How many families there are.
const FAMILIES: usize = 4;

impl Family {
    const ALL: [Family; FAMILIES] = [
        Family::Events,
        Family::Tickets,
        Family::Accounts,
        Family::Console,
    ];

    fn name(self) -> &'static str {
        match self {
            Family::Events => "events",
            Family::Tickets => "tickets",
            Family::Accounts => "accounts",
            Family::Console => "console",
        }
    }

    fn index(self) -> usize {
        match self {
            Family::Events => 0,
            Family::Tickets => 1,
            Family::Accounts => 2,
            Family::Console => 3,
        }
    }
}

/// The error of a `Cache::shared` or `Cache::response` load, as far as the
/// cache needs to know it: whether it says a dependency (the database) is
/// down, to be given to the requests that waited for that load.
pub trait LoadError {
    /// The message for people, when this error says a dependency is down.
    fn unavailable_message(&self) -> Option<&str>;
    /// That error again, for a request that waited for the failed load.
    fn unavailable(message: String) -> Self;
}

/// A response body from [`Cache::response`], and whether it was found
/// cached (`X-Data-Source: cache`) or loaded by this request.
pub struct CachedBody {
    pub body: Bytes,
    pub hit: bool,
}

/// The result of a lookup: the body on a hit, and the generation to store a
/// freshly loaded body under (None: the cache is unavailable, don't store).
pub struct Lookup {
    pub hit: Option<Bytes>,
    pub generation: Option<u64>,
}

#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    /// List totals by (family, generation, filters), in this process: a
    /// total is recomputed only after a write to its family, not on every
    /// page of a large list.
    counts: moka::future::Cache<String, u64>,
    /// Values kept typed in this process (`Cache::shared`) by family,
    /// generation and key, weighed by their JSON size; with Redis, a copy of
    /// what Redis shares, read again only when the generation moves.
    values: moka::future::Cache<String, Local>,
    /// One lock per value or response being loaded (`Cache::shared`,
    /// `Cache::response`): concurrent misses wait for one load.
    /// It holds the message of a load that failed because a dependency is
    /// down.
    loading: moka::future::Cache<String, Arc<tokio::sync::Mutex<Option<String>>>>,
    ttl: Duration,
    prefix: String,
}

enum Backend {
    /// `CACHE_TTL=0`: nothing is cached (every read from the database).
    Disabled,
    Memory {
        entries: moka::future::Cache<String, Bytes>,
        generations: [AtomicU64; FAMILIES],
    },
    Redis(RedisBackend),
}

struct RedisBackend {
    manager: ConnectionManager,
    description: String,
    /// Set while Redis is considered down: bypass until this instant.
    down_until: Mutex<Option<Instant>>,
    /// Whether the outage has been logged (one ERROR per outage).
    down: AtomicBool,
    /// Families whose bump failed during an outage.
    pending: [AtomicBool; FAMILIES],
    /// Invalidations waiting for the next bump.
    bumps: Mutex<Bumps>,
}

/// Invalidations asked for while a bump is on its way to Redis: the next
/// bump carries all of them (a burst of writes, such as a batch of
/// registrations answered together, is one round trip, not one each). Each
/// waits for a bump sent after it asked, so coherence holds as if it had
/// sent its own.
#[derive(Default)]
struct Bumps {
    families: [bool; FAMILIES],
    waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Whether a task is sending bumps.
    running: bool,
}

/// What an entry of `Cache::shared` costs beyond its key and JSON size (the
/// cache's node, its order queues and hash table slot, the typed value's
/// own allocations), counted in its weight so that the bound holds for many
/// small values too. Measured: the server's RSS grew by about 1 KiB per
/// cached caller (a ~150-byte JSON, a ~60-byte key) on `bench/run.sh`.
const ENTRY_OVERHEAD: u32 = 800;

/// The weight bound of `Cache::shared`'s values in each process.
const SHARED_CAPACITY: u64 = 8 * 1024 * 1024;

/// A value of `Cache::shared`, and its weight (its size as JSON).
#[derive(Clone)]
struct Local {
    value: Arc<dyn std::any::Any + Send + Sync>,
    weight: u32,
}

/// The generation a family starts from in a Redis that has none: the clock in
/// microseconds. A Redis restarted empty thus never hands out a generation
/// seen before (one per write would have to happen a million times a second
/// to catch up), so no process's count cache or stored entry can match it.
fn first_generation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
        .unwrap_or(1)
}

/// Adds `SET <key> <first_generation()> NX` to a pipeline (answer ignored).
fn start_generation_if_missing(pipe: &mut redis::Pipeline, key: &str) {
    pipe.cmd("SET")
        .arg(key)
        .arg(first_generation())
        .arg("NX")
        .ignore();
}

/// A Redis entry: `<generation>\n<body>`; the body when the generation is
/// `current`.
fn entry_body(stored: Vec<u8>, current: u64) -> Option<Bytes> {
    let stored = Bytes::from(stored);
    let newline = stored.iter().position(|b| *b == b'\n')?;
    let generation: u64 = std::str::from_utf8(&stored[..newline]).ok()?.parse().ok()?;
    (generation == current).then(|| stored.slice(newline + 1..))
}

/// Health of the cache for `/readyz`.
pub struct CacheStatus {
    pub backend: &'static str,
    pub healthy: bool,
}

impl Cache {
    /// Redis when `REDIS_URL`/`REDIS_HOST` is set (connected lazily: Redis
    /// down at start-up is an outage, not a failure), else in-process.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let backend = match &config.redis_url {
            _ if config.cache_ttl.is_zero() => Backend::Disabled,
            Some(url) => {
                let client = redis::Client::open(url.as_str()).map_err(|e| {
                    anyhow::anyhow!(
                        "REDIS_URL: {} is not a usable Redis URL: {e}",
                        crate::config::mask_url_password(url)
                    )
                })?;
                let manager = ConnectionManager::new_lazy_with_config(
                    client,
                    ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(Duration::from_millis(200)))
                        .set_response_timeout(Some(BUMP_WAIT))
                        .set_number_of_retries(1)
                        .set_max_delay(Duration::from_millis(100)),
                )
                .map_err(|e| anyhow::anyhow!("cannot set up the Redis client: {e}"))?;
                Backend::Redis(RedisBackend {
                    manager,
                    description: crate::config::mask_url_password(url),
                    down_until: Mutex::new(None),
                    down: AtomicBool::new(false),
                    pending: std::array::from_fn(|_| AtomicBool::new(false)),
                    bumps: Mutex::default(),
                })
            }
            None => Backend::Memory {
                entries: moka::future::Cache::builder()
                    .max_capacity(64 * 1024 * 1024)
                    .weigher(|k: &String, v: &Bytes| {
                        (k.len() + v.len()).try_into().unwrap_or(u32::MAX)
                    })
                    .time_to_live(config.cache_ttl)
                    .build(),
                generations: std::array::from_fn(|_| AtomicU64::new(0)),
            },
        };
        Ok(Cache {
            inner: Arc::new(Inner {
                counts: moka::future::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(config.cache_ttl.max(Duration::from_secs(1)))
                    .build(),
                values: moka::future::Cache::builder()
                    .max_capacity(SHARED_CAPACITY)
                    .weigher(|k: &String, v: &Local| {
                        v.weight
                            .saturating_add(k.len().try_into().unwrap_or(u32::MAX))
                            .saturating_add(ENTRY_OVERHEAD)
                    })
                    .time_to_live(config.cache_ttl.max(Duration::from_secs(1)))
                    .build(),
                // Weighed by key length (a list's key holds its query
                // string): at most 4 MiB of keys.
                loading: moka::future::Cache::builder()
                    .weigher(|k: &String, _| {
                        k.len().saturating_add(64).try_into().unwrap_or(u32::MAX)
                    })
                    .max_capacity(4 * 1024 * 1024)
                    .time_to_idle(Duration::from_secs(60))
                    .build(),
                backend,
                ttl: config.cache_ttl,
                prefix: config.cache_prefix.clone(),
            }),
        })
    }

    pub fn describe(&self) -> String {
        match &self.inner.backend {
            Backend::Disabled => "disabled (CACHE_TTL=0)".into(),
            Backend::Memory { .. } => "in-process".into(),
            Backend::Redis(r) => format!("Redis at {}", r.description),
        }
    }

    fn generation_key(&self, family: Family) -> String {
        self.key_of(family, &[":gen"])
    }

    /// A Redis entry's key; its generation is inside the value.
    fn redis_entry_key(&self, family: Family, key: &str) -> String {
        self.key_of(family, &[":", key])
    }

    fn entry_key(&self, family: Family, generation: u64, key: &str) -> String {
        self.key_of(
            family,
            &[":g", itoa::Buffer::new().format(generation), ":", key],
        )
    }

    /// `<prefix>:<family>` followed by `parts`, put together without
    /// `format!` (keys are made on every cached read).
    fn key_of(&self, family: Family, parts: &[&str]) -> String {
        let prefix = &self.inner.prefix;
        let name = family.name();
        let length = prefix.len() + 1 + name.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut key = String::with_capacity(length);
        key.push_str(prefix);
        key.push(':');
        key.push_str(name);
        for part in parts {
            key.push_str(part);
        }
        key
    }

    /// The total of a list, from this process's count cache when the
    /// family's generation is known (else computed every time). Concurrent
    /// requests for the same total wait for one computation.
    pub async fn count<F, Fut>(
        &self,
        family: Family,
        generation: Option<u64>,
        filters: &str,
        compute: F,
    ) -> Result<u64, sea_orm::DbErr>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<u64, sea_orm::DbErr>>,
    {
        let Some(generation) = generation else {
            return compute().await;
        };
        let key = format!("{}:g{generation}:{filters}", family.name());
        self.inner
            .counts
            .try_get_with(key, compute())
            .await
            // The shared error, cloned: its kind (a lost connection is a
            // 503, not a 500) must survive.
            .map_err(|e| (*e).clone())
    }

    /// Looks a response up; never fails (an unavailable cache is a miss).
    pub async fn lookup(&self, family: Family, key: &str) -> Lookup {
        match &self.inner.backend {
            Backend::Disabled => Lookup {
                hit: None,
                generation: None,
            },
            Backend::Memory {
                entries,
                generations,
            } => {
                let generation = generations[family.index()].load(Ordering::Acquire);
                Lookup {
                    hit: entries.get(&self.entry_key(family, generation, key)).await,
                    generation: Some(generation),
                }
            }
            Backend::Redis(redis) => {
                if !redis.available(self).await {
                    return Lookup {
                        hit: None,
                        generation: None,
                    };
                }
                let mut conn = redis.manager.clone();
                let mut mget = redis::cmd("MGET");
                mget.arg(self.generation_key(family))
                    .arg(self.redis_entry_key(family, key));
                let call = mget.query_async::<(Option<u64>, Option<Vec<u8>>)>(&mut conn);
                match redis.call(REDIS_WAIT, call).await {
                    Some((Some(generation), stored)) => Lookup {
                        hit: stored.and_then(|stored| entry_body(stored, generation)),
                        generation: Some(generation),
                    },
                    Some((None, _)) => Lookup {
                        // A new (or emptied, restarted) Redis: start the
                        // generation where no earlier one can have been.
                        hit: None,
                        generation: redis.start_generation(self, family).await,
                    },
                    None => Lookup {
                        hit: None,
                        generation: None,
                    },
                }
            }
        }
    }

    /// Stores a response under the generation its lookup saw.
    pub async fn store(&self, family: Family, generation: u64, key: &str, body: Bytes) {
        match &self.inner.backend {
            Backend::Disabled => {}
            Backend::Memory { entries, .. } => {
                entries
                    .insert(self.entry_key(family, generation, key), body)
                    .await
            }
            Backend::Redis(redis) => {
                let mut conn = redis.manager.clone();
                let ttl = self.inner.ttl.as_secs().max(1);
                let mut value = format!("{generation}\n").into_bytes();
                value.extend_from_slice(&body);
                let mut set = redis::cmd("SET");
                set.arg(self.redis_entry_key(family, key))
                    .arg(value)
                    .arg("EX")
                    .arg(ttl);
                let call = set.query_async::<()>(&mut conn);
                redis.call(REDIS_WAIT, call).await;
            }
        }
    }

    /// Makes every cached response of these families, and the console's
    /// summaries, unreachable. Call after the write's transaction has
    /// committed, before answering.
    pub async fn invalidate(&self, families: &[Family]) {
        let mut families = families.to_vec();
        if !families.contains(&Family::Console) {
            families.push(Family::Console);
        }
        let families = families.as_slice();
        match &self.inner.backend {
            Backend::Disabled => {}
            Backend::Memory { generations, .. } => {
                for family in families {
                    generations[family.index()].fetch_add(1, Ordering::AcqRel);
                }
            }
            Backend::Redis(redis) => {
                let (done, bumped) = tokio::sync::oneshot::channel();
                let start = {
                    let mut bumps = redis.lock_bumps();
                    for family in families {
                        bumps.families[family.index()] = true;
                    }
                    bumps.waiters.push(done);
                    !std::mem::replace(&mut bumps.running, true)
                };
                if start {
                    tokio::spawn(self.clone().send_bumps());
                }
                // Err: the runtime is stopping; nothing is served after it.
                let _ = bumped.await;
            }
        }
    }

    /// Sends the waiting invalidations, one bump at a time, until none is
    /// left. Tried even while reads bypass Redis: another process may be
    /// reading it, and must not see the old data; a family whose bump fails
    /// is bumped again before Redis is used again.
    async fn send_bumps(self) {
        let Backend::Redis(redis) = &self.inner.backend else {
            return;
        };
        let _unstick = Unstick(redis);
        loop {
            let (asked, waiters) = {
                let mut bumps = redis.lock_bumps();
                if bumps.waiters.is_empty() {
                    bumps.running = false;
                    return;
                }
                (
                    std::mem::take(&mut bumps.families),
                    std::mem::take(&mut bumps.waiters),
                )
            };
            let bump: Vec<Family> = Family::ALL
                .into_iter()
                .filter(|f| asked[f.index()] || redis.pending[f.index()].load(Ordering::Acquire))
                .collect();
            if redis.bump(&self, &bump).await {
                for family in bump {
                    redis.pending[family.index()].store(false, Ordering::Release);
                }
            } else {
                for family in Family::ALL.into_iter().filter(|f| asked[f.index()]) {
                    redis.pending[family.index()].store(true, Ordering::Release);
                }
            }
            for waiter in waiters {
                let _ = waiter.send(());
            }
        }
    }

    /// A family's current generation (None: nothing may be cached now).
    async fn generation(&self, family: Family) -> Option<u64> {
        match &self.inner.backend {
            Backend::Disabled => None,
            Backend::Memory { generations, .. } => {
                Some(generations[family.index()].load(Ordering::Acquire))
            }
            Backend::Redis(redis) => {
                if !redis.available(self).await {
                    return None;
                }
                let mut conn = redis.manager.clone();
                let mut get = redis::cmd("GET");
                get.arg(self.generation_key(family));
                match redis
                    .call(REDIS_WAIT, get.query_async::<Option<u64>>(&mut conn))
                    .await
                {
                    Some(Some(generation)) => Some(generation),
                    Some(None) => redis.start_generation(self, family).await,
                    None => None,
                }
            }
        }
    }

    /// A value read by many requests and changed by writes to `family`:
    /// this process's copy while the family's generation has not moved
    /// (no decoding), else Redis's (shared by every process), else `load`'s,
    /// kept under the generation seen before loading — a value loaded while
    /// a write committed is never served. Concurrent misses of one value in
    /// a process wait for a single load; when it fails because a dependency
    /// is down, they all get that failure.
    pub async fn shared<T, E, F, Fut>(
        &self,
        family: Family,
        key: &str,
        load: F,
    ) -> Result<Arc<T>, E>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
        E: LoadError,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let Some(generation) = self.generation(family).await else {
            return load().await.map(Arc::new);
        };
        let local_key = self.entry_key(family, generation, key);
        if let Some(found) = self.local::<T>(&local_key).await {
            return Ok(found);
        }
        let lock = self.load_lock(&local_key).await;
        let loaded = async {
            let mut unavailable = lock.lock().await;
            if let Some(found) = self.local::<T>(&local_key).await {
                return Ok(found);
            }
            // The load this request waited for found a dependency down: the
            // same answer, at once (loading again, each waiting request
            // after the other, would make each wait as long again).
            if let Some(message) = &*unavailable {
                return Err(E::unavailable(message.clone()));
            }
            if let Backend::Redis(redis) = &self.inner.backend
                && let Some(body) = redis.entry(self, family, key, generation).await
                && let Ok(value) = serde_json::from_slice::<T>(&body)
            {
                let value = Arc::new(value);
                self.keep_local(&local_key, value.clone(), body.len()).await;
                return Ok(value);
            }
            let value = match load().await {
                Ok(value) => Arc::new(value),
                Err(err) => {
                    *unavailable = err.unavailable_message().map(str::to_owned);
                    return Err(err);
                }
            };
            match serde_json::to_vec(&*value) {
                Ok(body) => {
                    let weight = body.len();
                    if let Backend::Redis(_) = &self.inner.backend {
                        self.store(family, generation, key, body.into()).await;
                    }
                    self.keep_local(&local_key, value.clone(), weight).await;
                }
                Err(e) => tracing::warn!("cannot cache {key}: {e}"),
            }
            Ok(value)
        }
        .await;
        // The waiters hold the lock itself; later callers find the value (or,
        // after a failed load, load again).
        self.inner.loading.invalidate(&local_key).await;
        loaded
    }

    /// A response body of `family` under `key`: the cached one, else the
    /// one `load` makes (given the generation seen before loading, to key
    /// what it keeps itself), stored under that generation. Concurrent
    /// misses of one body in a process wait for a single load, then find
    /// what it stored: a new page asked by many clients at once (a sale
    /// opening) is one database read, not one per client. When that load
    /// fails because a dependency is down, they all get that failure.
    pub async fn response<E, F, Fut>(
        &self,
        family: Family,
        key: &str,
        load: F,
    ) -> Result<CachedBody, E>
    where
        E: LoadError,
        F: FnOnce(Option<u64>) -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, E>>,
    {
        let lookup = self.lookup(family, key).await;
        if let Some(body) = lookup.hit {
            return Ok(CachedBody { body, hit: true });
        }
        let Some(generation) = lookup.generation else {
            // No cache to fill (or to wait on): straight to the database.
            return self.fill(family, None, key, load).await;
        };
        // Keyed by generation: a request that saw a newer generation (a
        // write committed meanwhile) does not wait for an older load. Apart
        // from `Cache::shared`'s locks (`response:`), so that a load that
        // reads a shared value never waits on itself.
        let lock_key = self.key_of(
            family,
            &[
                ":response:g",
                itoa::Buffer::new().format(generation),
                ":",
                key,
            ],
        );
        let lock = self.load_lock(&lock_key).await;
        let mut unavailable = match lock.try_lock() {
            Ok(first) => first,
            Err(_) => {
                let waited = lock.lock().await;
                // The load waited for found a dependency down: the same
                // answer, at once.
                if let Some(message) = &*waited {
                    return Err(E::unavailable(message.clone()));
                }
                drop(waited);
                // Else it stored the body, unless it failed otherwise (a 404
                // is loaded again by each, side by side, as before) or its
                // client went away. Looked up again, under the generation of
                // now.
                let again = self.lookup(family, key).await;
                if let Some(body) = again.hit {
                    return Ok(CachedBody { body, hit: true });
                }
                return self.fill(family, again.generation, key, load).await;
            }
        };
        let answer = self.fill(family, Some(generation), key, load).await;
        // Set for the waiters (and cleared of what a load whose request was
        // dropped left).
        *unavailable = match &answer {
            Err(err) => err.unavailable_message().map(str::to_owned),
            Ok(_) => None,
        };
        drop(unavailable);
        // Only the load's own request removes the lock: later requests find
        // the body (or, after a failed load, load again). Waiters still hold
        // it.
        self.inner.loading.invalidate(&lock_key).await;
        answer
    }

    /// `load`'s body, stored under `generation` (none: the cache is
    /// unavailable, nothing stored).
    async fn fill<E, F, Fut>(
        &self,
        family: Family,
        generation: Option<u64>,
        key: &str,
        load: F,
    ) -> Result<CachedBody, E>
    where
        F: FnOnce(Option<u64>) -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, E>>,
    {
        let body = load(generation).await?;
        if let Some(generation) = generation {
            self.store(family, generation, key, body.clone()).await;
        }
        Ok(CachedBody { body, hit: false })
    }

    /// The lock that concurrent misses of `lock_key` share (made by the
    /// first).
    async fn load_lock(&self, lock_key: &str) -> Arc<tokio::sync::Mutex<Option<String>>> {
        self.inner
            .loading
            .get_with_by_ref(lock_key, async { Arc::new(tokio::sync::Mutex::new(None)) })
            .await
    }

    async fn local<T: Send + Sync + 'static>(&self, local_key: &str) -> Option<Arc<T>> {
        let found = self.inner.values.get(local_key).await?;
        found.value.downcast::<T>().ok()
    }

    async fn keep_local<T: Send + Sync + 'static>(
        &self,
        local_key: &str,
        value: Arc<T>,
        size: usize,
    ) {
        let local = Local {
            value,
            weight: size.try_into().unwrap_or(u32::MAX),
        };
        self.inner.values.insert(local_key.to_string(), local).await;
    }

    /// Every family: for writes made outside the API (the CLI), which may
    /// have touched anything.
    pub async fn invalidate_all(&self) {
        self.invalidate(&Family::ALL).await;
    }

    /// Whether cached reads live in this process only (another process
    /// cannot invalidate them through the cache itself).
    pub fn is_in_process(&self) -> bool {
        matches!(self.inner.backend, Backend::Memory { .. })
    }

    /// Whether anything is cached at all (`CACHE_TTL=0` caches nothing).
    pub fn is_enabled(&self) -> bool {
        !matches!(self.inner.backend, Backend::Disabled)
    }

    pub async fn status(&self) -> CacheStatus {
        match &self.inner.backend {
            Backend::Disabled => CacheStatus {
                backend: "disabled",
                healthy: true,
            },
            Backend::Memory { .. } => CacheStatus {
                backend: "in-process",
                healthy: true,
            },
            Backend::Redis(redis) => {
                let mut conn = redis.manager.clone();
                let ping = tokio::time::timeout(
                    Duration::from_millis(200),
                    redis::cmd("PING").query_async::<String>(&mut conn),
                )
                .await;
                CacheStatus {
                    backend: "redis",
                    healthy: matches!(ping, Ok(Ok(_))),
                }
            }
        }
    }
}

/// A bump task that panics lets its waiters and those queued behind them go
/// on as after a failed bump: every family is bumped before Redis is read
/// again.
struct Unstick<'a>(&'a RedisBackend);

impl Drop for Unstick<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for pending in &self.0.pending {
                pending.store(true, Ordering::Release);
            }
            let mut bumps = self.0.lock_bumps();
            bumps.waiters.clear();
            bumps.running = false;
        }
    }
}

impl RedisBackend {
    fn lock_bumps(&self) -> std::sync::MutexGuard<'_, Bumps> {
        self.bumps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// False while bypassed. When the bypass period ends, one caller probes
    /// Redis (the others keep bypassing until the probe succeeds, so an
    /// outage costs one request a bounded wait, not every request); on
    /// success, pending generation bumps are applied first.
    async fn available(&self, cache: &Cache) -> bool {
        {
            let Ok(mut down_until) = self.down_until.lock() else {
                return false;
            };
            match *down_until {
                Some(until) if Instant::now() < until => return false,
                // This caller probes; the others wait for its result.
                Some(_) => *down_until = Some(Instant::now() + RETRY_AFTER),
                None => {}
            }
        }
        let pending: Vec<Family> = Family::ALL
            .into_iter()
            .filter(|f| self.pending[f.index()].load(Ordering::Acquire))
            .collect();
        if pending.is_empty() {
            return true;
        }
        if self.bump(cache, &pending).await {
            for family in pending {
                self.pending[family.index()].store(false, Ordering::Release);
            }
            true
        } else {
            false
        }
    }

    /// INCRs the families' generations; false (and bypass) on failure.
    async fn bump(&self, cache: &Cache, families: &[Family]) -> bool {
        let mut pipe = redis::pipe();
        for family in families {
            // A missing generation starts from the clock, not from 0.
            start_generation_if_missing(&mut pipe, &cache.generation_key(*family));
            pipe.cmd("INCR").arg(cache.generation_key(*family)).ignore();
        }
        let mut conn = self.manager.clone();
        self.call(BUMP_WAIT, pipe.query_async::<()>(&mut conn))
            .await
            .is_some()
    }

    /// The entry Redis holds for `key`, if it was stored under `generation`.
    async fn entry(
        &self,
        cache: &Cache,
        family: Family,
        key: &str,
        generation: u64,
    ) -> Option<Bytes> {
        let mut conn = self.manager.clone();
        let mut get = redis::cmd("GET");
        get.arg(cache.redis_entry_key(family, key));
        let stored = self
            .call(REDIS_WAIT, get.query_async::<Option<Vec<u8>>>(&mut conn))
            .await??;
        entry_body(stored, generation)
    }

    /// Sets a family's missing generation to `first_generation()`, and
    /// returns the family's generation (another process may have set it).
    async fn start_generation(&self, cache: &Cache, family: Family) -> Option<u64> {
        let key = cache.generation_key(family);
        let mut pipe = redis::pipe();
        start_generation_if_missing(&mut pipe, &key);
        pipe.cmd("GET").arg(&key);
        let mut conn = self.manager.clone();
        self.call(BUMP_WAIT, pipe.query_async::<(u64,)>(&mut conn))
            .await
            .map(|(generation,)| generation)
    }

    /// Runs one Redis call within `wait`, recording success or failure
    /// (a failure starts the bypass); `None` when it failed.
    async fn call<T>(
        &self,
        wait: Duration,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        match tokio::time::timeout(wait, call).await {
            Ok(Ok(value)) => {
                self.succeeded();
                Some(value)
            }
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                None
            }
            Err(_) => {
                self.failed("no answer in time");
                None
            }
        }
    }

    fn succeeded(&self) {
        if let Ok(mut down_until) = self.down_until.lock() {
            *down_until = None;
        }
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!(
                "Redis at {} is reachable again; cache in use",
                self.description
            );
        }
    }

    fn failed(&self, cause: &str) {
        if let Ok(mut down_until) = self.down_until.lock() {
            *down_until = Some(Instant::now() + RETRY_AFTER);
        }
        // Whatever was cached may miss the writes made while Redis was away.
        for pending in &self.pending {
            pending.store(true, Ordering::Release);
        }
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::error!(
                "Redis at {} is unavailable ({cause}); serving from the database until it is back",
                self.description
            );
        }
    }
}

/// How often a server looks at the cache stamp the command-line tools
/// bump. A command that wrote waits a little longer than this before it
/// returns, so that lists are right once it has returned.
pub const STAMP_POLL: Duration = Duration::from_millis(500);

/// After a command wrote to the database behind the servers' back: makes
/// their cached reads right before the command returns. Redis is
/// invalidated directly; an in-process cache lives in each server, which
/// watches the database's cache stamp (`watch_cache_stamp` in `lib.rs`), so the
/// stamp is bumped and the command waits one poll interval for the servers
/// to see it.
pub async fn refresh_running_servers(
    config: &Config,
    db: &crate::db::Database,
) -> anyhow::Result<()> {
    let cache = Cache::open(config)?;
    cache.invalidate_all().await;
    if let Err(e) = db.bump_cache_stamp().await {
        tracing::warn!(
            "could not tell running servers to drop their cached reads ({e}); restart them if lists look stale"
        );
        return Ok(());
    }
    if cache.is_in_process() {
        tokio::time::sleep(STAMP_POLL + Duration::from_millis(250)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Cache, Family, LoadError, entry_body};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, PartialEq)]
    enum Failure {
        Down(String),
        Other,
    }

    impl LoadError for Failure {
        fn unavailable_message(&self) -> Option<&str> {
            match self {
                Failure::Down(message) => Some(message),
                Failure::Other => None,
            }
        }

        fn unavailable(message: String) -> Self {
            Failure::Down(message)
        }
    }

    fn in_process() -> Cache {
        let vars = [(
            "SECRET_KEY",
            "a-test-secret-key-long-enough-for-the-rules-0123",
        )]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = crate::config::Config::from_vars(&vars).expect("config");
        Cache::open(&config).expect("in-process cache")
    }

    /// Eight concurrent misses of one value whose load fails: one load when
    /// it says the database is down (everyone gets that answer), one each
    /// for any other failure.
    async fn loads_for(failure: fn() -> Failure) -> (usize, Vec<Result<Arc<u32>, Failure>>) {
        let cache = in_process();
        let loads = AtomicUsize::new(0);
        let calls = (0..8).map(|_| {
            cache.shared(Family::Accounts, "caller:x", || async {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Err::<u32, _>(failure())
            })
        });
        let answers = futures::future::join_all(calls).await;
        (loads.load(Ordering::SeqCst), answers)
    }

    #[tokio::test]
    async fn requests_waiting_for_a_load_that_found_the_database_down_get_its_answer() {
        let (loads, answers) = loads_for(|| Failure::Down("down".into())).await;
        assert_eq!(loads, 1);
        assert!(
            answers
                .iter()
                .all(|a| *a == Err(Failure::Down("down".into())))
        );
        let (loads, answers) = loads_for(|| Failure::Other).await;
        assert_eq!(loads, 8);
        assert!(answers.iter().all(|a| *a == Err(Failure::Other)));
    }

    /// Eight concurrent misses of one response: one load, everyone gets
    /// its body (one as loaded, seven as found cached); after a write to
    /// the family, the next request loads again.
    #[tokio::test]
    async fn concurrent_misses_of_one_response_share_one_load() {
        let cache = in_process();
        let loads = AtomicUsize::new(0);
        let load = |_generation| async {
            loads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Ok::<_, Failure>(bytes::Bytes::from_static(b"{\"page\":1}"))
        };
        let calls = (0..8).map(|_| cache.response(Family::Events, "list:x", load));
        let answers = futures::future::join_all(calls).await;
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        let bodies: Vec<_> = answers.into_iter().map(|a| a.expect("answer")).collect();
        assert!(bodies.iter().all(|b| &b.body[..] == b"{\"page\":1}"));
        assert_eq!(bodies.iter().filter(|b| !b.hit).count(), 1);

        cache.invalidate(&[Family::Events]).await;
        let again = cache
            .response(Family::Events, "list:x", load)
            .await
            .expect("answer");
        assert!(!again.hit);
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn responses_waiting_for_a_load_that_found_the_database_down_get_its_answer() {
        let cache = in_process();
        let loads = AtomicUsize::new(0);
        let load = |_generation| async {
            loads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Err::<bytes::Bytes, _>(Failure::Down("down".into()))
        };
        let calls = (0..8).map(|_| cache.response(Family::Events, "list:y", load));
        let answers = futures::future::join_all(calls).await;
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert!(
            answers
                .iter()
                .all(|a| matches!(a, Err(Failure::Down(m)) if m == "down"))
        );
        // Any other failure (a 404, say): each request loads for itself.
        let loads = AtomicUsize::new(0);
        let load = |_generation| async {
            loads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Err::<bytes::Bytes, _>(Failure::Other)
        };
        let calls = (0..8).map(|_| cache.response(Family::Events, "list:z", load));
        let answers = futures::future::join_all(calls).await;
        assert_eq!(loads.load(Ordering::SeqCst), 8);
        assert!(answers.iter().all(|a| matches!(a, Err(Failure::Other))));
    }

    #[test]
    fn a_redis_entry_is_served_only_for_its_generation() {
        let stored = b"7\n{\"id\":1}".to_vec();
        assert_eq!(
            entry_body(stored.clone(), 7).as_deref(),
            Some(&b"{\"id\":1}"[..])
        );
        assert_eq!(entry_body(stored, 8), None);
        assert_eq!(entry_body(b"garbage".to_vec(), 0), None);
        assert_eq!(entry_body(b"x\nbody".to_vec(), 0), None);
    }
}
