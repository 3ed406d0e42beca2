//! What metricsctl knows about a database before it does anything, read once when a session
//! opens: the schema holding the guide's tables (as the session's own search path finds them),
//! their layout, owners and keys, metricsctl's helper tables and whether to trust them, what the
//! current user may do, and the server.

use anyhow::anyhow;
use serde::Serialize;

use crate::db::queries::{self, Query, quote_identifier};
use crate::db::session::{Tx, pinned_search_path};
use crate::error::{Error, Result, What};

/// How `metrics` is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Plain,
    Partitioned,
}

impl Layout {
    /// The layout of a metrics whose pg_class.relkind is this (`p`: partitioned).
    pub fn of_relkind(relkind: &str) -> Layout {
        match relkind {
            "p" => Layout::Partitioned,
            _ => Layout::Plain,
        }
    }
}

/// A relation of the tables' schema that metricsctl reads or writes.
#[derive(Debug, Clone, Default)]
pub struct Relation {
    pub name: String,
    /// pg_class.relkind: `r` table, `p` partitioned table, `v` view, ...
    pub kind: String,
    pub owner: String,
    pub owner_is_superuser: bool,
    pub may_select: bool,
    pub may_insert: bool,
    pub may_delete: bool,
    /// The current user is its owner or a member of the owning role.
    pub acts_as_owner: bool,
    /// Names of its primary key and unique constraints.
    pub unique_keys: Vec<String>,
    /// The columns of each of `unique_keys`, comma-separated, in the same order.
    pub unique_key_columns: Vec<String>,
    /// For metrics: the sequence its id draws from, schema-qualified.
    pub sequence: Option<String>,
    /// Its name alone (it is in the tables' schema).
    pub sequence_name: Option<String>,
    pub may_read_sequence: bool,
    pub may_use_sequence: bool,
}

impl Relation {
    pub fn kind_name(&self) -> &'static str {
        match self.kind.as_str() {
            "r" => "table",
            "p" => "partitioned table",
            "v" => "view",
            "m" => "materialized view",
            "f" => "foreign table",
            "S" => "sequence",
            _ => "relation",
        }
    }
}

/// Whether metricsctl uses one of its helper tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Helper {
    Absent,
    /// An ordinary table owned by the owner of metrics (or a superuser).
    Trusted,
    /// Something else under that name: metricsctl leaves it alone.
    Untrusted {
        kind: &'static str,
        owner: String,
    },
}

/// What each helper is when metricsctl made it: the table the online conversion builds is
/// partitioned, the others are ordinary tables.
fn expected_kind(name: &str) -> &'static str {
    if name == CONVERSION_TABLE { "p" } else { "r" }
}

/// metricsctl's helper tables, beside the guide's two.
pub const RETIRED_EVENTS: &str = "metricsctl_retired_events";
pub const CONVERSION_STATE: &str = "metricsctl_conversion";
pub const CONVERSION_TABLE: &str = "metrics_partitioned";
pub const HISTORY: &str = "refinery_schema_history";

#[derive(Debug, Clone, Default)]
pub struct SchemaFacts {
    /// The schema of the guide's tables, or where `migrate` creates them; `None` when the
    /// search path names no schema that exists.
    pub schema: Option<String>,
    /// Why the tables cannot be used as they are found (one in one schema, one in another).
    pub schema_problem: Option<String>,
    /// The session's search path as it was, for messages.
    pub search_path_schemas: Vec<String>,
    pub server_version_num: i32,
    pub in_recovery: bool,
    pub current_user: String,
    pub database: String,
    /// The session's statement_timeout as the server, the database, the role or the client set
    /// it, before metricsctl sets anything.
    pub statement_timeout: SessionTimeout,
    pub schema_owner: Option<String>,
    /// Roles other than the schema's owner (and superusers) that may create objects in it.
    pub others_may_create: Vec<String>,
    /// The current user may create objects in the schema.
    pub may_create: bool,
    pub extensions: Vec<String>,
    /// The guide's tables Citus distributes, with their distribution column.
    pub distributed_tables: Vec<(String, String)>,
    relations: Vec<Relation>,
}

/// A session's statement_timeout, and where it was set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionTimeout {
    /// As PostgreSQL shows it: `15ms`, `30s`, `0`.
    pub text: String,
    /// 0: none.
    pub milliseconds: i64,
    /// pg_settings.source: `user` (the role), `database`, `database user`, `client` (PGOPTIONS,
    /// options=), `configuration file`, `default`.
    pub source: String,
}

impl SessionTimeout {
    /// Who set it and how to change it, for messages.
    pub fn who_set_it(&self) -> (&'static str, &'static str) {
        match self.source.as_str() {
            "user" | "database user" => (
                "the role's statement_timeout",
                "raise it for this role (ALTER ROLE ... SET statement_timeout = ...), or run as \
                 a role without one",
            ),
            "database" => (
                "the database's statement_timeout",
                "raise it for this role (ALTER ROLE ... SET statement_timeout = ..., which wins \
                 over the database's), or for the database",
            ),
            "client" => (
                "the statement_timeout this connection asked for",
                "raise or remove it where it is set: PGOPTIONS, or options= in the connection \
                 string",
            ),
            "" => (
                "this session's statement_timeout",
                "raise it where it is set: for the role (ALTER ROLE ... SET statement_timeout = \
                 ...), the database, PGOPTIONS or options= in the connection string, or \
                 postgresql.conf",
            ),
            _ => (
                "the server's statement_timeout",
                "raise it for this role (ALTER ROLE ... SET statement_timeout = ..., which wins \
                 over the server's), or in postgresql.conf",
            ),
        }
    }
}

impl SchemaFacts {
    /// Reads the facts in a transaction whose search path is still the session's own.
    pub fn read(tx: &mut Tx<'_>) -> Result<SchemaFacts> {
        let mut facts = SchemaFacts::default();
        let candidates = tx.rows(queries::SCHEMA_CANDIDATES.sql(), &[])?;
        facts.search_path_schemas = candidates.iter().map(|r| r.get("schema")).collect();
        let holding = |column: &str| {
            candidates
                .iter()
                .find(|r| r.get::<_, bool>(column))
                .map(|r| r.get::<_, String>("schema"))
        };
        let (guard, metrics) = (holding("has_processed_events"), holding("has_metrics"));
        facts.schema = match (&guard, &metrics) {
            (Some(a), Some(b)) if a != b => {
                facts.schema_problem = Some(format!(
                    "processed_events is in schema {a} and metrics in schema {b} (the first of \
                     each on the search path): metricsctl needs both in one schema; set the \
                     search path (PGOPTIONS='-c search_path=...', or options in the connection \
                     string) to the schema that holds both"
                ));
                metrics.clone()
            }
            (Some(schema), _) | (None, Some(schema)) => Some(schema.clone()),
            (None, None) => facts.search_path_schemas.first().cloned(),
        };
        let Some(schema) = facts.schema.clone() else {
            return Ok(facts);
        };
        let row = tx.row(queries::SCHEMA_FACTS.sql(), &[&schema])?;
        facts.server_version_num = row.get("server_version_num");
        facts.in_recovery = row.get("in_recovery");
        facts.current_user = row.get("current_user_name");
        facts.database = row.get("database");
        facts.statement_timeout = SessionTimeout {
            text: row.get("statement_timeout"),
            milliseconds: row.get("statement_timeout_ms"),
            source: row.get("statement_timeout_source"),
        };
        facts.schema_owner = row.get("schema_owner");
        facts.others_may_create = row.get("others_may_create");
        facts.may_create = row.get("may_create");
        facts.extensions = row.get("extensions");
        if facts.has_citus() {
            facts.distributed_tables = tx
                .rows(queries::DISTRIBUTED_TABLES.sql(), &[&schema])?
                .iter()
                // No column while Citus is still distributing the table (a conversion under
                // way, or one that was killed).
                .map(|row| {
                    let column: Option<String> = row.get("column_name");
                    (row.get("table_name"), column.unwrap_or_default())
                })
                .collect();
        }
        facts.relations = tx
            .rows(queries::SCHEMA_RELATIONS.sql(), &[&schema])?
            .iter()
            .map(|row| Relation {
                name: row.get("name"),
                kind: row.get("kind"),
                owner: row.get("owner"),
                owner_is_superuser: row.get("owner_is_superuser"),
                may_select: row.get("may_select"),
                may_insert: row.get("may_insert"),
                may_delete: row.get("may_delete"),
                acts_as_owner: row.get("acts_as_owner"),
                unique_keys: row.get("unique_keys"),
                unique_key_columns: row.get("unique_key_columns"),
                sequence: row.get("sequence"),
                sequence_name: row.get("sequence_name"),
                may_read_sequence: row.get::<_, Option<bool>>("may_read_sequence") == Some(true),
                may_use_sequence: row.get::<_, Option<bool>>("may_use_sequence") == Some(true),
            })
            .collect();
        Ok(facts)
    }

    /// Whether the citus extension is created in this database (a Citus coordinator or worker).
    pub fn has_citus(&self) -> bool {
        self.extensions.iter().any(|e| e == "citus")
    }

    /// Whether metrics is distributed by Citus: the distributed layout, where some statements
    /// take another form (no correlated probes, no recursive CTE, no ctid).
    pub fn is_distributed(&self) -> bool {
        self.is_table_distributed("metrics")
    }

    /// Whether Citus distributes this one of the guide's tables.
    pub fn is_table_distributed(&self, table: &str) -> bool {
        self.distributed_tables.iter().any(|(t, _)| t == table)
    }

    /// The search path every transaction pins.
    pub fn search_path(&self) -> String {
        match &self.schema {
            Some(schema) => pinned_search_path(schema),
            None => "pg_catalog, pg_temp".to_string(),
        }
    }

    /// The schema, for messages and SQL (`public` when the path names none).
    pub fn schema_name(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }

    /// `"schema"."name"`: for DDL that creates objects, and for the SQL metricsctl prints.
    pub fn qualified(&self, name: &str) -> String {
        format!(
            "{}.{}",
            quote_identifier(self.schema_name()),
            quote_identifier(name)
        )
    }

    /// A DDL template rendered for this schema: `:"schema"` is the tables' schema, `:'sequence'`
    /// (schema-qualified) and `:"sequence_name"` the sequence metrics.id draws from.
    pub fn ddl(
        &self,
        query: &Query,
        identifiers: &[(&str, &str)],
        literals: &[(&str, &str)],
    ) -> String {
        self.with_own_names(identifiers, literals, |ids, lits| query.ddl(ids, lits))
    }

    /// [`SchemaFacts::ddl`] a statement at a time (see [`Query::ddl_statements`]).
    pub fn ddl_statements(
        &self,
        query: &Query,
        identifiers: &[(&str, &str)],
        literals: &[(&str, &str)],
    ) -> Vec<String> {
        self.with_own_names(identifiers, literals, |ids, lits| {
            query.ddl_statements(ids, lits)
        })
    }

    /// The caller's identifiers and literals with the schema's and the sequence's added.
    fn with_own_names<T>(
        &self,
        identifiers: &[(&str, &str)],
        literals: &[(&str, &str)],
        render: impl FnOnce(&[(&str, &str)], &[(&str, &str)]) -> T,
    ) -> T {
        let sequence_name = self
            .metrics()
            .and_then(|m| m.sequence_name.clone())
            .unwrap_or_else(|| "metrics_id_seq".to_string());
        let sequence = self
            .metrics()
            .and_then(|m| m.sequence.clone())
            .unwrap_or_else(|| self.qualified(&sequence_name));
        let mut all_identifiers = vec![
            ("schema", self.schema_name()),
            ("sequence_name", sequence_name.as_str()),
        ];
        all_identifiers.extend_from_slice(identifiers);
        let mut all_literals = vec![("sequence", sequence.as_str())];
        all_literals.extend_from_slice(literals);
        render(&all_identifiers, &all_literals)
    }

    /// A statement naming a table chosen at run time, rendered for this schema; values stay bind
    /// parameters.
    pub fn with_identifiers(&self, query: &Query, identifiers: &[(&str, &str)]) -> String {
        let mut all = vec![("schema", self.schema_name())];
        all.extend_from_slice(identifiers);
        query.with_identifiers(&all)
    }

    /// A query that reads metricsctl_retired_events, ready for this database: where the table is
    /// not there, or is not one metricsctl trusts, it reads as empty.
    pub fn with_retired_events(&self, query: &queries::Query) -> String {
        match self.helper(RETIRED_EVENTS) {
            Helper::Trusted => {
                query.reading_retired_events(&queries::quote_identifier(RETIRED_EVENTS))
            }
            _ => query.reading_retired_events(queries::NO_RETIRED_EVENTS),
        }
    }

    pub fn relation(&self, name: &str) -> Option<&Relation> {
        self.relations.iter().find(|r| r.name == name)
    }

    pub fn metrics(&self) -> Option<&Relation> {
        self.relation("metrics")
    }

    pub fn processed_events(&self) -> Option<&Relation> {
        self.relation("processed_events")
    }

    /// The layout of metrics, if it exists.
    pub fn layout(&self) -> Option<Layout> {
        Some(Layout::of_relkind(&self.metrics()?.kind))
    }

    /// The guide's two tables are there, as tables: their layout; otherwise why not (exit 3).
    pub fn require_tables(&self) -> Result<Layout> {
        let wrong = |message: String| Err(Error::new(What::WrongSchema, anyhow!(message)));
        if let Some(problem) = &self.schema_problem {
            return wrong(problem.clone());
        }
        let Some(schema) = &self.schema else {
            return wrong(self.no_schema_message());
        };
        for name in ["processed_events", "metrics"] {
            match self.relation(name) {
                None => {
                    return wrong(format!(
                        "the table {name} does not exist in schema {schema} (the first schema of \
                         the search path that holds either table, or the first of it: {}): run \
                         `metricsctl migrate` first, or point the search path at the schema that \
                         holds them",
                        self.search_path_schemas.join(", ")
                    ));
                }
                Some(r) if r.kind != "r" && r.kind != "p" => {
                    return wrong(format!(
                        "{schema}.{name} is a {} owned by {}, not the guide's table: metricsctl \
                         will not use it",
                        r.kind_name(),
                        r.owner
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(self.layout().expect("metrics exists"))
    }

    pub fn no_schema_message(&self) -> String {
        "the search path names no schema that exists, so there is nowhere to find or create the \
         tables: set it (PGOPTIONS='-c search_path=public', or options in the connection string) \
         or create the schema"
            .to_string()
    }

    /// Whether a table has a constraint of this name.
    /// The name of a primary key or unique constraint of `table` on exactly `columns` (in that
    /// order), whatever it is called.
    pub fn key_on(&self, table: &str, columns: &[&str]) -> Option<&str> {
        let relation = self.relation(table)?;
        let wanted = columns.join(",");
        relation
            .unique_keys
            .iter()
            .zip(&relation.unique_key_columns)
            .find(|(_, on)| **on == wanted)
            .map(|(name, _)| name.as_str())
    }

    /// The role that owns the guide's tables (metrics', else processed_events'), else the
    /// current user: whom metricsctl's own tables must belong to.
    pub fn tables_owner(&self) -> &str {
        self.metrics()
            .or(self.processed_events())
            .map(|r| r.owner.as_str())
            .unwrap_or(&self.current_user)
    }

    /// Whether to use a helper table (see [`Helper`]).
    pub fn helper(&self, name: &str) -> Helper {
        match self.relation(name) {
            None => Helper::Absent,
            Some(r)
                if r.kind == expected_kind(name)
                    && (r.owner_is_superuser || r.owner == self.tables_owner()) =>
            {
                Helper::Trusted
            }
            Some(r) => Helper::Untrusted {
                kind: r.kind_name(),
                owner: r.owner.clone(),
            },
        }
    }

    /// The sentence for a helper table metricsctl will not use.
    pub fn untrusted_helper_message(&self, name: &str) -> Option<String> {
        match self.helper(name) {
            Helper::Untrusted { kind, owner } => Some(format!(
                "{} is a {kind} owned by {owner}, and metricsctl's own would be a {} owned by {} \
                 (the owner of the guide's tables): metricsctl did not make it and ignores it. \
                 If it is yours, make it so; otherwise drop it",
                self.qualified(name),
                if expected_kind(name) == "p" {
                    "partitioned table"
                } else {
                    "table"
                },
                self.tables_owner(),
            )),
            _ => None,
        }
    }

    /// What an operator should hear about the database before anything else (on stderr).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.others_may_create.is_empty() {
            let grantees = self.others_may_create.join(", ");
            warnings.push(format!(
                "warning: {grantees} may create objects in schema {schema}, where the guide's \
                 tables are (or go): such a role can plant functions, operators or tables there that other \
                 clients run by mistake. metricsctl pins its search path and names PostgreSQL's own \
                 functions and operators, so it is not misled; to close it for everyone: {fix}",
                schema = self.schema_name(),
                fix = self
                    .others_may_create
                    .iter()
                    .map(|role| format!(
                        "REVOKE CREATE ON SCHEMA {} FROM {};",
                        quote_identifier(self.schema_name()),
                        if role == "PUBLIC" {
                            "PUBLIC".to_string()
                        } else {
                            quote_identifier(role)
                        }
                    ))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        for name in [RETIRED_EVENTS, CONVERSION_STATE, CONVERSION_TABLE, HISTORY] {
            if let Some(message) = self.untrusted_helper_message(name) {
                warnings.push(format!("warning: {message}"));
            }
        }
        if let (Some(metrics), Some(guard)) = (self.metrics(), self.processed_events())
            && metrics.owner != guard.owner
        {
            warnings.push(format!(
                "warning: metrics is owned by {} but processed_events by {}: the guide's tables \
                 should belong to one role (the migrator); check who created each",
                metrics.owner, guard.owner
            ));
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(relations: Vec<Relation>) -> SchemaFacts {
        SchemaFacts {
            schema: Some("public".into()),
            current_user: "operator".into(),
            relations,
            ..SchemaFacts::default()
        }
    }

    fn relation(name: &str, kind: &str, owner: &str) -> Relation {
        Relation {
            name: name.into(),
            kind: kind.into(),
            owner: owner.into(),
            ..Relation::default()
        }
    }

    #[test]
    fn a_helper_is_trusted_only_as_a_table_of_the_tables_owner_or_a_superuser() {
        let mut superuser_table = relation(CONVERSION_STATE, "r", "postgres");
        superuser_table.owner_is_superuser = true;
        let facts = facts(vec![
            relation("metrics", "r", "app"),
            relation("processed_events", "r", "app"),
            relation(RETIRED_EVENTS, "v", "mallory"),
            relation(HISTORY, "r", "app"),
            relation(CONVERSION_TABLE, "r", "mallory"),
            superuser_table,
        ]);
        assert_eq!(
            facts.helper(RETIRED_EVENTS),
            Helper::Untrusted {
                kind: "view",
                owner: "mallory".into()
            }
        );
        assert_eq!(facts.helper(HISTORY), Helper::Trusted);
        assert_eq!(facts.helper(CONVERSION_STATE), Helper::Trusted);
        assert!(matches!(
            facts.helper(CONVERSION_TABLE),
            Helper::Untrusted { .. }
        ));
        let warnings = facts.warnings().join("\n");
        assert!(
            warnings
                .contains("\"public\".\"metricsctl_retired_events\" is a view owned by mallory"),
            "{warnings}"
        );
    }

    #[test]
    fn a_view_in_place_of_a_guide_table_is_refused() {
        let facts = facts(vec![
            relation("metrics", "v", "mallory"),
            relation("processed_events", "r", "app"),
        ]);
        let err = facts.require_tables().unwrap_err();
        assert_eq!(err.what(), What::WrongSchema);
        assert!(
            err.to_string().contains("is a view owned by mallory"),
            "{err}"
        );
    }
}
