//! `metricsctl migrate`, `migrate --dry-run` and `migrate status`.

use crate::cli::{MigrateArgs, MigrateStatusArgs, ReportFormat};
use crate::config::Context;
use crate::migrations::{self, MigrationReport, SchemaStatus};
use crate::output;
use crate::status::{CommandResult, Status};

pub fn exec(ctx: &Context, args: &MigrateArgs) -> CommandResult {
    let mut client = ctx.connect()?;
    if args.dry_run {
        return dry_run(ctx, &mut client, args.format);
    }
    let report = migrations::migrate(
        &mut client,
        &ctx.target,
        ctx.connect_timeout,
        args.lock_timeout,
        args.partitioned,
        |holder| {
            ctx.say(format!(
                "Waiting for another migrate to finish: lock held by {holder}"
            ))
        },
    )?;
    print_report(ctx, &report, args.format)?;
    Ok(Status::Ok)
}

fn print_report(
    ctx: &Context,
    report: &MigrationReport,
    format: ReportFormat,
) -> anyhow::Result<()> {
    let version = report
        .schema_version
        .map(|v| format!("version {v}"))
        .unwrap_or_else(|| "no version".to_string());
    if !report.partitions_created.is_empty() {
        ctx.say(format!(
            "metrics is partitioned by month; created {}.",
            report.partitions_created.join(", ")
        ));
    }
    if report.applied.is_empty() {
        ctx.say(format!(
            "Schema is up to date at {version} on {}; nothing to do.",
            ctx.target.redacted()
        ));
    } else {
        ctx.say(format!(
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
            output::print(table);
        }
        ReportFormat::Table => {}
    }
    Ok(())
}

fn dry_run(ctx: &Context, client: &mut postgres::Client, format: ReportFormat) -> CommandResult {
    let status = migrations::read_status(client)?;
    status.ensure_no_drift()?;
    let pending = migrations::pending_sql(&status);
    match format {
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
            output::print_json(&serde_json::json!({ "dry_run": true, "pending": report }))?;
        }
        ReportFormat::Table => {
            if !pending.is_empty() {
                output::print("BEGIN;");
            }
            for (migration, sql) in &pending {
                output::print(format!(
                    "\n-- V{}__{}.sql (then recorded in {})\n{}",
                    migration.version,
                    migration.name,
                    migrations::HISTORY_TABLE,
                    sql.trim_end()
                ));
            }
            if !pending.is_empty() {
                output::print("\nCOMMIT;");
            }
        }
    }
    if pending.is_empty() {
        ctx.say("Dry run: schema is up to date; nothing would run.");
    } else {
        ctx.say(format!(
            "Dry run: {} migration(s) would run in one transaction; nothing was changed.",
            pending.len()
        ));
    }
    Ok(Status::Ok)
}

pub fn exec_status(ctx: &Context, args: &MigrateStatusArgs) -> CommandResult {
    let mut client = ctx.connect()?;
    let status = migrations::read_status(&mut client)?;
    print_status(&status, args.format)?;
    Ok(status.status())
}

pub fn print_status(status: &SchemaStatus, format: ReportFormat) -> anyhow::Result<()> {
    match format {
        ReportFormat::Json => output::print_json(status),
        ReportFormat::Table => {
            let mut table = output::table(["version", "name", "state", "applied_on"]);
            for m in &status.migrations {
                table.add_row(vec![
                    m.version.to_string(),
                    m.name.clone(),
                    m.state.describe().to_string(),
                    m.applied_on
                        .as_deref()
                        .map(output::timestamp_for_people)
                        .unwrap_or_else(|| "-".to_string()),
                ]);
            }
            output::print(table);
            Ok(())
        }
    }
}
