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

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiting<K, V>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads what is queued until the queue is empty.
    async fn drain(self: Arc<Self>) {
        let _unstick = Unstick(&self.draining);
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
                        for waiting in chunk {
                            let _ = waiting.reply.send(Err(err.clone()));
                        }
                    }
                }
            }
        }
    }
}

/// A read that panics leaves the queue to the next caller's task (its own
/// waiters are told that the read stopped).
struct Unstick<'a>(&'a AtomicBool);

impl Drop for Unstick<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(false, Ordering::Release);
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
    use super::padded;

    #[test]
    fn padding_repeats_the_last_key_up_to_a_power_of_two() {
        assert_eq!(padded::<u8>(vec![]), Vec::<u8>::new());
        assert_eq!(padded(vec![1]), vec![1]);
        assert_eq!(padded(vec![1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(padded(vec![1, 2, 3, 4, 5]), vec![1, 2, 3, 4, 5, 5, 5, 5]);
    }
}
