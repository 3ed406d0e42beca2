//! `metricsctl replay`: formats, bad input, rejects, strict, dry run, order, and exit codes.

use std::io::Write;

use predicates::str::contains;

use crate::support::{
    Layout, TestDatabase, assert_claim_holds, assert_exactly_once, event_ids_by_line,
    generate_events, stderr_of, summary_of,
};

fn good(id: &str, sensor: &str, second: u32, value: f64) -> String {
    format!(
        r#"{{"event_id":"{id}","sensor_id":"{sensor}","timestamp":"2026-03-01T00:00:{second:02}Z","value":{value}}}"#
    )
}

fn write_lines(path: &std::path::Path, lines: &[String]) {
    let mut file = std::fs::File::create(path).unwrap();
    for line in lines {
        file.write_all(line.as_bytes()).unwrap();
        file.write_all(b"\n").unwrap();
    }
}

fn every_format_lands_the_same_events_and_gzip_is_found_by_its_magic_bytes(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("events.jsonl");
    let csv = dir.path().join("events.csv");
    let kcat = dir.path().join("events.kcat");
    generate_events(&jsonl, 3000, 7, 11, "jsonl");
    generate_events(&csv, 3000, 7, 11, "csv");
    generate_events(&kcat, 3000, 7, 11, "kcat");
    // A gzipped copy of the CSV under a name that does not say so.
    let gzipped = dir.path().join("events-csv.dat");
    crate::support::metricsctl()
        .args([
            "generate",
            "3000",
            "--sensors",
            "7",
            "--seed",
            "11",
            "--format",
            "csv",
            "--gzip",
            "-o",
        ])
        .arg(&gzipped)
        .assert()
        .code(0);

    let db = TestDatabase::new();
    db.migrate_as(layout);
    let (first_code, first_summary) = db.replay(&[], &[&jsonl]);
    assert_eq!(first_code, 0, "{first_summary}");
    assert_eq!(first_summary["inserted"], 3000);
    for other in [&csv, &kcat, &gzipped] {
        let (code, summary) = db.replay(&[], &[other]);
        assert_eq!(code, 0, "{summary}");
        assert_eq!(summary["inserted"], 0, "{}", other.display());
        assert_eq!(summary["already_present"], 3000, "{}", other.display());
    }
    assert_exactly_once(&db, 3000);
    // The kcat envelope's partition and offset were recorded with the guard rows of the first run.
    let with_offsets: i64 = db.count(
        "SELECT count(*) FROM processed_events WHERE kafka_partition IS NOT NULL AND kafka_offset IS NOT NULL",
    );
    assert_eq!(with_offsets, 3000);
}

fn bad_lines_are_named_by_file_line_and_reason_and_the_good_ones_land(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.jsonl");
    let long_id = "x".repeat(256);
    let lines = vec![
        good("ok-1", "s1", 1, 1.0),
        r#"{"event_id":"bad-json""#.to_string(),
        r#"{"event_id":"nan","sensor_id":"s1","timestamp":"2026-03-01T00:00:02Z","value":"NaN"}"#
            .to_string(),
        r#"{"event_id":"no-value","sensor_id":"s1","timestamp":"2026-03-01T00:00:03Z"}"#
            .to_string(),
        good("ok-2", "s1", 4, 2.0),
        r#"{"event_id":"bad-time","sensor_id":"s1","timestamp":"2026-03-01 noonish","value":1}"#
            .to_string(),
        format!(
            r#"{{"event_id":"{long_id}","sensor_id":"s1","timestamp":1767225600000,"value":1}}"#
        ),
        r#"{"event_id":"","sensor_id":"s1","timestamp":1767225600000,"value":1}"#.to_string(),
        r#"{"event_id":"nul","sensor_id":"s\u0000","timestamp":1767225600000,"value":1}"#
            .to_string(),
        good("ok-3", "s2", 5, 3.0),
    ];
    write_lines(&input, &lines);
    // Invalid UTF-8 on line 11.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    file.write_all(
        b"{\"event_id\":\"\xff\xfe\",\"sensor_id\":\"s\",\"timestamp\":1,\"value\":1}\n",
    )
    .unwrap();
    drop(file);
    let rejects = dir.path().join("rejects.jsonl");

    let db = TestDatabase::new();
    db.migrate_as(layout);
    let name = input.display().to_string();
    db.metricsctl(&["replay"])
        .arg(&input)
        .arg("--rejects")
        .arg(&rejects)
        .assert()
        .code(1)
        .stderr(contains(format!("{name}:2: malformed JSON")))
        .stderr(contains(format!(
            "{name}:3: field \"value\" must be a number"
        )))
        .stderr(contains(format!("{name}:4: missing field \"value\"")))
        .stderr(contains(format!("{name}:6: field \"timestamp\"")))
        .stderr(contains(format!(
            "{name}:7: field \"event_id\" has 256 characters"
        )))
        .stderr(contains(format!("{name}:8: field \"event_id\" is empty")))
        .stderr(contains(format!(
            "{name}:9: field \"sensor_id\" contains a NUL character"
        )))
        .stderr(contains(format!("{name}:11: invalid UTF-8")))
        .stdout(contains("rejected"));
    assert_exactly_once(&db, 3);

    // The rejects file holds exactly the bad lines, byte for byte.
    let original = std::fs::read(&input).unwrap();
    let original_lines: Vec<&[u8]> = original.split(|b| *b == b'\n').collect();
    let expected: Vec<u8> = [2, 3, 4, 6, 7, 8, 9, 11]
        .iter()
        .flat_map(|n| [original_lines[n - 1], b"\n"].concat())
        .collect();
    assert_eq!(std::fs::read(&rejects).unwrap(), expected);
}

fn a_csv_rejects_file_keeps_its_header_and_replays_once_fixed(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.csv");
    std::fs::write(
        &input,
        "sensor_id,event_id,value,timestamp\r\n\
         s1,c1,1.5,2026-03-01T00:00:01Z\r\n\
         s1,c2,NaN,2026-03-01T00:00:02Z\r\n\
         \"s,2\",c3,2.5,\"2026-03-01T00:00:03Z\"\r\n",
    )
    .unwrap();
    let rejects = dir.path().join("rejects.csv");
    let db = TestDatabase::new();
    db.migrate_as(layout);
    db.metricsctl(&["replay"])
        .arg(&input)
        .arg("--rejects")
        .arg(&rejects)
        .assert()
        .code(1)
        .stderr(contains(
            "events.csv:3: field \"value\" is not a finite number (NaN)",
        ));
    let kept = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(
        kept,
        "sensor_id,event_id,value,timestamp\ns1,c2,NaN,2026-03-01T00:00:02Z\n"
    );

    std::fs::write(&rejects, kept.replace("NaN", "3.5")).unwrap();
    db.metricsctl(&["replay"]).arg(&rejects).assert().code(0);
    assert_exactly_once(&db, 3);
    let fixed: f64 = db.scalar("SELECT value FROM metrics WHERE event_id = 'c2'");
    assert_eq!(fixed, 3.5);
    let sensor: String = db.scalar("SELECT sensor_id FROM metrics WHERE event_id = 'c3'");
    assert_eq!(sensor, "s,2");
}

fn strict_stops_at_the_first_bad_line_and_commits_nothing_from_that_file(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.jsonl");
    write_lines(&clean, &[good("a", "s", 1, 1.0), good("b", "s", 2, 2.0)]);
    let broken = dir.path().join("broken.jsonl");
    let mut lines: Vec<String> = (0..50)
        .map(|i| good(&format!("c{i}"), "s", i % 60, 1.0))
        .collect();
    lines.push("{not json".to_string());
    lines.push(good("after", "s", 59, 1.0));
    write_lines(&broken, &lines);

    let db = TestDatabase::new();
    db.migrate_as(layout);
    let (code, summary) = db.replay(&["--strict", "--batch-size", "10"], &[&clean, &broken]);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(
        summary["stopped_at"],
        format!("{}:51", broken.display()),
        "{summary}"
    );
    // The clean file before it committed; nothing of the broken one did, though 5 batches of it
    // had been written inside its transaction.
    assert_exactly_once(&db, 2);
}

fn the_same_file_twice_inserts_nothing_the_second_time(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    generate_events(&input, 2500, 5, 3, "jsonl");
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let (first_code, first_summary) = db.replay(&[], &[&input]);
    assert_eq!(first_code, 0, "{first_summary}");
    assert_eq!(first_summary["inserted"], 2500);
    let (code, summary) = db.replay(&[], &[&input]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["inserted"], 0);
    assert_eq!(summary["already_present"], 2500);
    assert_exactly_once(&db, 2500);
}

fn a_repeated_event_id_keeps_its_first_occurrence(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("repeats.jsonl");
    write_lines(
        &input,
        &[
            good("dup", "s", 1, 1.0),
            good("other", "s", 2, 2.0),
            good("dup", "s", 3, 99.0),
            good("dup", "s", 4, 98.0),
        ],
    );
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let (code, summary) = db.replay(&[], &[&input]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["inserted"], 2);
    assert_eq!(summary["repeated_in_input"], 2);
    let value: f64 = db.scalar("SELECT value FROM metrics WHERE event_id = 'dup'");
    assert_eq!(value, 1.0, "the first occurrence wins");

    // Across batches the repeat meets the guard instead, and still loses.
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let (code, summary) = db.replay(&["--batch-size", "1"], &[&input]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["inserted"], 2);
    assert_eq!(summary["already_present"], 2);
    let value: f64 = db.scalar("SELECT value FROM metrics WHERE event_id = 'dup'");
    assert_eq!(value, 1.0);
}

fn metrics_ids_follow_input_order_within_each_sensor(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("order.jsonl");
    // Timestamps deliberately out of order, several sensors interleaved, small batches, 3 writers.
    let mut lines = Vec::new();
    for i in 0..600u32 {
        let sensor = format!("sensor-{}", i % 5);
        let second = (i * 7919) % 60;
        lines.push(good(&format!("ev-{i:04}"), &sensor, second, f64::from(i)));
    }
    write_lines(&input, &lines);
    let db = TestDatabase::new();
    db.migrate_as(layout);
    db.metricsctl(&["replay", "--batch-size", "17", "--jobs", "3"])
        .arg(&input)
        .assert()
        .code(0);
    let rows = db
        .client()
        .query(
            "SELECT sensor_id, event_id FROM metrics ORDER BY sensor_id, id",
            &[],
        )
        .unwrap();
    let mut by_sensor: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for row in rows {
        by_sensor.entry(row.get(0)).or_default().push(row.get(1));
    }
    for (sensor, ids) in by_sensor {
        let mut in_file_order = ids.clone();
        in_file_order.sort();
        assert_eq!(
            ids, in_file_order,
            "{sensor}: ids must follow the file order"
        );
    }
}

fn dry_run_counts_without_writing(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    generate_events(&input, 1000, 4, 8, "jsonl");
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let (code, summary) = db.replay(&["--dry-run"], &[&input]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["inserted"], 1000);
    assert_eq!(db.count("SELECT count(*) FROM processed_events"), 0);
    assert_eq!(db.count("SELECT count(*) FROM metrics"), 0);

    db.metricsctl(&["replay"]).arg(&input).assert().code(0);
    db.metricsctl(&["replay", "--dry-run"])
        .arg(&input)
        .assert()
        .code(0)
        .stdout(contains("would insert"))
        .stderr(contains("nothing was written"));
    let (code, summary) = db.replay(&["--dry-run"], &[&input]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["inserted"], 0);
    assert_eq!(summary["already_present"], 1000);
}

fn kcat_tombstones_are_skipped_and_counted(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("topic.json");
    let payload = r#"{\"event_id\":\"k1\",\"sensor_id\":\"s\",\"timestamp\":\"2026-03-01T00:00:00Z\",\"value\":4.5}"#;
    write_lines(
        &input,
        &[
            format!(r#"{{"topic":"metrics","partition":3,"offset":10,"tstype":"create","ts":1,"broker":1,"key":"s","payload":"{payload}"}}"#),
            r#"{"topic":"metrics","partition":3,"offset":11,"tstype":"create","ts":1,"broker":1,"key":"s","payload":null}"#.to_string(),
            r#"{"topic":"metrics","partition":3,"offset":12,"tstype":"create","ts":1,"broker":1,"key":"s","payload":"{\"oops\":1}"}"#.to_string(),
        ],
    );
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let (code, summary) = db.replay(&[], &[&input]);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["tombstones"], 1);
    assert_eq!(summary["rejected"], 1);
    assert!(
        summary["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("payload is not an event")
    );
    let (partition, offset): (i32, i64) = {
        let row = db
            .client()
            .query_one(
                "SELECT kafka_partition, kafka_offset FROM processed_events",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((partition, offset), (3, 10));
}

fn stdin_is_a_file_named_dash(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let input = format!(
        "{}\n{}\n",
        good("in-1", "s", 1, 1.0),
        good("in-2", "s", 2, 2.0)
    );
    db.metricsctl(&["replay", "-"])
        .write_stdin(input)
        .assert()
        .code(0)
        .stdout(contains("inserted"));
    assert_exactly_once(&db, 2);
}

fn a_hostile_sensor_id_is_just_a_sensor_id(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hostile.jsonl");
    write_lines(&input, &[good("h1", "x'; DROP TABLE metrics; --", 1, 1.0)]);
    let db = TestDatabase::new();
    db.migrate_as(layout);
    db.metricsctl(&["replay"]).arg(&input).assert().code(0);
    let sensor: String = db.scalar("SELECT sensor_id FROM metrics");
    assert_eq!(sensor, "x'; DROP TABLE metrics; --");
}

fn files_that_cannot_be_read_stop_the_replay_before_anything_is_written(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let good_file = dir.path().join("good.jsonl");
    write_lines(&good_file, &[good("g1", "s", 1, 1.0)]);
    let missing = dir.path().join("missing.jsonl");
    let db = TestDatabase::new();
    db.migrate_as(layout);
    db.metricsctl(&["replay"])
        .arg(&good_file)
        .arg(&missing)
        .assert()
        .code(3)
        .stderr(contains("missing.jsonl"));
    assert_eq!(db.count("SELECT count(*) FROM metrics"), 0);

    let bad_header = dir.path().join("bad.csv");
    std::fs::write(
        &bad_header,
        "id,sensor,when,reading\n1,s,2026-01-01T00:00:00Z,1\n",
    )
    .unwrap();
    db.metricsctl(&["replay"])
        .arg(&good_file)
        .arg(&bad_header)
        .assert()
        .code(3)
        .stderr(contains("bad.csv"))
        .stderr(contains("event_id"));
    assert_exactly_once(&db, 1);
}

fn a_truncated_gzip_file_keeps_what_came_before_and_says_how_far_it_got(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("events.jsonl.gz");
    crate::support::metricsctl()
        .args(["generate", "20000", "--sensors", "1", "--gzip", "-o"])
        .arg(&whole)
        .assert()
        .code(0);
    let bytes = std::fs::read(&whole).unwrap();
    let truncated = dir.path().join("truncated.gz");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let complete_lines = event_ids_by_line(&truncated).len() as i64;
    assert!((1000..20000).contains(&complete_lines));
    let db = TestDatabase::new();
    db.migrate_as(layout);
    // The default writers and batch size: the partly filled batches must be sent too.
    let output = db
        .metricsctl(&["replay", "--format", "json"])
        .arg(&truncated)
        .output()
        .unwrap();
    let summary = summary_of(&output);
    assert_eq!(output.status.code(), Some(3), "{summary}");
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("truncated.gz ends early or is corrupt"),
        "{stderr}"
    );
    assert!(stderr.contains("replay a complete copy"), "{stderr}");
    assert!(
        !stderr.contains("To finish"),
        "a rerun cannot finish a cut-off file: {stderr}"
    );
    // Every complete line read before the cut is committed, and the claim says so.
    assert_eq!(summary["inserted"], complete_lines, "{summary}");
    assert_eq!(summary["unconfirmed"], 0, "{summary}");
    let claim = summary["committed_before"].as_str().unwrap();
    assert!(stderr.contains(claim), "{stderr}");
    assert_claim_holds(&db, &[&truncated], claim);
    assert_exactly_once(&db, complete_lines);
}

#[test]
fn replay_needs_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("e.jsonl");
    write_lines(&input, &[good("a", "s", 1, 1.0)]);
    let db = TestDatabase::new();
    db.metricsctl(&["replay"])
        .arg(&input)
        .assert()
        .code(3)
        .stderr(contains("metricsctl migrate"));
}

fn replay_exit_codes_follow_the_convention(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("e.jsonl");
    write_lines(&input, &[good("a", "s", 1, 1.0)]);
    let db = TestDatabase::new();
    db.migrate_as(layout);
    db.metricsctl(&["replay"]).arg(&input).assert().code(0);
    // 2: the database refuses the work (here: a constraint the events break).
    db.client()
        .batch_execute("ALTER TABLE metrics ADD CONSTRAINT reading_cap CHECK (value < 100)")
        .unwrap();
    write_lines(&input, &[good("b", "s", 2, 150.0)]);
    db.metricsctl(&["replay"])
        .arg(&input)
        .assert()
        .code(2)
        .stderr(contains("reading_cap"))
        .stderr(contains("Fix the cause, then rerun the same command"));
    assert_exactly_once(&db, 1);
}

crate::on_both_layouts!(
    a_csv_rejects_file_keeps_its_header_and_replays_once_fixed,
    metrics_ids_follow_input_order_within_each_sensor,
    kcat_tombstones_are_skipped_and_counted,
    stdin_is_a_file_named_dash,
    a_hostile_sensor_id_is_just_a_sensor_id,
    files_that_cannot_be_read_stop_the_replay_before_anything_is_written,
    a_truncated_gzip_file_keeps_what_came_before_and_says_how_far_it_got,
    replay_exit_codes_follow_the_convention,
);

// Again on the distributed layout (Citus): the replay, check and repair paths that differ there.
crate::on_every_layout!(
    every_format_lands_the_same_events_and_gzip_is_found_by_its_magic_bytes,
    bad_lines_are_named_by_file_line_and_reason_and_the_good_ones_land,
    the_same_file_twice_inserts_nothing_the_second_time,
    dry_run_counts_without_writing,
    a_repeated_event_id_keeps_its_first_occurrence,
    strict_stops_at_the_first_bad_line_and_commits_nothing_from_that_file,
);
