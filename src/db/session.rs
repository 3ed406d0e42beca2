//! A session with PostgreSQL that stays correct where production puts one: behind a
//! transaction-pooling proxy (pgbouncer), and in a schema other roles can create objects in.
//!
//! - Every statement goes out unnamed with its parameter types (`query_typed`): nothing stays
//!   prepared on a server connection the pool may hand to another client, and nothing is expected
//!   from one the pool may have swapped. (rust-postgres' `prepare`/`query` name their statements;
//!   clippy.toml forbids them.)
//! - Every piece of work is a transaction that first pins what it relies on, with `SET LOCAL`
//!   (`queries/transaction_settings.sql`): the search path — `pg_catalog` first, then the schema
//!   the tables live in, `pg_temp` last — no JIT, and a statement timeout within the run's limit.
//!   No session state is assumed from one transaction to the next.
//! - What the database is like (the tables' schema, layout, keys, helper tables, the server) is
//!   read once, when the session opens ([`SchemaFacts`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use postgres::types::{ToSql, Type};
use postgres::{Client, Row, SimpleQueryMessage};

use crate::db::facts::SchemaFacts;
use crate::db::interrupt;
use crate::db::queries::{self, quote_identifier};
use crate::db::target::DatabaseTarget;
use crate::error::{Error, Result, What};

type PgResult<T> = std::result::Result<T, postgres::Error>;

/// A value bound to a statement, with the PostgreSQL type it is sent as.
pub trait Param: ToSql + Sync {
    fn sql_type(&self) -> Type;
}

/// The PostgreSQL type of a Rust type, for [`Param`].
pub trait SqlType {
    const TYPE: Type;
}

impl<T: SqlType + ToSql + Sync> Param for T {
    fn sql_type(&self) -> Type {
        T::TYPE
    }
}

impl<T: SqlType> SqlType for Option<T> {
    const TYPE: Type = T::TYPE;
}

macro_rules! sql_types {
    ($($rust:ty => $pg:ident),+ $(,)?) => {
        $(impl SqlType for $rust {
            const TYPE: Type = Type::$pg;
        })+
    };
}

sql_types!(
    bool => BOOL,
    i32 => INT4,
    i64 => INT8,
    f64 => FLOAT8,
    String => TEXT,
    &str => TEXT,
    DateTime<Utc> => TIMESTAMPTZ,
    NaiveDate => DATE,
    Vec<String> => TEXT_ARRAY,
    Vec<i32> => INT4_ARRAY,
    Vec<f64> => FLOAT8_ARRAY,
    Vec<DateTime<Utc>> => TIMESTAMPTZ_ARRAY,
    Vec<Option<i32>> => INT4_ARRAY,
    Vec<Option<i64>> => INT8_ARRAY,
    Vec<Option<String>> => TEXT_ARRAY,
);

fn typed<'p>(params: &'p [&'p dyn Param]) -> Vec<(&'p (dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|p| (*p as &(dyn ToSql + Sync), p.sql_type()))
        .collect()
}

/// An open transaction (or a savepoint inside one). Dropped without `commit`, it rolls back.
pub struct Tx<'a> {
    client: &'a mut Client,
    /// The savepoint this is, inside an outer transaction.
    savepoint: Option<String>,
    depth: u32,
    finished: bool,
    /// Work inside a transaction held across calls: its `commit` and `rollback` are the
    /// holder's, not this one's.
    joined: bool,
}

impl<'a> Tx<'a> {
    pub fn rows(&mut self, sql: &str, params: &[&dyn Param]) -> PgResult<Vec<Row>> {
        self.client.query_typed(sql, &typed(params))
    }

    pub fn row(&mut self, sql: &str, params: &[&dyn Param]) -> PgResult<Row> {
        self.client.query_typed_one(sql, &typed(params))
    }

    pub fn row_opt(&mut self, sql: &str, params: &[&dyn Param]) -> PgResult<Option<Row>> {
        self.client.query_typed_opt(sql, &typed(params))
    }

    /// A statement whose rows are not wanted: how many it affected.
    pub fn run(&mut self, sql: &str, params: &[&dyn Param]) -> PgResult<u64> {
        self.client.execute_typed(sql, &typed(params))
    }

    /// Statements without parameters (DDL, several at once), by the simple query protocol.
    pub fn ddl(&mut self, sql: &str) -> PgResult<()> {
        self.client.batch_execute(sql)
    }

    /// A savepoint: what it does is undone alone if it is dropped without `commit`.
    pub fn savepoint(&mut self) -> PgResult<Tx<'_>> {
        let name = format!("metricsctl_{}", self.depth + 1);
        self.client.batch_execute(&format!("SAVEPOINT {name}"))?;
        Ok(Tx {
            client: &mut *self.client,
            savepoint: Some(name),
            depth: self.depth + 1,
            finished: false,
            joined: false,
        })
    }

    /// Whether this works inside a transaction held across calls (a failure must be undone
    /// with a savepoint, not by ending the transaction).
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    pub fn commit(mut self) -> PgResult<()> {
        self.finished = true;
        if self.joined {
            return Ok(());
        }
        match &self.savepoint {
            Some(name) => self
                .client
                .batch_execute(&format!("RELEASE SAVEPOINT {name}")),
            None => self.client.batch_execute("COMMIT"),
        }
    }

    pub fn rollback(mut self) -> PgResult<()> {
        self.finished = true;
        if self.joined {
            return Ok(());
        }
        self.undo()
    }

    fn undo(&mut self) -> PgResult<()> {
        match &self.savepoint {
            Some(name) => self.client.batch_execute(&format!(
                "ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"
            )),
            None => self.client.batch_execute("ROLLBACK"),
        }
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.finished && !self.client.is_closed() {
            let _ = self.undo();
        }
    }
}

/// How a transaction begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Read only, one snapshot for all of it (a report's numbers agree with each other).
    ReadOnlySnapshot,
}

/// A connection with the facts about its database, and the settings each transaction pins.
pub struct Session {
    client: Client,
    facts: Arc<SchemaFacts>,
    target: DatabaseTarget,
    registration: interrupt::Registration,
    /// A transaction spans several calls (see [`Session::begin_held`]).
    held: bool,
}

impl Session {
    /// Connects and reads the database's facts (see [`SchemaFacts`]).
    pub fn open(target: &DatabaseTarget, timeout: Duration) -> Result<Session> {
        let client = crate::db::connect(target, timeout)?;
        let registration = interrupt::register(target);
        let mut session = Session {
            client,
            facts: Arc::new(SchemaFacts::default()),
            target: target.clone(),
            registration,
            held: false,
        };
        session.refresh_facts()?;
        Ok(session)
    }

    /// Another connection to the same database, taking the facts another session read.
    pub fn open_beside(&self, timeout: Duration) -> Result<Session> {
        let client = crate::db::connect(&self.target, timeout)?;
        let registration = interrupt::register(&self.target);
        Ok(Session {
            client,
            facts: self.facts.clone(),
            target: self.target.clone(),
            registration,
            held: false,
        })
    }

    /// The statement_timeout a transaction beginning now sets: the run's bound, where the
    /// session's own is not lower already (metricsctl never raises it).
    fn statement_timeout(&self) -> Option<String> {
        interrupt::statement_timeout_setting(self.facts.statement_timeout.milliseconds)
    }

    pub fn facts(&self) -> &SchemaFacts {
        &self.facts
    }

    /// The facts, to keep while the session runs a transaction.
    pub fn shared_facts(&self) -> Arc<SchemaFacts> {
        self.facts.clone()
    }

    pub fn target(&self) -> &DatabaseTarget {
        &self.target
    }

    /// Reads the facts again (after `migrate` made the tables, say).
    pub fn refresh_facts(&mut self) -> Result<()> {
        let facts = {
            // The session's own search path decides where the tables are: nothing pinned yet.
            // Nor is a statement_timeout set: the facts read the session's own.
            let mut tx = begin(
                &mut self.client,
                &self.registration,
                Access::ReadOnlySnapshot,
                None,
                None,
            )
            .map_err(|e| Error::new(What::Unreachable, e).context("setting up the session"))?;
            let facts = SchemaFacts::read(&mut tx).map_err(|e| {
                e.context(
                    "reading the database's schema, owners and privileges (before anything else)",
                )
            })?;
            tx.commit()?;
            facts
        };
        interrupt::note_session_timeout(&facts.statement_timeout);
        self.facts = Arc::new(facts);
        Ok(())
    }

    /// A transaction with the search path pinned to the tables' schema.
    pub fn begin(&mut self) -> PgResult<Tx<'_>> {
        let path = self.facts.search_path();
        let bound = self.statement_timeout();
        begin(
            &mut self.client,
            &self.registration,
            Access::ReadWrite,
            Some(&path),
            bound,
        )
    }

    /// A read-only transaction on one snapshot, the search path pinned.
    pub fn begin_read(&mut self) -> PgResult<Tx<'_>> {
        let path = self.facts.search_path();
        let bound = self.statement_timeout();
        begin(
            &mut self.client,
            &self.registration,
            Access::ReadOnlySnapshot,
            Some(&path),
            bound,
        )
    }

    /// Runs `work` in a transaction and commits it; an error rolls it back.
    pub fn write<T, E: From<postgres::Error>>(
        &mut self,
        work: impl FnOnce(&mut Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut tx = self.begin()?;
        let value = work(&mut tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs `work` in a read-only transaction on one snapshot.
    pub fn read<T, E: From<postgres::Error>>(
        &mut self,
        work: impl FnOnce(&mut Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut tx = self.begin_read()?;
        let value = work(&mut tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Reads in the held transaction where one is held (in a savepoint rolled back after, so that
    /// what the read sets for itself goes with it), else as [`Session::read`].
    pub fn read_in_held<T, E: From<postgres::Error>>(
        &mut self,
        work: impl FnOnce(&mut Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        if !self.held {
            return self.read(work);
        }
        let mut held = self.held()?;
        let mut reading = held.savepoint()?;
        let value = work(&mut reading)?;
        reading.rollback()?;
        Ok(value)
    }

    /// Opens a transaction that spans several calls (`replay --strict` keeps a file in one,
    /// `--dry-run` its whole run): each call works in it through [`Session::held`], until
    /// [`Session::end_held`].
    pub fn begin_held(&mut self, access: Access) -> PgResult<()> {
        let path = self.facts.search_path();
        let bound = self.statement_timeout();
        let mut tx = begin(
            &mut self.client,
            &self.registration,
            access,
            Some(&path),
            bound,
        )?;
        tx.finished = true;
        self.held = true;
        Ok(())
    }

    /// The transaction [`Session::begin_held`] opened, for one call's work (ending it is
    /// [`Session::end_held`]'s); a plain new transaction when none is held.
    pub fn held(&mut self) -> PgResult<Tx<'_>> {
        if !self.held {
            return self.begin();
        }
        Ok(Tx {
            client: &mut self.client,
            savepoint: None,
            depth: 0,
            finished: true,
            joined: true,
        })
    }

    pub fn is_holding(&self) -> bool {
        self.held
    }

    /// Commits (or rolls back) the held transaction.
    pub fn end_held(&mut self, commit: bool) -> PgResult<()> {
        self.held = false;
        self.client
            .batch_execute(if commit { "COMMIT" } else { "ROLLBACK" })
    }

    /// A statement that may not run inside a transaction block (`CREATE INDEX CONCURRENTLY`):
    /// it must name everything schema-qualified, since nothing is pinned for it.
    pub fn outside_transaction(&mut self, sql: &str) -> PgResult<()> {
        self.registration.note_outside_transaction();
        self.client.batch_execute(sql)
    }

    /// The connection itself, for what only makes sense on one server session (the online
    /// conversion, which checks first that it has one: [`crate::db::pooling`]).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// `BEGIN` and the settings every metricsctl transaction pins, in one round trip.
fn begin<'a>(
    client: &'a mut Client,
    registration: &interrupt::Registration,
    access: Access,
    search_path: Option<&str>,
    statement_timeout: Option<String>,
) -> PgResult<Tx<'a>> {
    let begin = match access {
        Access::ReadWrite => "BEGIN",
        Access::ReadOnlySnapshot => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    };
    let settings = queries::TRANSACTION_SETTINGS.ddl(
        &[],
        &[
            ("search_path", search_path.unwrap_or("")),
            (
                "pin_search_path",
                if search_path.is_some() { "on" } else { "off" },
            ),
            (
                "statement_timeout",
                statement_timeout.as_deref().unwrap_or(""),
            ),
            (
                "bound_statements",
                if statement_timeout.is_some() {
                    "on"
                } else {
                    "off"
                },
            ),
        ],
    );
    let messages = client.simple_query(&format!("{begin}; {settings}"))?;
    let backend = messages.iter().find_map(|message| match message {
        SimpleQueryMessage::Row(row) => {
            let pid = row.get("backend_pid")?.parse::<i32>().ok()?;
            Some((pid, row.get("transaction_start")?.to_string()))
        }
        _ => None,
    });
    if let Some((pid, transaction_start)) = backend {
        registration.note_transaction(pid, transaction_start);
    }
    Ok(Tx {
        client,
        savepoint: None,
        depth: 0,
        finished: false,
        joined: false,
    })
}

/// A transaction on a bare connection (one with no facts: the observer that asks what a stopped
/// run waited for, the pooling probe's second connection), with the search path pinned to
/// PostgreSQL's own objects and, when given, a statement timeout.
pub fn catalog_transaction(
    client: &mut Client,
    statement_timeout: Option<Duration>,
) -> PgResult<Tx<'_>> {
    let settings = queries::TRANSACTION_SETTINGS.ddl(
        &[],
        &[
            ("search_path", "pg_catalog, pg_temp"),
            ("pin_search_path", "on"),
            (
                "statement_timeout",
                &statement_timeout
                    .map(|t| t.as_millis().max(1).to_string())
                    .unwrap_or_default(),
            ),
            (
                "bound_statements",
                if statement_timeout.is_some() {
                    "on"
                } else {
                    "off"
                },
            ),
        ],
    );
    client.batch_execute(&format!("BEGIN; {settings}"))?;
    Ok(Tx {
        client,
        savepoint: None,
        depth: 0,
        finished: false,
        joined: false,
    })
}

/// `pg_catalog, "schema", pg_temp`: PostgreSQL's own objects first, so nothing planted in the
/// tables' schema can stand in for them; the tables' schema; temporary objects last, so none
/// left on a pooled server connection can stand in for the tables.
pub fn pinned_search_path(schema: &str) -> String {
    format!("pg_catalog, {}, pg_temp", quote_identifier(schema))
}

/// For migrations, which create objects unqualified (the guide's files): the tables' schema
/// first, since PostgreSQL creates an unqualified object in the path's first schema, and no
/// pg_catalog — a path that does not name it has it searched first, before the tables' schema.
pub fn creating_search_path(schema: &str) -> String {
    format!("{}, pg_temp", quote_identifier(schema))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_carry_the_type_they_are_sent_as() {
        let text: &str = "x";
        let values: [&dyn Param; 5] = [&1_i64, &2_i32, &text, &None::<i64>, &vec![Some(1_i64)]];
        let types: Vec<Type> = values.iter().map(|v| v.sql_type()).collect();
        assert_eq!(
            types,
            vec![
                Type::INT8,
                Type::INT4,
                Type::TEXT,
                Type::INT8,
                Type::INT8_ARRAY
            ]
        );
    }

    #[test]
    fn the_pinned_path_puts_the_catalog_first_and_temporary_objects_last() {
        assert_eq!(
            pinned_search_path("tele\"metry"),
            "pg_catalog, \"tele\"\"metry\", pg_temp"
        );
        assert_eq!(creating_search_path("public"), "\"public\", pg_temp");
    }
}
