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
//! files older than `LOG_RETENTION_DAYS` are deleted. File writes go through
//! a non-blocking channel, flushed when the guards returned by `init` drop.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
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

/// Keeps the background writers alive; dropping it flushes the files.
pub struct LogGuards {
    _guards: Vec<WorkerGuard>,
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
    let format = || LineFormat {
        time_zone: settings.time_zone,
        json: settings.json,
    };
    let stdout = tracing_subscriber::fmt::layer()
        .event_format(format())
        .with_writer(io::stdout)
        .with_filter(LevelFilter::INFO);
    let mut guards = Vec::new();
    let files = match open_files(settings) {
        Ok((application, error)) => {
            let (application, g1) = tracing_appender::non_blocking(application);
            let (error, g2) = tracing_appender::non_blocking(error);
            guards.push(g1);
            guards.push(g2);
            Some(
                tracing_subscriber::fmt::layer()
                    .event_format(format())
                    .with_writer(application)
                    .with_filter(LevelFilter::INFO)
                    .and_then(
                        tracing_subscriber::fmt::layer()
                            .event_format(format())
                            .with_writer(error)
                            .with_filter(LevelFilter::ERROR),
                    ),
            )
        }
        Err(e) => {
            eprintln!(
                "LOG_DIR: cannot write log files in {}: {e}; logging to stdout only",
                settings.dir.display()
            );
            None
        }
    };
    let _ = Registry::default()
        .with(filter)
        .with(stdout)
        .with(files)
        .try_init();
    LogGuards { _guards: guards }
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
        let time = Utc::now()
            .with_timezone(&self.time_zone)
            .format("%Y-%m-%d %H:%M:%S%.3f");
        let module = meta.module_path().unwrap_or_else(|| meta.target());
        let function = ctx
            .event_scope()
            .and_then(|scope| scope.from_root().last().map(|span| span.name()))
            .unwrap_or("-");
        let line = meta.line().unwrap_or(0);
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut message = fields.message;
        if self.json {
            let mut object = serde_json::Map::new();
            object.insert("time".into(), time.to_string().into());
            object.insert("level".into(), meta.level().as_str().into());
            object.insert("module".into(), module.into());
            object.insert("function".into(), function.into());
            object.insert("line".into(), line.into());
            object.insert("message".into(), message.into());
            for (k, v) in fields.extra {
                object.insert(k, v.into());
            }
            return writeln!(writer, "{}", serde_json::Value::Object(object));
        }
        for (k, v) in &fields.extra {
            let _ = write!(message, " {k}={v}");
        }
        // One event, one line: continuation lines are indented into it.
        let message = message.replace('\n', "\n    ");
        writeln!(
            writer,
            "{time} | {:<8} | {module}:{function}:{line} - {message}",
            level_name(meta.level())
        )
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
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
