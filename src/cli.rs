//! The command line as typed: raw flags only. `config` turns them into settings.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "metricsctl",
    version,
    about = "Operator CLI for the sensor-metrics PostgreSQL database",
    long_about = "Operator CLI for the sensor-metrics PostgreSQL database (processed_events + metrics): \
                  schema migrations, checks, lag and replay.\n\n\
                  Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (could not run).",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// No progress bars and no informational messages on stderr (errors are still printed)
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the schema migrations (or show their status with `migrate status`)
    Migrate(MigrateCommand),
    /// Show metricsctl end to end on a throwaway local PostgreSQL (or on the configured database)
    Demo(DemoArgs),
    /// Print a shell completion script: metricsctl completions bash > /etc/bash_completion.d/metricsctl
    Completions(CompletionsArgs),
}

/// Where the database is. Read in this order: --database-url, DATABASE_URL, the DB_HOST/DB_PORT/
/// DB_USER/DB_PASSWORD/DB_NAME variables, then postgresql://metrics:metrics@localhost:5432/metrics.
#[derive(Debug, Args, Clone, Default)]
pub struct ConnectArgs {
    /// PostgreSQL URL or key=value string; sslmode and sslrootcert work as in psql [env: DATABASE_URL]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// Give up connecting after this long (e.g. 5s, 1m)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ReportFormat {
    /// A table for people
    #[default]
    Table,
    /// JSON for scripts
    Json,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MigrateCommand {
    #[command(subcommand)]
    pub action: Option<MigrateAction>,

    #[command(flatten)]
    pub apply: MigrateArgs,
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Each migration's version, name, state and when it was applied. Exit 1 when some are
    /// pending, 2 when the database has drifted from this binary's migrations
    Status(MigrateStatusArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Print the SQL that would run and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How long to wait for another migrate (or a lock on the tables) before giving up
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct MigrateStatusArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Leave the throwaway PostgreSQL running and print how to reach and remove it
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Durations as operators write them: 500ms, 90s, 5m, 1h, 2d.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; write durations like 500ms, 90s, 5m, 1h or 2d"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_read_the_way_operators_write_them() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").unwrap_err().contains("90s"));
    }
}
