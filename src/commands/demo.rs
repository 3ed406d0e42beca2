//! `metricsctl demo`: the newcomer's first command. On a throwaway local PostgreSQL (or the
//! configured database) it runs each capability in turn and shows what it found.

use crate::cli::{DemoArgs, MigrateArgs, MigrateStatusArgs, ReportFormat};
use crate::commands::migrate;
use crate::config::Context;
use crate::output;
use crate::sandbox::{Sandbox, SandboxOptions};
use crate::status::{CommandResult, CouldNotRun, Status};
use crate::target::{DatabaseTarget, TargetOrigin, TlsDefaults};

const DEMO_DATABASE: &str = "metrics";

pub fn exec(ctx: &Context, args: &DemoArgs) -> CommandResult {
    if ctx.target.origin != TargetOrigin::BuiltInDefault {
        ctx.say(format!(
            "Running the demo on the configured database {} (from {}).",
            ctx.target.redacted(),
            ctx.target.origin.describe()
        ));
        return run_steps(ctx);
    }

    ctx.say("No database configured: starting a throwaway local PostgreSQL…");
    let sandbox = Sandbox::start(&SandboxOptions::default()).could_not_run()?;
    sandbox.create_database(DEMO_DATABASE).could_not_run()?;
    let target = DatabaseTarget::parse(
        &sandbox.url(DEMO_DATABASE),
        TargetOrigin::Sandbox,
        &TlsDefaults::default(),
    )
    .could_not_run()?;
    ctx.say(format!(
        "Started PostgreSQL on 127.0.0.1:{} in {}.",
        sandbox.port(),
        sandbox.directory().display()
    ));
    let sandbox_ctx = ctx.with_target(target);
    let outcome = run_steps(&sandbox_ctx);

    if args.keep {
        let url = sandbox.url(DEMO_DATABASE);
        let removal = sandbox.removal_command();
        sandbox.keep().could_not_run()?;
        output::print(format!(
            "\nThe throwaway PostgreSQL is still running (loopback only; superuser trusted).\n\
             Try the other commands on it:\n  export DATABASE_URL={url}\n  metricsctl migrate status\n  psql {url}\n\
             Stop and remove it with:\n  {removal}"
        ));
    } else {
        sandbox.stop().could_not_run()?;
        ctx.say("Stopped and removed the throwaway PostgreSQL (use --keep to leave it running).");
    }
    outcome
}

/// The demo's steps; the exit status is the worst of them.
fn run_steps(ctx: &Context) -> CommandResult {
    let mut worst = Status::Ok;

    step(
        ctx,
        1,
        "migrate: apply the schema from the schema implementation guide",
    );
    let apply = MigrateArgs {
        connect: Default::default(),
        dry_run: false,
        lock_timeout: std::time::Duration::from_secs(60),
        format: ReportFormat::Table,
    };
    worst = worst.max(migrate::exec(ctx, &apply)?);

    step(ctx, 2, "migrate status: every migration and its state");
    let status = MigrateStatusArgs {
        connect: Default::default(),
        format: ReportFormat::Table,
    };
    worst = worst.max(migrate::exec_status(ctx, &status)?);

    step(ctx, 3, "migrate again: a rerun finds nothing to do");
    worst = worst.max(migrate::exec(ctx, &apply)?);

    ctx.say(format!("\nDemo finished: {worst}."));
    Ok(worst)
}

fn step(ctx: &Context, number: u32, title: &str) {
    ctx.say(format!("\n── Step {number}: {title}"));
}
