//! A throwaway PostgreSQL cluster on a free loopback port in a temporary directory, started
//! with the machine's own initdb/pg_ctl. `demo` runs on one; the test harness starts one too.
//!
//! PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.
//! The cluster is stopped and its directory removed when the `Sandbox` is dropped. A process that
//! dies without dropping it (SIGKILL) leaves the directory behind; the next `Sandbox::start`
//! removes such leftovers, recognised by an owner pid that is no longer alive.

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, anyhow, bail};
use nix::unistd::{Gid, Pid, Uid, User};

use crate::text::shell_quote;

/// The prefix of every sandbox directory, so leftovers can be recognised.
const DIR_PREFIX: &str = "metricsctl-pg-";
const OWNER_FILE: &str = "owner.pid";
const KEPT_FILE: &str = "kept";
/// The superuser, trusted on loopback only.
pub const SUPERUSER: &str = "postgres";

pub const INSTALL_HINT: &str = "Install them: Debian/Ubuntu `apt-get install -y postgresql`, \
     Fedora/RHEL `dnf install -y postgresql-server`, macOS `brew install postgresql@16`; \
     or point metricsctl at an existing server with --database-url / DATABASE_URL.";

/// Where the PostgreSQL server programs live.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub bindir: PathBuf,
}

/// Names the directory of the PostgreSQL programs to use, skipping the search: how CI runs the
/// tests on each major version in turn.
pub const BINDIR_VARIABLE: &str = "METRICSCTL_PG_BINDIR";

impl PgBinaries {
    /// The directory `METRICSCTL_PG_BINDIR` names, if set; otherwise looks on PATH, then in
    /// `pg_config --bindir`, then under /usr/lib/postgresql/*/bin (newest version first), for a
    /// directory holding initdb, pg_ctl and postgres.
    pub fn locate() -> anyhow::Result<PgBinaries> {
        if let Some(dir) = std::env::var_os(BINDIR_VARIABLE).filter(|dir| !dir.is_empty()) {
            return Self::in_named_dir(Path::new(&dir));
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut candidates: Vec<PathBuf> = std::env::split_paths(&path).collect();
        if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
            && output.status.success()
        {
            candidates.push(PathBuf::from(
                String::from_utf8_lossy(&output.stdout).trim().to_string(),
            ));
        }
        candidates.extend(versioned_install_dirs(Path::new("/usr/lib/postgresql")));
        Self::locate_in(&candidates)
    }

    /// The search itself, over an explicit list of directories.
    pub fn locate_in(candidates: &[PathBuf]) -> anyhow::Result<PgBinaries> {
        for dir in candidates {
            let initdb = dir.join("initdb");
            if !initdb.is_file() {
                continue;
            }
            // /usr/local/bin/initdb may be a link into the real bindir, which holds the rest.
            let real_dir = fs::canonicalize(&initdb)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| dir.clone());
            if ["pg_ctl", "postgres"]
                .iter()
                .all(|tool| real_dir.join(tool).is_file())
            {
                return Ok(PgBinaries { bindir: real_dir });
            }
        }
        bail!(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH, in \
             `pg_config --bindir`, or under /usr/lib/postgresql/*/bin. {INSTALL_HINT}"
        )
    }

    /// The directory named by METRICSCTL_PG_BINDIR: it must hold the programs itself, no fallback.
    fn in_named_dir(dir: &Path) -> anyhow::Result<PgBinaries> {
        let missing: Vec<&str> = ["initdb", "pg_ctl", "postgres"]
            .into_iter()
            .filter(|tool| !dir.join(tool).is_file())
            .collect();
        if !missing.is_empty() {
            bail!(
                "{BINDIR_VARIABLE}={} has no {}: point it at the bin directory of a PostgreSQL \
                 installation (the one holding initdb, pg_ctl and postgres), or unset it to use \
                 the machine's own",
                dir.display(),
                missing.join(", ")
            );
        }
        // Absolute, since the programs run in the sandbox's directory.
        Ok(PgBinaries {
            bindir: fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
        })
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }
}

fn versioned_install_dirs(root: &Path) -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// A certificate and key (PEM) for a sandbox that speaks TLS, and the CA whose client
/// certificates it accepts (`ssl_ca_file`), if any.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub certificate_pem: String,
    pub private_key_pem: String,
    pub client_ca_pem: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Keep PostgreSQL's default durability (fsync on). Benchmarks want this; tests and the
    /// demo run faster without it, and lose nothing they care about.
    pub durable: bool,
    pub tls: Option<TlsFiles>,
    /// Extra postgresql.conf settings, e.g. ("timezone", "'Asia/Kolkata'").
    pub settings: Vec<(String, String)>,
    /// pg_hba.conf lines to put before the sandbox's own (the first that matches decides), e.g.
    /// `hostssl all certuser 127.0.0.1/32 cert`.
    pub hba_first: Vec<String>,
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Sandbox {
    root: PathBuf,
    binaries: PgBinaries,
    run_as: Option<(Uid, Gid)>,
    port: u16,
    armed: bool,
}

impl Sandbox {
    pub fn start(options: &SandboxOptions) -> anyhow::Result<Sandbox> {
        let binaries = PgBinaries::locate()?;
        let run_as = server_account()?;
        remove_leftovers();
        let mut sandbox = Sandbox::in_new_directory(binaries, run_as)?;
        sandbox.init(options)?;
        sandbox.launch()?;
        Ok(sandbox)
    }

    /// A cluster not yet made: its directory (marked with this process as its owner, so a later
    /// run can remove it if this one is killed), handed to the server's account.
    fn in_new_directory(
        binaries: PgBinaries,
        run_as: Option<(Uid, Gid)>,
    ) -> anyhow::Result<Sandbox> {
        let root = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .context("creating a directory for the throwaway PostgreSQL")?
            .keep();
        let sandbox = Sandbox {
            root,
            binaries,
            run_as,
            port: 0,
            armed: true,
        };
        fs::write(
            sandbox.root.join(OWNER_FILE),
            std::process::id().to_string(),
        )?;
        if let Some((uid, gid)) = run_as {
            chown(&sandbox.root, Some(uid.as_raw()), Some(gid.as_raw()))
                .context("handing the sandbox directory to the postgres user")?;
        }
        Ok(sandbox)
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// A command for a PostgreSQL tool, run as the postgres user when we are root.
    fn command(&self, tool: &str) -> Command {
        let mut command = Command::new(self.binaries.tool(tool));
        command.current_dir(&self.root);
        for variable in [
            "PGDATA",
            "PGPORT",
            "PGHOST",
            "PGUSER",
            "PGDATABASE",
            "PGOPTIONS",
            "PGSSLMODE",
            "PGSSLCERT",
            "PGSSLKEY",
            "PGSSLROOTCERT",
            "PGPASSFILE",
            "PGSERVICE",
        ] {
            command.env_remove(variable);
        }
        // The server's own connections (Citus to its workers, pg_basebackup) read libpq's files
        // under HOME: the sandbox's, not the caller's (as root, the postgres user may not even
        // look into /root).
        command.env("HOME", &self.root);
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
        command
    }

    fn init(&self, options: &SandboxOptions) -> anyhow::Result<()> {
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .output()
            .context("running initdb")?;
        ensure_success("initdb", &output)?;

        // Loopback only; the superuser is trusted so the sandbox needs no password, every other
        // role must give one (tests rely on that for wrong-password checks).
        let mut hba: String = options
            .hba_first
            .iter()
            .map(|line| format!("{line}\n"))
            .collect();
        hba.push_str(
            "local all all trust\n\
             host all postgres 127.0.0.1/32 trust\n\
             host replication postgres 127.0.0.1/32 trust\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        );
        fs::write(self.data_dir().join("pg_hba.conf"), hba)?;

        let mut settings = vec![
            ("listen_addresses".to_string(), "'127.0.0.1'".to_string()),
            (
                "unix_socket_directories".to_string(),
                format!("'{}'", self.root.display()),
            ),
            ("max_connections".to_string(), "200".to_string()),
        ];
        if !options.durable {
            for (name, value) in [
                ("fsync", "off"),
                ("full_page_writes", "off"),
                ("synchronous_commit", "off"),
            ] {
                settings.push((name.to_string(), value.to_string()));
            }
        }
        if let Some(tls) = &options.tls {
            self.write_private_file("server.crt", &tls.certificate_pem)?;
            self.write_private_file("server.key", &tls.private_key_pem)?;
            settings.push(("ssl".to_string(), "on".to_string()));
            if let Some(ca) = &tls.client_ca_pem {
                self.write_private_file("client_ca.crt", ca)?;
                settings.push(("ssl_ca_file".to_string(), "'client_ca.crt'".to_string()));
            }
        }
        settings.extend(options.settings.iter().cloned());
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir().join("postgresql.conf"))?;
        writeln!(conf, "\n# metricsctl sandbox")?;
        for (name, value) in settings {
            writeln!(conf, "{name} = {value}")?;
        }
        Ok(())
    }

    fn write_private_file(&self, name: &str, contents: &str) -> anyhow::Result<()> {
        let path = self.data_dir().join(name);
        fs::write(&path, contents)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        if let Some((uid, gid)) = self.run_as {
            chown(&path, Some(uid.as_raw()), Some(gid.as_raw()))?;
        }
        Ok(())
    }

    /// Starts the server on a free port, trying another if one is taken meanwhile.
    fn launch(&mut self) -> anyhow::Result<()> {
        let mut last_error = None;
        for _ in 0..5 {
            self.port = free_loopback_port()?;
            match self.pg_ctl(&["start", "-w", "-t", "60"]) {
                Ok(()) => return Ok(()),
                Err(error) => last_error = Some(error),
            }
            if !self.log_tail().contains("could not bind") {
                break;
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("PostgreSQL did not start")))
    }

    fn pg_ctl(&self, action: &[&str]) -> anyhow::Result<()> {
        let output = self
            .command("pg_ctl")
            .args(action)
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .arg("-o")
            .arg(format!("-p {}", self.port))
            .output()
            .with_context(|| format!("running pg_ctl {}", action[0]))?;
        ensure_success(&format!("pg_ctl {}", action[0]), &output).map_err(|error| {
            anyhow!(
                "{error:#}\nserver log ({}):\n{}",
                self.log_file().display(),
                self.log_tail()
            )
        })
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn directory(&self) -> &Path {
        &self.root
    }

    /// A URL for one of the cluster's databases, as the trusted superuser.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// A hot standby of this cluster, streaming from it (`pg_basebackup -R`), in a directory and
    /// on a port of its own: the read-only replica operators point monitoring at.
    pub fn start_standby(&self) -> anyhow::Result<Sandbox> {
        let mut standby = Sandbox::in_new_directory(self.binaries.clone(), self.run_as)?;
        let output = standby
            .command("pg_basebackup")
            .args(self.superuser_connection())
            .arg("-D")
            .arg(standby.data_dir())
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"])
            .output()
            .context("running pg_basebackup")?;
        ensure_success("pg_basebackup", &output)?;
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(standby.data_dir().join("postgresql.conf"))?;
        writeln!(conf, "\n# metricsctl standby")?;
        writeln!(
            conf,
            "unix_socket_directories = '{}'\nhot_standby = on",
            standby.root.display()
        )?;
        standby.launch()?;
        Ok(standby)
    }

    /// A client tool's arguments to reach this cluster as its superuser.
    fn superuser_connection(&self) -> [String; 6] {
        [
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            SUPERUSER,
        ]
        .map(String::from)
    }

    /// Creates a database in the cluster.
    pub fn create_database(&self, database: &str) -> anyhow::Result<()> {
        let output = self
            .command("createdb")
            .args(self.superuser_connection())
            .arg(database)
            .output()
            .context("running createdb")?;
        ensure_success("createdb", &output)
    }

    /// Drops a database of the cluster, whoever is still connected to it.
    pub fn drop_database(&self, database: &str) -> anyhow::Result<()> {
        let output = self
            .command("dropdb")
            .args(self.superuser_connection())
            .args(["--if-exists", "--force"])
            .arg(database)
            .output()
            .context("running dropdb")?;
        ensure_success("dropdb", &output)
    }

    /// Stops the server the polite way and starts it again on the same port.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["restart", "-w", "-t", "60", "-m", "fast"])
    }

    /// The command an operator runs to stop and remove a kept sandbox, every path quoted.
    pub fn removal_command(&self) -> String {
        let pg_ctl = format!(
            "{} stop -D {} -m fast",
            shell_quote(&self.binaries.tool("pg_ctl").display().to_string()),
            shell_quote(&self.data_dir().display().to_string())
        );
        let stop = match self.run_as {
            Some(_) => format!("su {SUPERUSER} -s /bin/sh -c {}", shell_quote(&pg_ctl)),
            None => pg_ctl,
        };
        format!(
            "{stop} && rm -rf {}",
            shell_quote(&self.root.display().to_string())
        )
    }

    /// Leaves the cluster running after this process exits; the operator removes it.
    pub fn keep(mut self) -> anyhow::Result<()> {
        fs::write(
            self.root.join(KEPT_FILE),
            "kept by metricsctl demo --keep\n",
        )?;
        self.armed = false;
        Ok(())
    }

    /// Stops the server and removes its directory.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.armed = false;
        let stopped = self.pg_ctl(&["stop", "-w", "-m", "fast"]);
        let removed = fs::remove_dir_all(&self.root)
            .with_context(|| format!("removing {}", self.root.display()));
        stopped.and(removed)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.pg_ctl(&["stop", "-w", "-m", "immediate"]);
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// The account the server runs as: ourselves, or `postgres` when we are root.
fn server_account() -> anyhow::Result<Option<(Uid, Gid)>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match User::from_name(SUPERUSER).context("looking up the postgres user")? {
        Some(user) => Ok(Some((user.uid, user.gid))),
        None => bail!(
            "PostgreSQL refuses to run as root, and there is no `postgres` user to run it as: \
             create one (useradd --system --create-home postgres) or run as an ordinary user"
        ),
    }
}

fn free_loopback_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

fn ensure_success(what: &str, output: &Output) -> anyhow::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim(),
        String::from_utf8_lossy(&output.stdout).trim()
    )
}

/// Removes sandboxes whose owning process is gone and that were not kept on purpose.
fn remove_leftovers() {
    remove_leftovers_in(&std::env::temp_dir());
}

fn remove_leftovers_in(temp_dir: &Path) {
    let Ok(entries) = fs::read_dir(temp_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_sandbox = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(DIR_PREFIX));
        if !is_sandbox || path.join(KEPT_FILE).exists() {
            continue;
        }
        let owner_alive = match fs::read_to_string(path.join(OWNER_FILE)) {
            Ok(pid) => pid
                .trim()
                .parse::<i32>()
                .is_ok_and(|pid| nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()),
            // Just being created by someone else, unless it is old.
            Err(_) => entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| {
                    SystemTime::now()
                        .duration_since(modified)
                        .unwrap_or_default()
                        < Duration::from_secs(600)
                }),
        };
        if !owner_alive {
            stop_orphan(&path.join("data"));
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// Kills the postmaster of an abandoned sandbox (its pid is the first line of postmaster.pid),
/// but only if that pid still is this data directory's postmaster: a stale pid file's number may
/// by now belong to any other process, which must never be signalled.
fn stop_orphan(data_dir: &Path) {
    let Ok(pid_file) = fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return;
    };
    if let Some(pid) = pid_file
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
        && is_postmaster_of(pid, data_dir)
    {
        // SIGQUIT is PostgreSQL's immediate shutdown; its children follow the postmaster.
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGQUIT);
    }
}

/// Whether `pid` is a PostgreSQL server running in `data_dir`: the postmaster works in its data
/// directory, and its program is `postgres`. Where /proc cannot tell (not Linux), the answer is
/// no: the server then stops by itself once its pid file is gone.
pub fn is_postmaster_of(pid: i32, data_dir: &Path) -> bool {
    if pid <= 0 {
        return false;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let (Ok(cwd), Ok(data_dir)) = (
        fs::read_link(proc_dir.join("cwd")),
        fs::canonicalize(data_dir),
    ) else {
        return false;
    };
    let program_is_postgres = fs::read_link(proc_dir.join("exe"))
        .ok()
        .and_then(|exe| {
            exe.file_name()
                .map(|n| n.to_string_lossy().starts_with("postgres"))
        })
        .unwrap_or(false);
    cwd == data_dir && program_is_postgres
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_pid_file_never_gets_another_process_killed() {
        // A leftover sandbox whose owner is gone, with a postmaster.pid naming a live process
        // that is not PostgreSQL (pid files go stale; pids are reused).
        let temp = tempfile::tempdir().unwrap();
        let leftover = temp.path().join(format!("{DIR_PREFIX}stale"));
        fs::create_dir_all(leftover.join("data")).unwrap();
        let mut gone = Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        fs::write(leftover.join(OWNER_FILE), gone_pid.to_string()).unwrap();
        let mut bystander = Command::new("sleep").arg("30").spawn().unwrap();
        fs::write(
            leftover.join("data").join("postmaster.pid"),
            format!("{}\n{}\n", bystander.id(), leftover.join("data").display()),
        )
        .unwrap();
        assert!(!is_postmaster_of(
            bystander.id() as i32,
            &leftover.join("data")
        ));

        remove_leftovers_in(temp.path());

        assert!(!leftover.exists(), "the leftover is removed");
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            bystander.try_wait().unwrap().is_none(),
            "the process the stale pid file named must be left alone"
        );
        bystander.kill().unwrap();
        bystander.wait().unwrap();
    }

    #[test]
    fn missing_binaries_fail_loudly_with_the_install_hint() {
        let empty = tempfile::tempdir().unwrap();
        let err = PgBinaries::locate_in(&[empty.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("apt-get install -y postgresql"), "{err}");
        assert!(err.contains("initdb"), "{err}");
    }

    #[test]
    fn a_named_bindir_must_hold_the_server_programs_itself() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("initdb"), "").unwrap();
        let err = PgBinaries::in_named_dir(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains(BINDIR_VARIABLE), "{err}");
        assert!(err.contains("has no pg_ctl, postgres"), "{err}");
        for tool in ["pg_ctl", "postgres"] {
            fs::write(dir.path().join(tool), "").unwrap();
        }
        let binaries = PgBinaries::in_named_dir(dir.path()).unwrap();
        let real_dir = fs::canonicalize(dir.path()).unwrap();
        assert_eq!(binaries.tool("psql"), real_dir.join("psql"));
    }

    #[test]
    fn newest_installed_version_is_tried_first() {
        let root = tempfile::tempdir().unwrap();
        for version in ["9", "15", "13"] {
            fs::create_dir_all(root.path().join(version).join("bin")).unwrap();
        }
        fs::create_dir_all(root.path().join("not-a-version")).unwrap();
        let dirs = versioned_install_dirs(root.path());
        let names: Vec<String> = dirs
            .iter()
            .map(|d| {
                d.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, vec!["15", "13", "9"]);
    }
}
