//! The timer hyper is given for `HEADER_READ_TIMEOUT`: coarse and cheap.
//!
//! hyper arms its timer for every request head it reads, on kept-alive
//! connections too. tokio's timer cost about 1,000 instructions per request
//! there (an entry in the runtime's timer wheel, put in and taken out under
//! the wheel's lock): a thirtieth of a whole `/healthz`. A sleep of this
//! timer costs nothing until it is polled before its deadline; it then joins
//! a shared list, which one task goes through every tick (a quarter of the
//! shortest timeout asked for, at most 100 ms), waking the sleeps whose
//! deadline has passed and forgetting the dropped ones. A slow client is
//! thus cut off at most one tick after its deadline. Its clock is the
//! system's (`std::time::Instant`), not tokio's: `tokio::time::pause` does
//! not move it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

/// The longest time between two looks at the waiting sleeps.
const MAX_TICK: Duration = Duration::from_millis(100);

/// A `hyper::rt::Timer`; clones share their sleeps and their ticking task.
#[derive(Clone)]
pub struct CoarseTimer {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// The sleeps polled before their deadline (dropped ones included, until
    /// the next tick).
    waiting: Mutex<Vec<Weak<Waiting>>>,
}

struct Waiting {
    deadline: Instant,
    fired: AtomicBool,
    waker: AtomicWaker,
}

impl Shared {
    fn waiting(&self) -> MutexGuard<'_, Vec<Weak<Waiting>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the sleeps whose deadline has passed (after letting go of the
    /// list); forgets them and the dropped ones.
    fn fire_expired(&self, now: Instant) {
        let mut expired = Vec::new();
        {
            let mut waiting = self.waiting();
            if waiting.is_empty() {
                return;
            }
            waiting.retain(|waiting| match waiting.upgrade() {
                None => false,
                Some(waiting) if waiting.deadline <= now => {
                    expired.push(waiting);
                    false
                }
                Some(_) => true,
            });
        }
        for waiting in expired {
            waiting.fired.store(true, Ordering::Release);
            waiting.waker.wake();
        }
    }
}

impl CoarseTimer {
    /// A timer for deadlines of at least `shortest`, with its ticking task
    /// (on the current tokio runtime). The task ends once the timer and all
    /// its sleeps are dropped.
    pub fn start(shortest: Duration) -> Self {
        let shared = Arc::new(Shared::default());
        let tick = (shortest / 4).clamp(Duration::from_millis(1), MAX_TICK);
        let watched = Arc::downgrade(&shared);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(tick);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(shared) = watched.upgrade() else {
                    break;
                };
                shared.fire_expired(Instant::now());
            }
        });
        CoarseTimer { shared }
    }
}

impl hyper::rt::Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(CoarseSleep {
            deadline,
            shared: self.shared.clone(),
            waiting: None,
        })
    }
}

/// Resolves once the ticking task has seen its deadline pass.
struct CoarseSleep {
    deadline: Instant,
    shared: Arc<Shared>,
    /// Set at the first poll.
    waiting: Option<Arc<Waiting>>,
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let waiting = match &this.waiting {
            Some(waiting) => waiting,
            None => {
                let waiting = Arc::new(Waiting {
                    deadline: this.deadline,
                    fired: AtomicBool::new(false),
                    waker: AtomicWaker::new(),
                });
                this.shared.waiting().push(Arc::downgrade(&waiting));
                this.waiting.insert(waiting)
            }
        };
        waiting.waker.register(cx.waker());
        if waiting.fired.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl hyper::rt::Sleep for CoarseSleep {}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    #[tokio::test]
    async fn a_sleep_ends_after_its_deadline_within_a_tick() {
        let timer = CoarseTimer::start(Duration::from_millis(200));
        let started = Instant::now();
        timer.sleep(Duration::from_millis(200)).await;
        let slept = started.elapsed();
        assert!(slept >= Duration::from_millis(200), "{slept:?}");
    }

    #[tokio::test]
    async fn dropped_sleeps_are_forgotten_at_the_next_tick() {
        let timer = CoarseTimer::start(Duration::from_millis(40));
        for _ in 0..100 {
            let mut sleep = timer.sleep(Duration::from_secs(60));
            // Polled once (registered), then dropped.
            let waker = futures::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(sleep.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(timer.shared.waiting().len(), 100);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(timer.shared.waiting().len(), 0);
    }
}
