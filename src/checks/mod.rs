//! The checks an operator runs to trust the pipeline, as reports every output format can render:
//! a status, a one-line summary, numbers (Nagios perfdata, Prometheus gauges) and tables.

pub mod duplicates;
pub mod lag;
pub mod ordering;
pub mod partitions;
pub mod rate;
pub mod sequence;

use serde::Serialize;

use crate::status::Status;

/// A number a check measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// Nagios perfdata label, e.g. `lag`.
    pub label: &'static str,
    /// Prometheus metric name without the `metricsctl_` prefix, e.g. `lag_seconds`.
    pub metric: &'static str,
    /// Prometheus labels, e.g. `quantile="0.95"`.
    pub labels: Vec<(&'static str, String)>,
    pub help: &'static str,
    pub value: f64,
    /// `s` for seconds, empty for counts (Nagios units).
    pub unit: &'static str,
    pub warn: Option<f64>,
    pub crit: Option<f64>,
}

impl Measure {
    pub fn count(
        label: &'static str,
        metric: &'static str,
        help: &'static str,
        value: i64,
    ) -> Measure {
        Measure {
            label,
            metric,
            labels: Vec::new(),
            help,
            value: value as f64,
            unit: "",
            warn: None,
            crit: None,
        }
    }

    pub fn seconds(
        label: &'static str,
        metric: &'static str,
        help: &'static str,
        value: f64,
    ) -> Measure {
        Measure {
            unit: "s",
            value,
            ..Measure::count(label, metric, help, 0)
        }
    }

    pub fn with_thresholds(mut self, warn: Option<f64>, crit: Option<f64>) -> Measure {
        self.warn = warn;
        self.crit = crit;
        self
    }

    pub fn with_label(mut self, name: &'static str, value: impl Into<String>) -> Measure {
        self.labels.push((name, value.into()));
        self
    }
}

/// A table of a report, for people (and CSV, which takes the first).
#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

/// What every check produces. The report itself serialises to the check's JSON body.
pub trait CheckReport: Serialize {
    /// The check's name: `ordering`, `duplicates`, `lag`, `rate`, ...
    fn check(&self) -> &'static str;
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

    pub fn add(&mut self, report: &impl CheckReport) -> anyhow::Result<()> {
        let status = report.status();
        self.checks.push(CheckSummary {
            check: report.check(),
            status,
            exit_code: status.code(),
            summary: report.summary(),
            report: serde_json::to_value(report)?,
        });
        self.measures
            .extend(report.measures().into_iter().map(|m| (report.check(), m)));
        Ok(())
    }
}

impl Default for AllChecks {
    fn default() -> Self {
        AllChecks::new()
    }
}

impl CheckReport for AllChecks {
    fn check(&self) -> &'static str {
        "all"
    }

    fn status(&self) -> Status {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Ok)
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
        vec![Section {
            title: "checks".to_string(),
            columns: vec!["check", "status", "summary"],
            rows: self
                .checks
                .iter()
                .map(|c| vec![c.check.to_string(), c.status.to_string(), c.summary.clone()])
                .collect(),
        }]
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
