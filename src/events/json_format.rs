//! JSON Lines: one object per line with event_id, sensor_id, timestamp, value and optional
//! kafka_partition, kafka_offset. Unknown fields are ignored.

use serde::Deserialize;
use serde_json::Value;

use super::fields;
use super::{Event, RejectReason};

/// The fields we read, each kept as a raw JSON value so a wrong type gets a precise reason.
/// Absent and null both arrive as `None`.
#[derive(Deserialize)]
struct JsonEvent {
    event_id: Option<Value>,
    sensor_id: Option<Value>,
    timestamp: Option<Value>,
    value: Option<Value>,
    kafka_partition: Option<Value>,
    kafka_offset: Option<Value>,
}

/// Parses one JSON object into an event.
pub fn parse_event(text: &str) -> Result<Event, RejectReason> {
    // serde would also read a JSON array into the struct, field by field.
    if !text.trim_start().starts_with('{') {
        return Err(RejectReason::MalformedJson(
            "expected a JSON object".to_string(),
        ));
    }
    let raw: JsonEvent = serde_json::from_str(text).map_err(json_error)?;
    event_from_json(raw)
}

/// Parses a JSON value (already decoded, e.g. a kcat payload object) into an event.
pub fn parse_event_value(value: Value) -> Result<Event, RejectReason> {
    let raw: JsonEvent = serde_json::from_value(value).map_err(json_error)?;
    event_from_json(raw)
}

pub fn json_error(error: serde_json::Error) -> RejectReason {
    let message = error.to_string();
    if message.starts_with("invalid type") {
        RejectReason::MalformedJson("expected a JSON object".to_string())
    } else {
        RejectReason::MalformedJson(message)
    }
}

fn event_from_json(raw: JsonEvent) -> Result<Event, RejectReason> {
    Ok(Event {
        event_id: text_field("event_id", raw.event_id)?,
        sensor_id: text_field("sensor_id", raw.sensor_id)?,
        timestamp: timestamp_field(raw.timestamp)?,
        value: value_field(raw.value)?,
        kafka_partition: optional_integer("kafka_partition", raw.kafka_partition)?
            .map(fields::kafka_partition)
            .transpose()?,
        kafka_offset: optional_integer("kafka_offset", raw.kafka_offset)?
            .map(fields::kafka_offset)
            .transpose()?,
    })
}

fn text_field(field: &'static str, value: Option<Value>) -> Result<String, RejectReason> {
    match value {
        None => Err(RejectReason::MissingField(field)),
        Some(Value::String(text)) => fields::identifier(field, &text),
        Some(_) => Err(RejectReason::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn timestamp_field(value: Option<Value>) -> Result<chrono::DateTime<chrono::Utc>, RejectReason> {
    match value {
        None => Err(RejectReason::MissingField("timestamp")),
        Some(Value::String(text)) => fields::timestamp_from_text(&text),
        Some(Value::Number(number)) => match number.as_i64() {
            Some(millis) => fields::timestamp_from_millis(millis),
            None => Err(RejectReason::BadTimestamp(format!(
                "epoch milliseconds must be a whole number, not {number}"
            ))),
        },
        Some(_) => Err(RejectReason::WrongType {
            field: "timestamp",
            expected: "an RFC 3339 string or epoch milliseconds",
        }),
    }
}

fn value_field(value: Option<Value>) -> Result<f64, RejectReason> {
    match value {
        None => Err(RejectReason::MissingField("value")),
        Some(Value::Number(number)) => match number.as_f64() {
            Some(value) => fields::value_from_f64(value, || number.to_string()),
            None => Err(RejectReason::NonFiniteValue(number.to_string())),
        },
        Some(_) => Err(RejectReason::WrongType {
            field: "value",
            expected: "a number",
        }),
    }
}

fn optional_integer(
    field: &'static str,
    value: Option<Value>,
) -> Result<Option<i64>, RejectReason> {
    match value {
        None => Ok(None),
        Some(Value::Number(number)) => match number.as_i64() {
            Some(integer) => Ok(Some(integer)),
            None => Err(RejectReason::WrongType {
                field,
                expected: "a whole number",
            }),
        },
        Some(_) => Err(RejectReason::WrongType {
            field,
            expected: "a whole number",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_event_parses() {
        let event = parse_event(
            r#"{"event_id":"e1","sensor_id":"s1","timestamp":"2026-01-01T00:00:00Z","value":21.5,"kafka_partition":3,"kafka_offset":42,"extra":true}"#,
        )
        .unwrap();
        assert_eq!(event.event_id, "e1");
        assert_eq!(event.value, 21.5);
        assert_eq!(event.kafka_partition, Some(3));
        assert_eq!(event.kafka_offset, Some(42));
    }

    #[test]
    fn each_problem_has_its_reason() {
        let cases = [
            (
                r#"{"sensor_id":"s","timestamp":1767225600000,"value":1}"#,
                "missing field \"event_id\"",
            ),
            (
                r#"{"event_id":"","sensor_id":"s","timestamp":1767225600000,"value":1}"#,
                "\"event_id\" is empty",
            ),
            (
                r#"{"event_id":7,"sensor_id":"s","timestamp":1767225600000,"value":1}"#,
                "\"event_id\" must be a string",
            ),
            (
                r#"{"event_id":"e","sensor_id":"s","timestamp":1767225600000,"value":"7"}"#,
                "\"value\" must be a number",
            ),
            (
                r#"{"event_id":"e","sensor_id":"s","timestamp":1.5,"value":1}"#,
                "whole number",
            ),
            (
                r#"{"event_id":"e","sensor_id":"s","timestamp":"now","value":1}"#,
                "RFC 3339",
            ),
            (
                r#"{"event_id":"e","sensor_id":"s","timestamp":1767225600000,"value":null}"#,
                "missing field \"value\"",
            ),
            (
                r#"{"event_id":"e","sensor_id":"s","timestamp":1767225600000,"value":1,"kafka_offset":-1}"#,
                "negative",
            ),
            (
                r#"{"event_id":"e","sensor_id":"s","timestamp":1767225600000,"value":1e999}"#,
                "malformed JSON",
            ),
            (
                r#"{"event_id":"e","sensor_id":"s","timestamp":1767225600000,"value":NaN}"#,
                "malformed JSON",
            ),
            (r#"["e","s"]"#, "expected a JSON object"),
            (r#"{"event_id":"e""#, "malformed JSON"),
        ];
        for (line, expected) in cases {
            let reason = parse_event(line).unwrap_err().to_string();
            assert!(reason.contains(expected), "{line}: {reason}");
        }
    }
}
