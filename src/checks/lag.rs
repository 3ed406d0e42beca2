//! How far behind is ingestion? The guide's lag query, silent sensors, end-to-end latency.

use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::Client;
use serde::Serialize;

use super::{CheckReport, Measure, Section, human_seconds};
use crate::queries;
use crate::status::Status;

#[derive(Debug, Clone)]
pub struct LagOptions {
    /// A sensor whose newest metric is older than this is silent.
    pub stale: Duration,
    /// Latency percentiles cover the newest `latency_sample` events whose timestamp is within this.
    pub window: Duration,
    pub latency_sample: u32,
    pub warn: Duration,
    pub crit: Duration,
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct LagReport {
    /// The guide's query: newest event timestamp, now, and the difference.
    pub latest_metric_time: Option<DateTime<Utc>>,
    pub current_time: DateTime<Utc>,
    pub lag_seconds: Option<f64>,
    pub warn_seconds: f64,
    pub crit_seconds: f64,
    pub sensors: i64,
    pub stale_after_seconds: f64,
    pub stale_sensors: i64,
    pub window_seconds: f64,
    /// The events the percentiles were computed over: the newest of the window, at most
    /// `--latency-sample`.
    pub latency_events: i64,
    pub latency_seconds: LatencyPercentiles,
    /// Silent sensors, longest silent first.
    pub stale: Vec<StaleSensor>,
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

pub fn run(client: &mut Client, options: &LagOptions) -> Result<LagReport, postgres::Error> {
    let rows = client.query(
        queries::LAG.sql(),
        &[
            &options.stale.as_secs_f64(),
            &options.window.as_secs_f64(),
            &(options.latency_sample as i32),
            &(options.limit as i32),
        ],
    )?;
    let first = rows.first().expect("the totals row is always there");
    let percentiles = |column: &str| -> Option<f64> { first.get(column) };
    Ok(LagReport {
        latest_metric_time: first.get("latest_metric_time"),
        current_time: first.get("current_time"),
        lag_seconds: first.get::<_, Option<f64>>("lag_seconds"),
        warn_seconds: options.warn.as_secs_f64(),
        crit_seconds: options.crit.as_secs_f64(),
        sensors: first.get("sensors"),
        stale_after_seconds: options.stale.as_secs_f64(),
        stale_sensors: first.get("stale_sensors"),
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
    })
}

impl CheckReport for LagReport {
    fn check(&self) -> &'static str {
        "lag"
    }

    fn status(&self) -> Status {
        let Some(lag) = self.lag_seconds else {
            return Status::Unknown;
        };
        let by_lag = if lag >= self.crit_seconds {
            Status::Critical
        } else if lag >= self.warn_seconds {
            Status::Warning
        } else {
            Status::Ok
        };
        let by_silence = if self.stale_sensors > 0 {
            Status::Warning
        } else {
            Status::Ok
        };
        by_lag.max(by_silence)
    }

    fn summary(&self) -> String {
        let Some(lag) = self.lag_seconds else {
            return "no metrics yet".to_string();
        };
        let mut parts = vec![format!("{} behind", human_seconds(lag))];
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
        let mut measures = Vec::new();
        if let Some(lag) = self.lag_seconds {
            measures.push(
                Measure::seconds(
                    "lag",
                    "lag_seconds",
                    "Seconds between now and the newest metric's timestamp.",
                    lag,
                )
                .with_thresholds(Some(self.warn_seconds), Some(self.crit_seconds)),
            );
        }
        measures.push(
            Measure::count(
                "stale_sensors",
                "stale_sensors",
                "Sensors whose newest metric is older than the --stale threshold.",
                self.stale_sensors,
            )
            .with_thresholds(Some(0.0), None),
        );
        measures.push(Measure::count(
            "sensors",
            "sensors",
            "Sensors with at least one metric.",
            self.sensors,
        ));
        for (quantile, value) in [
            ("0.5", self.latency_seconds.p50),
            ("0.95", self.latency_seconds.p95),
            ("0.99", self.latency_seconds.p99),
        ] {
            if let Some(value) = value {
                let label = match quantile {
                    "0.5" => "latency_p50",
                    "0.95" => "latency_p95",
                    _ => "latency_p99",
                };
                measures.push(
                    Measure::seconds(
                        label,
                        "latency_seconds",
                        "End-to-end latency (created_at - timestamp) of recent events.",
                        value,
                    )
                    .with_label("quantile", quantile),
                );
            }
        }
        measures
    }

    fn sections(&self) -> Vec<Section> {
        let show = |v: Option<f64>| v.map(human_seconds).unwrap_or_else(|| "-".to_string());
        vec![
            Section {
                title: "lag".to_string(),
                columns: vec!["what", "value"],
                rows: vec![
                    vec![
                        "newest metric timestamp".to_string(),
                        self.latest_metric_time
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| "-".to_string()),
                    ],
                    vec!["now".to_string(), self.current_time.to_rfc3339()],
                    vec![
                        format!(
                            "lag (warn {}, crit {})",
                            human_seconds(self.warn_seconds),
                            human_seconds(self.crit_seconds)
                        ),
                        show(self.lag_seconds),
                    ],
                    vec![
                        format!(
                            "sensors silent for {}",
                            human_seconds(self.stale_after_seconds)
                        ),
                        format!("{} of {}", self.stale_sensors, self.sensors),
                    ],
                    vec![
                        format!(
                            "latency sample (newest events of the last {})",
                            human_seconds(self.window_seconds)
                        ),
                        self.latency_events.to_string(),
                    ],
                    vec!["latency p50".to_string(), show(self.latency_seconds.p50)],
                    vec!["latency p95".to_string(), show(self.latency_seconds.p95)],
                    vec!["latency p99".to_string(), show(self.latency_seconds.p99)],
                ],
            },
            Section {
                title: "silent sensors, longest silent first".to_string(),
                columns: vec!["sensor", "newest metric", "silent for"],
                rows: self
                    .stale
                    .iter()
                    .map(|s| {
                        vec![
                            s.sensor_id.clone(),
                            s.newest_timestamp.to_rfc3339(),
                            human_seconds(s.silent_seconds),
                        ]
                    })
                    .collect(),
            },
        ]
    }
}
