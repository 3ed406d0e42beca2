//! `partitions enable`: converting a plain metrics table to monthly partitions while writers keep
//! inserting. No lock that blocks them is held longer than `lock_timeout` (a lock not granted in
//! time is given up and asked for again later), and every step can be killed and rerun:
//!
//! 1. build: the partitioned table, empty, beside metrics (`metrics_partitioned`, a partition per
//!    month holding rows plus the current one and two ahead, DEFAULT, the two unique keys) — no lock
//!    anyone waits on; one transaction with the bookkeeping row (`metricsctl_conversion`);
//! 2. mirror: statement triggers make every later write to metrics in the partitioned table too,
//!    in the same transaction — a SHARE ROW EXCLUSIVE lock on metrics for an instant;
//! 3. backfill: the rows that were there before the mirror, copied in committed batches by id,
//!    ids and all, with the progress in the same transaction — no lock anyone waits on;
//! 4. index: the guide's three non-unique indexes, left off until now so that every row the
//!    writers mirror costs less — on the partitioned table ON ONLY (a SHARE lock on it for an
//!    instant), then per partition `CREATE INDEX CONCURRENTLY` (no lock anyone waits on) and
//!    attached (an ACCESS EXCLUSIVE lock on that partition's new indexes for an instant);
//! 5. compare: in one snapshot, both tables hold the same rows (counts and id sums);
//! 6. swap: one short transaction under an ACCESS EXCLUSIVE lock on metrics — the plain table is
//!    dropped and the partitioned one takes its name, the guide's names and the id sequence.
//!
//! A session advisory lock lets one run convert at a time; a rerun after a kill resumes where the
//! bookkeeping says (the killed run's server session finishes its last statement first: the rerun
//! waits for it, and ends it if it has stopped beating). That lock needs a server session of its
//! own: through a transaction-pooling proxy the conversion refuses before it changes anything.
//! A run that stops notes why in the bookkeeping, so `--status` says it.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::facts::{CONVERSION_STATE, CONVERSION_TABLE};
use crate::db::{self, Helper, LockHolder, SchemaFacts, Session, Tx, queries};
use crate::error::{self, Error, ResultExt as _, What};
use crate::schema::partitions::{self, Layout, Month};

/// The advisory lock one conversion holds (on its own session) while it runs.
pub const CONVERSION_LOCK_KEY: i64 = 0x6D65_7472_6963_7302;

/// A conversion whose session has not beaten for this long is taken for dead.
const STALE_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct OnlineOptions {
    /// Rows (by id) per backfill transaction.
    pub batch_size: i64,
    /// Percent of the backfill's time spent copying; it rests the remainder after each batch.
    pub copy_share: u32,
    /// How long one attempt at a lock writers wait on may wait.
    pub lock_timeout: Duration,
    /// Attempts at such a lock before giving up (with pauses between them, so writers go on).
    pub lock_attempts: u32,
    /// How long to wait for another run (or a killed run's session) to let go.
    pub wait_for_other_run: Duration,
}

/// How far a conversion has got, for whoever shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Phase(&'static str),
    Copied {
        rows: u64,
        estimate: u64,
    },
    /// Building the indexes of the `done + 1`-th partition of `of`.
    Indexing {
        done: u64,
        of: u64,
    },
}

/// The bookkeeping of a conversion in progress (`partitions enable --status`).
#[derive(Debug, Clone, Serialize)]
pub struct ConversionState {
    pub phase: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat: DateTime<Utc>,
    pub heartbeat_age_seconds: f64,
    pub backfill_up_to: Option<i64>,
    pub copied_up_to: i64,
    pub rows_copied: i64,
    pub rows_estimate: i64,
    /// The server session driving it, and whether that session still exists.
    pub pid: Option<i32>,
    pub running: bool,
    /// That session is building an index (its heartbeat waits until the index is built).
    pub building_index: bool,
    /// Why the last run stopped, in which phase (cleared when a run takes it up again).
    pub stopped_by: Option<String>,
}

/// What a conversion did.
#[derive(Debug, Clone, Serialize)]
pub struct ConversionReport {
    pub already_partitioned: bool,
    /// An earlier, interrupted run's conversion was taken up where it stopped.
    pub resumed: bool,
    /// The months given a partition (besides DEFAULT).
    pub months: Vec<Month>,
    pub rows_copied: i64,
    /// Times the compare found a row deleted or changed during the copy and put it right.
    pub rows_put_right_rounds: u32,
    /// Lock attempts that timed out and were tried again.
    pub lock_retries: u32,
    pub elapsed_seconds: f64,
}

/// The conversion in progress, if there is one (and its bookkeeping is metricsctl's own).
pub fn state(session: &mut Session) -> error::Result<Option<ConversionState>> {
    refuse_untrusted(session.facts())?;
    session.read(read_state)
}

fn read_state(tx: &mut Tx<'_>) -> error::Result<Option<ConversionState>> {
    if !tx
        .row(queries::RELATION_EXISTS.sql(), &[&CONVERSION_STATE])?
        .get::<_, bool>(0)
    {
        return Ok(None);
    }
    let row = tx.row_opt(queries::CONVERSION_STATE.sql(), &[])?;
    Ok(row.map(|row| ConversionState {
        phase: row.get("phase"),
        started_at: row.get("started_at"),
        heartbeat: row.get("heartbeat"),
        heartbeat_age_seconds: row.get("heartbeat_age_seconds"),
        backfill_up_to: row.get("backfill_up_to"),
        copied_up_to: row.get("copied_up_to"),
        rows_copied: row.get("rows_copied"),
        rows_estimate: row.get("rows_estimate"),
        pid: row.get("pid"),
        running: row.get("running"),
        building_index: row.get("building_index"),
        stopped_by: row.get("stopped_by"),
    }))
}

/// The conversion's bookkeeping and the table it builds are metricsctl's only when they are
/// tables of the tables' owner: anything else under those names is refused, not used.
fn refuse_untrusted(facts: &SchemaFacts) -> error::Result<()> {
    for name in [CONVERSION_STATE, CONVERSION_TABLE] {
        if let Some(message) = facts.untrusted_helper_message(name) {
            return Err(Error::new(
                What::Refused,
                anyhow!("{message}; partitions enable needs that name, so nothing was changed"),
            ));
        }
    }
    Ok(())
}

/// Converts metrics to monthly partitions online (see the module's documentation), or finishes
/// a conversion a killed run left. `on_wait` hears who holds the conversion if another run does.
pub fn convert(
    session: &mut Session,
    options: &OnlineOptions,
    on_progress: &mut dyn FnMut(Progress),
    on_wait: impl FnMut(&LockHolder),
) -> error::Result<ConversionReport> {
    let started = Instant::now();
    refuse_untrusted(session.facts())?;
    partitions::refuse_on_a_standby(session.facts(), "partitions enable")?;
    db::pooling::ensure_own_server_session(session, "the online conversion")?;
    take_conversion_lock(session, options, on_wait)?;
    let mut phase = "building";
    let outcome = convert_locked(session, options, on_progress, started, &mut phase);
    if let Err(error) = &outcome {
        note_stop(session, phase, error);
    }
    // Best effort: closing the session releases it anyway.
    let _ = db::unlock_session(session, CONVERSION_LOCK_KEY);
    let statement_timeout = session.facts().statement_timeout.clone();
    outcome.map_err(|error| {
        let advice = error
            .source_postgres()
            .and_then(|e| db::statement_timeout_advice(e, &statement_timeout))
            .map(|advice| format!(" — {advice} — then rerun it"))
            .unwrap_or_default();
        error.context(format!(
            "partitions enable stopped in its {phase} step; nothing is lost (`metricsctl \
             partitions enable --status` shows where it is, a rerun goes on from there){advice}"
        ))
    })
}

/// Notes in the bookkeeping why the run stopped and in which phase (best effort: the server may
/// be gone).
fn note_stop(session: &mut Session, phase: &str, error: &Error) {
    let why = format!(
        "{phase}: {}",
        error.to_string().lines().next().unwrap_or_default()
    );
    let _ = session.write(|tx| -> error::Result<()> {
        if tx
            .row(queries::RELATION_EXISTS.sql(), &[&CONVERSION_STATE])?
            .get::<_, bool>(0)
        {
            tx.ddl(&queries::CONVERSION_STOPPED.ddl(&[], &[("why", &why)]))?;
        }
        Ok(())
    });
}

/// The conversion's advisory lock; a session that holds it but has stopped beating (a killed
/// run's, stuck) is ended.
fn take_conversion_lock(
    session: &mut Session,
    options: &OnlineOptions,
    mut on_wait: impl FnMut(&LockHolder),
) -> error::Result<()> {
    let first = db::lock_session(
        session,
        CONVERSION_LOCK_KEY,
        "partition conversion",
        options.wait_for_other_run,
        &mut on_wait,
    );
    let Err(error) = first else {
        return Ok(());
    };
    if error.what() != What::LockTimeout {
        return Err(error);
    }
    match session.read(read_state)? {
        Some(state)
            if state.running
                && !state.building_index
                && state.heartbeat_age_seconds > STALE_AFTER.as_secs_f64() =>
        {
            let pid = state.pid.unwrap_or_default();
            session.write(|tx| tx.row(queries::TERMINATE_BACKEND.sql(), &[&pid]))?;
            db::lock_session(
                session,
                CONVERSION_LOCK_KEY,
                "partition conversion",
                options.wait_for_other_run,
                &mut on_wait,
            )
        }
        Some(state) => Err(error.context(format!(
            "another partitions enable is converting metrics ({} rows copied, last seen \
             {:.0}s ago): let it finish, and follow it with `metricsctl partitions enable --status`",
            state.rows_copied, state.heartbeat_age_seconds
        ))),
        None => Err(error),
    }
}

fn convert_locked(
    session: &mut Session,
    options: &OnlineOptions,
    on_progress: &mut dyn FnMut(Progress),
    started: Instant,
    phase: &mut &'static str,
) -> error::Result<ConversionReport> {
    let mut report = ConversionReport {
        already_partitioned: false,
        resumed: false,
        months: Vec::new(),
        rows_copied: 0,
        rows_put_right_rounds: 0,
        lock_retries: 0,
        elapsed_seconds: 0.0,
    };
    // Read under the lock: another run may have just converted it.
    if session.read(partitions::layout)? == Layout::Partitioned {
        report.already_partitioned = true;
        return Ok(report);
    }
    let facts = session.shared_facts();
    // Set for the session (set_config's `false`) inside a pinned transaction: it outlives it.
    session.write(|tx| tx.rows(queries::CONVERSION_SESSION.sql(), &[]))?;
    if let Some(months) = build_or_resume(session, on_progress)? {
        report.months = months;
    } else {
        report.resumed = true;
    }
    *phase = "mirror";
    let mirrored: bool = session.read(|tx| {
        Ok::<bool, postgres::Error>(
            tx.row(queries::CONVERSION_MIRROR_EXISTS.sql(), &[])?
                .get("mirrored"),
        )
    })?;
    if !mirrored {
        on_progress(Progress::Phase("mirroring new writes"));
        let mirror = facts.ddl(&queries::CONVERSION_MIRROR, &[], &[]);
        report.lock_retries +=
            with_lock_retries(session, options, "metrics", |tx| tx.ddl(&mirror))?;
    }
    *phase = "backfill";
    report.rows_copied = backfill(session, options, on_progress)?;
    *phase = "indexing";
    set_phase(session, "indexing")?;
    report.lock_retries += build_indexes(session, options, on_progress)?;
    *phase = "comparing";
    on_progress(Progress::Phase("comparing"));
    set_phase(session, "comparing")?;
    report.rows_put_right_rounds = compare(session, on_progress)?;
    *phase = "swapping";
    on_progress(Progress::Phase("swapping"));
    set_phase(session, "swapping")?;
    let swap = facts.ddl(&queries::CONVERSION_SWAP, &[], &[]);
    report.lock_retries += with_lock_retries(session, options, "metrics", |tx| tx.ddl(&swap))?;
    session.refresh_facts()?;
    if report.months.is_empty() {
        let facts = session.shared_facts();
        report.months = session
            .read(|tx| partitions::list(tx, &facts, false))?
            .iter()
            .filter_map(partitions::Partition::month)
            .collect();
    }
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Builds the partitioned table (its months), or takes over the conversion a stopped run left
/// (`None`); refuses a metrics_partitioned that no recorded conversion made.
fn build_or_resume(
    session: &mut Session,
    on_progress: &mut dyn FnMut(Progress),
) -> error::Result<Option<Vec<Month>>> {
    let building = session.read(|tx| {
        Ok::<bool, postgres::Error>(
            tx.row(queries::RELATION_EXISTS.sql(), &[&CONVERSION_TABLE])?
                .get(0),
        )
    })?;
    match (building, session.read(read_state)?) {
        (false, _) => {
            on_progress(Progress::Phase("building the partitioned table"));
            Ok(Some(build(session)?))
        }
        (true, Some(_)) => {
            session.write(|tx| tx.ddl(queries::CONVERSION_CLAIM.sql()))?;
            Ok(None)
        }
        (true, None) => Err(Error::new(
            What::Refused,
            anyhow!(
                "a table metrics_partitioned exists, but no conversion is recorded: it is not \
                 metricsctl's to use. Drop or rename it, or run `metricsctl partitions enable \
                 --abandon` if it is left from an old run"
            ),
        )),
    }
}

fn set_phase(session: &mut Session, phase: &str) -> error::Result<()> {
    session.write(|tx| tx.run(queries::CONVERSION_PHASE.sql(), &[&phase]))?;
    Ok(())
}

/// What the online conversion makes: a partition for every month holding rows (as `--offline`
/// makes), and the current month with the ones ahead. Months between are left to
/// `partitions create`: one stray old row must not make years of empty partitions.
pub fn plan(session: &mut Session) -> error::Result<partitions::EnablePlan> {
    session.read(|tx| {
        let current = partitions::current_month(tx)?;
        Ok(partitions::plan_enable(tx)?.with_months_ahead(current))
    })
}

/// Step 1, one transaction: the bookkeeping row and the empty partitioned table.
fn build(session: &mut Session) -> error::Result<Vec<Month>> {
    let months: Vec<Month> = plan(session)?.months.iter().map(|m| m.month).collect();
    let facts = session.shared_facts();
    session.write(|tx| {
        tx.ddl(&facts.ddl(&queries::CONVERSION_STATE_TABLE, &[], &[]))?;
        tx.run(queries::CONVERSION_STATE_CLEAR.sql(), &[])?;
        tx.run(queries::CONVERSION_STATE_INSERT.sql(), &[])?;
        tx.ddl(&facts.ddl(&queries::CONVERSION_BEGIN, &[], &[]))
            .context("creating the partitioned table beside metrics")?;
        for month in &months {
            tx.ddl(&partition_sql(&facts, *month))
                .with_context(|| format!("creating partition {}", month.partition_name()))?;
        }
        tx.ddl(queries::CONVERSION_NEW_KEYS.sql())?;
        Ok(months)
    })
}

fn partition_sql(facts: &SchemaFacts, month: Month) -> String {
    facts.ddl(
        &queries::CONVERSION_PARTITION_CREATE,
        &[("partition", &month.partition_name())],
        &[
            ("from", &month.start_literal()),
            ("to", &month.end_literal()),
        ],
    )
}

/// Step 3: the rows from before the mirror, in committed batches by id.
fn backfill(
    session: &mut Session,
    options: &OnlineOptions,
    on_progress: &mut dyn FnMut(Progress),
) -> error::Result<i64> {
    let start = session.write(|tx| tx.row(queries::CONVERSION_BACKFILL_START.sql(), &[]))?;
    let up_to: i64 = start.get("backfill_up_to");
    let mut after: i64 = start.get("copied_up_to");
    let mut copied: i64 = start.get("rows_copied");
    let estimate: i64 = start.get("rows_estimate");
    while after < up_to {
        let upto = after.saturating_add(options.batch_size).min(up_to);
        let batch_started = Instant::now();
        let row = session
            .write(|tx| tx.row(queries::CONVERSION_BACKFILL_BATCH.sql(), &[&after, &upto]))?;
        thread::sleep(rest_after(batch_started.elapsed(), options.copy_share));
        copied = row.get("rows_copied");
        on_progress(Progress::Copied {
            rows: copied.max(0) as u64,
            estimate: estimate.max(copied).max(0) as u64,
        });
        after = upto;
    }
    Ok(copied)
}

/// The guide's three non-unique indexes: the name each has in the partitioned-index query files,
/// and the ending PostgreSQL gives a partition's copy when the index is made on the parent
/// (`metrics_2026_01_sensor_id_idx`), so the result is what `migrate --partitioned` builds.
const PARTITION_INDEXES: [(&str, &str); 3] = [
    ("sensor_id_index", "sensor_id_idx"),
    ("timestamp_index", "timestamp_idx"),
    ("sensor_timestamp_index", "sensor_id_timestamp_idx"),
];

/// Step 4: the guide's three indexes, after the backfill. Each partition's are built
/// concurrently and attached; an index a killed run left INVALID is dropped and built again.
fn build_indexes(
    session: &mut Session,
    options: &OnlineOptions,
    on_progress: &mut dyn FnMut(Progress),
) -> error::Result<u32> {
    let facts = session.shared_facts();
    let mut lock_retries = with_lock_retries(session, options, "metrics_partitioned", |tx| {
        tx.ddl(queries::CONVERSION_PARENT_INDEXES.sql())
    })?;
    let partitions = session.read(|tx| tx.rows(queries::CONVERSION_PARTITIONS.sql(), &[]))?;
    let of = partitions.len() as u64;
    for (done, row) in partitions.iter().enumerate() {
        on_progress(Progress::Indexing {
            done: done as u64,
            of,
        });
        let partition: String = row.get("name");
        for index in row.get::<_, Vec<String>>("invalid_indexes") {
            session.outside_transaction(&facts.ddl(
                &queries::CONVERSION_DROP_INVALID_INDEX,
                &[("index", &index)],
                &[],
            ))?;
        }
        let names: Vec<(&str, String)> = PARTITION_INDEXES
            .iter()
            .map(|(variable, ending)| (*variable, format!("{partition}_{ending}")))
            .collect();
        let mut identifiers: Vec<(&str, &str)> =
            names.iter().map(|(v, n)| (*v, n.as_str())).collect();
        identifiers.push(("partition", &partition));
        set_phase(session, "indexing")?;
        for statement in
            facts.ddl_statements(&queries::CONVERSION_PARTITION_INDEXES, &identifiers, &[])
        {
            session
                .outside_transaction(&statement)
                .with_context(|| format!("building the indexes of {partition}"))?;
        }
        let attach = facts.ddl(&queries::CONVERSION_ATTACH_INDEXES, &identifiers, &[]);
        lock_retries += with_lock_retries(session, options, &partition, |tx| tx.ddl(&attach))?;
    }
    let invalid: i64 = session
        .read(|tx| tx.row(queries::CONVERSION_INVALID_INDEXES.sql(), &[]))?
        .get("invalid");
    if invalid > 0 {
        return Err(Error::new(
            What::Database,
            anyhow!(
                "{invalid} index(es) of the partitioned table being built are not valid, so \
                 nothing was swapped; nothing is lost: run `metricsctl partitions enable` again \
                 to build them again and go on"
            ),
        ));
    }
    Ok(lock_retries)
}

/// How often a difference found by the compare is put right before the conversion gives up.
const RECONCILE_ROUNDS: u32 = 3;

/// The longest rest between two backfill batches: the conversion's heartbeat (written by each
/// batch) must stay well within [`STALE_AFTER`].
const LONGEST_REST: Duration = Duration::from_secs(5);

/// How long to rest after a batch that took `copying` so that copying takes `copy_share`
/// percent of the time.
fn rest_after(copying: Duration, copy_share: u32) -> Duration {
    let share = copy_share.clamp(1, 100);
    (copying * (100 - share) / share).min(LONGEST_REST)
}

/// Step 4: both tables hold the same rows, in one snapshot. A row deleted or changed while its
/// backfill batch was in flight is put right (and compared again); a difference that stays —
/// metrics holding two rows the partitioned keys refuse — stops the conversion before the swap.
fn compare(session: &mut Session, on_progress: &mut dyn FnMut(Progress)) -> error::Result<u32> {
    let mut rounds = 0;
    loop {
        let Some((plain, partitioned)) = difference(session)? else {
            return Ok(rounds);
        };
        if rounds == RECONCILE_ROUNDS {
            return Err(Error::new(
                What::Refused,
                anyhow!(
                    "the partitioned table holds {partitioned} rows but metrics {plain}, so \
                     nothing was swapped. metrics may hold two rows with the same id or \
                     (event_id, timestamp): check with `metricsctl check duplicates` and fix with \
                     `metricsctl repair`, then rerun `metricsctl partitions enable`"
                ),
            ));
        }
        on_progress(Progress::Phase(
            "putting right rows changed during the copy",
        ));
        rounds += 1;
        let up_to = session
            .read(read_state)?
            .and_then(|state| state.backfill_up_to)
            .unwrap_or(i64::MAX);
        session.write(|tx| {
            tx.run(queries::CONVERSION_RECONCILE_STALE.sql(), &[&up_to])?;
            tx.run(queries::CONVERSION_RECONCILE_MISSING.sql(), &[&up_to])
        })?;
    }
}

/// The row counts of metrics and the partitioned table when they differ, in one snapshot.
fn difference(session: &mut Session) -> error::Result<Option<(i64, i64)>> {
    let row = session.read(|tx| tx.row(queries::CONVERSION_COMPARE.sql(), &[]))?;
    let counts: (i64, i64) = (row.get("plain_rows"), row.get("partitioned_rows"));
    let same = |plain: &str, partitioned: &str| {
        row.get::<_, String>(plain) == row.get::<_, String>(partitioned)
    };
    let equal = counts.0 == counts.1
        && same("plain_id_sum", "partitioned_id_sum")
        && same("plain_row_hash", "partitioned_row_hash");
    Ok((!equal).then_some(counts))
}

/// Runs a step that needs a lock writers wait on: each attempt waits at most `lock_timeout`;
/// between attempts, a pause lets the writers through. Returns the attempts that timed out.
fn with_lock_retries(
    session: &mut Session,
    options: &OnlineOptions,
    table: &str,
    step: impl Fn(&mut Tx<'_>) -> Result<(), postgres::Error>,
) -> error::Result<u32> {
    for attempt in 1..=options.lock_attempts.max(1) {
        let mut tx = session.begin()?;
        db::set_lock_timeout(&mut tx, options.lock_timeout)?;
        match step(&mut tx) {
            Ok(()) => {
                tx.commit()?;
                return Ok(attempt - 1);
            }
            Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                drop(tx);
                if attempt == options.lock_attempts.max(1) {
                    let holders = session.read(|tx| db::table_lock_holders(tx, table))?;
                    let holders = db::describe_holders(&holders);
                    return Err(Error::new(
                        What::LockTimeout,
                        anyhow!(
                            "could not lock {table} within {} in {attempt} attempts ({holders}); \
                             the conversion stopped where it was, nothing is lost: run `metricsctl \
                             partitions enable` again to go on, or raise --lock-timeout",
                            humantime::format_duration(options.lock_timeout)
                        ),
                    ));
                }
                thread::sleep(
                    Duration::from_millis(500 * u64::from(attempt)).min(Duration::from_secs(5)),
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the last attempt returns")
}

/// Undoes an unfinished conversion: metrics stays as it was.
pub fn abandon(
    session: &mut Session,
    options: &OnlineOptions,
    on_wait: impl FnMut(&LockHolder),
) -> error::Result<bool> {
    refuse_untrusted(session.facts())?;
    partitions::refuse_on_a_standby(session.facts(), "partitions enable --abandon")?;
    db::pooling::ensure_own_server_session(session, "abandoning the online conversion")?;
    take_conversion_lock(session, options, on_wait)?;
    let facts = session.shared_facts();
    let outcome = (|| -> error::Result<bool> {
        if session.read(partitions::layout)? == Layout::Partitioned
            || facts.helper(CONVERSION_STATE) == Helper::Absent
        {
            return Ok(false);
        }
        let abandon = facts.ddl(&queries::CONVERSION_ABANDON, &[], &[]);
        with_lock_retries(session, options, "metrics", |tx| tx.ddl(&abandon))?;
        Ok(true)
    })();
    let _ = db::unlock_session(session, CONVERSION_LOCK_KEY);
    outcome
}

/// The steps and their SQL, for `--dry-run` (schema-qualified names written in; the other psql
/// variables are left as they are).
pub fn plan_statements(facts: &SchemaFacts, months: &[Month]) -> Vec<(String, String)> {
    let schema = db::queries::quote_identifier(facts.schema_name());
    let shown = |query: &queries::Query| query.psql_text.trim().replace(":\"schema\"", &schema);
    let mut build = vec![
        shown(&queries::CONVERSION_STATE_TABLE),
        shown(&queries::CONVERSION_STATE_INSERT),
        shown(&queries::CONVERSION_BEGIN),
    ];
    build.extend(months.iter().map(|m| partition_sql(facts, *m)));
    build.push(queries::CONVERSION_NEW_KEYS.sql().trim().to_string());
    vec![
        (
            "1. build (one transaction; no lock anyone waits on)".to_string(),
            build.join("\n"),
        ),
        (
            "2. mirror (SHARE ROW EXCLUSIVE on metrics for an instant, bounded by --lock-timeout)"
                .to_string(),
            shown(&queries::CONVERSION_MIRROR),
        ),
        (
            "3. backfill (committed batches of --batch-size ids; no lock anyone waits on)"
                .to_string(),
            format!(
                "{}\n{}",
                queries::CONVERSION_BACKFILL_START.sql().trim(),
                queries::CONVERSION_BACKFILL_BATCH.sql().trim()
            ),
        ),
        (
            "4. index (SHARE on the new table for an instant; per partition CREATE INDEX \
             CONCURRENTLY, then ACCESS EXCLUSIVE on its new indexes for an instant to attach \
             them; each bounded by --lock-timeout)"
                .to_string(),
            format!(
                "{}\n{}\n{}",
                queries::CONVERSION_PARENT_INDEXES.sql().trim(),
                shown(&queries::CONVERSION_PARTITION_INDEXES),
                queries::CONVERSION_ATTACH_INDEXES.sql().trim()
            ),
        ),
        (
            "5. compare (one REPEATABLE READ snapshot)".to_string(),
            queries::CONVERSION_COMPARE.sql().trim().to_string(),
        ),
        (
            "6. swap (ACCESS EXCLUSIVE on metrics for milliseconds, bounded by --lock-timeout)"
                .to_string(),
            shown(&queries::CONVERSION_SWAP),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backfill_rests_so_copying_takes_its_share_of_the_time() {
        let batch = Duration::from_millis(400);
        assert_eq!(rest_after(batch, 100), Duration::ZERO);
        assert_eq!(rest_after(batch, 50), batch);
        assert_eq!(rest_after(batch, 25), batch * 3);
        // A slow batch at a small share rests at most LONGEST_REST: the heartbeat stays fresh.
        assert_eq!(rest_after(Duration::from_secs(30), 1), LONGEST_REST);
    }
}
