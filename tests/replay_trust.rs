//! The data path's promises under hostile use (issue 8): no guard row without its metric, no
//! destroyed input, the first occurrence of an event id wins, every claim about what was committed
//! is checked against the database, bad lines cost only themselves, retention keeps exactly-once.

use std::process::Stdio;

use chrono::{DateTime, Datelike, Months, NaiveDate};
use predicates::str::contains;

use metricsctl::events::Event;
use metricsctl::ingest::{EventBatch, Ingestor, SequenceBehind};

use crate::support::{
    Layout, TestDatabase, assert_claim_holds, assert_consistent, assert_exactly_once, event_line,
    generate_events, hold_the_writers, metricsctl_process, stderr_of, summary_of,
    wait_until_writing, write_lines,
};

fn guard_and_metric_counts(db: &TestDatabase) -> (i64, i64) {
    (
        db.count("SELECT count(*) FROM processed_events"),
        db.count("SELECT count(*) FROM metrics"),
    )
}

// 1. A guard row is never committed without its metric.

fn a_sequence_behind_max_id_is_refused_and_the_printed_fix_works(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    generate_events(&a, 1000, 3, 11, "jsonl");
    generate_events(&b, 1000, 3, 12, "jsonl");
    let db = TestDatabase::new();
    db.migrate_as(layout);
    assert_eq!(db.replay(&[], &[&a]).0, 0);
    // As after a data-only restore.
    db.client()
        .batch_execute("SELECT setval('metrics_id_seq', 500)")
        .unwrap();
    let output = db
        .metricsctl(&["replay", "--format", "json"])
        .arg(&b)
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("metrics_id_seq"), "{stderr}");
    assert!(stderr.contains("ids up to 1000"), "{stderr}");
    assert_eq!(summary_of(&output)["inserted"], 0);
    assert_exactly_once(&db, 1000);
    // The message carries the fix; after it the same command finishes.
    let fix = stderr[stderr.find("SELECT setval").unwrap()..]
        .lines()
        .next()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    db.client().batch_execute(&fix).unwrap();
    assert_eq!(db.replay(&[], &[&b]).0, 0);
    assert_exactly_once(&db, 2000);
}

fn event(id: &str, timestamp: &str, value: f64) -> Event {
    Event {
        event_id: id.to_string(),
        sensor_id: "s".to_string(),
        timestamp: DateTime::parse_from_rfc3339(timestamp).unwrap().into(),
        value,
        kafka_partition: None,
        kafka_offset: None,
    }
}

/// The statement itself, not only the check before a replay: a collision on another key fails
/// the whole batch, guard rows included.
fn a_key_collision_inside_a_batch_fails_it_whole(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let mut ingestor = Ingestor::new(db.session()).unwrap();
    let mut first = EventBatch::with_capacity(100);
    for i in 0..100 {
        first.push(event(
            &format!("e{i}"),
            "2026-03-01T00:00:00Z",
            f64::from(i),
        ));
    }
    first.prepare();
    assert_eq!(ingestor.ingest(&first).unwrap().stored, 100);
    db.client()
        .batch_execute("SELECT setval('metrics_id_seq', 1)")
        .unwrap();
    // The same timestamp, so the reused ids collide on the partitioned (id, timestamp) key too.
    let mut second = EventBatch::with_capacity(3);
    for id in ["d", "e", "f"] {
        second.push(event(id, "2026-03-01T00:00:00Z", 1.0));
    }
    second.prepare();
    let error = ingestor
        .ingest(&second)
        .expect_err("a batch whose ids collide with stored ones");
    let error = error.into_inner();
    let SequenceBehind(position) = error
        .downcast_ref::<SequenceBehind>()
        .unwrap_or_else(|| panic!("expected the sequence to be named, got {error:#}"));
    assert_eq!(position.max_id, Some(100));
    assert!(position.next_id <= 100);
    assert_eq!(guard_and_metric_counts(&db), (100, 100));
}

fn a_metric_stored_without_its_guard_is_left_alone_and_guarded(layout: Layout) {
    replay_around_a_metric_stored_without_its_guard(layout, "2026-03-01T00:00:05Z");
}

fn a_metric_stored_without_its_guard_under_another_timestamp_gets_no_second_copy(layout: Layout) {
    // On the partitioned layout the unique key is (event_id, timestamp): another timestamp, even
    // another month's partition, must not let a second copy in.
    replay_around_a_metric_stored_without_its_guard(layout, "2026-02-01T00:00:00Z");
}

/// Replays an event whose metric was stored, dated `stored_at`, without its guard row, beside a new
/// event: the stored metric is kept as it is and guarded, the new one lands.
fn replay_around_a_metric_stored_without_its_guard(layout: Layout, stored_at: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    write_lines(
        &input,
        &[
            event_line("bypassed", "s", "2026-03-01T00:00:05Z", 1.0),
            event_line("new", "s", "2026-03-01T00:00:06Z", 2.0),
        ],
    );
    let db = TestDatabase::new();
    db.migrate_as(layout);
    db.client()
        .execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value) \
             VALUES ('s', 'bypassed', $1::text::timestamptz, 42)",
            &[&stored_at],
        )
        .unwrap();
    let (code, summary) = db.replay(&[], &[&input]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["inserted"], 1);
    assert_eq!(summary["already_present"], 1);
    assert_exactly_once(&db, 2);
    let value: f64 = db.scalar("SELECT value FROM metrics WHERE event_id = 'bypassed'");
    assert_eq!(
        value, 42.0,
        "the stored metric is kept, not doubled or overwritten"
    );
}

/// One batch holding every kind of event the checked path must tell apart, spread over months:
/// new ones, ones already stored with their guard row, and ones whose metric was stored without
/// its guard row under another timestamp (another month's partition). Each ends up exactly once,
/// the stored metrics untouched, in one statement (one batch).
fn one_batch_of_new_present_and_bypassed_events_stores_each_once(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let months = ["2026-01", "2026-02", "2026-03", "2026-04"];
    let timestamp = |i: usize| format!("{}-{:02}T00:00:00Z", months[i % 4], 1 + i % 27);
    let line = |kind: &str, i: usize| event_line(&format!("{kind}-{i}"), "s", &timestamp(i), 1.0);
    let present: Vec<String> = (0..40).map(|i| line("present", i)).collect();
    let first = dir.path().join("first.jsonl");
    write_lines(&first, &present);
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let (code, summary) = db.replay(&[], &[&first]);
    assert_eq!(code, 0, "{summary}");
    // Bypassed: stored a month later than the event says, with value 42, and no guard row.
    let mut client = db.client();
    for i in 0..40 {
        client
            .execute(
                "INSERT INTO metrics (sensor_id, event_id, timestamp, value) \
                 VALUES ('s', $1, $2::text::timestamptz + interval '1 month', 42)",
                &[&format!("bypassed-{i}"), &timestamp(i)],
            )
            .unwrap();
    }
    let mut mixed = Vec::new();
    for i in 0..40 {
        mixed.push(line("new", i));
        mixed.push(line("present", i));
        mixed.push(line("bypassed", i));
    }
    let input = dir.path().join("mixed.jsonl");
    write_lines(&input, &mixed);
    let (code, summary) = db.replay(&["--jobs", "1", "--batch-size", "1000"], &[&input]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["inserted"], 40, "{summary}");
    assert_eq!(summary["already_present"], 80, "{summary}");
    assert_exactly_once(&db, 120);
    assert_eq!(
        db.count("SELECT count(*) FROM metrics WHERE event_id LIKE 'bypassed-%' AND value = 42"),
        40,
        "a stored metric was doubled or overwritten"
    );
}

// 2. An input is never destroyed.

#[test]
fn a_rejects_path_that_is_an_input_is_refused_before_anything_is_opened_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("t.jsonl");
    let lines = vec![
        event_line("e1", "s", "2026-03-01T00:00:00Z", 1.0),
        "not json".to_string(),
    ];
    write_lines(&input, &lines);
    let original = std::fs::read(&input).unwrap();
    let hard = dir.path().join("hard-link.jsonl");
    std::fs::hard_link(&input, &hard).unwrap();
    let soft = dir.path().join("sym-link.jsonl");
    std::os::unix::fs::symlink(&input, &soft).unwrap();
    let db = TestDatabase::new();
    db.migrate();
    for rejects in [&input, &hard, &soft] {
        // `--rejects t.jsonl t.jsonl`, as a shell glob after --rejects produces.
        db.metricsctl(&["replay"])
            .arg("--rejects")
            .arg(rejects)
            .arg(&input)
            .assert()
            .code(3)
            .stderr(contains("is the input"))
            .stderr(contains("nothing was written"));
        assert_eq!(std::fs::read(&input).unwrap(), original);
    }
    // stdin redirected from the same file (`replay - < t.jsonl --rejects t.jsonl`).
    let output = metricsctl_process()
        .args(["replay", "-", "--database-url", &db.url, "--rejects"])
        .arg(&input)
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr_of(&output).contains("is the input <stdin>"));
    assert_eq!(std::fs::read(&input).unwrap(), original);
    assert_eq!(guard_and_metric_counts(&db), (0, 0));
}

#[test]
fn an_unfinished_replay_leaves_a_previous_rejects_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.jsonl");
    std::fs::write(&rejects, "a previous complete rejects file\n").unwrap();
    // Bad lines, then the file is cut off: the replay stops early.
    let mut lines: Vec<String> = (0..3000)
        .map(|i| event_line(&format!("e{i}"), "s", "2026-03-01T00:00:00Z", 1.0))
        .collect();
    lines[10] = "bad line".to_string();
    let plain = dir.path().join("events.jsonl");
    write_lines(&plain, &lines);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &std::fs::read(&plain).unwrap()).unwrap();
    let gzip = encoder.finish().unwrap();
    let cut = dir.path().join("cut.jsonl.gz");
    std::fs::write(&cut, &gzip[..gzip.len() / 2]).unwrap();
    let db = TestDatabase::new();
    db.migrate();
    db.metricsctl(&["replay"])
        .arg("--rejects")
        .arg(&rejects)
        .arg(&cut)
        .assert()
        .code(3)
        .stderr(contains("was left as it was"));
    assert_eq!(
        std::fs::read_to_string(&rejects).unwrap(),
        "a previous complete rejects file\n"
    );
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 3, "no temporary file is left behind");
    // A complete run replaces it with exactly its rejects.
    db.metricsctl(&["replay"])
        .arg("--rejects")
        .arg(&rejects)
        .arg(&plain)
        .assert()
        .code(1);
    assert_eq!(std::fs::read_to_string(&rejects).unwrap(), "bad line\n");
}

#[test]
fn a_rejects_file_that_cannot_be_written_is_an_error_not_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("t.jsonl");
    let mut lines: Vec<String> = (0..40).map(|i| format!("bad line {i}")).collect();
    lines.push(event_line("good", "s", "2026-03-01T00:00:00Z", 1.0));
    write_lines(&input, &lines);
    let db = TestDatabase::new();
    db.migrate();
    let output = db
        .metricsctl(&["replay", "--format", "json", "--rejects", "/dev/full"])
        .arg(&input)
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("cannot write the rejects file"), "{stderr}");
    assert!(!stderr.contains("written verbatim"), "{stderr}");
    assert!(summary_of(&output)["rejects_file"].is_null());
    assert_exactly_once(&db, 1);
}

// 3. A repeated event id keeps its first occurrence, under any --jobs and across files.

fn a_repeated_event_id_under_another_sensor_keeps_its_first_occurrence(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let first_file = dir.path().join("a.jsonl");
    let second_file = dir.path().join("b.jsonl");
    // Each repeated id first comes alone for its sensor (its batch fills last), then under
    // another sensor whose batches fill and commit early: the race the later copy used to win.
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..20 {
        a.push(event_line(
            &format!("dup-{i}"),
            &format!("first-{i}"),
            "2026-03-01T00:00:00Z",
            1.0,
        ));
        a.push(event_line(
            &format!("dup-{i}"),
            &format!("second-{i}"),
            "2026-03-01T00:00:01Z",
            2.0,
        ));
        b.push(event_line(
            &format!("dup-{i}"),
            &format!("third-{i}"),
            "2026-03-01T00:00:02Z",
            3.0,
        ));
    }
    for i in 0..3000 {
        a.push(event_line(
            &format!("fill-{i}"),
            &format!("second-{}", i % 20),
            "2026-03-01T00:01:00Z",
            0.0,
        ));
    }
    write_lines(&first_file, &a);
    write_lines(&second_file, &b);
    for jobs in ["2", "3", "4"] {
        let db = TestDatabase::new();
        db.migrate_as(layout);
        let (code, summary) = db.replay(
            &["--jobs", jobs, "--batch-size", "50"],
            &[&first_file, &second_file],
        );
        assert_eq!(code, 0, "{summary}");
        assert_eq!(summary["inserted"], 3020, "{summary}");
        let later_copies = db.count(
            "SELECT count(*) FROM metrics WHERE event_id LIKE 'dup-%' \
             AND (value <> 1 OR sensor_id NOT LIKE 'first-%')",
        );
        assert_eq!(later_copies, 0, "--jobs {jobs}: a later copy won");
        let guard_sensors =
            db.count("SELECT count(*) FROM processed_events WHERE event_id LIKE 'dup-%' AND sensor_id LIKE 'first-%'");
        assert_eq!(guard_sensors, 20);
        assert_exactly_once(&db, 3020);
    }
}

// 4. What is said to be committed is committed.

fn a_lost_connection_names_a_line_before_which_everything_is_committed(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    generate_events(&input, 200_000, 50, 31, "jsonl");
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let replay = metricsctl_process()
        .args([
            "replay",
            "--jobs",
            "3",
            "--batch-size",
            "700",
            "--format",
            "json",
        ])
        .args(["--database-url", &db.url])
        .arg(&input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_writing(&db);
    // One writer's connection goes away in the middle of a batch; the others were mid-way
    // through their own.
    let holder = hold_the_writers(&db);
    let terminated: i64 = db.scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'metricsctl' \
         AND wait_event_type = 'Lock' LIMIT 1) one",
    );
    assert_eq!(terminated, 1);
    holder.release();
    let output = replay.wait_with_output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("To finish, rerun the same command"),
        "{stderr}"
    );
    let summary = summary_of(&output);
    let claim = summary["committed_before"].as_str().unwrap().to_string();
    assert!(stderr.contains(&claim), "{stderr}");
    assert_claim_holds(&db, &[&input], &claim);
    assert_consistent(&db);
    assert_eq!(db.replay(&[], &[&input]).0, 0);
    assert_exactly_once(&db, 200_000);
}

fn dry_run_predicts_exactly_what_the_real_run_inserts(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let stored_before = dir.path().join("before.jsonl");
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    generate_events(&stored_before, 400, 5, 41, "jsonl");
    let mut first: Vec<String> = std::fs::read_to_string(&stored_before)
        .unwrap()
        .lines()
        .take(150)
        .map(str::to_string)
        .collect(); // 150 already stored
    for i in 0..500 {
        first.push(event_line(
            &format!("n{i}"),
            &format!("s{}", i % 7),
            "2026-03-01T00:00:00Z",
            1.0,
        ));
        if i % 3 == 0 {
            // A repeat in a later batch, under another sensor.
            first.push(event_line(
                &format!("n{}", i / 2),
                "other",
                "2026-03-01T00:00:00Z",
                9.0,
            ));
        }
    }
    first.push(event_line("bypassed", "s", "2026-03-01T00:00:00Z", 1.0));
    write_lines(&a, &first);
    // The second file repeats half of the first.
    let second: Vec<String> = (0..250)
        .map(|i| event_line(&format!("n{i}"), "s1", "2026-03-01T00:00:00Z", 1.0))
        .chain((0..50).map(|i| event_line(&format!("m{i}"), "s1", "2026-03-01T00:00:00Z", 1.0)))
        .collect();
    write_lines(&b, &second);

    let db = TestDatabase::new();
    db.migrate_as(layout);
    assert_eq!(db.replay(&[], &[&stored_before]).0, 0);
    db.client()
        .execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value) \
             VALUES ('s', 'bypassed', '2026-03-01T00:00:00Z', 1)",
            &[],
        )
        .unwrap();
    let before = guard_and_metric_counts(&db);
    let args = ["--jobs", "3", "--batch-size", "40"];
    let (code, dry) = db.replay(&[&args[..], &["--dry-run"]].concat(), &[&a, &b]);
    assert_eq!(code, 0, "{dry}");
    assert_eq!(
        guard_and_metric_counts(&db),
        before,
        "a dry run writes nothing"
    );
    let (code, real) = db.replay(&args, &[&a, &b]);
    assert_eq!(code, 0, "{real}");
    assert_eq!(real["inserted"], 550, "{real}");
    assert_eq!(dry["inserted"], real["inserted"], "dry {dry}\nreal {real}");
    assert_eq!(
        dry["already_present"].as_i64().unwrap() + dry["repeated_in_input"].as_i64().unwrap(),
        real["already_present"].as_i64().unwrap() + real["repeated_in_input"].as_i64().unwrap()
    );
}

fn ctrl_c_stops_a_replay_and_says_how_far_it_got(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    generate_events(&input, 300_000, 40, 51, "jsonl");
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let replay = metricsctl_process()
        .args(["replay", "--batch-size", "1000", "--format", "json"])
        .args(["--database-url", &db.url])
        .arg(&input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_writing(&db);
    let holder = hold_the_writers(&db);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(replay.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    holder.release();
    let output = replay.wait_with_output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let summary = summary_of(&output);
    assert_eq!(summary["complete"], false);
    let claim = summary["committed_before"].as_str().unwrap().to_string();
    assert!(stderr.contains(&claim), "{stderr}");
    assert_claim_holds(&db, &[&input], &claim);
    assert_consistent(&db);
    let (code, rerun) = db.replay(&[], &[&input]);
    assert_eq!(code, 0, "{rerun}");
    assert_exactly_once(&db, 300_000);
}

#[test]
fn advice_to_rerun_is_given_only_where_a_rerun_can_finish() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    write_lines(&good, &[event_line("g1", "s", "2026-03-01T00:00:00Z", 1.0)]);
    let bad_header = dir.path().join("bad.csv");
    std::fs::write(
        &bad_header,
        "id,sensor,when,reading\n1,s,2026-01-01T00:00:00Z,1\n",
    )
    .unwrap();
    let db = TestDatabase::new();
    db.migrate();
    let output = db
        .metricsctl(&["replay"])
        .arg(&good)
        .arg(&bad_header)
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("bad.csv is not a usable event file"),
        "{stderr}"
    );
    assert!(stderr.contains("--input-format"), "{stderr}");
    assert!(stderr.contains("Fix the file"), "{stderr}");
    assert!(!stderr.contains("To finish"), "{stderr}");
    assert_exactly_once(&db, 1);
}

#[test]
fn a_database_that_refuses_every_write_gets_fix_the_cause_not_a_plain_rerun() {
    // As a standby or a read-only role would: a rerun alone cannot finish, so the advice is to
    // fix the cause first, and nothing is claimed beyond what is stored (nothing).
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    write_lines(
        &input,
        &[event_line("r1", "s", "2026-03-01T00:00:00Z", 1.0)],
    );
    let db = TestDatabase::new();
    db.migrate();
    db.client()
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET default_transaction_read_only = on",
            db.name
        ))
        .unwrap();
    let output = db.metricsctl(&["replay"]).arg(&input).output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("read-only transaction. Nothing was committed."),
        "{stderr}"
    );
    assert!(stderr.contains("Fix the cause, then rerun"), "{stderr}");
    assert!(!stderr.contains("To finish"), "{stderr}");
    assert_eq!(db.count("SELECT count(*) FROM processed_events"), 0);
}

// 5. One bad line never costs a file.

#[test]
fn a_json_lines_file_whose_first_line_is_garbage_is_still_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.dat");
    let mut lines = vec!["@@@ garbage, not an event".to_string()];
    lines.extend((0..20).map(|i| event_line(&format!("e{i}"), "s", "2026-03-01T00:00:00Z", 1.0)));
    write_lines(&input, &lines);
    let db = TestDatabase::new();
    db.migrate();
    let (code, summary) = db.replay(&[], &[&input]);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["rejected"], 1);
    assert_eq!(summary["rejections"][0]["line"], 1);
    assert_exactly_once(&db, 20);

    // A file no line of which tells: the message names --input-format.
    let unknown = dir.path().join("readings.txt");
    std::fs::write(&unknown, "hello world\nsecond line\n").unwrap();
    db.metricsctl(&["replay"])
        .arg(&unknown)
        .assert()
        .code(3)
        .stderr(contains("--input-format"));
}

// 6. Wrong data is rejected, not stored.

#[test]
fn csv_rows_that_would_shift_columns_and_epoch_seconds_are_rejected_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.csv");
    std::fs::write(
        &input,
        "event_id,sensor_id,timestamp,value\n\
         ok-1,s,2026-01-01T00:00:00Z,1\n\
         sh-1,sensor,7,1767225600000,21.5\n\
         short,s,2026-01-01T00:00:00Z\n\
         secs,s,1767225600,3\n\
         open,\"s,2026-01-01T00:00:00Z,4\n\
         ok-2,s,2026-01-01T00:00:01Z,5\n\
         ok-3,s,1767225600000,6\n",
    )
    .unwrap();
    let db = TestDatabase::new();
    db.migrate();
    let (code, summary) = db.replay(&[], &[&input]);
    assert_eq!(code, 1, "{summary}");
    let reasons: Vec<(u64, String)> = summary["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(reasons[0].0, 3);
    assert!(
        reasons[0].1.contains("5 fields but the header names 4"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].0, 4);
    assert!(reasons[1].1.contains("3 fields"), "{reasons:?}");
    assert_eq!(reasons[2].0, 5);
    assert!(
        reasons[2]
            .1
            .contains("epoch seconds (2026-01-01T00:00:00Z)"),
        "{reasons:?}"
    );
    assert_eq!(reasons[3].0, 6);
    assert!(
        reasons[3]
            .1
            .contains("quote opened on line 6 is never closed"),
        "{reasons:?}"
    );
    // The lines after the unclosed quote still land.
    assert_exactly_once(&db, 3);
    let stored: Vec<String> = db
        .client()
        .query("SELECT event_id FROM metrics ORDER BY event_id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, vec!["ok-1", "ok-2", "ok-3"]);
}

// 7. The guide's own partitioned SQL, without a DEFAULT partition.

#[test]
fn events_outside_every_partition_are_rejects_on_the_guides_own_partitioned_schema() {
    let db = TestDatabase::new();
    let mut client = db.client();
    client
        .batch_execute(include_str!("fixtures/seed_partitioned.sql"))
        .unwrap();
    client
        .batch_execute(include_str!("fixtures/seed_init.sql"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    let mut lines: Vec<String> = (0..30)
        .map(|i| event_line(&format!("jan-{i}"), "s", "2024-01-15T00:00:00Z", 1.0))
        .collect();
    lines.insert(10, event_line("stray", "s", "2023-06-02T00:00:00Z", 2.0));
    lines.push(event_line("feb", "s", "2024-02-29T23:59:59Z", 3.0));
    write_lines(&input, &lines);
    let (code, summary) = db.replay(&[], &[&input]);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["rejected"], 1);
    let rejection = &summary["rejections"][0];
    assert_eq!(rejection["line"], 11);
    let reason = rejection["reason"].as_str().unwrap();
    assert!(
        reason.contains("no partition of metrics holds 2023-06"),
        "{reason}"
    );
    assert!(
        reason.contains("partitions create --from 2023-06"),
        "{reason}"
    );
    assert_exactly_once(&db, 31);
    assert_eq!(
        db.count("SELECT count(*) FROM processed_events WHERE event_id = 'stray'"),
        0,
        "no guard row for a rejected event"
    );
    // The rerun is the same: the rejected event is rejected again, nothing fails.
    assert_eq!(db.replay(&[], &[&input]).0, 1);
    // The guide's months are long past: no partition for the current month is CRITICAL, and
    // the missing DEFAULT is named with its consequence.
    let output = db.metricsctl(&["check", "partitions"]).output().unwrap();
    let report = crate::support::stdout_of(&output);
    assert_eq!(output.status.code(), Some(2), "{report}");
    assert!(
        report.contains("no DEFAULT partition: an event outside every partition is refused"),
        "{report}"
    );
}

// 8. Retention keeps exactly-once.

fn first_of_month(months_ago: u32, db: &TestDatabase) -> NaiveDate {
    let current: NaiveDate =
        db.scalar("SELECT CAST(date_trunc('month', now() AT TIME ZONE 'UTC') AS date)");
    current - Months::new(months_ago)
}

#[test]
fn retired_events_stay_retired_unless_their_guard_rows_are_forgotten() {
    let db = TestDatabase::new();
    db.metricsctl(&["migrate", "--partitioned"])
        .assert()
        .code(0);
    let old = first_of_month(8, &db);
    let old_month = format!("{:04}-{:02}", old.year(), old.month());
    db.metricsctl(&[
        "partitions",
        "create",
        "--from",
        &old_month,
        "--months",
        "8",
    ])
    .assert()
    .code(0);
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.jsonl");
    let old_day = format!("{old}T12:00:00Z");
    let now_day = format!("{}T00:00:00Z", first_of_month(0, &db));
    let lines: Vec<String> = (0..25)
        .map(|i| event_line(&format!("old-{i}"), "s", &old_day, 1.0))
        .chain((0..5).map(|i| event_line(&format!("now-{i}"), "s", &now_day, 1.0)))
        .collect();
    write_lines(&dump, &lines);
    assert_eq!(db.replay(&[], &[&dump]).0, 0);

    retired_events_stay_retired(&db, &dump);
    // Forgetting them is an explicit choice: then a redelivery stores them again (in DEFAULT).
    let output = db
        .metricsctl(&[
            "partitions",
            "drop",
            "--older-than",
            "6",
            "--forget-guard-rows",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(summary_of(&output)["earlier_guard_rows_deleted"], 25);
    assert_eq!(db.count("SELECT count(*) FROM processed_events"), 5);
    let (code, summary) = db.replay(&[], &[&dump]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["inserted"], 25);
    assert_eq!(db.count("SELECT count(*) FROM metrics_default"), 25);
    assert_exactly_once(&db, 30);
    // The bookkeeping table is metricsctl's own; the guide's two tables are untouched by it.
    assert_eq!(
        db.count("SELECT count(*) FROM metricsctl_retired_events"),
        0
    );
}

/// Retention keeps the guard rows of the 25 events it retires: replaying the dump or the
/// guide's consumer insert does not bring them back, and check duplicates calls them retired,
/// not lost.
fn retired_events_stay_retired(db: &TestDatabase, dump: &std::path::Path) {
    db.metricsctl(&["partitions", "drop", "--older-than", "6"])
        .assert()
        .code(0)
        .stderr(contains("stay retired"));
    assert_eq!(db.count("SELECT count(*) FROM processed_events"), 30);
    // Replaying the dump does not bring them back…
    let (code, summary) = db.replay(&[], &[dump]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["inserted"], 0);
    assert_eq!(db.count("SELECT count(*) FROM metrics_default"), 0);
    // …nor does the consumer's insert pattern from the guide.
    let redelivered = db
        .client()
        .query(
            "INSERT INTO processed_events (event_id, sensor_id, kafka_partition, kafka_offset) \
             VALUES ('old-3', 's', 0, 3) ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            &[],
        )
        .unwrap();
    assert!(
        redelivered.is_empty(),
        "the guard still holds a retired event"
    );
    // check duplicates knows they were retired, not lost.
    let output = db
        .metricsctl(&["check", "duplicates", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let report = summary_of(&output);
    assert_eq!(report["lost_metrics"], 0);
    assert_eq!(report["retired_events"], 25);
}

crate::on_both_layouts!(
    a_sequence_behind_max_id_is_refused_and_the_printed_fix_works,
    a_metric_stored_without_its_guard_is_left_alone_and_guarded,
    a_lost_connection_names_a_line_before_which_everything_is_committed,
    ctrl_c_stops_a_replay_and_says_how_far_it_got,
    // Not on Citus: there metrics' key is (id, event_id), so an id handed out again is no
    // collision; `replay` refuses a sequence behind max(id) before writing, on every layout.
    a_key_collision_inside_a_batch_fails_it_whole,
);

// Again on the distributed layout (Citus): the replay, check and repair paths that differ there.
crate::on_every_layout!(
    a_metric_stored_without_its_guard_under_another_timestamp_gets_no_second_copy,
    one_batch_of_new_present_and_bypassed_events_stores_each_once,
    dry_run_predicts_exactly_what_the_real_run_inserts,
    a_repeated_event_id_under_another_sensor_keeps_its_first_occurrence,
);
