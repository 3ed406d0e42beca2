//! Is each sensor's data in order? In delivery order — Kafka's (partition, offset) where the guard
//! recorded it, else `metrics.id` — every event whose timestamp is earlier than its predecessor's
//! is a violation. A sensor whose events came through several Kafka partitions is a warning:
//! Kafka orders events only within a partition.

use chrono::{DateTime, Utc};
use postgres::Client;
use serde::Serialize;

use super::{CheckReport, Measure, Section, count_of, human_seconds};
use crate::queries;
use crate::status::Status;

#[derive(Debug, Clone)]
pub struct OrderingOptions {
    pub sensor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Sample rows shown.
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderingReport {
    pub sensor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub sensors_checked: i64,
    pub events_checked: i64,
    pub out_of_order_events: i64,
    pub affected_sensors: i64,
    pub multi_partition_sensors: i64,
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

fn since_text(since: Option<DateTime<Utc>>) -> String {
    since
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| "-infinity".to_string())
}

pub fn run(
    client: &mut Client,
    options: &OrderingOptions,
) -> Result<OrderingReport, postgres::Error> {
    match &options.sensor {
        Some(sensor) => run_for_sensor(client, sensor, options),
        None => run_for_all(client, options),
    }
}

fn run_for_all(
    client: &mut Client,
    options: &OrderingOptions,
) -> Result<OrderingReport, postgres::Error> {
    let rows = client.query(
        queries::ORDERING_BY_SENSOR.sql(),
        &[&since_text(options.since)],
    )?;
    let mut report = OrderingReport {
        sensor: None,
        since: options.since,
        sensors_checked: rows.len() as i64,
        events_checked: 0,
        out_of_order_events: 0,
        affected_sensors: 0,
        multi_partition_sensors: 0,
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
    for (sensor, worst) in flagged.into_iter().take(options.limit as usize) {
        report.sensors.push(sensor);
        report.violations.extend(worst);
    }
    Ok(report)
}

fn run_for_sensor(
    client: &mut Client,
    sensor: &str,
    options: &OrderingOptions,
) -> Result<OrderingReport, postgres::Error> {
    let limit = options.limit as i32;
    let rows = client.query(
        queries::ORDERING_FOR_SENSOR.sql(),
        &[&sensor, &since_text(options.since), &limit],
    )?;
    let first = rows.first().expect("the totals row is always there");
    let events: i64 = first.get("events");
    let kafka_partitions: i64 = first.get("kafka_partitions");
    let out_of_order: i64 = first.get("out_of_order");
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
        sensors_checked: i64::from(events > 0),
        events_checked: events,
        out_of_order_events: out_of_order,
        affected_sensors: i64::from(out_of_order > 0),
        multi_partition_sensors: i64::from(kafka_partitions > 1),
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
    fn check(&self) -> &'static str {
        "ordering"
    }

    fn status(&self) -> Status {
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
        if self.multi_partition_sensors > 0 {
            parts.push(format!(
                "{} on several Kafka partitions, which Kafka does not order",
                count_of(self.multi_partition_sensors, "sensor", "sensors")
            ));
        }
        parts.join("; ")
    }

    fn measures(&self) -> Vec<Measure> {
        vec![
            Measure::count(
                "out_of_order_events",
                "ordering_out_of_order_events",
                "Events whose timestamp is earlier than their predecessor's in delivery order.",
                self.out_of_order_events,
            )
            .with_thresholds(None, Some(0.0)),
            Measure::count(
                "affected_sensors",
                "ordering_affected_sensors",
                "Sensors with at least one out-of-order event.",
                self.affected_sensors,
            ),
            Measure::count(
                "multi_partition_sensors",
                "ordering_multi_partition_sensors",
                "Sensors whose events arrived on more than one Kafka partition.",
                self.multi_partition_sensors,
            )
            .with_thresholds(Some(0.0), None),
            Measure::count(
                "events_checked",
                "ordering_events_checked",
                "Events the ordering check looked at.",
                self.events_checked,
            ),
        ]
    }

    fn sections(&self) -> Vec<Section> {
        let mut sections = Vec::new();
        if self.sensor.is_none() {
            sections.push(Section {
                title: "sensors with out-of-order events or several Kafka partitions".to_string(),
                columns: vec![
                    "sensor",
                    "events",
                    "kafka partitions",
                    "out of order",
                    "worst regression",
                ],
                rows: self
                    .sensors
                    .iter()
                    .map(|s| {
                        vec![
                            s.sensor_id.clone(),
                            s.events.to_string(),
                            s.kafka_partitions.to_string(),
                            s.out_of_order_events.to_string(),
                            s.worst_regression_seconds
                                .map(human_seconds)
                                .unwrap_or_else(|| "-".to_string()),
                        ]
                    })
                    .collect(),
            });
        }
        sections.push(Section {
            title: match &self.sensor {
                Some(sensor) => format!("out-of-order events of {sensor}, worst first"),
                None => "worst out-of-order event per sensor".to_string(),
            },
            columns: vec![
                "sensor",
                "event",
                "previous event",
                "timestamp",
                "previous timestamp",
                "back by",
            ],
            rows: self
                .violations
                .iter()
                .map(|v| {
                    vec![
                        v.sensor_id.clone(),
                        v.event_id.clone(),
                        v.previous_event_id.clone(),
                        v.timestamp.to_rfc3339(),
                        v.previous_timestamp.to_rfc3339(),
                        human_seconds(v.regression_seconds),
                    ]
                })
                .collect(),
        });
        sections
    }
}
