//! `migrate status` as a check: the monitoring formats read it like any other.

use super::{Cell, CheckReport, Column, Measure, Section, Status, Threshold, count_of};
use crate::schema::migrations::SchemaStatus;

impl CheckReport for SchemaStatus {
    fn subject(&self) -> super::Subject {
        super::Subject::One(super::Check::Migrations)
    }

    /// OK when up to date, WARNING with pending migrations, CRITICAL on drift.
    fn status(&self) -> Status {
        if self.drifted().next().is_some() {
            Status::Critical
        } else if self.pending().next().is_some() {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    fn summary(&self) -> String {
        let version = self
            .current_version()
            .map(|v| format!("schema at version {v}"))
            .unwrap_or_else(|| "no migration applied".to_string());
        let pending = self.pending().count() as i64;
        let drifted = self.drifted().count() as i64;
        match (pending, drifted) {
            (0, 0) => format!("{version}, up to date"),
            (pending, 0) => format!(
                "{version}; {} pending: run `metricsctl migrate`",
                count_of(pending, "migration", "migrations")
            ),
            (_, drifted) => format!(
                "{version}; {} drifted from this binary's (see `metricsctl migrate`)",
                count_of(drifted, "migration has", "migrations have")
            ),
        }
    }

    fn measures(&self) -> Vec<Measure> {
        measures(Some(self))
    }

    fn sections(&self) -> Vec<Section> {
        vec![Section::new(
            "migrations",
            vec![
                Column::new("version", "version"),
                Column::new("name", "name"),
                Column::new("state", "state"),
                Column::new("applied_on", "applied_on"),
            ],
            self.migrations
                .iter()
                .map(|m| {
                    let state = serde_json::to_value(m.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    vec![
                        Cell::count(i64::from(m.version)),
                        Cell::text(m.name.clone()),
                        Cell::new(m.state.describe(), state),
                        match m.applied_on.as_deref() {
                            Some(at) => Cell::new(crate::text::timestamp_for_people(at), at),
                            None => Cell::new("-", ""),
                        },
                    ]
                })
                .collect(),
        )]
    }
}

/// The measures of `migrate status`; with no status, the same series without values.
pub fn measures(status: Option<&SchemaStatus>) -> Vec<Measure> {
    vec![
        Measure::count(
            "pending",
            "migrations_pending",
            "Migrations of this binary not yet applied.",
            status.map(|s| s.pending().count() as i64),
        )
        .with_thresholds(Some(Threshold::Above(0.0)), None),
        Measure::count(
            "drifted",
            "migrations_drifted",
            "Applied migrations that differ from this binary's, or that it does not know.",
            status.map(|s| s.drifted().count() as i64),
        )
        .with_thresholds(None, Some(Threshold::Above(0.0))),
        Measure::count(
            "schema_version",
            "schema_version",
            "The highest applied migration version (0: none).",
            status.map(|s| i64::from(s.current_version().unwrap_or(0))),
        ),
    ]
}
