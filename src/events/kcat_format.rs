//! kcat `-J` envelopes: `{"topic","partition","offset","tstype","ts","broker","headers"?,"key",
//! "payload"}` where the payload is the event as a JSON *string* (double-encoded). The Kafka
//! partition and offset come from the envelope. A null payload is a tombstone.

use serde_json::{Map, Value};

use super::json_format::{json_error, parse_event, parse_event_value};
use super::{Parsed, RejectReason, fields};

pub fn looks_like_envelope(object: &Map<String, Value>) -> bool {
    object.contains_key("payload")
        && (object.contains_key("topic") || object.contains_key("partition"))
}

pub fn parse_envelope(text: &str) -> Result<Parsed, RejectReason> {
    let envelope: Map<String, Value> = serde_json::from_str(text).map_err(json_error)?;
    let mut event = match envelope.get("payload") {
        None => {
            return Err(RejectReason::NotAnEvent(
                "the kcat envelope has no \"payload\"".to_string(),
            ));
        }
        Some(Value::Null) => return Ok(Parsed::Tombstone),
        Some(Value::String(payload)) => parse_event(payload).map_err(in_payload)?,
        // Not what kcat writes, but unambiguous.
        Some(Value::Object(payload)) => {
            parse_event_value(Value::Object(payload.clone())).map_err(in_payload)?
        }
        Some(_) => {
            return Err(RejectReason::NotAnEvent(
                "\"payload\" must be a JSON string holding the event".to_string(),
            ));
        }
    };
    if let Some(partition) = envelope_integer(&envelope, "partition")? {
        event.kafka_partition = Some(fields::kafka_partition(partition)?);
    }
    if let Some(offset) = envelope_integer(&envelope, "offset")? {
        event.kafka_offset = Some(fields::kafka_offset(offset)?);
    }
    Ok(Parsed::Event(event))
}

fn in_payload(reason: RejectReason) -> RejectReason {
    RejectReason::NotAnEvent(reason.to_string())
}

fn envelope_integer(
    envelope: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<i64>, RejectReason> {
    match envelope.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(_) => Err(RejectReason::WrongType {
            field: if key == "partition" {
                "kafka_partition"
            } else {
                "kafka_offset"
            },
            expected: "a whole number in the envelope",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{\"event_id\":\"e1\",\"sensor_id\":\"s1\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"value\":1.5,\"kafka_partition\":99}"#;

    #[test]
    fn the_envelope_supplies_partition_and_offset() {
        let line = format!(
            r#"{{"topic":"metrics","partition":2,"offset":17,"tstype":"create","ts":1767225600000,"broker":1,"headers":["h","v"],"key":"s1","payload":"{EVENT}"}}"#
        );
        let Parsed::Event(event) = parse_envelope(&line).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(event.event_id, "e1");
        assert_eq!(event.kafka_partition, Some(2));
        assert_eq!(event.kafka_offset, Some(17));
    }

    #[test]
    fn a_null_payload_is_a_tombstone() {
        let line = r#"{"topic":"metrics","partition":0,"offset":1,"tstype":"create","ts":1,"broker":1,"key":"s1","payload":null}"#;
        assert_eq!(parse_envelope(line), Ok(Parsed::Tombstone));
    }

    #[test]
    fn a_payload_that_is_not_an_event_says_why() {
        let line = r#"{"topic":"metrics","partition":0,"offset":1,"payload":"{\"hello\":1}"}"#;
        let reason = parse_envelope(line).unwrap_err().to_string();
        assert!(reason.contains("payload is not an event"), "{reason}");
        assert!(reason.contains("event_id"), "{reason}");
        let not_json = r#"{"topic":"metrics","partition":0,"offset":1,"payload":"plain text"}"#;
        assert!(matches!(
            parse_envelope(not_json),
            Err(RejectReason::NotAnEvent(_))
        ));
    }
}
