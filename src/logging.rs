//! Log output: `logs/application.log` (INFO and above), `logs/error.log`
//! (ERROR and above) and stdout (as application.log), one line per event:
//!
//! `2025-06-08 14:41:43.260 | INFO     | dicoevent::api::registrations:create:31 - message`
//!
//! — time in `TIME_ZONE`, level padded to 8, module path, the enclosing
//! `#[instrument]` span (the function), source line. `LOG_FORMAT=json` writes
//! the same fields as JSON lines.
//!
//! Files rotate daily: the current day's file is the plain name
//! (`application.log`); at the first write of a new day (in `TIME_ZONE`) it is
//! renamed `application.YYYY-MM-DD.log` and a new plain file starts. Dated
//! files older than `LOG_RETENTION_DAYS` are deleted.
//!
//! Each event is formatted once (one `fmt` layer; the access line of every
//! request by `write_info`, in the same format, without `tracing`'s
//! dispatch) and appended to an in-memory batch; a background thread writes
//! the batch to stdout and `application.log` (and its ERROR lines to `error.log`) when it reaches
//! `FLUSH_BYTES`, at the latest `FLUSH_INTERVAL` after its first line, at
//! once for an ERROR line, and when the guard returned by `init` drops (at
//! the end of `dicoevent`'s run, after the graceful shutdown): a few write
//! calls per batch instead of one per line per sink on the request path.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::DEFAULT_LOG_FILTER as DEFAULT_FILTER;

/// Where and how to log.
#[derive(Clone, Debug)]
pub struct LogSettings {
    pub dir: PathBuf,
    pub retention_days: u32,
    pub time_zone: Tz,
    pub json: bool,
    /// `RUST_LOG` syntax.
    pub filter: String,
}

impl LogSettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        LogSettings {
            dir: config.log_dir.clone(),
            retention_days: config.log_retention_days,
            time_zone: config.time_zone,
            json: config.log_json,
            filter: config.log_filter.clone(),
        }
    }
}

/// Keeps the background writer alive; dropping it writes what is pending
/// and stops the writer.
pub struct LogGuards {
    writer: Option<std::thread::JoinHandle<()>>,
    batch: Arc<Batch>,
}

impl Drop for LogGuards {
    fn drop(&mut self) {
        self.batch.lock().closed = true;
        self.batch.wake.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Installs the global subscriber: stdout plus the two files. If the log
/// directory cannot be written, logging continues on stdout and the reason is
/// printed.
pub fn init(settings: &LogSettings) -> LogGuards {
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|e| {
        eprintln!(
            "LOG_LEVEL: invalid filter {:?} ({e}); using {DEFAULT_FILTER:?}",
            settings.filter
        );
        EnvFilter::new(DEFAULT_FILTER)
    });
    let files = match open_files(settings) {
        Ok(files) => Some(files),
        Err(e) => {
            eprintln!(
                "LOG_DIR: cannot write log files in {}: {e}; logging to stdout only",
                settings.dir.display()
            );
            None
        }
    };
    let batch = Arc::new(Batch::default());
    let writer = {
        let batch = batch.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                write_batches(
                    &batch,
                    Sinks {
                        stdout: true,
                        files,
                    },
                )
            })
    };
    let writer = match writer {
        Ok(handle) => Some(handle),
        Err(e) => {
            // No thread: each line is written at once, on stdout only.
            eprintln!("cannot start the log writer thread: {e}; logging to stdout only");
            batch.lock().closed = true;
            None
        }
    };
    let lines = tracing_subscriber::fmt::layer()
        .event_format(LineFormat {
            time_zone: settings.time_zone,
            json: settings.json,
        })
        .with_writer(BatchWriter(batch.clone()))
        .with_filter(LevelFilter::INFO);
    if Registry::default()
        .with(filter)
        .with(lines)
        .try_init()
        .is_ok()
    {
        // Only the installed subscriber's batch takes the access lines.
        let _ = INSTALLED.set(Installed {
            batch: batch.clone(),
            time_zone: settings.time_zone,
            json: settings.json,
        });
    }
    LogGuards { writer, batch }
}

/// A batch this large is written at once.
const FLUSH_BYTES: usize = 64 * 1024;
/// A line waits at most this long to be written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Past this much pending output (the sinks are slower than the lines come),
/// a logging thread waits for the writer: memory stays bounded and no line
/// is dropped.
const MAX_PENDING: usize = 8 * 1024 * 1024;

/// The formatted lines not yet written.
#[derive(Default)]
struct Batch {
    pending: Mutex<Pending>,
    /// Signalled when there is something to write (or to stop).
    wake: Condvar,
    /// Signalled when the writer took the pending lines.
    taken: Condvar,
}

#[derive(Default)]
struct Pending {
    /// Every line: stdout and `application.log`.
    lines: Vec<u8>,
    /// ERROR lines: `error.log`.
    errors: Vec<u8>,
    /// An ERROR line is waiting: write now.
    urgent: bool,
    /// The guard dropped: write what is left and stop.
    closed: bool,
}

impl Batch {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves only bytes behind: carry on.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds formatted lines (`error`: ERROR lines, also for `error.log`).
    fn append(&self, buf: &[u8], error: bool) -> io::Result<()> {
        let mut pending = self.lock();
        if pending.closed {
            // After the guard dropped (or without a writer thread): straight
            // to stdout, as it would have been.
            drop(pending);
            return io::stdout().lock().write_all(buf);
        }
        while pending.lines.len() >= MAX_PENDING && !pending.closed {
            pending = self
                .taken
                .wait(pending)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let first = pending.lines.is_empty() && pending.errors.is_empty();
        pending.lines.extend_from_slice(buf);
        if error {
            pending.errors.extend_from_slice(buf);
            pending.urgent = true;
        }
        let wake = first || pending.urgent || pending.lines.len() >= FLUSH_BYTES;
        drop(pending);
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }
}

/// The `MakeWriter` of the one formatting layer: hands each formatted event
/// to the batch, marked as an error line or not.
struct BatchWriter(Arc<Batch>);

struct EventWriter<'a> {
    batch: &'a Batch,
    error: bool,
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter {
            batch: &self.0,
            error: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        EventWriter {
            batch: &self.0,
            error: *meta.level() == Level::ERROR,
        }
    }
}

impl Write for EventWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.batch.append(buf, self.error)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where batches go: stdout, and the files when they could be opened.
struct Sinks {
    stdout: bool,
    /// `application.log`, `error.log`.
    files: Option<(DailyFile, DailyFile)>,
}

impl Sinks {
    fn write(&mut self, lines: &[u8], errors: &[u8]) {
        // A sink that fails (stdout closed, disk full) must not stop the
        // others, nor the service: its bytes are dropped, as a failed
        // synchronous write would have dropped them.
        if self.stdout && !lines.is_empty() {
            let mut stdout = io::stdout().lock();
            let _ = stdout.write_all(lines).and_then(|()| stdout.flush());
        }
        if let Some((application, error)) = &mut self.files {
            if !lines.is_empty() {
                let _ = application.write_all(lines);
            }
            if !errors.is_empty() {
                let _ = error.write_all(errors);
            }
        }
    }
}

/// The writer thread: waits for lines, lets a batch gather for up to
/// `FLUSH_INTERVAL` (less if it fills or holds an error), writes it; on
/// close, writes what is left and returns.
fn write_batches(batch: &Batch, mut sinks: Sinks) {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    loop {
        let mut pending = batch.lock();
        while pending.lines.is_empty() && pending.errors.is_empty() && !pending.closed {
            pending = batch
                .wake
                .wait(pending)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if !pending.closed && !pending.urgent && pending.lines.len() < FLUSH_BYTES {
            pending = batch
                .wake
                .wait_timeout_while(pending, FLUSH_INTERVAL, |p| {
                    !p.closed && !p.urgent && p.lines.len() < FLUSH_BYTES
                })
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        std::mem::swap(&mut pending.lines, &mut lines);
        std::mem::swap(&mut pending.errors, &mut errors);
        pending.urgent = false;
        let closed = pending.closed;
        drop(pending);
        batch.taken.notify_all();
        if closed && lines.is_empty() && errors.is_empty() {
            return;
        }
        sinks.write(&lines, &errors);
        lines.clear();
        errors.clear();
        // After a burst, don't keep megabytes of spare capacity.
        lines.shrink_to(4 * FLUSH_BYTES);
        errors.shrink_to(FLUSH_BYTES);
    }
}

fn open_files(settings: &LogSettings) -> io::Result<(DailyFile, DailyFile)> {
    std::fs::create_dir_all(&settings.dir)?;
    let clock: Clock = Arc::new(Utc::now);
    Ok((
        DailyFile::open(
            &settings.dir,
            "application",
            settings.time_zone,
            settings.retention_days,
            clock.clone(),
        )?,
        DailyFile::open(
            &settings.dir,
            "error",
            settings.time_zone,
            settings.retention_days,
            clock,
        )?,
    ))
}

/// The source of "now" for rotation (injectable for tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A log file that rotates at midnight in `time_zone` and prunes old days.
pub struct DailyFile {
    dir: PathBuf,
    stem: String,
    time_zone: Tz,
    retention_days: u32,
    clock: Clock,
    day: NaiveDate,
    file: File,
}

impl DailyFile {
    pub fn open(
        dir: &Path,
        stem: &str,
        time_zone: Tz,
        retention_days: u32,
        clock: Clock,
    ) -> io::Result<Self> {
        let path = dir.join(format!("{stem}.log"));
        let today = clock().with_timezone(&time_zone).date_naive();
        // A plain file left from an earlier day is that day's file.
        let day = match std::fs::metadata(&path).and_then(|m| m.modified()) {
            Ok(modified) => DateTime::<Utc>::from(modified)
                .with_timezone(&time_zone)
                .date_naive()
                .min(today),
            Err(_) => today,
        };
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut daily = DailyFile {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
            time_zone,
            retention_days,
            clock,
            day,
            file,
        };
        daily.roll_if_needed()?;
        daily.prune();
        Ok(daily)
    }

    fn plain_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.stem))
    }

    fn dated_path(&self, day: NaiveDate) -> PathBuf {
        self.dir
            .join(format!("{}.{}.log", self.stem, day.format("%Y-%m-%d")))
    }

    fn roll_if_needed(&mut self) -> io::Result<()> {
        let today = (self.clock)().with_timezone(&self.time_zone).date_naive();
        if today <= self.day {
            return Ok(());
        }
        self.file.flush()?;
        let dated = self.dated_path(self.day);
        if dated.exists() {
            // Should not happen (one roll per day); keep both rather than lose lines.
            let mut existing = OpenOptions::new().append(true).open(&dated)?;
            existing.write_all(&std::fs::read(self.plain_path())?)?;
            std::fs::remove_file(self.plain_path())?;
        } else {
            std::fs::rename(self.plain_path(), &dated)?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.plain_path())?;
        self.day = today;
        self.prune();
        Ok(())
    }

    /// Deletes dated files older than the retention.
    fn prune(&self) {
        let today = (self.clock)().with_timezone(&self.time_zone).date_naive();
        let Some(oldest_kept) =
            today.checked_sub_days(chrono::Days::new(u64::from(self.retention_days)))
        else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let prefix = format!("{}.", self.stem);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(date) = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".log"))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            else {
                continue;
            };
            if date < oldest_kept {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.roll_if_needed()?;
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The service's line format (or JSON with the same fields).
struct LineFormat {
    time_zone: Tz,
    json: bool,
}

/// `2025-06-08 14:41:43.260` in a time zone. The part up to the seconds is
/// formatted once per second per thread, not once per line.
struct Timestamp {
    seconds: Rc<str>,
    millis: u32,
}

thread_local! {
    /// The last second formatted on this thread: (zone, unix second, text).
    static LAST_SECOND: RefCell<Option<(Tz, i64, Rc<str>)>> = const { RefCell::new(None) };
}

impl Timestamp {
    fn now(time_zone: Tz) -> Self {
        let now = Utc::now();
        let second = now.timestamp();
        let millis = now.timestamp_subsec_millis().min(999);
        let seconds = LAST_SECOND.with(|last| {
            let mut last = last.borrow_mut();
            match &*last {
                Some((zone, at, text)) if *zone == time_zone && *at == second => text.clone(),
                _ => {
                    let text: Rc<str> = now
                        .with_timezone(&time_zone)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()
                        .into();
                    *last = Some((time_zone, second, text.clone()));
                    text
                }
            }
        });
        Timestamp { seconds, millis }
    }
}

impl Timestamp {
    fn write_to(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        out.write_str(&self.seconds)?;
        out.write_char('.')?;
        let millis = self.millis;
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            // `millis` is below 1000: three decimal digits.
            out.write_char(char::from_digit(digit, 10).unwrap_or('0'))?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write_to(f)
    }
}

/// Collects an event's message and fields.
#[derive(Default)]
struct Fields {
    message: String,
    extra: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.extra
                .push((field.name().to_string(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.extra
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let time = Timestamp::now(self.time_zone);
        let module = meta.module_path().unwrap_or_else(|| meta.target());
        // The enclosing span; outside any, the name an event was given
        // (`info!(name: "request", …)`), if it was given one.
        let function = ctx
            .event_scope()
            .and_then(|mut scope| scope.next().map(|span| span.name()))
            // (Unnamed events are called `event <file>:<line>`, those from
            // the `log` crate `log event`.)
            .or_else(|| Some(meta.name()).filter(|name| !name.contains(' ')))
            .unwrap_or("-");
        let origin = Origin {
            level: meta.level(),
            module,
            function,
            line: meta.line().unwrap_or(0),
        };
        if self.json {
            let mut fields = Fields::default();
            event.record(&mut fields);
            return writer.write_str(&json_line(&time, &origin, fields.message, fields.extra));
        }
        write_prefix(&mut writer, &time, &origin)?;
        // The message and fields go straight into the line (no copy of the
        // message first); one event, one line: continuation lines are
        // indented into it.
        let mut fields = LineFields {
            out: Indented(&mut writer),
            extra: String::new(),
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        if !fields.extra.is_empty() {
            let extra = std::mem::take(&mut fields.extra);
            fields.out.write_str(&extra)?;
        }
        writer.write_char('\n')
    }
}

/// Where a line comes from.
struct Origin<'a> {
    level: &'a Level,
    module: &'a str,
    function: &'a str,
    line: u32,
}

/// `time | LEVEL    | module:function:line - `
fn write_prefix(
    out: &mut impl std::fmt::Write,
    time: &Timestamp,
    origin: &Origin<'_>,
) -> std::fmt::Result {
    time.write_to(out)?;
    out.write_str(" | ")?;
    out.write_str(padded_level_name(origin.level))?;
    out.write_str(" | ")?;
    out.write_str(origin.module)?;
    out.write_char(':')?;
    out.write_str(origin.function)?;
    out.write_char(':')?;
    out.write_str(itoa::Buffer::new().format(origin.line))?;
    out.write_str(" - ")
}

/// The same fields as one JSON object, and its newline.
fn json_line(
    time: &Timestamp,
    origin: &Origin<'_>,
    message: String,
    extra: Vec<(String, String)>,
) -> String {
    let mut object = serde_json::Map::new();
    object.insert("time".into(), time.to_string().into());
    object.insert("level".into(), origin.level.as_str().into());
    object.insert("module".into(), origin.module.into());
    object.insert("function".into(), origin.function.into());
    object.insert("line".into(), origin.line.into());
    object.insert("message".into(), message.into());
    for (k, v) in extra {
        object.insert(k, v.into());
    }
    let mut line = serde_json::Value::Object(object).to_string();
    line.push('\n');
    line
}

/// What `init` installed, for the lines written without `tracing`.
struct Installed {
    batch: Arc<Batch>,
    time_zone: Tz,
    json: bool,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Whether `init` installed this process's subscriber.
pub fn is_installed() -> bool {
    INSTALLED.get().is_some()
}

/// Writes an INFO line straight into the log batch, formatted as `tracing`
/// would format an event of `module`, `function` and source `line` outside
/// any span. For the access line of every request: `tracing`'s dispatch of
/// one event cost about a tenth of a whole `/healthz` request. `message`
/// writes the message into the line (kept per thread: no allocation); it
/// is one line (an access line: its path and request id cannot hold a line
/// break, HTTP forbids them there), not scanned for breaks. The
/// caller checks the filter first (`tracing::enabled!` at its own call site).
/// False when `init` has not run (an application inside tests): log through
/// `tracing` then.
pub fn write_info(
    module: &str,
    function: &str,
    line: u32,
    message: impl FnOnce(&mut String),
) -> bool {
    thread_local! {
        /// The line being put together (kept: no allocation per line).
        static LINE: RefCell<String> = const { RefCell::new(String::new()) };
    }
    let Some(installed) = INSTALLED.get() else {
        return false;
    };
    let time = Timestamp::now(installed.time_zone);
    let origin = Origin {
        level: &Level::INFO,
        module,
        function,
        line,
    };
    if installed.json {
        let mut text = String::new();
        message(&mut text);
        let text = json_line(&time, &origin, text, Vec::new());
        let _ = installed.batch.append(text.as_bytes(), false);
        return true;
    }
    let write = |text: &mut String| {
        // Writing to a String cannot fail.
        let _ = write_prefix(text, &time, &origin);
        message(text);
        debug_assert!(!text.contains('\n'), "write_info: one line, no line break");
        text.push('\n');
        // The batch fails only when stdout does, after the writer stopped.
        let _ = installed.batch.append(text.as_bytes(), false);
    };
    let mut write = Some(write);
    let _ = LINE.try_with(|kept| {
        if let (Ok(mut text), Some(write)) = (kept.try_borrow_mut(), write.take()) {
            text.clear();
            write(&mut text);
            // A rare long line does not stay allocated.
            if text.capacity() > 4096 {
                *text = String::new();
            }
        }
    });
    // The kept line is in use or gone (the thread is ending): a new one.
    if let Some(write) = write {
        write(&mut String::new());
    }
    true
}

/// A line break inside a message, and the indent that follows it.
const CONTINUATION: &str = "\n    ";

/// Writes to the line, each line break followed by the continuation indent.
struct Indented<'w, W>(&'w mut W);

impl<W: std::fmt::Write> std::fmt::Write for Indented<'_, W> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        if !text.contains('\n') {
            return self.0.write_str(text);
        }
        let mut parts = text.split('\n');
        if let Some(first) = parts.next() {
            self.0.write_str(first)?;
        }
        for part in parts {
            self.0.write_str(CONTINUATION)?;
            self.0.write_str(part)?;
        }
        Ok(())
    }
}

/// Writes an event's message into its line; other fields (` name=value`)
/// are kept to follow it.
struct LineFields<'w, 'a> {
    out: Indented<'w, Writer<'a>>,
    extra: String,
    result: std::fmt::Result,
}

impl Visit for LineFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.result = self.result.and_then(|()| self.out.write_str(value));
        } else {
            let _ = write!(self.extra, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.result = self.result.and_then(|()| write!(self.out, "{value:?}"));
        } else {
            let _ = write!(self.extra, " {}={value:?}", field.name());
        }
    }
}

/// The level name padded to 8 characters, as the line format wants it.
fn padded_level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR   ",
        Level::WARN => "WARNING ",
        Level::INFO => "INFO    ",
        Level::DEBUG => "DEBUG   ",
        Level::TRACE => "TRACE   ",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn clock_at(time: Arc<Mutex<DateTime<Utc>>>) -> Clock {
        Arc::new(move || *time.lock().expect("clock"))
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_day_boundary_starts_a_new_file_and_old_days_are_pruned() {
        let dir = tempfile::tempdir().expect("dir");
        // Files from long ago and from within the retention.
        std::fs::write(dir.path().join("application.2025-01-01.log"), "old\n").expect("write");
        std::fs::write(dir.path().join("application.2025-06-05.log"), "recent\n").expect("write");
        std::fs::write(dir.path().join("unrelated.2025-01-01.log"), "keep\n").expect("write");
        let now = Arc::new(Mutex::new(at("2025-06-08T23:59:59Z")));
        let mut file = DailyFile::open(
            dir.path(),
            "application",
            Tz::UTC,
            14,
            clock_at(now.clone()),
        )
        .expect("open");
        file.write_all(b"day one\n").expect("write");
        assert!(!dir.path().join("application.2025-01-01.log").exists());
        assert!(dir.path().join("application.2025-06-05.log").exists());
        assert!(dir.path().join("unrelated.2025-01-01.log").exists());

        *now.lock().expect("clock") = at("2025-06-09T00:00:01Z");
        file.write_all(b"day two\n").expect("write");
        file.flush().expect("flush");
        let rolled = std::fs::read_to_string(dir.path().join("application.2025-06-08.log"))
            .expect("yesterday's file");
        assert_eq!(rolled, "day one\n");
        let current = std::fs::read_to_string(dir.path().join("application.log")).expect("today");
        assert_eq!(current, "day two\n");

        // On 06-20, with 14 days kept, 06-05 is past the retention; 06-08
        // stays and 06-09 (the day just rolled) is dated.
        *now.lock().expect("clock") = at("2025-06-20T08:00:00Z");
        file.write_all(b"later\n").expect("write");
        assert!(!dir.path().join("application.2025-06-05.log").exists());
        assert!(dir.path().join("application.2025-06-08.log").exists());
        assert!(dir.path().join("application.2025-06-09.log").exists());
    }

    #[test]
    fn batched_lines_reach_the_files_by_the_time_the_writer_stops() {
        let dir = tempfile::tempdir().expect("dir");
        let now = Arc::new(Mutex::new(at("2025-06-08T10:00:00Z")));
        let open = |stem| {
            DailyFile::open(dir.path(), stem, Tz::UTC, 14, clock_at(now.clone())).expect("open")
        };
        let files = (open("application"), open("error"));
        let batch = Arc::new(Batch::default());
        let writer = {
            let batch = batch.clone();
            std::thread::spawn(move || {
                write_batches(
                    &batch,
                    Sinks {
                        stdout: false,
                        files: Some(files),
                    },
                )
            })
        };
        let make = BatchWriter(batch.clone());
        let mut expected = String::new();
        let mut expected_errors = String::new();
        // Enough to fill several batches, from several threads.
        std::thread::scope(|scope| {
            for t in 0..4 {
                let make = &make;
                scope.spawn(move || {
                    for i in 0..5000 {
                        let line = format!("thread {t} line {i} {}\n", "x".repeat(40));
                        let mut w = make.make_writer();
                        w.write_all(line.as_bytes()).expect("write");
                    }
                });
            }
        });
        for t in 0..4 {
            for i in 0..5000 {
                expected.push_str(&format!("thread {t} line {i} {}\n", "x".repeat(40)));
            }
        }
        for i in 0..3 {
            let line = format!("error {i}\n");
            let mut w = EventWriter {
                batch: &batch,
                error: true,
            };
            w.write_all(line.as_bytes()).expect("write");
            expected.push_str(&line);
            expected_errors.push_str(&line);
        }
        drop(LogGuards {
            writer: Some(writer),
            batch,
        });
        let application =
            std::fs::read_to_string(dir.path().join("application.log")).expect("application");
        let mut got: Vec<&str> = application.lines().collect();
        let mut want: Vec<&str> = expected.lines().collect();
        // Threads interleave; each line is whole and none is lost.
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        let errors = std::fs::read_to_string(dir.path().join("error.log")).expect("error");
        assert_eq!(errors, expected_errors);
    }

    #[test]
    fn timestamps_are_in_the_time_zone_with_milliseconds() {
        let jakarta: Tz = "Asia/Jakarta".parse().expect("tz");
        for zone in [Tz::UTC, jakarta, Tz::UTC] {
            let before = Utc::now().with_timezone(&zone);
            let stamp = Timestamp::now(zone).to_string();
            let after = Utc::now().with_timezone(&zone);
            let parsed = chrono::NaiveDateTime::parse_from_str(&stamp, "%Y-%m-%d %H:%M:%S%.3f")
                .expect("the format");
            assert_eq!(stamp.len(), 23, "{stamp}");
            let low = before.naive_local() - chrono::Duration::milliseconds(1);
            assert!(parsed >= low && parsed <= after.naive_local(), "{stamp}");
        }
    }

    #[test]
    fn the_day_follows_the_configured_time_zone() {
        let dir = tempfile::tempdir().expect("dir");
        let jakarta: Tz = "Asia/Jakarta".parse().expect("tz");
        // 18:00 UTC is already the next day in Jakarta (UTC+7).
        let now = Arc::new(Mutex::new(at("2025-06-08T16:00:00Z")));
        let mut file =
            DailyFile::open(dir.path(), "error", jakarta, 14, clock_at(now.clone())).expect("open");
        file.write_all(b"a\n").expect("write");
        *now.lock().expect("clock") = at("2025-06-08T18:00:00Z");
        file.write_all(b"b\n").expect("write");
        assert!(dir.path().join("error.2025-06-08.log").exists());
    }
}
