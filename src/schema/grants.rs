//! The privileges of the three roles a team has besides the owner (who migrates and repairs):
//! the writer (the consumer, `replay`) and the monitor (`check`, `lag`, `rate`, `migrate status`).
//! Built from the database as it is: each existing partition and helper table is named, and the
//! default privileges of the tables' owner cover those made later.

use anyhow::anyhow;
use serde::Serialize;

use crate::db::facts::{HISTORY, RETIRED_EVENTS};
use crate::db::{Helper, SchemaFacts, Session, queries};
use crate::error::{self, Error, What};

/// What a role is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Monitor,
    Writer,
}

/// The statements that give each role what its purpose needs.
#[derive(Debug, Clone, Serialize)]
pub struct GrantPlan {
    pub owner: String,
    pub roles: Vec<RoleGrants>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleGrants {
    pub role: String,
    pub purpose: Purpose,
    pub statements: Vec<String>,
}

impl GrantPlan {
    pub fn statements(&self) -> impl Iterator<Item = &String> {
        self.roles.iter().flat_map(|r| r.statements.iter())
    }
}

/// The grants for these roles, refused (exit 3) when a role does not exist.
pub fn plan(session: &mut Session, roles: &[(String, Purpose)]) -> error::Result<GrantPlan> {
    let facts = session.shared_facts();
    facts.require_tables()?;
    let names: Vec<String> = roles.iter().map(|(role, _)| role.clone()).collect();
    let (existing, partitions): (Vec<String>, Vec<String>) = session.read(|tx| {
        let existing = tx
            .rows(queries::ROLES_NAMED.sql(), &[&names])?
            .iter()
            .map(|row| row.get("name"))
            .collect();
        let partitions = crate::schema::partitions::list(tx, &facts, false)?
            .into_iter()
            .map(|p| p.name)
            .collect();
        Ok::<_, postgres::Error>((existing, partitions))
    })?;
    if let Some(missing) = names.iter().find(|name| !existing.contains(name)) {
        return Err(Error::new(
            What::Refused,
            anyhow!(
                "there is no role {missing}: create it first (CREATE ROLE {} LOGIN PASSWORD \
                 '...'), then grant it what it needs; nothing was printed or changed",
                queries::quote_identifier(missing)
            ),
        ));
    }
    Ok(GrantPlan {
        owner: facts.tables_owner().to_string(),
        roles: roles
            .iter()
            .map(|(role, purpose)| RoleGrants {
                role: role.clone(),
                purpose: *purpose,
                statements: statements_for(&facts, role, *purpose, &partitions),
            })
            .collect(),
    })
}

fn statements_for(
    facts: &SchemaFacts,
    role: &str,
    purpose: Purpose,
    partitions: &[String],
) -> Vec<String> {
    let sequence = facts
        .metrics()
        .and_then(|m| m.sequence_name.clone())
        .unwrap_or_else(|| "metrics_id_seq".to_string());
    let identifiers = [
        ("database", facts.database.as_str()),
        ("role", role),
        ("owner", facts.tables_owner()),
        ("sequence", sequence.as_str()),
    ];
    let template = match purpose {
        Purpose::Monitor => &queries::GRANTS_MONITOR,
        Purpose::Writer => &queries::GRANTS_WRITER,
    };
    let mut statements = facts.ddl_statements(template, &identifiers, &[]);
    let mut readable: Vec<&str> = Vec::new();
    if purpose == Purpose::Monitor {
        readable.extend(partitions.iter().map(String::as_str));
        if facts.helper(HISTORY) == Helper::Trusted {
            readable.push(HISTORY);
        }
    }
    if facts.helper(RETIRED_EVENTS) == Helper::Trusted {
        readable.push(RETIRED_EVENTS);
    }
    for relation in readable {
        statements.extend(facts.ddl_statements(
            &queries::GRANT_SELECT,
            &[("relation", relation), ("role", role)],
            &[],
        ));
    }
    statements.iter().map(|s| format!("{s};")).collect()
}

/// Runs the statements in one transaction, and commits only once every role may do what its
/// purpose needs: a GRANT the server merely warned about ("no privileges were granted", for a
/// granter without the grant option) rolls everything back, named.
pub fn apply(session: &mut Session, plan: &GrantPlan) -> error::Result<()> {
    crate::schema::partitions::refuse_on_a_standby(session.facts(), "grants --apply")?;
    let granter = session.facts().current_user.clone();
    let refused = |e: postgres::Error| {
        Error::new(What::Refused, crate::error::ServerSaid(e))
            .context("the grants were rolled back, nothing was changed")
    };
    let mut tx = session.begin().map_err(refused)?;
    for statement in plan.statements() {
        tx.ddl(statement).map_err(refused)?;
    }
    let mut lacking = Vec::new();
    for role in &plan.roles {
        let row = tx
            .row(queries::ROLE_PRIVILEGES.sql(), &[&role.role])
            .map_err(refused)?;
        let mut needs = vec![
            ("connect", "CONNECT on the database"),
            ("schema_usage", "USAGE on the schema"),
            ("select_tables", "SELECT on the two tables"),
            ("select_sequence", "SELECT on the sequence"),
        ];
        if role.purpose == Purpose::Writer {
            needs.push(("insert_tables", "INSERT on the two tables"));
            needs.push(("use_sequence", "USAGE on the sequence"));
        }
        for (column, what) in needs {
            if !row.get::<_, bool>(column) {
                lacking.push(format!("{} still lacks {what}", role.role));
            }
        }
    }
    if !lacking.is_empty() {
        drop(tx);
        return Err(Error::new(
            What::Privilege,
            anyhow!(
                "the grants ran, yet {}: {granter}, who ran them, may not grant that (PostgreSQL \
                 only warns \"no privileges were granted\"). They were rolled back, nothing was \
                 changed: run them as the owner of each object or a superuser",
                lacking.join(", ")
            ),
        ));
    }
    tx.commit().map_err(refused)?;
    Ok(())
}
