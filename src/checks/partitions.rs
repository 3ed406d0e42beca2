//! Are the partitions ready? The current month must have one (else its rows pile up in DEFAULT),
//! enough future months should, DEFAULT should be empty and no month missing in between.

use serde::Serialize;

use super::Status;
use super::{Cell, CheckReport, Column, Measure, Section, Threshold, count_of};
use crate::db::{SchemaFacts, Tx};
use crate::error;
use crate::schema::partitions::{self, Bound, Month, Partition};

/// DEFAULT is counted up to this many rows: enough to say it holds some.
const DEFAULT_ROWS_CAP: i64 = 1_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct PartitionsReport {
    pub current_month: Month,
    pub current_month_partition: Option<String>,
    /// Consecutive monthly partitions after the current month.
    pub months_ahead: u32,
    pub ahead_required: u32,
    pub default_partition: Option<String>,
    /// Rows in DEFAULT (counted up to 1,000,000).
    pub default_rows: i64,
    pub gaps: Vec<Month>,
    pub partitions: Vec<Partition>,
}

/// Inspects the partitions (with `exact`, every partition's rows are counted).
pub fn run(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    ahead_required: u32,
    exact: bool,
) -> error::Result<PartitionsReport> {
    partitions::ensure_partitioned(facts)?;
    if exact {
        let partitions = partitions::list(tx, facts, false)?;
        let unreadable: Vec<&Partition> = partitions.iter().filter(|p| !p.may_select).collect();
        if !unreadable.is_empty() {
            let names: Vec<String> = unreadable
                .iter()
                .map(|p| facts.qualified(&p.name))
                .collect();
            return Err(super::lacking_privilege(
                facts,
                &format!(
                    "counting every partition's rows reads each of them, and {} may not read {}",
                    facts.current_user,
                    names.join(", ")
                ),
                &format!(
                    "GRANT SELECT ON {} TO {};",
                    names.join(", "),
                    crate::db::queries::quote_identifier(&facts.current_user)
                ),
            ));
        }
    }
    let list = partitions::list(tx, facts, exact)?;
    let current = partitions::current_month(tx)?;
    let months: Vec<Month> = list.iter().filter_map(Partition::month).collect();
    let mut months_ahead = 0;
    while months.contains(&current.plus(months_ahead + 1)) {
        months_ahead += 1;
    }
    let default_partition = list
        .iter()
        .find(|p| p.bound == Bound::Default)
        .map(|p| p.name.clone());
    let default_rows = match list.iter().find(|p| p.bound == Bound::Default) {
        Some(default) if !default.may_select => {
            let name = facts.qualified(&default.name);
            return Err(super::lacking_privilege(
                facts,
                &format!(
                    "the partitions check counts the rows in DEFAULT, and {} may not read {name} \
                     (a partition has privileges of its own)",
                    facts.current_user
                ),
                &format!(
                    "GRANT SELECT ON {name} TO {};",
                    crate::db::queries::quote_identifier(&facts.current_user)
                ),
            ));
        }
        Some(default) => partitions::rows_up_to(tx, facts, &default.name, DEFAULT_ROWS_CAP)?,
        None => 0,
    };
    Ok(PartitionsReport {
        current_month: current,
        current_month_partition: months.contains(&current).then(|| current.partition_name()),
        months_ahead,
        ahead_required,
        default_partition,
        default_rows,
        gaps: partitions::gap_months(&months),
        partitions: list,
    })
}

impl CheckReport for PartitionsReport {
    fn subject(&self) -> super::Subject {
        super::Subject::One(super::Check::Partitions)
    }

    fn status(&self) -> Status {
        if self.current_month_partition.is_none() {
            Status::Critical
        } else if self.months_ahead < self.ahead_required
            || self.default_rows > 0
            || !self.gaps.is_empty()
        {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    fn summary(&self) -> String {
        let mut parts = Vec::new();
        match (&self.current_month_partition, &self.default_partition) {
            (Some(name), _) => {
                parts.push(format!("current month {} in {name}", self.current_month))
            }
            (None, Some(_)) => parts.push(format!(
                "no partition for the current month {}: its rows go to DEFAULT",
                self.current_month
            )),
            (None, None) => parts.push(format!(
                "no partition for the current month {} and no DEFAULT partition: its inserts fail",
                self.current_month
            )),
        }
        parts.push(format!(
            "{} ahead (want {})",
            count_of(i64::from(self.months_ahead), "month", "months"),
            self.ahead_required
        ));
        if self.default_rows > 0 {
            parts.push(format!(
                "DEFAULT holds {} (run `metricsctl partitions create` over their months)",
                count_of(self.default_rows, "row", "rows")
            ));
        }
        if !self.gaps.is_empty() {
            let gaps: Vec<String> = self.gaps.iter().map(Month::to_string).collect();
            parts.push(format!("missing months: {}", gaps.join(", ")));
        }
        if self.default_partition.is_none() {
            parts.push(
                "no DEFAULT partition: an event outside every partition is refused (the \
                 consumer's insert fails, replay rejects it); add one with CREATE TABLE \
                 metrics_default PARTITION OF metrics DEFAULT"
                    .to_string(),
            );
        }
        parts.join("; ")
    }

    fn measures(&self) -> Vec<Measure> {
        measures(Some(self))
    }

    fn sections(&self) -> Vec<Section> {
        vec![partition_section(&self.partitions)]
    }
}

/// The partitions check's measures, with the thresholds it applies; with no report, the same
/// series without values.
pub fn measures(report: Option<&PartitionsReport>) -> Vec<Measure> {
    let any = Some(Threshold::Above(0.0));
    vec![
        Measure::count(
            "months_ahead",
            "partitions_months_ahead",
            "Consecutive monthly partitions after the current month.",
            report.map(|r| i64::from(r.months_ahead)),
        )
        .with_thresholds(
            report.map(|r| Threshold::Below(f64::from(r.ahead_required))),
            None,
        ),
        Measure::count(
            "default_rows",
            "partitions_default_rows",
            "Rows in the DEFAULT partition (counted up to 1,000,000).",
            report.map(|r| r.default_rows),
        )
        .with_thresholds(any, None),
        Measure::count(
            "current_month_partition",
            "partitions_current_month_present",
            "1 when the current month has its partition.",
            report.map(|r| i64::from(r.current_month_partition.is_some())),
        )
        .with_thresholds(None, Some(Threshold::Below(1.0))),
        Measure::count(
            "default_partition",
            "partitions_default_present",
            "1 when a DEFAULT partition catches events outside every month.",
            report.map(|r| i64::from(r.default_partition.is_some())),
        ),
        Measure::count(
            "gaps",
            "partitions_gaps",
            "Months missing between the first and the last monthly partition.",
            report.map(|r| r.gaps.len() as i64),
        )
        .with_thresholds(any, None),
    ]
}

/// The partitions as a table (also `partitions list`).
pub fn partition_section(partitions: &[Partition]) -> Section {
    Section::new(
        "partitions of metrics (bounds in UTC)",
        vec![
            Column::new("partition", "partition"),
            Column::new("from", "from"),
            Column::new("to", "to"),
            Column::new("rows", "rows"),
            Column::new("size", "bytes"),
        ],
        partitions
            .iter()
            .map(|p| {
                let (from, to) = match &p.bound {
                    Bound::Month { month } => (month.start_rfc3339(), month.next().start_rfc3339()),
                    Bound::Range { from, to } => (from.clone(), to.clone()),
                    Bound::Default => ("DEFAULT".to_string(), String::new()),
                };
                let rows = match (p.exact_rows, p.estimated_rows) {
                    (Some(exact), _) => Cell::count(exact),
                    (None, Some(estimate)) => {
                        Cell::new(format!("~{estimate}"), estimate.to_string())
                    }
                    (None, None) => Cell::new("not analyzed", ""),
                };
                vec![
                    Cell::text(p.name.clone()),
                    Cell::text(from),
                    Cell::text(to),
                    rows,
                    Cell::new(human_bytes(p.bytes), p.bytes.to_string()),
                ]
            })
            .collect(),
    )
}

fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
