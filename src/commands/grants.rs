//! `metricsctl grants --monitor ROLE --writer ROLE [--apply]`: the privileges each role needs,
//! printed as SQL (stdout) or applied in one transaction. Exit 0, or 3 when it could not (a role
//! that does not exist, not the owner).

use crate::cli::{GrantsArgs, ReportFormat};
use crate::commands;
use crate::config::Context;
use crate::output;
use crate::schema::grants::{self, Purpose};
use crate::status::{CommandResult, Status};

pub fn exec(ctx: &Context, args: &GrantsArgs) -> CommandResult {
    let roles: Vec<(String, Purpose)> = args
        .monitor
        .iter()
        .map(|role| (role.clone(), Purpose::Monitor))
        .chain(
            args.writer
                .iter()
                .map(|role| (role.clone(), Purpose::Writer)),
        )
        .collect();
    let mut session = commands::open(ctx)?;
    if args.apply {
        crate::schema::partitions::refuse_on_a_standby(session.facts(), "grants --apply")?;
    }
    let plan = grants::plan(&mut session, &roles)?;
    if args.apply {
        grants::apply(&mut session, &plan)?;
    }
    match args.format {
        ReportFormat::Json => output::print_json(&serde_json::json!({
            "applied": args.apply,
            "owner": plan.owner,
            "roles": plan.roles,
        }))?,
        ReportFormat::Table => {
            let mut lines = Vec::new();
            for role in &plan.roles {
                lines.push(format!(
                    "-- {} ({}):",
                    role.role,
                    match role.purpose {
                        Purpose::Monitor => "monitoring: check, lag, rate, migrate status",
                        Purpose::Writer => "writer: the consumer and replay",
                    }
                ));
                lines.extend(role.statements.iter().cloned());
            }
            let lines: Vec<String> = lines
                .iter()
                .map(|line| output::escape_control(line).into_owned())
                .collect();
            output::print(lines.join("\n"))?;
        }
    }
    ctx.console.say(if args.apply {
        format!(
            "Granted, in one transaction, as {}.",
            session.facts().current_user
        )
    } else {
        format!(
            "Nothing was changed: run these as {} (the owner of the guide's tables) or a \
             superuser, or add --apply.",
            plan.owner
        )
    });
    Ok(Status::Ok)
}
