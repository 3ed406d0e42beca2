//! The command line as typed: raw flags only. `config` turns them into settings.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::checks::rate::Bucket;
use crate::events::Format;

/// Events per transaction. Measured with bench/replay.sh (see README): throughput rises steeply
/// up to a few thousand and is flat beyond; larger batches only hold locks and memory longer.
pub const DEFAULT_BATCH_SIZE: u32 = 5000;
/// Writer connections for replay. Two keep a small server's cores busy (see README figures)
/// without crowding out the consumer.
pub const DEFAULT_REPLAY_JOBS: u32 = 2;

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
    /// Replay event files through the consumer's idempotent insert path: exactly once, streaming
    Replay(ReplayArgs),
    /// Write synthetic events (deterministic with --seed) for benchmarks and demos
    Generate(GenerateArgs),
    /// Validation checks: all of them (the default), or `ordering`, `duplicates`, `partitions`
    Check(CheckCommand),
    /// Monthly partitions of metrics: enable, create, list, drop (retention)
    Partitions(PartitionsCommand),
    /// How far behind ingestion is: newest metric, silent sensors, end-to-end latency
    Lag(LagArgs),
    /// Events ingested per minute (or hour), every bucket shown
    Rate(RateArgs),
    /// Fix what the checks find: the id sequence, duplicated guard rows and metrics, metrics
    /// without a guard row, and (with --release-lost) lost metrics
    Repair(RepairArgs),
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

    /// Build metrics with the guide's monthly partitioning (on a new or empty database), with
    /// partitions for this month and the next two
    #[arg(long)]
    pub partitioned: bool,

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
pub struct ReplayArgs {
    /// Event files (JSON Lines, CSV with a header, kcat -J envelopes; gzip or not); - is stdin
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,

    /// Read every file as this format instead of detecting it from its first line
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub input_format: Option<Format>,

    /// Events per transaction
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,

    /// Writers, each on its own connection; a sensor's events always go through the same one,
    /// in input order. --strict uses one
    #[arg(long, value_name = "N", default_value_t = DEFAULT_REPLAY_JOBS,
          value_parser = clap::value_parser!(u32).range(1..=32))]
    pub jobs: u32,

    /// Write every rejected line here, verbatim (CSV with its header), ready to fix and replay
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,

    /// Stop at the first bad line and commit nothing from that file
    #[arg(long)]
    pub strict: bool,

    /// Parse and validate everything and count what is already stored; write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Also restore lost metrics: events whose guard row exists but whose metric is missing get
    /// their metric from the file (never events retired by retention)
    #[arg(long)]
    pub repair: bool,

    /// How to print the summary
    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// How many events
    #[arg(value_name = "COUNT")]
    pub count: u64,

    /// How many sensors the events are spread over
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub sensors: u32,

    /// The same seed gives the same events
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// The format to write
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,

    /// Compress the output with gzip
    #[arg(long)]
    pub gzip: bool,

    /// Write here instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Timestamp of each sensor's first reading (RFC 3339)
    #[arg(long, default_value = "2026-01-01T00:00:00Z", value_parser = parse_timestamp)]
    pub start: DateTime<Utc>,

    /// Time between a sensor's readings
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Kafka partitions the sensors are spread over
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..))]
    pub kafka_partitions: u32,
}

/// How a check reports, for people, scripts and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum CheckFormat {
    /// Tables for people
    #[default]
    Table,
    /// JSON for scripts (documented, stable shape)
    Json,
    /// The main table as CSV
    Csv,
    /// A Nagios/Icinga plugin status line with perfdata, then details
    Nagios,
    /// Prometheus text format, for node_exporter's textfile collector
    Prometheus,
}

#[derive(Debug, Args, Clone)]
pub struct CheckOutputArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: CheckFormat,

    /// Sample rows shown
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub limit: u32,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CheckCommand {
    #[command(subcommand)]
    pub action: Option<CheckAction>,

    #[command(flatten)]
    pub all: CheckAllArgs,
}

#[derive(Debug, Subcommand)]
pub enum CheckAction {
    /// Every check: one summary, exit code the worst of them
    All(CheckAllArgs),
    /// Each sensor's events in delivery order: any event older than its predecessor?
    Ordering(OrderingArgs),
    /// Duplicated guard rows or metrics, lost metrics, metrics that bypassed the guard
    Duplicates(DuplicatesArgs),
    /// Partitioned metrics: current month covered, enough months ahead, DEFAULT empty, no gaps
    Partitions(CheckPartitionsArgs),
    /// metrics_id_seq past every stored id (else every insert fails)
    Sequence(SequenceArgs),
}

#[derive(Debug, Args)]
pub struct SequenceArgs {
    #[command(flatten)]
    pub output: CheckOutputArgs,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct CheckPartitionsArgs {
    /// WARNING when fewer future months than this have their partition
    #[arg(long, value_name = "MONTHS", default_value_t = crate::partitions::DEFAULT_MONTHS_AHEAD)]
    pub ahead: u32,

    #[command(flatten)]
    pub output: CheckOutputArgs,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct PartitionsCommand {
    #[command(subcommand)]
    pub action: PartitionsAction,
}

#[derive(Debug, Subcommand)]
pub enum PartitionsAction {
    /// Convert a plain metrics table to monthly partitions, in place, in one transaction
    Enable(PartitionsEnableArgs),
    /// Make sure monthly partitions exist from --from through N months ahead, filling gaps
    Create(PartitionsCreateArgs),
    /// Every partition with its bounds, rows and size; DEFAULT rows, gaps and months ahead
    List(PartitionsListArgs),
    /// Retention: drop (or --detach) monthly partitions older than N months
    Drop(PartitionsDropArgs),
}

#[derive(Debug, Args)]
pub struct PartitionsEnableArgs {
    /// Print the plan and the SQL; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How long to wait for the lock on metrics (the conversion holds it until it commits)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct PartitionsCreateArgs {
    /// How many months ahead of --from to cover (0: only that month)
    #[arg(long, value_name = "N")]
    pub months: u32,

    /// The first month (YYYY-MM, UTC); default: the current month
    #[arg(long, value_name = "YYYY-MM", value_parser = crate::partitions::Month::parse)]
    pub from: Option<crate::partitions::Month>,

    /// How long to wait for the lock on metrics
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub lock_timeout: Duration,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct PartitionsListArgs {
    /// Count every partition's rows instead of the planner's estimate
    #[arg(long)]
    pub exact: bool,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct PartitionsDropArgs {
    /// Retire monthly partitions that ended more than N months before the current month
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub older_than: u32,

    /// Detach them and keep them as standalone tables instead of dropping them
    #[arg(long)]
    pub detach: bool,

    /// Delete the retired events' guard rows (and those of events retired earlier from months
    /// before the cutoff): reclaims processed_events, but a redelivered or replayed event of those
    /// months is then stored again. By default guard rows are kept and the events stay retired
    #[arg(long)]
    pub forget_guard_rows: bool,

    /// The default since guard rows are kept; accepted for older scripts
    #[arg(long, hide = true, conflicts_with = "forget_guard_rows")]
    pub keep_guard_rows: bool,

    /// List what would be retired; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How long to wait for the lock on metrics
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub lock_timeout: Duration,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct CheckAllArgs {
    #[command(flatten)]
    pub output: CheckOutputArgs,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct OrderingArgs {
    /// Check one sensor (answered from its indexes) and list its violations
    #[arg(long, value_name = "SENSOR_ID")]
    pub sensor: Option<String>,

    /// Only events from this time on: RFC 3339, or a duration ago (2h, 7d)
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,

    #[command(flatten)]
    pub output: CheckOutputArgs,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DuplicatesArgs {
    #[command(flatten)]
    pub output: CheckOutputArgs,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct LagArgs {
    /// A sensor whose newest metric is older than this is listed as silent (WARNING)
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub stale: Duration,

    /// End-to-end latency percentiles cover the newest events of this last stretch of time
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub window: Duration,

    /// At most this many of the window's newest events are measured (bounds the cost)
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub latency_sample: u32,

    /// Lag at or above this is WARNING
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub warn: Duration,

    /// Lag at or above this is CRITICAL
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub crit: Duration,

    #[command(flatten)]
    pub output: CheckOutputArgs,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct RateArgs {
    /// How far back to look, in minutes
    #[arg(long, value_name = "N", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=525_600))]
    pub minutes: u32,

    /// Bucket size
    #[arg(long, value_enum, default_value_t = Bucket::Minute)]
    pub by: Bucket,

    /// WARNING when the last complete bucket has fewer events than this
    #[arg(long, value_name = "EVENTS")]
    pub warn_below: Option<i64>,

    /// CRITICAL when the last complete bucket has fewer events than this
    #[arg(long, value_name = "EVENTS")]
    pub crit_below: Option<i64>,

    #[command(flatten)]
    pub output: CheckOutputArgs,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// List exactly what would change (the same statements, rolled back); change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Delete the guard rows of lost metrics (a guard row whose metric is missing and was not
    /// retired), so the consumer or a replay delivers those events again. The operator's decision
    #[arg(long)]
    pub release_lost: bool,

    /// How long to wait for a table lock a repair needs (each repair holds it only while it runs)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub lock_timeout: Duration,

    /// Rows listed per repair (all are counted)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: u32,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Leave the throwaway PostgreSQL running and print how to reach and remove it
    #[arg(long)]
    pub keep: bool,

    /// Show the partitioned layout: migrate --partitioned, partitions and their check
    #[arg(long)]
    pub partitioned: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// An RFC 3339 timestamp with its offset.
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}; write timestamps like 2026-01-31T12:00:00Z"))
}

/// A point in time: RFC 3339, or a duration meaning that long ago.
pub fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(at.with_timezone(&Utc));
    }
    match humantime::parse_duration(text.trim()) {
        Ok(ago) => chrono::Duration::from_std(ago)
            .ok()
            .and_then(|ago| Utc::now().checked_sub_signed(ago))
            .ok_or_else(|| format!("{text} ago is out of range")),
        Err(_) => Err(format!(
            "{text:?} is neither a time (2026-01-31T12:00:00Z) nor a duration ago (2h, 7d)"
        )),
    }
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
