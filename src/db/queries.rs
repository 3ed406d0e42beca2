//! The SQL metricsctl runs, compiled in from `queries/`.
//!
//! The files are written for psql: parameters appear as psql variables (`:'sensor_id'`), so an
//! operator can run `psql -v sensor_id=sensor_123 -v since=-infinity -v ingested_since=-infinity
//! -v limit=10 -f queries/ordering_for_sensor.sql`.
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

    /// For statements that read metricsctl's retired events: `:"retired_events"` becomes
    /// `relation` (the quoted table, or an empty set in its place), values bind parameters.
    pub fn reading_retired_events(&self, relation: &str) -> String {
        render_with(
            self.psql_text,
            |name| {
                assert_eq!(name, "retired_events", "no relation for :\"{name}\"");
                relation.to_string()
            },
            |name| self.bind_position(name),
        )
    }

    fn bind_position(&self, name: &str) -> String {
        let index = self
            .params
            .iter()
            .position(|p| *p == name)
            .unwrap_or_else(|| panic!("psql variable :'{name}' is not a declared parameter"));
        format!("${}", index + 1)
    }

    /// For statements that name a table chosen at run time (a partition): each `:"name"` becomes
    /// the quoted identifier, values stay bind parameters.
    pub fn with_identifiers(&self, identifiers: &[(&str, &str)]) -> String {
        render(self.psql_text, identifiers, |name| self.bind_position(name))
    }

    /// For DDL, which takes no bind parameters: identifiers and values both written in, quoted.
    /// Only for values metricsctl computes itself or reads from the catalog (partition names and
    /// bounds built from dates, the schema, role names an operator typed).
    pub fn ddl(&self, identifiers: &[(&str, &str)], literals: &[(&str, &str)]) -> String {
        render_ddl(self.psql_text, identifiers, literals)
    }

    /// [`Query::ddl`] a statement at a time: the template is split first, so nothing written into
    /// it (a role name holding `;`) can split a statement.
    pub fn ddl_statements(
        &self,
        identifiers: &[(&str, &str)],
        literals: &[(&str, &str)],
    ) -> Vec<String> {
        statements(self.psql_text)
            .iter()
            .map(|statement| render_ddl(statement, identifiers, literals))
            .collect()
    }
}

fn render_ddl(text: &str, identifiers: &[(&str, &str)], literals: &[(&str, &str)]) -> String {
    render(text, identifiers, |name| {
        quote_literal(named(literals, name, "no value for :'{}'"))
    })
}

/// The value given for a psql variable, which the query file declares: one missing is a bug.
fn named<'a>(values: &[(&str, &'a str)], name: &str, missing: &str) -> &'a str {
    values
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("{}", missing.replace("{}", name)))
        .1
}

/// Replaces each `:"name"` with the quoted identifier and each `:'name'` with `value(name)`, in
/// one pass over the template: what is written in is never read again as a variable.
fn render(text: &str, identifiers: &[(&str, &str)], value: impl FnMut(&str) -> String) -> String {
    render_with(
        text,
        |name| quote_identifier(named(identifiers, name, "no identifier for :\"{}\"")),
        value,
    )
}

/// [`render`], with `relation(name)` giving each `:"name"`'s text as it is.
fn render_with(
    text: &str,
    mut relation: impl FnMut(&str) -> String,
    mut value: impl FnMut(&str) -> String,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = [":\"", ":'"]
            .iter()
            .filter_map(|open| rest.find(open).map(|at| (at, *open)))
            .min_by_key(|(at, _)| *at);
        let Some((start, open)) = next else {
            break;
        };
        out.push_str(&rest[..start]);
        let after = &rest[start + open.len()..];
        let close = if open == ":\"" { '"' } else { '\'' };
        let end = after.find(close).expect("terminated psql variable");
        let name = &after[..end];
        if open == ":\"" {
            out.push_str(&relation(name));
        } else {
            out.push_str(&value(name));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The statements of a DDL text, one by one (for those that may not share a transaction, like
/// `CREATE INDEX CONCURRENTLY`): comment lines dropped, split at each `;`.
pub fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a query reads in place of metricsctl_retired_events where that table is not there to read
/// (retention never ran, or the name belongs to something metricsctl did not make).
pub const NO_RETIRED_EVENTS: &str = "(SELECT CAST(NULL AS varchar) AS event_id WHERE false)";

/// `"name"`, with embedded quotes doubled: safe for any name.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'value'`, with embedded quotes doubled (standard_conforming_strings is on since 9.1).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Replaces each `<open>name<close>` with `replace(name)`.
fn substitute(
    text: &str,
    open: &str,
    close: char,
    mut replace: impl FnMut(&str) -> String,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        let after = &rest[start + open.len()..];
        let end = after.find(close).expect("terminated psql variable");
        out.push_str(&replace(&after[..end]));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

macro_rules! query {
    ($(#[$doc:meta])* $name:ident = $file:literal, params = $params:expr) => {
        $(#[$doc])*
        pub static $name: Query = Query {
            file: $file,
            psql_text: include_str!(concat!("../../queries/", $file)),
            params: $params,
            bound: OnceLock::new(),
        };
    };
    ($(#[$doc:meta])* $name:ident = $file:literal $(, $param:literal)*) => {
        query!($(#[$doc])* $name = $file, params = &[$($param),*]);
    };
}

query!(
    /// DDL, a throwaway Citus node only.
    CITUS_EXTENSION_CREATE = "citus_extension_create.sql"
);
query!(
    CITUS_COORDINATOR_SET = "citus_coordinator_set.sql",
    "host",
    "port"
);
query!(CITUS_WORKER_ADD = "citus_worker_add.sql", "host", "port");

query!(
    /// The guide's tables Citus distributes, and by which column.
    DISTRIBUTED_TABLES = "distributed_tables.sql",
    "schema"
);
query!(CITUS_WORKERS = "citus_workers.sql");
query!(
    /// DDL: render with `SchemaFacts::ddl`.
    DISTRIBUTION_KEY_PLAIN = "distribution_key_plain.sql"
);
query!(
    /// DDL: render with `SchemaFacts::ddl`.
    DISTRIBUTION_KEY_PARTITIONED = "distribution_key_partitioned.sql"
);
query!(
    DISTRIBUTE_TABLE = "distribute_table.sql",
    "relation",
    "colocate_with"
);

query!(
    DISTRIBUTION_PROGRESS = "distribution_progress.sql",
    "schema"
);
query!(
    /// DDL: render with `SchemaFacts::ddl`; outside a transaction.
    DISTRIBUTION_KEY_INDEX = "distribution_key_index.sql"
);
query!(
    /// DDL: render with `SchemaFacts::ddl`; outside a transaction.
    DISTRIBUTION_KEY_INDEX_DROP = "distribution_key_index_drop.sql"
);
query!(
    /// DDL: render with `SchemaFacts::ddl`.
    DISTRIBUTION_KEY_SWAP = "distribution_key_swap.sql"
);

query!(
    /// On Citus: metricsctl_retired_events as a reference table.
    RETIRED_EVENTS_REFERENCE = "retired_events_reference.sql",
    "relation"
);

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

query!(RELATION_EXISTS = "relation_exists.sql", "relation");
query!(RELATION_OWNER = "relation_owner.sql", "relation");
query!(MIGRATION_HISTORY = "migration_history.sql");
query!(MIGRATION_HISTORY_CREATE = "migration_history_create.sql");
query!(
    MIGRATION_HISTORY_INSERT = "migration_history_insert.sql",
    "version",
    "name",
    "applied_on",
    "checksum"
);
query!(
    MIGRATION_HISTORY_REPAIR = "migration_history_repair.sql",
    "version",
    "old_checksum",
    "new_checksum"
);
query!(ADVISORY_LOCK_TRY = "advisory_lock_try.sql", "lock_key");
query!(
    ADVISORY_XACT_LOCK_TRY = "advisory_xact_lock_try.sql",
    "lock_key"
);
query!(ADVISORY_UNLOCK = "advisory_unlock.sql", "lock_key");
query!(ADVISORY_LOCK_MINE = "advisory_lock_mine.sql", "lock_key");
query!(
    ADVISORY_LOCK_HOLDER = "advisory_lock_holder.sql",
    "lock_key"
);
query!(TABLE_LOCK_HOLDERS = "table_lock_holders.sql", "relation");
query!(
    /// DDL: render with `Query::ddl`.
    DEMO_MONITOR_ROLE = "demo_monitor_role.sql"
);
query!(DEMO_HOLD_METRICS = "demo_hold_metrics.sql");
query!(DEMO_PRIMARY_WAL = "demo_primary_wal.sql");
query!(
    DEMO_STANDBY_CAUGHT_UP = "demo_standby_caught_up.sql",
    "wal_lsn"
);
query!(
    /// The demo's planted incidents.
    DEMO_DAMAGE = "demo_damage.sql",
    "lost",
    "bypassed"
);
query!(
    /// The idempotent insert path for one batch.
    INGEST_BATCH = "ingest_batch.sql",
    params = INGEST_PARAMS
);
query!(
    /// The same, inserting a metric only where none with its event id exists.
    INGEST_BATCH_CHECKED = "ingest_batch_checked.sql",
    params = INGEST_PARAMS
);
query!(
    /// `replay --dry-run`: what a batch would insert, noted in a temporary table.
    INGEST_BATCH_DRY_RUN = "ingest_batch_dry_run.sql",
    "event_ids"
);
query!(INGEST_DRY_RUN_SETUP = "ingest_dry_run_setup.sql");
query!(INGEST_LOCK = "ingest_lock.sql");
query!(INGEST_DRY_RUN_LOCK = "ingest_dry_run_lock.sql");
query!(
    /// What every transaction pins first: render with `Query::ddl`.
    TRANSACTION_SETTINGS = "transaction_settings.sql",
    "pin_search_path",
    "search_path",
    "bound_statements",
    "statement_timeout"
);
query!(SCHEMA_CANDIDATES = "schema_candidates.sql");
query!(SCHEMA_FACTS = "schema_facts.sql", "schema");
query!(SCHEMA_RELATIONS = "schema_relations.sql", "schema");
query!(
    SESSIONS_WAITING = "sessions_waiting.sql",
    "pids",
    "transaction_starts"
);
query!(
    CANCEL_OWN_STATEMENTS = "cancel_own_statements.sql",
    "pids",
    "transaction_starts"
);
query!(FOREIGN_DEPENDENCIES = "foreign_dependencies.sql");
query!(GUIDE_NAMES = "guide_names.sql");
query!(
    /// DDL: render with `Query::ddl`.
    GRANTS_MONITOR = "grants_monitor.sql"
);
query!(
    /// DDL: render with `Query::ddl`.
    GRANTS_WRITER = "grants_writer.sql"
);
query!(
    /// DDL: render with `Query::ddl`.
    GRANT_SELECT = "grant_select.sql"
);
query!(ROLES_NAMED = "roles_named.sql", "roles");
query!(ROLE_PRIVILEGES = "role_privileges.sql", "role");
query!(
    SET_LOCAL_SEARCH_PATH = "set_local_search_path.sql",
    "search_path"
);
query!(SESSION_PROBE_MARK = "session_probe_mark.sql", "token");
query!(SESSION_PROBE_READ = "session_probe_read.sql", "token");
query!(
    /// metrics_id_seq's next id against max(metrics.id).
    METRICS_ID_SEQUENCE = "metrics_id_sequence.sql"
);
query!(
    /// The ordering check over every sensor.
    ORDERING_BY_SENSOR = "ordering_by_sensor.sql",
    "since",
    "ingested_since"
);
query!(
    /// The ordering check for one sensor, from its indexes.
    ORDERING_FOR_SENSOR = "ordering_for_sensor.sql",
    "sensor_id",
    "since",
    "ingested_since",
    "limit"
);
query!(DUPLICATES = "duplicates.sql", "limit");
query!(
    DUPLICATES_SINCE = "duplicates_since.sql",
    "limit",
    "since",
    "looked_back"
);
query!(
    DUPLICATES_SINCE_UNFOUND = "duplicates_since_unfound.sql",
    "limit",
    "since",
    "looked_back"
);
query!(
    LAG = "lag.sql",
    "stale_seconds",
    "window_seconds",
    "latency_sample",
    "limit",
    "clock_tolerance_seconds"
);
query!(
    LAG_DISTRIBUTED = "lag_distributed.sql",
    "stale_seconds",
    "window_seconds",
    "latency_sample",
    "limit",
    "clock_tolerance_seconds"
);
query!(RATE = "rate.sql", "unit", "buckets", "step_seconds");
query!(METRICS_LAYOUT = "metrics_layout.sql");
query!(UTC_SESSION = "utc_session.sql");
query!(
    SET_LOCAL_LOCK_TIMEOUT = "set_local_lock_timeout.sql",
    "milliseconds"
);
query!(CURRENT_UTC_MONTH = "current_utc_month.sql");
query!(METRICS_PARTITIONS = "metrics_partitions.sql");
query!(MONTHS_HOLDING_METRICS = "months_holding_metrics.sql");
query!(LOCK_METRICS = "lock_metrics.sql");
query!(PARTITIONED_METRICS = "partitioned_metrics.sql");
query!(PARTITIONED_METRICS_KEYS = "partitioned_metrics_keys.sql");
query!(SET_ASIDE_PLAIN_METRICS = "set_aside_plain_metrics.sql");
query!(
    COPY_MONTH_INTO_PARTITIONED = "copy_month_into_partitioned.sql",
    "from",
    "to"
);
query!(DROP_PLAIN_METRICS = "drop_plain_metrics.sql");
query!(
    /// DDL: render with `Query::ddl`.
    PARTITION_CREATE = "partition_create.sql");
query!(DEFAULT_ROWS_SET_ASIDE = "default_rows_set_aside.sql");
query!(
    /// Names the default partition: render with `Query::with_identifiers`.
    DEFAULT_ROWS_MOVE_OUT = "default_rows_move_out.sql", "from", "to");
query!(DEFAULT_ROWS_MOVE_BACK = "default_rows_move_back.sql");
query!(
    /// Names a partition: render with `Query::with_identifiers`.
    PARTITION_FORGET_GUARD_ROWS = "partition_forget_guard_rows.sql");
query!(CONVERSION_STATE_TABLE = "conversion_state_table.sql");
query!(CONVERSION_STATE = "conversion_state.sql");
query!(CONVERSION_STATE_INSERT = "conversion_state_insert.sql");
query!(
    /// Two statements, no parameters: run with `Tx::ddl`.
    CONVERSION_CLAIM = "conversion_claim.sql"
);
query!(
    /// Two statements: render with `Query::ddl`.
    CONVERSION_STOPPED = "conversion_stopped.sql",
    "why"
);
query!(CONVERSION_STATE_CLEAR = "conversion_state_clear.sql");
query!(TERMINATE_BACKEND = "terminate_backend.sql", "pid");
query!(CONVERSION_PHASE = "conversion_phase.sql", "phase");
query!(CONVERSION_BEGIN = "conversion_begin.sql");
query!(
    /// DDL: render with `Query::ddl`.
    CONVERSION_PARTITION_CREATE = "conversion_partition_create.sql"
);
query!(CONVERSION_NEW_KEYS = "conversion_new_keys.sql");
query!(CONVERSION_SESSION = "conversion_session.sql");
query!(CONVERSION_PARENT_INDEXES = "conversion_parent_indexes.sql");
query!(CONVERSION_PARTITIONS = "conversion_partitions.sql");
query!(CONVERSION_INVALID_INDEXES = "conversion_invalid_indexes.sql");
query!(
    /// DDL, one statement at a time outside a transaction: render with `Query::ddl`, run each
    /// of `statements`.
    CONVERSION_PARTITION_INDEXES = "conversion_partition_indexes.sql"
);
query!(
    /// DDL: render with `Query::ddl`.
    CONVERSION_ATTACH_INDEXES = "conversion_attach_indexes.sql"
);
query!(
    /// DDL, outside a transaction: render with `Query::ddl`.
    CONVERSION_DROP_INVALID_INDEX = "conversion_drop_invalid_index.sql"
);
query!(CONVERSION_MIRROR = "conversion_mirror.sql");
query!(CONVERSION_MIRROR_EXISTS = "conversion_mirror_exists.sql");
query!(CONVERSION_BACKFILL_START = "conversion_backfill_start.sql");
query!(
    CONVERSION_BACKFILL_BATCH = "conversion_backfill_batch.sql",
    "after",
    "upto"
);
query!(CONVERSION_COMPARE = "conversion_compare.sql");
query!(
    CONVERSION_RECONCILE_STALE = "conversion_reconcile_stale.sql",
    "upto"
);
query!(
    CONVERSION_RECONCILE_MISSING = "conversion_reconcile_missing.sql",
    "upto"
);
query!(CONVERSION_SWAP = "conversion_swap.sql");
query!(CONVERSION_ABANDON = "conversion_abandon.sql");
query!(
    /// DDL: render with `Query::ddl`.
    PARTITION_ATTACH = "partition_attach.sql"
);
query!(
    RETIRED_EVENTS_UNRETIRE = "retired_events_unretire.sql",
    "month"
);
query!(
    /// Names the default partition: render with `Query::with_identifiers`.
    DEFAULT_ROWS_COUNT = "default_rows_count.sql",
    "from",
    "to"
);
query!(RETIRED_EVENTS_TABLE = "retired_events_table.sql");
query!(
    /// `replay --repair`: the checked path, restoring lost metrics too.
    INGEST_BATCH_REPAIR = "ingest_batch_repair.sql",
    params = INGEST_PARAMS
);
query!(LOCK_METRICS_AGAINST_WRITES = "lock_metrics_against_writes.sql");
query!(LOCK_PROCESSED_EVENTS_AGAINST_WRITES = "lock_processed_events_against_writes.sql");
query!(REPAIR_SEQUENCE = "repair_sequence.sql");
query!(REPAIR_DUPLICATED_GUARD_ROWS = "repair_duplicated_guard_rows.sql");
query!(REPAIR_DUPLICATED_METRICS = "repair_duplicated_metrics.sql");
query!(REPAIR_UNGUARDED_METRICS = "repair_unguarded_metrics.sql");
query!(LOST_METRICS = "lost_metrics.sql");
query!(REPAIR_RELEASE_LOST = "repair_release_lost.sql");
query!(
    TABLE_EQUIVALENT_KEY = "table_equivalent_key.sql",
    "table_name",
    "primary",
    "constraint_name",
    "columns"
);
query!(
    /// DDL: render with `Query::ddl`.
    RENAME_KEY = "rename_key.sql"
);
query!(
    TABLE_CONSTRAINT_EXISTS = "table_constraint_exists.sql",
    "table_name",
    "constraint_name"
);
query!(RESTORE_PROCESSED_EVENTS_PKEY = "restore_processed_events_pkey.sql");
query!(RESTORE_METRICS_UNIQUE_PLAIN = "restore_metrics_unique_plain.sql");
query!(RESTORE_METRICS_UNIQUE_PARTITIONED = "restore_metrics_unique_partitioned.sql");

query!(
    /// Names a partition: render with `Query::with_identifiers`.
    PARTITION_RETIRE_EVENTS = "partition_retire_events.sql",
    "month"
);
query!(
    RETIRED_EVENTS_FORGET = "retired_events_forget.sql",
    "before"
);
query!(
    /// DDL: render with `Query::ddl`.
    PARTITION_DETACH = "partition_detach.sql");
query!(
    /// DDL: render with `Query::ddl`.
    PARTITION_DROP = "partition_drop.sql");
query!(
    /// Names a partition: render with `Query::with_identifiers`.
    PARTITION_COUNT_ROWS = "partition_count_rows.sql");
query!(
    /// Names a partition: render with `Query::with_identifiers`.
    PARTITION_ROWS_CAPPED = "partition_rows_capped.sql",
    "cap"
);

/// Every compiled-in query, so tests can check them all.
pub fn all() -> Vec<&'static Query> {
    vec![
        &RELATION_EXISTS,
        &RELATION_OWNER,
        &MIGRATION_HISTORY,
        &ADVISORY_LOCK_TRY,
        &ADVISORY_XACT_LOCK_TRY,
        &ADVISORY_UNLOCK,
        &ADVISORY_LOCK_MINE,
        &ADVISORY_LOCK_HOLDER,
        &TABLE_LOCK_HOLDERS,
        &DEMO_DAMAGE,
        &INGEST_LOCK,
        &INGEST_DRY_RUN_LOCK,
        &DEMO_PRIMARY_WAL,
        &DEMO_STANDBY_CAUGHT_UP,
        &MIGRATION_HISTORY_CREATE,
        &MIGRATION_HISTORY_INSERT,
        &MIGRATION_HISTORY_REPAIR,
        &INGEST_BATCH,
        &INGEST_BATCH_CHECKED,
        &INGEST_DRY_RUN_SETUP,
        &TRANSACTION_SETTINGS,
        &SCHEMA_CANDIDATES,
        &SCHEMA_FACTS,
        &SCHEMA_RELATIONS,
        &SESSIONS_WAITING,
        &CANCEL_OWN_STATEMENTS,
        &FOREIGN_DEPENDENCIES,
        &GUIDE_NAMES,
        &ROLES_NAMED,
        &ROLE_PRIVILEGES,
        &SET_LOCAL_SEARCH_PATH,
        &SESSION_PROBE_MARK,
        &SESSION_PROBE_READ,
        &INGEST_BATCH_DRY_RUN,
        &METRICS_ID_SEQUENCE,
        &INGEST_BATCH_REPAIR,
        &REPAIR_SEQUENCE,
        &REPAIR_DUPLICATED_GUARD_ROWS,
        &REPAIR_DUPLICATED_METRICS,
        &REPAIR_UNGUARDED_METRICS,
        &LOST_METRICS,
        &REPAIR_RELEASE_LOST,
        &TABLE_CONSTRAINT_EXISTS,
        &TABLE_EQUIVALENT_KEY,
        &ORDERING_BY_SENSOR,
        &ORDERING_FOR_SENSOR,
        &DUPLICATES,
        &DUPLICATES_SINCE,
        &DUPLICATES_SINCE_UNFOUND,
        &LAG,
        &RATE,
        &METRICS_LAYOUT,
        &CURRENT_UTC_MONTH,
        &MONTHS_HOLDING_METRICS,
    ]
}

/// The statements of the distributed layout (Citus): `tests/distributed.rs` runs them in psql on
/// a Citus coordinator, in this order (the key's files change metrics' key, the last ones
/// distribute the tables).
pub fn distributed() -> Vec<&'static Query> {
    vec![
        &CITUS_EXTENSION_CREATE,
        &CITUS_WORKERS,
        &DISTRIBUTED_TABLES,
        &DISTRIBUTION_PROGRESS,
        &DISTRIBUTION_KEY_INDEX_DROP,
        &DISTRIBUTION_KEY_INDEX,
        &DISTRIBUTION_KEY_SWAP,
        &DISTRIBUTE_TABLE,
        &LAG_DISTRIBUTED,
        &RETIRED_EVENTS_REFERENCE,
        &DISTRIBUTION_KEY_PLAIN,
        &DISTRIBUTION_KEY_PARTITIONED,
        &CITUS_COORDINATOR_SET,
        &CITUS_WORKER_ADD,
    ]
}

/// The partition-maintenance statements: they need a partitioned metrics or run only in the
/// middle of a conversion, so tests reach them through the commands.
pub fn maintenance() -> Vec<&'static Query> {
    vec![
        &UTC_SESSION,
        &SET_LOCAL_LOCK_TIMEOUT,
        &METRICS_PARTITIONS,
        &LOCK_METRICS,
        &LOCK_METRICS_AGAINST_WRITES,
        &LOCK_PROCESSED_EVENTS_AGAINST_WRITES,
        &PARTITIONED_METRICS,
        &PARTITIONED_METRICS_KEYS,
        &SET_ASIDE_PLAIN_METRICS,
        &COPY_MONTH_INTO_PARTITIONED,
        &DROP_PLAIN_METRICS,
        &PARTITION_CREATE,
        &DEFAULT_ROWS_SET_ASIDE,
        &DEFAULT_ROWS_MOVE_OUT,
        &DEFAULT_ROWS_MOVE_BACK,
        &PARTITION_FORGET_GUARD_ROWS,
        &RETIRED_EVENTS_TABLE,
        &PARTITION_RETIRE_EVENTS,
        &RETIRED_EVENTS_FORGET,
        &PARTITION_ATTACH,
        &RETIRED_EVENTS_UNRETIRE,
        &DEFAULT_ROWS_COUNT,
        &CONVERSION_STATE_TABLE,
        &CONVERSION_STATE,
        &CONVERSION_STATE_INSERT,
        &CONVERSION_CLAIM,
        &CONVERSION_STOPPED,
        &CONVERSION_STATE_CLEAR,
        &TERMINATE_BACKEND,
        &CONVERSION_PHASE,
        &CONVERSION_BEGIN,
        &CONVERSION_PARTITION_CREATE,
        &CONVERSION_NEW_KEYS,
        &CONVERSION_SESSION,
        &CONVERSION_PARENT_INDEXES,
        &CONVERSION_PARTITIONS,
        &CONVERSION_INVALID_INDEXES,
        &CONVERSION_PARTITION_INDEXES,
        &CONVERSION_ATTACH_INDEXES,
        &CONVERSION_DROP_INVALID_INDEX,
        &CONVERSION_MIRROR,
        &CONVERSION_MIRROR_EXISTS,
        &CONVERSION_BACKFILL_START,
        &CONVERSION_BACKFILL_BATCH,
        &CONVERSION_COMPARE,
        &CONVERSION_RECONCILE_STALE,
        &CONVERSION_RECONCILE_MISSING,
        &CONVERSION_SWAP,
        &CONVERSION_ABANDON,
        &RESTORE_PROCESSED_EVENTS_PKEY,
        &RESTORE_METRICS_UNIQUE_PLAIN,
        &RESTORE_METRICS_UNIQUE_PARTITIONED,
        &PARTITION_DETACH,
        &PARTITION_DROP,
        &PARTITION_COUNT_ROWS,
        &PARTITION_ROWS_CAPPED,
        &DEMO_MONITOR_ROLE,
        &RENAME_KEY,
        &DEMO_HOLD_METRICS,
        &GRANTS_MONITOR,
        &GRANTS_WRITER,
        &GRANT_SELECT,
    ]
}

/// Replaces each psql variable `:'name'` with `$n`, n being its place in `params`.
/// Panics on a variable not in `params`: the files are ours, so that is a bug caught by tests.
fn bind_parameters(psql_text: &str, params: &[&str]) -> String {
    substitute(psql_text, ":'", '\'', |name| {
        let index = params
            .iter()
            .position(|p| *p == name)
            .unwrap_or_else(|| panic!("psql variable :'{name}' is not a declared parameter"));
        format!("${}", index + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table `partitions enable` builds online is the one `--offline` and `migrate
    /// --partitioned` build: the same columns, types and defaults, under another name.
    #[test]
    fn the_online_conversion_builds_the_same_table_as_the_offline_one() {
        fn create_table(sql: &str) -> String {
            let start = sql.find("CREATE TABLE").unwrap();
            let end = start + sql[start..].find(';').unwrap();
            sql[start..end].to_string()
        }
        assert_eq!(
            create_table(CONVERSION_BEGIN.psql_text).replace("metrics_partitioned", "metrics"),
            create_table(PARTITIONED_METRICS.psql_text)
        );
    }

    #[test]
    fn concurrent_index_builds_run_one_statement_at_a_time() {
        let identifiers = [
            ("schema", "public"),
            ("partition", "metrics_2026_01"),
            ("sensor_id_index", "a"),
            ("timestamp_index", "b"),
            ("sensor_timestamp_index", "c"),
        ];
        let statements = CONVERSION_PARTITION_INDEXES.ddl_statements(&identifiers, &[]);
        assert_eq!(statements.len(), 3);
        for statement in &statements {
            assert!(
                statement.starts_with("CREATE INDEX CONCURRENTLY IF NOT EXISTS")
                    && statement.contains("ON \"public\".\"metrics_2026_01\""),
                "{statement}"
            );
        }
    }

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
    fn what_is_written_in_is_never_read_again_as_a_variable() {
        let rendered = GRANT_SELECT.ddl_statements(
            &[
                ("schema", "public"),
                ("relation", "metrics_2026_01"),
                ("role", "x:'y'; DROP TABLE metrics; --"),
            ],
            &[],
        );
        assert_eq!(
            rendered,
            vec![
                "GRANT SELECT ON \"public\".\"metrics_2026_01\" TO \"x:'y'; DROP TABLE metrics; --\""
                    .to_string()
            ]
        );
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_identifier("metrics_2026_01"), "\"metrics_2026_01\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(
            PARTITION_CREATE
                .ddl(
                    &[("schema", "public"), ("partition", "metrics_2026_01")],
                    &[
                        ("from", "2026-01-01 00:00:00+00"),
                        ("to", "2026-02-01 00:00:00+00")
                    ]
                )
                .lines()
                .filter(|l| !l.starts_with("--"))
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" "),
            "CREATE TABLE \"public\".\"metrics_2026_01\" PARTITION OF metrics \
                 FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00');"
        );
        assert_eq!(
            DEFAULT_ROWS_MOVE_OUT
                .with_identifiers(&[("default_partition", "metrics_default")])
                .matches("$1")
                .count(),
            1
        );
    }

    #[test]
    fn every_query_binds_exactly_its_declared_parameters() {
        // DDL templates (`:"identifier"`) are rendered, not bound.
        for query in all()
            .into_iter()
            .chain(maintenance())
            .filter(|q| !q.psql_text.contains(":\""))
        {
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
