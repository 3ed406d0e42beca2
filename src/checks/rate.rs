//! How fast is ingestion flowing? Events per minute (or hour) by ingestion time, every bucket
//! shown: the guard rows' indexed `processed_at`, the same instant as their metrics' `created_at`.

use crate::db::Tx;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Status;
use super::{Cell, CheckReport, Column, Measure, Section, Threshold, count_of};
use crate::db::queries;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Minute,
    Hour,
}

impl Bucket {
    pub fn unit(self) -> &'static str {
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

pub fn run(tx: &mut Tx<'_>, options: &RateOptions) -> crate::error::Result<RateReport> {
    let buckets = match options.by {
        Bucket::Minute => options.minutes.max(1),
        Bucket::Hour => options.minutes.div_ceil(60).max(1),
    } as i32;
    let rows = tx.rows(
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

/// The rate's measures; with no report, the same series without values.
pub fn measures(report: Option<&RateReport>) -> Vec<Measure> {
    let below = |floor: Option<i64>| floor.map(|v| Threshold::Below(v as f64));
    vec![
        Measure::count(
            "events",
            "rate_events",
            "Events ingested (by processed_at, the same instant as created_at) over the whole span.",
            report.map(|r| r.total_events),
        ),
        Measure::number(
            "average_events",
            "rate_average_events",
            "Average events per bucket (minute or hour) over the span.",
            report.map(|r| r.average_per_bucket),
        ),
        Measure::count(
            "last_bucket",
            "rate_last_complete_bucket_events",
            "Events ingested in the newest complete bucket.",
            report.and_then(|r| r.last_complete_bucket_events),
        )
        .with_thresholds(
            report.and_then(|r| below(r.warn_below)),
            report.and_then(|r| below(r.crit_below)),
        ),
    ]
}

impl CheckReport for RateReport {
    fn subject(&self) -> super::Subject {
        super::Subject::One(super::Check::Rate)
    }

    fn status(&self) -> Status {
        let thresholds = self.warn_below.is_some() || self.crit_below.is_some();
        let Some(last) = self.last_complete_bucket_events else {
            // Thresholds that cannot be evaluated are not OK: nobody knows.
            return if thresholds {
                Status::Unknown
            } else {
                Status::Ok
            };
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
        let unit = self.by.unit();
        let summary = format!(
            "{} events in the last {}, {:.1} per {unit} on average, {} in the last complete {unit}",
            self.total_events,
            count_of(self.buckets.len() as i64, unit, &format!("{unit}s")),
            self.average_per_bucket,
            self.last_complete_bucket_events
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".to_string())
        );
        if self.last_complete_bucket_events.is_none()
            && (self.warn_below.is_some() || self.crit_below.is_some())
        {
            format!(
                "{summary}; the thresholds cannot be judged: the span holds no complete {unit} \
                 (only the current one, still filling); widen --minutes"
            )
        } else {
            summary
        }
    }

    fn measures(&self) -> Vec<Measure> {
        measures(Some(self))
    }

    fn sections(&self) -> Vec<Section> {
        let max = self.buckets.iter().map(|b| b.events).max().unwrap_or(0);
        let format = match self.by {
            Bucket::Minute => "%Y-%m-%d %H:%M",
            Bucket::Hour => "%Y-%m-%d %H:00",
        };
        vec![Section::new(
            format!("events per {} (UTC, by ingestion time)", self.by.unit()),
            vec![
                Column::new(self.by.unit(), "bucket_start"),
                Column::new("events", "events"),
                Column::people_only(""),
            ],
            self.buckets
                .iter()
                .map(|b| {
                    vec![
                        Cell::new(b.start.format(format).to_string(), b.start.to_rfc3339()),
                        Cell::count(b.events),
                        Cell::text(bar(b.events, max, 40)),
                    ]
                })
                .collect(),
        )]
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
