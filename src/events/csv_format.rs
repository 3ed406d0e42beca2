//! CSV with a header row naming the columns (any order, extra columns ignored, names matched
//! case-insensitively). Quoted fields may hold commas, quotes and line breaks; CRLF works.

use anyhow::bail;

use super::{Event, RejectReason, fields};

/// Where each column is.
#[derive(Debug, Clone)]
pub struct CsvHeader {
    /// Every row must have exactly this many fields: one more or one fewer shifts the columns.
    columns: usize,
    event_id: usize,
    sensor_id: usize,
    timestamp: usize,
    value: usize,
    kafka_partition: Option<usize>,
    kafka_offset: Option<usize>,
}

const REQUIRED: [&str; 4] = ["event_id", "sensor_id", "timestamp", "value"];

impl CsvHeader {
    /// Reads the header row. A header without the required columns makes the file unusable.
    pub fn parse(raw: &[u8]) -> anyhow::Result<CsvHeader> {
        let record =
            split_record(raw).map_err(|reason| anyhow::anyhow!("bad header row: {reason}"))?;
        let names: Vec<String> = record
            .iter()
            .map(|name| {
                String::from_utf8_lossy(name)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect();
        let find = |column: &str| names.iter().position(|name| name == column);
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|column| find(column).is_none())
            .collect();
        if !missing.is_empty() {
            bail!(
                "the CSV header row lacks {} (found: {}); the first line must name the columns \
                 event_id, sensor_id, timestamp, value and optionally kafka_partition, kafka_offset",
                missing.join(", "),
                names.join(", ")
            );
        }
        Ok(CsvHeader {
            columns: names.len(),
            event_id: find("event_id").expect("checked"),
            sensor_id: find("sensor_id").expect("checked"),
            timestamp: find("timestamp").expect("checked"),
            value: find("value").expect("checked"),
            kafka_partition: find("kafka_partition"),
            kafka_offset: find("kafka_offset"),
        })
    }

    pub fn parse_event(&self, raw: &[u8]) -> Result<Event, RejectReason> {
        let record = split_record(raw)?;
        if record.len() != self.columns {
            return Err(RejectReason::FieldCount {
                found: record.len(),
                expected: self.columns,
            });
        }
        let field = |index: usize, name: &'static str| -> Result<&str, RejectReason> {
            let bytes = record.get(index).ok_or(RejectReason::MissingField(name))?;
            std::str::from_utf8(bytes).map_err(|_| RejectReason::InvalidUtf8)
        };
        let optional = |index: Option<usize>,
                        name: &'static str|
         -> Result<Option<i64>, RejectReason> {
            let Some(index) = index else { return Ok(None) };
            let text = match record.get(index) {
                Some(bytes) => std::str::from_utf8(bytes).map_err(|_| RejectReason::InvalidUtf8)?,
                None => return Ok(None),
            };
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse::<i64>()
                .map(Some)
                .map_err(|_| RejectReason::WrongType {
                    field: name,
                    expected: "a whole number",
                })
        };
        Ok(Event {
            event_id: fields::identifier("event_id", field(self.event_id, "event_id")?)?,
            sensor_id: fields::identifier("sensor_id", field(self.sensor_id, "sensor_id")?)?,
            timestamp: fields::timestamp_from_text(field(self.timestamp, "timestamp")?)?,
            value: fields::value_from_text(field(self.value, "value")?)?,
            kafka_partition: optional(self.kafka_partition, "kafka_partition")?
                .map(fields::kafka_partition)
                .transpose()?,
            kafka_offset: optional(self.kafka_offset, "kafka_offset")?
                .map(fields::kafka_offset)
                .transpose()?,
        })
    }
}

fn split_record(raw: &[u8]) -> Result<csv::ByteRecord, RejectReason> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(raw);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => Ok(record),
        Ok(false) => Err(RejectReason::MalformedCsv("empty record".to_string())),
        Err(error) => Err(RejectReason::MalformedCsv(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let header =
            CsvHeader::parse(b"Value,timestamp,extra,sensor_id,event_id,kafka_offset").unwrap();
        let event = header
            .parse_event(b"1.5,2026-01-01T00:00:00Z,x,\"s,1\",\"e \"\"1\"\"\",9")
            .unwrap();
        assert_eq!(event.sensor_id, "s,1");
        assert_eq!(event.event_id, "e \"1\"");
        assert_eq!(event.kafka_offset, Some(9));
        assert_eq!(event.kafka_partition, None);
    }

    #[test]
    fn a_header_without_the_required_columns_is_a_file_error() {
        let err = CsvHeader::parse(b"event_id,sensor,timestamp")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sensor_id, value"), "{err}");
    }

    #[test]
    fn short_rows_and_bad_fields_are_rejected_with_reasons() {
        let header = CsvHeader::parse(b"event_id,sensor_id,timestamp,value").unwrap();
        assert_eq!(
            header.parse_event(b"e1,s1,2026-01-01T00:00:00Z"),
            Err(RejectReason::FieldCount {
                found: 3,
                expected: 4
            })
        );
        // One field too many would shift the columns: refused, never stored shifted.
        assert_eq!(
            header.parse_event(b"sh-1,sensor,7,1767225600000,21.5"),
            Err(RejectReason::FieldCount {
                found: 5,
                expected: 4
            })
        );
        assert!(matches!(
            header.parse_event(b"e1,s1,2026-01-01T00:00:00Z,NaN"),
            Err(RejectReason::NonFiniteValue(_))
        ));
        assert_eq!(
            header.parse_event(b"e1,s\xff,2026-01-01T00:00:00Z,1"),
            Err(RejectReason::InvalidUtf8)
        );
        assert_eq!(
            header.parse_event(b",s1,2026-01-01T00:00:00Z,1"),
            Err(RejectReason::EmptyField("event_id"))
        );
    }
}
