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
//! waits for it, and ends it if it has stopped beating).

use std::thread;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use postgres::{Client, IsolationLevel};
use serde::Serialize;

use crate::db::{self, LockHolder, queries};
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

/// The conversion in progress, if there is one.
pub fn state(client: &mut Client) -> error::Result<Option<ConversionState>> {
    if !db::relation_exists(client, "metricsctl_conversion")? {
        return Ok(None);
    }
    let row = client.query_opt(queries::CONVERSION_STATE.sql(), &[])?;
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
    }))
}

/// Converts metrics to monthly partitions online (see the module's documentation), or finishes
/// a conversion a killed run left. `on_wait` hears who holds the conversion if another run does.
pub fn convert(
    client: &mut Client,
    options: &OnlineOptions,
    on_progress: &mut dyn FnMut(Progress),
    on_wait: impl FnMut(&LockHolder),
) -> error::Result<ConversionReport> {
    let started = Instant::now();
    take_conversion_lock(client, options, on_wait)?;
    let outcome = convert_locked(client, options, on_progress, started);
    // Best effort: closing the session releases it anyway.
    let _ = db::unlock_session(client, CONVERSION_LOCK_KEY);
    outcome
}

/// The conversion's advisory lock; a session that holds it but has stopped beating (a killed
/// run's, stuck) is ended.
fn take_conversion_lock(
    client: &mut Client,
    options: &OnlineOptions,
    mut on_wait: impl FnMut(&LockHolder),
) -> error::Result<()> {
    let first = db::lock_session(
        client,
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
    match state(client)? {
        Some(state)
            if state.running
                && !state.building_index
                && state.heartbeat_age_seconds > STALE_AFTER.as_secs_f64() =>
        {
            let pid = state.pid.unwrap_or_default();
            client.query_one("SELECT pg_terminate_backend($1)", &[&pid])?;
            db::lock_session(
                client,
                CONVERSION_LOCK_KEY,
                "partition conversion",
                options.wait_for_other_run,
                &mut on_wait,
            )
        }
        Some(state) => Err(error.context(format!(
            "another partitions enable is converting metrics ({} of ~{} rows copied, last seen \
             {:.0}s ago): let it finish, and follow it with `metricsctl partitions enable --status`",
            state.rows_copied, state.rows_estimate, state.heartbeat_age_seconds
        ))),
        None => Err(error),
    }
}

fn convert_locked(
    client: &mut Client,
    options: &OnlineOptions,
    on_progress: &mut dyn FnMut(Progress),
    started: Instant,
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
    if partitions::layout(client)? == Layout::Partitioned {
        report.already_partitioned = true;
        return Ok(report);
    }
    client.batch_execute(queries::CONVERSION_SESSION.sql())?;
    let building = db::relation_exists(client, "metrics_partitioned")?;
    match (building, state(client)?) {
        (false, _) => {
            on_progress(Progress::Phase("building the partitioned table"));
            report.months = build(client)?;
        }
        (true, Some(_)) => {
            report.resumed = true;
            client.execute(queries::CONVERSION_CLAIM.sql(), &[])?;
        }
        (true, None) => {
            return Err(Error::new(
                What::Refused,
                anyhow!(
                    "a table metrics_partitioned exists, but no conversion is recorded: it is not \
                     metricsctl's to use. Drop or rename it, or run `metricsctl partitions enable \
                     --abandon` if it is left from an old run"
                ),
            ));
        }
    }
    let mirrored: bool = client
        .query_one(queries::CONVERSION_MIRROR_EXISTS.sql(), &[])?
        .get("mirrored");
    if !mirrored {
        on_progress(Progress::Phase("mirroring new writes"));
        report.lock_retries += with_lock_retries(client, options, "metrics", |tx| {
            tx.batch_execute(queries::CONVERSION_MIRROR.sql())
        })?;
    }
    report.rows_copied = backfill(client, options, on_progress)?;
    client.execute(queries::CONVERSION_PHASE.sql(), &[&"indexing"])?;
    report.lock_retries += build_indexes(client, options, on_progress)?;
    on_progress(Progress::Phase("comparing"));
    client.execute(queries::CONVERSION_PHASE.sql(), &[&"comparing"])?;
    report.rows_put_right_rounds = compare(client, on_progress)?;
    on_progress(Progress::Phase("swapping"));
    client.execute(queries::CONVERSION_PHASE.sql(), &[&"swapping"])?;
    report.lock_retries += with_lock_retries(client, options, "metrics", |tx| {
        tx.batch_execute(queries::CONVERSION_SWAP.sql())
    })?;
    if report.months.is_empty() {
        report.months = partitions::list(client, false)?
            .iter()
            .filter_map(partitions::Partition::month)
            .collect();
    }
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// What the online conversion makes: a partition for every month holding rows (as `--offline`
/// makes), and the current month with the ones ahead. Months between are left to
/// `partitions create`: one stray old row must not make years of empty partitions.
pub fn plan(client: &mut Client) -> error::Result<partitions::EnablePlan> {
    let current = partitions::current_month(client)?;
    Ok(partitions::plan_enable(client)?.with_months_ahead(current))
}

/// Step 1, one transaction: the bookkeeping row and the empty partitioned table.
fn build(client: &mut Client) -> error::Result<Vec<Month>> {
    let months: Vec<Month> = plan(client)?.months.iter().map(|m| m.month).collect();
    let mut tx = client.transaction()?;
    tx.batch_execute(queries::CONVERSION_STATE_TABLE.sql())?;
    tx.batch_execute("DELETE FROM metricsctl_conversion")?;
    tx.execute(queries::CONVERSION_STATE_INSERT.sql(), &[])?;
    tx.batch_execute(queries::CONVERSION_BEGIN.sql())
        .context("creating the partitioned table beside metrics")?;
    for month in &months {
        tx.batch_execute(&partition_sql(*month))
            .with_context(|| format!("creating partition {}", month.partition_name()))?;
    }
    tx.batch_execute(queries::CONVERSION_NEW_KEYS.sql())?;
    tx.commit()?;
    Ok(months)
}

fn partition_sql(month: Month) -> String {
    queries::CONVERSION_PARTITION_CREATE.ddl(
        &[("partition", &month.partition_name())],
        &[
            ("from", &month.start_literal()),
            ("to", &month.end_literal()),
        ],
    )
}

/// Step 3: the rows from before the mirror, in committed batches by id.
fn backfill(
    client: &mut Client,
    options: &OnlineOptions,
    on_progress: &mut dyn FnMut(Progress),
) -> error::Result<i64> {
    let start = client.query_one(queries::CONVERSION_BACKFILL_START.sql(), &[])?;
    let up_to: i64 = start.get("backfill_up_to");
    let mut after: i64 = start.get("copied_up_to");
    let mut copied: i64 = start.get("rows_copied");
    let estimate: i64 = start.get("rows_estimate");
    let statement = client.prepare(queries::CONVERSION_BACKFILL_BATCH.sql())?;
    while after < up_to {
        let upto = after.saturating_add(options.batch_size).min(up_to);
        let batch_started = Instant::now();
        let row = client.query_one(&statement, &[&after, &upto])?;
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
    client: &mut Client,
    options: &OnlineOptions,
    on_progress: &mut dyn FnMut(Progress),
) -> error::Result<u32> {
    let mut lock_retries = with_lock_retries(client, options, "metrics_partitioned", |tx| {
        tx.batch_execute(queries::CONVERSION_PARENT_INDEXES.sql())
    })?;
    let partitions = client.query(queries::CONVERSION_PARTITIONS.sql(), &[])?;
    let of = partitions.len() as u64;
    for (done, row) in partitions.iter().enumerate() {
        on_progress(Progress::Indexing {
            done: done as u64,
            of,
        });
        let partition: String = row.get("name");
        for index in row.get::<_, Vec<String>>("invalid_indexes") {
            client.batch_execute(
                &queries::CONVERSION_DROP_INVALID_INDEX.ddl(&[("index", &index)], &[]),
            )?;
        }
        let names: Vec<(&str, String)> = PARTITION_INDEXES
            .iter()
            .map(|(variable, ending)| (*variable, format!("{partition}_{ending}")))
            .collect();
        let mut identifiers: Vec<(&str, &str)> =
            names.iter().map(|(v, n)| (*v, n.as_str())).collect();
        identifiers.push(("partition", &partition));
        client.execute(queries::CONVERSION_PHASE.sql(), &[&"indexing"])?;
        let build = queries::CONVERSION_PARTITION_INDEXES.ddl(&identifiers, &[]);
        for statement in queries::statements(&build) {
            client
                .batch_execute(&statement)
                .with_context(|| format!("building the indexes of {partition}"))?;
        }
        let attach = queries::CONVERSION_ATTACH_INDEXES.ddl(&identifiers, &[]);
        lock_retries +=
            with_lock_retries(client, options, &partition, |tx| tx.batch_execute(&attach))?;
    }
    let invalid: i64 = client
        .query_one(queries::CONVERSION_INVALID_INDEXES.sql(), &[])?
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
fn compare(client: &mut Client, on_progress: &mut dyn FnMut(Progress)) -> error::Result<u32> {
    let mut rounds = 0;
    loop {
        let Some((plain, partitioned)) = difference(client)? else {
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
        let up_to = state(client)?
            .and_then(|state| state.backfill_up_to)
            .unwrap_or(i64::MAX);
        let mut tx = client.transaction()?;
        tx.execute(queries::CONVERSION_RECONCILE_STALE.sql(), &[&up_to])?;
        tx.execute(queries::CONVERSION_RECONCILE_MISSING.sql(), &[&up_to])?;
        tx.commit()?;
    }
}

/// The row counts of metrics and the partitioned table when they differ, in one snapshot.
fn difference(client: &mut Client) -> error::Result<Option<(i64, i64)>> {
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let row = tx.query_one(queries::CONVERSION_COMPARE.sql(), &[])?;
    tx.commit()?;
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
    client: &mut Client,
    options: &OnlineOptions,
    table: &str,
    step: impl Fn(&mut postgres::Transaction<'_>) -> Result<(), postgres::Error>,
) -> error::Result<u32> {
    let milliseconds = options.lock_timeout.as_millis().max(1).to_string();
    for attempt in 1..=options.lock_attempts.max(1) {
        let mut tx = client.transaction()?;
        tx.query_one(queries::SET_LOCAL_LOCK_TIMEOUT.sql(), &[&milliseconds])?;
        match step(&mut tx) {
            Ok(()) => {
                tx.commit()?;
                return Ok(attempt - 1);
            }
            Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                drop(tx);
                if attempt == options.lock_attempts.max(1) {
                    let holders = db::describe_holders(&db::table_lock_holders(client, table)?);
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
pub fn abandon(client: &mut Client, options: &OnlineOptions) -> error::Result<bool> {
    take_conversion_lock(client, options, |_| {})?;
    let outcome = (|| -> error::Result<bool> {
        if partitions::layout(client)? == Layout::Partitioned
            || !db::relation_exists(client, "metricsctl_conversion")?
        {
            return Ok(false);
        }
        with_lock_retries(client, options, "metrics", |tx| {
            tx.batch_execute(queries::CONVERSION_ABANDON.sql())
        })?;
        Ok(true)
    })();
    let _ = db::unlock_session(client, CONVERSION_LOCK_KEY);
    outcome
}

/// The steps and their SQL, for `--dry-run`.
pub fn plan_statements(months: &[Month]) -> Vec<(String, String)> {
    let mut build = vec![
        queries::CONVERSION_STATE_TABLE.sql().trim().to_string(),
        queries::CONVERSION_STATE_INSERT.sql().trim().to_string(),
        queries::CONVERSION_BEGIN.sql().trim().to_string(),
    ];
    build.extend(months.iter().map(|m| partition_sql(*m)));
    build.push(queries::CONVERSION_NEW_KEYS.sql().trim().to_string());
    vec![
        (
            "1. build (one transaction; no lock anyone waits on)".to_string(),
            build.join("\n"),
        ),
        (
            "2. mirror (SHARE ROW EXCLUSIVE on metrics for an instant, bounded by --lock-timeout)"
                .to_string(),
            queries::CONVERSION_MIRROR.sql().trim().to_string(),
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
                queries::CONVERSION_PARTITION_INDEXES.sql().trim(),
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
            queries::CONVERSION_SWAP.sql().trim().to_string(),
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
