//! The bad-input corpus: every kind of bad record named by file, line and a precise reason, with
//! the good records around it stored; every kind of bad file a clear error. Nothing panics.

use crate::support::{TestDatabase, assert_exactly_once, event_line, stderr_of, summary_of};

const TS: &str = "2026-03-01T00:00:00Z";

fn good_json(id: &str) -> String {
    event_line(id, "s", TS, 1.0)
}

fn kcat(payload: &serde_json::Value, offset: u64) -> String {
    serde_json::json!({
        "topic": "metrics", "partition": 0, "offset": offset, "tstype": "create",
        "ts": 1, "broker": 1, "key": null, "payload": payload
    })
    .to_string()
}

fn good_kcat(id: &str, offset: u64) -> String {
    kcat(&serde_json::Value::String(good_json(id)), offset)
}

/// A bad record: its kind, the file extension, the bytes of its line, and part of its reason.
struct BadRecord {
    kind: &'static str,
    extension: &'static str,
    line: Vec<u8>,
    reason: &'static str,
}

fn json(kind: &'static str, line: &str, reason: &'static str) -> BadRecord {
    BadRecord {
        kind,
        extension: "jsonl",
        line: line.as_bytes().to_vec(),
        reason,
    }
}

fn csv(kind: &'static str, line: &str, reason: &'static str) -> BadRecord {
    BadRecord {
        kind,
        extension: "csv",
        line: line.as_bytes().to_vec(),
        reason,
    }
}

fn kcat_record(kind: &'static str, line: String, reason: &'static str) -> BadRecord {
    BadRecord {
        kind,
        extension: "kcat",
        line: line.into_bytes(),
        reason,
    }
}

fn corpus() -> Vec<BadRecord> {
    let event = |fields: &str| format!("{{{fields}}}");
    let base = r#""event_id":"x","sensor_id":"s","timestamp":"2026-03-01T00:00:00Z""#;
    let mut records = vec![
        json("unterminated JSON", r#"{"event_id":"x""#, "malformed JSON"),
        json(
            "JSON array",
            r#"["x","s","2026-03-01T00:00:00Z",1]"#,
            "expected a JSON object",
        ),
        json("JSON number", "42", "expected a JSON object"),
        json("JSON string", r#""an event""#, "expected a JSON object"),
        json(
            "trailing text after the object",
            &format!("{} trailing", good_json("x")),
            "malformed JSON",
        ),
        json(
            "missing event_id",
            r#"{"sensor_id":"s","timestamp":"2026-03-01T00:00:00Z","value":1}"#,
            r#"missing field "event_id""#,
        ),
        json(
            "missing sensor_id",
            r#"{"event_id":"x","timestamp":"2026-03-01T00:00:00Z","value":1}"#,
            r#"missing field "sensor_id""#,
        ),
        json(
            "missing timestamp",
            r#"{"event_id":"x","sensor_id":"s","value":1}"#,
            r#"missing field "timestamp""#,
        ),
        json("missing value", &event(base), r#"missing field "value""#),
        json(
            "empty event_id",
            r#"{"event_id":"","sensor_id":"s","timestamp":"2026-03-01T00:00:00Z","value":1}"#,
            r#"field "event_id" is empty"#,
        ),
        json(
            "empty sensor_id",
            r#"{"event_id":"x","sensor_id":"","timestamp":"2026-03-01T00:00:00Z","value":1}"#,
            r#"field "sensor_id" is empty"#,
        ),
        json(
            "numeric event_id",
            r#"{"event_id":7,"sensor_id":"s","timestamp":"2026-03-01T00:00:00Z","value":1}"#,
            r#"field "event_id" must be a string"#,
        ),
        json(
            "null sensor_id",
            r#"{"event_id":"x","sensor_id":null,"timestamp":"2026-03-01T00:00:00Z","value":1}"#,
            r#"missing field "sensor_id""#,
        ),
        json(
            "value as a string",
            &event(&format!(r#"{base},"value":"7""#)),
            r#"field "value" must be a number"#,
        ),
        json(
            "value NaN token",
            &event(&format!("{base},\"value\":NaN")),
            "malformed JSON",
        ),
        json(
            "infinite value",
            &event(&format!("{base},\"value\":1e999")),
            "malformed JSON",
        ),
        json(
            "null value",
            &event(&format!("{base},\"value\":null")),
            r#"missing field "value""#,
        ),
        json(
            "boolean value",
            &event(&format!("{base},\"value\":true")),
            r#"field "value" must be a number"#,
        ),
        json(
            "timestamp without offset",
            r#"{"event_id":"x","sensor_id":"s","timestamp":"2026-03-01T00:00:00","value":1}"#,
            "RFC 3339 with an offset",
        ),
        json(
            "timestamp in words",
            r#"{"event_id":"x","sensor_id":"s","timestamp":"yesterday","value":1}"#,
            "RFC 3339 with an offset",
        ),
        json(
            "timestamp in epoch seconds",
            r#"{"event_id":"x","sensor_id":"s","timestamp":1767225600,"value":1}"#,
            "looks like epoch seconds",
        ),
        json(
            "timestamp in epoch microseconds",
            r#"{"event_id":"x","sensor_id":"s","timestamp":1767225600000000,"value":1}"#,
            "looks like epoch microseconds",
        ),
        json(
            "fractional epoch milliseconds",
            r#"{"event_id":"x","sensor_id":"s","timestamp":1767225600000.5,"value":1}"#,
            "must be a whole number",
        ),
        json(
            "timestamp past year 9999",
            r#"{"event_id":"x","sensor_id":"s","timestamp":"10000-01-01T00:00:00Z","value":1}"#,
            "timestamp",
        ),
        json(
            "timestamp as an object",
            r#"{"event_id":"x","sensor_id":"s","timestamp":{},"value":1}"#,
            r#"field "timestamp" must be"#,
        ),
        json(
            "event_id of 256 characters",
            &good_json(&"x".repeat(256)),
            "has 256 characters",
        ),
        json(
            "NUL in sensor_id",
            r#"{"event_id":"x","sensor_id":"s\u0000","timestamp":"2026-03-01T00:00:00Z","value":1}"#,
            "NUL",
        ),
        json(
            "negative kafka_partition",
            &event(&format!("{base},\"value\":1,\"kafka_partition\":-1")),
            "kafka_partition",
        ),
        json(
            "kafka_partition over 32 bits",
            &event(&format!(
                "{base},\"value\":1,\"kafka_partition\":2147483648"
            )),
            "kafka_partition",
        ),
        json(
            "negative kafka_offset",
            &event(&format!("{base},\"value\":1,\"kafka_offset\":-5")),
            "kafka_offset",
        ),
        json(
            "kafka_offset as a string",
            &event(&format!("{base},\"value\":1,\"kafka_offset\":\"5\"")),
            "kafka_offset",
        ),
        json(
            "duplicate key",
            &event(&format!("{base},\"value\":1,\"value\":2")),
            "duplicate field",
        ),
        BadRecord {
            kind: "invalid UTF-8",
            extension: "jsonl",
            line: b"{\"event_id\":\"x\xff\",\"sensor_id\":\"s\"}".to_vec(),
            reason: "invalid UTF-8",
        },
        BadRecord {
            kind: "line over 1 MiB",
            extension: "jsonl",
            line: format!("{{\"event_id\":\"{}\"}}", "y".repeat(1_100_000)).into_bytes(),
            reason: "line longer than",
        },
        csv(
            "CSV row with a field too many",
            "sh-1,sensor,7,1767225600000,21.5",
            "5 fields but the header names 4",
        ),
        csv(
            "CSV row with a field too few",
            "x,s,2026-03-01T00:00:00Z",
            "3 fields but the header names 4",
        ),
        csv(
            "CSV value not a number",
            "x,s,2026-03-01T00:00:00Z,warm",
            r#"field "value" must be a number"#,
        ),
        csv(
            "CSV value NaN",
            "x,s,2026-03-01T00:00:00Z,NaN",
            "not a finite number",
        ),
        csv(
            "CSV timestamp in epoch seconds",
            "x,s,1767225600,1",
            "looks like epoch seconds",
        ),
        csv(
            "CSV empty event_id",
            ",s,2026-03-01T00:00:00Z,1",
            r#"field "event_id" is empty"#,
        ),
        csv(
            "CSV unclosed quote",
            "x,\"s,2026-03-01T00:00:00Z,1",
            "is never closed",
        ),
        BadRecord {
            kind: "CSV invalid UTF-8",
            extension: "csv",
            line: b"x,s\xfe,2026-03-01T00:00:00Z,1".to_vec(),
            reason: "invalid UTF-8",
        },
        kcat_record(
            "kcat envelope without payload",
            r#"{"topic":"metrics","partition":0,"offset":9}"#.to_string(),
            "no \"payload\"",
        ),
        kcat_record(
            "kcat payload a number",
            kcat(&serde_json::json!(3), 9),
            "must be a JSON string",
        ),
        kcat_record(
            "kcat payload not JSON",
            kcat(&serde_json::json!("not json"), 9),
            "payload is not an event",
        ),
        kcat_record(
            "kcat payload missing a field",
            kcat(&serde_json::json!(r#"{"event_id":"x"}"#), 9),
            "payload is not an event",
        ),
        kcat_record(
            "kcat offset as a string",
            r#"{"topic":"metrics","partition":0,"offset":"9","payload":"{}"}"#.to_string(),
            "payload is not an event",
        ),
    ];
    // Give every bad record an event id of its own where it has one, so nothing collides.
    for (i, record) in records.iter_mut().enumerate() {
        let text = String::from_utf8_lossy(&record.line).replace("\"x\"", &format!("\"bad-{i}\""));
        if !record.line.contains(&0xff) && !record.line.contains(&0xfe) {
            record.line = text.into_bytes();
        }
    }
    records
}

#[test]
fn every_kind_of_bad_record_is_named_and_costs_only_itself() {
    let records = corpus();
    assert!(records.len() >= 40, "{} kinds", records.len());
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<std::path::PathBuf> = records
        .iter()
        .enumerate()
        .map(|(i, record)| file_with_good_records_around(dir.path(), i, record))
        .collect();
    let db = TestDatabase::new();
    db.migrate();
    let rejects = dir.path().join("rejects.out");
    let output = db
        .metricsctl(&["replay", "--format", "json", "--jobs", "3"])
        .arg("--rejects")
        .arg(&rejects)
        .args(&files)
        .output()
        .unwrap();
    let summary = summary_of(&output);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert_eq!(summary["rejected"], records.len());
    let rejections = summary["rejections"].as_array().unwrap();
    for (record, file) in records.iter().zip(&files) {
        rejected_once_at_its_line_for_its_reason(rejections, record, file);
    }
    // The good records around every bad one landed, and each bad one is kept verbatim.
    assert_exactly_once(&db, 2 * records.len() as i64);
    let kept = std::fs::read(&rejects).unwrap();
    for record in &records {
        let start = &record.line[..record.line.len().min(64)];
        assert!(
            kept.windows(start.len()).any(|w| w == start),
            "{} is not in the rejects file",
            record.kind
        );
    }
}

/// `case-NN.EXT` in `dir`: the bad record `i` between a good record before and one after (after
/// a header for CSV), each of the record's own format.
fn file_with_good_records_around(
    dir: &std::path::Path,
    i: usize,
    record: &BadRecord,
) -> std::path::PathBuf {
    let (before, after, header): (String, String, Option<&str>) = match record.extension {
        "csv" => (
            format!("c{i}-before,s,{TS},1"),
            format!("c{i}-after,s,{TS},2"),
            Some("event_id,sensor_id,timestamp,value"),
        ),
        "kcat" => (
            good_kcat(&format!("k{i}-before"), 1),
            good_kcat(&format!("k{i}-after"), 2),
            None,
        ),
        _ => (
            good_json(&format!("j{i}-before")),
            good_json(&format!("j{i}-after")),
            None,
        ),
    };
    let mut bytes = Vec::new();
    if let Some(header) = header {
        bytes.extend_from_slice(header.as_bytes());
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(before.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(&record.line);
    bytes.push(b'\n');
    bytes.extend_from_slice(after.as_bytes());
    bytes.push(b'\n');
    let path = dir.join(format!("case-{i:02}.{}", record.extension));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The summary rejects `record`'s line of `file` (the second, the third for CSV) once, with a
/// reason that says what is wrong with it.
fn rejected_once_at_its_line_for_its_reason(
    rejections: &[serde_json::Value],
    record: &BadRecord,
    file: &std::path::Path,
) {
    let file = file.display().to_string();
    let line = if record.extension == "csv" { 3 } else { 2 };
    let found: Vec<&serde_json::Value> = rejections
        .iter()
        .filter(|r| r["file"] == file.as_str())
        .collect();
    assert_eq!(found.len(), 1, "{}: {found:?}", record.kind);
    assert_eq!(found[0]["line"], line, "{}", record.kind);
    let reason = found[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(record.reason),
        "{}: reason {reason:?} should mention {:?}",
        record.kind,
        record.reason
    );
}

/// Files that cannot be read as events: a clear error naming the file (exit 3), or for an empty
/// one nothing to do (exit 0). Never a panic.
#[test]
fn every_kind_of_bad_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases = bad_files();
    let db = TestDatabase::new();
    db.migrate();
    for (kind, name, bytes, code, message) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let output = db.metricsctl(&["replay"]).arg(&path).output().unwrap();
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(code), "{kind}: {stderr}");
        if code != 0 {
            assert!(stderr.contains(name), "{kind}: {stderr}");
            assert!(stderr.contains(message), "{kind}: {stderr}");
        }
    }
    // A directory, and a file that does not exist: refused before anything is written.
    for (kind, path, message) in [
        ("a directory", dir.path().to_path_buf(), "is a directory"),
        (
            "a missing file",
            dir.path().join("nope.jsonl"),
            "cannot open",
        ),
    ] {
        let output = db.metricsctl(&["replay"]).arg(&path).output().unwrap();
        assert_eq!(output.status.code(), Some(3), "{kind}");
        assert!(stderr_of(&output).contains(message), "{kind}");
    }
    // Only complete lines of the cut-off gzip were stored.
    let stored = db.count("SELECT count(*) FROM metrics");
    assert!((1..5000).contains(&stored), "{stored}");
}

/// A kind of bad file: what it is, its name, its bytes, the exit code replay gives it and what
/// its message says (besides the name).
type BadFile = (&'static str, &'static str, Vec<u8>, i32, &'static str);

/// Every kind of bad file the test feeds replay.
fn bad_files() -> Vec<BadFile> {
    let gzip = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, bytes).unwrap();
        encoder.finish().unwrap()
    };
    let many: String = (0..5000)
        .map(|i| good_json(&format!("g{i}")) + "\n")
        .collect();
    let whole = gzip(many.as_bytes());
    let mut garbage = Vec::new();
    for i in 0..4096u32 {
        garbage.push((i.wrapping_mul(2_654_435_761) >> 13) as u8);
    }
    vec![
        (
            "truncated gzip",
            "cut.jsonl.gz",
            whole[..whole.len() / 2].to_vec(),
            3,
            "ends early or is corrupt",
        ),
        (
            "corrupt gzip",
            "bad.gz",
            [&whole[..20], &[0u8; 64][..]].concat(),
            3,
            "ends early or is corrupt",
        ),
        (
            "CSV header without the columns",
            "h.csv",
            b"id,sensor,when,reading\n1,s,2026-01-01T00:00:00Z,1\n".to_vec(),
            3,
            "lacks event_id",
        ),
        (
            "binary garbage",
            "blob.bin",
            garbage.clone(),
            3,
            "--input-format",
        ),
        (
            "gzipped garbage",
            "blob.gz",
            gzip(&garbage),
            3,
            "--input-format",
        ),
        ("empty file", "empty.jsonl", Vec::new(), 0, ""),
        (
            "blank lines only",
            "blank.jsonl",
            b"\n \n\t\n".to_vec(),
            0,
            "",
        ),
        (
            "CSV header only",
            "header.csv",
            b"event_id,sensor_id,timestamp,value\n".to_vec(),
            0,
            "",
        ),
    ]
}
