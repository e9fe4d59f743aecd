//! Log output. For now: stdout, filtered by `LOG_LEVEL` (RUST_LOG syntax),
//! with the statement logging of the database layer quiet by default.

use tracing_subscriber::EnvFilter;

const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn";

/// Installs the global subscriber. A bad `LOG_LEVEL` is reported and the
/// default is used instead.
pub fn init() {
    let filter = match std::env::var("LOG_LEVEL") {
        Ok(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(spec.trim()).unwrap_or_else(|e| {
                eprintln!("LOG_LEVEL: invalid filter {spec:?} ({e}); using {DEFAULT_FILTER:?}");
                EnvFilter::new(DEFAULT_FILTER)
            })
        }
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .try_init();
}
