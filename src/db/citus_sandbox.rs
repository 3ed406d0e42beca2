//! A throwaway Citus cluster: a coordinator and its workers, each a [`Sandbox`] started with
//! `shared_preload_libraries = 'citus'`. `demo --distributed` runs on one; so do the tests of
//! the distributed layout. Citus keeps its node list per database, so each database is made on
//! every node, the extension created in each, and the workers registered in the coordinator's.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::queries;
use super::sandbox::{PgBinaries, Sandbox, SandboxOptions};
use super::session::Session;
use super::target::{DatabaseTarget, TargetOrigin, TlsDefaults};

/// The library file PostgreSQL loads for Citus.
const CITUS_LIBRARY: &str = "citus.so";

/// Where the PostgreSQL the sandboxes use keeps its loadable libraries, if Citus is among them.
pub fn citus_library() -> anyhow::Result<Option<PathBuf>> {
    let binaries = PgBinaries::locate()?;
    let pg_config = binaries.tool("pg_config");
    let mut candidates = Vec::new();
    if let Ok(output) = std::process::Command::new(&pg_config)
        .arg("--pkglibdir")
        .output()
        && output.status.success()
    {
        candidates.push(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim(),
        ));
    }
    if let Some(prefix) = binaries.bindir.parent() {
        candidates.push(prefix.join("lib"));
        candidates.push(prefix.join("lib").join("postgresql"));
    }
    Ok(candidates
        .into_iter()
        .map(|dir| dir.join(CITUS_LIBRARY))
        .find(|library| library.is_file()))
}

/// A running coordinator and its workers.
#[derive(Debug)]
pub struct CitusSandbox {
    pub coordinator: Sandbox,
    pub workers: Vec<Sandbox>,
}

impl CitusSandbox {
    /// Starts a coordinator and `workers` workers; refuses where Citus is not installed.
    pub fn start(options: &SandboxOptions, workers: usize) -> anyhow::Result<CitusSandbox> {
        if citus_library()?.is_none() {
            bail!(
                "Citus is not installed for this PostgreSQL (no {CITUS_LIBRARY} in its library \
                 directory): build it with .ci/citus.sh, or install your distribution's Citus \
                 package"
            );
        }
        let mut options = options.clone();
        options.settings.extend(
            [
                ("shared_preload_libraries", "'citus'"),
                ("max_prepared_transactions", "100"),
                // Three servers on one small machine: eight shards (four per worker) keep the
                // connections a multi-shard statement opens to each worker few, so that
                // concurrent writers do not wait on one another for connection slots.
                ("citus.shard_count", "8"),
                // Citus runs a maintenance daemon per database and node.
                ("max_worker_processes", "128"),
            ]
            .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        let coordinator = Sandbox::start(&options)?;
        let workers = (0..workers)
            .map(|_| Sandbox::start(&options))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(CitusSandbox {
            coordinator,
            workers,
        })
    }

    /// The coordinator's URL for a database, as the trusted superuser.
    pub fn url(&self, database: &str) -> String {
        self.coordinator.url(database)
    }

    /// Makes `database` on every node with the Citus extension, and registers the workers in
    /// the coordinator's.
    pub fn create_database(&self, database: &str) -> anyhow::Result<()> {
        for node in std::iter::once(&self.coordinator).chain(&self.workers) {
            node.create_database(database)?;
            let mut session = superuser_session(&node.url(database))?;
            session
                .write(|tx| tx.ddl(queries::CITUS_EXTENSION_CREATE.sql()))
                .context("creating the citus extension")?;
        }
        let mut coordinator = superuser_session(&self.url(database))?;
        let host = "127.0.0.1";
        let port = i32::from(self.coordinator.port());
        coordinator
            .write(|tx| tx.run(queries::CITUS_COORDINATOR_SET.sql(), &[&host, &port]))
            .context("naming the coordinator to Citus")?;
        for worker in &self.workers {
            let port = i32::from(worker.port());
            coordinator
                .write(|tx| tx.run(queries::CITUS_WORKER_ADD.sql(), &[&host, &port]))
                .with_context(|| format!("adding the worker on port {port}"))?;
        }
        Ok(())
    }

    /// Drops `database` on every node (its workers' copies too, and with them the maintenance
    /// daemons Citus runs for it).
    pub fn drop_database(&self, database: &str) -> anyhow::Result<()> {
        for node in std::iter::once(&self.coordinator).chain(&self.workers) {
            node.drop_database(database)?;
        }
        Ok(())
    }

    /// Leaves every node running after this process exits.
    pub fn keep(self) -> anyhow::Result<()> {
        for worker in self.workers {
            worker.keep()?;
        }
        self.coordinator.keep()
    }

    /// The command that stops and removes every node of a kept cluster.
    pub fn removal_command(&self) -> String {
        std::iter::once(&self.coordinator)
            .chain(&self.workers)
            .map(Sandbox::removal_command)
            .collect::<Vec<_>>()
            .join(" && ")
    }
}

fn superuser_session(url: &str) -> anyhow::Result<Session> {
    let target = DatabaseTarget::parse(url, TargetOrigin::Sandbox, &TlsDefaults::default())?;
    Session::open(&target, Duration::from_secs(30)).map_err(|e| anyhow::anyhow!("{e}"))
}
