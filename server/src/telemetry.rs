//! Logging setup: text or JSON lines, filtered by `log.level` (or `RUST_LOG`). Colours only
//! when the output is a terminal, so log files and collectors get plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(settings: &LogSettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// Checks a `log.level` filter: comma-separated directives, each a level or `target=level`
/// (`info`, `healthbook=debug,actix_web=warn`). tracing would take a bare word such as
/// `loud` as the name of a target to log at every level, and then log nothing of ours.
///
/// # Errors
/// A sentence naming the directive that is neither.
pub fn check_filter(filter: &str) -> Result<(), String> {
    let valid_level = |level: &str| LEVELS.contains(&level.to_ascii_lowercase().as_str());
    for directive in filter.split(',').map(str::trim) {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.is_empty() => level,
            _ => directive,
        };
        if !valid_level(level) {
            return Err(format!(
                "'{directive}' is not a level; use one of {} or target=level \
                 (e.g. healthbook=debug)",
                LEVELS.join(", ")
            ));
        }
    }
    EnvFilter::try_new(filter)
        .map(drop)
        .map_err(|e| format!("'{filter}' is not a valid filter: {e}"))
}

#[cfg(test)]
mod tests {
    use super::check_filter;

    #[test]
    fn filters_are_levels_or_target_levels() {
        assert!(check_filter("info").is_ok());
        assert!(check_filter("healthbook=debug,actix_web=warn").is_ok());
        assert!(check_filter("WARN").is_ok());
        let e = check_filter("loud").unwrap_err();
        assert!(e.contains("'loud'") && e.contains("trace, debug"), "{e}");
        assert!(check_filter("healthbook=loud").is_err());
        assert!(check_filter("").is_err());
    }
}
