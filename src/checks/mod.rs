//! The checks an operator runs to trust the pipeline, as reports every output format can render:
//! a status, a one-line summary, numbers (Nagios perfdata, Prometheus gauges) and tables.

pub mod duplicates;
pub mod lag;
pub mod migrations;
pub mod ordering;
pub mod partitions;
pub mod rate;
pub mod sequence;

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use serde::Serialize;

use std::fmt;

use crate::db::facts::{HISTORY, RETIRED_EVENTS};
use crate::db::queries::quote_identifier;
use crate::db::{Helper, Layout, SchemaFacts};
use crate::error::{self, Error, What};

/// The checks metricsctl runs: the one list of them (`Check::iter()` walks it). Adding a check is
/// its SQL (queries/), its module here, its variant (the compiler then points at every match
/// below, among them the command that runs it, and at `commands::check::add_report`), its
/// arguments (cli.rs; a test fails until `command()` names a command that exists), its tests and
/// its docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter)]
pub enum Check {
    Ordering,
    Duplicates,
    Sequence,
    Partitions,
    Lag,
    Rate,
    Migrations,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Ordering => "ordering",
            Check::Duplicates => "duplicates",
            Check::Sequence => "sequence",
            Check::Partitions => "partitions",
            Check::Lag => "lag",
            Check::Rate => "rate",
            Check::Migrations => "migrations",
        }
    }

    /// The checks `check all` runs on a database of this layout: partitions only on the
    /// partitioned one. Where the layout is not known (the database could not be reached), all
    /// that may run, so that a partitioned database's monitoring keeps its every series during an
    /// outage.
    pub fn in_check_all(layout: Option<Layout>) -> Vec<Check> {
        Check::iter()
            .filter(|check| match check {
                Check::Ordering | Check::Duplicates | Check::Sequence => true,
                Check::Partitions => layout != Some(Layout::Plain),
                // Commands of their own, with thresholds of their own.
                Check::Lag | Check::Rate | Check::Migrations => false,
            })
            .collect()
    }

    /// Every check, in the order reports list them.
    pub fn iter() -> impl Iterator<Item = Check> {
        <Check as strum::IntoEnumIterator>::iter()
    }

    /// The command that runs this check alone, as typed after `metricsctl`.
    pub fn command(self) -> &'static [&'static str] {
        match self {
            Check::Ordering => &["check", "ordering"],
            Check::Duplicates => &["check", "duplicates"],
            Check::Sequence => &["check", "sequence"],
            Check::Partitions => &["check", "partitions"],
            Check::Lag => &["lag"],
            Check::Rate => &["rate"],
            Check::Migrations => &["migrate", "status"],
        }
    }

    /// The series this check reports, without values (for a run that could not judge).
    pub fn series(self) -> Vec<Measure> {
        match self {
            Check::Ordering => ordering::measures(None),
            Check::Duplicates => duplicates::measures(None),
            Check::Sequence => sequence::measures(None),
            Check::Partitions => partitions::measures(None),
            Check::Lag => lag::measures(None),
            Check::Rate => rate::measures(None),
            Check::Migrations => migrations::measures(None),
        }
    }

    /// The relations and sequences the check reads (partitions: what it reads besides the
    /// catalog; its own run names a partition it may not read).
    fn reads(self, facts: &SchemaFacts) -> Vec<Readable> {
        let table = |name: &'static str| Readable::Table(name);
        match self {
            Check::Ordering | Check::Lag => vec![table("metrics"), table("processed_events")],
            Check::Duplicates => {
                let mut reads = vec![table("metrics"), table("processed_events")];
                if facts.helper(RETIRED_EVENTS) == Helper::Trusted {
                    reads.push(table(RETIRED_EVENTS));
                }
                reads
            }
            Check::Sequence => vec![table("metrics"), Readable::Sequence],
            Check::Partitions => Vec::new(),
            Check::Rate => vec![table("processed_events")],
            Check::Migrations if facts.helper(HISTORY) == Helper::Trusted => vec![table(HISTORY)],
            Check::Migrations => Vec::new(),
        }
    }

    /// Whether the current user may read what the check reads; if not, an error naming the
    /// GRANT it needs (exit 3 for the check alone; inside `check all` the others still run).
    pub fn ensure_privileges(self, facts: &SchemaFacts) -> error::Result<()> {
        let mut lacking = Vec::new();
        let mut grants = Vec::new();
        let role = quote_identifier(&facts.current_user);
        for readable in self.reads(facts) {
            match readable {
                Readable::Table(name) => {
                    if facts.relation(name).is_some_and(|r| !r.may_select) {
                        lacking.push(format!("SELECT on {}", facts.qualified(name)));
                        grants.push(format!(
                            "GRANT SELECT ON {} TO {role};",
                            facts.qualified(name)
                        ));
                    }
                }
                Readable::Sequence => {
                    if let Some(sequence) = facts
                        .metrics()
                        .and_then(|m| m.sequence.as_ref().filter(|_| !m.may_read_sequence))
                    {
                        lacking.push(format!("SELECT on sequence {sequence}"));
                        grants.push(format!("GRANT SELECT ON SEQUENCE {sequence} TO {role};"));
                    }
                }
            }
        }
        if lacking.is_empty() {
            return Ok(());
        }
        Err(lacking_privilege(
            facts,
            &format!(
                "the {} check reads what {} may not: {}",
                self.name(),
                facts.current_user,
                lacking.join(", ")
            ),
            &grants.join(" "),
        ))
    }
}

enum Readable {
    Table(&'static str),
    /// The sequence metrics.id draws from.
    Sequence,
}

/// A check the current user may not run: what it lacks, the GRANT that gives it, and where to
/// find every grant a monitoring role needs.
pub fn lacking_privilege(facts: &SchemaFacts, why: &str, grant: &str) -> Error {
    Error::new(
        What::Privilege,
        anyhow!(
            "{why}. As the tables' owner ({}): {grant} (`metricsctl grants --monitor {}` prints \
             every grant a monitoring role needs)",
            facts.tables_owner(),
            crate::text::shell_quote(&facts.current_user)
        ),
    )
}

/// A Nagios threshold, written in the plugin range syntax so that any plugin framework reads
/// the same verdict from the perfdata as metricsctl gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// Alert when the value is above this (`60`: alert outside 0..=60; used only for values
    /// that cannot go below zero).
    Above(f64),
    /// Alert when the value is below this (`10:`).
    Below(f64),
}

impl Threshold {
    /// Whether `value` is outside the range, as Monitoring::Plugin would judge it.
    #[cfg(test)]
    pub fn alerts(self, value: f64) -> bool {
        match self {
            Threshold::Above(limit) => value < 0.0 || value > limit,
            Threshold::Below(limit) => value < limit,
        }
    }

    /// The range in the plugin syntax: `60` or `10:`.
    pub fn range(self) -> String {
        match self {
            Threshold::Above(limit) => plain_number(limit),
            Threshold::Below(limit) => format!("{}:", plain_number(limit)),
        }
    }
}

/// A number without exponent or needless decimals: `60`, `0.5`.
pub fn plain_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A verdict, ordered from best to worst so that `max` gives the worst: a check's, and the
/// outcome of every command (its exit code, in the monitoring world's convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Everything is as it should be.
    Ok,
    /// Something needs attention, nothing is broken yet.
    Warning,
    /// A check found a problem, or an operation failed on the database.
    Critical,
    /// The command could not run: bad arguments, unreachable database, schema missing.
    Unknown,
}

impl Status {
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A number a check measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// Nagios perfdata label, e.g. `lag`.
    pub label: &'static str,
    /// Prometheus metric name without the `metricsctl_` prefix, e.g. `lag_seconds`.
    pub metric: &'static str,
    /// Prometheus labels, e.g. `percentile="95"`.
    pub labels: Vec<(&'static str, String)>,
    pub help: &'static str,
    /// `None` when it could not be measured: Prometheus gets NaN (the series keeps existing),
    /// Nagios leaves it out.
    pub value: Option<f64>,
    /// `s` for seconds, empty for counts (Nagios units).
    pub unit: &'static str,
    /// Counts cannot go below zero; durations can (a sensor's clock ahead), so they have no
    /// minimum.
    pub min: Option<f64>,
    pub warn: Option<Threshold>,
    pub crit: Option<Threshold>,
}

impl Measure {
    pub fn count(
        label: &'static str,
        metric: &'static str,
        help: &'static str,
        value: Option<i64>,
    ) -> Measure {
        Measure {
            label,
            metric,
            labels: Vec::new(),
            help,
            value: value.map(|v| v as f64),
            unit: "",
            min: Some(0.0),
            warn: None,
            crit: None,
        }
    }

    /// A measure that is not a whole count (an average); never negative.
    pub fn number(
        label: &'static str,
        metric: &'static str,
        help: &'static str,
        value: Option<f64>,
    ) -> Measure {
        Measure {
            value,
            ..Measure::count(label, metric, help, None)
        }
    }

    pub fn seconds(
        label: &'static str,
        metric: &'static str,
        help: &'static str,
        value: Option<f64>,
    ) -> Measure {
        Measure {
            unit: "s",
            value,
            min: None,
            ..Measure::count(label, metric, help, None)
        }
    }

    pub fn with_thresholds(mut self, warn: Option<Threshold>, crit: Option<Threshold>) -> Measure {
        self.warn = warn;
        self.crit = crit;
        self
    }

    pub fn with_label(mut self, name: &'static str, value: impl Into<String>) -> Measure {
        self.labels.push((name, value.into()));
        self
    }
}

/// A column of a section: its title for people, and its name in CSV (none: people only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub title: &'static str,
    pub csv: Option<&'static str>,
}

impl Column {
    pub const fn new(title: &'static str, csv: &'static str) -> Column {
        Column {
            title,
            csv: Some(csv),
        }
    }

    /// Shown to people only (a bar chart).
    pub const fn people_only(title: &'static str) -> Column {
        Column { title, csv: None }
    }
}

/// A cell: what people see, and the raw value CSV carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: String,
    pub raw: String,
}

impl Cell {
    pub fn new(text: impl Into<String>, raw: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            raw: raw.into(),
        }
    }

    /// Text that is its own raw value (an id).
    pub fn text(text: impl Into<String>) -> Cell {
        let text = text.into();
        Cell {
            raw: text.clone(),
            text,
        }
    }

    pub fn count(n: i64) -> Cell {
        Cell::text(n.to_string())
    }

    /// Seconds: `3m 20s` for people, `200` raw; `-` / empty when unknown.
    pub fn seconds(seconds: Option<f64>) -> Cell {
        match seconds {
            Some(s) => Cell::new(human_seconds(s), s.to_string()),
            None => Cell::new("-", ""),
        }
    }

    /// A time: to the second in UTC for people, RFC 3339 raw.
    pub fn time(at: Option<DateTime<Utc>>) -> Cell {
        match at {
            Some(at) => Cell::new(
                at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                at.to_rfc3339(),
            ),
            None => Cell::new("-", ""),
        }
    }
}

/// A table of a report, for people (and CSV, which takes the first).
#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// Rows that exist but were left out (`--limit`), said under the table.
    pub not_shown: i64,
}

impl Section {
    pub fn new(title: impl Into<String>, columns: Vec<Column>, rows: Vec<Vec<Cell>>) -> Section {
        Section {
            title: title.into(),
            columns,
            rows,
            not_shown: 0,
        }
    }

    pub fn with_not_shown(mut self, not_shown: i64) -> Section {
        self.not_shown = not_shown.max(0);
        self
    }
}

/// What a report is about: one check, or `check all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    One(Check),
    All,
}

impl Subject {
    pub fn name(self) -> &'static str {
        match self {
            Subject::One(check) => check.name(),
            Subject::All => "all",
        }
    }

    /// The checks it covers and every series they report, without values: what monitoring
    /// keeps seeing, status UNKNOWN, when the report could not be made.
    pub fn series(self, layout: Option<Layout>) -> (Vec<Check>, Vec<Measure>) {
        let checks = match self {
            Subject::One(check) => vec![check],
            Subject::All => Check::in_check_all(layout),
        };
        let measures = checks.iter().flat_map(|c| c.series()).collect();
        (checks, measures)
    }
}

/// What every check produces. The report itself serialises to the check's JSON body.
pub trait CheckReport: Serialize {
    /// What it is about.
    fn subject(&self) -> Subject;
    /// The check's name: `ordering`, `duplicates`, `lag`, `rate`, ..., `all`.
    fn check(&self) -> &'static str {
        self.subject().name()
    }
    fn status(&self) -> Status;
    /// One line: what a person or a Nagios status line needs to know.
    fn summary(&self) -> String;
    fn measures(&self) -> Vec<Measure>;
    fn sections(&self) -> Vec<Section>;
    /// Each check's status, for monitoring formats (`check all` has several).
    fn statuses(&self) -> Vec<(&'static str, Status)> {
        vec![(self.check(), self.status())]
    }
}

/// `check all`: every check's report, the worst status wins.
#[derive(Debug, Clone, Serialize)]
pub struct AllChecks {
    pub checks: Vec<CheckSummary>,
    #[serde(skip)]
    pub measures: Vec<(&'static str, Measure)>,
}

/// One check inside `check all`, with its full JSON body under `report`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckSummary {
    pub check: &'static str,
    pub status: Status,
    pub exit_code: u8,
    pub summary: String,
    pub report: serde_json::Value,
}

impl AllChecks {
    pub fn new() -> AllChecks {
        AllChecks {
            checks: Vec::new(),
            measures: Vec::new(),
        }
    }

    /// A check that could not run (the current user lacks what it reads): UNKNOWN, with every
    /// series it reports kept, without values.
    pub fn add_could_not_run(&mut self, check: Check, error: &Error) {
        self.checks.push(CheckSummary {
            check: check.name(),
            status: Status::Unknown,
            exit_code: Status::Unknown.code(),
            summary: error.to_string(),
            report: serde_json::Value::Null,
        });
        self.measures
            .extend(check.series().into_iter().map(|m| (check.name(), m)));
    }

    pub fn add(&mut self, report: &impl CheckReport) {
        let status = report.status();
        self.checks.push(CheckSummary {
            check: report.check(),
            status,
            exit_code: status.code(),
            summary: report.summary(),
            // Reports are plain structs with string keys: serialising them cannot fail.
            report: serde_json::to_value(report).unwrap_or_default(),
        });
        self.measures
            .extend(report.measures().into_iter().map(|m| (report.check(), m)));
    }
}

impl Default for AllChecks {
    fn default() -> Self {
        AllChecks::new()
    }
}

impl CheckReport for AllChecks {
    fn subject(&self) -> Subject {
        Subject::All
    }

    /// A problem found outranks a check that could not run: a CRITICAL duplicates check stays
    /// CRITICAL beside a sequence check the role may not read (which says what it lacks).
    fn status(&self) -> Status {
        let found = self
            .checks
            .iter()
            .map(|c| c.status)
            .filter(|s| *s != Status::Unknown)
            .max();
        match found {
            Some(status) if status > Status::Ok => status,
            _ if self.checks.iter().any(|c| c.status == Status::Unknown) => Status::Unknown,
            _ => Status::Ok,
        }
    }

    fn summary(&self) -> String {
        self.checks
            .iter()
            .map(|c| format!("{} {}", c.check, c.status))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn measures(&self) -> Vec<Measure> {
        self.measures.iter().map(|(_, m)| m.clone()).collect()
    }

    fn statuses(&self) -> Vec<(&'static str, Status)> {
        self.checks.iter().map(|c| (c.check, c.status)).collect()
    }

    fn sections(&self) -> Vec<Section> {
        vec![Section::new(
            "checks",
            vec![
                Column::new("check", "check"),
                Column::new("status", "status"),
                Column::new("summary", "summary"),
            ],
            self.checks
                .iter()
                .map(|c| {
                    vec![
                        Cell::text(c.check),
                        Cell::text(c.status.label()),
                        Cell::text(c.summary.clone()),
                    ]
                })
                .collect(),
        )]
    }
}

/// Seconds as people read them: 1.500 s, 42 s, 3m 20s, 15m, 2h 5m, 3d 4h.
pub fn human_seconds(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "-".to_string();
    }
    let sign = if seconds < 0.0 { "-" } else { "" };
    let s = seconds.abs();
    if s < 10.0 {
        return format!("{sign}{s:.3} s");
    }
    if s < 60.0 {
        return format!("{sign}{s:.0} s");
    }
    let whole = s.round() as u64;
    let (big, small, big_unit, small_unit) = if whole < 3600 {
        (whole / 60, whole % 60, "m", "s")
    } else if whole < 172_800 {
        (whole / 3600, whole % 3600 / 60, "h", "m")
    } else {
        (whole / 86400, whole % 86400 / 3600, "d", "h")
    };
    if small == 0 {
        format!("{sign}{big}{big_unit}")
    } else {
        format!("{sign}{big}{big_unit} {small}{small_unit}")
    }
}

/// `1 event`, `3 events`.
pub fn count_of(n: i64, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_use_the_plugin_range_syntax() {
        assert_eq!(Threshold::Above(60.0).range(), "60");
        assert_eq!(Threshold::Below(10.0).range(), "10:");
        assert_eq!(Threshold::Below(0.5).range(), "0.5:");
        assert!(Threshold::Below(10.0).alerts(6.0));
        assert!(!Threshold::Below(10.0).alerts(10.0));
        assert!(!Threshold::Below(5.0).alerts(6000.0));
        assert!(Threshold::Above(60.0).alerts(60.5));
        assert!(!Threshold::Above(60.0).alerts(60.0));
    }

    #[test]
    fn seconds_read_naturally() {
        assert_eq!(human_seconds(1.5), "1.500 s");
        assert_eq!(human_seconds(42.0), "42 s");
        assert_eq!(human_seconds(200.0), "3m 20s");
        assert_eq!(human_seconds(900.0), "15m");
        assert_eq!(human_seconds(3600.0), "1h");
        assert_eq!(human_seconds(7500.0), "2h 5m");
        assert_eq!(human_seconds(3.0 * 86400.0 + 4.0 * 3600.0), "3d 4h");
        assert_eq!(human_seconds(f64::NAN), "-");
    }
}
