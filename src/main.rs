//! The `dicoevent` command: see `dicoevent --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tune_malloc();
    run()
}

#[tokio::main]
async fn run() -> ExitCode {
    let cli = dicoevent::cli::Cli::parse();
    match dicoevent::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc's malloc raises its mmap threshold to the size of each large block
/// freed (up to 32 MiB), after which blocks that size come from the heaps
/// of its per-thread arenas, which keep them once freed: one Argon2
/// computation (19 MiB) or large body per arena stays resident for ever.
/// A fixed threshold turns that off — blocks of 256 KiB and more are
/// mapped and unmapped, so freeing them returns them to the system — and a
/// fixed trim threshold returns free memory at the top of a heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    // SAFETY: `mallopt` only sets allocator parameters; called before any
    // thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
