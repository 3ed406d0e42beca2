//! Is each sensor's data in order? In delivery order — Kafka's (partition, offset) where the guard
//! recorded it, else `metrics.id` — every event whose timestamp is earlier than its predecessor's
//! is a violation. A sensor whose events came through several Kafka partitions is a warning:
//! Kafka orders events only within a partition.

use crate::db::Tx;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Status;
use super::{Cell, CheckReport, Column, Measure, Section, Threshold, count_of, human_seconds};
use crate::db::queries;

#[derive(Debug, Clone)]
pub struct OrderingOptions {
    pub sensor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Only events ingested (created_at) from then on.
    pub ingested_since: Option<DateTime<Utc>>,
    /// Sample rows shown.
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderingReport {
    pub sensor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub ingested_since: Option<DateTime<Utc>>,
    pub sensors_checked: i64,
    pub events_checked: i64,
    pub out_of_order_events: i64,
    /// Of those, events without Kafka coordinates: written by a replay or backfill, not
    /// delivered by Kafka (see `--ingested-since`).
    pub out_of_order_without_kafka: i64,
    pub affected_sensors: i64,
    pub multi_partition_sensors: i64,
    /// Sensors with out-of-order events or several Kafka partitions (`sensors` lists at most
    /// `--limit` of them).
    pub flagged_sensors: i64,
    pub worst_regression_seconds: Option<f64>,
    /// Sensors with out-of-order events or several Kafka partitions, most violations first.
    pub sensors: Vec<SensorOrdering>,
    /// Out-of-order events: with `--sensor` the worst of that sensor, else each sensor's worst.
    pub violations: Vec<OrderingViolation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SensorOrdering {
    pub sensor_id: String,
    pub events: i64,
    pub kafka_partitions: i64,
    pub out_of_order_events: i64,
    pub worst_regression_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderingViolation {
    pub sensor_id: String,
    pub event_id: String,
    pub previous_event_id: String,
    pub timestamp: DateTime<Utc>,
    pub previous_timestamp: DateTime<Utc>,
    /// How far back in time the event goes, compared with its predecessor.
    pub regression_seconds: f64,
}

pub fn run(tx: &mut Tx<'_>, options: &OrderingOptions) -> crate::error::Result<OrderingReport> {
    match &options.sensor {
        Some(sensor) => run_for_sensor(tx, sensor, options),
        None => run_for_all(tx, options),
    }
}

fn run_for_all(tx: &mut Tx<'_>, options: &OrderingOptions) -> crate::error::Result<OrderingReport> {
    let rows = tx.rows(
        queries::ORDERING_BY_SENSOR.sql(),
        &[
            // Timestamps, not text: constants the planner prunes partitions by.
            &options.since,
            &options.ingested_since,
        ],
    )?;
    let mut report = OrderingReport {
        sensor: None,
        since: options.since,
        ingested_since: options.ingested_since,
        sensors_checked: rows.len() as i64,
        events_checked: 0,
        out_of_order_events: 0,
        out_of_order_without_kafka: 0,
        affected_sensors: 0,
        multi_partition_sensors: 0,
        flagged_sensors: 0,
        worst_regression_seconds: None,
        sensors: Vec::new(),
        violations: Vec::new(),
    };
    let mut flagged = Vec::new();
    for row in &rows {
        let sensor = SensorOrdering {
            sensor_id: row.get("sensor_id"),
            events: row.get("events"),
            kafka_partitions: row.get("kafka_partitions"),
            out_of_order_events: row.get("out_of_order"),
            worst_regression_seconds: row.get("worst_regression_seconds"),
        };
        report.events_checked += sensor.events;
        report.out_of_order_events += sensor.out_of_order_events;
        report.out_of_order_without_kafka += row.get::<_, i64>("out_of_order_without_kafka");
        if sensor.out_of_order_events > 0 {
            report.affected_sensors += 1;
            report.worst_regression_seconds = max_option(
                report.worst_regression_seconds,
                sensor.worst_regression_seconds,
            );
        }
        if sensor.kafka_partitions > 1 {
            report.multi_partition_sensors += 1;
        }
        if sensor.out_of_order_events > 0 || sensor.kafka_partitions > 1 {
            let worst = row
                .get::<_, Option<String>>("worst_event_id")
                .map(|event_id| OrderingViolation {
                    sensor_id: sensor.sensor_id.clone(),
                    event_id,
                    previous_event_id: row.get("worst_previous_event_id"),
                    timestamp: row.get("worst_timestamp"),
                    previous_timestamp: row.get("worst_previous_timestamp"),
                    regression_seconds: sensor.worst_regression_seconds.unwrap_or_default(),
                });
            flagged.push((sensor, worst));
        }
    }
    flagged.sort_by(|a, b| {
        b.0.out_of_order_events
            .cmp(&a.0.out_of_order_events)
            .then(b.0.kafka_partitions.cmp(&a.0.kafka_partitions))
            .then(a.0.sensor_id.cmp(&b.0.sensor_id))
    });
    report.flagged_sensors = flagged.len() as i64;
    for (sensor, worst) in flagged.into_iter().take(options.limit as usize) {
        report.sensors.push(sensor);
        report.violations.extend(worst);
    }
    Ok(report)
}

fn run_for_sensor(
    tx: &mut Tx<'_>,
    sensor: &str,
    options: &OrderingOptions,
) -> crate::error::Result<OrderingReport> {
    let rows = tx.rows(
        queries::ORDERING_FOR_SENSOR.sql(),
        &[
            &sensor,
            // Timestamps, not text: constants the planner prunes partitions by.
            &options.since,
            &options.ingested_since,
            &i64::from(options.limit),
        ],
    )?;
    let first = rows.first().expect("the totals row is always there");
    let events: i64 = first.get("events");
    let kafka_partitions: i64 = first.get("kafka_partitions");
    let out_of_order: i64 = first.get("out_of_order");
    let out_of_order_without_kafka: i64 = first.get("out_of_order_without_kafka");
    let violations: Vec<OrderingViolation> = rows
        .iter()
        .filter_map(|row| {
            Some(OrderingViolation {
                sensor_id: sensor.to_string(),
                event_id: row.get::<_, Option<String>>("event_id")?,
                previous_event_id: row.get("previous_event_id"),
                timestamp: row.get("timestamp"),
                previous_timestamp: row.get("previous_timestamp"),
                regression_seconds: row.get("regression_seconds"),
            })
        })
        .collect();
    let worst = violations.first().map(|v| v.regression_seconds);
    Ok(OrderingReport {
        sensor: Some(sensor.to_string()),
        since: options.since,
        ingested_since: options.ingested_since,
        sensors_checked: i64::from(events > 0),
        events_checked: events,
        out_of_order_events: out_of_order,
        out_of_order_without_kafka,
        affected_sensors: i64::from(out_of_order > 0),
        multi_partition_sensors: i64::from(kafka_partitions > 1),
        flagged_sensors: i64::from(out_of_order > 0 || kafka_partitions > 1),
        worst_regression_seconds: worst,
        sensors: if out_of_order > 0 || kafka_partitions > 1 {
            vec![SensorOrdering {
                sensor_id: sensor.to_string(),
                events,
                kafka_partitions,
                out_of_order_events: out_of_order,
                worst_regression_seconds: worst,
            }]
        } else {
            Vec::new()
        },
        violations,
    })
}

fn max_option(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl CheckReport for OrderingReport {
    fn subject(&self) -> super::Subject {
        super::Subject::One(super::Check::Ordering)
    }

    fn status(&self) -> Status {
        if self.sensor.is_some() && self.events_checked == 0 {
            // Nothing to judge: a mistyped id must not read as "in order".
            return Status::Unknown;
        }
        if self.out_of_order_events > 0 {
            Status::Critical
        } else if self.multi_partition_sensors > 0 {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    fn summary(&self) -> String {
        let mut parts = Vec::new();
        let worst = human_seconds(self.worst_regression_seconds.unwrap_or_default());
        let out_of_order = count_of(
            self.out_of_order_events,
            "out-of-order event",
            "out-of-order events",
        );
        match (&self.sensor, self.out_of_order_events > 0) {
            (Some(sensor), true) => parts.push(format!(
                "{out_of_order} for sensor {sensor} (worst {worst} back)"
            )),
            (Some(sensor), false) if self.events_checked == 0 => {
                return format!(
                    "sensor {sensor} has no events{}: nothing to check (is the sensor id right?)",
                    self.window_text()
                );
            }
            (Some(sensor), false) => parts.push(format!(
                "{} of sensor {sensor} in delivery order",
                count_of(self.events_checked, "event", "events")
            )),
            (None, true) => parts.push(format!(
                "{out_of_order} in {} of {} (worst {worst} back)",
                self.affected_sensors,
                count_of(self.sensors_checked, "sensor", "sensors")
            )),
            (None, false) => parts.push(format!(
                "{} of {} in delivery order",
                count_of(self.events_checked, "event", "events"),
                count_of(self.sensors_checked, "sensor", "sensors")
            )),
        }
        if self.out_of_order_without_kafka > 0 {
            parts.push(format!(
                "{} of the late events carry no Kafka coordinates (written by a replay or \
                 backfill, not delivered by Kafka; after a deliberate backfill, judge only later \
                 ingestion with --ingested-since)",
                self.out_of_order_without_kafka
            ));
        }
        if self.multi_partition_sensors > 0 {
            parts.push(format!(
                "{} on several Kafka partitions, which Kafka does not order",
                count_of(self.multi_partition_sensors, "sensor", "sensors")
            ));
        }
        parts.join("; ")
    }

    fn measures(&self) -> Vec<Measure> {
        measures(Some(self))
    }

    fn sections(&self) -> Vec<Section> {
        let mut sections = Vec::new();
        if self.sensor.is_none() {
            let flagged = self.sensors_flagged();
            sections.push(
                Section::new(
                    "sensors with out-of-order events or several Kafka partitions",
                    vec![
                        Column::new("sensor", "sensor_id"),
                        Column::new("events", "events"),
                        Column::new("kafka partitions", "kafka_partitions"),
                        Column::new("out of order", "out_of_order_events"),
                        Column::new("worst regression", "worst_regression_seconds"),
                    ],
                    self.sensors
                        .iter()
                        .map(|s| {
                            vec![
                                Cell::text(s.sensor_id.clone()),
                                Cell::count(s.events),
                                Cell::count(s.kafka_partitions),
                                Cell::count(s.out_of_order_events),
                                Cell::seconds(s.worst_regression_seconds),
                            ]
                        })
                        .collect(),
                )
                .with_not_shown(flagged - self.sensors.len() as i64),
            );
        }
        let violations_not_shown = match &self.sensor {
            Some(_) => self.out_of_order_events - self.violations.len() as i64,
            None => self.affected_sensors - self.violations.len() as i64,
        };
        sections.push(
            Section::new(
                match &self.sensor {
                    Some(sensor) => format!("out-of-order events of {sensor}, worst first"),
                    None => "worst out-of-order event per sensor".to_string(),
                },
                vec![
                    Column::new("sensor", "sensor_id"),
                    Column::new("event", "event_id"),
                    Column::new("previous event", "previous_event_id"),
                    Column::new("timestamp", "timestamp"),
                    Column::new("previous timestamp", "previous_timestamp"),
                    Column::new("back by", "regression_seconds"),
                ],
                self.violations
                    .iter()
                    .map(|v| {
                        vec![
                            Cell::text(v.sensor_id.clone()),
                            Cell::text(v.event_id.clone()),
                            Cell::text(v.previous_event_id.clone()),
                            Cell::time(Some(v.timestamp)),
                            Cell::time(Some(v.previous_timestamp)),
                            Cell::seconds(Some(v.regression_seconds)),
                        ]
                    })
                    .collect(),
            )
            .with_not_shown(violations_not_shown),
        );
        sections
    }
}

impl OrderingReport {
    /// Sensors with out-of-order events or on several Kafka partitions, listed or not.
    fn sensors_flagged(&self) -> i64 {
        self.flagged_sensors
    }

    fn window_text(&self) -> String {
        let mut text = String::new();
        if let Some(since) = self.since {
            text.push_str(&format!(" dated since {}", since.to_rfc3339()));
        }
        if let Some(since) = self.ingested_since {
            text.push_str(&format!(" ingested since {}", since.to_rfc3339()));
        }
        text
    }
}

/// The ordering check's measures; with no report, the same series without values.
pub fn measures(report: Option<&OrderingReport>) -> Vec<Measure> {
    let any = Some(Threshold::Above(0.0));
    vec![
        Measure::count(
            "out_of_order_events",
            "ordering_out_of_order_events",
            "Events whose timestamp is earlier than their predecessor's in delivery order.",
            report.map(|r| r.out_of_order_events),
        )
        .with_thresholds(None, any),
        Measure::count(
            "affected_sensors",
            "ordering_affected_sensors",
            "Sensors with at least one out-of-order event.",
            report.map(|r| r.affected_sensors),
        ),
        Measure::count(
            "multi_partition_sensors",
            "ordering_multi_partition_sensors",
            "Sensors whose events arrived on more than one Kafka partition.",
            report.map(|r| r.multi_partition_sensors),
        )
        .with_thresholds(any, None),
        Measure::count(
            "events_checked",
            "ordering_events_checked",
            "Events the ordering check looked at.",
            report.map(|r| r.events_checked),
        ),
    ]
}
