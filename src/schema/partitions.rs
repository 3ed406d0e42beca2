//! Monthly range partitions of `metrics`, named `metrics_YYYY_MM`, with bounds at UTC month
//! starts, and a DEFAULT partition that catches whatever no month holds.
//!
//! The traps pg_partman and TimescaleDB users meet, and how they are avoided here:
//! - rows waiting in DEFAULT make creating their month's partition fail: they are moved out and
//!   back in, in the same transaction as the creation;
//! - month bounds drift with the TimeZone setting: bounds are written with an explicit `+00`
//!   offset and read back in a UTC session;
//! - maintenance deadlocks with inserts: locks are taken in one order, parent first, bounded by
//!   `lock_timeout`;
//! - gaps: `create` fills every missing month between existing ones;
//! - uniqueness across partitions: only `(event_id, timestamp)` is unique in metrics, so
//!   `processed_events` is the global guard (and `check duplicates` looks across partitions).

use std::fmt;
use std::time::Duration;

use anyhow::anyhow;
use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

pub use crate::db::Layout;
use crate::db::facts::RETIRED_EVENTS;
use crate::db::{self, Helper, SchemaFacts, Session, Tx, queries};
use crate::error::{self, Error, ResultExt as _, What};

/// The layout of metrics as it is now, inside this transaction (another run may have converted
/// it since the session read its facts).
pub fn layout(tx: &mut Tx<'_>) -> error::Result<Layout> {
    let row = tx.row_opt(queries::METRICS_LAYOUT.sql(), &[])?;
    match row.map(|r| r.get::<_, String>("relkind")).as_deref() {
        Some(relkind) => Ok(Layout::of_relkind(relkind)),
        None => Err(Error::new(
            What::WrongSchema,
            anyhow!("the table metrics does not exist: run `metricsctl migrate` first"),
        )),
    }
}

/// Refuses (exit 3) unless metrics is partitioned.
pub fn ensure_partitioned(facts: &SchemaFacts) -> error::Result<()> {
    match facts.require_tables()? {
        Layout::Partitioned => Ok(()),
        Layout::Plain => Err(Error::new(
            What::WrongSchema,
            anyhow!(
                "metrics is a plain table, not partitioned: run `metricsctl partitions enable` to convert it \
             (or `metricsctl migrate --partitioned` on a new database)"
            ),
        )),
    }
}

/// A calendar month, by its first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(NaiveDate);

impl Month {
    pub fn new(year: i32, month: u32) -> Option<Month> {
        NaiveDate::from_ymd_opt(year, month, 1).map(Month)
    }

    /// `2026-01`.
    pub fn parse(text: &str) -> Result<Month, String> {
        let (year, month) = text
            .trim()
            .split_once('-')
            .ok_or_else(|| format!("{text:?} is not a month: write it as YYYY-MM, e.g. 2026-01"))?;
        match (year.parse::<i32>(), month.parse::<u32>()) {
            (Ok(year), Ok(month)) if (1..=9999).contains(&year) => Month::new(year, month)
                .ok_or_else(|| format!("{text:?} is not a month: write it as YYYY-MM")),
            _ => Err(format!(
                "{text:?} is not a month: write it as YYYY-MM, e.g. 2026-01"
            )),
        }
    }

    pub fn plus(self, months: u32) -> Month {
        Month(self.0 + Months::new(months))
    }

    pub fn minus(self, months: u32) -> Month {
        Month(self.0 - Months::new(months))
    }

    pub fn next(self) -> Month {
        self.plus(1)
    }

    /// `metrics_2026_01`.
    pub fn partition_name(self) -> String {
        format!("metrics_{:04}_{:02}", self.0.year(), self.0.month())
    }

    /// The lower bound as a timestamptz literal, offset included: `2026-01-01 00:00:00+00`.
    pub fn start_literal(self) -> String {
        format!("{} 00:00:00+00", self.0.format("%Y-%m-%d"))
    }

    pub fn end_literal(self) -> String {
        self.next().start_literal()
    }

    /// The lower bound as a value: midnight UTC on the first day.
    pub fn start(self) -> chrono::DateTime<chrono::Utc> {
        self.0.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    /// The `CREATE TABLE ... PARTITION OF metrics` statement for this month.
    pub fn create_partition_sql(self, facts: &SchemaFacts) -> String {
        facts.ddl(
            &queries::PARTITION_CREATE,
            &[("partition", &self.partition_name())],
            &[("from", &self.start_literal()), ("to", &self.end_literal())],
        )
    }

    /// The lower bound in RFC 3339: `2026-01-01T00:00:00Z`.
    pub fn start_rfc3339(self) -> String {
        format!("{}T00:00:00Z", self.0.format("%Y-%m-%d"))
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m"))
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The current month in UTC, by the server's clock.
pub fn current_month(tx: &mut Tx<'_>) -> Result<Month, postgres::Error> {
    let first_day: NaiveDate = tx
        .row(queries::CURRENT_UTC_MONTH.sql(), &[])?
        .get("first_day");
    Ok(Month(first_day))
}

/// What a partition covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Bound {
    /// Exactly one UTC month.
    Month {
        month: Month,
    },
    /// Some other range (made by hand or by another tool), bounds as PostgreSQL prints them in UTC.
    Range {
        from: String,
        to: String,
    },
    Default,
}

#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    pub name: String,
    pub bound: Bound,
    /// The planner's estimate; `None` before the partition was first analyzed.
    pub estimated_rows: Option<i64>,
    pub exact_rows: Option<i64>,
    pub bytes: i64,
    /// The current user may read it directly (a partition has privileges of its own).
    #[serde(skip)]
    pub may_select: bool,
}

impl Partition {
    pub fn month(&self) -> Option<Month> {
        match self.bound {
            Bound::Month { month } => Some(month),
            _ => None,
        }
    }
}

/// Reads `FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')` as printed in
/// a UTC session.
fn parse_bound(text: &str) -> Bound {
    if text.trim() == "DEFAULT" {
        return Bound::Default;
    }
    let literal = |after: &str| -> Option<String> {
        let start = text.find(after)? + after.len();
        let rest = text[start..].trim_start().strip_prefix("('")?;
        Some(rest[..rest.find('\'')?].to_string())
    };
    let (Some(from), Some(to)) = (literal("FROM"), literal("TO")) else {
        return Bound::Range {
            from: text.to_string(),
            to: String::new(),
        };
    };
    let parse = |s: &str| {
        NaiveDateTime::parse_from_str(s.trim_end_matches("+00"), "%Y-%m-%d %H:%M:%S").ok()
    };
    match (parse(&from), parse(&to)) {
        (Some(start), Some(end))
            if from.ends_with("+00")
                && to.ends_with("+00")
                && start.time() == chrono::NaiveTime::MIN
                && start.day() == 1
                && end.and_utc() == Month(start.date()).next().start() =>
        {
            Bound::Month {
                month: Month(start.date()),
            }
        }
        _ => Bound::Range { from, to },
    }
}

/// The partitions of metrics, in name order (months sort chronologically by name). Sets the
/// transaction's TimeZone to UTC (bounds are read back as text).
pub fn list(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    exact: bool,
) -> Result<Vec<Partition>, postgres::Error> {
    tx.row(queries::UTC_SESSION.sql(), &[])?;
    let rows = tx.rows(queries::METRICS_PARTITIONS.sql(), &[])?;
    let mut partitions = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.get("name");
        let estimated: i64 = row.get("estimated_rows");
        let exact_rows = if exact {
            let sql =
                facts.with_identifiers(&queries::PARTITION_COUNT_ROWS, &[("partition", &name)]);
            Some(tx.row(&sql, &[])?.get::<_, i64>("rows"))
        } else {
            None
        };
        partitions.push(Partition {
            bound: parse_bound(&row.get::<_, String>("bound")),
            estimated_rows: (estimated >= 0).then_some(estimated),
            exact_rows,
            bytes: row.get("bytes"),
            may_select: row.get("may_select"),
            name,
        });
    }
    Ok(partitions)
}

/// The stretches of time metrics can store an event in, when that is not all of time: on the
/// partitioned layout without a DEFAULT partition (the guide's own SQL makes none), an event
/// outside every partition is refused by PostgreSQL and would fail its whole batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    ranges: Vec<(RangeEnd, RangeEnd)>,
}

/// One end of a partition's `[from, to)`; `None` is MINVALUE / MAXVALUE.
type RangeEnd = Option<DateTime<Utc>>;

impl Coverage {
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        self.ranges
            .iter()
            .any(|(from, to)| from.is_none_or(|from| from <= at) && to.is_none_or(|to| at < to))
    }
}

/// `None` when every timestamp has a partition to go to (plain layout, or a DEFAULT partition).
pub fn coverage(session: &mut Session) -> Result<Option<Coverage>, postgres::Error> {
    if session.facts().layout() != Some(Layout::Partitioned) {
        return Ok(None);
    }
    let facts = session.shared_facts();
    // A dry run's writer holds its transaction already.
    let partitions = session.read_in_held(|tx| list(tx, &facts, false))?;
    if partitions.iter().any(|p| p.bound == Bound::Default) {
        return Ok(None);
    }
    let ranges = partitions
        .iter()
        .map(|p| match &p.bound {
            Bound::Month { month } => (Some(month.start()), Some(month.next().start())),
            Bound::Range { from, to } => (parse_bound_value(from), parse_bound_value(to)),
            Bound::Default => (None, None),
        })
        .collect();
    Ok(Some(Coverage { ranges }))
}

/// A range bound as printed in a UTC session (`2026-01-01 05:30:00+00`); MINVALUE/MAXVALUE as None.
fn parse_bound_value(text: &str) -> RangeEnd {
    NaiveDateTime::parse_from_str(text.trim_end_matches("+00"), "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|at| at.and_utc())
}

/// The month an event falls in, for messages and partition names.
pub fn month_of(at: DateTime<Utc>) -> Month {
    Month(at.date_naive().with_day(1).expect("day 1 exists"))
}

/// Holds the maintenance transaction's locks in the one order all of it uses: the parent first.
fn lock_parent(tx: &mut Tx<'_>, lock_timeout: Duration) -> error::Result<()> {
    db::set_lock_timeout(tx, lock_timeout)?;
    tx.ddl(queries::LOCK_METRICS.sql()).map_err(|e| {
        if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            Error::new(
                What::LockTimeout,
                anyhow!(
                    "could not lock metrics within {}",
                    humantime::format_duration(lock_timeout)
                ),
            )
        } else {
            Error::from(e)
        }
    })
}

/// Runs maintenance that locks metrics; when the lock is not granted in time, says who holds it
/// (asked once the failed transaction is gone).
fn naming_lock_holders<T>(
    session: &mut Session,
    maintenance: impl FnOnce(&mut Session) -> error::Result<T>,
) -> error::Result<T> {
    match maintenance(session) {
        Err(error) if error.what() == What::LockTimeout => {
            let holders = session.read(|tx| db::table_lock_holders(tx, "metrics"))?;
            let holders = db::describe_holders(&holders);
            Err(Error::new(
                What::LockTimeout,
                anyhow!(
                    "{error} ({holders}); nothing was changed. Wait for that session or end it \
                     with SELECT pg_terminate_backend(pid), or retry with a longer --lock-timeout"
                ),
            ))
        }
        other => other,
    }
}

/// What `partitions create` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct CreateReport {
    pub months: Vec<MonthOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonthOutcome {
    pub month: Month,
    pub partition: String,
    /// `present`, `created`, or `created` to fill a gap.
    pub action: &'static str,
    /// Rows moved in from the DEFAULT partition.
    pub moved_from_default: u64,
}

/// What `partitions create` is asked for.
#[derive(Debug, Clone, Copy)]
pub struct CreateOptions {
    pub from: Month,
    pub months_ahead: u32,
    pub lock_timeout: Duration,
    /// Also every month missing between the partitions (the default: no month is left to
    /// DEFAULT). Without it, exactly the months asked for.
    pub fill_gaps: bool,
    /// Say what would be created; change nothing.
    pub dry_run: bool,
}

/// Makes sure a partition exists for every month from `from` through `from + months_ahead` (and,
/// filling gaps, for every month missing between existing monthly partitions). One transaction.
pub fn create(session: &mut Session, options: CreateOptions) -> error::Result<CreateReport> {
    ensure_partitioned(session.facts())?;
    // A dry run only reads.
    if !options.dry_run {
        refuse_on_a_standby(session.facts(), "partitions create")?;
    }
    naming_lock_holders(session, |session| create_locked(session, options))
}

fn create_locked(session: &mut Session, options: CreateOptions) -> error::Result<CreateReport> {
    let facts = session.shared_facts();
    let mut tx = session.begin()?;
    let report = create_in(&mut tx, &facts, options)?;
    if options.dry_run {
        tx.rollback()?;
    } else {
        tx.commit()?;
    }
    Ok(report)
}

fn create_in(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    options: CreateOptions,
) -> error::Result<CreateReport> {
    tx.row(queries::UTC_SESSION.sql(), &[])?;
    if !options.dry_run {
        lock_parent(tx, options.lock_timeout)?;
    }
    // Read what exists only once the lock is held: a concurrent run may just have created it.
    let present = attached_partitions(tx)?;
    let wanted: Vec<Month> = (0..=options.months_ahead)
        .map(|i| options.from.plus(i))
        .collect();
    // Gaps count between everything that will exist, so no month is ever left to DEFAULT.
    let all_months: Vec<Month> = present.months.iter().chain(&wanted).copied().collect();
    let gaps = if options.fill_gaps {
        gap_months(&all_months)
    } else {
        Vec::new()
    };
    let mut months: Vec<Month> = wanted.iter().chain(&gaps).copied().collect();
    months.sort();
    months.dedup();

    let mut report = CreateReport { months: Vec::new() };
    let mut set_aside_ready = false;
    for month in months {
        let partition = month.partition_name();
        let (action, moved_from_default) = if present.months.contains(&month) {
            ("present", 0)
        } else {
            present.refuse_unmanaged()?;
            refuse_a_table_of_the_name(tx, facts, month)?;
            let moved = if options.dry_run {
                present.rows_in_default(tx, month)?
            } else {
                create_month(
                    tx,
                    facts,
                    month,
                    present.default.as_deref(),
                    &mut set_aside_ready,
                )?
            };
            let created = if options.dry_run {
                "would be created"
            } else {
                "created"
            };
            let action = match (gaps.contains(&month) && !wanted.contains(&month), created) {
                (true, "created") => "created (gap)",
                (true, _) => "would be created (gap)",
                (false, created) => created,
            };
            (action, moved)
        };
        report.months.push(MonthOutcome {
            month,
            partition,
            action,
            moved_from_default,
        });
    }
    Ok(report)
}

/// A month whose partition name a table of its own holds (detached, or made by hand) cannot get a
/// new partition: refused, with what to do about it.
fn refuse_a_table_of_the_name(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    month: Month,
) -> error::Result<()> {
    let partition = month.partition_name();
    let Some((owner, _)) = relation_owner(tx, &partition)? else {
        return Ok(());
    };
    let advice = if owner == facts.tables_owner() {
        format!("re-attach it with `metricsctl partitions attach {month}`, or rename or drop it")
    } else {
        format!(
            "it belongs to {owner}, not to {} (the owner of metrics): find out who made it and \
             drop it; metricsctl will not attach another role's table",
            facts.tables_owner()
        )
    };
    Err(refused(format!(
        "{partition} exists as a table of its own (detached by `partitions drop --detach`, or \
         made by hand), so its month cannot get a new partition: {advice}; nothing was changed"
    )))
}

/// The attached partitions of metrics, by kind.
struct Present {
    months: Vec<Month>,
    default: Option<String>,
    /// Partitions that are not whole UTC months (made by hand or another tool).
    other_ranges: Vec<String>,
}

impl Present {
    fn refuse_unmanaged(&self) -> error::Result<()> {
        if self.other_ranges.is_empty() {
            return Ok(());
        }
        Err(refused(format!(
            "metrics has partitions that are not whole UTC months ({}); metricsctl manages only \
             monthly partitions, so it changes nothing",
            self.other_ranges.join(", ")
        )))
    }

    fn rows_in_default(&self, tx: &mut Tx<'_>, month: Month) -> error::Result<u64> {
        let Some(default) = &self.default else {
            return Ok(0);
        };
        let count = queries::DEFAULT_ROWS_COUNT.with_identifiers(&[("default_partition", default)]);
        let rows: i64 = tx
            .row(&count, &[&month.start(), &month.next().start()])?
            .get("rows");
        Ok(rows as u64)
    }
}

fn attached_partitions(tx: &mut Tx<'_>) -> error::Result<Present> {
    let mut present = Present {
        months: Vec::new(),
        default: None,
        other_ranges: Vec::new(),
    };
    for row in tx.rows(queries::METRICS_PARTITIONS.sql(), &[])? {
        let name: String = row.get("name");
        match parse_bound(&row.get::<_, String>("bound")) {
            Bound::Month { month } => present.months.push(month),
            Bound::Default => present.default = Some(name),
            Bound::Range { from, to } => {
                present.other_ranges.push(format!("{name} [{from}, {to})"))
            }
        }
    }
    Ok(present)
}

/// Creates a month's partition, moving the rows DEFAULT holds for it out and back in around the
/// creation. Returns the rows moved.
fn create_month(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    month: Month,
    default_partition: Option<&str>,
    set_aside_ready: &mut bool,
) -> error::Result<u64> {
    let mut moved = 0;
    if let Some(default_partition) = default_partition {
        if !*set_aside_ready {
            tx.ddl(queries::DEFAULT_ROWS_SET_ASIDE.sql())?;
            *set_aside_ready = true;
        }
        let move_out = queries::DEFAULT_ROWS_MOVE_OUT
            .with_identifiers(&[("default_partition", default_partition)]);
        moved = tx.run(&move_out, &[&month.start(), &month.next().start()])?;
    }
    tx.ddl(&month.create_partition_sql(facts))
        .with_context(|| format!("creating partition {}", month.partition_name()))?;
    if moved > 0 {
        tx.run(queries::DEFAULT_ROWS_MOVE_BACK.sql(), &[])?;
    }
    Ok(moved)
}

/// What `partitions attach` did.
#[derive(Debug, Clone, Serialize)]
pub struct AttachReport {
    pub month: Month,
    pub partition: String,
    pub moved_from_default: u64,
    /// Events noted as retired when the month was detached, now stored again.
    pub events_unretired: u64,
}

/// Re-attaches a month's table of its own (detached by `partitions drop --detach`) as its
/// partition. One transaction, under the lock on metrics.
pub fn attach(
    session: &mut Session,
    month: Month,
    lock_timeout: Duration,
) -> error::Result<AttachReport> {
    ensure_partitioned(session.facts())?;
    refuse_on_a_standby(session.facts(), "partitions attach")?;
    let facts = session.shared_facts();
    naming_lock_holders(session, |session| {
        let mut tx = session.begin()?;
        tx.row(queries::UTC_SESSION.sql(), &[])?;
        lock_parent(&mut tx, lock_timeout)?;
        let present = attached_partitions(&mut tx)?;
        let partition = month.partition_name();
        if present.months.contains(&month) {
            return Err(refused(format!(
                "{month} already has its partition {partition}; nothing to attach"
            )));
        }
        match relation_owner(&mut tx, &partition)? {
            None => {
                return Err(refused(format!(
                    "there is no table {partition} to attach: `partitions create --from {month} \
                     --months 0 --no-fill` makes an empty partition for {month}"
                )));
            }
            // Its owner would own a month of metrics: read it, change it, and run triggers as
            // every writer.
            Some((owner, kind)) if owner != facts.tables_owner() || kind != "r" => {
                return Err(refused(format!(
                    "{partition} is a {} owned by {owner}, not a table of {} (the owner of \
                     metrics): metricsctl will not make another role's table a partition of \
                     metrics; nothing was changed",
                    if kind == "r" { "table" } else { "relation" },
                    facts.tables_owner()
                )));
            }
            Some(_) => {}
        }
        let mut moved = 0;
        if let Some(default) = &present.default {
            tx.ddl(queries::DEFAULT_ROWS_SET_ASIDE.sql())?;
            let move_out =
                queries::DEFAULT_ROWS_MOVE_OUT.with_identifiers(&[("default_partition", default)]);
            moved = tx.run(&move_out, &[&month.start(), &month.next().start()])?;
        }
        let attach = facts.ddl(
            &queries::PARTITION_ATTACH,
            &[("partition", &partition)],
            &[
                ("from", &month.start_literal()),
                ("to", &month.end_literal()),
            ],
        );
        tx.ddl(&attach)
            .with_context(|| format!("attaching {partition} (its rows must all be in {month})"))?;
        if moved > 0 {
            tx.run(queries::DEFAULT_ROWS_MOVE_BACK.sql(), &[])?;
        }
        let unretired = if facts.helper(RETIRED_EVENTS) == Helper::Trusted {
            tx.run(queries::RETIRED_EVENTS_UNRETIRE.sql(), &[&month.0])?
        } else {
            0
        };
        tx.commit()?;
        Ok(AttachReport {
            month,
            partition,
            moved_from_default: moved,
            events_unretired: unretired,
        })
    })
}

/// Months missing between the first and the last existing monthly partition.
pub fn gap_months(existing: &[Month]) -> Vec<Month> {
    let (Some(first), Some(last)) = (existing.iter().min(), existing.iter().max()) else {
        return Vec::new();
    };
    let mut gaps = Vec::new();
    let mut month = *first;
    while month < *last {
        if !existing.contains(&month) {
            gaps.push(month);
        }
        month = month.next();
    }
    gaps
}

/// What `partitions enable` will do or did.
#[derive(Debug, Clone, Serialize)]
pub struct EnablePlan {
    pub already_partitioned: bool,
    pub rows: i64,
    /// The months that hold rows, each becoming a partition, with its row count.
    pub months: Vec<MonthRows>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonthRows {
    pub month: Month,
    pub partition: String,
    pub rows: i64,
}

pub fn plan_enable(tx: &mut Tx<'_>) -> error::Result<EnablePlan> {
    if layout(tx)? == Layout::Partitioned {
        return Ok(EnablePlan {
            already_partitioned: true,
            rows: 0,
            months: Vec::new(),
        });
    }
    let months: Vec<MonthRows> = tx
        .rows(queries::MONTHS_HOLDING_METRICS.sql(), &[])?
        .iter()
        .map(|row| {
            let month = Month(row.get("first_day"));
            MonthRows {
                month,
                partition: month.partition_name(),
                rows: row.get("rows"),
            }
        })
        .collect();
    Ok(EnablePlan {
        already_partitioned: false,
        rows: months.iter().map(|m| m.rows).sum(),
        months,
    })
}

impl EnablePlan {
    /// The plan with `current` and the [`DEFAULT_MONTHS_AHEAD`] months after it added (no rows
    /// yet): the online conversion makes them so writers' new rows have a home at the swap.
    pub fn with_months_ahead(mut self, current: Month) -> EnablePlan {
        if self.already_partitioned {
            return self;
        }
        for month in (0..=DEFAULT_MONTHS_AHEAD).map(|i| current.plus(i)) {
            if !self.months.iter().any(|m| m.month == month) {
                self.months.push(MonthRows {
                    month,
                    partition: month.partition_name(),
                    rows: 0,
                });
            }
        }
        self.months.sort_by_key(|m| m.month);
        self
    }
}

/// The SQL `enable` runs, in order, for `--dry-run`.
pub fn enable_statements(facts: &SchemaFacts, plan: &EnablePlan) -> Vec<String> {
    let mut statements = vec![
        "BEGIN;".to_string(),
        queries::LOCK_METRICS.sql().to_string(),
        queries::SET_ASIDE_PLAIN_METRICS.sql().to_string(),
        facts.ddl(&queries::PARTITIONED_METRICS, &[], &[]),
    ];
    for month in &plan.months {
        statements.push(month.month.create_partition_sql(facts));
        statements.push(queries::COPY_MONTH_INTO_PARTITIONED.ddl(
            &[],
            &[
                ("from", &month.month.start_literal()),
                ("to", &month.month.end_literal()),
            ],
        ));
    }
    statements.push(queries::PARTITIONED_METRICS_KEYS.sql().to_string());
    statements.push(queries::DROP_PLAIN_METRICS.sql().to_string());
    statements.push("COMMIT;".to_string());
    statements
}

/// Converts a plain metrics to the partitioned layout in one transaction: every row moves with
/// its id, the id sequence is kept, a partition is made for every month holding rows.
/// `on_progress(rows_copied)` is called after each month.
pub fn enable(
    session: &mut Session,
    plan: &EnablePlan,
    lock_timeout: Duration,
    on_progress: impl FnMut(u64),
) -> error::Result<()> {
    if plan.already_partitioned {
        return Ok(());
    }
    refuse_on_a_standby(session.facts(), "partitions enable")?;
    let facts = session.shared_facts();
    let mut tx = session.begin()?;
    if enable_in(&mut tx, &facts, plan, lock_timeout, on_progress)? {
        tx.commit()?;
    }
    Ok(())
}

/// The conversion inside `tx`; false when there was nothing to do (another run converted it).
fn enable_in(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    plan: &EnablePlan,
    lock_timeout: Duration,
    mut on_progress: impl FnMut(u64),
) -> error::Result<bool> {
    lock_parent(tx, lock_timeout)?;
    // Another run (a second replica's `migrate --partitioned`) may have converted it meanwhile.
    if layout(tx)? == Layout::Partitioned {
        return Ok(false);
    }
    // The plan was made before the lock: make sure no month appeared since.
    let months_now = tx.rows(queries::MONTHS_HOLDING_METRICS.sql(), &[])?.len();
    if months_now != plan.months.len() {
        return Err(refused(
            "metrics gained rows in a new month while the conversion was planned; run it again",
        ));
    }
    tx.ddl(queries::SET_ASIDE_PLAIN_METRICS.sql())
        .context("setting the plain metrics table aside")?;
    tx.ddl(&facts.ddl(&queries::PARTITIONED_METRICS, &[], &[]))
        .context("creating the partitioned metrics table")?;
    let mut copied = 0;
    for month in &plan.months {
        tx.ddl(&month.month.create_partition_sql(facts))
            .with_context(|| format!("creating partition {}", month.partition))?;
        copied += tx.run(
            queries::COPY_MONTH_INTO_PARTITIONED.sql(),
            &[&month.month.start(), &month.month.next().start()],
        )?;
        on_progress(copied);
    }
    if copied as i64 != plan.rows {
        // Rows must not be left behind: the old table is about to be dropped.
        return Err(refused(format!(
            "copied {copied} rows but metrics holds {}; nothing was changed",
            plan.rows
        )));
    }
    tx.ddl(queries::PARTITIONED_METRICS_KEYS.sql())
        .context("building the partitioned table's keys and indexes")?;
    tx.ddl(queries::DROP_PLAIN_METRICS.sql())
        .context("dropping the plain table (a view or other object may depend on it)")?;
    Ok(true)
}

/// Changing the schema needs the primary: a standby (in recovery) refuses it before anything.
pub fn refuse_on_a_standby(facts: &SchemaFacts, what: &str) -> error::Result<()> {
    refuse_on_a_standby_as(facts, &format!("{what} writes"))
}

/// metricsctl_retired_events, where retention notes the events it retires. On Citus the checks
/// join it with the distributed tables: a reference table (a copy on every worker) joins with
/// any shard.
fn make_retired_events_table(tx: &mut Tx<'_>, facts: &SchemaFacts) -> error::Result<()> {
    tx.ddl(&facts.ddl(&queries::RETIRED_EVENTS_TABLE, &[], &[]))?;
    if facts.is_distributed() {
        tx.row(
            queries::RETIRED_EVENTS_REFERENCE.sql(),
            &[&facts.qualified(crate::db::facts::RETIRED_EVENTS)],
        )?;
    }
    Ok(())
}

/// `partitions enable` converts a single server's plain metrics; on Citus the conversion's
/// triggers and table swap cannot run. Refused before anything changes, with the order that
/// works: partitions first, then `metricsctl distribute`.
pub fn refuse_distributed_conversion(facts: &SchemaFacts) -> error::Result<()> {
    let metrics_distributed = facts.is_distributed();
    let plain = facts.layout() == Some(crate::db::Layout::Plain);
    if metrics_distributed && plain {
        return Err(refused(
            "metrics is distributed by Citus: partitions enable converts a single server's \
             plain table (its triggers and table swap cannot run on distributed tables). \
             Convert before distributing: on a copy of the data, partitions enable, then \
             metricsctl distribute; or build a new database with migrate --distributed \
             --partitioned and replay into it. Nothing was changed",
        ));
    }
    Ok(())
}

/// The same, saying what writes in `doing` ("replay --dry-run counts in a temporary table").
pub fn refuse_on_a_standby_as(facts: &SchemaFacts, doing: &str) -> error::Result<()> {
    if facts.in_recovery {
        return Err(Error::new(
            What::Refused,
            anyhow!(
                "this server is a standby (in recovery): {doing}, and only the primary accepts \
                 writes. Nothing was changed; run it against the primary"
            ),
        ));
    }
    Ok(())
}

/// The operation stops without changing anything.
fn refused(message: impl Into<String>) -> Error {
    Error::new(What::Refused, anyhow!(message.into()))
}

/// What retention found and did.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionReport {
    pub older_than_months: u32,
    /// Partitions ending on or before this month's start are retired.
    pub cutoff: Month,
    pub action: &'static str,
    pub dry_run: bool,
    pub partitions: Vec<RetiredPartition>,
    /// With `--forget-guard-rows`: guard rows of events retired earlier, from months before the
    /// cutoff, deleted too.
    pub earlier_guard_rows_deleted: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetiredPartition {
    pub partition: String,
    pub month: Month,
    pub estimated_rows: Option<i64>,
    /// Guard rows kept, their events noted as retired (the default).
    pub events_retired: Option<u64>,
    /// Guard rows deleted (`--forget-guard-rows`).
    pub guard_rows_deleted: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOptions {
    pub older_than_months: u32,
    /// Keep the retired partitions as standalone tables instead of dropping them.
    pub detach: bool,
    /// Delete the retired events' guard rows (and those of events retired earlier from months
    /// before the cutoff), so that a redelivery would store them again.
    pub forget_guard_rows: bool,
    pub dry_run: bool,
}

/// Retires monthly partitions that end before the start of (current month - N months); never
/// DEFAULT, never the current month. One transaction.
///
/// By default an event stays retired: its guard row stays (so neither the consumer nor a replay
/// stores it again) and it is noted in metricsctl_retired_events (so `check duplicates` does not
/// call it lost). `forget_guard_rows` deletes the guard rows instead.
pub fn retire(
    session: &mut Session,
    options: RetentionOptions,
    lock_timeout: Duration,
) -> error::Result<RetentionReport> {
    if options.older_than_months == 0 {
        return Err(refused(
            "--older-than must be at least 1: the current month is never retired",
        ));
    }
    ensure_partitioned(session.facts())?;
    if !options.dry_run {
        refuse_on_a_standby(session.facts(), "partitions drop")?;
    }
    if let Some(message) = session.facts().untrusted_helper_message(RETIRED_EVENTS) {
        return Err(refused(format!(
            "retention notes retired events in metricsctl_retired_events, and {message}; \
             nothing was changed"
        )));
    }
    naming_lock_holders(session, |session| {
        retire_locked(session, options, lock_timeout)
    })
}

fn retire_locked(
    session: &mut Session,
    options: RetentionOptions,
    lock_timeout: Duration,
) -> error::Result<RetentionReport> {
    let facts = session.shared_facts();
    let mut tx = session.begin()?;
    tx.row(queries::UTC_SESSION.sql(), &[])?;
    if !options.dry_run {
        lock_parent(&mut tx, lock_timeout)?;
    }
    let current = current_month(&mut tx)?;
    let cutoff = current.minus(options.older_than_months);
    let rows = tx.rows(queries::METRICS_PARTITIONS.sql(), &[])?;
    let mut report = RetentionReport {
        older_than_months: options.older_than_months,
        cutoff,
        action: if options.detach {
            "detached"
        } else {
            "dropped"
        },
        dry_run: options.dry_run,
        partitions: Vec::new(),
        earlier_guard_rows_deleted: None,
    };
    if !options.dry_run && !options.forget_guard_rows {
        make_retired_events_table(&mut tx, &facts)?;
    }
    for row in rows {
        let name: String = row.get("name");
        let Bound::Month { month } = parse_bound(&row.get::<_, String>("bound")) else {
            continue; // never DEFAULT, never a range metricsctl did not make
        };
        if month.next() > cutoff || month >= current {
            continue;
        }
        let estimated: i64 = row.get("estimated_rows");
        let mut retired = RetiredPartition {
            partition: name.clone(),
            month,
            estimated_rows: (estimated >= 0).then_some(estimated),
            events_retired: None,
            guard_rows_deleted: None,
        };
        if !options.dry_run {
            let partition = [("partition", name.as_str())];
            if options.forget_guard_rows {
                let forget =
                    facts.with_identifiers(&queries::PARTITION_FORGET_GUARD_ROWS, &partition);
                retired.guard_rows_deleted = Some(tx.run(&forget, &[])?);
            } else {
                let note = facts.with_identifiers(&queries::PARTITION_RETIRE_EVENTS, &partition);
                retired.events_retired = Some(tx.run(&note, &[&month.0])?);
            }
            let statement = if options.detach {
                &queries::PARTITION_DETACH
            } else {
                &queries::PARTITION_DROP
            };
            tx.ddl(&facts.ddl(statement, &partition, &[]))
                .with_context(|| format!("retiring partition {name}"))?;
        }
        report.partitions.push(retired);
    }
    if !options.dry_run
        && options.forget_guard_rows
        && facts.helper(RETIRED_EVENTS) == Helper::Trusted
    {
        report.earlier_guard_rows_deleted =
            Some(tx.run(queries::RETIRED_EVENTS_FORGET.sql(), &[&cutoff.0])?);
    }
    if options.dry_run {
        tx.rollback()?;
    } else {
        tx.commit()?;
    }
    Ok(report)
}

/// The owner and relkind of a relation, if it exists.
fn relation_owner(
    tx: &mut Tx<'_>,
    name: &str,
) -> Result<Option<(String, String)>, postgres::Error> {
    Ok(tx
        .row_opt(queries::RELATION_OWNER.sql(), &[&name])?
        .map(|row| (row.get("owner"), row.get("kind"))))
}

fn relation_exists(tx: &mut Tx<'_>, name: &str) -> Result<bool, postgres::Error> {
    Ok(tx.row(queries::RELATION_EXISTS.sql(), &[&name])?.get(0))
}

/// Ensures the partitioned layout on a freshly migrated database (`migrate --partitioned`):
/// converts an empty plain metrics, refuses one that holds rows (that is `partitions enable`'s
/// job, with its long lock), and makes the current month and the next two. Inside the
/// migration's transaction, so it all happens or none of it.
pub fn ensure_partitioned_layout(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    lock_timeout: Duration,
) -> error::Result<CreateReport> {
    if layout(tx)? == Layout::Plain {
        let plan = plan_enable(tx)?;
        if plan.rows > 0 {
            return Err(refused(format!(
                "metrics already holds {} rows in the plain layout: convert it with \
                 `metricsctl partitions enable` (it locks the table while it copies them)",
                plan.rows
            )));
        }
        enable_in(tx, facts, &plan, lock_timeout, |_| {})?;
    }
    let current = current_month(tx)?;
    create_in(
        tx,
        facts,
        CreateOptions {
            from: current,
            months_ahead: DEFAULT_MONTHS_AHEAD,
            lock_timeout,
            fill_gaps: true,
            dry_run: false,
        },
    )
}

/// The SQL `migrate --partitioned` would run once the migrations are applied, for
/// `--dry-run`: the conversion of the (empty) plain table, then the partitions for the current
/// month and the next two that do not exist yet. Refuses, as the real run does, a plain table
/// that holds rows.
pub fn partitioned_layout_sql(session: &mut Session) -> error::Result<Vec<String>> {
    let facts = session.shared_facts();
    session.read(|tx| {
        let current = current_month(tx)?;
        let mut statements = Vec::new();
        let new_table = EnablePlan {
            already_partitioned: false,
            rows: 0,
            months: Vec::new(),
        };
        let existing: Vec<Month> = if !relation_exists(tx, "metrics")? {
            statements.extend(enable_statements(&facts, &new_table));
            Vec::new()
        } else {
            match layout(tx)? {
                Layout::Plain => {
                    let plan = plan_enable(tx)?;
                    if plan.rows > 0 {
                        return Err(refused(format!(
                            "migrate --partitioned would stop here: metrics already holds {} rows \
                             in the plain layout; convert it with `metricsctl partitions enable \
                             --dry-run`",
                            plan.rows
                        )));
                    }
                    statements.extend(enable_statements(&facts, &plan));
                    Vec::new()
                }
                Layout::Partitioned => list(tx, &facts, false)?
                    .iter()
                    .filter_map(Partition::month)
                    .collect(),
            }
        };
        let wanted: Vec<Month> = (0..=DEFAULT_MONTHS_AHEAD)
            .map(|i| current.plus(i))
            .collect();
        let all: Vec<Month> = existing.iter().chain(&wanted).copied().collect();
        let mut missing: Vec<Month> = wanted
            .iter()
            .chain(&gap_months(&all))
            .copied()
            .filter(|m| !existing.contains(m))
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            statements.push("BEGIN;".to_string());
            statements.push(queries::LOCK_METRICS.sql().to_string());
            statements.extend(missing.iter().map(|m| m.create_partition_sql(&facts)));
            statements.push("COMMIT;".to_string());
        }
        Ok(statements)
    })
}

/// Rows in a partition, counting no further than `cap`.
pub fn rows_up_to(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    partition: &str,
    cap: i64,
) -> Result<i64, postgres::Error> {
    let sql = facts.with_identifiers(&queries::PARTITION_ROWS_CAPPED, &[("partition", partition)]);
    Ok(tx.row(&sql, &[&cap])?.get("rows"))
}

/// Future months `migrate --partitioned` creates and `check partitions` expects by default.
pub const DEFAULT_MONTHS_AHEAD: u32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_name_and_bound_their_partitions_in_utc() {
        let january = Month::parse("2026-01").unwrap();
        assert_eq!(january.partition_name(), "metrics_2026_01");
        assert_eq!(january.start_literal(), "2026-01-01 00:00:00+00");
        assert_eq!(january.end_literal(), "2026-02-01 00:00:00+00");
        assert_eq!(
            Month::parse("2026-12").unwrap().next(),
            Month::parse("2027-01").unwrap()
        );
        assert_eq!(january.minus(1).to_string(), "2025-12");
        assert!(Month::parse("2026-13").is_err());
        assert!(Month::parse("January").is_err());
    }

    #[test]
    fn bounds_are_read_back_as_months_only_when_they_are_whole_utc_months() {
        assert_eq!(
            parse_bound("FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')"),
            Bound::Month {
                month: Month::parse("2026-01").unwrap()
            }
        );
        assert_eq!(parse_bound("DEFAULT"), Bound::Default);
        assert!(matches!(
            parse_bound("FOR VALUES FROM ('2026-01-01 05:30:00+00') TO ('2026-02-01 05:30:00+00')"),
            Bound::Range { .. }
        ));
        assert!(matches!(
            parse_bound("FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-03-01 00:00:00+00')"),
            Bound::Range { .. }
        ));
    }

    #[test]
    fn gaps_are_the_missing_months_between_the_first_and_the_last() {
        let m = |s| Month::parse(s).unwrap();
        assert_eq!(
            gap_months(&[m("2026-01"), m("2026-04"), m("2026-02")]),
            vec![m("2026-03")]
        );
        assert!(gap_months(&[]).is_empty());
        assert!(gap_months(&[m("2026-01")]).is_empty());
    }
}
