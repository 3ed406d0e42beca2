//! Event files: JSON Lines, CSV with a header, and kcat `-J` envelopes, each maybe gzipped.
//!
//! Reading never fails on a bad line: every record comes back with its line number, its original
//! bytes (for `--rejects`) and either an event or the reason it was rejected. Only the file itself
//! (unreadable, truncated gzip) can fail.

mod csv_format;
mod fields;
mod input;
mod json_format;
mod kcat_format;
mod records;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use csv_format::CsvHeader;
pub use input::{InputFile, open_inputs};
pub use records::{EventReader, Record};

/// One sensor reading, validated so that the database cannot refuse it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub sensor_id: String,
    pub timestamp: DateTime<Utc>,
    pub value: f64,
    pub kafka_partition: Option<i32>,
    pub kafka_offset: Option<i64>,
}

/// What a good record holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Event(Event),
    /// A kcat envelope with a null payload: a Kafka tombstone, skipped and counted.
    Tombstone,
}

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header row naming the columns.
    Csv,
    /// kcat -J envelopes whose payload is the event as a JSON string.
    Kcat,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jsonl => "JSON Lines",
            Format::Csv => "CSV",
            Format::Kcat => "kcat -J",
        })
    }
}

/// Why a record was rejected. Every reason names the field where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    InvalidUtf8,
    MalformedJson(String),
    MalformedCsv(String),
    MissingField(&'static str),
    EmptyField(&'static str),
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    NonFiniteValue(String),
    BadTimestamp(String),
    TooLong {
        field: &'static str,
        characters: usize,
    },
    NulCharacter(&'static str),
    OutOfRange {
        field: &'static str,
        detail: String,
    },
    NotAnEvent(String),
    LineTooLong,
    /// A CSV row whose field count differs from the header's.
    FieldCount {
        found: usize,
        expected: usize,
    },
    /// A CSV quote that is never closed; the record is its first line only.
    UnterminatedQuote {
        opened_on: u64,
    },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::InvalidUtf8 => write!(f, "invalid UTF-8"),
            RejectReason::MalformedJson(detail) => write!(f, "malformed JSON: {detail}"),
            RejectReason::MalformedCsv(detail) => write!(f, "malformed CSV: {detail}"),
            RejectReason::MissingField(field) => write!(f, "missing field \"{field}\""),
            RejectReason::EmptyField(field) => write!(f, "field \"{field}\" is empty"),
            RejectReason::WrongType { field, expected } => {
                write!(f, "field \"{field}\" must be {expected}")
            }
            RejectReason::NonFiniteValue(text) => {
                write!(f, "field \"value\" is not a finite number ({text})")
            }
            RejectReason::BadTimestamp(detail) => write!(f, "field \"timestamp\": {detail}"),
            RejectReason::TooLong { field, characters } => write!(
                f,
                "field \"{field}\" has {characters} characters; at most {} fit",
                fields::MAX_ID_CHARS
            ),
            RejectReason::NulCharacter(field) => {
                write!(f, "field \"{field}\" contains a NUL character")
            }
            RejectReason::OutOfRange { field, detail } => {
                write!(f, "field \"{field}\" is out of range: {detail}")
            }
            RejectReason::NotAnEvent(detail) => write!(f, "payload is not an event: {detail}"),
            RejectReason::LineTooLong => write!(
                f,
                "line longer than {} bytes (only its start is kept)",
                records::MAX_RECORD_BYTES
            ),
            RejectReason::FieldCount { found, expected } => write!(
                f,
                "malformed CSV: the row has {found} fields but the header names {expected} \
                 (a stray or missing comma would shift the columns)"
            ),
            RejectReason::UnterminatedQuote { opened_on } => write!(
                f,
                "malformed CSV: the quote opened on line {opened_on} is never closed \
                 (only this line is rejected; the lines after it were read on their own)"
            ),
        }
    }
}

/// Guesses a file's format from its first non-blank lines and, when they do not tell, its name.
///
/// Any line that is a JSON object makes the file JSON (kcat when most such lines are kcat
/// envelopes), so one garbled first line cannot turn a JSON Lines file into a failed CSV file.
/// Otherwise a first line that is a usable CSV header makes it CSV; then the name decides
/// (`.csv`, `.jsonl`, `.ndjson`, `.json`, each maybe `.gz`); then the shape of the lines.
pub fn detect_format(lines: &[&[u8]], name: Option<&str>) -> Format {
    let texts: Vec<String> = lines
        .iter()
        .map(|line| {
            String::from_utf8_lossy(line)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_string()
        })
        .collect();
    let (mut objects, mut envelopes) = (0, 0);
    for text in &texts {
        if let Ok(object) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
        {
            objects += 1;
            envelopes += usize::from(kcat_format::looks_like_envelope(&object));
        }
    }
    if objects > 0 {
        return if envelopes * 2 > objects {
            Format::Kcat
        } else {
            Format::Jsonl
        };
    }
    if let Some(first) = lines.first()
        && CsvHeader::parse(first).is_ok()
    {
        return Format::Csv;
    }
    if let Some(format) = name.and_then(format_from_name) {
        return format;
    }
    let json_like = texts.iter().filter(|t| t.starts_with('{')).count();
    if json_like * 2 > texts.len() {
        Format::Jsonl
    } else {
        Format::Csv
    }
}

fn format_from_name(name: &str) -> Option<Format> {
    let lower = name.to_ascii_lowercase();
    let stem = lower.strip_suffix(".gz").unwrap_or(&lower);
    if stem.ends_with(".csv") {
        Some(Format::Csv)
    } else if [".jsonl", ".ndjson", ".json"]
        .iter()
        .any(|ext| stem.ends_with(ext))
    {
        Some(Format::Jsonl)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads everything; only I/O could fail, and an in-memory input has none.
    fn read_all(bytes: Vec<u8>, format: Option<Format>) -> Result<usize, String> {
        let mut reader = match EventReader::new(Box::new(std::io::Cursor::new(bytes)), format, None)
        {
            Ok(reader) => reader,
            // An unusable CSV header is a file-level error, not a panic.
            Err(error) => return Err(error.to_string()),
        };
        let mut records = 0;
        while let Some(record) = reader.next_record().expect("in-memory reads do not fail") {
            assert!(record.line >= 1);
            records += 1;
        }
        Ok(records)
    }

    fn format_choice() -> impl Strategy<Value = Option<Format>> {
        prop_oneof![
            Just(None),
            Just(Some(Format::Jsonl)),
            Just(Some(Format::Csv)),
            Just(Some(Format::Kcat)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic_the_parser(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            format in format_choice(),
        ) {
            let _ = read_all(bytes, format);
        }

        #[test]
        fn near_miss_events_never_panic_the_parser(
            lines in proptest::collection::vec(
                prop_oneof![
                    "\\{\"event_id\":\"[a-z0-9]{0,4}\",\"sensor_id\":(\"s\"|1|null),\"timestamp\":(\"2026-0[0-9]-01T00:00:00Z\"|-?[0-9]{1,20}|1\\.5),\"value\":(-?[0-9]{1,400}(\\.[0-9]+)?|\"x\"|1e999)\\}",
                    "[a-z_,\"]{0,40}",
                    "\\{\"topic\":\"t\",\"partition\":-?[0-9]{1,12},\"offset\":[0-9]{1,21},\"payload\":(null|\"\\{\\}\"|\\{\\}|3)\\}",
                ],
                0..20,
            ),
            format in format_choice(),
        ) {
            let _ = read_all(lines.join("\n").into_bytes(), format);
        }
    }

    #[test]
    fn formats_are_told_apart_by_their_lines() {
        let event = br#"{"event_id":"e","sensor_id":"s","timestamp":1767225600000,"value":1}"#;
        let envelope = br#"{"topic":"metrics","partition":0,"offset":5,"tstype":"create","ts":1,"broker":1,"key":null,"payload":"{}"}"#;
        assert_eq!(detect_format(&[event], None), Format::Jsonl);
        assert_eq!(detect_format(&[envelope], None), Format::Kcat);
        assert_eq!(
            detect_format(&[b"event_id,sensor_id,timestamp,value"], None),
            Format::Csv
        );
        assert_eq!(
            detect_format(
                &["\u{feff}event_id,sensor_id,timestamp,value".as_bytes()],
                None
            ),
            Format::Csv
        );
        assert_eq!(detect_format(&[b"{not json"], None), Format::Jsonl);
    }

    #[test]
    fn one_garbled_first_line_does_not_decide_the_format() {
        let event = br#"{"event_id":"e","sensor_id":"s","timestamp":1767225600000,"value":1}"#;
        assert_eq!(
            detect_format(&[b"%%% garbage, not an event", event, event], None),
            Format::Jsonl
        );
        assert_eq!(
            detect_format(&[b"garbage", b"more garbage"], Some("day.jsonl.gz")),
            Format::Jsonl
        );
        assert_eq!(
            detect_format(&[b"garbage", b"more garbage"], Some("day.CSV")),
            Format::Csv
        );
        assert_eq!(
            detect_format(&[b"{garbage", b"{more garbage"], None),
            Format::Jsonl
        );
        assert_eq!(detect_format(&[b"a,b,c"], None), Format::Csv);
    }
}
