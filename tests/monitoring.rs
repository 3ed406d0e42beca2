//! What monitoring systems accept, judged by the real tools: `promtool check metrics` reads
//! every Prometheus output in every state; Monitoring::Plugin (the Nagios plugin library) reads
//! the perfdata thresholds and must reach the verdict metricsctl gives; `--output FILE` is what
//! node_exporter's textfile collector can rely on.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::checks::{event, insert, insert_recent, kafka, ordering_fixture};
use crate::support::{
    Layout, TestDatabase, metricsctl, program, stderr_of, stdout_of, tool_available,
};

const UNREACHABLE: &str = "postgresql://metrics:pw@127.0.0.1:1/metrics";

/// Every command with a `--format prometheus` (and nagios) output: `check`, `check all`, and each check's own (from the one list of
/// checks, so a new check is judged here without anyone adding it).
fn monitored() -> Vec<Vec<&'static str>> {
    let mut commands = vec![vec!["check"], vec!["check", "all"]];
    commands.extend(metricsctl::Check::iter().map(|check| check.command().to_vec()));
    commands
}

fn promtool() -> Option<PathBuf> {
    program("promtool", "METRICSCTL_PROMTOOL")
}

fn promtool_available(test: &str) -> Option<PathBuf> {
    let found = promtool();
    tool_available(
        test,
        "promtool",
        found.is_some(),
        "Debian: apt-get install prometheus",
    )
    .then(|| found.unwrap())
}

/// promtool's verdict on a text file: its exit code and everything it said.
fn promtool_check(promtool: &PathBuf, text: &str) -> (i32, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!("{}{}", stdout_of(&output), stderr_of(&output)),
    )
}

/// The series of a Prometheus text (name and labels), and the check that no sample carries a
/// timestamp, which node_exporter's textfile collector rejects.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 2, "a sample with a timestamp: {line}");
            fields[0].to_string()
        })
        .collect()
}

/// A database in each state the tools must cope with.
enum State {
    Healthy,
    Anomalies,
    Empty,
    NoSchema,
}

fn database_in(state: &State, layout: Layout) -> TestDatabase {
    let db = TestDatabase::new();
    match state {
        State::NoSchema => {}
        State::Empty => db.migrate_as(layout),
        State::Healthy => {
            db.migrate_as(layout);
            insert_recent(&db, "sensor-1", 120, 2);
            insert_recent(&db, "sensor-2", 120, 3);
        }
        State::Anomalies => {
            ordering_fixture(&db, layout);
            // A metric that bypassed the guard, a silent sensor and one dated in the future.
            db.client()
                .batch_execute(
                    "INSERT INTO metrics (sensor_id, event_id, timestamp, value)
                     VALUES ('sneaky', 'sneaky-1', now() - interval '2 hours', 1),
                            ('ahead', 'ahead-1', now() + interval '10 minutes', 1)",
                )
                .unwrap();
        }
    }
    db
}

fn run_prometheus(db: Option<&TestDatabase>, command: &[&str]) -> (i32, String) {
    let mut cmd = metricsctl();
    cmd.args(command).args(["--format", "prometheus"]);
    match db {
        Some(db) => cmd.args(["--database-url", &db.url]),
        None => cmd.args(["--database-url", UNREACHABLE]),
    };
    let output = cmd.output().unwrap();
    let code = output.status.code().unwrap_or(-1);
    assert!(
        (0..=3).contains(&code),
        "{command:?}: {}",
        stderr_of(&output)
    );
    (code, stdout_of(&output))
}

#[test]
fn promtool_accepts_every_prometheus_output_in_every_state() {
    let Some(promtool) =
        promtool_available("monitoring::promtool_accepts_every_prometheus_output_in_every_state")
    else {
        return;
    };
    let mut checked = 0;
    for layout in [Layout::Plain, Layout::Partitioned] {
        for state in [
            State::Healthy,
            State::Anomalies,
            State::Empty,
            State::NoSchema,
        ] {
            let db = database_in(&state, layout);
            for command in &monitored() {
                let (code, text) = run_prometheus(Some(&db), command);
                let (verdict, said) = promtool_check(&promtool, &text);
                assert_eq!(
                    (verdict, said.as_str()),
                    (0, ""),
                    "promtool on {command:?} (exit {code}):\n{text}"
                );
                series(&text);
                checked += 1;
            }
        }
    }
    for command in &monitored() {
        let (code, text) = run_prometheus(None, command);
        assert_eq!(code, 3, "{command:?}");
        let (verdict, said) = promtool_check(&promtool, &text);
        assert_eq!((verdict, said.as_str()), (0, ""), "{command:?}:\n{text}");
        checked += 1;
    }
    assert_eq!(checked, monitored().len() * 4 * 2 + monitored().len());
}

#[test]
fn the_names_promtool_objected_to_are_gone_and_the_run_time_is_a_gauge() {
    let db = database_in(&State::Healthy, Layout::Plain);
    for command in &monitored() {
        let (_, text) = run_prometheus(Some(&db), command);
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let name = line.split(' ').nth(2).unwrap();
            assert!(line.ends_with(" gauge"), "{line}");
            for suffix in ["_total", "_bucket", "_count", "_sum"] {
                assert!(!name.ends_with(suffix), "a gauge named {name}");
            }
        }
        assert!(!text.contains("quantile="), "{text}");
        let check = match command[..] {
            ["check"] | ["check", "all"] => "all",
            ["check", name] => name,
            ["migrate", "status"] => "migrations",
            [name] => name,
            _ => unreachable!(),
        };
        let last_run = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "metricsctl_last_run_timestamp_seconds{{check=\"{check}\"}} "
                ))
            })
            .unwrap_or_else(|| panic!("no run time in {text}"));
        let at: f64 = last_run.parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((now - at).abs() < 120.0, "{at} vs {now}");
    }
}

#[test]
fn a_failed_run_keeps_every_series_of_a_successful_one() {
    // Partitioned, so that `check` runs the partitions check too.
    let db = database_in(&State::Healthy, Layout::Partitioned);
    for command in &monitored() {
        let (_, healthy) = run_prometheus(Some(&db), command);
        let (code, outage) = run_prometheus(None, command);
        assert_eq!(code, 3);
        assert_eq!(
            series(&healthy),
            series(&outage),
            "{command:?}: the series must not change during an outage"
        );
        for line in outage
            .lines()
            .filter(|l| l.starts_with("metricsctl_check_status"))
        {
            assert!(line.ends_with(" 3"), "could not run is 3: {line}");
        }
    }
    // On a plain layout `check` has no partitions check; an outage cannot tell the layout, so
    // it keeps a superset.
    let plain = database_in(&State::Healthy, Layout::Plain);
    let (_, healthy) = run_prometheus(Some(&plain), &["check"]);
    let (_, outage) = run_prometheus(None, &["check"]);
    assert!(series(&healthy).is_subset(&series(&outage)));
    assert!(outage.contains("metricsctl_check_status{check=\"ordering\"} 3"));
    assert!(outage.contains("metricsctl_check_status{check=\"duplicates\"} 3"));
}

#[test]
fn output_writes_the_textfile_atomically_whatever_the_exit_status() {
    let db = database_in(&State::Anomalies, Layout::Plain);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metricsctl.prom");
    let path = file.to_str().unwrap();
    db.metricsctl(&["check", "--format", "prometheus", "--output", path])
        .assert()
        .code(2)
        .stdout("");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with('\n'));
    assert!(
        text.contains("metricsctl_check_status{check=\"ordering\"} 2"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "the collector must be able to read it");

    // The server goes away: the file still says so, with every series, status 3.
    metricsctl()
        .args([
            "check",
            "--format",
            "prometheus",
            "--database-url",
            UNREACHABLE,
        ])
        .arg("--output")
        .arg(&file)
        .assert()
        .code(3)
        .stdout("");
    let outage = std::fs::read_to_string(&file).unwrap();
    assert!(
        outage.contains("metricsctl_check_status{check=\"ordering\"} 3"),
        "{outage}"
    );
    assert!(
        outage.contains("metricsctl_ordering_out_of_order_events NaN"),
        "{outage}"
    );

    // Other formats too, and nothing is ever left behind but the file itself.
    for format in ["nagios", "json", "csv", "table"] {
        db.metricsctl(&["lag", "--format", format, "--output", path])
            .assert()
            .code(2)
            .stdout("");
        assert!(
            !std::fs::read_to_string(&file).unwrap().is_empty(),
            "{format}"
        );
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["metricsctl.prom".to_string()]);

    // A directory that does not exist: a clear error, exit 3.
    db.metricsctl(&[
        "lag",
        "--format",
        "prometheus",
        "--output",
        "/nonexistent/dir/x.prom",
    ])
    .assert()
    .code(3)
    .stderr(predicates::str::contains(
        "writing the report to /nonexistent/dir/x.prom",
    ));
}

#[test]
fn a_reader_never_sees_half_a_textfile() {
    let db = database_in(&State::Healthy, Layout::Plain);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rate.prom");
    let write = |file: &PathBuf| {
        db.metricsctl(&[
            "rate",
            "--minutes",
            "600",
            "--format",
            "prometheus",
            "--output",
            file.to_str().unwrap(),
        ])
        .assert()
        .code(0);
    };
    write(&file);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (file, stop) = (file.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let text = std::fs::read_to_string(&file).unwrap();
                assert!(text.starts_with("# HELP metricsctl_check_status"), "{text}");
                assert!(
                    text.ends_with("\n")
                        && text.contains("metricsctl_rate_last_complete_bucket_events "),
                    "a partial file: {text}"
                );
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..15 {
        write(&file);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 15);
}

#[test]
fn the_documented_cron_line_publishes_with_output() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/monitoring.md"))
            .unwrap();
    assert!(readme.contains("--format prometheus --output /var/lib/node_exporter/"));
    assert!(!readme.contains(".prom.$$"), "the old cron line is gone");
}

/// Monitoring::Plugin's verdict on a Nagios status line: the worst status its threshold
/// objects give the perfdata, and how many perfdata it parsed.
fn monitoring_plugin_verdict(first_line: &str) -> (i32, usize, String) {
    const JUDGE: &str = r#"
        use strict; use warnings;
        use Monitoring::Plugin::Performance use_die => 1;
        my $line = <STDIN>; chomp $line;
        my (undef, $perfdata) = split /\|/, $line, 2;
        my @perfs = Monitoring::Plugin::Performance->parse_perfstring($perfdata // '');
        my $worst = 0;
        for my $p (@perfs) {
            my $status = $p->threshold->get_status($p->value);
            printf "%s=%s -> %d\n", $p->label, $p->value, $status;
            $worst = $status if $status > $worst;
        }
        printf "perfdata=%d worst=%d\n", scalar(@perfs), $worst;
    "#;
    let mut child = Command::new("perl")
        .args(["-e", JUDGE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{first_line}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "perl: {}", stderr_of(&output));
    let said = stdout_of(&output);
    let last = said.lines().last().unwrap();
    let (count, worst) = last
        .strip_prefix("perfdata=")
        .and_then(|rest| rest.split_once(" worst="))
        .unwrap();
    (worst.parse().unwrap(), count.parse().unwrap(), said)
}

fn monitoring_plugin_available(test: &str) -> bool {
    let found = Command::new("perl")
        .args(["-MMonitoring::Plugin", "-e", "1"])
        .output()
        .is_ok_and(|o| o.status.success());
    tool_available(
        test,
        "Monitoring::Plugin",
        found,
        "Perl's; Debian: apt-get install libmonitoring-plugin-perl",
    )
}

/// Runs a check in Nagios format and asserts that Monitoring::Plugin, reading only the
/// perfdata, reaches the exit code metricsctl gave.
fn assert_nagios_agrees(db: &TestDatabase, args: &[&str], expected: i32) {
    let output = db
        .metricsctl(args)
        .args(["--format", "nagios"])
        .output()
        .unwrap();
    let text = stdout_of(&output);
    assert_eq!(output.status.code(), Some(expected), "{args:?}: {text}");
    let first = text.lines().next().unwrap();
    let (worst, count, said) = monitoring_plugin_verdict(first);
    assert!(count > 0, "{first}");
    assert_eq!(
        worst, expected,
        "{args:?}: metricsctl says {expected}, Monitoring::Plugin reads {worst} from\n{first}\n{said}"
    );
}

#[test]
fn monitoring_plugin_reads_from_the_perfdata_the_verdict_metricsctl_gives() {
    if !monitoring_plugin_available(
        "monitoring::monitoring_plugin_reads_from_the_perfdata_the_verdict_metricsctl_gives",
    ) {
        return;
    }
    the_plugin_agrees_on_rate();
    the_plugin_agrees_on_lag();
    the_plugin_agrees_on_ordering_duplicates_and_sequence();
    the_plugin_agrees_on_partitions();
    the_plugin_agrees_on_migrate_status();
}

/// rate: the last complete minute holds 6 events, then 6000; each pair of thresholds is judged
/// alike by both.
fn the_plugin_agrees_on_rate() {
    // rate: the last complete minute holds 6 events (buckets follow the clock: not at its turn).
    let db = TestDatabase::new();
    db.migrate();
    let second: f64 = db.scalar("SELECT CAST(EXTRACT(SECOND FROM now()) AS double precision)");
    if second > 45.0 {
        std::thread::sleep(std::time::Duration::from_secs_f64(61.0 - second));
    }
    db.client()
        .batch_execute(
            // Guard rows and metrics ingested at one instant, as in one transaction.
            "INSERT INTO processed_events (event_id, sensor_id, processed_at)
             SELECT 'r-' || i, 's', date_trunc('minute', now()) - interval '1 minute'
             FROM generate_series(1, 6) i;
             INSERT INTO metrics (sensor_id, event_id, timestamp, value, created_at)
             SELECT 's', 'r-' || i, now(), 1, date_trunc('minute', now()) - interval '1 minute'
             FROM generate_series(1, 6) i",
        )
        .unwrap();
    let rate = |warn: &str, crit: &str| {
        vec![
            "rate",
            "--minutes",
            "5",
            "--warn-below",
            warn,
            "--crit-below",
            crit,
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    for (warn, crit, expected) in [
        ("10", "5", 1),
        ("10", "7", 2),
        ("5", "2", 0),
        ("6", "6", 0),
        ("7", "7", 2),
    ] {
        let args = rate(warn, crit);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_nagios_agrees(&db, &args, expected);
    }
    // The issue's case: 6000 events against --warn-below 10 --crit-below 5 is OK for both.
    db.client()
        .batch_execute(
            "INSERT INTO processed_events (event_id, sensor_id, processed_at)
             SELECT 'big-' || i, 's', date_trunc('minute', now()) - interval '1 minute'
             FROM generate_series(1, 5994) i;
             INSERT INTO metrics (sensor_id, event_id, timestamp, value, created_at)
             SELECT 's', 'big-' || i, now(), 1, date_trunc('minute', now()) - interval '1 minute'
             FROM generate_series(1, 5994) i",
        )
        .unwrap();
    assert_nagios_agrees(
        &db,
        &[
            "rate",
            "--minutes",
            "5",
            "--warn-below",
            "10",
            "--crit-below",
            "5",
        ],
        0,
    );
}

/// lag: fresh, past its thresholds, with a stale sensor and with one ahead of the clock.
fn the_plugin_agrees_on_lag() {
    // lag: newest event 2 s old.
    let lag = TestDatabase::new();
    lag.migrate();
    insert_recent(&lag, "live", 50, 2);
    assert_nagios_agrees(&lag, &["lag"], 0);
    assert_nagios_agrees(&lag, &["lag", "--warn", "1s", "--crit", "1h"], 1);
    assert_nagios_agrees(&lag, &["lag", "--warn", "1s", "--crit", "1s"], 2);
    insert_recent(&lag, "quiet", 5, 3600);
    assert_nagios_agrees(&lag, &["lag", "--stale", "15m"], 1);
    insert_recent(&lag, "ahead", 3, -600);
    assert_nagios_agrees(&lag, &["lag", "--stale", "2h"], 1);
}

/// ordering's anomalies, a metric without its guard row, and a sequence behind max(id).
fn the_plugin_agrees_on_ordering_duplicates_and_sequence() {
    // ordering and duplicates.
    let anomalies = TestDatabase::new();
    ordering_fixture(&anomalies, Layout::Plain);
    assert_nagios_agrees(&anomalies, &["check", "ordering"], 2);
    assert_nagios_agrees(
        &anomalies,
        &["check", "ordering", "--sensor", "sensor-c"],
        1,
    );
    assert_nagios_agrees(&anomalies, &["check"], 2);
    let unguarded = TestDatabase::new();
    unguarded.migrate();
    insert(
        &unguarded,
        &[event("s", "e1", 1), kafka("s", "e2", 2, 0, 1)],
    );
    assert_nagios_agrees(&unguarded, &["check", "duplicates"], 0);
    unguarded
        .client()
        .batch_execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES ('s', 'x', now(), 1)",
        )
        .unwrap();
    assert_nagios_agrees(&unguarded, &["check", "duplicates"], 1);
    // sequence: behind max(id) is CRITICAL, and its perfdata says so.
    assert_nagios_agrees(&unguarded, &["check", "sequence"], 0);
    unguarded
        .client()
        .batch_execute("SELECT setval('metrics_id_seq', 1)")
        .unwrap();
    assert_nagios_agrees(&unguarded, &["check", "sequence"], 2);
}

/// partitions: months ahead, too few ahead, and the current month missing.
fn the_plugin_agrees_on_partitions() {
    // partitions: the thresholds it applies are in its perfdata.
    let partitioned = TestDatabase::new();
    partitioned.migrate_as(Layout::Partitioned);
    assert_nagios_agrees(&partitioned, &["check", "partitions"], 0);
    assert_nagios_agrees(&partitioned, &["check", "partitions", "--ahead", "5"], 1);
    let current: String = partitioned.scalar(
        "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC'), '\"metrics_\"YYYY_MM')",
    );
    partitioned
        .client()
        .batch_execute(&format!("DROP TABLE {current}"))
        .unwrap();
    assert_nagios_agrees(&partitioned, &["check", "partitions"], 2);
}

/// migrate status: pending, applied, and a changed checksum.
fn the_plugin_agrees_on_migrate_status() {
    // migrate status.
    let fresh = TestDatabase::new();
    assert_nagios_agrees(&fresh, &["migrate", "status"], 1);
    fresh.migrate();
    assert_nagios_agrees(&fresh, &["migrate", "status"], 0);
    fresh
        .client()
        .execute(
            "UPDATE refinery_schema_history SET checksum = '1' WHERE version = 2",
            &[],
        )
        .unwrap();
    assert_nagios_agrees(&fresh, &["migrate", "status"], 2);
}

#[test]
fn perfdata_has_a_minimum_only_where_a_value_cannot_go_below_it() {
    let db = TestDatabase::new();
    db.migrate();
    insert_recent(&db, "live", 20, 2);
    db.client()
        .batch_execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value)
             VALUES ('ahead', 'ahead-1', now() + interval '5 minutes', 1)",
        )
        .unwrap();
    let output = db
        .metricsctl(&["lag", "--format", "nagios"])
        .output()
        .unwrap();
    let text = stdout_of(&output);
    let perfdata = text.lines().next().unwrap().split_once(" | ").unwrap().1;
    for datum in perfdata.split(' ') {
        let (label, rest) = datum.split_once('=').unwrap();
        let fields: Vec<&str> = rest.split(';').collect();
        if rest.split(';').next().unwrap().ends_with('s') {
            // Seconds (lag, clock ahead, latency: negative when a sensor's clock is ahead).
            assert_eq!(fields.len(), 3, "no minimum for {label}: {datum}");
        } else {
            assert_eq!(fields.get(3), Some(&"0"), "counts start at 0: {datum}");
        }
    }
    let latency: f64 = db.scalar(
        "SELECT CAST(min(EXTRACT(EPOCH FROM created_at - timestamp)) AS double precision) FROM metrics",
    );
    assert!(latency < 0.0, "this fixture has negative latencies");
}

#[test]
fn nagios_output_stays_within_4_kb_whatever_the_flags() {
    let db = TestDatabase::new();
    db.migrate();
    insert_recent(&db, "live", 10, 2);
    // 300 sensors each with one late event.
    db.client()
        .batch_execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value)
             SELECT 'sensor-' || s, 'e-' || s || '-' || i, now() - make_interval(secs => (3 - i) * 10 + (i % 2) * 25), 1
             FROM generate_series(1, 300) s, generate_series(1, 3) i ORDER BY s, i;
             INSERT INTO processed_events (event_id, sensor_id)
             SELECT event_id, sensor_id FROM metrics WHERE event_id LIKE 'e-%'",
        )
        .unwrap();
    for (args, cut) in [
        (&["rate", "--minutes", "1440"][..], true),
        (&["rate", "--minutes", "525600", "--by", "hour"], true),
        (&["check", "ordering", "--limit", "4294967295"], true),
        (&["lag", "--stale", "1s", "--limit", "100000"], true),
        (&["check", "--limit", "100000"], false),
    ] {
        let output = db
            .metricsctl(args)
            .args(["--format", "nagios"])
            .output()
            .unwrap();
        assert!(
            output.stdout.len() <= 4096,
            "{args:?}: {} bytes",
            output.stdout.len()
        );
        let text = stdout_of(&output);
        assert!(text.starts_with("METRICSCTL "), "{text}");
        assert!(
            text.lines().next().unwrap().contains(" | "),
            "perfdata kept: {text}"
        );
        assert_eq!(
            text.contains("more lines not shown"),
            cut,
            "{args:?}: {text}"
        );
    }
}

#[test]
fn the_nagios_service_name_is_the_same_whether_the_check_ran_or_not() {
    let db = TestDatabase::new();
    db.migrate();
    for (command, service) in [
        (&["check"][..], "METRICSCTL CHECKS "),
        (&["check", "all"], "METRICSCTL CHECKS "),
        (&["check", "ordering"], "METRICSCTL ORDERING "),
        (&["lag"], "METRICSCTL LAG "),
        (&["migrate", "status"], "METRICSCTL MIGRATIONS "),
    ] {
        for url in [db.url.as_str(), UNREACHABLE] {
            let output = metricsctl()
                .args(command)
                .args(["--format", "nagios", "--database-url", url])
                .output()
                .unwrap();
            let text = stdout_of(&output);
            assert!(text.starts_with(service), "{command:?} on {url}: {text}");
        }
    }
}

#[test]
fn text_from_the_database_cannot_forge_a_line_in_any_human_format() {
    let db = TestDatabase::new();
    db.migrate();
    let forged = "s1\nMETRICSCTL ORDERING OK - all good\u{1b}[2J";
    let forged_event = "e2\nOK: forged";
    db.client()
        .execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES
             ($1, 'late-1', now() - interval '1 hour', 1),
             ($1, $2, now() - interval '2 hours', 1)",
            &[&forged, &forged_event],
        )
        .unwrap();
    // One of them guarded (lag knows sensors from the guard), the other not (duplicates lists it).
    db.client()
        .execute(
            "INSERT INTO processed_events (event_id, sensor_id) VALUES ('late-1', $1)",
            &[&forged],
        )
        .unwrap();
    let sensor_shown = "s1\\nMETRICSCTL";
    let event_shown = "e2\\nOK: forged";
    for (args, format, needle) in [
        (&["check", "ordering"][..], "nagios", sensor_shown),
        (&["check", "ordering"], "table", sensor_shown),
        (
            &["check", "ordering", "--sensor", forged],
            "nagios",
            event_shown,
        ),
        (
            &["check", "ordering", "--sensor", forged],
            "table",
            event_shown,
        ),
        (&["lag", "--stale", "1m"], "nagios", sensor_shown),
        (&["lag", "--stale", "1m"], "table", sensor_shown),
        (&["check", "duplicates"], "table", event_shown),
        (&["check", "duplicates"], "nagios", event_shown),
    ] {
        let output = db
            .metricsctl(args)
            .args(["--format", format])
            .output()
            .unwrap();
        let text = stdout_of(&output);
        let status_lines = text
            .lines()
            .filter(|l| l.starts_with("METRICSCTL") || l.starts_with("OK:"))
            .count();
        assert!(
            status_lines <= 1,
            "{args:?} {format}: a forged line in\n{text}"
        );
        assert!(
            !text.contains('\u{1b}'),
            "{args:?} {format}: an escape sequence"
        );
        assert!(
            text.contains(needle),
            "{args:?} {format}: not shown escaped:\n{text}"
        );
    }
    // CSV and JSON carry the raw value, properly quoted: a reader gets the sensor id back.
    let csv = db
        .metricsctl(&["check", "ordering", "--format", "csv"])
        .output()
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv.stdout.as_slice());
    let row = reader.records().next().unwrap().unwrap();
    assert_eq!(&row[0], forged);
}
