//! Is metrics_id_seq past every stored id? After a data-only restore it can be behind max(id):
//! every insert then fails on metrics_pkey (or, partitioned, reuses ids) until it is moved on.

use crate::db::Tx;
use serde::Serialize;

use super::Status;
use super::{Cell, CheckReport, Column, Measure, Section, Threshold};
use crate::db::queries;

#[derive(Debug, Clone, Serialize)]
pub struct SequenceReport {
    /// The sequence metrics.id draws from; `None` when it owns none.
    pub sequence: Option<String>,
    /// What nextval would return.
    pub next_id: Option<i64>,
    pub max_id: Option<i64>,
    pub behind: bool,
}

pub fn run(tx: &mut Tx<'_>) -> crate::error::Result<SequenceReport> {
    let row = tx.row_opt(queries::METRICS_ID_SEQUENCE.sql(), &[])?;
    let (sequence, next_id, max_id) = match row {
        Some(row) => (
            Some(row.get::<_, String>("sequence_name")),
            Some(row.get::<_, i64>("next_id")),
            row.get::<_, Option<i64>>("max_id"),
        ),
        None => (None, None, None),
    };
    let behind = matches!((next_id, max_id), (Some(next), Some(max)) if next <= max);
    Ok(SequenceReport {
        sequence,
        next_id,
        max_id,
        behind,
    })
}

impl CheckReport for SequenceReport {
    fn subject(&self) -> super::Subject {
        super::Subject::One(super::Check::Sequence)
    }

    fn status(&self) -> Status {
        if self.behind {
            Status::Critical
        } else {
            Status::Ok
        }
    }

    fn summary(&self) -> String {
        match (&self.sequence, self.next_id, self.max_id) {
            (Some(sequence), Some(next), Some(max)) if self.behind => format!(
                "{sequence} would hand out id {next} but metrics holds ids up to {max}: inserts \
                 will fail on metrics_pkey; run `metricsctl repair`"
            ),
            (Some(sequence), Some(next), max) => format!(
                "{sequence} hands out id {next} next, past every stored id ({})",
                max.map(|m| format!("max {m}"))
                    .unwrap_or_else(|| "none yet".to_string())
            ),
            _ => "metrics.id owns no sequence".to_string(),
        }
    }

    fn measures(&self) -> Vec<Measure> {
        measures(Some(self))
    }

    fn sections(&self) -> Vec<Section> {
        let id = |v: Option<i64>| match v {
            Some(v) => Cell::count(v),
            None => Cell::new("-", ""),
        };
        vec![Section::new(
            "metrics id sequence",
            vec![
                Column::new("sequence", "sequence"),
                Column::new("next id", "next_id"),
                Column::new("max stored id", "max_id"),
            ],
            vec![vec![
                match &self.sequence {
                    Some(name) => Cell::text(name.clone()),
                    None => Cell::new("-", ""),
                },
                id(self.next_id),
                id(self.max_id),
            ]],
        )]
    }
}

/// The series this check reports (all unknown when it could not run).
pub fn measures(report: Option<&SequenceReport>) -> Vec<Measure> {
    vec![
        Measure::count(
            "sequence_behind",
            "sequence_behind",
            "1 when metrics_id_seq would hand out an id metrics already holds.",
            report.map(|r| i64::from(r.behind)),
        )
        .with_thresholds(None, Some(Threshold::Above(0.0))),
    ]
}
