//! A real pgbouncer (the Debian package's, 1.18 on Debian 12) in front of a test server, started
//! and stopped by the test like the server itself. It refuses to run as root, so as root it runs
//! as the `postgres` user, as the server does.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{program, tool_available};

/// The name METRICSCTL_REQUIRE_TOOLS knows pgbouncer by.
pub const PGBOUNCER_TOOL: &str = "pgbouncer";

/// How pgbouncer hands server connections to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// Each transaction may get another server connection: the mode most sites run.
    Transaction,
    /// A client keeps its server connection until it disconnects.
    Session,
}

impl PoolMode {
    fn setting(self) -> &'static str {
        match self {
            PoolMode::Transaction => "transaction",
            PoolMode::Session => "session",
        }
    }
}

/// How pgbouncer pools server connections for each database and user.
#[derive(Debug, Clone, Copy)]
pub struct Pool {
    pub mode: PoolMode,
    /// At most this many server connections (`default_pool_size`).
    pub size: u32,
    /// How long a client waits for a free server connection before pgbouncer gives up on it.
    pub query_wait_timeout_seconds: u32,
    /// How many clients pgbouncer takes at once (`max_client_conn`).
    pub max_clients: u32,
    /// Hand out the server connection idle longest (`server_round_robin`), not the one idle
    /// shortest.
    pub round_robin: bool,
}

impl Pool {
    pub fn new(mode: PoolMode, size: u32) -> Pool {
        Pool {
            mode,
            size,
            query_wait_timeout_seconds: 120,
            max_clients: 200,
            round_robin: false,
        }
    }
}

/// A running pgbouncer; stopped (and its directory removed) when dropped.
pub struct Pgbouncer {
    pub port: u16,
    directory: PathBuf,
    process: Child,
}

impl Pgbouncer {
    /// pgbouncer in front of the server at `server_port` (127.0.0.1, the superuser `postgres`
    /// trusted there), for every database. `None`, with a NOT RUN line, where pgbouncer is not
    /// installed (a failure where METRICSCTL_REQUIRE_TOOLS requires it).
    pub fn start(test: &str, server_port: u16, pool: Pool) -> Option<Self> {
        let binary = program("pgbouncer", "METRICSCTL_PGBOUNCER")
            .or_else(|| Some(PathBuf::from("/usr/sbin/pgbouncer")).filter(|p| p.is_file()));
        if !tool_available(
            test,
            PGBOUNCER_TOOL,
            binary.is_some(),
            "apt-get install pgbouncer",
        ) {
            return None;
        }
        let directory = tempfile::Builder::new()
            .prefix("metricsctl-pgbouncer-")
            .tempdir()
            .expect("a directory for pgbouncer")
            .keep();
        let port = free_port();
        write_configuration(&directory, server_port, port, pool);
        let account = run_as();
        if let Some((uid, gid)) = account {
            for entry in std::fs::read_dir(&directory).unwrap().flatten() {
                std::os::unix::fs::chown(entry.path(), Some(uid), Some(gid)).unwrap();
            }
            std::os::unix::fs::chown(&directory, Some(uid), Some(gid)).unwrap();
        }
        let mut command = Command::new(binary.unwrap());
        command
            .arg(directory.join("pgbouncer.ini"))
            .current_dir(&directory)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = account {
            command.uid(uid).gid(gid);
        }
        let process = command.spawn().expect("starting pgbouncer");
        let mut bouncer = Pgbouncer {
            port,
            directory,
            process,
        };
        bouncer.wait_until_listening();
        Some(bouncer)
    }

    /// A URL for `database` through pgbouncer, as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// pgbouncer's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.directory.join("pgbouncer.log")).unwrap_or_default()
    }

    fn wait_until_listening(&mut self) {
        let started = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.process.try_wait() {
                panic!(
                    "pgbouncer exited ({status}) before listening:\n{}",
                    self.log()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "pgbouncer did not listen on {} within 30 s:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

fn write_configuration(directory: &Path, server_port: u16, port: u16, pool: Pool) {
    // `options` is not ignored: a client that sends it (PGOPTIONS) is refused by pgbouncer
    // rather than having its settings silently dropped.
    let ini = format!(
        "[databases]\n\
         * = host=127.0.0.1 port={server_port}\n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = trust\n\
         auth_file = {dir}/userlist.txt\n\
         pool_mode = {mode}\n\
         default_pool_size = {size}\n\
         query_wait_timeout = {wait}\n\
         max_client_conn = {clients}\n\
         server_round_robin = {round_robin}\n\
         server_reset_query = DISCARD ALL\n\
         ignore_startup_parameters = extra_float_digits\n\
         logfile = {dir}/pgbouncer.log\n\
         pidfile = {dir}/pgbouncer.pid\n",
        dir = directory.display(),
        mode = pool.mode.setting(),
        size = pool.size,
        wait = pool.query_wait_timeout_seconds,
        clients = pool.max_clients,
        round_robin = u8::from(pool.round_robin),
    );
    std::fs::write(directory.join("pgbouncer.ini"), ini).unwrap();
    std::fs::write(directory.join("userlist.txt"), "\"postgres\" \"\"\n").unwrap();
    for name in ["pgbouncer.ini", "userlist.txt"] {
        let path = directory.join(name);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// The `postgres` account's uid and gid when we are root (pgbouncer refuses root).
fn run_as() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name("postgres")
        .expect("looking up the postgres user")
        .expect("pgbouncer refuses to run as root, and there is no postgres user to run it as");
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().unwrap().port()
}
