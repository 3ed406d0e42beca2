//! Is anything duplicated or lost? The guide's two idempotency queries plus consistency between
//! the guard and the metrics.

use crate::db::{SchemaFacts, Tx};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Status;
use super::{Cell, CheckReport, Column, Measure, Section, Threshold};
use crate::db::queries;

#[derive(Debug, Clone, Serialize)]
pub struct DuplicatesReport {
    /// Only the window from this instant (guard rows ingested, metrics dated), or everything.
    pub since: Option<DateTime<Utc>>,
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

/// The whole tables, or with `since` only the window from then on (see duplicates_since.sql).
pub fn run(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    limit: u32,
    since: Option<DateTime<Utc>>,
) -> crate::error::Result<DuplicatesReport> {
    let limit = i64::from(limit);
    let Some(since) = since else {
        let sql = facts.with_retired_events(&queries::DUPLICATES);
        let row = tx.row(&sql, &[&limit])?;
        return Ok(DuplicatesReport {
            since: None,
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
        });
    };
    // A live event is seconds old when it is ingested: its metric is looked for from a day back.
    let looked_back = since - chrono::Duration::days(1);
    let row = tx.row(
        queries::DUPLICATES_SINCE.sql(),
        &[&limit, &since, &looked_back],
    )?;
    let unfound: i64 = row.get("unfound");
    // Anywhere else only when something was not found in the window (a replay of old events).
    let (lost_metrics, retired_events, lost_samples) = if unfound > 0 {
        let sql = facts.with_retired_events(&queries::DUPLICATES_SINCE_UNFOUND);
        let found = tx.row(&sql, &[&limit, &since, &looked_back])?;
        (
            found.get("lost_metrics"),
            found.get("retired_events"),
            found.get("lost_samples"),
        )
    } else {
        (0, 0, Vec::new())
    };
    Ok(DuplicatesReport {
        since: Some(since),
        guard_rows: row.get("total_rows"),
        distinct_guard_ids: row.get("unique_event_ids"),
        duplicated_metric_ids: row.get("duplicated_metric_ids"),
        surplus_metric_rows: row.get("surplus_metric_rows"),
        lost_metrics,
        unguarded_metrics: row.get("unguarded_metrics"),
        retired_events,
        samples: DuplicateSamples {
            duplicated_metric_ids: row.get("duplicated_samples"),
            lost_metrics: lost_samples,
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
    fn subject(&self) -> super::Subject {
        super::Subject::One(super::Check::Duplicates)
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
        let window = self
            .since
            .map(|since| format!(" (since {})", since.format("%Y-%m-%d %H:%M:%S UTC")))
            .unwrap_or_default();
        if problems.is_empty() {
            // Retired events have their guard row and no metric, on purpose: counted apart.
            let stored = self.guard_rows - self.retired_events;
            let retired = if self.retired_events > 0 {
                format!(
                    "; {} retired by retention (guard row kept, metric dropped with its month)",
                    self.retired_events
                )
            } else {
                String::new()
            };
            format!(
                "{stored} events{window}, each once in processed_events and once in metrics{retired}"
            )
        } else {
            format!("{}{window}", problems.join("; "))
        }
    }

    fn measures(&self) -> Vec<Measure> {
        measures(Some(self))
    }

    fn sections(&self) -> Vec<Section> {
        let samples = |count: i64, ids: &[String]| {
            let left_out = count - ids.len() as i64;
            let mut text = ids.join(", ");
            if left_out > 0 && !ids.is_empty() {
                text.push_str(&format!(" (and {left_out} more; raise --limit)"));
            }
            let raw = serde_json::to_string(ids).unwrap_or_default();
            Cell::new(text, raw)
        };
        let none = || Cell::new("-", "[]");
        let counts = vec![
            (
                "processed_events rows",
                "processed_events_rows",
                self.guard_rows,
                none(),
            ),
            (
                "distinct event ids in processed_events",
                "distinct_guard_ids",
                self.distinct_guard_ids,
                none(),
            ),
            (
                "event ids stored more than once in metrics",
                "duplicated_metric_ids",
                self.duplicated_metric_ids,
                samples(
                    self.duplicated_metric_ids,
                    &self.samples.duplicated_metric_ids,
                ),
            ),
            (
                "processed events without their metric (lost)",
                "lost_metrics",
                self.lost_metrics,
                samples(self.lost_metrics, &self.samples.lost_metrics),
            ),
            (
                "metrics without a processed_events row",
                "unguarded_metrics",
                self.unguarded_metrics,
                samples(self.unguarded_metrics, &self.samples.unguarded_metrics),
            ),
            (
                "processed events whose metric retention retired (not lost)",
                "retired_events",
                self.retired_events,
                none(),
            ),
        ];
        vec![Section::new(
            "duplicates and consistency",
            vec![
                Column::new("what", "what"),
                Column::new("count", "count"),
                Column::new("sample event ids", "sample_event_ids"),
            ],
            counts
                .into_iter()
                .map(|(what, raw_what, count, samples)| {
                    vec![Cell::new(what, raw_what), Cell::count(count), samples]
                })
                .collect(),
        )]
    }
}

/// The duplicates check's measures; with no report, the same series without values.
pub fn measures(report: Option<&DuplicatesReport>) -> Vec<Measure> {
    let any = Some(Threshold::Above(0.0));
    vec![
        Measure::count(
            "duplicate_guard_rows",
            "duplicates_surplus_guard_rows",
            "processed_events rows beyond one per event id.",
            report.map(DuplicatesReport::duplicate_guard_rows),
        )
        .with_thresholds(None, any),
        Measure::count(
            "duplicated_metric_ids",
            "duplicates_metric_ids",
            "Event ids stored more than once in metrics.",
            report.map(|r| r.duplicated_metric_ids),
        )
        .with_thresholds(None, any),
        Measure::count(
            "lost_metrics",
            "duplicates_lost_metrics",
            "processed_events rows without their metric.",
            report.map(|r| r.lost_metrics),
        )
        .with_thresholds(None, any),
        Measure::count(
            "unguarded_metrics",
            "duplicates_unguarded_metrics",
            "metrics rows without a processed_events row.",
            report.map(|r| r.unguarded_metrics),
        )
        .with_thresholds(any, None),
        Measure::count(
            "retired_events",
            "duplicates_retired_events",
            "processed_events rows whose metric retention retired (not lost).",
            report.map(|r| r.retired_events),
        ),
        Measure::count(
            "guard_rows",
            "processed_events_rows",
            "processed_events rows.",
            report.map(|r| r.guard_rows),
        ),
    ]
}
