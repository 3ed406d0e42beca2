//! `metricsctl demo`: the newcomer's first command. On a throwaway local PostgreSQL (or the
//! configured database) it runs each capability in turn and shows what it found.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::checks::duplicates;
use crate::checks::lag::{self, LagOptions};
use crate::checks::ordering::{self, OrderingOptions};
use crate::checks::partitions as partitions_check;
use crate::checks::rate::{self, Bucket, RateOptions};
use crate::cli::{DEFAULT_BATCH_SIZE, DEFAULT_REPLAY_JOBS, DemoArgs, ReportFormat};
use crate::commands::report::Reporter;
use crate::commands::{self, check, partitions, repair, replay};
use crate::config::Context;
use crate::db::citus_sandbox::CitusSandbox;
use crate::db::sandbox::{Sandbox, SandboxOptions};
use crate::db::target::{DatabaseTarget, TargetOrigin, TlsDefaults};
use crate::db::{SchemaFacts, Session, Tx, queries};
use crate::error::{self, Error};
use crate::ingest::generate;
use crate::ingest::generate::SampleFacts;
use crate::ingest::repair::RepairOptions;
use crate::ingest::replay::ReplayOptions;
use crate::output::{self, shell_quote};
use crate::schema::conversion::{self, OnlineOptions};
use crate::schema::migrations;
use crate::schema::partitions::DEFAULT_MONTHS_AHEAD;
use crate::status::{CommandResult, CouldNotRun, Failure, Status};

const DEMO_DATABASE: &str = "metrics";

pub fn exec(ctx: &Context, args: &DemoArgs) -> CommandResult {
    let files = tempfile::Builder::new()
        .prefix("metricsctl-demo-")
        .tempdir()
        .context("creating a directory for the demo's sample files")
        .could_not_run()?;
    if ctx.target.origin != TargetOrigin::BuiltInDefault {
        confirm_configured_database(ctx, args.yes)?;
        ctx.console.say(format!(
            "Running the demo on the configured database {} (from {}).",
            ctx.target.redacted(),
            ctx.target.origin.describe()
        ));
        return run_steps(ctx, files.path(), args.layout(), None);
    }
    if args.distributed {
        return on_a_throwaway_citus_cluster(ctx, args, files);
    }

    ctx.console
        .say("No database configured: starting a throwaway local PostgreSQL…");
    let sandbox = Sandbox::start(&SandboxOptions::default()).could_not_run()?;
    sandbox.create_database(DEMO_DATABASE).could_not_run()?;
    let target = DatabaseTarget::parse(
        &sandbox.url(DEMO_DATABASE),
        TargetOrigin::Sandbox,
        &TlsDefaults::default(),
    )
    .could_not_run()?;
    ctx.console.say(format!(
        "Started PostgreSQL on 127.0.0.1:{} in {}.",
        sandbox.port(),
        sandbox.directory().display()
    ));
    let sandbox_ctx = ctx.with_target(target);
    let outcome = run_steps(&sandbox_ctx, files.path(), args.layout(), Some(&sandbox));

    if args.keep {
        let url = sandbox.url(DEMO_DATABASE);
        let removal = sandbox.removal_command();
        sandbox.keep().could_not_run()?;
        let files = files.keep();
        output::print(format!(
            "\nThe throwaway PostgreSQL is still running (loopback only; superuser trusted).\n\
             Try the other commands on it:\n  export DATABASE_URL={url}\n  metricsctl migrate status\n  \
             metricsctl replay {sample}\n  psql {url}\n\
             Stop and remove it with:\n  {removal} && rm -rf {files}",
            url = shell_quote(&url),
            sample = shell_quote(&files.join(SAMPLE_FILE).display().to_string()),
            files = shell_quote(&files.display().to_string()),
        ))?;
    } else {
        sandbox.stop().could_not_run()?;
        ctx.console
            .say("Stopped and removed the throwaway PostgreSQL (use --keep to leave it running).");
    }
    outcome
}

const SAMPLE_FILE: &str = "sample-events.jsonl";

/// `demo --distributed`: the same steps on a throwaway Citus coordinator with two workers, the
/// tables distributed by event_id. The steps that need the single server (a monitoring role, a
/// lock, a standby, the online conversion) are left out.
fn on_a_throwaway_citus_cluster(
    ctx: &Context,
    args: &DemoArgs,
    files: tempfile::TempDir,
) -> CommandResult {
    ctx.console.say(
        "No database configured: starting a throwaway Citus cluster (a coordinator and two \
         workers)…",
    );
    let cluster = CitusSandbox::start(&SandboxOptions::default(), 2).could_not_run()?;
    cluster.create_database(DEMO_DATABASE).could_not_run()?;
    let url = cluster.url(DEMO_DATABASE);
    let target = DatabaseTarget::parse(&url, TargetOrigin::Sandbox, &TlsDefaults::default())
        .could_not_run()?;
    ctx.console.say(format!(
        "Started the coordinator on 127.0.0.1:{} and workers on {}.",
        cluster.coordinator.port(),
        cluster
            .workers
            .iter()
            .map(|w| format!("127.0.0.1:{}", w.port()))
            .collect::<Vec<_>>()
            .join(" and ")
    ));
    let outcome = run_steps(&ctx.with_target(target), files.path(), args.layout(), None);
    if args.keep {
        let removal = cluster.removal_command();
        cluster.keep().could_not_run()?;
        let files = files.keep();
        output::print(format!(
            "\nThe throwaway Citus cluster is still running (loopback only; superuser trusted).\n\
             Try the other commands on it:\n  export DATABASE_URL={url}\n  metricsctl check\n\
             Stop and remove it with:\n  {removal} && rm -rf {files}",
            url = shell_quote(&url),
            files = shell_quote(&files.display().to_string()),
        ))?;
    } else {
        drop(cluster);
        ctx.console.say(
            "Stopped and removed the throwaway Citus cluster (use --keep to leave it running).",
        );
    }
    outcome
}

/// Which layout the demo builds.
#[derive(Clone, Copy, Debug, Default)]
struct DemoLayout {
    partitioned: bool,
    distributed: bool,
}

impl DemoArgs {
    fn layout(&self) -> DemoLayout {
        DemoLayout {
            partitioned: self.partitioned,
            distributed: self.distributed,
        }
    }
}

/// The demo writes 3,000 sample events and plants problems: into a database someone configured
/// only when they say so (`--yes`, or "y" at the prompt).
fn confirm_configured_database(ctx: &Context, yes: bool) -> Result<(), crate::status::Failure> {
    if yes {
        return Ok(());
    }
    eprint!(
        "The demo writes 3,000 sample events (with planted problems) into the configured database \
         {} (from {}). Go on? [y/N] ",
        ctx.target.redacted(),
        ctx.target.origin.describe()
    );
    let mut answer = String::new();
    let read = std::io::stdin().read_line(&mut answer);
    eprintln!();
    match (read, answer.trim().to_ascii_lowercase().as_str()) {
        (Ok(_), "y" | "yes") => Ok(()),
        _ => Err(anyhow::anyhow!(
            "demo cancelled; nothing was written. Run `metricsctl demo` with no database \
             configured for a throwaway one, or add --yes to write into this one"
        ))
        .could_not_run(),
    }
}

/// The demo's state as its steps go: one connection for the library calls, the sample and what
/// it holds.
struct Demo<'a> {
    ctx: &'a Context,
    session: Session,
    /// The throwaway server (its superuser trusted on loopback): the steps that make a role,
    /// hold a lock or start a standby run only there, never on a configured database.
    sandbox: Option<&'a Sandbox>,
    partitioned: bool,
    distributed: bool,
    sample: PathBuf,
    rejects: PathBuf,
    facts: SampleFacts,
}

/// One step: what it shows, the library call that does it (shown as the command would show
/// it), and what its outcome means (`None`: no outcome line).
struct Step {
    title: fn(&Demo) -> String,
    run: fn(&mut Demo) -> CommandResult,
    meaning: Option<fn(&Demo) -> String>,
    /// The layouts it runs on.
    only: Layouts,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layouts {
    Both,
    /// Both layouts, on the throwaway server only.
    ThrowawayOnly,
    /// `demo --partitioned`: partitioned from the start.
    Partitioned,
    /// The plain demo, which ends by converting to partitions.
    Plain,
}

const fn step(
    title: fn(&Demo) -> String,
    run: fn(&mut Demo) -> CommandResult,
    meaning: fn(&Demo) -> String,
) -> Step {
    Step {
        title,
        run,
        meaning: Some(meaning),
        only: Layouts::Both,
    }
}

/// Sample rows the checks show.
const LIMIT: u32 = 5;

/// The demo, in order. The sample is built with problems in it, so some steps report WARNING
/// or CRITICAL on purpose; the demo itself exits 0 unless a step could not run.
const STEPS: [Step; 20] = [
    step(
        |d| {
            let what = if d.partitioned {
                "migrate --partitioned: the guide's schema, metrics partitioned by UTC month"
            } else {
                "migrate: apply the schema from the schema implementation guide"
            };
            if d.distributed {
                format!(
                    "{what}, with --distributed: both tables distributed by event_id over the \
                     workers, colocated"
                )
            } else {
                what.into()
            }
        },
        migrate,
        |_| "the schema is in place".into(),
    ),
    step(
        |_| "migrate status: every migration and its state".into(),
        |d| {
            let status = d.read(migrations::read_status)?;
            Reporter::table(d.ctx).show(&status)
        },
        |_| "nothing pending".into(),
    ),
    step(
        |d| {
            let f = &d.facts;
            format!(
                "replay --dry-run {}: {} lines, {} distinct events over 6 sensors, {} delivered \
                 twice, one late event ({}) and {} bad lines",
                d.sample.display(),
                f.lines,
                f.distinct_events,
                f.repeated_lines,
                f.out_of_order_sensor,
                f.bad_lines
            )
        },
        |d| replay_sample(d, Replay::DryRun),
        |_| {
            "a dry run first: \"would insert\" is exactly what the real run inserts; nothing written"
            .into()
        },
    ),
    step(
        |_| "replay: the same file for real, the bad lines kept verbatim in a rejects file".into(),
        |d| replay_sample(d, Replay::WithRejects),
        |d| {
            format!(
                "WARNING is expected: the {} bad lines were rejected, named by line, and kept",
                d.facts.bad_lines
            )
        },
    ),
    step(
        |_| "replay the same file again: exactly once, nothing is inserted twice".into(),
        |d| replay_sample(d, Replay::Again),
        |_| "every event is already present; the bad lines are rejected again".into(),
    ),
    Step {
        only: Layouts::Partitioned,
        ..step(
            |_| "partitions list: each month's partition, DEFAULT, rows and sizes".into(),
            |d| {
                let report = d.read(|tx, facts| {
                    partitions_check::run(tx, facts, DEFAULT_MONTHS_AHEAD, true)
                })?;
                partitions::show_list(d.ctx, &report, ReportFormat::Table)
            },
            |_| "the sample's events sit in the current month's partition; DEFAULT is empty".into(),
        )
    },
    step(
        |d| {
            if d.partitioned {
                "check: every validation check (partitions too), exit code the worst of them".into()
            } else {
                "check: every validation check, exit code the worst of them".into()
            }
        },
        |d| {
            let all = d.read(|tx, facts| check::every_check(tx, facts, LIMIT, None))?;
            Reporter::table(d.ctx).show(&all)
        },
        |d| {
            format!(
                "CRITICAL is expected: {}'s late event is out of delivery order",
                d.facts.out_of_order_sensor
            )
        },
    ),
    step(
        |_| "check --since 5m: the window monitoring checks every few minutes, from indexes".into(),
        |d| {
            let since = chrono::Utc::now() - chrono::Duration::minutes(5);
            let window = d.read(|tx, facts| check::every_check(tx, facts, LIMIT, Some(since)))?;
            Reporter::table(d.ctx).show(&window)
        },
        |d| {
            format!(
                "OK is expected: {}'s late event is older than the window, which the nightly \
                 full check judges",
                d.facts.out_of_order_sensor
            )
        },
    ),
    step(
        |d| {
            format!(
                "check ordering --sensor {}: the violation itself, from the sensor's indexes",
                d.facts.out_of_order_sensor
            )
        },
        |d| {
            let options = OrderingOptions {
                sensor: Some(d.facts.out_of_order_sensor.clone()),
                since: None,
                ingested_since: None,
                limit: LIMIT,
            };
            let report = d.read(|tx, _| ordering::run(tx, &options))?;
            Reporter::table(d.ctx).show(&report)
        },
        |_| "the late event and the one it followed".into(),
    ),
    Step {
        meaning: None,
        ..step(
            |_| {
                "two incidents: a metric lost (its guard row stays) and one written around the guard"
                    .into()
            },
            damage_two_events,
            |_| String::new(),
        )
    },
    step(
        |_| "check duplicates: find them".into(),
        check_duplicates,
        |_| "CRITICAL is expected: one lost metric, one metric without its guard row".into(),
    ),
    step(
        |_| {
            "repair: fix what can be fixed without the operator (here: the missing guard row)"
                .into()
        },
        |d| {
            let options = RepairOptions {
                dry_run: false,
                release_lost: false,
                lock_timeout: Duration::from_secs(10),
                limit: LIMIT as usize,
            };
            repair::run(d.ctx, &options, ReportFormat::Table)
        },
        |_| "WARNING is expected: the lost metric needs the operator's decision".into(),
    ),
    step(
        |_| "replay --repair: restore the lost metric from the sample, exactly once".into(),
        |d| replay_sample(d, Replay::Repair),
        |_| "1 restored; the bad lines are rejected again (WARNING)".into(),
    ),
    step(
        |_| "check duplicates: repaired".into(),
        check_duplicates,
        |_| "every event once in each table again".into(),
    ),
    Step {
        only: Layouts::ThrowawayOnly,
        ..step(
            |_| {
                "grants --monitor nagios --apply: a monitoring role gets what it reads, nothing \
                 more; then check as nagios"
                    .into()
            },
            grant_a_monitor,
            |_| "the monitor runs every check: CRITICAL as for the owner, none UNKNOWN".into(),
        )
    },
    Step {
        only: Layouts::ThrowawayOnly,
        ..step(
            |_| {
                "check --timeout 1s behind a lock: a VACUUM FULL holds metrics; the check gives up \
                 in time, cancels its statement and names the holder"
                    .into()
            },
            check_behind_a_lock,
            |_| {
                "UNKNOWN is expected: nothing was judged, and the message says who was in the way"
                    .into()
            },
        )
    },
    Step {
        only: Layouts::ThrowawayOnly,
        ..step(
            |_| {
                "a hot standby of the server (pg_basebackup -R): check runs there as on the \
                 primary; replay refuses before reading a line, naming the standby"
                    .into()
            },
            on_a_standby,
            |_| {
                "the standby's check finds what the primary's does (the sample's planted \
                 out-of-order event); the replay exited 3, nothing changed"
                    .into()
            },
        )
    },
    step(
        |_| "lag: how far behind ingestion is, silent sensors, end-to-end latency".into(),
        |d| {
            let options = LagOptions {
                stale: Duration::from_secs(15 * 60),
                window: Duration::from_secs(3 * 3600),
                latency_sample: 1000,
                warn: Duration::from_secs(60),
                crit: Duration::from_secs(300),
                clock_tolerance: Duration::from_secs(60),
                limit: LIMIT,
            };
            let report = d.read(|tx, facts| lag::run(tx, facts, &options))?;
            Reporter::table(d.ctx).show(&report)
        },
        |_| {
            "the sample's newest events are seconds old; its latency is large because it was replayed"
                .into()
        },
    ),
    step(
        |_| "rate: events ingested per minute, empty minutes included".into(),
        |d| {
            let options = RateOptions {
                minutes: 5,
                by: Bucket::Minute,
                warn_below: None,
                crit_below: None,
            };
            let report = d.read(|tx, _| rate::run(tx, &options))?;
            Reporter::table(d.ctx).show(&report)
        },
        |_| "the replay landed within the last minute".into(),
    ),
    Step {
        only: Layouts::Plain,
        ..step(
            |_| {
                "partitions enable: convert metrics to monthly partitions online — writers could \
                 go on inserting — then list the partitions"
                    .into()
            },
            enable_partitions,
            |_| "every row and id kept; the guide's key and index names are back".into(),
        )
    },
];

/// Runs the steps in order, numbering them as they come (some only run partitioned).
fn run_steps(
    ctx: &Context,
    files: &Path,
    wanted: DemoLayout,
    sandbox: Option<&Sandbox>,
) -> CommandResult {
    let partitioned = wanted.partitioned;
    let sample = files.join(SAMPLE_FILE);
    let facts = generate::write_demo_sample(
        std::fs::File::create(&sample)
            .with_context(|| format!("creating {}", sample.display()))
            .could_not_run()?,
    )
    .could_not_run()?;
    let throwaway = sandbox.is_some();
    let mut demo = Demo {
        ctx,
        session: commands::open(ctx)?,
        sandbox,
        partitioned,
        distributed: wanted.distributed,
        sample,
        rejects: files.join("sample-rejects.jsonl"),
        facts,
    };
    let layout = if partitioned {
        Layouts::Partitioned
    } else {
        Layouts::Plain
    };
    // The online conversion is the single server's (Citus distributes a partitioned metrics
    // as it is; see docs/distributed.md).
    let steps = STEPS.iter().filter(|s| {
        s.only == Layouts::Both
            || (s.only == layout && !(wanted.distributed && layout == Layouts::Plain))
            || (s.only == Layouts::ThrowawayOnly && throwaway)
    });
    for (number, step) in steps.enumerate() {
        ctx.console
            .say(format!("\n── Step {}: {}", number + 1, (step.title)(&demo)));
        let status = (step.run)(&mut demo)?;
        if let Some(meaning) = step.meaning {
            ctx.console.say(format!(
                "→ exit {} ({status}): {}",
                status.code(),
                meaning(&demo)
            ));
        }
    }
    ctx.console.say("\nDemo finished.");
    Ok(Status::Ok)
}

fn enable_partitions(d: &mut Demo) -> CommandResult {
    let options = OnlineOptions {
        batch_size: 1000,
        copy_share: 100,
        lock_timeout: Duration::from_secs(2),
        lock_attempts: 10,
        wait_for_other_run: Duration::from_secs(30),
    };
    let plan = conversion::plan(&mut d.session)?;
    partitions::enable_online(d.ctx, &mut d.session, &plan, &options, ReportFormat::Table)?;
    d.session.refresh_facts()?;
    let report =
        d.read(|tx, facts| partitions_check::run(tx, facts, DEFAULT_MONTHS_AHEAD, true))?;
    partitions::show_list(d.ctx, &report, ReportFormat::Table)
}

/// Makes a login role `nagios` on the throwaway server, grants it what monitoring needs, and
/// runs every check as it.
fn grant_a_monitor(d: &mut Demo) -> CommandResult {
    let url = d.sandbox_url();
    let password = format!("demo-{}", std::process::id());
    d.session
        .write(|tx| {
            tx.ddl(
                &queries::DEMO_MONITOR_ROLE.ddl(&[("role", "nagios")], &[("password", &password)]),
            )
        })
        .map_err(Error::from)?;
    let report = crate::schema::grants::plan(
        &mut d.session,
        &[(
            "nagios".to_string(),
            crate::schema::grants::Purpose::Monitor,
        )],
    )?;
    crate::schema::grants::apply(&mut d.session, &report)?;
    for statement in report.statements() {
        d.ctx.console.say(statement);
    }
    let monitor_url = url.replacen("postgres@", &format!("nagios:{password}@"), 1);
    let target =
        DatabaseTarget::parse(&monitor_url, TargetOrigin::Sandbox, &TlsDefaults::default())
            .could_not_run()?;
    let monitor = d.ctx.with_target(target);
    let mut session = commands::open(&monitor)?;
    let facts = session.shared_facts();
    let all = session.read(|tx| check::every_check(tx, &facts, LIMIT, None))?;
    Reporter::table(&monitor).show(&all)
}

/// Holds ACCESS EXCLUSIVE on metrics from another session (as a VACUUM FULL would) and runs
/// `metricsctl check --timeout 1s` itself, as an operator would, against it.
fn check_behind_a_lock(d: &mut Demo) -> CommandResult {
    let url = d.sandbox_url();
    let target = DatabaseTarget::parse(&url, TargetOrigin::Sandbox, &TlsDefaults::default())
        .could_not_run()?;
    let mut holder = crate::db::connect(&target, Duration::from_secs(10))?;
    for statement in queries::statements(queries::DEMO_HOLD_METRICS.sql()) {
        holder.batch_execute(&statement).map_err(Error::from)?;
    }
    let status = run_self(&[
        "check",
        "--timeout",
        "1s",
        "--format",
        "nagios",
        "--database-url",
        &url,
    ]);
    let _ = holder.batch_execute("ROLLBACK");
    status
}

/// Starts a hot standby of the throwaway server, waits until it has replayed the primary's
/// latest write, then runs `metricsctl check` and `metricsctl replay` on it as an operator would.
fn on_a_standby(d: &mut Demo) -> CommandResult {
    let sandbox = d.sandbox.expect("a throwaway-only step");
    let standby = sandbox.start_standby().could_not_run()?;
    let url = standby.url(DEMO_DATABASE);
    let primary_at: String = d
        .session
        .write(|tx| tx.row(queries::DEMO_PRIMARY_WAL.sql(), &[]))
        .map_err(Error::from)?
        .get("wal_lsn");
    let target = DatabaseTarget::parse(&url, TargetOrigin::Sandbox, &TlsDefaults::default())
        .could_not_run()?;
    let mut replica = Session::open(&target, Duration::from_secs(10))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let caught_up: bool = replica
            .read(|tx| tx.row(queries::DEMO_STANDBY_CAUGHT_UP.sql(), &[&primary_at]))
            .map_err(Error::from)?
            .get("caught_up");
        if caught_up {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(Failure::could_not_run(anyhow::anyhow!(
                "the standby did not replay the primary's WAL up to {primary_at} within 30 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(replica);
    d.ctx.console.say(format!(
        "Standby on 127.0.0.1:{}, in recovery, caught up.",
        standby.port()
    ));
    let status = run_self(&["check", "--format", "nagios", "--database-url", &url])?;
    let sample = d.sample.display().to_string();
    run_self(&["replay", "--database-url", &url, &sample])?;
    standby.stop().could_not_run()?;
    Ok(status)
}

/// Runs this very metricsctl binary, as an operator would run it, and returns its status.
fn run_self(args: &[&str]) -> CommandResult {
    let binary = std::env::current_exe()
        .context("finding the metricsctl binary")
        .could_not_run()?;
    let status = std::process::Command::new(binary)
        .args(args)
        .status()
        .with_context(|| format!("running metricsctl {}", args[0]))
        .could_not_run()?;
    Ok(match status.code() {
        Some(0) => Status::Ok,
        Some(1) => Status::Warning,
        Some(2) => Status::Critical,
        _ => Status::Unknown,
    })
}

fn migrate(d: &mut Demo) -> CommandResult {
    let report = migrations::migrate(
        &mut d.session,
        Duration::from_secs(60),
        migrations::LayoutWanted {
            partitioned: d.partitioned,
            distributed: d.distributed,
        },
        |_| {},
    )?;
    commands::migrate::print_report(d.ctx, &report, ReportFormat::Table)?;
    Ok(Status::Ok)
}

/// The ways the demo replays its sample.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replay {
    DryRun,
    WithRejects,
    Again,
    Repair,
}

fn replay_sample(d: &mut Demo, how: Replay) -> CommandResult {
    let request = replay::Request {
        files: vec![d.sample.display().to_string()],
        jobs: DEFAULT_REPLAY_JOBS as usize,
        options: ReplayOptions {
            format: None,
            batch_size: DEFAULT_BATCH_SIZE as usize,
            strict: false,
            dry_run: how == Replay::DryRun,
            repair: how == Replay::Repair,
            rejects: matches!(how, Replay::DryRun | Replay::WithRejects).then(|| d.rejects.clone()),
        },
        format: ReportFormat::Table,
    };
    replay::run(d.ctx, &request)
}

/// Deletes the metric of the sample's first event and the guard row of its last one.
fn damage_two_events(d: &mut Demo) -> CommandResult {
    let (lost, bypassed) = (&d.facts.first_event_id, &d.facts.last_event_id);
    d.session
        .write(|tx| tx.row(queries::DEMO_DAMAGE.sql(), &[lost, bypassed]))
        .map_err(Error::from)?;
    d.ctx.console.say(format!(
        "Deleted the metric of {lost} and the guard row of {bypassed} (two of the sample's events)."
    ));
    Ok(Status::Ok)
}

fn check_duplicates(d: &mut Demo) -> CommandResult {
    let report = d.read(|tx, facts| duplicates::run(tx, facts, LIMIT, None))?;
    Reporter::table(d.ctx).show(&report)
}

impl Demo<'_> {
    /// The throwaway server's demo database, for the steps that run only there.
    fn sandbox_url(&self) -> String {
        self.sandbox
            .expect("a throwaway-only step")
            .url(DEMO_DATABASE)
    }

    /// A report read in one snapshot, as the command reads it.
    fn read<T>(
        &mut self,
        read: impl FnOnce(&mut Tx<'_>, &SchemaFacts) -> error::Result<T>,
    ) -> Result<T, Failure> {
        let facts = self.session.shared_facts();
        Ok(self.session.read(|tx| read(tx, &facts))?)
    }
}
