//! The `dicoevent` command: see `dicoevent --help`.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: per-thread free lists without locks for the many small
/// allocations of a request, and freed memory returned to the system (after
/// a short delay) instead of kept in glibc's per-thread arenas — one Argon2
/// computation (19 MiB) per arena used to stay resident for ever.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = dicoevent::cli::Cli::parse();
    match dicoevent::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
