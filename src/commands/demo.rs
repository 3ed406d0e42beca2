//! `metricsctl demo`: the newcomer's first command. On a throwaway local PostgreSQL (or the
//! configured database) it runs each capability in turn and shows what it found.

use std::path::Path;

use anyhow::Context as _;

use crate::cli::{
    BucketArg, CheckAction, CheckAllArgs, CheckCommand, CheckOutputArgs, DEFAULT_BATCH_SIZE,
    DEFAULT_REPLAY_JOBS, DemoArgs, DuplicatesArgs, LagArgs, LimitArgs, MigrateArgs,
    MigrateStatusArgs, OrderingArgs, PartitionsListArgs, RateArgs, RepairArgs, ReplayArgs,
    ReportFormat,
};
use crate::commands;
use crate::commands::{check, lag, migrate, partitions, rate, repair, replay};
use crate::config::Context;
use crate::db::sandbox::{Sandbox, SandboxOptions};
use crate::db::target::{DatabaseTarget, TargetOrigin, TlsDefaults};
use crate::ingest::generate;
use crate::output::{self, shell_quote};
use crate::status::{CommandResult, CouldNotRun, Status};

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
        return run_steps(ctx, files.path(), args.partitioned);
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
    let outcome = run_steps(&sandbox_ctx, files.path(), args.partitioned);

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

/// The demo's steps. Each prints what it found and its exit status; the sample is built with
/// problems in it, so some steps report WARNING on purpose. The demo itself exits 0 unless a step
/// could not run.
fn run_steps(ctx: &Context, files: &Path, partitioned: bool) -> CommandResult {
    let mut steps = Steps(0);
    steps.next(
        ctx,
        if partitioned {
            "migrate --partitioned: the guide's schema, metrics partitioned by UTC month"
        } else {
            "migrate: apply the schema from the schema implementation guide"
        },
    );
    let apply = MigrateArgs {
        dry_run: false,
        partitioned,
        lock_timeout: std::time::Duration::from_secs(60),
        format: ReportFormat::Table,
    };
    outcome(ctx, migrate::exec(ctx, &apply)?, "the schema is in place");

    steps.next(ctx, "migrate status: every migration and its state");
    let status = MigrateStatusArgs {
        output: CheckOutputArgs::default(),
    };
    outcome(ctx, migrate::exec_status(ctx, &status)?, "nothing pending");

    let sample = files.join(SAMPLE_FILE);
    let facts = generate::write_demo_sample(
        std::fs::File::create(&sample)
            .with_context(|| format!("creating {}", sample.display()))
            .could_not_run()?,
    )
    .could_not_run()?;
    steps.next(
        ctx,
        &format!(
            "replay --dry-run {}: {} lines, {} distinct events over 6 sensors, {} delivered \
             twice, one late event ({}) and {} bad lines",
            sample.display(),
            facts.lines,
            facts.distinct_events,
            facts.repeated_lines,
            facts.out_of_order_sensor,
            facts.bad_lines
        ),
    );
    let replay_args = ReplayArgs {
        files: vec![sample.display().to_string()],
        input_format: None,
        batch_size: DEFAULT_BATCH_SIZE,
        jobs: DEFAULT_REPLAY_JOBS,
        rejects: Some(files.join("sample-rejects.jsonl")),
        strict: false,
        dry_run: true,
        repair: false,
        format: ReportFormat::Table,
    };
    outcome(
        ctx,
        replay::exec(ctx, &replay_args)?,
        "a dry run first: \"would insert\" is exactly what the real run inserts; nothing written",
    );
    steps.next(
        ctx,
        "replay: the same file for real, the bad lines kept verbatim in a rejects file",
    );
    let replay_args = ReplayArgs {
        dry_run: false,
        ..replay_args
    };
    outcome(
        ctx,
        replay::exec(ctx, &replay_args)?,
        &format!(
            "WARNING is expected: the {} bad lines were rejected, named by line, and kept",
            facts.bad_lines
        ),
    );

    steps.next(
        ctx,
        "replay the same file again: exactly once, nothing is inserted twice",
    );
    let again = ReplayArgs {
        rejects: None,
        ..replay_args
    };
    outcome(
        ctx,
        replay::exec(ctx, &again)?,
        "every event is already present; the bad lines are rejected again",
    );

    let output = CheckOutputArgs::default();
    let limit = LimitArgs { limit: 5 };
    if partitioned {
        steps.next(
            ctx,
            "partitions list: each month's partition, DEFAULT, rows and sizes",
        );
        let list = PartitionsListArgs {
            exact: true,
            format: ReportFormat::Table,
        };
        outcome(
            ctx,
            partitions::list(ctx, &list)?,
            "the sample's events sit in the current month's partition; DEFAULT is empty",
        );
    }
    steps.next(
        ctx,
        if partitioned {
            "check: every validation check (partitions too), exit code the worst of them"
        } else {
            "check: every validation check, exit code the worst of them"
        },
    );
    let all = CheckCommand {
        action: None,
        all: CheckAllArgs {
            output: output.clone(),
            limit: limit.clone(),
        },
    };
    outcome(
        ctx,
        check::exec(ctx, &all)?,
        &format!(
            "CRITICAL is expected: {}'s late event is out of delivery order",
            facts.out_of_order_sensor
        ),
    );

    steps.next(
        ctx,
        &format!(
            "check ordering --sensor {}: the violation itself, from the sensor's indexes",
            facts.out_of_order_sensor
        ),
    );
    let ordering = CheckCommand {
        action: Some(CheckAction::Ordering(OrderingArgs {
            sensor: Some(facts.out_of_order_sensor.clone()),
            since: None,
            ingested_since: None,
            output: output.clone(),
            limit: limit.clone(),
        })),
        all: CheckAllArgs::default(),
    };
    outcome(
        ctx,
        check::exec(ctx, &ordering)?,
        "the late event and the one it followed",
    );

    steps.next(
        ctx,
        "two incidents: a metric lost (its guard row stays) and one written around the guard",
    );
    let (lost, bypassed) = (&facts.first_event_id, &facts.last_event_id);
    commands::connect(ctx)?
        .query_one(crate::db::queries::DEMO_DAMAGE.sql(), &[lost, bypassed])
        .map_err(crate::error::Error::from)?;
    ctx.console.say(format!(
        "Deleted the metric of {lost} and the guard row of {bypassed} (two of the sample's events)."
    ));
    let duplicates_check = CheckCommand {
        action: Some(CheckAction::Duplicates(DuplicatesArgs {
            output: output.clone(),
            limit: limit.clone(),
        })),
        all: CheckAllArgs::default(),
    };
    steps.next(ctx, "check duplicates: find them");
    outcome(
        ctx,
        check::exec(ctx, &duplicates_check)?,
        "CRITICAL is expected: one lost metric, one metric without its guard row",
    );
    steps.next(
        ctx,
        "repair: fix what can be fixed without the operator (here: the missing guard row)",
    );
    let repair_args = RepairArgs {
        dry_run: false,
        release_lost: false,
        lock_timeout: std::time::Duration::from_secs(10),
        limit: 5,
        format: ReportFormat::Table,
    };
    outcome(
        ctx,
        repair::exec(ctx, &repair_args)?,
        "WARNING is expected: the lost metric needs the operator's decision",
    );
    steps.next(
        ctx,
        "replay --repair: restore the lost metric from the sample, exactly once",
    );
    let restore = ReplayArgs {
        rejects: None,
        repair: true,
        ..again
    };
    outcome(
        ctx,
        replay::exec(ctx, &restore)?,
        "1 restored; the bad lines are rejected again (WARNING)",
    );
    steps.next(ctx, "check duplicates: repaired");
    outcome(
        ctx,
        check::exec(ctx, &duplicates_check)?,
        "every event once in each table again",
    );

    steps.next(
        ctx,
        "lag: how far behind ingestion is, silent sensors, end-to-end latency",
    );
    let lag_args = LagArgs {
        stale: std::time::Duration::from_secs(15 * 60),
        window: std::time::Duration::from_secs(3 * 3600),
        latency_sample: 1000,
        warn: std::time::Duration::from_secs(60),
        crit: std::time::Duration::from_secs(300),
        clock_tolerance: std::time::Duration::from_secs(60),
        output: output.clone(),
        limit,
    };
    outcome(
        ctx,
        lag::exec(ctx, &lag_args)?,
        "the sample's newest events are seconds old; its latency is large because it was replayed",
    );

    steps.next(
        ctx,
        "rate: events ingested per minute, empty minutes included",
    );
    let rate_args = RateArgs {
        minutes: 5,
        by: BucketArg::Minute,
        warn_below: None,
        crit_below: None,
        output,
    };
    outcome(
        ctx,
        rate::exec(ctx, &rate_args)?,
        "the replay landed within the last minute",
    );

    ctx.console.say("\nDemo finished.");
    Ok(Status::Ok)
}

fn outcome(ctx: &Context, status: Status, meaning: &str) {
    ctx.console
        .say(format!("→ exit {} ({status}): {meaning}", status.code()));
}

/// Numbers the demo's steps as they come (some only run with --partitioned).
struct Steps(u32);

impl Steps {
    fn next(&mut self, ctx: &Context, title: &str) {
        self.0 += 1;
        ctx.console.say(format!("\n── Step {}: {title}", self.0));
    }
}
