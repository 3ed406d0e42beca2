//! The idempotent insert path, the one the consumer's contract describes: for a batch of events,
//! in one transaction, insert the guard rows into `processed_events` (`ON CONFLICT (event_id) DO
//! NOTHING RETURNING event_id`), then into `metrics` exactly the events the guard returned.
//!
//! The whole batch is a single set-based statement (`queries/ingest_batch.sql`): arrays go in as
//! bind parameters and are unnested, so there is one round trip per batch, never per event, and a
//! crash at any instant leaves no guard row without its metric.

use std::thread;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::error::SqlState;

use crate::db::session::Access;
use crate::db::{self, Layout, Param, SchemaFacts, Session, queries};
use crate::error::{Error, What};
use crate::events::Event;

/// How often a batch that lost a deadlock or serialization race is tried again.
const MAX_ATTEMPTS: u32 = 8;

/// Events on their way to the database, column by column. `delivery_order` keeps each event's
/// place in the input, so the rows can travel sorted by event id.
#[derive(Debug, Default)]
pub struct EventBatch {
    delivery_order: Vec<i32>,
    event_ids: Vec<String>,
    sensor_ids: Vec<String>,
    timestamps: Vec<DateTime<Utc>>,
    values: Vec<f64>,
    kafka_partitions: Vec<Option<i32>>,
    kafka_offsets: Vec<Option<i64>>,
}

impl EventBatch {
    pub fn with_capacity(capacity: usize) -> EventBatch {
        EventBatch {
            delivery_order: Vec::with_capacity(capacity),
            event_ids: Vec::with_capacity(capacity),
            sensor_ids: Vec::with_capacity(capacity),
            timestamps: Vec::with_capacity(capacity),
            values: Vec::with_capacity(capacity),
            kafka_partitions: Vec::with_capacity(capacity),
            kafka_offsets: Vec::with_capacity(capacity),
        }
    }

    pub fn push(&mut self, event: Event) {
        self.delivery_order.push(self.event_ids.len() as i32);
        self.event_ids.push(event.event_id);
        self.sensor_ids.push(event.sensor_id);
        self.timestamps.push(event.timestamp);
        self.values.push(event.value);
        self.kafka_partitions.push(event.kafka_partition);
        self.kafka_offsets.push(event.kafka_offset);
    }

    pub fn len(&self) -> usize {
        self.event_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.event_ids.is_empty()
    }

    /// The columns as the insert statements bind them, in their parameter order.
    fn params(&self) -> [&dyn Param; 7] {
        [
            &self.event_ids,
            &self.sensor_ids,
            &self.timestamps,
            &self.values,
            &self.kafka_partitions,
            &self.kafka_offsets,
            &self.delivery_order,
        ]
    }

    /// Readies the batch for the database and returns how many repeats it dropped:
    /// - every repeat of an event id already in the batch goes, the first occurrence wins
    ///   (within one statement a repeat would reach the guard twice; on partitioned metrics with
    ///   another timestamp it could even be stored twice);
    /// - the rows are sorted by event id, the order the guard's index and lock order want, so
    ///   PostgreSQL's own sort finds them already in order. `delivery_order` keeps input order.
    pub fn prepare(&mut self) -> usize {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_unstable_by(|&a, &b| self.event_ids[a].cmp(&self.event_ids[b]).then(a.cmp(&b)));
        let before = order.len();
        order.dedup_by(|later, first| self.event_ids[*later] == self.event_ids[*first]);
        let repeats = before - order.len();
        self.delivery_order = order.iter().map(|&i| self.delivery_order[i]).collect();
        permute(&mut self.event_ids, &order);
        permute(&mut self.sensor_ids, &order);
        permute(&mut self.timestamps, &order);
        permute(&mut self.values, &order);
        permute(&mut self.kafka_partitions, &order);
        permute(&mut self.kafka_offsets, &order);
        repeats
    }
}

/// Rebuilds a column as `order` lists its rows (rows not listed are dropped).
fn permute<T>(column: &mut Vec<T>, order: &[usize]) {
    let mut rows: Vec<Option<T>> = column.drain(..).map(Some).collect();
    column.extend(
        order
            .iter()
            .map(|&i| rows[i].take().expect("each row listed once")),
    );
}

/// What the database did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Metrics rows written (with `--dry-run`: that would be written).
    pub stored: u64,
    /// Of those, metrics restored for guard rows that had lost theirs (`replay --repair`).
    pub restored: u64,
}

/// Where metrics_id_seq stands against the ids metrics holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencePosition {
    pub sequence: String,
    /// What nextval would return.
    pub next_id: i64,
    pub max_id: Option<i64>,
}

impl SequencePosition {
    /// Inserts would take ids metrics already holds.
    pub fn is_behind(&self) -> bool {
        self.max_id.is_some_and(|max| self.next_id <= max)
    }

    /// The statement that moves the sequence past every stored id.
    pub fn fix_sql(&self) -> String {
        format!(
            "SELECT setval('{}', (SELECT max(id) FROM metrics));",
            self.sequence.replace('\'', "''")
        )
    }
}

/// Every insert collides with a stored id: the sequence is behind (after a data-only restore).
/// A batch that meets it fails with this inside an [`Error`] of [`What::Database`].
#[derive(Debug)]
pub struct SequenceBehind(pub SequencePosition);

impl std::fmt::Display for SequenceBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let position = &self.0;
        write!(
            f,
            "{} would hand out id {} but metrics already holds ids up to {}: new metrics \
             would reuse stored ids and collide on metrics_pkey (this happens after a \
             data-only restore); nothing of the batch was kept. Move the sequence past them \
             with: {}",
            position.sequence,
            position.next_id,
            position.max_id.unwrap_or_default(),
            position.fix_sql()
        )
    }
}

impl std::error::Error for SequenceBehind {}

impl SequenceBehind {
    pub fn into_error(self) -> Error {
        Error::new(What::Database, self)
    }
}

/// Whether a batch's statement was cancelled (57014: a cancel, or a statement timeout).
pub fn was_cancelled(error: &Error) -> bool {
    error
        .source_postgres()
        .is_some_and(|e| e.code() == Some(&SqlState::QUERY_CANCELED))
}

/// What must happen before the same batch can succeed: nothing (a rerun finishes: the connection
/// or the server went away, the batch lost a race), or something the message names.
/// `statement_timeout` is the session's setting, and who set it.
pub fn remedy(error: &Error, statement_timeout: &crate::db::facts::SessionTimeout) -> Remedy {
    let Some(error) = error.source_postgres() else {
        return Remedy::FixTheCause;
    };
    let Some(code) = error.code() else {
        return Remedy::Rerun; // no SQLSTATE: the connection failed
    };
    let message = error.as_db_error().map(|e| e.message()).unwrap_or_default();
    match code.code() {
        "53100" => Remedy::First(
            "the server's disk is full: free space on it (or grow it) first".to_string(),
        ),
        "53200" => Remedy::First(
            "the server ran out of memory: lower --batch-size or --jobs, or give it more \
             (work_mem, the machine's memory) first"
                .to_string(),
        ),
        "53300" => Remedy::First(
            "the server is at max_connections: lower --jobs, or wait for connections to free \
             up, first"
                .to_string(),
        ),
        // pgbouncer's own error: every server connection of the pool stayed taken.
        "08P01" if message.contains("query_wait_timeout") => Remedy::First(
            "the connection pooler gave up waiting for a free server connection: its pool for \
             this database and user (pgbouncer's default_pool_size) is smaller than the \
             connections this replay keeps open (one per --jobs, plus one). Lower --jobs or \
             raise the pool's size first"
                .to_string(),
        ),
        "57014" if message.contains("statement timeout") => Remedy::First(format!(
            "{}, or lower --batch-size so a batch takes less",
            db::statement_timeout_advice(error, statement_timeout).unwrap_or_default()
        )),
        // 08 connection, 40 rollback (deadlock, serialization), 53 other resources, 57 operator
        // intervention (shutdown, cancel), 55P03 lock not available, 58 system.
        class
            if matches!(&class[..2], "08" | "40" | "53" | "57" | "58")
                || code == &SqlState::LOCK_NOT_AVAILABLE =>
        {
            Remedy::Rerun
        }
        _ => Remedy::FixTheCause,
    }
}

/// What must happen before a rerun can finish a stopped replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remedy {
    /// Nothing: running it again finishes it.
    Rerun,
    /// Something the error itself says.
    FixTheCause,
    /// This, named.
    First(String),
}

/// Whether the current user may do what a replay does (a dry run only reads): if not, an error
/// naming the GRANT, before anything is read or written.
pub fn ensure_privileges(facts: &SchemaFacts, dry_run: bool) -> Result<(), Error> {
    let role = db::queries::quote_identifier(&facts.current_user);
    let mut lacking = Vec::new();
    let mut grants = Vec::new();
    for name in ["processed_events", "metrics"] {
        let Some(table) = facts.relation(name) else {
            continue;
        };
        let mut privileges = Vec::new();
        if !table.may_select {
            privileges.push("SELECT");
        }
        if !dry_run && !table.may_insert {
            privileges.push("INSERT");
        }
        if !privileges.is_empty() {
            lacking.push(format!(
                "{} on {}",
                privileges.join(", "),
                facts.qualified(name)
            ));
            grants.push(format!(
                "GRANT {} ON {} TO {role};",
                privileges.join(", "),
                facts.qualified(name)
            ));
        }
    }
    if let Some(metrics) = facts.metrics()
        && let Some(sequence) = &metrics.sequence
        && !dry_run
        && !metrics.may_use_sequence
    {
        lacking.push(format!("USAGE on sequence {sequence}"));
        grants.push(format!(
            "GRANT USAGE, SELECT ON SEQUENCE {sequence} TO {role};"
        ));
    }
    if lacking.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        What::Privilege,
        anyhow::anyhow!(
            "replay{} needs what {} may not: {}; nothing was read or written. As the tables' \
             owner ({}): {} (`metricsctl grants --writer {}` prints every grant a writer needs)",
            if dry_run { " --dry-run" } else { "" },
            facts.current_user,
            lacking.join(", "),
            facts.tables_owner(),
            grants.join(" "),
            crate::text::shell_quote(&facts.current_user)
        ),
    ))
}

/// Which form of the insert statement a batch goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `ingest_batch.sql`: metrics inserted without checking for one with the event id, relying
    /// on metrics' unique key on event_id.
    Fast,
    /// `ingest_batch_checked.sql`: a metric only where none with its event id exists.
    Checked,
}

/// A connection ready to ingest batches. Each batch is one statement in a transaction of its own
/// (or, with `begin`, in the one transaction held until `commit`).
pub struct Ingestor {
    session: Session,
    /// The fast form on plain metrics with its unique key on event_id; the checked form on
    /// partitioned metrics (unique only per timestamp there), where that key is missing, and on
    /// plain metrics once a batch met a metric stored without its guard row.
    form: Form,
    /// `replay --repair`: the statement that also restores lost metrics.
    repair: Option<String>,
    /// The dry-run query, once its temporary table exists.
    dry_run: Option<String>,
}

impl Ingestor {
    /// Readies a session to ingest: refuses a guard without its primary key (the insert path's
    /// ON CONFLICT needs it), and picks the checked form where metrics' key cannot stop a second
    /// copy.
    pub fn new(session: Session) -> Result<Ingestor, Error> {
        let facts = session.facts();
        let layout = facts.require_tables()?;
        // Known by what they are: a restore or a hand may have named them otherwise.
        if facts.key_on("processed_events", &["event_id"]).is_none() {
            return Err(Error::new(
                What::WrongSchema,
                anyhow::anyhow!(
                    "processed_events has no primary key on event_id (the guide's \
                     processed_events_pkey): the guard it is cannot keep an event from being stored twice, and nothing was written. \
                     Put it back with `metricsctl repair` (it removes duplicated guard rows \
                     first), then replay"
                ),
            ));
        }
        let form = match layout {
            Layout::Plain if facts.key_on("metrics", &["event_id"]).is_some() => Form::Fast,
            _ => Form::Checked,
        };
        Ok(Ingestor {
            session,
            form,
            repair: None,
            dry_run: None,
        })
    }

    /// Whether batches go through the checked form from the start (for messages and tests).
    pub fn checks_every_batch(&self) -> bool {
        self.form == Form::Checked
    }

    /// From now on, events whose guard row exists but whose metric is missing (and was not
    /// retired by retention) get their metric restored (`replay --repair`).
    pub fn restore_lost_metrics(&mut self) {
        self.repair = Some(
            self.session
                .facts()
                .with_retired_events(&queries::INGEST_BATCH_REPAIR),
        );
    }

    /// The session, for reads that belong with ingesting (partition bounds, the sequence).
    pub fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Writes a batch through the guard. Outside `begin`/`commit` the batch commits on its own;
    /// inside, it is kept until `commit`. A lost deadlock or serialization race is retried.
    /// A failed batch leaves nothing behind: it is one statement.
    pub fn ingest(&mut self, batch: &EventBatch) -> Result<BatchOutcome, Error> {
        let mut attempt = 1;
        loop {
            let sql: &str = match (&self.repair, self.form) {
                (Some(repair), _) => repair,
                (None, Form::Checked) => queries::INGEST_BATCH_CHECKED.sql(),
                (None, Form::Fast) => queries::INGEST_BATCH.sql(),
            };
            let sql = sql.to_string();
            let error = match self.execute_once(&sql, batch) {
                Ok(outcome) => return Ok(outcome),
                Err(error) => error,
            };
            if error.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                if self.form == Form::Fast && self.repair.is_none() {
                    // A metric stored without its guard row, most likely: the checked form
                    // keeps it and adds the guard row. Anything else fails there too.
                    self.form = Form::Checked;
                    continue;
                }
                // The checked form skips stored event ids, so another key collided.
                let position = self.sequence_position()?;
                if let Some(position) = position.filter(SequencePosition::is_behind) {
                    return Err(SequenceBehind(position).into_error());
                }
                // Or a writer that bypasses the guard stored one of these event ids just now.
                if attempt < MAX_ATTEMPTS {
                    thread::sleep(backoff(attempt));
                    attempt += 1;
                    continue;
                }
            } else if is_retryable(&error) && attempt < MAX_ATTEMPTS {
                thread::sleep(backoff(attempt));
                attempt += 1;
                continue;
            }
            return Err(error.into());
        }
    }

    /// One attempt, in a transaction of its own, or inside the held one fenced by a savepoint so
    /// that a failure can be undone alone.
    fn execute_once(
        &mut self,
        sql: &str,
        batch: &EventBatch,
    ) -> Result<BatchOutcome, postgres::Error> {
        let mut tx = self.session.held()?;
        // The locks first, with nothing unread behind them (see the query's comment).
        tx.ddl(queries::INGEST_LOCK.sql())?;
        let row = if tx.is_joined() {
            let mut savepoint = tx.savepoint()?;
            let row = savepoint.row(sql, &batch.params())?;
            savepoint.commit()?;
            row
        } else {
            tx.row(sql, &batch.params())?
        };
        tx.commit()?;
        let stored: i64 = row.get("stored");
        let restored: i64 = row.try_get("restored").unwrap_or(0);
        Ok(BatchOutcome {
            stored: stored as u64,
            restored: restored as u64,
        })
    }

    /// What `ingest` would store of this batch, counting an event id once per dry run however
    /// often it comes (a temporary table of the dry run's transaction remembers); writes nothing
    /// to the guide's tables.
    pub fn ingest_dry_run(&mut self, batch: &EventBatch) -> Result<BatchOutcome, postgres::Error> {
        self.start(true)?;
        let sql = self.dry_run.clone().expect("prepared above");
        let mut tx = self.session.held()?;
        tx.ddl(queries::INGEST_DRY_RUN_LOCK.sql())?;
        let row = tx.row(&sql, &[&batch.event_ids])?;
        let would_insert = row.get::<_, i64>("would_insert") as u64;
        let restored = if self.repair.is_some() {
            row.get::<_, i64>("would_restore") as u64
        } else {
            0
        };
        Ok(BatchOutcome {
            stored: would_insert + restored,
            restored,
        })
    }

    /// Has the server answer once before anything is read: a dry run opens the transaction it
    /// keeps to the end (and so the server connection it holds), a real run asks in one of its
    /// own. Behind a pooler with too few server connections, this is where a writer waits.
    pub fn start(&mut self, dry_run: bool) -> Result<(), postgres::Error> {
        if !dry_run {
            return self.session.read(|_| Ok(()));
        }
        if self.dry_run.is_none() {
            self.session.begin_held(Access::ReadWrite)?;
            self.session
                .held()?
                .ddl(queries::INGEST_DRY_RUN_SETUP.sql())?;
            self.dry_run = Some(
                self.session
                    .facts()
                    .with_retired_events(&queries::INGEST_BATCH_DRY_RUN),
            );
        }
        Ok(())
    }

    /// Where metrics_id_seq stands (`None` when metrics.id owns no sequence).
    pub fn sequence_position(&mut self) -> Result<Option<SequencePosition>, postgres::Error> {
        let mut tx = self.session.held()?;
        let row = tx.row_opt(queries::METRICS_ID_SEQUENCE.sql(), &[])?;
        tx.commit()?;
        Ok(row.map(|row| SequencePosition {
            sequence: row.get("sequence_name"),
            next_id: row.get("next_id"),
            max_id: row.get("max_id"),
        }))
    }

    /// Holds the following batches in one transaction (`replay --strict`: a file commits whole).
    pub fn begin(&mut self) -> Result<(), postgres::Error> {
        self.session.begin_held(Access::ReadWrite)
    }

    pub fn commit(&mut self) -> Result<(), postgres::Error> {
        self.session.end_held(true)
    }

    pub fn rollback(&mut self) -> Result<(), postgres::Error> {
        self.session.end_held(false)
    }
}

/// Failures a rerun of the same batch gets past (its transaction rolled back whole): a deadlock,
/// a serialization failure, and the moment Citus switches a table being distributed
/// concurrently (`metricsctl distribute`) to its shards, which a statement planned just before
/// meets as a shard it cannot find.
fn is_retryable(error: &postgres::Error) -> bool {
    match error.code() {
        Some(&SqlState::T_R_DEADLOCK_DETECTED) | Some(&SqlState::T_R_SERIALIZATION_FAILURE) => true,
        Some(&SqlState::INTERNAL_ERROR) => error.as_db_error().is_some_and(|e| {
            e.message()
                .starts_with("could not find valid entry for shard")
        }),
        _ => false,
    }
}

/// 20 ms, 40 ms, ... up to about 2.5 s, with jitter so two losers do not collide again.
fn backoff(attempt: u32) -> Duration {
    let base = 20u64 << attempt.min(7);
    let jitter = u64::from(std::process::id() ^ attempt.wrapping_mul(2_654_435_761)) % base;
    Duration::from_millis(base / 2 + jitter / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, value: f64) -> Event {
        Event {
            event_id: id.to_string(),
            sensor_id: "s".to_string(),
            timestamp: DateTime::from_timestamp_millis(0).unwrap(),
            value,
            kafka_partition: None,
            kafka_offset: None,
        }
    }

    #[test]
    fn the_first_occurrence_of_a_repeated_id_wins() {
        let mut batch = EventBatch::with_capacity(4);
        for (id, value) in [("b", 1.0), ("a", 2.0), ("b", 3.0), ("c", 4.0), ("a", 5.0)] {
            batch.push(event(id, value));
        }
        assert_eq!(batch.prepare(), 2);
        assert_eq!(batch.event_ids, vec!["a", "b", "c"]);
        assert_eq!(batch.values, vec![2.0, 1.0, 4.0]);
        assert_eq!(batch.delivery_order, vec![1, 0, 3]);
        assert_eq!(batch.len(), batch.kafka_offsets.len());
    }

    /// The SQL of a statement, without its comments and indentation, a line each.
    fn code_lines(sql: &str) -> Vec<&str> {
        sql.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("--"))
            .collect()
    }

    #[test]
    fn the_fast_and_checked_statements_differ_only_in_the_existence_check() {
        let fast = code_lines(queries::INGEST_BATCH.psql_text);
        let checked = code_lines(queries::INGEST_BATCH_CHECKED.psql_text);
        // Only the events the guard let through are looked for, in every partition, with no
        // correlated subquery (issue 20).
        let check = [
            "WHERE b.event_id OPERATOR(pg_catalog.<>) ALL (ARRAY(",
            "SELECT m.event_id FROM metrics m",
            "WHERE m.event_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT event_id FROM guarded))))",
        ];
        let without_check: Vec<&str> = checked
            .iter()
            .copied()
            .filter(|l| !check.contains(l))
            .collect();
        assert_eq!(
            without_check, fast,
            "the same statement apart from the check"
        );
        assert_eq!(
            checked.len(),
            fast.len() + check.len(),
            "the check is in the checked form"
        );
        assert!(
            fast.iter().all(|l| !l.contains("ON CONFLICT DO NOTHING")),
            "no target-less ON CONFLICT: it would swallow a collision on metrics_pkey"
        );
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) <= Duration::from_millis(40));
        assert!(backoff(7) >= Duration::from_millis(1280));
        assert!(backoff(30) <= Duration::from_millis(2560));
    }
}
