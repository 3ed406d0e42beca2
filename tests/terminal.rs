//! A terminal never executes data (issue 18): a sensor id holding an escape sequence reaches a
//! terminal escaped in every format; files and pipes keep the raw value.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::Stdio;

use crate::support::{TestDatabase, metricsctl_process};

/// Clears the screen, sets the window title, and a C1 CSI that some terminals honour.
const HOSTILE_SENSOR: &str = "sensor\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m";

/// Runs metricsctl with stdout on a pseudo-terminal: what the terminal received.
fn on_a_terminal(db: &TestDatabase, args: &[&str]) -> String {
    let pty = nix::pty::openpty(None, None).unwrap();
    let terminal_side = std::fs::File::from(pty.slave);
    let mut child = metricsctl_process()
        .args(args)
        .args(["--database-url", &db.url])
        .stdout(Stdio::from(terminal_side))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        // The pseudo-terminal's buffer is small: keep reading while the child writes.
        set_nonblocking(reader.as_raw_fd());
        match reader.read(&mut chunk) {
            Ok(n) if n > 0 => seen.extend_from_slice(&chunk[..n]),
            _ => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    };
    while let Ok(n) = reader.read(&mut chunk) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&chunk[..n]);
    }
    assert!(status.code().is_some(), "{args:?}: {status:?}");
    String::from_utf8_lossy(&seen).into_owned()
}

fn set_nonblocking(fd: i32) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).unwrap();
}

#[test]
fn a_terminal_gets_sensor_ids_escaped_in_every_format_and_a_pipe_gets_them_raw() {
    let db = TestDatabase::new();
    db.migrate();
    db.client()
        .execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES \
             ($1, 'e1', '2026-01-01T00:00:01Z', 1), ($1, 'e2', '2026-01-01T00:00:00Z', 2)",
            &[&HOSTILE_SENSOR],
        )
        .unwrap();
    for format in ["csv", "table", "json", "nagios"] {
        let shown = on_a_terminal(&db, &["check", "ordering", "--format", format]);
        assert!(shown.contains("sensor"), "{format}: {shown:?}");
        for raw in ['\u{1b}', '\u{7}', '\u{9b}'] {
            assert!(
                !shown.contains(raw),
                "{format}: {raw:?} reached the terminal: {shown:?}"
            );
        }
    }
    // A pipe (a script, a file) gets the value as stored.
    let piped = metricsctl_process()
        .args([
            "check",
            "ordering",
            "--format",
            "csv",
            "--database-url",
            &db.url,
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&piped.stdout).contains(HOSTILE_SENSOR),
        "{:?}",
        String::from_utf8_lossy(&piped.stdout)
    );
}
