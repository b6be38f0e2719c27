//! The `healthbook` command: `serve`, `migrate`, `check-config`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use healthbook::config::Settings;
use healthbook::startup::Application;
use healthbook::store::{Store, StoreOptions};

const USAGE: &str = "usage: healthbook <serve|migrate|check-config>

  serve         start the FHIR server (SQLite is migrated automatically)
  migrate       apply pending database migrations (required for PostgreSQL)
  check-config  load and validate the settings, then exit

Settings: config/default.toml < config/$HEALTHBOOK_ENV.toml < HEALTHBOOK__SECTION__KEY
environment variables; HEALTHBOOK_CONFIG_DIR names the config folder (default ./config).";

fn main() -> anyhow::Result<()> {
    let command = std::env::args().nth(1).unwrap_or_default();
    let config_dir = std::env::var_os("HEALTHBOOK_CONFIG_DIR")
        .map_or_else(|| PathBuf::from("config"), PathBuf::from);
    let settings = match command.as_str() {
        "serve" | "migrate" | "check-config" => Settings::load(&config_dir)?,
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    healthbook::telemetry::init(&settings.log);
    match command.as_str() {
        "serve" => serve(&settings),
        "migrate" => {
            let store = Store::open(&StoreOptions {
                url: settings.database.url.clone(),
                pool_max_size: 1,
                acquire_timeout: Duration::from_millis(settings.database.acquire_timeout_ms),
            })?;
            let applied = store.migrate().context("migrating the database")?;
            println!("{applied} migration(s) applied");
            Ok(())
        }
        _ => {
            println!("configuration is valid");
            Ok(())
        }
    }
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
