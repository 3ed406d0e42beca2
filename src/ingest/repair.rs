//! `metricsctl repair`: fixes what `check duplicates` and the sequence check find, one kind at a
//! time, each in its own transaction, beside a running consumer.
//!
//! Order matters: the sequence first (inserts fail until it is fixed), then duplicated guard rows
//! (the guard's primary key must be back before guard rows can be added with ON CONFLICT), then
//! duplicated metrics, then metrics without a guard row, and last, only when asked, the guard rows
//! of lost metrics. A dry run runs the same statements and rolls them back, so what it lists is
//! exactly what the real run would change.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use anyhow::anyhow;

use crate::db::{self, Layout, SchemaFacts, Session, Tx, queries};
use crate::error::{self, Error, What};

#[derive(Debug, Clone, Copy)]
pub struct RepairOptions {
    pub dry_run: bool,
    /// Delete the guard rows of lost metrics so they can be delivered again.
    pub release_lost: bool,
    /// How long to wait for a table lock a repair needs.
    pub lock_timeout: Duration,
    /// Rows listed per repair (all are counted).
    pub limit: usize,
}

/// What one kind of repair found and did.
#[derive(Debug, Clone, Serialize)]
pub struct RepairStep {
    /// `sequence`, `duplicated_guard_rows`, `duplicated_metrics`, `unguarded_metrics`, `lost_metrics`.
    pub kind: &'static str,
    /// What was (or would be) done.
    pub action: String,
    /// Rows changed (would change, in a dry run).
    pub changed: u64,
    /// A constraint of the guide's put back (or that would be).
    pub constraint_restored: Option<String>,
    /// The first rows changed, each described in a line.
    pub rows: Vec<String>,
    /// Left for the operator (lost metrics without `release_lost`).
    pub needs_operator: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    pub dry_run: bool,
    pub layout: Layout,
    pub steps: Vec<RepairStep>,
}

impl RepairReport {
    /// Something remains that only the operator can decide.
    pub fn needs_operator(&self) -> bool {
        self.steps.iter().any(|s| s.needs_operator)
    }

    pub fn changed(&self) -> u64 {
        self.steps
            .iter()
            .filter(|s| !s.needs_operator)
            .map(|s| s.changed)
            .sum()
    }
}

/// Why a repair step stopped, inside this module: a lock not granted in time (the holders are
/// named once its transaction is gone), or the database. What the caller gets is an
/// [`error::Error`], like every other operation's.
#[derive(Debug)]
enum StepError {
    LockTimeout { table: &'static str },
    Database(postgres::Error),
}

impl From<postgres::Error> for StepError {
    fn from(error: postgres::Error) -> StepError {
        StepError::Database(error)
    }
}

fn lock_timeout(table: &str, holders: &str) -> Error {
    Error::new(
        What::LockTimeout,
        anyhow!(
            "could not lock {table} within the lock timeout ({holders}); that repair changed \
             nothing. Wait for that session or end it with SELECT pg_terminate_backend(pid), or \
             raise --lock-timeout"
        ),
    )
}

/// Runs every repair in order. Each kind commits on its own; a dry run runs them all in one
/// transaction (each seeing what the ones before it did) and rolls it back.
pub fn repair(session: &mut Session, options: &RepairOptions) -> error::Result<RepairReport> {
    if session.facts().in_recovery {
        let doing = if options.dry_run {
            "repair --dry-run makes its changes and rolls them back"
        } else {
            "repair writes"
        };
        crate::schema::partitions::refuse_on_a_standby_as(session.facts(), doing)?;
    }
    if let Some(metrics) = session.facts().metrics()
        && !metrics.acts_as_owner
    {
        let (user, owner) = (&session.facts().current_user, &metrics.owner);
        return Err(Error::new(
            What::Privilege,
            anyhow!(
                "repair deletes rows and puts the guide's keys back, which only the owner of the \
                 tables may do, and {user} is not {owner} (nor a member of it, nor a superuser). \
                 Nothing was changed; run it as {owner}"
            ),
        ));
    }
    // The schema check before this reports a missing table.
    let layout = session.facts().layout().unwrap_or(Layout::Plain);
    let facts = session.shared_facts();
    let outcome = if options.dry_run {
        let mut everything = session.begin()?;
        let steps = run_steps(&mut Scope::Within(&mut everything), &facts, options, layout);
        if steps.is_ok() {
            everything.rollback()?;
        }
        steps
    } else {
        run_steps(&mut Scope::Own(session), &facts, options, layout)
    };
    let steps = match outcome {
        Ok(steps) => steps,
        // The step's transaction is gone; now say who held the table.
        Err(StepError::LockTimeout { table }) => {
            let holders = session.read(|tx| db::table_lock_holders(tx, table))?;
            return Err(lock_timeout(table, &db::describe_holders(&holders)));
        }
        Err(StepError::Database(error)) => return Err(error.into()),
    };
    Ok(RepairReport {
        dry_run: options.dry_run,
        layout,
        steps,
    })
}

/// Where each kind of repair opens its transaction: on the session (each commits on its own), or
/// inside a dry run's one transaction (a savepoint each).
enum Scope<'s, 't> {
    Own(&'s mut Session),
    Within(&'s mut Tx<'t>),
}

impl Scope<'_, '_> {
    fn open(&mut self) -> Result<Tx<'_>, postgres::Error> {
        match self {
            Scope::Own(session) => session.begin(),
            Scope::Within(tx) => tx.savepoint(),
        }
    }
}

fn run_steps(
    scope: &mut Scope<'_, '_>,
    facts: &SchemaFacts,
    options: &RepairOptions,
    layout: Layout,
) -> Result<Vec<RepairStep>, StepError> {
    Ok(vec![
        step(scope, options, repair_sequence)?,
        step(scope, options, repair_duplicated_guard_rows)?,
        step(scope, options, |tx, options| {
            repair_duplicated_metrics(tx, options, layout)
        })?,
        step(scope, options, repair_unguarded_metrics)?,
        step(scope, options, |tx, options| {
            repair_lost_metrics(tx, facts, options)
        })?,
    ])
}

/// One kind of repair in a transaction of its own (a savepoint inside a dry run's).
fn step(
    scope: &mut Scope<'_, '_>,
    options: &RepairOptions,
    kind: impl FnOnce(&mut Tx<'_>, &RepairOptions) -> Result<RepairStep, StepError>,
) -> Result<RepairStep, StepError> {
    let mut tx = scope.open()?;
    db::set_lock_timeout(&mut tx, options.lock_timeout)?;
    let outcome = kind(&mut tx, options)?;
    tx.commit()?;
    Ok(outcome)
}

/// Holds off writes to a table for the rest of the step. A dry run takes no such lock: it changes
/// nothing, so it need not stop the consumer.
fn lock(
    tx: &mut Tx<'_>,
    options: &RepairOptions,
    query: &queries::Query,
    table: &'static str,
) -> Result<(), StepError> {
    if options.dry_run {
        return Ok(());
    }
    tx.ddl(query.sql()).map_err(|error| {
        if error.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            StepError::LockTimeout { table }
        } else {
            StepError::Database(error)
        }
    })
}

/// Puts a constraint of the guide's back if it is missing (a dry run only says it would), once
/// nothing violates it any more. Returns its name when it was (or would be) restored.
/// The guide's key `constraint` (a primary key if `primary`, else unique, on `columns`): there,
/// or put back. An equivalent key under another name (a restore or a hand named it otherwise) is
/// renamed to it rather than doubled — a second primary key would fail, and a second unique key
/// would cost every insert. What was done, for the report.
fn restore_constraint(
    tx: &mut Tx<'_>,
    options: &RepairOptions,
    key: &GuideKey,
) -> Result<Option<String>, postgres::Error> {
    let exists: bool = tx
        .row(
            queries::TABLE_CONSTRAINT_EXISTS.sql(),
            &[&key.table, &key.name],
        )?
        .get("constraint_exists");
    if exists {
        return Ok(None);
    }
    let columns: Vec<String> = key.columns.iter().map(|c| c.to_string()).collect();
    let equivalent: Option<String> = tx
        .row_opt(
            queries::TABLE_EQUIVALENT_KEY.sql(),
            &[&key.table, &key.primary, &key.name, &columns],
        )?
        .map(|row| row.get("name"));
    if let Some(old_name) = equivalent {
        if !options.dry_run {
            tx.ddl(&queries::RENAME_KEY.ddl(
                &[
                    ("table_name", key.table),
                    ("old_name", &old_name),
                    ("new_name", key.name),
                ],
                &[],
            ))?;
        }
        return Ok(Some(format!("{} (renamed from {old_name})", key.name)));
    }
    if !options.dry_run {
        tx.ddl(key.restore.sql())?;
    }
    Ok(Some(key.name.to_string()))
}

/// A key the guide gives a table, and how to put it back.
struct GuideKey {
    table: &'static str,
    name: &'static str,
    primary: bool,
    columns: &'static [&'static str],
    restore: &'static queries::Query,
}

fn repair_sequence(tx: &mut Tx<'_>, options: &RepairOptions) -> Result<RepairStep, StepError> {
    // No insert may take an id while the sequence moves.
    lock(
        tx,
        options,
        &queries::LOCK_METRICS_AGAINST_WRITES,
        "metrics",
    )?;
    let position = tx
        .row_opt(queries::METRICS_ID_SEQUENCE.sql(), &[])?
        .map(|row| {
            (
                row.get::<_, String>("sequence_name"),
                row.get::<_, i64>("next_id"),
                row.get::<_, Option<i64>>("max_id"),
            )
        });
    let mut step = RepairStep {
        kind: "sequence",
        action: "metrics_id_seq is past every stored id".to_string(),
        changed: 0,
        constraint_restored: None,
        rows: Vec::new(),
        needs_operator: false,
    };
    if let Some((sequence, next_id, Some(max_id))) = position
        && next_id <= max_id
    {
        // setval is not transactional: a dry run must not call it, even to roll it back.
        if !options.dry_run {
            tx.row_opt(queries::REPAIR_SEQUENCE.sql(), &[])?;
        }
        step.action = format!("moved {sequence} past the stored ids");
        step.changed = 1;
        step.rows.push(format!(
            "{sequence}: next id {next_id} → {}",
            max_id.saturating_add(1)
        ));
    }
    Ok(step)
}

/// Copies beyond the first of what must be there once: how to find and remove them, how to
/// describe a removed one, and the constraint of the guide's that keeps them out.
struct Surplus {
    kind: &'static str,
    action: &'static str,
    /// The table, and the statement that holds off writes to it while the copies go.
    table: &'static str,
    lock: &'static queries::Query,
    remove: &'static queries::Query,
    describe: fn(&postgres::Row) -> String,
    /// The key that keeps copies out, put back once they are gone.
    key: GuideKey,
}

/// The first `limit` of what a step changed, by event id: RETURNING gives no order, and on the
/// distributed layout each shard's rows come back as the shards answer.
fn listed(rows: impl Iterator<Item = String>, limit: usize) -> Vec<String> {
    let mut rows: Vec<String> = rows.collect();
    rows.sort();
    rows.truncate(limit);
    rows
}

/// Removes the copies beyond the first, lists them, and puts the constraint back.
fn remove_surplus(
    tx: &mut Tx<'_>,
    options: &RepairOptions,
    surplus: &Surplus,
) -> Result<RepairStep, StepError> {
    lock(tx, options, surplus.lock, surplus.table)?;
    let removed = tx.rows(surplus.remove.sql(), &[])?;
    let constraint_restored = restore_constraint(tx, options, &surplus.key)?;
    Ok(RepairStep {
        kind: surplus.kind,
        action: surplus.action.to_string(),
        changed: removed.len() as u64,
        constraint_restored,
        rows: listed(removed.iter().map(surplus.describe), options.limit),
        needs_operator: false,
    })
}

fn repair_duplicated_guard_rows(
    tx: &mut Tx<'_>,
    options: &RepairOptions,
) -> Result<RepairStep, StepError> {
    let surplus = Surplus {
        kind: "duplicated_guard_rows",
        action: "removed guard rows beyond the first per event id",
        table: "processed_events",
        lock: &queries::LOCK_PROCESSED_EVENTS_AGAINST_WRITES,
        remove: &queries::REPAIR_DUPLICATED_GUARD_ROWS,
        describe: |row| {
            let processed_at: DateTime<Utc> = row.get("processed_at");
            format!(
                "{} (sensor {}, processed {}, Kafka {})",
                row.get::<_, String>("event_id"),
                row.get::<_, String>("sensor_id"),
                processed_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                kafka(row.get("kafka_partition"), row.get("kafka_offset")),
            )
        },
        key: GuideKey {
            table: "processed_events",
            name: "processed_events_pkey",
            primary: true,
            columns: &["event_id"],
            restore: &queries::RESTORE_PROCESSED_EVENTS_PKEY,
        },
    };
    remove_surplus(tx, options, &surplus)
}

fn repair_duplicated_metrics(
    tx: &mut Tx<'_>,
    options: &RepairOptions,
    layout: Layout,
) -> Result<RepairStep, StepError> {
    let key = match layout {
        Layout::Plain => GuideKey {
            table: "metrics",
            name: "metrics_event_id_key",
            primary: false,
            columns: &["event_id"],
            restore: &queries::RESTORE_METRICS_UNIQUE_PLAIN,
        },
        Layout::Partitioned => GuideKey {
            table: "metrics",
            name: "metrics_event_id_timestamp_key",
            primary: false,
            columns: &["event_id", "timestamp"],
            restore: &queries::RESTORE_METRICS_UNIQUE_PARTITIONED,
        },
    };
    let surplus = Surplus {
        kind: "duplicated_metrics",
        action: "removed metrics beyond the first per event id (the lowest id stays)",
        table: "metrics",
        lock: &queries::LOCK_METRICS_AGAINST_WRITES,
        remove: &queries::REPAIR_DUPLICATED_METRICS,
        describe: |row| {
            let timestamp: DateTime<Utc> = row.get("timestamp");
            format!(
                "{}: removed id {} (value {}, {}); kept id {} (value {})",
                row.get::<_, String>("event_id"),
                row.get::<_, i64>("id"),
                row.get::<_, f64>("value"),
                timestamp.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                row.get::<_, i64>("kept_id"),
                row.get::<_, f64>("kept_value"),
            )
        },
        key,
    };
    remove_surplus(tx, options, &surplus)
}

fn repair_unguarded_metrics(
    tx: &mut Tx<'_>,
    options: &RepairOptions,
) -> Result<RepairStep, StepError> {
    let added = tx.rows(queries::REPAIR_UNGUARDED_METRICS.sql(), &[])?;
    Ok(RepairStep {
        kind: "unguarded_metrics",
        action: "added the missing guard rows (sensor from the metric, Kafka coordinates unknown)"
            .to_string(),
        changed: added.len() as u64,
        constraint_restored: None,
        rows: listed(
            added.iter().map(|row| {
                format!(
                    "{} (sensor {})",
                    row.get::<_, String>("event_id"),
                    row.get::<_, String>("sensor_id")
                )
            }),
            options.limit,
        ),
        needs_operator: false,
    })
}

fn repair_lost_metrics(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    options: &RepairOptions,
) -> Result<RepairStep, StepError> {
    let query = if options.release_lost {
        &queries::REPAIR_RELEASE_LOST
    } else {
        &queries::LOST_METRICS
    };
    let sql = facts.with_retired_events(query);
    let lost = tx.rows(&sql, &[])?;
    Ok(RepairStep {
        kind: "lost_metrics",
        action: if options.release_lost {
            "released: deleted the guard rows of lost metrics, so the consumer or a replay can \
             deliver them again"
                .to_string()
        } else {
            "left alone: add --release-lost to delete their guard rows so they can be delivered \
             again, or restore them from a dump with `metricsctl replay --repair FILE`"
                .to_string()
        },
        changed: lost.len() as u64,
        constraint_restored: None,
        rows: lost
            .iter()
            .take(options.limit)
            .map(|row| {
                format!(
                    "{} (sensor {}, Kafka {})",
                    row.get::<_, String>("event_id"),
                    row.get::<_, String>("sensor_id"),
                    kafka(row.get("kafka_partition"), row.get("kafka_offset")),
                )
            })
            .collect(),
        needs_operator: !options.release_lost && !lost.is_empty(),
    })
}

fn kafka(partition: Option<i32>, offset: Option<i64>) -> String {
    match (partition, offset) {
        (Some(partition), Some(offset)) => format!("{partition}/{offset}"),
        _ => "unknown".to_string(),
    }
}
