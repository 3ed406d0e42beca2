//! How far behind is ingestion? The guide's lag query, silent sensors, sensor clocks ahead,
//! end-to-end latency.

use std::time::Duration;

use crate::db::{SchemaFacts, Tx};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Cell;
use super::Status;
use super::{CheckReport, Column, Measure, Section, Threshold, count_of, human_seconds};
use crate::db::queries;

#[derive(Debug, Clone)]
pub struct LagOptions {
    /// A sensor whose newest metric is older than this is silent.
    pub stale: Duration,
    /// Latency percentiles cover the newest `latency_sample` events whose timestamp is within this.
    pub window: Duration,
    pub latency_sample: u32,
    pub warn: Duration,
    pub crit: Duration,
    /// Events dated further than this ahead of now are a sensor clock ahead.
    pub clock_tolerance: Duration,
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct LagReport {
    /// The guide's query over the events not dated in the future: newest event timestamp, now,
    /// and the difference (never negative).
    pub latest_metric_time: Option<DateTime<Utc>>,
    pub current_time: DateTime<Utc>,
    pub lag_seconds: Option<f64>,
    pub warn_seconds: f64,
    pub crit_seconds: f64,
    pub sensors: i64,
    pub stale_after_seconds: f64,
    pub stale_sensors: i64,
    pub clock_tolerance_seconds: f64,
    /// Sensors with events dated more than the tolerance ahead of the database's clock.
    pub clock_ahead_sensors: i64,
    /// How far ahead the furthest of them is.
    pub clock_ahead_seconds: Option<f64>,
    pub window_seconds: f64,
    /// The events the percentiles were computed over: the newest of the window, at most
    /// `--latency-sample`.
    pub latency_events: i64,
    pub latency_seconds: LatencyPercentiles,
    /// Silent sensors, longest silent first (at most `--limit`).
    pub stale: Vec<StaleSensor>,
    /// Sensors with clocks ahead, furthest first (at most `--limit`).
    pub clock_ahead: Vec<SensorAhead>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyPercentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StaleSensor {
    pub sensor_id: String,
    pub newest_timestamp: DateTime<Utc>,
    pub silent_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SensorAhead {
    pub sensor_id: String,
    /// How far its newest event is ahead of the database's clock.
    pub ahead_seconds: f64,
}

pub fn run(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    options: &LagOptions,
) -> crate::error::Result<LagReport> {
    let query = if facts.is_distributed() {
        &queries::LAG_DISTRIBUTED
    } else {
        &queries::LAG
    };
    let rows = tx.rows(
        query.sql(),
        &[
            &options.stale.as_secs_f64(),
            &options.window.as_secs_f64(),
            &i64::from(options.latency_sample),
            &i64::from(options.limit),
            &options.clock_tolerance.as_secs_f64(),
        ],
    )?;
    let first = rows.first().expect("the totals row is always there");
    let percentiles = |column: &str| -> Option<f64> { first.get(column) };
    let ahead_ids: Vec<String> = first.get("ahead_sensor_ids");
    let ahead_seconds: Vec<f64> = first.get("ahead_sensor_seconds");
    Ok(LagReport {
        latest_metric_time: first.get("latest_metric_time"),
        current_time: first.get("current_time"),
        lag_seconds: first.get::<_, Option<f64>>("lag_seconds"),
        warn_seconds: options.warn.as_secs_f64(),
        crit_seconds: options.crit.as_secs_f64(),
        sensors: first.get("sensors"),
        stale_after_seconds: options.stale.as_secs_f64(),
        stale_sensors: first.get("stale_sensors"),
        clock_tolerance_seconds: options.clock_tolerance.as_secs_f64(),
        clock_ahead_sensors: first.get("ahead_sensors"),
        clock_ahead_seconds: first.get("clock_ahead_seconds"),
        window_seconds: options.window.as_secs_f64(),
        latency_events: first.get("latency_events"),
        latency_seconds: LatencyPercentiles {
            p50: percentiles("latency_p50_seconds"),
            p95: percentiles("latency_p95_seconds"),
            p99: percentiles("latency_p99_seconds"),
        },
        stale: rows
            .iter()
            .filter_map(|row| {
                Some(StaleSensor {
                    sensor_id: row.get::<_, Option<String>>("stale_sensor_id")?,
                    newest_timestamp: row.get("stale_newest_timestamp"),
                    silent_seconds: row.get("stale_silent_seconds"),
                })
            })
            .collect(),
        clock_ahead: ahead_ids
            .into_iter()
            .zip(ahead_seconds)
            .map(|(sensor_id, ahead_seconds)| SensorAhead {
                sensor_id,
                ahead_seconds,
            })
            .collect(),
    })
}

/// Sensors named in a one-line summary; the rest are counted (the table lists up to --limit).
const SENSORS_NAMED: usize = 5;

/// `a, b, c and 4 more`.
fn named_up_to<'a>(names: impl Iterator<Item = &'a str>, total: i64, most: usize) -> String {
    let named: Vec<&str> = names.take(most).collect();
    let rest = total - named.len() as i64;
    if rest > 0 {
        format!("{} and {rest} more", named.join(", "))
    } else {
        named.join(", ")
    }
}

/// The lag's measures; with no report, the same series without values.
pub fn measures(report: Option<&LagReport>) -> Vec<Measure> {
    let thresholds = report.map(|r| {
        (
            Some(Threshold::Above(r.warn_seconds)),
            Some(Threshold::Above(r.crit_seconds)),
        )
    });
    let (warn, crit) = thresholds.unwrap_or((None, None));
    let mut measures = vec![
        Measure::seconds(
            "lag",
            "lag_seconds",
            "Seconds between now and the newest metric's timestamp (events dated in the future left out).",
            report.and_then(|r| r.lag_seconds),
        )
        .with_thresholds(warn, crit),
        Measure::count(
            "stale_sensors",
            "stale_sensors",
            "Sensors whose newest metric is older than the --stale threshold.",
            report.map(|r| r.stale_sensors),
        )
        .with_thresholds(Some(Threshold::Above(0.0)), None),
        Measure::count(
            "clock_ahead_sensors",
            "clock_ahead_sensors",
            "Sensors with events dated further in the future than --clock-tolerance.",
            report.map(|r| r.clock_ahead_sensors),
        )
        .with_thresholds(Some(Threshold::Above(0.0)), None),
        Measure::seconds(
            "clock_ahead",
            "clock_ahead_seconds",
            "How far the furthest future-dated event is ahead of the database's clock (0 when none).",
            report.map(|r| r.clock_ahead_seconds.unwrap_or(0.0)),
        ),
        Measure::count(
            "sensors",
            "sensors",
            "Sensors with at least one metric.",
            report.map(|r| r.sensors),
        ),
    ];
    for (percentile, label) in [
        ("50", "latency_p50"),
        ("95", "latency_p95"),
        ("99", "latency_p99"),
    ] {
        let value = report.and_then(|r| match percentile {
            "50" => r.latency_seconds.p50,
            "95" => r.latency_seconds.p95,
            _ => r.latency_seconds.p99,
        });
        measures.push(
            Measure::seconds(
                label,
                "latency_seconds",
                "End-to-end latency (created_at - timestamp) of recent events, by percentile.",
                value,
            )
            .with_label("percentile", percentile),
        );
    }
    measures
}

impl LagReport {
    fn summary_section(&self) -> Section {
        let row =
            |what: String, raw_what: &str, value: Cell| vec![Cell::new(what, raw_what), value];
        Section::new(
            "lag",
            vec![Column::new("what", "what"), Column::new("value", "value")],
            vec![
                row(
                    "newest metric timestamp".to_string(),
                    "latest_metric_time",
                    Cell::time(self.latest_metric_time),
                ),
                row(
                    "now".to_string(),
                    "current_time",
                    Cell::time(Some(self.current_time)),
                ),
                row(
                    format!(
                        "lag (warn above {}, crit above {})",
                        human_seconds(self.warn_seconds),
                        human_seconds(self.crit_seconds)
                    ),
                    "lag_seconds",
                    Cell::seconds(self.lag_seconds),
                ),
                row(
                    format!(
                        "sensors silent for {}",
                        human_seconds(self.stale_after_seconds)
                    ),
                    "stale_sensors",
                    Cell::new(
                        format!("{} of {}", self.stale_sensors, self.sensors),
                        self.stale_sensors.to_string(),
                    ),
                ),
                row(
                    format!(
                        "sensors with a clock ahead (more than {})",
                        human_seconds(self.clock_tolerance_seconds)
                    ),
                    "clock_ahead_sensors",
                    Cell::count(self.clock_ahead_sensors),
                ),
                row(
                    format!(
                        "latency sample (newest events of the last {})",
                        human_seconds(self.window_seconds)
                    ),
                    "latency_events",
                    Cell::count(self.latency_events),
                ),
                row(
                    "latency p50".to_string(),
                    "latency_p50_seconds",
                    Cell::seconds(self.latency_seconds.p50),
                ),
                row(
                    "latency p95".to_string(),
                    "latency_p95_seconds",
                    Cell::seconds(self.latency_seconds.p95),
                ),
                row(
                    "latency p99".to_string(),
                    "latency_p99_seconds",
                    Cell::seconds(self.latency_seconds.p99),
                ),
            ],
        )
    }

    fn silent_section(&self) -> Section {
        Section::new(
            "silent sensors, longest silent first",
            vec![
                Column::new("sensor", "sensor_id"),
                Column::new("newest metric", "newest_timestamp"),
                Column::new("silent for", "silent_seconds"),
            ],
            self.stale
                .iter()
                .map(|s| {
                    vec![
                        Cell::text(s.sensor_id.clone()),
                        Cell::time(Some(s.newest_timestamp)),
                        Cell::seconds(Some(s.silent_seconds)),
                    ]
                })
                .collect(),
        )
        .with_not_shown(self.stale_sensors - self.stale.len() as i64)
    }

    fn clock_ahead_section(&self) -> Section {
        Section::new(
            "sensors with a clock ahead, furthest first (their events are left out of the lag)",
            vec![
                Column::new("sensor", "sensor_id"),
                Column::new("ahead by", "ahead_seconds"),
            ],
            self.clock_ahead
                .iter()
                .map(|s| {
                    vec![
                        Cell::text(s.sensor_id.clone()),
                        Cell::seconds(Some(s.ahead_seconds)),
                    ]
                })
                .collect(),
        )
        .with_not_shown(self.clock_ahead_sensors - self.clock_ahead.len() as i64)
    }
}

impl CheckReport for LagReport {
    fn subject(&self) -> super::Subject {
        super::Subject::One(super::Check::Lag)
    }

    fn status(&self) -> Status {
        let Some(lag) = self.lag_seconds else {
            return if self.clock_ahead_sensors > 0 {
                Status::Warning
            } else {
                Status::Unknown
            };
        };
        let by_lag = if lag > self.crit_seconds {
            Status::Critical
        } else if lag > self.warn_seconds {
            Status::Warning
        } else {
            Status::Ok
        };
        let by_sensors = if self.stale_sensors > 0 || self.clock_ahead_sensors > 0 {
            Status::Warning
        } else {
            Status::Ok
        };
        by_lag.max(by_sensors)
    }

    fn summary(&self) -> String {
        let mut parts = Vec::new();
        match self.lag_seconds {
            Some(lag) => parts.push(format!("{} behind", human_seconds(lag))),
            None if self.clock_ahead_sensors > 0 => {
                parts.push("no metrics dated in the past".to_string())
            }
            None => return "no metrics yet".to_string(),
        }
        if self.clock_ahead_sensors > 0 {
            parts.push(format!(
                "sensor clock ahead: {} with events up to {} in the future ({})",
                count_of(self.clock_ahead_sensors, "sensor", "sensors"),
                human_seconds(self.clock_ahead_seconds.unwrap_or_default()),
                named_up_to(
                    self.clock_ahead.iter().map(|s| s.sensor_id.as_str()),
                    self.clock_ahead_sensors,
                    SENSORS_NAMED
                )
            ));
        }
        parts.push(format!(
            "{} of {} sensors silent for {} or more",
            self.stale_sensors,
            self.sensors,
            human_seconds(self.stale_after_seconds)
        ));
        if let Some(p95) = self.latency_seconds.p95 {
            parts.push(format!(
                "latency p95 {} over the newest {} events of the last {}",
                human_seconds(p95),
                self.latency_events,
                human_seconds(self.window_seconds)
            ));
        }
        parts.join("; ")
    }

    fn measures(&self) -> Vec<Measure> {
        measures(Some(self))
    }

    fn sections(&self) -> Vec<Section> {
        vec![
            self.summary_section(),
            self.silent_section(),
            self.clock_ahead_section(),
        ]
    }
}
