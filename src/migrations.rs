//! The schema as refinery migrations embedded from `migrations/`, their state in a database,
//! and applying them safely.
//!
//! refinery's default (non-grouped) mode commits a migration's SQL and its history row in two
//! separate transactions, so a crash in between would leave a schema change that the history
//! does not know about. We always run grouped: every pending migration and its history row
//! commit in one transaction, or nothing does.

use std::time::Duration;

use anyhow::anyhow;
use postgres::Client;
use refinery::Migration;
use serde::Serialize;

use crate::db;
use crate::queries;
use crate::status::{Failure, Status};
use crate::target::DatabaseTarget;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The history table refinery keeps.
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// The advisory lock that serialises `migrate` runs ("metrics" + 1 in ASCII).
pub const MIGRATION_LOCK_KEY: i64 = 0x6D65_7472_6963_7301;

/// The migrations compiled into this binary, in version order.
pub fn local_migrations() -> Vec<Migration> {
    let mut migrations = embedded::migrations::runner().get_migrations().clone();
    migrations.sort();
    migrations
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    Applied,
    Pending,
    /// Applied, but this binary's file for that version differs from what was applied.
    Changed,
    /// Applied, but this binary has no migration with that version.
    Unknown,
}

impl MigrationState {
    pub fn describe(self) -> &'static str {
        match self {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::Changed => "changed since applied",
            MigrationState::Unknown => "applied but unknown to this binary",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationStatus {
    pub version: i32,
    pub name: String,
    pub state: MigrationState,
    pub applied_on: Option<String>,
}

/// Every migration this binary or the database knows about.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaStatus {
    pub migrations: Vec<MigrationStatus>,
}

impl SchemaStatus {
    pub fn pending(&self) -> impl Iterator<Item = &MigrationStatus> {
        self.migrations
            .iter()
            .filter(|m| m.state == MigrationState::Pending)
    }

    pub fn drifted(&self) -> impl Iterator<Item = &MigrationStatus> {
        self.migrations
            .iter()
            .filter(|m| matches!(m.state, MigrationState::Changed | MigrationState::Unknown))
    }

    /// The highest applied version, if any.
    pub fn current_version(&self) -> Option<i32> {
        self.migrations
            .iter()
            .filter(|m| m.state != MigrationState::Pending)
            .map(|m| m.version)
            .max()
    }

    /// OK when up to date, WARNING with pending migrations, CRITICAL on drift.
    pub fn status(&self) -> Status {
        if self.drifted().next().is_some() {
            Status::Critical
        } else if self.pending().next().is_some() {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    /// Refuses to go on when the database and this binary disagree about the past.
    pub fn ensure_no_drift(&self) -> Result<(), Failure> {
        let problems: Vec<String> = self
            .drifted()
            .map(|m| match m.state {
                MigrationState::Changed => format!(
                    "V{}__{} was applied on {} but this binary's file for it differs: restore the \
                     file as it was when applied, or add a new migration instead of editing an applied one",
                    m.version,
                    m.name,
                    m.applied_on.as_deref().unwrap_or("an unknown date")
                ),
                _ => format!(
                    "V{}__{} is applied in the database but unknown to this binary: run a metricsctl \
                     that has it (a newer release), or remove its row from {HISTORY_TABLE} if it \
                     was applied by mistake",
                    m.version, m.name
                ),
            })
            .collect();
        if let Some(out_of_order) = self.pending().find(|m| {
            self.current_version()
                .is_some_and(|current| m.version < current)
        }) {
            return Err(Failure::critical(anyhow!(
                "V{}__{} is pending but a later version is already applied; refinery applies \
                 migrations in order only. Apply it by hand and record it, or renumber it",
                out_of_order.version,
                out_of_order.name
            )));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Failure::critical(anyhow!(
                "the database's schema history has drifted from this binary's migrations; \
                 nothing was changed:\n  {}",
                problems.join("\n  ")
            )))
        }
    }
}

struct AppliedRow {
    version: i32,
    name: String,
    applied_on: String,
    checksum: String,
}

/// Reads the state of every migration without writing anything (refinery's own reader creates
/// its history table, which a status or dry run must not do).
pub fn read_status(client: &mut Client) -> Result<SchemaStatus, postgres::Error> {
    let applied: Vec<AppliedRow> = if db::relation_exists(client, HISTORY_TABLE)? {
        client
            .query(queries::MIGRATION_HISTORY.sql(), &[])?
            .into_iter()
            .map(|row| AppliedRow {
                version: row.get("version"),
                name: row.get::<_, Option<String>>("name").unwrap_or_default(),
                applied_on: row
                    .get::<_, Option<String>>("applied_on")
                    .unwrap_or_default(),
                checksum: row.get::<_, Option<String>>("checksum").unwrap_or_default(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let local = local_migrations();
    let mut migrations = Vec::new();
    for migration in &local {
        let version = migration.version();
        let status = match applied.iter().find(|a| a.version == version) {
            Some(row) => MigrationStatus {
                version,
                name: migration.name().to_string(),
                state: if row.checksum == migration.checksum().to_string()
                    && row.name == migration.name()
                {
                    MigrationState::Applied
                } else {
                    MigrationState::Changed
                },
                applied_on: Some(row.applied_on.clone()),
            },
            None => MigrationStatus {
                version,
                name: migration.name().to_string(),
                state: MigrationState::Pending,
                applied_on: None,
            },
        };
        migrations.push(status);
    }
    for row in applied
        .iter()
        .filter(|a| !local.iter().any(|m| m.version() == a.version))
    {
        migrations.push(MigrationStatus {
            version: row.version,
            name: row.name.clone(),
            state: MigrationState::Unknown,
            applied_on: Some(row.applied_on.clone()),
        });
    }
    migrations.sort_by_key(|m| m.version);
    Ok(SchemaStatus { migrations })
}

/// The pending migrations with their SQL, for `--dry-run`.
pub fn pending_sql(status: &SchemaStatus) -> Vec<(MigrationStatus, String)> {
    let local = local_migrations();
    status
        .pending()
        .filter_map(|pending| {
            local
                .iter()
                .find(|m| m.version() == pending.version)
                .map(|m| (pending.clone(), m.sql().unwrap_or_default().to_string()))
        })
        .collect()
}

/// What a migrate run did.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    pub applied: Vec<MigrationStatus>,
    pub schema_version: Option<i32>,
    pub layout: crate::partitions::Layout,
    /// With `--partitioned`: the monthly partitions this run created.
    pub partitions_created: Vec<String>,
    pub elapsed_ms: u128,
}

/// Brings the schema up to date. Concurrent runs (several replicas deploying at once) are
/// serialised by an advisory lock held on a connection of its own; the waiting ones then find
/// nothing to do. `on_wait` is told who holds the lock if we have to wait.
pub fn migrate(
    client: &mut Client,
    target: &DatabaseTarget,
    connect_timeout: Duration,
    lock_timeout: Duration,
    partitioned: bool,
    on_wait: impl FnMut(&db::LockHolder),
) -> Result<MigrationReport, Failure> {
    let started = std::time::Instant::now();
    let _lock = db::AdvisoryLock::acquire(
        target,
        connect_timeout,
        MIGRATION_LOCK_KEY,
        "migration",
        lock_timeout,
        on_wait,
    )?;
    // Read under the lock: another replica may have just applied everything.
    let before = read_status(client)?;
    before.ensure_no_drift()?;
    let pending: Vec<MigrationStatus> = before.pending().cloned().collect();
    if !pending.is_empty() {
        db::set_lock_timeout(client, lock_timeout)?;
        embedded::migrations::runner()
            .set_grouped(true)
            .set_abort_divergent(true)
            .set_abort_missing(true)
            .run(client)
            .map_err(|e| anyhow!("applying migrations failed and was rolled back: {e:#}"))?;
    }
    // Still under the lock, so replicas starting `migrate --partitioned` together convert once.
    let partitions_created = if partitioned {
        crate::partitions::ensure_partitioned_layout(client, lock_timeout)?
            .months
            .into_iter()
            .filter(|m| m.action != "present")
            .map(|m| m.partition)
            .collect()
    } else {
        Vec::new()
    };
    let after = read_status(client)?;
    let applied = pending
        .into_iter()
        .filter_map(|p| {
            after
                .migrations
                .iter()
                .find(|m| m.version == p.version && m.state == MigrationState::Applied)
                .cloned()
        })
        .collect();
    Ok(MigrationReport {
        applied,
        schema_version: after.current_version(),
        layout: crate::partitions::layout(client)?,
        partitions_created,
        elapsed_ms: started.elapsed().as_millis(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_embedded_in_version_order() {
        let versions: Vec<i32> = local_migrations().iter().map(|m| m.version()).collect();
        assert_eq!(versions, vec![1, 2]);
    }

    fn status_of(states: &[(i32, MigrationState)]) -> SchemaStatus {
        SchemaStatus {
            migrations: states
                .iter()
                .map(|(version, state)| MigrationStatus {
                    version: *version,
                    name: format!("m{version}"),
                    state: *state,
                    applied_on: None,
                })
                .collect(),
        }
    }

    #[test]
    fn status_is_ok_warning_or_critical() {
        use MigrationState::*;
        assert_eq!(
            status_of(&[(1, Applied), (2, Applied)]).status(),
            Status::Ok
        );
        assert_eq!(
            status_of(&[(1, Applied), (2, Pending)]).status(),
            Status::Warning
        );
        assert_eq!(
            status_of(&[(1, Changed), (2, Pending)]).status(),
            Status::Critical
        );
        assert_eq!(
            status_of(&[(1, Applied), (9, Unknown)]).status(),
            Status::Critical
        );
    }

    #[test]
    fn drift_is_refused_with_the_version_named() {
        use MigrationState::*;
        let err = status_of(&[(1, Changed), (2, Applied)])
            .ensure_no_drift()
            .unwrap_err();
        let message = format!("{:#}", err.error);
        assert!(message.contains("V1__m1"), "{message}");
        assert_eq!(err.status, Status::Critical);
        assert!(
            status_of(&[(1, Applied), (2, Pending)])
                .ensure_no_drift()
                .is_ok()
        );
    }

    #[test]
    fn a_pending_migration_below_the_applied_ones_is_refused() {
        use MigrationState::*;
        let err = status_of(&[(1, Pending), (2, Applied)])
            .ensure_no_drift()
            .unwrap_err();
        assert!(format!("{:#}", err.error).contains("V1__m1"));
    }
}
