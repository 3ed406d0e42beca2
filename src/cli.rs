//! The command line as typed: raw flags only. `config` turns them into settings.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::checks::rate::Bucket;
use crate::events::Format;
use crate::output::CheckFormat;

/// Events per transaction. Measured with bench/replay.sh (see docs/benchmarks.md): throughput rises steeply
/// up to a few thousand and is flat beyond; larger batches only hold locks and memory longer.
pub const DEFAULT_BATCH_SIZE: u32 = 5000;
/// Writer connections for replay. Two keep a small server's cores busy (see docs/benchmarks.md)
/// without crowding out the consumer.
pub const DEFAULT_REPLAY_JOBS: u32 = 2;

/// Upper bounds of the duration flags: far beyond any sensible value, and small enough that
/// no clock or timer arithmetic can overflow.
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(3600);
/// statement_timeout is a 32-bit count of milliseconds (about 24.8 days).
pub const MAX_RUN_TIMEOUT: Duration = Duration::from_secs(24 * 24 * 3600);
pub const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
pub const MAX_CHECK_DURATION: Duration = Duration::from_secs(100 * 365 * 86400);
pub const MAX_GENERATE_INTERVAL: Duration = Duration::from_secs(365 * 86400);
/// Monthly partitions `partitions create` makes ahead, and `check partitions` can ask for.
pub const MAX_MONTHS_AHEAD: u32 = 120;
/// `partitions drop --older-than`: a century of months.
pub const MAX_RETENTION_MONTHS: u32 = 1200;

const TOP_LEVEL_HELP: &str = "\
Configuration (the first that is set wins):
  --database-url URL     a postgresql:// URL or libpq key=value string (before or after the command)
  DATABASE_URL           the same, from the environment
  DB_HOST DB_PORT DB_USER DB_PASSWORD DB_NAME
                         the seed's variables; unset ones take the seed's defaults
  PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE
                         libpq's variables, as psql reads them
  built-in default       postgresql://metrics:metrics@localhost:5432/metrics
  Whatever the connection string leaves unset is filled from PGHOST, PGPORT, PGUSER, PGPASSWORD,
  PGDATABASE, PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY, PGCONNECT_TIMEOUT, PGAPPNAME and
  PGOPTIONS; a missing password from PGPASSFILE or ~/.pgpass, a client certificate from
  ~/.postgresql/postgresql.crt and .key.

Exit codes (every command):
  0 OK   1 WARNING   2 CRITICAL   3 UNKNOWN (could not run, timed out, interrupted)

Time limit: -t/--timeout DURATION bounds the whole run (30s by default for check, lag, rate and
migrate status); Ctrl-C or SIGTERM cancels the statement under way the same way.

Examples:
  metricsctl migrate
  metricsctl check --format nagios
  metricsctl --database-url postgresql://metrics@db/metrics lag --warn 1m --crit 5m";

#[derive(Debug, Parser)]
#[command(
    name = "metricsctl",
    version,
    about = "Operator CLI for the sensor-metrics PostgreSQL database",
    long_about = "Operator CLI for the sensor-metrics PostgreSQL database (processed_events + metrics): \
                  schema migrations, partitions, checks, lag, rate and replay.",
    after_help = TOP_LEVEL_HELP,
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
    /// Print nothing when all is well: no progress, no informational messages, no tables
    /// (errors, and formats asked for with --format or --output, are still written)
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Stop the whole run after this long, cancelling the statement under way, and exit 3
    /// (UNKNOWN) saying what it waited for (0: no limit) [default: 30s for check, lag, rate and
    /// migrate status; no limit for the others]
    #[arg(short = 't', long, value_name = "DURATION", global = true,
          value_parser = duration_up_to(MAX_RUN_TIMEOUT, true))]
    pub timeout: Option<Duration>,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// How long a monitoring run (check, lag, rate, migrate status) may take unless told otherwise:
/// a cron job or Nagios check every minute must not pile up behind a lock.
pub const DEFAULT_MONITORING_TIMEOUT: Duration = Duration::from_secs(30);

impl Command {
    /// The time limit a run of this command has when `--timeout` is not given.
    pub fn default_timeout(&self) -> Option<Duration> {
        match self {
            Command::Check(_) | Command::Lag(_) | Command::Rate(_) => {
                Some(DEFAULT_MONITORING_TIMEOUT)
            }
            Command::Migrate(migrate)
                if matches!(migrate.action, Some(MigrateAction::Status(_))) =>
            {
                Some(DEFAULT_MONITORING_TIMEOUT)
            }
            _ => None,
        }
    }
}

/// A connection string as typed. Its `Debug` never shows it: it may hold a password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectionString(pub String);

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectionString(<not shown>)")
    }
}

impl FromStr for ConnectionString {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(ConnectionString(s.to_string()))
    }
}

/// Where the database is, for every command that connects (given before or after the command).
#[derive(Debug, Args, Clone, Default)]
pub struct ConnectArgs {
    /// PostgreSQL URL or libpq key=value string [env: DATABASE_URL, then DB_*, then PG*]
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<ConnectionString>,

    /// Give up connecting after this long, e.g. 5s or 1m [default: the connection string's
    /// connect_timeout, PGCONNECT_TIMEOUT, or 10s]
    #[arg(long, value_name = "DURATION", global = true,
          value_parser = duration_up_to(MAX_CONNECT_TIMEOUT, false))]
    pub connect_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ReportFormat {
    /// A table for people
    #[default]
    Table,
    /// JSON for scripts
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the schema migrations (or `migrate status`, `migrate repair`)
    #[command(after_help = "Examples:
  metricsctl migrate
  metricsctl migrate --dry-run --partitioned
  metricsctl migrate status --format nagios")]
    Migrate(MigrateCommand),
    /// Replay event files through the consumer's idempotent insert path: exactly once, streaming
    #[command(after_help = "Examples:
  metricsctl replay --rejects rejects.jsonl day-2026-11-26.jsonl.gz
  kcat -C -t metrics -J -e | metricsctl replay -
  metricsctl replay --dry-run --format json dump.csv")]
    Replay(ReplayArgs),
    /// Write synthetic events (deterministic with --seed) for benchmarks and demos
    #[command(after_help = "Examples:
  metricsctl generate 100000 --sensors 50 -o events.jsonl
  metricsctl generate 1000 --format csv --gzip -o events.csv.gz")]
    Generate(GenerateArgs),
    /// Validation checks: all of them (the default), or `ordering`, `duplicates`, `sequence`, `partitions`
    #[command(after_help = "Examples:
  metricsctl check
  metricsctl check --format prometheus --output /var/lib/node_exporter/metricsctl.prom
  metricsctl check ordering --sensor sensor_123")]
    Check(CheckCommand),
    /// Monthly partitions of metrics: enable, create, list, drop (retention)
    #[command(after_help = "Examples:
  metricsctl partitions enable --dry-run
  metricsctl partitions create --months 3
  metricsctl partitions drop --older-than 12 --dry-run")]
    Partitions(PartitionsCommand),
    /// How far behind ingestion is: newest metric, silent sensors, sensor clocks ahead, latency
    #[command(after_help = "Examples:
  metricsctl lag
  metricsctl lag --warn 2m --crit 10m --format nagios")]
    Lag(LagArgs),
    /// Events ingested per minute (or hour), every bucket shown
    #[command(after_help = "Examples:
  metricsctl rate --minutes 30
  metricsctl rate --warn-below 100 --crit-below 10 --format nagios")]
    Rate(RateArgs),
    /// Fix what the checks find: the id sequence, duplicated guard rows and metrics, metrics
    /// without a guard row, and (with --release-lost) lost metrics
    #[command(after_help = "Examples:
  metricsctl repair --dry-run
  metricsctl repair
  metricsctl repair --release-lost   # lost metrics: let the consumer or a replay deliver them again")]
    Repair(RepairArgs),
    /// On a Citus coordinator: convert the populated single-node tables to the distributed layout
    /// in place (writers wait while each table copies); resumable, --status shows where it stands
    #[command(after_help = "Examples:
  metricsctl distribute --dry-run
  metricsctl distribute
  metricsctl distribute --status")]
    Distribute(DistributeArgs),
    /// The privileges of a monitoring role and a writer role, as SQL to run (or --apply)
    #[command(after_help = "Examples:
  metricsctl grants --monitor nagios --writer consumer
  metricsctl grants --monitor nagios --apply   # as the owner of the tables")]
    Grants(GrantsArgs),
    /// Show metricsctl end to end on a throwaway local PostgreSQL (or on the configured database)
    #[command(after_help = "Examples:
  metricsctl demo
  metricsctl demo --keep --partitioned
  metricsctl demo --distributed")]
    Demo(DemoArgs),
    /// Print a shell completion script
    #[command(after_help = "Examples:
  metricsctl completions bash > /etc/bash_completion.d/metricsctl
  metricsctl completions zsh > \"${fpath[1]}/_metricsctl\"")]
    Completions(CompletionsArgs),
    /// Print the manual page (roff): every command and flag, from the definitions --help reads
    #[command(after_help = "Examples:
  metricsctl man | man -l -
  metricsctl man > /usr/local/share/man/man1/metricsctl.1")]
    Man,
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
    #[command(after_help = "Examples:
  metricsctl migrate status
  metricsctl migrate status --format prometheus --output /var/lib/node_exporter/migrations.prom")]
    Status(MigrateStatusArgs),
    /// Accept applied migrations whose file differs only in whitespace (line endings, trailing
    /// spaces, final newline, BOM) by recording their new checksum; any other change stays drift
    #[command(after_help = "Examples:
  metricsctl migrate repair --dry-run
  metricsctl migrate repair")]
    Repair(MigrateRepairArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Print the SQL that would run and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Build metrics with the guide's monthly partitioning (on a new or empty database), with
    /// partitions for this month and the next two
    #[arg(long)]
    pub partitioned: bool,

    /// On a Citus coordinator: distribute both tables by event_id, colocated (metrics' primary
    /// key becomes (id, event_id), with timestamp when partitioned)
    #[arg(long)]
    pub distributed: bool,

    /// How long to wait for another migrate (or a lock on the tables) before giving up
    #[arg(long, value_name = "DURATION", default_value = "60s",
          value_parser = duration_up_to(MAX_LOCK_TIMEOUT, true))]
    pub lock_timeout: Duration,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct MigrateStatusArgs {
    #[command(flatten)]
    pub output: CheckOutputArgs,
}

#[derive(Debug, Args)]
pub struct MigrateRepairArgs {
    /// Show what would be repaired; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How long to wait for another migrate before giving up
    #[arg(long, value_name = "DURATION", default_value = "60s",
          value_parser = duration_up_to(MAX_LOCK_TIMEOUT, true))]
    pub lock_timeout: Duration,

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
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// How many events
    #[arg(value_name = "COUNT", required_unless_present = "sample")]
    pub count: Option<u64>,

    /// Write the demo's sample instead, ending now: 3,000 events over 6 sensors, 25 of them
    /// delivered twice, one delivered late, and 3 bad lines (JSON Lines) — the file the docs'
    /// examples use
    #[arg(long, conflicts_with_all = ["count", "sensors", "seed", "format", "start", "interval", "kafka_partitions"])]
    pub sample: bool,

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
    #[arg(long, default_value = "1s", value_parser = duration_up_to(MAX_GENERATE_INTERVAL, true))]
    pub interval: Duration,

    /// Kafka partitions the sensors are spread over
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..))]
    pub kafka_partitions: u32,
}

// The domain's and the output's enums stay free of clap: their values on the command line, with
// the help each shows, are given here.

impl ValueEnum for CheckFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            CheckFormat::Table,
            CheckFormat::Json,
            CheckFormat::Csv,
            CheckFormat::Nagios,
            CheckFormat::Prometheus,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            CheckFormat::Table => PossibleValue::new("table").help("Tables for people"),
            CheckFormat::Json => {
                PossibleValue::new("json").help("JSON for scripts (documented, stable shape)")
            }
            CheckFormat::Csv => PossibleValue::new("csv").help("The main table as CSV, raw values"),
            CheckFormat::Nagios => PossibleValue::new("nagios").help(
                "A Nagios/Icinga plugin status line with perfdata, then details (at most 4 KB)",
            ),
            CheckFormat::Prometheus => PossibleValue::new("prometheus")
                .help("Prometheus text format, for node_exporter's textfile collector"),
        })
    }
}

impl ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &[Format::Jsonl, Format::Csv, Format::Kcat]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Format::Jsonl => PossibleValue::new("jsonl").help("One JSON object per line"),
            Format::Csv => {
                PossibleValue::new("csv").help("CSV with a header row naming the columns")
            }
            Format::Kcat => PossibleValue::new("kcat")
                .help("kcat -J envelopes whose payload is the event as a JSON string"),
        })
    }
}

impl ValueEnum for Bucket {
    fn value_variants<'a>() -> &'a [Self] {
        &[Bucket::Minute, Bucket::Hour]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.unit()))
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct CheckOutputArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: CheckFormat,

    /// Write the report to FILE atomically (a temporary file in the same directory, then
    /// rename), whatever the exit status: for node_exporter's textfile collector
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Sample rows shown (the counts always cover everything; what is left out is said).
    /// Any u32 works: a limit above the number of rows shows them all
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub limit: u32,
}

impl Default for LimitArgs {
    fn default() -> Self {
        LimitArgs { limit: 10 }
    }
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
    #[command(after_help = "Examples:
  metricsctl check all --format nagios
  metricsctl check all --since 1h --format nagios   # every few minutes: the last hour only
  metricsctl check all --format prometheus --output /var/lib/node_exporter/metricsctl.prom")]
    All(CheckAllArgs),
    /// Each sensor's events in delivery order: any event older than its predecessor?
    #[command(after_help = "Examples:
  metricsctl check ordering
  metricsctl check ordering --sensor sensor_123 --since 2h
  metricsctl check ordering --ingested-since 1h   # judge only the last hour's ingestion")]
    Ordering(OrderingArgs),
    /// Duplicated guard rows or metrics, lost metrics, metrics that bypassed the guard
    #[command(after_help = "Examples:
  metricsctl check duplicates
  metricsctl check duplicates --since 1h --format nagios
  metricsctl check duplicates --format json --limit 100")]
    Duplicates(DuplicatesArgs),
    /// Partitioned metrics: current month covered, enough months ahead, DEFAULT empty, no gaps
    #[command(after_help = "Examples:
  metricsctl check partitions
  metricsctl check partitions --ahead 3 --format nagios")]
    Partitions(CheckPartitionsArgs),
    /// metrics_id_seq past every stored id (else every insert fails)
    #[command(after_help = "Examples:
  metricsctl check sequence
  metricsctl check sequence --format nagios")]
    Sequence(SequenceArgs),
}

#[derive(Debug, Args)]
pub struct SequenceArgs {
    #[command(flatten)]
    pub output: CheckOutputArgs,
}

#[derive(Debug, Args)]
pub struct CheckPartitionsArgs {
    /// WARNING when fewer future months than this have their partition
    #[arg(long, value_name = "MONTHS", default_value_t = crate::schema::partitions::DEFAULT_MONTHS_AHEAD,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_MONTHS_AHEAD)))]
    pub ahead: u32,

    #[command(flatten)]
    pub output: CheckOutputArgs,
}

#[derive(Debug, Args)]
pub struct PartitionsCommand {
    #[command(subcommand)]
    pub action: PartitionsAction,
}

#[derive(Debug, Subcommand)]
pub enum PartitionsAction {
    /// Convert a plain metrics table to monthly partitions, online: writers keep inserting
    #[command(after_help = "Examples:
  metricsctl partitions enable --dry-run
  metricsctl partitions enable            # online; killed or stopped, run it again to go on
  metricsctl partitions enable --status")]
    Enable(PartitionsEnableArgs),
    /// Make sure monthly partitions exist from --from through N months ahead, filling gaps
    #[command(after_help = "Examples:
  metricsctl partitions create --months 3
  metricsctl partitions create --from 2025-01 --months 14")]
    Create(PartitionsCreateArgs),
    /// Every partition with its bounds, rows and size; DEFAULT rows, gaps and months ahead
    #[command(after_help = "Examples:
  metricsctl partitions list
  metricsctl partitions list --exact --format json")]
    List(PartitionsListArgs),
    /// Re-attach a month's table of its own (left by `partitions drop --detach`) as its partition
    #[command(after_help = "Examples:
  metricsctl partitions attach 2025-11")]
    Attach(PartitionsAttachArgs),
    /// Retention: drop (or --detach) monthly partitions older than N months
    #[command(after_help = "Examples:
  metricsctl partitions drop --older-than 12 --dry-run
  metricsctl partitions drop --older-than 12 --detach")]
    Drop(PartitionsDropArgs),
}

#[derive(Debug, Args)]
pub struct PartitionsEnableArgs {
    /// Print the plan and the SQL of each step; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Show the conversion in progress, if any, and change nothing
    #[arg(long, conflicts_with_all = ["dry_run", "abandon", "offline"])]
    pub status: bool,

    /// Undo an unfinished online conversion: metrics stays the plain table it is
    #[arg(long, conflicts_with_all = ["dry_run", "offline"])]
    pub abandon: bool,

    /// Convert in one transaction that locks metrics until it commits (writers wait the whole
    /// copy): for small tables, or when nothing writes
    #[arg(long)]
    pub offline: bool,

    /// Rows (by id) copied per committed batch of the online conversion
    #[arg(long, value_name = "N", default_value_t = 50_000,
          value_parser = clap::value_parser!(i64).range(1..=10_000_000))]
    pub batch_size: i64,

    /// Share of the online conversion's time spent copying rows (1-100); after each batch it rests
    /// for the remainder, leaving the server to the writers. 100: no rests, the fastest copy
    #[arg(long, value_name = "PERCENT", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub copy_share: u32,

    /// The longest a lock writers wait on may be waited for at one attempt; a lock not granted in
    /// time is given up and asked for again after a pause (--offline: the whole wait)
    #[arg(long, value_name = "DURATION", default_value = "2s",
          value_parser = duration_up_to(MAX_LOCK_TIMEOUT, true))]
    pub lock_timeout: Duration,

    /// Attempts at such a lock before giving up (exit 3; rerun to go on)
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub lock_attempts: u32,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct PartitionsAttachArgs {
    /// The month (YYYY-MM, UTC) whose table metrics_YYYY_MM becomes its partition again
    #[arg(value_name = "YYYY-MM", value_parser = crate::schema::partitions::Month::parse)]
    pub month: crate::schema::partitions::Month,

    /// How long to wait for the lock on metrics
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = duration_up_to(MAX_LOCK_TIMEOUT, true))]
    pub lock_timeout: Duration,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct PartitionsCreateArgs {
    /// How many months ahead of --from to cover (0: only that month; at most 120)
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_MONTHS_AHEAD)))]
    pub months: u32,

    /// The first month (YYYY-MM, UTC); default: the current month
    #[arg(long, value_name = "YYYY-MM", value_parser = crate::schema::partitions::Month::parse)]
    pub from: Option<crate::schema::partitions::Month>,

    /// Create exactly the months asked for, leaving any month missing between partitions to
    /// DEFAULT (by default every gap is filled, so one old month can make many partitions)
    #[arg(long)]
    pub no_fill: bool,

    /// List what would be created (and the rows DEFAULT would give up); change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How long to wait for the lock on metrics
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = duration_up_to(MAX_LOCK_TIMEOUT, true))]
    pub lock_timeout: Duration,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct PartitionsListArgs {
    /// Count every partition's rows instead of the planner's estimate
    #[arg(long)]
    pub exact: bool,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct PartitionsDropArgs {
    /// Retire monthly partitions that ended more than N months before the current month
    /// (1 to 1200)
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_RETENTION_MONTHS)))]
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
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = duration_up_to(MAX_LOCK_TIMEOUT, true))]
    pub lock_timeout: Duration,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
}

#[derive(Debug, Args, Clone, Default)]
pub struct CheckAllArgs {
    /// Only a window for monitoring every few minutes: events ingested or dated from this time
    /// on (RFC 3339, or a duration ago: 1h, 15m). Without it, everything is read
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,

    #[command(flatten)]
    pub output: CheckOutputArgs,

    #[command(flatten)]
    pub limit: LimitArgs,
}

#[derive(Debug, Args)]
pub struct OrderingArgs {
    /// Check one sensor (answered from its indexes) and list its violations
    #[arg(long, value_name = "SENSOR_ID")]
    pub sensor: Option<String>,

    /// Only events from this time on: RFC 3339, or a duration ago (2h, 7d)
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,

    /// Only events ingested (created_at) from this time on: RFC 3339, or a duration ago. A
    /// deliberate backfill then ages out of the check instead of keeping it CRITICAL
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub ingested_since: Option<DateTime<Utc>>,

    #[command(flatten)]
    pub output: CheckOutputArgs,

    #[command(flatten)]
    pub limit: LimitArgs,
}

#[derive(Debug, Args)]
pub struct DuplicatesArgs {
    /// Only the guard rows ingested and the metrics dated from this time on (RFC 3339, or a
    /// duration ago: 1h, 15m): a window for monitoring every few minutes
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,

    #[command(flatten)]
    pub output: CheckOutputArgs,

    #[command(flatten)]
    pub limit: LimitArgs,
}

#[derive(Debug, Args)]
pub struct LagArgs {
    /// A sensor whose newest metric is older than this is listed as silent (WARNING)
    #[arg(long, value_name = "DURATION", default_value = "15m",
          value_parser = duration_up_to(MAX_CHECK_DURATION, true))]
    pub stale: Duration,

    /// End-to-end latency percentiles cover the newest events of this last stretch of time
    #[arg(long, value_name = "DURATION", default_value = "1h",
          value_parser = duration_up_to(MAX_CHECK_DURATION, true))]
    pub window: Duration,

    /// At most this many of the window's newest events are measured (bounds the cost)
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub latency_sample: u32,

    /// Lag above this is WARNING
    #[arg(long, value_name = "DURATION", default_value = "60s",
          value_parser = duration_up_to(MAX_CHECK_DURATION, true))]
    pub warn: Duration,

    /// Lag above this is CRITICAL (at least --warn)
    #[arg(long, value_name = "DURATION", default_value = "5m",
          value_parser = duration_up_to(MAX_CHECK_DURATION, true))]
    pub crit: Duration,

    /// Events dated up to this far ahead of the database's clock count as current; sensors
    /// with events further ahead are reported as clocks ahead (WARNING) and left out of the lag
    #[arg(long, value_name = "DURATION", default_value = "1m",
          value_parser = duration_up_to(MAX_CHECK_DURATION, true))]
    pub clock_tolerance: Duration,

    #[command(flatten)]
    pub output: CheckOutputArgs,

    #[command(flatten)]
    pub limit: LimitArgs,
}

#[derive(Debug, Args)]
pub struct RateArgs {
    /// How far back to look, in minutes (the newest bucket is still filling; thresholds judge
    /// the last complete one)
    #[arg(long, value_name = "N", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=525_600))]
    pub minutes: u32,

    /// Bucket size
    #[arg(long, value_enum, default_value_t = Bucket::Minute)]
    pub by: Bucket,

    /// WARNING when the last complete bucket has fewer events than this
    #[arg(long, value_name = "EVENTS")]
    pub warn_below: Option<i64>,

    /// CRITICAL when the last complete bucket has fewer events than this (at most --warn-below)
    #[arg(long, value_name = "EVENTS")]
    pub crit_below: Option<i64>,

    #[command(flatten)]
    pub output: CheckOutputArgs,
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
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = duration_up_to(MAX_LOCK_TIMEOUT, true))]
    pub lock_timeout: Duration,

    /// Rows listed per repair (all are counted)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: u32,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("roles").required(true).multiple(true).args(["monitor", "writer"])))]
pub struct GrantsArgs {
    /// A role that only reads: check, lag, rate, migrate status (repeat for several)
    #[arg(long, value_name = "ROLE")]
    pub monitor: Vec<String>,

    /// A role that writes events: the consumer, replay (repeat for several)
    #[arg(long, value_name = "ROLE")]
    pub writer: Vec<String>,

    /// Run the statements (in one transaction) instead of printing them only
    #[arg(long)]
    pub apply: bool,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct DistributeArgs {
    /// Show where the conversion stands (what is done, what is left) and change nothing
    #[arg(long, conflicts_with = "dry_run")]
    pub status: bool,

    /// Print the statements the conversion would run from where it stands, and change nothing
    #[arg(long)]
    pub dry_run: bool,

    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,

    /// How long each step waits for its lock (metrics' key swapped, a table distributed)
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = duration_up_to(MAX_LOCK_TIMEOUT, true))]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the throwaway PostgreSQL running and print how to reach and remove it
    #[arg(long)]
    pub keep: bool,

    /// Show the partitioned layout: migrate --partitioned, partitions and their check
    #[arg(long)]
    pub partitioned: bool,

    /// On a throwaway Citus cluster (a coordinator and two workers; Citus must be installed):
    /// migrate --distributed, then the same steps
    #[arg(long)]
    pub distributed: bool,

    /// With a database configured, write the demo's sample events into it without asking
    #[arg(long)]
    pub yes: bool,
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

/// A duration flag's parser: at most `max` (and more than zero unless `zero_ok`).
pub fn duration_up_to(
    max: Duration,
    zero_ok: bool,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |text| {
        let duration = parse_duration(text)?;
        if duration > max {
            return Err(format!(
                "{} is more than the most this accepts, {}",
                text.trim(),
                humantime::format_duration(max)
            ));
        }
        if duration.is_zero() && !zero_ok {
            return Err("must be more than zero".to_string());
        }
        Ok(duration)
    }
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

    #[test]
    fn durations_beyond_their_bound_are_refused_not_overflowed() {
        let lock = duration_up_to(MAX_LOCK_TIMEOUT, true);
        assert!(lock("18446744073709551615s").unwrap_err().contains("most"));
        assert_eq!(lock("0s"), Ok(Duration::ZERO));
        let connect = duration_up_to(MAX_CONNECT_TIMEOUT, false);
        assert!(connect("0s").unwrap_err().contains("zero"));
    }

    #[test]
    fn debug_of_the_flags_never_shows_a_connection_string() {
        let cli = Cli::parse_from([
            "metricsctl",
            "--database-url",
            "postgresql://u:hunter2@h/db",
            "lag",
        ]);
        let shown = format!("{cli:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("not shown"), "{shown}");
    }

    #[test]
    fn connection_flags_work_before_and_after_the_command() {
        for args in [
            &[
                "metricsctl",
                "--database-url",
                "x",
                "--connect-timeout",
                "3s",
                "lag",
            ][..],
            &[
                "metricsctl",
                "lag",
                "--database-url",
                "x",
                "--connect-timeout",
                "3s",
            ],
            &[
                "metricsctl",
                "check",
                "ordering",
                "--database-url",
                "x",
                "--connect-timeout",
                "3s",
            ],
            &[
                "metricsctl",
                "--database-url",
                "x",
                "--connect-timeout",
                "3s",
                "migrate",
            ],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(
                cli.global.connect.database_url,
                Some(ConnectionString("x".into())),
                "{args:?}"
            );
            assert_eq!(
                cli.global.connect.connect_timeout,
                Some(Duration::from_secs(3))
            );
        }
    }
}
