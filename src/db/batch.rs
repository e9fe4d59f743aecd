//! Reads asked for at the same time go to the database together.
//!
//! A `Batcher` answers "the value for key K" by one statement for many keys:
//! the first caller starts a task that reads what is queued; whoever asks
//! while that statement runs queues up and is read by the next one. Under
//! load each statement carries the keys of every request that arrived during
//! the previous one (one round trip and one plan instead of dozens); alone, a
//! request waits for nothing but its own statement.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use sea_orm::DbErr;
use tokio::sync::oneshot;

use super::Database;
use super::errors::is_unreachable;

/// The most keys one statement reads.
const MAX_KEYS: usize = 128;

/// Reads the values of `keys`, one per key in the same order.
pub type ReadMany<K, V> = fn(Database, Vec<K>) -> BoxFuture<'static, Result<Vec<V>, DbErr>>;

struct Waiting<K, V> {
    key: K,
    reply: oneshot::Sender<Result<V, DbErr>>,
}

pub struct Batcher<K, V> {
    db: Database,
    read: ReadMany<K, V>,
    pending: Mutex<Vec<Waiting<K, V>>>,
    /// Whether a task is reading what is queued.
    draining: AtomicBool,
}

impl<K, V> Batcher<K, V> {
    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiting<K, V>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K, V> Batcher<K, V>
where
    K: Clone + Send + 'static,
    V: Send + 'static,
{
    pub fn new(db: Database, read: ReadMany<K, V>) -> Arc<Self> {
        Arc::new(Batcher {
            db,
            read,
            pending: Mutex::new(Vec::new()),
            draining: AtomicBool::new(false),
        })
    }

    /// The value of `key`, read together with whatever else is asked for
    /// meanwhile.
    pub async fn get(self: &Arc<Self>, key: K) -> Result<V, DbErr> {
        let (reply, answer) = oneshot::channel();
        self.queue().push(Waiting { key, reply });
        if !self.draining.swap(true, Ordering::AcqRel) {
            // Its own task: a client that goes away must not stop a read
            // that other requests wait for.
            tokio::spawn(self.clone().drain());
        }
        answer.await.unwrap_or_else(|_| {
            Err(DbErr::Custom(
                "the batched read stopped before answering".into(),
            ))
        })
    }

    /// Reads what is queued until the queue is empty.
    async fn drain(self: Arc<Self>) {
        let _unstick = Unstick(&self);
        loop {
            let queued = std::mem::take(&mut *self.queue());
            if queued.is_empty() {
                self.draining.store(false, Ordering::Release);
                // Something queued after the take but before the store found
                // the flag still set and left it to us.
                if self.queue().is_empty() || self.draining.swap(true, Ordering::AcqRel) {
                    return;
                }
                continue;
            }
            let mut queued = queued.into_iter().peekable();
            while queued.peek().is_some() {
                let chunk: Vec<Waiting<K, V>> = queued.by_ref().take(MAX_KEYS).collect();
                let keys = chunk.iter().map(|w| w.key.clone()).collect();
                let read = (self.read)(self.db.clone(), keys).await.and_then(|values| {
                    if values.len() == chunk.len() {
                        Ok(values)
                    } else {
                        Err(DbErr::Custom(format!(
                            "a batched read of {} keys returned {} values",
                            chunk.len(),
                            values.len()
                        )))
                    }
                });
                match read {
                    Ok(values) => {
                        for (waiting, value) in chunk.into_iter().zip(values) {
                            // The client may have gone away: nothing to tell it.
                            let _ = waiting.reply.send(Ok(value));
                        }
                    }
                    Err(err) => {
                        // The database unreachable: whoever waits now (the
                        // rest of this round and those queued meanwhile) is
                        // answered at once, not after one more connection
                        // timeout each.
                        let unreachable = is_unreachable(&err);
                        let rest: Vec<Waiting<K, V>> = if unreachable {
                            queued
                                .by_ref()
                                .chain(std::mem::take(&mut *self.queue()))
                                .collect()
                        } else {
                            Vec::new()
                        };
                        for waiting in chunk.into_iter().chain(rest) {
                            let _ = waiting.reply.send(Err(err.clone()));
                        }
                    }
                }
            }
        }
    }
}

/// A read that panics answers every waiting request with an error (their
/// senders drop) and leaves the queue to the next caller's task.
struct Unstick<'a, K, V>(&'a Batcher<K, V>);

impl<K, V> Drop for Unstick<'_, K, V> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.queue().clear();
            self.0.draining.store(false, Ordering::Release);
        }
    }
}

/// `keys` lengthened to the next power of two by repeating its last key, so
/// that a statement with one placeholder per key has a handful of shapes
/// (each prepared once per connection) rather than one per count.
pub fn padded<K: Clone>(mut keys: Vec<K>) -> Vec<K> {
    if let Some(last) = keys.last().cloned() {
        keys.resize(keys.len().next_power_of_two(), last);
    }
    keys
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    async fn database() -> Database {
        Database {
            conn: sea_orm::Database::connect("sqlite::memory:")
                .await
                .expect("in-memory SQLite"),
            sqlite_writer: None,
        }
    }

    static READS: AtomicUsize = AtomicUsize::new(0);
    static LARGEST: AtomicUsize = AtomicUsize::new(0);

    /// Doubles each key, slowly enough for the others to queue meanwhile.
    fn doubled(_: Database, keys: Vec<u64>) -> BoxFuture<'static, Result<Vec<u64>, DbErr>> {
        READS.fetch_add(1, Ordering::SeqCst);
        LARGEST.fetch_max(keys.len(), Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(keys.into_iter().map(|k| k * 2).collect())
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_gets_share_reads_and_each_gets_its_own_value() {
        let batcher = Batcher::new(database().await, doubled);
        let answers = futures::future::join_all((0..300u64).map(|key| {
            let batcher = batcher.clone();
            tokio::spawn(async move { (key, batcher.get(key).await) })
        }))
        .await;
        for answer in answers {
            let (key, value) = answer.expect("task");
            assert_eq!(value.expect("read"), key * 2);
        }
        let reads = READS.load(Ordering::SeqCst);
        // 300 keys: the first read (whoever came first), then the rest in
        // statements of at most MAX_KEYS.
        assert!((3..=6).contains(&reads), "{reads} reads for 300 keys");
        assert_eq!(LARGEST.load(Ordering::SeqCst), MAX_KEYS);
        // Alone, a get is read at once, by itself.
        assert_eq!(batcher.get(7).await.expect("read"), 14);
        assert_eq!(READS.load(Ordering::SeqCst), reads + 1);
    }

    #[tokio::test]
    async fn a_read_that_returns_too_few_values_fails_each_of_its_keys() {
        let batcher: Arc<Batcher<u64, u64>> =
            Batcher::new(database().await, |_, _| Box::pin(async { Ok(Vec::new()) }));
        let error = batcher.get(1).await.expect_err("no value for the key");
        assert!(error.to_string().contains("returned 0 values"), "{error}");
    }

    #[test]
    fn padding_repeats_the_last_key_up_to_a_power_of_two() {
        assert_eq!(padded::<u8>(vec![]), Vec::<u8>::new());
        assert_eq!(padded(vec![1]), vec![1]);
        assert_eq!(padded(vec![1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(padded(vec![1, 2, 3, 4, 5]), vec![1, 2, 3, 4, 5, 5, 5, 5]);
    }
}
