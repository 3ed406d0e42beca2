//! No panic, ever: every numeric and duration flag at its limits and beyond, swept and then
//! drawn at random, gives a clear answer with an exit code in 0..=3.

use std::io::Write as _;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use proptest::prelude::*;

use crate::support::{Layout, TestDatabase, metricsctl, metricsctl_process, stderr_of};

/// What a flag takes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Count,
    Signed,
    Duration,
    Time,
}

/// Every numeric and duration flag: the command before it, the flag (empty: a positional
/// argument), the arguments after it, and what it takes.
const FLAGS: &[(&[&str], &str, &[&str], Kind)] = &[
    (
        &["migrate", "status"],
        "--connect-timeout",
        &[],
        Kind::Duration,
    ),
    (&["migrate"], "--lock-timeout", &[], Kind::Duration),
    (
        &["migrate", "repair", "--dry-run"],
        "--lock-timeout",
        &[],
        Kind::Duration,
    ),
    (
        &["replay", "--dry-run"],
        "--batch-size",
        &["@events"],
        Kind::Count,
    ),
    (
        &["replay", "--dry-run"],
        "--jobs",
        &["@events"],
        Kind::Count,
    ),
    (&["generate"], "", &["-o", "/dev/null"], Kind::Count),
    (
        &["generate", "100", "-o", "/dev/null"],
        "--sensors",
        &[],
        Kind::Count,
    ),
    (
        &["generate", "100", "-o", "/dev/null"],
        "--seed",
        &[],
        Kind::Count,
    ),
    (
        &["generate", "100", "-o", "/dev/null"],
        "--interval",
        &[],
        Kind::Duration,
    ),
    (
        &["generate", "100", "-o", "/dev/null"],
        "--kafka-partitions",
        &[],
        Kind::Count,
    ),
    (&["check"], "--limit", &[], Kind::Count),
    (&["check", "ordering"], "--limit", &[], Kind::Count),
    (
        &["check", "ordering", "--sensor", "s1"],
        "--limit",
        &[],
        Kind::Count,
    ),
    (&["check", "ordering"], "--since", &[], Kind::Time),
    (&["check", "ordering"], "--ingested-since", &[], Kind::Time),
    (&["check", "duplicates"], "--limit", &[], Kind::Count),
    (&["check", "partitions"], "--ahead", &[], Kind::Count),
    (
        &["partitions", "enable", "--dry-run"],
        "--lock-timeout",
        &[],
        Kind::Duration,
    ),
    (
        &["partitions", "create", "--months", "1"],
        "--lock-timeout",
        &[],
        Kind::Duration,
    ),
    (&["partitions", "create"], "--months", &[], Kind::Count),
    (
        &["partitions", "drop", "--dry-run", "--older-than", "24"],
        "--lock-timeout",
        &[],
        Kind::Duration,
    ),
    (
        &["partitions", "drop", "--dry-run"],
        "--older-than",
        &[],
        Kind::Count,
    ),
    (&["lag"], "--stale", &[], Kind::Duration),
    (&["lag"], "--window", &[], Kind::Duration),
    (&["lag"], "--latency-sample", &[], Kind::Count),
    (&["lag", "--crit", "36500d"], "--warn", &[], Kind::Duration),
    (&["lag", "--warn", "0s"], "--crit", &[], Kind::Duration),
    (&["lag"], "--clock-tolerance", &[], Kind::Duration),
    (&["lag"], "--limit", &[], Kind::Count),
    (&["rate"], "--minutes", &[], Kind::Count),
    (&["rate"], "--warn-below", &[], Kind::Signed),
    (
        &["rate", "--warn-below", "9223372036854775807"],
        "--crit-below",
        &[],
        Kind::Signed,
    ),
    // The global time limit, on a monitoring command.
    (&["check"], "--timeout", &[], Kind::Duration),
    (&["check"], "--since", &[], Kind::Time),
    (&["check", "all"], "--since", &[], Kind::Time),
    (&["check", "all"], "--limit", &[], Kind::Count),
    (&["check", "duplicates"], "--since", &[], Kind::Time),
    (
        &["partitions", "enable", "--dry-run"],
        "--batch-size",
        &[],
        Kind::Signed,
    ),
    (
        &["partitions", "enable", "--dry-run"],
        "--copy-share",
        &[],
        Kind::Count,
    ),
    (
        &["partitions", "enable", "--dry-run"],
        "--lock-attempts",
        &[],
        Kind::Count,
    ),
    (
        &["partitions", "attach", "2020-01"],
        "--lock-timeout",
        &[],
        Kind::Duration,
    ),
    (&["repair", "--dry-run"], "--limit", &[], Kind::Count),
    (
        &["repair", "--dry-run"],
        "--lock-timeout",
        &[],
        Kind::Duration,
    ),
    (
        &["distribute", "--dry-run"],
        "--lock-timeout",
        &[],
        Kind::Duration,
    ),
];

/// One partitioned database with a few events, shared by every probe (they change little:
/// partitions made or dropped, nothing else).
struct Target {
    db: TestDatabase,
    events: tempfile::TempPath,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let db = TestDatabase::new();
        db.migrate_as(Layout::Partitioned);
        let mut events = tempfile::NamedTempFile::new().unwrap();
        for i in 0..20 {
            writeln!(
                events,
                r#"{{"event_id":"limits-{i}","sensor_id":"s{}","timestamp":"2026-02-01T00:00:{i:02}Z","value":1}}"#,
                i % 3
            )
            .unwrap();
        }
        let events = events.into_temp_path();
        db.replay(&[], &[&events]);
        Target { db, events }
    })
}

/// Runs one flag with one value; the run must end in 0..=3 without a panic or an abort.
fn probe(flag: usize, value: &str) {
    let (before, name, after, _) = FLAGS[flag];
    let target = target();
    let mut args: Vec<String> = before.iter().map(|s| s.to_string()).collect();
    if !name.is_empty() {
        args.push(name.to_string());
    }
    // `--flag=value` so that a value starting with '-' is a value, not another flag.
    if name.is_empty() {
        args.push(value.to_string());
    } else {
        let last = args.pop().unwrap();
        args.push(format!("{last}={value}"));
    }
    for arg in after.iter() {
        args.push(match *arg {
            "@events" => target.events.display().to_string(),
            other => other.to_string(),
        });
    }
    let mut child = metricsctl_process()
        .args(&args)
        .args(["--database-url", &target.db.url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = child.wait_with_output().unwrap();
    let stderr = stderr_of(&output);
    let code = status.code();
    assert!(
        matches!(code, Some(0..=3)),
        "{args:?} ended with {status} (a panic is 101, an abort a signal):\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?}:\n{stderr}");
    assert!(
        !stderr.contains("must not be negative"),
        "a wrapped LIMIT: {args:?}:\n{stderr}"
    );
}

/// Values at and beyond the limits of every type a flag can have.
fn edge_values(kind: Kind) -> Vec<String> {
    let mut values: Vec<String> = [
        "0",
        "1",
        "-1",
        "",
        "x",
        "1e3",
        "4294967295",
        "4294967296",
        "9223372036854775807",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if matches!(kind, Kind::Duration | Kind::Time) {
        values.extend(
            [
                "0s",
                "1ns",
                "1ms",
                "59s",
                "100y",
                "101y",
                "18446744073709551615s",
                "18446744073709551615d",
                "18446744073709551615ns",
                "1s 1s",
                "-5s",
                "2026-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
                "0000-01-01T00:00:00Z",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
    }
    values
}

#[test]
fn every_numeric_and_duration_flag_at_its_limits() {
    // Two threads: the machine's two cores, shared with the rest of the suite.
    let probes: Vec<(usize, String)> = (0..FLAGS.len())
        .flat_map(|flag| {
            edge_values(FLAGS[flag].3)
                .into_iter()
                .map(move |value| (flag, value))
        })
        // A count of events this large that is still a valid run would take forever.
        .filter(|(flag, value)| {
            !(FLAGS[*flag].0 == ["generate"]
                && value
                    .parse::<u64>()
                    .is_ok_and(|n| n > 100_000 && n < 1 << 50))
        })
        .collect();
    let chunks: Vec<Vec<(usize, String)>> = probes
        .chunks(probes.len() / 2 + 1)
        .map(<[_]>::to_vec)
        .collect();
    std::thread::scope(|scope| {
        for chunk in &chunks {
            scope.spawn(move || {
                for (flag, value) in chunk {
                    probe(*flag, value);
                }
            });
        }
    });
}

fn value_strategy(kind: Kind) -> BoxedStrategy<String> {
    let number = prop_oneof![
        any::<u32>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (0u64..200).prop_map(|n| n.to_string()),
        any::<u128>().prop_map(|n| n.to_string()),
    ];
    match kind {
        Kind::Count | Kind::Signed => number.boxed(),
        Kind::Duration | Kind::Time => prop_oneof![
            number,
            (
                any::<u64>(),
                prop::sample::select(vec!["ns", "us", "ms", "s", "m", "h", "d", "w", "M", "y"])
            )
                .prop_map(|(n, unit)| format!("{n}{unit}")),
            (
                (0u64..10_000),
                prop::sample::select(vec!["s", "m", "h", "d"])
            )
                .prop_map(|(n, unit)| format!("{n}{unit}")),
        ]
        .boxed(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_value_of_any_numeric_or_duration_flag_ends_in_0_to_3(
        (flag, value) in (0..FLAGS.len()).prop_flat_map(|flag| {
            (Just(flag), value_strategy(FLAGS[flag].3))
        })
    ) {
        let is_huge_valid_count = FLAGS[flag].0 == ["generate"]
            && value.parse::<u64>().is_ok_and(|n| n > 100_000 && n < 1 << 50);
        prop_assume!(!is_huge_valid_count);
        probe(flag, &value);
    }
}

#[test]
fn the_overflows_from_the_issue_are_clear_errors() {
    let db = TestDatabase::new();
    db.migrate_as(Layout::Partitioned);
    for (args, says) in [
        (
            &["partitions", "create", "--months", "4294967295"][..],
            "0..=120",
        ),
        (
            &["partitions", "drop", "--older-than", "4294967295"],
            "1..=1200",
        ),
        (
            &["migrate", "--lock-timeout", "18446744073709551615s"],
            "the most this accepts",
        ),
        (&["check", "partitions", "--ahead", "4294967295"], "0..=120"),
        (
            &["lag", "--stale", "18446744073709551615s"],
            "the most this accepts",
        ),
        (
            &["--connect-timeout", "18446744073709551615s", "lag"],
            "the most this accepts",
        ),
    ] {
        db.metricsctl(args)
            .assert()
            .code(3)
            .stderr(contains(says))
            .stderr(contains("panicked").not());
    }
    for args in [
        &[
            "generate",
            "3",
            "--sensors",
            "1",
            "--interval",
            "18446744073709551615s",
        ][..],
        &[
            "generate",
            "3",
            "--sensors",
            "1",
            "--interval",
            "365d",
            "--start",
            "9998-06-01T00:00:00Z",
        ],
        &["generate", "18446744073709551615", "--sensors", "1"],
    ] {
        metricsctl()
            .args(args)
            .assert()
            .code(3)
            .stderr(contains("most").or(contains("year 9999")))
            .stderr(contains("panicked").not());
    }
    // --limit takes any u32: the largest means "everything", never a wrapped negative LIMIT.
    db.metricsctl(&["check", "--limit", "4294967295", "--format", "json"])
        .assert()
        .code(0)
        .stdout(contains("\"status\": \"OK\""));
    db.metricsctl(&[
        "lag",
        "--latency-sample",
        "4294967295",
        "--limit",
        "4294967295",
    ])
    .assert()
    .code(3)
    .stdout(contains("no metrics yet"));
}

/// Peak virtual memory of a running process, from /proc.
fn peak_virtual_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmPeak:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn the_largest_batch_size_is_not_allocated_before_there_are_events() {
    let db = TestDatabase::new();
    db.migrate();
    let peak = |batch_size: &str| -> u64 {
        let mut child = metricsctl_process()
            .args(["replay", "-", "--jobs", "32", "--batch-size", batch_size])
            .args(["--database-url", &db.url])
            // One malloc arena: per-thread arenas (64 MiB of address space each) come and go
            // with scheduling and would drown what is measured here.
            .env("MALLOC_ARENA_MAX", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..5 {
            writeln!(
                stdin,
                r#"{{"event_id":"big-{batch_size}-{i}","sensor_id":"s","timestamp":"2026-02-01T00:00:0{i}Z","value":1}}"#
            )
            .unwrap();
        }
        stdin.flush().unwrap();
        // The writers are connected and the first batch is being filled: stdin stays open.
        let mut peak = 0;
        for _ in 0..30 {
            std::thread::sleep(Duration::from_millis(100));
            peak = peak.max(peak_virtual_kib(child.id()).unwrap_or(0));
        }
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        peak
    };
    let small = peak("1");
    let largest = peak("100000");
    // 32 writers' batches of 100,000 events allocated up front would add over 300 MiB.
    assert!(
        largest < small + 64 * 1024,
        "--batch-size 100000 peaked at {largest} KiB of virtual memory, --batch-size 1 at {small} KiB"
    );
}

/// The sweep covers every flag whose value is a number, a duration or a time (by its value
/// name): a new one fails here until it is added to `FLAGS`.
#[test]
fn every_numeric_and_duration_flag_is_swept() {
    const NUMERIC: &[&str] = &[
        "DURATION", "N", "COUNT", "MONTHS", "PERCENT", "EVENTS", "TIME",
    ];
    fn walk(command: &clap::Command, path: &[String], missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let numeric = arg
                .get_value_names()
                .is_some_and(|names| names.iter().any(|n| NUMERIC.contains(&n.as_str())));
            let (Some(long), true) = (arg.get_long(), numeric) else {
                continue;
            };
            let flag = format!("--{long}");
            let swept = FLAGS.iter().any(|(before, name, _, _)| {
                // The command's own words: those before its first flag, values left out.
                let words: Vec<&str> = before
                    .iter()
                    .copied()
                    .take_while(|w| !w.starts_with('-'))
                    .filter(|w| !w.chars().all(|c| c.is_ascii_digit() || c == '-'))
                    .collect();
                *name == flag && (arg.is_global_set() || words == path)
            });
            if !swept {
                missing.push(format!("{} {flag}", path.join(" ")));
            }
        }
        for sub in command.get_subcommands() {
            let mut next = path.to_vec();
            next.push(sub.get_name().to_string());
            walk(sub, &next, missing);
        }
    }
    let mut missing = Vec::new();
    let mut root = <metricsctl::cli::Cli as clap::CommandFactory>::command();
    root.build();
    walk(&root, &[], &mut missing);
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "flags the sweep does not cover: {missing:?}"
    );
}
