//! The time background work runs by. Real time, plus an offset that tests
//! move forward so that "two hours before the event" need not take two hours.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

#[derive(Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        let now = crate::db::now()
            + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Acquire));
        use chrono::Timelike;
        now.with_nanosecond(now.nanosecond() / 1000 * 1000)
            .unwrap_or(now)
    }

    /// Moves this clock (and every copy of it) forward.
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::AcqRel);
    }
}
