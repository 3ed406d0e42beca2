//! The schema as refinery migrations embedded from `migrations/`, their state in a database,
//! applying them safely, and repairing checksums that differ only in whitespace.
//!
//! refinery's default (non-grouped) mode commits a migration's SQL and its history row in two
//! separate transactions, so a crash in between would leave a schema change that the history
//! does not know about. metricsctl applies every pending migration and its history row in one
//! transaction, on the session that holds the migration lock, recording them in refinery's
//! history table exactly as refinery does.
//!
//! The lock that serialises concurrent runs is taken for the transaction (`pg_advisory_xact_lock`),
//! not the session: behind a transaction-pooling proxy a session-level lock would stay with
//! whichever server connection took it, held by nobody, long after metricsctl exited.
//!
//! The migrations name the guide's tables unqualified (their text is checksummed and cannot
//! change), so they run with the search path set to the tables' schema and pg_temp only:
//! PostgreSQL creates unqualified tables in the path's first schema, and searches pg_catalog
//! before the path when the path does not name it, so their `DEFAULT NOW()` still finds
//! PostgreSQL's own `now()` whatever another role planted there. Before committing, the column
//! defaults are checked to depend on PostgreSQL's own functions only, and the whole run rolls
//! back if not.
//!
//! Checksums: refinery hashes the raw file, so a checkout with CRLF line endings (git
//! `autocrlf` on Windows) would look modified against a database migrated from an LF build.
//! metricsctl hashes the SQL with its line endings normalised to LF; for an LF file that is the
//! very checksum refinery computes, so refinery's own CLI still agrees.

use std::time::Duration;

use anyhow::anyhow;
use postgres::error::ErrorPosition;
use refinery::Migration;
use serde::Serialize;

use crate::db::facts::HISTORY;
use crate::db::session::{creating_search_path, pinned_search_path};
use crate::db::{self, Helper, Layout, SchemaFacts, Session, Tx, queries};
use crate::error::{self, Error, What};
use crate::schema::distribution::{self, DistributionReport};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The history table refinery keeps.
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// The advisory lock that serialises `migrate` runs ("metrics" + 1 in ASCII).
pub const MIGRATION_LOCK_KEY: i64 = 0x6D65_7472_6963_7301;

/// A migration's SQL with CRLF (and lone CR) line endings turned into LF.
pub fn normalize_line_endings(sql: &str) -> String {
    sql.replace("\r\n", "\n").replace('\r', "\n")
}

/// A migration as refinery builds it from a file name and its SQL (the checksum covers the name,
/// the version and the SQL).
fn migration_from(version: i32, name: &str, sql: &str) -> Migration {
    Migration::unapplied(&format!("V{version}__{name}"), sql)
        .expect("an embedded migration's name parsed once already")
}

/// The migrations compiled into this binary, in version order, their SQL (and so their
/// checksum) with normalised line endings.
pub fn local_migrations() -> Vec<Migration> {
    let mut migrations: Vec<Migration> = embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| {
            let sql = normalize_line_endings(m.sql().unwrap_or_default());
            migration_from(m.version(), m.name(), &sql)
        })
        .collect();
    migrations.sort();
    migrations
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    Applied,
    Pending,
    /// Applied, but this binary's file for that version differs from what was applied.
    Changed,
    /// Applied, but this binary has no migration with that version.
    Unknown,
}

impl MigrationState {
    pub fn describe(self) -> &'static str {
        match self {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::Changed => "changed since applied",
            MigrationState::Unknown => "applied but unknown to this binary",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationStatus {
    pub version: i32,
    pub name: String,
    pub state: MigrationState,
    pub applied_on: Option<String>,
}

/// Every migration this binary or the database knows about.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaStatus {
    pub migrations: Vec<MigrationStatus>,
}

impl SchemaStatus {
    pub fn pending(&self) -> impl Iterator<Item = &MigrationStatus> {
        self.migrations
            .iter()
            .filter(|m| m.state == MigrationState::Pending)
    }

    pub fn drifted(&self) -> impl Iterator<Item = &MigrationStatus> {
        self.migrations
            .iter()
            .filter(|m| matches!(m.state, MigrationState::Changed | MigrationState::Unknown))
    }

    /// The highest applied version, if any.
    pub fn current_version(&self) -> Option<i32> {
        self.migrations
            .iter()
            .filter(|m| m.state != MigrationState::Pending)
            .map(|m| m.version)
            .max()
    }

    /// Refuses to go on when the database and this binary disagree about the past.
    pub fn ensure_no_drift(&self) -> error::Result<()> {
        let problems: Vec<String> = self
            .drifted()
            .map(|m| match m.state {
                MigrationState::Changed => format!(
                    "V{}__{} was applied on {} but this binary's file for it differs: if only its \
                     whitespace changed (line endings, say), `metricsctl migrate repair` shows the \
                     difference and accepts it; otherwise restore the file as it was when applied, \
                     or add a new migration instead of editing an applied one",
                    m.version,
                    m.name,
                    m.applied_on.as_deref().unwrap_or("an unknown date")
                ),
                _ => format!(
                    "V{}__{} is applied in the database but unknown to this binary: run a metricsctl \
                     that has it (a newer release), or remove its row from {HISTORY_TABLE} if it \
                     was applied by mistake",
                    m.version, m.name
                ),
            })
            .collect();
        if let Some(out_of_order) = self.pending().find(|m| {
            self.current_version()
                .is_some_and(|current| m.version < current)
        }) {
            return Err(Error::new(
                What::Drift,
                anyhow!(
                    "V{}__{} is pending but a later version is already applied; refinery applies \
                 migrations in order only. Apply it by hand and record it, or renumber it",
                    out_of_order.version,
                    out_of_order.name
                ),
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::new(
                What::Drift,
                anyhow!(
                    "the database's schema history has drifted from this binary's migrations; \
                 nothing was changed:\n  {}",
                    problems.join("\n  ")
                ),
            ))
        }
    }
}

struct AppliedRow {
    version: i32,
    name: String,
    applied_on: String,
    checksum: String,
}

/// The history as recorded; refused when the history table is something metricsctl did not make.
fn applied_rows(tx: &mut Tx<'_>, facts: &SchemaFacts) -> error::Result<Vec<AppliedRow>> {
    match facts.helper(HISTORY) {
        Helper::Absent => return Ok(Vec::new()),
        Helper::Untrusted { .. } => {
            return Err(Error::new(
                What::WrongSchema,
                anyhow!(
                    "{}; nothing was read from it or written to it",
                    facts.untrusted_helper_message(HISTORY).unwrap_or_default()
                ),
            ));
        }
        Helper::Trusted => {}
    }
    Ok(tx
        .rows(queries::MIGRATION_HISTORY.sql(), &[])?
        .into_iter()
        .map(|row| AppliedRow {
            version: row.get("version"),
            name: row.get::<_, Option<String>>("name").unwrap_or_default(),
            applied_on: row
                .get::<_, Option<String>>("applied_on")
                .unwrap_or_default(),
            checksum: row.get::<_, Option<String>>("checksum").unwrap_or_default(),
        })
        .collect())
}

/// Reads the state of every migration without writing anything (refinery's own reader creates
/// its history table, which a status or dry run must not do).
pub fn read_status(tx: &mut Tx<'_>, facts: &SchemaFacts) -> error::Result<SchemaStatus> {
    let applied = applied_rows(tx, facts)?;
    let local = local_migrations();
    let mut migrations = Vec::new();
    for migration in &local {
        let version = migration.version();
        let status = match applied.iter().find(|a| a.version == version) {
            Some(row) => MigrationStatus {
                version,
                name: migration.name().to_string(),
                state: if row.checksum == migration.checksum().to_string()
                    && row.name == migration.name()
                {
                    MigrationState::Applied
                } else {
                    MigrationState::Changed
                },
                applied_on: Some(row.applied_on.clone()),
            },
            None => MigrationStatus {
                version,
                name: migration.name().to_string(),
                state: MigrationState::Pending,
                applied_on: None,
            },
        };
        migrations.push(status);
    }
    for row in applied
        .iter()
        .filter(|a| !local.iter().any(|m| m.version() == a.version))
    {
        migrations.push(MigrationStatus {
            version: row.version,
            name: row.name.clone(),
            state: MigrationState::Unknown,
            applied_on: Some(row.applied_on.clone()),
        });
    }
    migrations.sort_by_key(|m| m.version);
    Ok(SchemaStatus { migrations })
}

/// The pending migrations with their SQL, for `--dry-run`.
pub fn pending_sql(status: &SchemaStatus) -> Vec<(MigrationStatus, String)> {
    let local = local_migrations();
    status
        .pending()
        .filter_map(|pending| {
            local
                .iter()
                .find(|m| m.version() == pending.version)
                .map(|m| (pending.clone(), m.sql().unwrap_or_default().to_string()))
        })
        .collect()
}

/// What a migrate run did.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    pub applied: Vec<MigrationStatus>,
    pub schema_version: Option<i32>,
    pub layout: Layout,
    /// With `--partitioned`: the monthly partitions this run created.
    pub partitions_created: Vec<String>,
    /// With `--distributed`: what Citus was asked to distribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<DistributionReport>,
    pub elapsed_ms: u128,
}

/// The layout `migrate` builds besides the guide's migrations.
#[derive(Debug, Clone, Copy, Default)]
pub struct LayoutWanted {
    /// `--partitioned`: metrics partitioned by month.
    pub partitioned: bool,
    /// `--distributed`: both tables distributed by event_id on a Citus coordinator.
    pub distributed: bool,
}

/// Brings the schema up to date, in one transaction: the migrations, their history rows and
/// (with `partitioned`) the partitioned layout all commit together or not at all. Concurrent runs
/// (several replicas deploying at once) are serialised by an advisory lock held by that very
/// transaction; the waiting ones then find nothing to do. `on_wait` is told who holds the lock if
/// we have to wait.
pub fn migrate(
    session: &mut Session,
    lock_timeout: Duration,
    wanted: LayoutWanted,
    on_wait: impl FnMut(&db::LockHolder),
) -> error::Result<MigrationReport> {
    let started = std::time::Instant::now();
    refuse_adopting_tables_of_another_role(session.facts())?;
    crate::schema::partitions::refuse_on_a_standby(session.facts(), "migrate")?;
    let Some(schema) = session.facts().schema.clone() else {
        return Err(Error::new(
            What::WrongSchema,
            anyhow!(session.facts().no_schema_message()),
        ));
    };
    let report = {
        let mut tx = session.begin()?;
        db::lock_transaction(
            &mut tx,
            MIGRATION_LOCK_KEY,
            "migration",
            lock_timeout,
            on_wait,
        )?;
        // Read under the lock: another replica may have just applied everything.
        let facts = SchemaFacts::read(&mut tx)?;
        let before = read_status(&mut tx, &facts)?;
        before.ensure_no_drift()?;
        let pending: Vec<MigrationStatus> = before.pending().cloned().collect();
        db::set_lock_timeout(&mut tx, lock_timeout)?;
        if !pending.is_empty() {
            let local = local_migrations();
            let to_apply: Vec<&Migration> = local
                .iter()
                .filter(|m| pending.iter().any(|p| p.version == m.version()))
                .collect();
            apply(&mut tx, &schema, &facts, &to_apply)?;
            refuse_squatted_names(&mut tx, &facts)?;
        }
        let (partitions_created, distribution) =
            build_wanted_layout(&mut tx, wanted, lock_timeout)?;
        let facts = SchemaFacts::read(&mut tx)?;
        let after = read_status(&mut tx, &facts)?;
        let applied = pending
            .into_iter()
            .filter_map(|p| {
                after
                    .migrations
                    .iter()
                    .find(|m| m.version == p.version && m.state == MigrationState::Applied)
                    .cloned()
            })
            .collect();
        let layout = crate::schema::partitions::layout(&mut tx)?;
        tx.commit()?;
        MigrationReport {
            applied,
            schema_version: after.current_version(),
            layout,
            partitions_created,
            distribution,
            elapsed_ms: started.elapsed().as_millis(),
        }
    };
    session.refresh_facts()?;
    Ok(report)
}

/// Inside the migration's transaction: the monthly partitions (`--partitioned`), then the
/// distributed layout (`--distributed`). The partitions it created, and what it distributed.
fn build_wanted_layout(
    tx: &mut Tx<'_>,
    wanted: LayoutWanted,
    lock_timeout: Duration,
) -> error::Result<(Vec<String>, Option<DistributionReport>)> {
    let facts = SchemaFacts::read(tx)?;
    let partitions_created: Vec<String> = if wanted.partitioned {
        crate::schema::partitions::ensure_partitioned_layout(tx, &facts, lock_timeout)?
            .months
            .into_iter()
            .filter(|m| m.action != "present")
            .map(|m| m.partition)
            .collect()
    } else {
        Vec::new()
    };
    if !partitions_created.is_empty() {
        refuse_squatted_names(tx, &facts)?;
    }
    let distribution = if wanted.distributed {
        let facts = SchemaFacts::read(tx)?;
        let layout = crate::schema::partitions::layout(tx)?;
        Some(distribution::ensure_distributed_layout(tx, &facts, layout)?)
    } else {
        None
    };
    Ok((partitions_created, distribution))
}

/// `migrate` adopts tables that already exist (`CREATE TABLE IF NOT EXISTS`, for a database the
/// guide's init.sql made). A table another role made and owns is not adopted: its owner could
/// add triggers that run as every writer.
fn refuse_adopting_tables_of_another_role(facts: &SchemaFacts) -> error::Result<()> {
    for table in ["processed_events", "metrics"] {
        if let Some(relation) = facts.relation(table)
            && !relation.acts_as_owner
        {
            return Err(Error::new(
                What::Refused,
                anyhow!(
                    "{} exists and is owned by {}, not by {} (who runs migrate): migrate does not \
                     adopt another role's table as the guide's. Run migrate as {} if that is the \
                     migrator; otherwise find out who made it. Nothing was changed",
                    facts.qualified(table),
                    relation.owner,
                    facts.current_user,
                    relation.owner
                ),
            ));
        }
    }
    Ok(())
}

/// Every migration's SQL and its history row, inside the migration's transaction. The
/// migrations run with the tables' schema first on the search path (they create unqualified),
/// and what they made must not depend on another role's functions.
fn apply(
    tx: &mut Tx<'_>,
    schema: &str,
    facts: &SchemaFacts,
    migrations: &[&Migration],
) -> error::Result<()> {
    tx.ddl(&facts.ddl(&queries::MIGRATION_HISTORY_CREATE, &[], &[]))?;
    set_search_path(tx, &creating_search_path(schema))?;
    for migration in migrations {
        let sql = migration.sql().unwrap_or_default();
        tx.ddl(sql)
            .map_err(|e| Error::new(What::Database, explain_migration_error(migration, sql, &e)))?;
    }
    set_search_path(tx, &pinned_search_path(schema))?;
    refuse_foreign_dependencies(tx, facts)?;
    for migration in migrations {
        let applied_on = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        tx.run(
            queries::MIGRATION_HISTORY_INSERT.sql(),
            &[
                &migration.version(),
                &migration.name(),
                &applied_on,
                &migration.checksum().to_string(),
            ],
        )?;
    }
    Ok(())
}

fn set_search_path(tx: &mut Tx<'_>, path: &str) -> Result<(), postgres::Error> {
    tx.row(queries::SET_LOCAL_SEARCH_PATH.sql(), &[&path])?;
    Ok(())
}

/// Rolls the migration back if one of the names the guide gives its keys, indexes and sequence is
/// held by something else (a relation another role planted): PostgreSQL would have taken another
/// name, or skipped the index.
fn refuse_squatted_names(tx: &mut Tx<'_>, facts: &SchemaFacts) -> error::Result<()> {
    let mut problems = Vec::new();
    for row in tx.rows(queries::GUIDE_NAMES.sql(), &[])? {
        let name: String = row.get("name");
        let (kind, owner, of_table): (Option<String>, Option<String>, Option<String>) =
            (row.get("kind"), row.get("owner"), row.get("of_table"));
        let table = if name.contains("processed_events") {
            "processed_events"
        } else {
            "metrics"
        };
        let expected_kinds: &[&str] = if name == "metrics_id_seq" {
            &["S"]
        } else {
            &["i", "I"]
        };
        let fine = matches!((&kind, &of_table), (Some(k), Some(t)) if expected_kinds.contains(&k.as_str()) && t == table);
        match (fine, kind, owner) {
            (true, _, _) => {}
            (false, Some(_), Some(owner)) => problems.push(format!(
                "{} is taken by an object owned by {owner} that is not the guide's (the {} of \
                 {table})",
                facts.qualified(&name),
                if name == "metrics_id_seq" {
                    "id sequence"
                } else {
                    "key or index"
                }
            )),
            // The guide's object under that name is missing: the migration did not make it.
            (false, _, _) => problems.push(format!("{} was not made", facts.qualified(&name))),
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        What::Refused,
        anyhow!(
            "applying migrations was rolled back, nothing was changed: {} — PostgreSQL would \
             have given the guide's object another name or none, and the consumer and metricsctl \
             rely on these. Drop what holds the names (it was not made by migrate), then rerun",
            problems.join("; ")
        ),
    ))
}

/// Rolls the migration back if a column default of the guide's tables calls a function (or
/// operator) that is not PostgreSQL's own.
fn refuse_foreign_dependencies(tx: &mut Tx<'_>, facts: &SchemaFacts) -> error::Result<()> {
    let rows = tx.rows(queries::FOREIGN_DEPENDENCIES.sql(), &[])?;
    if rows.is_empty() {
        return Ok(());
    }
    let found: Vec<String> = rows
        .iter()
        .map(|row| {
            format!(
                "the default of {}.{} would call {} (owned by {})",
                row.get::<_, String>("table_name"),
                row.get::<_, String>("column_name"),
                row.get::<_, String>("object"),
                row.get::<_, String>("owner"),
            )
        })
        .collect();
    Err(Error::new(
        What::Refused,
        anyhow!(
            "applying migrations was rolled back, nothing was changed: {}, not PostgreSQL's own — \
             a role that may create objects in schema {} planted it. Drop it, revoke CREATE on the \
             schema from the roles that should not have it, then rerun migrate",
            found.join("; "),
            facts.schema_name()
        ),
    ))
}

/// The database's own words, and where in which migration it stopped.
fn explain_migration_error(
    migration: &Migration,
    sql: &str,
    error: &postgres::Error,
) -> anyhow::Error {
    let file = format!("V{}__{}.sql", migration.version(), migration.name());
    let Some(db) = error.as_db_error() else {
        return anyhow!(
            "applying migrations failed and was rolled back, nothing was changed: {file} could \
             not run: {error}"
        );
    };
    let mut text = format!(
        "applying migrations failed and was rolled back, nothing was changed: {file} failed: \
         {} {}: {}",
        db.severity(),
        db.code().code(),
        db.message()
    );
    if let Some(ErrorPosition::Original(position)) = db.position() {
        let before: String = sql.chars().take(*position as usize - 1).collect();
        let line = before.matches('\n').count() + 1;
        let statement = sql.lines().nth(line - 1).unwrap_or_default().trim();
        text.push_str(&format!(" (line {line} of {file}: `{statement}`)"));
    }
    if let Some(detail) = db.detail() {
        text.push_str(&format!(". {detail}"));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!(". Hint: {hint}"));
    }
    anyhow!(crate::text::escape_control(&text).into_owned())
}

/// How an applied migration's text differs from this binary's, when it is only whitespace.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    pub version: i32,
    pub name: String,
    /// The difference, in words: "the applied file had CRLF line endings", ...
    pub difference: String,
    pub recorded_checksum: String,
    pub new_checksum: String,
}

/// An applied migration that differs by more than whitespace (or is unknown): still drift.
#[derive(Debug, Clone, Serialize)]
pub struct Unrepairable {
    pub version: i32,
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    pub dry_run: bool,
    pub repaired: Vec<Repair>,
    pub refused: Vec<Unrepairable>,
}

/// The whitespace-only variants of `sql` an older build could have checksummed, each with
/// what differs: line endings, trailing whitespace on lines, the final newline, a byte order
/// mark. The history keeps only a checksum, so this is how a whitespace-only change is proved.
fn whitespace_variants(sql: &str) -> Vec<(String, String)> {
    let mut variants = Vec::new();
    let strip_trailing = |text: &str| -> String {
        text.split('\n')
            .map(|line| line.trim_end_matches([' ', '\t']))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for crlf in [false, true] {
        for stripped in [false, true] {
            for ending in ["as is", "removed", "added"] {
                for bom in [false, true] {
                    let mut text = if stripped {
                        strip_trailing(sql)
                    } else {
                        sql.to_string()
                    };
                    match ending {
                        "removed" => text = text.trim_end_matches('\n').to_string(),
                        "added" => text.push('\n'),
                        _ => {}
                    }
                    if crlf {
                        text = text.replace('\n', "\r\n");
                    }
                    if bom {
                        text.insert(0, '\u{feff}');
                    }
                    if text == sql {
                        continue;
                    }
                    let mut what = Vec::new();
                    if crlf {
                        what.push("the applied file had CRLF line endings, this binary's has LF");
                    }
                    if stripped {
                        what.push("this binary's file has trailing spaces or tabs the applied one had not");
                    }
                    match ending {
                        "removed" => what.push("the applied file had no final newline"),
                        "added" => what.push("the applied file had one more newline at its end"),
                        _ => {}
                    }
                    if bom {
                        what.push("the applied file began with a byte order mark");
                    }
                    variants.push((text, what.join("; ")));
                }
            }
        }
    }
    variants
}

/// Finds, for each applied migration that differs from this binary's, whether the difference
/// is whitespace only; unless `dry_run`, records the new checksum of those (in one transaction,
/// under the migration lock). Any other difference is left as drift.
pub fn repair(
    session: &mut Session,
    lock_timeout: Duration,
    dry_run: bool,
    on_wait: impl FnMut(&db::LockHolder),
) -> error::Result<RepairReport> {
    if !dry_run {
        crate::schema::partitions::refuse_on_a_standby(session.facts(), "migrate repair")?;
    }
    let facts = session.shared_facts();
    let mut tx = session.begin()?;
    db::lock_transaction(
        &mut tx,
        MIGRATION_LOCK_KEY,
        "migration",
        lock_timeout,
        on_wait,
    )?;
    let report = repair_locked(&mut tx, &facts, dry_run)?;
    tx.commit()?;
    Ok(report)
}

fn repair_locked(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    dry_run: bool,
) -> error::Result<RepairReport> {
    let applied = applied_rows(tx, facts).map_err(|e| {
        Error::new(What::WrongSchema, e.into_inner()).context("cannot read the migration history")
    })?;
    let local = local_migrations();
    let mut report = RepairReport {
        dry_run,
        repaired: Vec::new(),
        refused: Vec::new(),
    };
    for row in &applied {
        match examine(row, &local) {
            Some(Ok(repair)) => report.repaired.push(repair),
            Some(Err(refused)) => report.refused.push(refused),
            None => {}
        }
    }
    if !dry_run && !report.repaired.is_empty() {
        record_checksums(tx, &report.repaired)?;
    }
    Ok(report)
}

/// An applied migration against this binary's: nothing to do (`None`), a whitespace-only
/// difference to accept, or a difference to refuse.
fn examine(row: &AppliedRow, local: &[Migration]) -> Option<Result<Repair, Unrepairable>> {
    let refuse = |reason: String| {
        Some(Err(Unrepairable {
            version: row.version,
            name: row.name.clone(),
            reason,
        }))
    };
    let Some(migration) = local.iter().find(|m| m.version() == row.version) else {
        return refuse("applied in the database but unknown to this binary".to_string());
    };
    let new_checksum = migration.checksum().to_string();
    if row.checksum == new_checksum && row.name == migration.name() {
        return None;
    }
    if row.name != migration.name() {
        return refuse(format!(
            "applied under the name {:?}, this binary calls it {:?}: not a whitespace change",
            row.name,
            migration.name()
        ));
    }
    let sql = migration.sql().unwrap_or_default();
    let found = whitespace_variants(sql).into_iter().find(|(variant, _)| {
        migration_from(migration.version(), migration.name(), variant)
            .checksum()
            .to_string()
            == row.checksum
    });
    match found {
        Some((_, difference)) => Some(Ok(Repair {
            version: row.version,
            name: row.name.clone(),
            difference,
            recorded_checksum: row.checksum.clone(),
            new_checksum,
        })),
        None => refuse(
            "its SQL differs from the applied one by more than whitespace (line endings, \
             trailing spaces, final newline, byte order mark): restore the file as it was, or \
             add a new migration"
                .to_string(),
        ),
    }
}

/// Records the accepted checksums, all or none (the caller's transaction).
fn record_checksums(tx: &mut Tx<'_>, repaired: &[Repair]) -> error::Result<()> {
    for repair in repaired {
        let updated = tx.run(
            queries::MIGRATION_HISTORY_REPAIR.sql(),
            &[
                &repair.version,
                &repair.recorded_checksum,
                &repair.new_checksum,
            ],
        )?;
        if updated != 1 {
            return Err(Error::new(
                What::Refused,
                anyhow!(
                    "V{}__{}'s history row changed while it was examined; nothing was repaired, \
                     run `metricsctl migrate repair` again",
                    repair.version,
                    repair.name
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{CheckReport, Status};

    #[test]
    fn migrations_are_embedded_in_version_order() {
        let versions: Vec<i32> = local_migrations().iter().map(|m| m.version()).collect();
        assert_eq!(versions, vec![1, 2]);
    }

    #[test]
    fn an_lf_file_keeps_refinerys_own_checksum_and_a_crlf_one_gets_the_same() {
        let raw = embedded::migrations::runner().get_migrations().clone();
        for (ours, theirs) in local_migrations().iter().zip(raw.iter()) {
            let sql = theirs.sql().unwrap();
            assert!(
                !sql.contains('\r'),
                "migrations/ must be LF (see .gitattributes)"
            );
            assert_eq!(ours.checksum(), theirs.checksum(), "{}", theirs.name());
            let crlf = migration_from(
                theirs.version(),
                theirs.name(),
                &normalize_line_endings(&sql.replace('\n', "\r\n")),
            );
            assert_eq!(crlf.checksum(), theirs.checksum());
            // ... while refinery, hashing raw bytes, would call the CRLF file changed.
            let raw_crlf =
                migration_from(theirs.version(), theirs.name(), &sql.replace('\n', "\r\n"));
            assert_ne!(raw_crlf.checksum(), theirs.checksum());
        }
    }

    #[test]
    fn whitespace_variants_name_what_differs_and_leave_the_sql_alone() {
        let variants = whitespace_variants("SELECT 1; \nSELECT 2;\n");
        let crlf = variants
            .iter()
            .find(|(text, _)| text == "SELECT 1; \r\nSELECT 2;\r\n")
            .unwrap();
        assert!(crlf.1.contains("CRLF"), "{}", crlf.1);
        assert!(variants.iter().all(|(text, _)| {
            text.replace(['\r', '\u{feff}'], "")
                .split_whitespace()
                .eq("SELECT 1; SELECT 2;".split_whitespace())
        }));
        assert!(
            variants
                .iter()
                .all(|(text, _)| text != "SELECT 1; \nSELECT 2;\n")
        );
    }

    fn status_of(states: &[(i32, MigrationState)]) -> SchemaStatus {
        SchemaStatus {
            migrations: states
                .iter()
                .map(|(version, state)| MigrationStatus {
                    version: *version,
                    name: format!("m{version}"),
                    state: *state,
                    applied_on: None,
                })
                .collect(),
        }
    }

    #[test]
    fn status_is_ok_warning_or_critical() {
        use MigrationState::*;
        assert_eq!(
            status_of(&[(1, Applied), (2, Applied)]).status(),
            Status::Ok
        );
        assert_eq!(
            status_of(&[(1, Applied), (2, Pending)]).status(),
            Status::Warning
        );
        assert_eq!(
            status_of(&[(1, Changed), (2, Pending)]).status(),
            Status::Critical
        );
        assert_eq!(
            status_of(&[(1, Applied), (9, Unknown)]).status(),
            Status::Critical
        );
    }

    #[test]
    fn drift_is_refused_with_the_version_named() {
        use MigrationState::*;
        let err = status_of(&[(1, Changed), (2, Applied)])
            .ensure_no_drift()
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("V1__m1"), "{message}");
        assert!(message.contains("migrate repair"), "{message}");
        assert_eq!(err.what(), What::Drift);
        assert!(
            status_of(&[(1, Applied), (2, Pending)])
                .ensure_no_drift()
                .is_ok()
        );
    }

    #[test]
    fn a_pending_migration_below_the_applied_ones_is_refused() {
        use MigrationState::*;
        let err = status_of(&[(1, Pending), (2, Applied)])
            .ensure_no_drift()
            .unwrap_err();
        assert!(err.to_string().contains("V1__m1"));
    }
}
