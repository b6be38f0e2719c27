//! The `healthbook` command: `serve`, `migrate`, `check-config`.
//!
//! Exit codes: 0 on success (and for `--help`, `--version`), 2 for a command line that is
//! not understood, 1 when the command fails (a configuration error, a database that refuses
//! us, a port in use); the reason is one line on stderr, without a backtrace.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use healthbook::config::Settings;
use healthbook::startup::Application;
use healthbook::store::{Backend, Store, StoreOptions};

/// Healthbook: a FHIR R4 personal health record server.
///
/// Settings: config/default.toml (built in) < config/$HEALTHBOOK_ENV.toml <
/// HEALTHBOOK__SECTION__KEY environment variables (README.md, "Configuration").
#[derive(Parser)]
#[command(name = "healthbook", version, arg_required_else_help = true)]
struct Cli {
    /// Folder holding the $HEALTHBOOK_ENV.toml overlays.
    #[arg(
        long,
        global = true,
        env = "HEALTHBOOK_CONFIG_DIR",
        default_value = "config",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the FHIR server (a SQLite database is created and migrated automatically).
    Serve,
    /// Apply pending database migrations (required for PostgreSQL before `serve`).
    Migrate,
    /// Load and validate the settings, connect to the database, then exit.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("healthbook: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let settings = Settings::load(&cli.config_dir)?;
    // check-config answers on stdout alone; the others log.
    if !matches!(cli.command, Command::CheckConfig) {
        healthbook::telemetry::init(&settings.log);
    }
    match cli.command {
        Command::Serve => serve(&settings),
        Command::Migrate => {
            let store = open(&settings)?;
            let applied = store.migrate().context("migrating the database")?;
            println!("{applied} migration(s) applied");
            Ok(())
        }
        Command::CheckConfig => check_config(&settings),
    }
}

fn open(settings: &Settings) -> anyhow::Result<Store> {
    Ok(Store::open(&StoreOptions {
        url: settings.database.url.clone(),
        pool_max_size: 1,
        acquire_timeout: Duration::from_millis(settings.database.acquire_timeout_ms),
        // Migrations and checks may take as long as they need.
        statement_timeout: Duration::ZERO,
    })?)
}

/// Settings first, then the database: a SQLite file that does not exist yet is fine (serve
/// creates it); a PostgreSQL database must answer and be migrated.
fn check_config(settings: &Settings) -> anyhow::Result<()> {
    println!("configuration is valid");
    let (backend, target) = Backend::from_url(&settings.database.url)?;
    if backend == Backend::Sqlite && !std::path::Path::new(&target).exists() {
        println!("database: SQLite file {target} does not exist yet; `serve` creates it");
        return Ok(());
    }
    let pending = open(settings)?
        .probe()
        .context("database.url: cannot use the database")?;
    match (backend, pending) {
        (_, false) => println!("database: reachable, schema up to date"),
        (Backend::Sqlite, true) => {
            println!("database: reachable, migrations pending (`serve` applies them)")
        }
        (Backend::Postgres, true) => {
            anyhow::bail!(
                "database: reachable, but migrations are pending; run `healthbook migrate`"
            )
        }
    }
    Ok(())
}

fn serve(settings: &Settings) -> anyhow::Result<()> {
    healthbook::http::block_on(async {
        let app = Application::build(settings).await?;
        tracing::info!(
            port = app.port(),
            base_url = app.base_url(),
            "healthbook serving"
        );
        app.run_until_stopped().await?;
        tracing::info!("healthbook stopped");
        Ok(())
    })
}
