//! How fast is ingestion flowing? Events per minute (or hour) by `created_at`, every bucket shown.

use chrono::{DateTime, Utc};
use postgres::Client;
use serde::Serialize;

use super::{CheckReport, Measure, Section};
use crate::queries;
use crate::status::Status;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Minute,
    Hour,
}

impl Bucket {
    fn unit(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
        }
    }

    fn seconds(self) -> f64 {
        match self {
            Bucket::Minute => 60.0,
            Bucket::Hour => 3600.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RateOptions {
    /// How far back, in minutes.
    pub minutes: u32,
    pub by: Bucket,
    /// Thresholds on the last complete bucket: fewer events than this warns / is critical.
    pub warn_below: Option<i64>,
    pub crit_below: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RateReport {
    pub by: Bucket,
    pub buckets: Vec<RateBucket>,
    pub total_events: i64,
    pub average_per_bucket: f64,
    /// The newest bucket that is over (the current one is still filling).
    pub last_complete_bucket_events: Option<i64>,
    pub warn_below: Option<i64>,
    pub crit_below: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RateBucket {
    pub start: DateTime<Utc>,
    pub events: i64,
}

pub fn run(client: &mut Client, options: &RateOptions) -> Result<RateReport, postgres::Error> {
    let buckets = match options.by {
        Bucket::Minute => options.minutes.max(1),
        Bucket::Hour => options.minutes.div_ceil(60).max(1),
    } as i32;
    let rows = client.query(
        queries::RATE.sql(),
        &[&options.by.unit(), &buckets, &options.by.seconds()],
    )?;
    let buckets: Vec<RateBucket> = rows
        .iter()
        .map(|row| RateBucket {
            start: row.get("bucket"),
            events: row.get("events"),
        })
        .collect();
    let total_events = buckets.iter().map(|b| b.events).sum();
    let average_per_bucket = if buckets.is_empty() {
        0.0
    } else {
        total_events as f64 / buckets.len() as f64
    };
    let last_complete_bucket_events = buckets.len().checked_sub(2).map(|i| buckets[i].events);
    Ok(RateReport {
        by: options.by,
        buckets,
        total_events,
        average_per_bucket,
        last_complete_bucket_events,
        warn_below: options.warn_below,
        crit_below: options.crit_below,
    })
}

/// A bar of `width` cells for `value` out of `max`, in eighths of a cell.
pub fn bar(value: i64, max: i64, width: usize) -> String {
    if max <= 0 || value <= 0 {
        return String::new();
    }
    let eighths = ((value as f64 / max as f64) * (width * 8) as f64).round() as usize;
    let mut bar = "█".repeat(eighths / 8);
    const PARTIAL: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    bar.push_str(PARTIAL[eighths % 8]);
    if bar.is_empty() {
        bar.push('▏');
    }
    bar
}

impl CheckReport for RateReport {
    fn check(&self) -> &'static str {
        "rate"
    }

    fn status(&self) -> Status {
        let Some(last) = self.last_complete_bucket_events else {
            return Status::Ok;
        };
        if self.crit_below.is_some_and(|floor| last < floor) {
            Status::Critical
        } else if self.warn_below.is_some_and(|floor| last < floor) {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    fn summary(&self) -> String {
        let unit = match self.by {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
        };
        format!(
            "{} events in the last {} {unit}s, {:.1} per {unit} on average, {} in the last complete {unit}",
            self.total_events,
            self.buckets.len(),
            self.average_per_bucket,
            self.last_complete_bucket_events
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".to_string())
        )
    }

    fn measures(&self) -> Vec<Measure> {
        let mut measures = vec![
            Measure::count(
                "events",
                "rate_events",
                "Events ingested (by created_at) over the whole span.",
                self.total_events,
            ),
            Measure {
                value: self.average_per_bucket,
                ..Measure::count(
                    "average_per_bucket",
                    "rate_average_events_per_bucket",
                    "Average events per bucket over the span.",
                    0,
                )
            },
        ];
        if let Some(last) = self.last_complete_bucket_events {
            measures.push(
                Measure::count(
                    "last_bucket",
                    "rate_last_complete_bucket_events",
                    "Events ingested in the newest complete bucket.",
                    last,
                )
                .with_thresholds(
                    self.warn_below.map(|v| v as f64),
                    self.crit_below.map(|v| v as f64),
                ),
            );
        }
        measures
    }

    fn sections(&self) -> Vec<Section> {
        let max = self.buckets.iter().map(|b| b.events).max().unwrap_or(0);
        let format = match self.by {
            Bucket::Minute => "%Y-%m-%d %H:%M",
            Bucket::Hour => "%Y-%m-%d %H:00",
        };
        vec![Section {
            title: format!("events per {} (UTC, by created_at)", self.by.unit()),
            columns: vec![self.by.unit(), "events", ""],
            rows: self
                .buckets
                .iter()
                .map(|b| {
                    vec![
                        b.start.format(format).to_string(),
                        b.events.to_string(),
                        bar(b.events, max, 40),
                    ]
                })
                .collect(),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_bucket() {
        assert_eq!(bar(0, 10, 40), "");
        assert_eq!(bar(10, 10, 40).chars().count(), 40);
        assert_eq!(bar(5, 10, 40).chars().count(), 20);
        assert_eq!(bar(1, 1000, 40), "▏", "a non-zero bucket always shows");
    }
}
