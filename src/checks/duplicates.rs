//! Is anything duplicated or lost? The guide's two idempotency queries plus consistency between
//! the guard and the metrics.

use postgres::Client;
use serde::Serialize;

use super::{CheckReport, Measure, Section};
use crate::status::Status;
use crate::{partitions, queries};

#[derive(Debug, Clone, Serialize)]
pub struct DuplicatesReport {
    /// The guide's first query: processed_events rows and distinct event ids (equal when sound).
    pub guard_rows: i64,
    pub distinct_guard_ids: i64,
    /// The guide's second query: event ids stored more than once in metrics.
    pub duplicated_metric_ids: i64,
    /// Metrics rows beyond the first for those ids.
    pub surplus_metric_rows: i64,
    /// Guard rows whose metric is missing: the event was marked processed but its reading lost.
    pub lost_metrics: i64,
    /// Metrics without a guard row: something wrote around the guard.
    pub unguarded_metrics: i64,
    /// Guard rows whose metric retention retired on purpose (not lost).
    pub retired_events: i64,
    pub samples: DuplicateSamples,
}

#[derive(Debug, Clone, Serialize)]
pub struct DuplicateSamples {
    pub duplicated_metric_ids: Vec<String>,
    pub lost_metrics: Vec<String>,
    pub unguarded_metrics: Vec<String>,
}

pub fn run(client: &mut Client, limit: u32) -> Result<DuplicatesReport, postgres::Error> {
    let sql = partitions::with_retired_events(client, queries::DUPLICATES.sql())?;
    let row = client.query_one(sql.as_str(), &[&(limit as i32)])?;
    Ok(DuplicatesReport {
        guard_rows: row.get("total_rows"),
        distinct_guard_ids: row.get("unique_event_ids"),
        duplicated_metric_ids: row.get("duplicated_metric_ids"),
        surplus_metric_rows: row.get("surplus_metric_rows"),
        lost_metrics: row.get("lost_metrics"),
        unguarded_metrics: row.get("unguarded_metrics"),
        retired_events: row.get("retired_events"),
        samples: DuplicateSamples {
            duplicated_metric_ids: row.get("duplicated_samples"),
            lost_metrics: row.get("lost_samples"),
            unguarded_metrics: row.get("unguarded_samples"),
        },
    })
}

impl DuplicatesReport {
    pub fn duplicate_guard_rows(&self) -> i64 {
        self.guard_rows - self.distinct_guard_ids
    }
}

impl CheckReport for DuplicatesReport {
    fn check(&self) -> &'static str {
        "duplicates"
    }

    fn status(&self) -> Status {
        if self.duplicate_guard_rows() > 0
            || self.duplicated_metric_ids > 0
            || self.lost_metrics > 0
        {
            Status::Critical
        } else if self.unguarded_metrics > 0 {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    fn summary(&self) -> String {
        let mut problems = Vec::new();
        if self.duplicate_guard_rows() > 0 {
            problems.push(format!(
                "{} duplicate guard rows ({} rows, {} distinct ids)",
                self.duplicate_guard_rows(),
                self.guard_rows,
                self.distinct_guard_ids
            ));
        }
        if self.duplicated_metric_ids > 0 {
            problems.push(format!(
                "{} event ids stored more than once in metrics ({} surplus rows)",
                self.duplicated_metric_ids, self.surplus_metric_rows
            ));
        }
        if self.lost_metrics > 0 {
            problems.push(format!(
                "{} processed events without their metric (lost)",
                self.lost_metrics
            ));
        }
        if self.unguarded_metrics > 0 {
            problems.push(format!(
                "{} metrics without a processed_events row (guard bypassed)",
                self.unguarded_metrics
            ));
        }
        if problems.is_empty() {
            format!(
                "{} events, each once in processed_events and once in metrics",
                self.guard_rows
            )
        } else {
            problems.join("; ")
        }
    }

    fn measures(&self) -> Vec<Measure> {
        vec![
            Measure::count(
                "duplicate_guard_rows",
                "duplicates_guard_rows",
                "processed_events rows beyond one per event id.",
                self.duplicate_guard_rows(),
            )
            .with_thresholds(None, Some(0.0)),
            Measure::count(
                "duplicated_metric_ids",
                "duplicates_metric_ids",
                "Event ids stored more than once in metrics.",
                self.duplicated_metric_ids,
            )
            .with_thresholds(None, Some(0.0)),
            Measure::count(
                "lost_metrics",
                "duplicates_lost_metrics",
                "processed_events rows without their metric.",
                self.lost_metrics,
            )
            .with_thresholds(None, Some(0.0)),
            Measure::count(
                "unguarded_metrics",
                "duplicates_unguarded_metrics",
                "metrics rows without a processed_events row.",
                self.unguarded_metrics,
            )
            .with_thresholds(Some(0.0), None),
            Measure::count(
                "retired_events",
                "duplicates_retired_events",
                "processed_events rows whose metric retention retired (not lost).",
                self.retired_events,
            ),
            Measure::count(
                "guard_rows",
                "duplicates_guard_rows_total",
                "processed_events rows.",
                self.guard_rows,
            ),
        ]
    }

    fn sections(&self) -> Vec<Section> {
        let counts = vec![
            ("processed_events rows", self.guard_rows, "-".to_string()),
            (
                "distinct event ids in processed_events",
                self.distinct_guard_ids,
                "-".to_string(),
            ),
            (
                "event ids stored more than once in metrics",
                self.duplicated_metric_ids,
                self.samples.duplicated_metric_ids.join(", "),
            ),
            (
                "processed events without their metric (lost)",
                self.lost_metrics,
                self.samples.lost_metrics.join(", "),
            ),
            (
                "metrics without a processed_events row",
                self.unguarded_metrics,
                self.samples.unguarded_metrics.join(", "),
            ),
            (
                "processed events whose metric retention retired (not lost)",
                self.retired_events,
                "-".to_string(),
            ),
        ];
        vec![Section {
            title: "duplicates and consistency".to_string(),
            columns: vec!["what", "count", "sample event ids"],
            rows: counts
                .into_iter()
                .map(|(what, count, samples)| vec![what.to_string(), count.to_string(), samples])
                .collect(),
        }]
    }
}
