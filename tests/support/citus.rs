//! The distributed layout's harness: one throwaway Citus cluster (a coordinator and two workers,
//! metricsctl's own `CitusSandbox`) for the whole test binary, started on first use and removed
//! at exit, and a database of its own for each test, made on every node.
//!
//! The tests that run on every layout run here too: `on_both_layouts!` gives each a
//! `distributed_plain` and a `distributed_partitioned` variant, which mark their thread as
//! distributed, so that the test's `TestDatabase::new()` is made on this cluster and its
//! `migrate`/`migrate_as` run `migrate --distributed`. Where Citus is not installed these
//! variants print NOT RUN and pass (METRICSCTL_REQUIRE_TOOLS=citus makes that a failure).

use std::cell::Cell;
use std::sync::{Mutex, OnceLock};

use metricsctl::db::citus_sandbox::{CitusSandbox, citus_library};
use metricsctl::db::sandbox::SandboxOptions;

use super::tool_available;

/// The name METRICSCTL_REQUIRE_TOOLS knows Citus by.
pub const CITUS_TOOL: &str = "citus";

thread_local! {
    static DISTRIBUTED: Cell<bool> = const { Cell::new(false) };
}

static CLUSTER: OnceLock<Option<String>> = OnceLock::new();
static SANDBOX: Mutex<Option<CitusSandbox>> = Mutex::new(None);

extern "C" fn stop_cluster() {
    if let Ok(mut sandbox) = SANDBOX.lock() {
        sandbox.take();
    }
}

/// Whether Citus is installed for the PostgreSQL the tests run; where not, `test` prints NOT RUN.
pub fn citus_available(test: &str) -> bool {
    let installed = citus_library().ok().flatten().is_some();
    tool_available(
        test,
        CITUS_TOOL,
        installed,
        "build it with `bash .ci/citus.sh`, which installs Citus 13.2.2 into PostgreSQL 15",
    )
}

/// Marks this thread's test as one on the distributed layout, if Citus is here.
pub fn enter_distributed(test: &str) -> bool {
    if !citus_available(test) {
        return false;
    }
    DISTRIBUTED.with(|d| d.set(true));
    true
}

/// Whether this thread's test runs on the distributed layout.
pub fn is_distributed() -> bool {
    DISTRIBUTED.with(Cell::get)
}

/// A new database on the shared Citus cluster, on every node: its coordinator URL.
pub fn create_database(name: &str) -> String {
    CLUSTER.get_or_init(|| {
        let sandbox = CitusSandbox::start(&SandboxOptions::default(), 2)
            .unwrap_or_else(|e| panic!("starting a Citus coordinator and two workers: {e:#}"));
        let url = sandbox.url("postgres");
        *SANDBOX.lock().unwrap() = Some(sandbox);
        unsafe {
            nix::libc::atexit(stop_cluster);
        }
        Some(url)
    });
    let guard = SANDBOX.lock().unwrap();
    let sandbox = guard.as_ref().expect("the Citus cluster is running");
    sandbox
        .create_database(name)
        .unwrap_or_else(|e| panic!("making database {name} on the Citus cluster: {e:#}"));
    sandbox.url(name)
}

/// Drops a test's database on every node of the Citus cluster.
pub fn drop_database(name: &str) {
    if let Ok(guard) = SANDBOX.lock()
        && let Some(sandbox) = guard.as_ref()
    {
        let _ = sandbox.drop_database(name);
    }
}
