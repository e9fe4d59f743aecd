//! The command line: `serve` (default), `migrate`, `createsuperuser`,
//! `truncate`, `check`, `import-django`.

use std::io::IsTerminal;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::config::Config;
use crate::db::Database;
use crate::db::entities::{
    checkin, event, group, idempotency_key, login_failure, media, payment, registration,
    registration_revocation, revoked_token, ticket, user, user_group,
};
use crate::state::AppState;
use crate::{Application, logging};

#[derive(Parser, Debug)]
#[command(
    name = "dicoevent",
    version,
    about = "DicoEvent: events, tickets, registrations and payments over HTTP"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Apply migrations, then serve the HTTP API (the default).
    Serve {
        /// Address to listen on (default: HOST, else 127.0.0.1).
        #[arg(long)]
        host: Option<String>,
        /// Port to listen on (default: PORT, else 8000).
        #[arg(long)]
        port: Option<u16>,
        /// Do not run the background worker in this process (run
        /// `dicoevent worker` processes instead).
        #[arg(long)]
        no_worker: bool,
    },
    /// Run background work only (reminder and confirmation e-mails).
    Worker,
    /// Run one pass of the background work now, then exit: schedule the
    /// reminders that are due and send every due e-mail (confirmations and
    /// reminders).
    SendReminders,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a superuser account.
    Createsuperuser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// The password; else DICOEVENT_SUPERUSER_PASSWORD, else a prompt.
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete all data except superuser accounts.
    Truncate {
        /// Confirm: without it nothing is deleted.
        #[arg(long)]
        yes: bool,
    },
    /// Print the effective configuration and reach every configured service.
    Check,
    /// Import a Django DicoEvent installation (database and posters) into
    /// the configured database and storage, keeping every id; re-runnable.
    ImportDjango(crate::import::ImportArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    let _log_guards = logging::init(&logging::LogSettings::from_config(&config));
    let ignored = Config::ignored_dotenv_variables();
    if !ignored.is_empty() {
        tracing::info!(
            "ignoring variables of .env that DicoEvent does not use (e.g. the Django service's): {}",
            ignored.join(", ")
        );
    }
    match cli.command.unwrap_or(Command::Serve {
        host: None,
        port: None,
        no_worker: false,
    }) {
        Command::Serve {
            host,
            port,
            no_worker,
        } => {
            if let Some(host) = host {
                config.host = host;
            }
            if let Some(port) = port {
                config.port = port;
            }
            serve(config, !no_worker).await
        }
        Command::Worker => worker(config).await,
        Command::SendReminders => send_reminders(config).await,
        Command::Migrate => {
            let db = Database::connect(&config).await?;
            let applied = db.migrate().await?;
            if applied.is_empty() {
                println!("No migrations to apply ({}).", config.database.describe());
            } else {
                println!(
                    "Applied {} ({}):",
                    plural(applied.len(), "migration", "migrations"),
                    config.database.describe()
                );
                for name in &applied {
                    println!("  {name}");
                }
                tracing::info!(
                    "Migrations applied by the command line: {}",
                    applied.join(", ")
                );
            }
            Ok(())
        }
        Command::Createsuperuser {
            username,
            email,
            password,
        } => create_superuser(config, username, email, password).await,
        Command::Truncate { yes } => truncate(config, yes).await,
        Command::Check => check(config).await,
        Command::ImportDjango(args) => crate::import::run(config, args).await,
    }
}

#[tracing::instrument(name = "serve", skip_all)]
async fn serve(config: Config, with_worker: bool) -> anyhow::Result<()> {
    for (name, value) in config.summary() {
        tracing::info!("config {name} = {value}");
    }
    let app = Application::build(config).await?;
    tracing::info!("listening on http://{}", app.local_addr());
    tokio::spawn(sweep_posters(app.state().clone()));
    let (stop_worker, stopped) = tokio::sync::watch::channel(false);
    let worker =
        with_worker.then(|| tokio::spawn(crate::jobs::run_worker(app.state().clone(), stopped)));
    app.run_until_stopped(crate::shutdown_signal())
        .await
        .context("the HTTP server failed")?;
    let _ = stop_worker.send(true);
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    tracing::info!("stopped");
    Ok(())
}

#[tracing::instrument(name = "worker", skip_all)]
async fn worker(config: Config) -> anyhow::Result<()> {
    let state = AppState::new(config).await?;
    state.db.migrate().await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(crate::jobs::run_worker(state, stopped));
    crate::shutdown_signal().await;
    let _ = stop.send(true);
    let _ = running.await;
    Ok(())
}

async fn send_reminders(config: Config) -> anyhow::Result<()> {
    let state = AppState::new(config).await?;
    state.db.migrate().await?;
    let worker = format!("send-reminders-{}", uuid::Uuid::now_v7().simple());
    let report = crate::jobs::run_pass(&state, &worker).await?;
    println!(
        "{} scheduled; {} sent, {} failed (will be retried), {} skipped.",
        plural(report.reminders_scheduled, "reminder", "reminders"),
        plural(report.sent, "mail", "mails"),
        report.failed,
        report.skipped
    );
    Ok(())
}

/// "1 mail", "2 mails", "0 mails".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Every 15 minutes, removes stored posters left without a row (a crash
/// between storing an object and committing its row).
async fn sweep_posters(state: AppState) {
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(15 * 60));
    loop {
        interval.tick().await;
        match crate::domain::posters::sweep_orphans(&state, std::time::Duration::from_secs(10 * 60))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!("poster sweep removed {n} orphaned objects"),
            Err(e) => tracing::warn!("poster sweep failed: {e:#}"),
        }
    }
}

async fn create_superuser(
    config: Config,
    username: String,
    email: String,
    password: Option<String>,
) -> anyhow::Result<()> {
    let given = password.or_else(|| std::env::var("DICOEVENT_SUPERUSER_PASSWORD").ok());
    // Prompted (on a terminal): a refused password is asked again, as
    // Django's createsuperuser does; given non-interactively it is an error.
    let interactive = given.is_none();
    let mut password = match given {
        Some(p) => p,
        None => prompt_password()?,
    };
    let state = AppState::new(config.clone()).await?;
    state.db.migrate().await?;
    loop {
        let new_user = crate::domain::accounts::NewUser {
            username: username.clone(),
            email: email.clone(),
            password: password.clone(),
            first_name: String::new(),
            last_name: String::new(),
            is_superuser: true,
            verification: None,
        };
        match crate::domain::accounts::create_user(
            &state,
            new_user,
            Some(crate::db::audit::Context::cli()),
        )
        .await
        {
            Ok(created) => {
                // Logged at INFO by the domain, as for the API's sign-ups.
                crate::cache::refresh_running_servers(&config, &state.db).await?;
                println!("Superuser {} created.", created.username);
                return Ok(());
            }
            Err(crate::domain::DomainError::Invalid(errors)) => {
                let only_password = errors.0.iter().all(|(field, _)| field == "password");
                let lines: Vec<String> = errors
                    .0
                    .iter()
                    .flat_map(|(field, messages)| {
                        messages.iter().map(move |m| format!("{field}: {m}"))
                    })
                    .collect();
                if interactive && only_password {
                    eprintln!("This password was refused:\n  {}", lines.join("\n  "));
                    password = prompt_password()?;
                    continue;
                }
                bail!("the superuser was not created:\n  {}", lines.join("\n  "))
            }
            Err(other) => bail!("the superuser was not created: {other}"),
        }
    }
}

/// Asks for the password twice on the terminal, until both agree and it is
/// not blank.
fn prompt_password() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password given: pass --password, set DICOEVENT_SUPERUSER_PASSWORD, or run on a terminal to be prompted"
        );
    }
    loop {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        if first.is_empty() {
            eprintln!("A blank password is not allowed.");
            continue;
        }
        let second =
            rpassword::prompt_password("Password (again): ").context("reading the password")?;
        if first != second {
            eprintln!("The two passwords differ; try again.");
            continue;
        }
        return Ok(first);
    }
}

async fn truncate(config: Config, yes: bool) -> anyhow::Result<()> {
    if !yes {
        bail!(
            "truncate deletes every event, ticket, registration, payment, group and non-superuser account; run it with --yes to confirm"
        );
    }
    let db = Database::connect(&config).await?;
    db.migrate().await?;
    let txn = db.begin_write().await?;
    let posters: Vec<String> = media::Entity::find()
        .all(&*txn)
        .await?
        .into_iter()
        .map(|m| m.object_key)
        .collect();
    media::Entity::delete_many().exec(&*txn).await?;
    checkin::Entity::delete_many().exec(&*txn).await?;
    registration_revocation::Entity::delete_many()
        .exec(&*txn)
        .await?;
    payment::Entity::delete_many().exec(&*txn).await?;
    registration::Entity::delete_many().exec(&*txn).await?;
    ticket::Entity::delete_many().exec(&*txn).await?;
    event::Entity::delete_many().exec(&*txn).await?;
    user_group::Entity::delete_many().exec(&*txn).await?;
    group::Entity::delete_many().exec(&*txn).await?;
    idempotency_key::Entity::delete_many().exec(&*txn).await?;
    revoked_token::Entity::delete_many().exec(&*txn).await?;
    login_failure::Entity::delete_many().exec(&*txn).await?;
    let users = user::Entity::delete_many()
        .filter(user::Column::IsSuperuser.eq(false))
        .exec(&*txn)
        .await?;
    // The audit log is kept: it says this happened.
    let entry = crate::db::audit::Entry::about(
        crate::db::audit::Action::DataTruncated,
        "data",
        "all".into(),
        None,
        crate::db::audit::Changes::none()
            .with("accounts_removed", None::<u64>, users.rows_affected)
            .with("posters_removed", None::<u64>, posters.len() as u64),
    );
    crate::db::audit::record_one(&*txn, &crate::db::audit::Context::cli(), entry).await?;
    txn.commit().await?;
    tracing::info!(
        "All data deleted by the command line (truncate): {} non-superuser accounts removed, superusers kept",
        users.rows_affected
    );
    crate::cache::refresh_running_servers(&config, &db).await?;
    let storage = crate::storage::Storage::open(&config).await?;
    for key in &posters {
        if let Err(e) = storage.delete(key).await {
            eprintln!("could not delete stored poster {key}: {e}");
        }
    }
    println!(
        "Deleted all data; {} non-superuser accounts removed, superusers kept.",
        users.rows_affected
    );
    Ok(())
}

async fn check(config: Config) -> anyhow::Result<()> {
    println!("Configuration:");
    for (name, value) in config.summary() {
        println!("  {name:<16} {value}");
    }
    println!("Services:");
    // Each service: Ok(what was reached) or Err(why not).
    let mut pending = Vec::new();
    let database = match Database::connect(&config).await {
        Ok(db) => match db.ping().await {
            Ok(()) => {
                pending = db.pending_migrations().await.unwrap_or_default();
                Ok(config.database.describe())
            }
            Err(e) => Err(format!("UNREACHABLE: {e}")),
        },
        Err(e) => Err(format!("UNREACHABLE: {e:#}")),
    };
    let posters = match crate::storage::Storage::open(&config).await {
        Ok(storage) => match storage.ping().await {
            Ok(()) => Ok(storage.describe().to_string()),
            Err(e) => Err(format!("UNREACHABLE ({}): {e}", storage.describe())),
        },
        Err(e) => Err(format!("UNUSABLE: {e:#}")),
    };
    let mail = match crate::mail::Mailer::open(&config) {
        Ok(mailer) => match mailer.ping().await {
            Ok(()) => Ok(mailer.describe()),
            Err(e) => Err(format!("UNREACHABLE ({}): {e}", mailer.describe())),
        },
        Err(e) => Err(format!("UNUSABLE: {e:#}")),
    };
    let cache = match crate::cache::Cache::open(&config) {
        Ok(cache) if cache.status().await.healthy => Ok(cache.describe()),
        Ok(cache) => Err(format!("UNREACHABLE ({})", cache.describe())),
        Err(e) => Err(format!("UNUSABLE: {e:#}")),
    };
    let mut failed = false;
    for (name, result) in [
        ("database", database),
        ("posters", posters),
        ("mail", mail),
        ("cache", cache),
    ] {
        match result {
            Ok(reached) if name == "database" && !pending.is_empty() => {
                println!(
                    "  {name:<16} reachable ({reached}), but {} pending (`dicoevent migrate` applies them, and so does `serve` at start):",
                    plural(pending.len(), "migration is", "migrations are")
                );
                for migration in &pending {
                    println!("  {:<16}   {migration}", "");
                }
            }
            Ok(reached) => println!("  {name:<16} ok ({reached})"),
            Err(why) => {
                failed = true;
                println!("  {name:<16} {why}");
            }
        }
    }
    if failed {
        bail!("some configured services are unreachable");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::plural;

    #[test]
    fn counts_read_as_english() {
        assert_eq!(plural(1, "mail", "mails"), "1 mail");
        assert_eq!(plural(0, "mail", "mails"), "0 mails");
        assert_eq!(plural(2, "reminder", "reminders"), "2 reminders");
    }
}
