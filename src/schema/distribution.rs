//! The distributed layout on Citus: both tables hash-distributed by `event_id` and colocated, so
//! an event's guard row and its metric live on one shard and the idempotent insert stays one
//! statement and one transaction. Citus enforces a key only when it holds the distribution
//! column, so metrics' primary key becomes `(id, event_id)` (`(id, event_id, timestamp)` when
//! partitioned); every other name and column stays the guide's.

use anyhow::anyhow;

use crate::db::facts::Layout;
use crate::db::{SchemaFacts, Tx, queries};
use crate::error::{self, Error, What};

/// The column both tables are distributed by.
pub const DISTRIBUTION_COLUMN: &str = "event_id";

/// What `migrate --distributed` did to the layout.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DistributionReport {
    /// The tables distributed by this run (none when they already were).
    pub distributed: Vec<String>,
    pub workers: i64,
}

/// Distributes the guide's (empty or small) tables inside `tx`, the migration's transaction:
/// metrics' key first, then processed_events, then metrics colocated with it. Does nothing for
/// a table already distributed by event_id; refuses, changing nothing, where the citus extension
/// or workers are missing or a table is distributed by another column.
pub fn ensure_distributed_layout(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    layout: Layout,
) -> error::Result<DistributionReport> {
    require_citus(facts, "migrate --distributed")?;
    let workers = active_workers(tx)?;
    refuse_without_workers(workers, "migrate --distributed")?;
    let mut report = DistributionReport {
        distributed: Vec::new(),
        workers,
    };
    if !facts.is_table_distributed("metrics") {
        let key = match layout {
            Layout::Plain => &queries::DISTRIBUTION_KEY_PLAIN,
            Layout::Partitioned => &queries::DISTRIBUTION_KEY_PARTITIONED,
        };
        tx.ddl(&facts.ddl(key, &[], &[]))?;
    }
    for table in DISTRIBUTED_IN_ORDER {
        if facts.is_table_distributed(table) {
            continue;
        }
        let (relation, colocate_with) = distribute_arguments(facts, table);
        tx.row(
            queries::DISTRIBUTE_TABLE.sql(),
            &[&relation, &colocate_with],
        )?;
        report.distributed.push(table.to_string());
    }
    Ok(report)
}

/// The guide's tables in the order they are distributed: metrics is colocated with the guard.
const DISTRIBUTED_IN_ORDER: [&str; 2] = ["processed_events", "metrics"];

/// What `command` needs of the database: the citus extension, and the guide's tables distributed
/// (where they are) by event_id, so that an event's guard row and its metric share a shard.
fn require_citus(facts: &SchemaFacts, command: &str) -> error::Result<()> {
    if !facts.has_citus() {
        return Err(refused(format!(
            "{command} needs a Citus coordinator: the citus extension is not created in this \
             database (CREATE EXTENSION citus, with shared_preload_libraries = 'citus'). Nothing \
             was changed"
        )));
    }
    for (table, column) in &facts.distributed_tables {
        if column != DISTRIBUTION_COLUMN {
            return Err(refused(format!(
                "{} is distributed by {column}, not by {DISTRIBUTION_COLUMN}: an event's guard row \
                 and its metric would live on different shards. Undistribute it \
                 (SELECT undistribute_table('{table}')) and run {command} again",
                facts.qualified(table)
            )));
        }
    }
    Ok(())
}

/// The coordinator's active workers.
fn active_workers(tx: &mut Tx<'_>) -> error::Result<i64> {
    Ok(tx.row(queries::CITUS_WORKERS.sql(), &[])?.get("workers"))
}

fn refuse_without_workers(workers: i64, command: &str) -> error::Result<()> {
    if workers == 0 {
        return Err(refused(format!(
            "{command}: this coordinator has no active workers; add them with SELECT \
             citus_add_node('worker-host', 5432) and run it again. Nothing was changed"
        )));
    }
    Ok(())
}

fn refused(message: impl Into<String>) -> Error {
    Error::new(What::Refused, anyhow!(message.into()))
}

/// Where the conversion of a populated single-node schema stands (`distribute --status`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DistributionProgress {
    pub layout: Layout,
    pub workers: i64,
    /// metrics' primary key holds event_id (the first step).
    pub key_ready: bool,
    /// The index the plain layout's new key is built on, when one is there: valid, or left
    /// invalid by an interrupted build.
    pub key_index_valid: Option<bool>,
    pub processed_events_distributed: bool,
    pub metrics_distributed: bool,
}

impl DistributionProgress {
    /// What is left to do, in order.
    pub fn steps_left(&self) -> Vec<&'static str> {
        let mut steps = Vec::new();
        if !self.key_ready {
            steps.push("key");
        }
        if !self.processed_events_distributed {
            steps.push("processed_events");
        }
        if !self.metrics_distributed {
            steps.push("metrics");
        }
        steps
    }
}

/// Reads where `distribute` stands; refuses where this is no Citus coordinator with workers.
pub fn progress(tx: &mut Tx<'_>, facts: &SchemaFacts) -> error::Result<DistributionProgress> {
    let layout = facts.require_tables()?;
    require_citus(facts, "distribute")?;
    let workers = active_workers(tx)?;
    let row = tx.row(
        queries::DISTRIBUTION_PROGRESS.sql(),
        &[&facts.schema_name()],
    )?;
    let key: Vec<String> = row
        .get::<_, Option<Vec<String>>>("primary_key_columns")
        .unwrap_or_default();
    Ok(DistributionProgress {
        layout,
        workers,
        key_ready: key.iter().any(|column| column == DISTRIBUTION_COLUMN),
        key_index_valid: row.get("key_index_valid"),
        processed_events_distributed: facts.is_table_distributed("processed_events"),
        metrics_distributed: facts.is_table_distributed("metrics"),
    })
}

/// The statements `distribute` runs from where it stands, for `--dry-run`.
pub fn plan(facts: &SchemaFacts, progress: &DistributionProgress) -> Vec<String> {
    let mut statements = Vec::new();
    if !progress.key_ready {
        match progress.layout {
            Layout::Plain => {
                if progress.key_index_valid == Some(false) {
                    statements.push(facts.ddl(&queries::DISTRIBUTION_KEY_INDEX_DROP, &[], &[]));
                }
                statements.push(facts.ddl(&queries::DISTRIBUTION_KEY_INDEX, &[], &[]));
                statements.push(facts.ddl(&queries::DISTRIBUTION_KEY_SWAP, &[], &[]));
            }
            Layout::Partitioned => {
                statements.push(facts.ddl(&queries::DISTRIBUTION_KEY_PARTITIONED, &[], &[]))
            }
        }
    }
    for table in DISTRIBUTED_IN_ORDER {
        if !facts.is_table_distributed(table) {
            statements.push(distribute_statement(facts, table));
        }
    }
    statements
}

/// The table and what it is colocated with, as create_distributed_table takes them.
fn distribute_arguments(facts: &SchemaFacts, table: &str) -> (String, String) {
    let colocate_with = if table == "processed_events" {
        "none".to_string()
    } else {
        facts.qualified("processed_events")
    };
    (facts.qualified(table), colocate_with)
}

/// How one table is distributed, as SQL (its values written in as literals, for `--dry-run`).
/// In one transaction, not `create_distributed_table_concurrently`: under a running replay the
/// tests saw the concurrent form lose the guard rows written during its copy (24,000 of 30,000;
/// the workers' logical replication could not attach to the coordinator's shared memory). Writers
/// wait while a table copies; nothing is lost, and a kill rolls the step back whole.
fn distribute_statement(facts: &SchemaFacts, table: &str) -> String {
    let (relation, colocate_with) = distribute_arguments(facts, table);
    queries::DISTRIBUTE_TABLE.ddl(
        &[],
        &[
            ("relation", relation.as_str()),
            ("colocate_with", colocate_with.as_str()),
        ],
    )
}

/// Refuses a conversion that has nowhere to go.
pub fn ensure_can_distribute(progress: &DistributionProgress) -> error::Result<()> {
    refuse_without_workers(progress.workers, "distribute")
}

/// The steps of `distribute` as they are run.
pub trait DistributeObserver {
    fn step(&mut self, what: &str);
}

/// Converts the populated single-node schema on this coordinator in place, from wherever an
/// earlier run stopped: metrics' key (the plain layout's built concurrently and swapped in a
/// moment; the partitioned one's rebuilt under lock), then each table distributed in a
/// transaction of its own. A kill at any moment leaves the tables whole, and a rerun carries on.
pub fn distribute(
    session: &mut crate::db::Session,
    lock_timeout: std::time::Duration,
    observer: &mut dyn DistributeObserver,
) -> error::Result<DistributionProgress> {
    let facts = session.shared_facts();
    crate::schema::partitions::refuse_on_a_standby(&facts, "distribute")?;
    let before = session.read(|tx| progress(tx, &facts))?;
    ensure_can_distribute(&before)?;
    if !before.key_ready {
        observer.step("metrics' primary key becomes one that holds event_id");
        key_step(session, &facts, &before, lock_timeout)?;
    }
    for table in DISTRIBUTED_IN_ORDER {
        if !facts.is_table_distributed(table) {
            observer.step(&format!(
                "{table}: distributing by event_id in one transaction (writers wait while it \
                 copies)"
            ));
            let (relation, colocate_with) = distribute_arguments(&facts, table);
            session.write(|tx| -> error::Result<()> {
                crate::db::set_lock_timeout(tx, lock_timeout)?;
                tx.row(
                    queries::DISTRIBUTE_TABLE.sql(),
                    &[&relation, &colocate_with],
                )?;
                Ok(())
            })?;
        }
    }
    session.refresh_facts()?;
    let facts = session.shared_facts();
    session.read(|tx| progress(tx, &facts))
}

fn key_step(
    session: &mut crate::db::Session,
    facts: &SchemaFacts,
    progress: &DistributionProgress,
    lock_timeout: std::time::Duration,
) -> error::Result<()> {
    let swap = match progress.layout {
        Layout::Plain => {
            if progress.key_index_valid == Some(false) {
                session.outside_transaction(&facts.ddl(
                    &queries::DISTRIBUTION_KEY_INDEX_DROP,
                    &[],
                    &[],
                ))?;
            }
            session.outside_transaction(&facts.ddl(&queries::DISTRIBUTION_KEY_INDEX, &[], &[]))?;
            facts.ddl(&queries::DISTRIBUTION_KEY_SWAP, &[], &[])
        }
        // A partitioned table's key cannot be swapped in from a concurrently built index: the
        // new one is built under the lock, writers waiting for it.
        Layout::Partitioned => facts.ddl(&queries::DISTRIBUTION_KEY_PARTITIONED, &[], &[]),
    };
    session.write(|tx| -> error::Result<()> {
        crate::db::set_lock_timeout(tx, lock_timeout)?;
        tx.ddl(&swap)?;
        Ok(())
    })
}
