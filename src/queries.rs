//! The SQL metricsctl runs, compiled in from `queries/`.
//!
//! The files are written for psql: parameters appear as psql variables (`:'sensor_id'`), so an
//! operator can run `psql -v sensor_id=sensor_123 -f queries/sensor_events_by_timestamp.sql`.
//! At first use each `:'name'` becomes a bind parameter `$n`, so values are never spliced in.

use std::sync::OnceLock;

pub struct Query {
    /// The file under `queries/`.
    pub file: &'static str,
    /// The text as psql runs it.
    pub psql_text: &'static str,
    /// The psql variables, in bind-parameter order.
    pub params: &'static [&'static str],
    bound: OnceLock<String>,
}

impl Query {
    /// The text with `$1, $2, ...` in place of the psql variables.
    pub fn sql(&self) -> &str {
        self.bound
            .get_or_init(|| bind_parameters(self.psql_text, self.params))
    }
}

macro_rules! query {
    ($(#[$doc:meta])* $name:ident = $file:literal, params = $params:expr) => {
        $(#[$doc])*
        pub static $name: Query = Query {
            file: $file,
            psql_text: include_str!(concat!("../queries/", $file)),
            params: $params,
            bound: OnceLock::new(),
        };
    };
    ($(#[$doc:meta])* $name:ident = $file:literal $(, $param:literal)*) => {
        query!($(#[$doc])* $name = $file, params = &[$($param),*]);
    };
}

/// The columns of an event batch, as the two ingest statements take them.
const INGEST_PARAMS: &[&str] = &[
    "event_ids",
    "sensor_ids",
    "timestamps",
    "values",
    "kafka_partitions",
    "kafka_offsets",
    "delivery_order",
];

query!(
    /// The seed's per-sensor ordering query.
    SENSOR_EVENTS_BY_TIMESTAMP = "sensor_events_by_timestamp.sql", "sensor_id"
);
query!(
    /// The seed's idempotency query: total vs distinct event ids in processed_events.
    PROCESSED_EVENTS_UNIQUENESS = "processed_events_uniqueness.sql"
);
query!(
    /// The seed's duplicate-metrics query.
    DUPLICATE_METRIC_EVENT_IDS = "duplicate_metric_event_ids.sql"
);
query!(
    /// The seed's ingestion-rate query.
    INGESTION_RATE_PER_MINUTE = "ingestion_rate_per_minute.sql"
);
query!(
    /// The seed's consumer-lag query.
    CONSUMER_LAG = "consumer_lag.sql"
);
query!(RELATION_EXISTS = "relation_exists.sql", "relation");
query!(MIGRATION_HISTORY = "migration_history.sql");
query!(ADVISORY_LOCK_TRY = "advisory_lock_try.sql", "lock_key");
query!(
    ADVISORY_LOCK_HOLDER = "advisory_lock_holder.sql",
    "lock_key"
);
query!(SET_LOCK_TIMEOUT = "set_lock_timeout.sql", "milliseconds");
query!(
    /// The idempotent insert path for one batch.
    INGEST_BATCH = "ingest_batch.sql",
    params = INGEST_PARAMS
);
query!(
    /// The same, skipping metrics that exist without their guard row.
    INGEST_BATCH_TOLERANT = "ingest_batch_tolerant.sql",
    params = INGEST_PARAMS
);
query!(
    PROCESSED_EVENT_IDS_PRESENT = "processed_event_ids_present.sql",
    "event_ids"
);
query!(
    /// The ordering check over every sensor.
    ORDERING_BY_SENSOR = "ordering_by_sensor.sql",
    "since"
);
query!(
    /// The ordering check for one sensor, from its indexes.
    ORDERING_FOR_SENSOR = "ordering_for_sensor.sql",
    "sensor_id",
    "since",
    "limit"
);
query!(DUPLICATES = "duplicates.sql", "limit");
query!(
    LAG = "lag.sql",
    "stale_seconds",
    "window_seconds",
    "latency_sample",
    "limit"
);
query!(RATE = "rate.sql", "unit", "buckets", "step_seconds");

/// Every compiled-in query, so tests can check them all.
pub fn all() -> Vec<&'static Query> {
    vec![
        &SENSOR_EVENTS_BY_TIMESTAMP,
        &PROCESSED_EVENTS_UNIQUENESS,
        &DUPLICATE_METRIC_EVENT_IDS,
        &INGESTION_RATE_PER_MINUTE,
        &CONSUMER_LAG,
        &RELATION_EXISTS,
        &MIGRATION_HISTORY,
        &ADVISORY_LOCK_TRY,
        &ADVISORY_LOCK_HOLDER,
        &SET_LOCK_TIMEOUT,
        &INGEST_BATCH,
        &INGEST_BATCH_TOLERANT,
        &PROCESSED_EVENT_IDS_PRESENT,
        &ORDERING_BY_SENSOR,
        &ORDERING_FOR_SENSOR,
        &DUPLICATES,
        &LAG,
        &RATE,
    ]
}

/// Replaces each psql variable `:'name'` with `$n`, n being its place in `params`.
/// Panics on a variable not in `params`: the files are ours, so that is a bug caught by tests.
fn bind_parameters(psql_text: &str, params: &[&str]) -> String {
    let mut out = String::with_capacity(psql_text.len());
    let mut rest = psql_text;
    while let Some(start) = rest.find(":'") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('\'')
            .unwrap_or_else(|| panic!("unterminated psql variable in query text"));
        let name = &after[..end];
        let index = params
            .iter()
            .position(|p| *p == name)
            .unwrap_or_else(|| panic!("psql variable :'{name}' is not a declared parameter"));
        out.push_str(&format!("${}", index + 1));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_variables_become_bind_parameters() {
        assert_eq!(
            bind_parameters(
                "SELECT :'b', :'a'::int, x::text FROM t WHERE y = :'b'",
                &["a", "b"]
            ),
            "SELECT $2, $1::int, x::text FROM t WHERE y = $2"
        );
    }

    #[test]
    fn every_query_binds_exactly_its_declared_parameters() {
        for query in all() {
            let sql = query.sql();
            assert!(!sql.contains(":'"), "{}: unbound variable", query.file);
            for (i, param) in query.params.iter().enumerate() {
                assert!(
                    sql.contains(&format!("${}", i + 1)),
                    "{}: parameter {param} is never used",
                    query.file
                );
            }
        }
    }
}
