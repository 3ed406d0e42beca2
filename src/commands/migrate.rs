//! `metricsctl migrate`, `migrate --dry-run`, `migrate status` and `migrate repair`.

use crate::checks::Check;
use crate::cli::{MigrateArgs, MigrateRepairArgs, MigrateStatusArgs, ReportFormat};
use crate::commands;
use crate::commands::report::Reporter;
use crate::config::Context;
use crate::db::Session;
use crate::output::{self, OutputLost};
use crate::schema::migrations::{self, MigrationReport, RepairReport};
use crate::status::{CommandResult, Status};

pub fn exec(ctx: &Context, args: &MigrateArgs) -> CommandResult {
    let mut session = commands::open(ctx)?;
    if args.dry_run {
        return dry_run(ctx, &mut session, args);
    }
    let report = migrations::migrate(
        &mut session,
        args.lock_timeout,
        migrations::LayoutWanted {
            partitioned: args.partitioned,
            distributed: args.distributed,
        },
        |holder| {
            ctx.console.say(format!(
                "Waiting for another migrate to finish: lock held by {holder}"
            ))
        },
    )?;
    print_report(ctx, &report, args.format)?;
    Ok(Status::Ok)
}

pub(crate) fn print_report(
    ctx: &Context,
    report: &MigrationReport,
    format: ReportFormat,
) -> Result<(), OutputLost> {
    let version = report
        .schema_version
        .map(|v| format!("version {v}"))
        .unwrap_or_else(|| "no version".to_string());
    if !report.partitions_created.is_empty() {
        ctx.console.say(format!(
            "metrics is partitioned by month; created {}.",
            report.partitions_created.join(", ")
        ));
    }
    if let Some(distribution) = &report.distribution
        && !distribution.distributed.is_empty()
    {
        ctx.console.say(format!(
            "Distributed {} by {} over {} Citus worker(s), colocated.",
            distribution.distributed.join(" and "),
            crate::schema::distribution::DISTRIBUTION_COLUMN,
            distribution.workers
        ));
    }
    if report.applied.is_empty() {
        ctx.console.say(format!(
            "Schema is up to date at {version} on {}; nothing to do.",
            ctx.target.redacted()
        ));
    } else {
        ctx.console.say(format!(
            "Applied {} migration(s) in one transaction on {} in {} ms; schema is at {version}.",
            report.applied.len(),
            ctx.target.redacted(),
            report.elapsed_ms
        ));
    }
    match format {
        ReportFormat::Json => output::print_json(report)?,
        ReportFormat::Table if !report.applied.is_empty() => {
            let mut table = output::table(["version", "name", "applied_on"]);
            for m in &report.applied {
                table.add_row(vec![
                    m.version.to_string(),
                    m.name.clone(),
                    m.applied_on
                        .as_deref()
                        .map(output::timestamp_for_people)
                        .unwrap_or_default(),
                ]);
            }
            ctx.console.show(Status::Ok, table)?;
        }
        ReportFormat::Table => {}
    }
    Ok(())
}

fn dry_run(ctx: &Context, session: &mut Session, args: &MigrateArgs) -> CommandResult {
    let facts = session.shared_facts();
    let status = session.read(|tx| migrations::read_status(tx, &facts))?;
    status.ensure_no_drift()?;
    let pending = migrations::pending_sql(&status);
    let partitioning = if args.partitioned {
        crate::schema::partitions::partitioned_layout_sql(session)?
    } else {
        Vec::new()
    };
    match args.format {
        ReportFormat::Json => {
            #[derive(serde::Serialize)]
            struct PendingMigration<'a> {
                version: i32,
                name: &'a str,
                sql: &'a str,
            }
            let report: Vec<PendingMigration> = pending
                .iter()
                .map(|(m, sql)| PendingMigration {
                    version: m.version,
                    name: &m.name,
                    sql,
                })
                .collect();
            output::print_json(&serde_json::json!({
                "dry_run": true,
                "pending": report,
                "partitioning": partitioning,
            }))?;
        }
        ReportFormat::Table => {
            let mut text = String::new();
            if !pending.is_empty() {
                text.push_str("BEGIN;\n");
                for (migration, sql) in &pending {
                    text.push_str(&format!(
                        "\n-- V{}__{}.sql (then recorded in {})\n{}\n",
                        migration.version,
                        migration.name,
                        migrations::HISTORY_TABLE,
                        sql.trim_end()
                    ));
                }
                text.push_str("\nCOMMIT;\n");
            }
            if !partitioning.is_empty() {
                text.push_str(&format!(
                    "\n-- --partitioned: metrics partitioned by UTC month, with this month and the \
                     next {} ahead\n{}\n",
                    crate::schema::partitions::DEFAULT_MONTHS_AHEAD,
                    partitioning.join("\n")
                ));
            }
            if !text.is_empty() {
                output::print(text.trim_end())?;
            }
        }
    }
    if pending.is_empty() && partitioning.is_empty() {
        ctx.console
            .say("Dry run: schema is up to date; nothing would run.");
    } else {
        ctx.console.say(format!(
            "Dry run: {} migration(s){} would run; nothing was changed.",
            pending.len(),
            if partitioning.is_empty() {
                ""
            } else {
                " and the partitioning"
            }
        ));
    }
    Ok(Status::Ok)
}

/// `migrate status`: a check like any other (table, json, csv, nagios, prometheus; --output).
/// It needs no schema: a database without one has every migration pending.
pub fn exec_status(ctx: &Context, args: &MigrateStatusArgs) -> CommandResult {
    Reporter::new(ctx, &args.output).run(
        crate::checks::Subject::One(Check::Migrations),
        false,
        |session| {
            Check::Migrations.ensure_privileges(session.facts())?;
            let facts = session.shared_facts();
            session.read(|tx| migrations::read_status(tx, &facts))
        },
    )
}

/// `migrate repair`: shows each whitespace-only difference and records the new checksum.
pub fn exec_repair(ctx: &Context, args: &MigrateRepairArgs) -> CommandResult {
    let mut session = commands::open(ctx)?;
    let report = migrations::repair(&mut session, args.lock_timeout, args.dry_run, |holder| {
        ctx.console.say(format!(
            "Waiting for another migrate to finish: lock held by {holder}"
        ))
    })?;
    print_repair(ctx, &report, args.format)?;
    Ok(repair_status(&report))
}

fn print_repair(
    ctx: &Context,
    report: &RepairReport,
    format: ReportFormat,
) -> Result<(), OutputLost> {
    if format == ReportFormat::Json {
        output::print_json(report)?;
    }
    let verb = if report.dry_run {
        "would be accepted"
    } else {
        "accepted"
    };
    for repair in &report.repaired {
        let line = format!(
            "V{}__{}: {}. Same SQL apart from whitespace: {verb}, recorded checksum {} → {}.",
            repair.version,
            repair.name,
            repair.difference,
            repair.recorded_checksum,
            repair.new_checksum
        );
        if format == ReportFormat::Table {
            ctx.console
                .show(repair_status(report), output::escape_control(&line))?;
        }
    }
    for refused in &report.refused {
        eprintln!(
            "V{}__{}: not repaired: {}.",
            refused.version,
            output::escape_control(&refused.name),
            refused.reason
        );
    }
    if report.repaired.is_empty() && report.refused.is_empty() {
        ctx.console
            .say("Every applied migration matches this binary's; nothing to repair.");
    } else if report.dry_run {
        ctx.console.say("Dry run: nothing was changed.");
    }
    Ok(())
}

/// `migrate repair`: OK when nothing is left drifting, CRITICAL when something is.
fn repair_status(report: &RepairReport) -> Status {
    if report.refused.is_empty() {
        Status::Ok
    } else {
        Status::Critical
    }
}
