//! Field validation shared by every format: what the database would refuse is refused here, so
//! one bad line can never fail a whole batch.

use chrono::{DateTime, Datelike, Utc};

use super::RejectReason;

/// `VARCHAR(255)` counts characters.
pub const MAX_ID_CHARS: usize = 255;

/// An id: a non-empty string of at most 255 characters without NUL (PostgreSQL text cannot hold NUL).
pub fn identifier(field: &'static str, text: &str) -> Result<String, RejectReason> {
    if text.is_empty() {
        return Err(RejectReason::EmptyField(field));
    }
    if text.contains('\0') {
        return Err(RejectReason::NulCharacter(field));
    }
    let characters = text.chars().count();
    if characters > MAX_ID_CHARS {
        return Err(RejectReason::TooLong { field, characters });
    }
    Ok(text.to_string())
}

/// A timestamp: RFC 3339 with an offset, or epoch milliseconds written as digits.
pub fn timestamp_from_text(text: &str) -> Result<DateTime<Utc>, RejectReason> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RejectReason::EmptyField("timestamp"));
    }
    let is_epoch = text
        .strip_prefix('-')
        .unwrap_or(text)
        .bytes()
        .all(|b| b.is_ascii_digit());
    if is_epoch {
        return match text.parse::<i64>() {
            Ok(millis) => timestamp_from_millis(millis),
            Err(_) => Err(RejectReason::BadTimestamp(format!(
                "epoch milliseconds {text} are out of range"
            ))),
        };
    }
    match DateTime::parse_from_rfc3339(text) {
        Ok(at) => in_range(rounded_as_postgresql(text, at.with_timezone(&Utc))),
        Err(error) => Err(RejectReason::BadTimestamp(format!(
            "{text:?} is neither RFC 3339 with an offset (2026-01-31T12:00:00Z) nor epoch milliseconds ({error})"
        ))),
    }
}

/// The instant PostgreSQL stores for this text: it keeps microseconds, and reads the fraction of
/// a second as a double and rounds it to the microsecond (`rint(strtod(".9999999") * 1e6)`, half to
/// even) — so `23:59:59.9999999` is the next second, maybe the next month and partition. chrono
/// keeps nanoseconds, and the driver would cut them.
fn rounded_as_postgresql(text: &str, at: DateTime<Utc>) -> DateTime<Utc> {
    let Some(dot) = text.find('.') else {
        return at;
    };
    let digits: String = text[dot + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let Ok(fraction) = format!("0.{digits}").parse::<f64>() else {
        return at;
    };
    let micros = (fraction * 1_000_000.0).round_ties_even() as i64;
    let whole_second = at - chrono::Duration::nanoseconds(i64::from(at.timestamp_subsec_nanos()));
    whole_second + chrono::Duration::microseconds(micros)
}

/// Below this many milliseconds (1973-03-03) a number is far more likely epoch *seconds* than a
/// reading from the early 1970s, so it is refused rather than stored 50 years off.
const SMALLEST_PLAUSIBLE_MILLIS: i64 = 100_000_000_000;

/// Epoch milliseconds, the only epoch unit accepted. Numbers that only make sense in another unit
/// (seconds, microseconds, nanoseconds) are rejected with the date they would mean in that unit.
pub fn timestamp_from_millis(millis: i64) -> Result<DateTime<Utc>, RejectReason> {
    // Seconds are plausible from 1973 on, like milliseconds.
    let in_unit = |per_second: i64| -> Option<String> {
        if per_second == 1 && millis.unsigned_abs() < SMALLEST_PLAUSIBLE_MILLIS as u64 / 1000 {
            return None;
        }
        let at = if per_second == 1 {
            DateTime::from_timestamp(millis, 0)
        } else {
            DateTime::from_timestamp_millis(millis / (per_second / 1000))
        }?;
        (2..=9999)
            .contains(&at.year())
            .then(|| at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    };
    let wrong_unit = |unit: &str, per_second: i64| -> Option<RejectReason> {
        in_unit(per_second).map(|meant| {
            RejectReason::BadTimestamp(format!(
                "{millis} looks like epoch {unit} ({meant}), but epoch numbers must be \
                 milliseconds: convert it, or write RFC 3339 (2026-01-31T12:00:00Z)"
            ))
        })
    };
    if millis.unsigned_abs() < SMALLEST_PLAUSIBLE_MILLIS as u64 {
        return Err(wrong_unit("seconds", 1).unwrap_or_else(|| {
            RejectReason::BadTimestamp(format!(
                "epoch milliseconds {millis} would be before 1973-03-03, which no sensor reading \
                 here is; write RFC 3339 (2026-01-31T12:00:00Z) if it really is that old"
            ))
        }));
    }
    match DateTime::from_timestamp_millis(millis) {
        Some(at) if (1..=9999).contains(&at.year()) => Ok(at),
        _ => Err(wrong_unit("microseconds", 1_000_000)
            .or_else(|| wrong_unit("nanoseconds", 1_000_000_000))
            .unwrap_or_else(|| {
                RejectReason::BadTimestamp(format!("epoch milliseconds {millis} are out of range"))
            })),
    }
}

/// Years 1–9999: PostgreSQL's range is wider in the past, but nothing real lies outside this, and
/// a value PostgreSQL refused would fail its whole batch.
fn in_range(at: DateTime<Utc>) -> Result<DateTime<Utc>, RejectReason> {
    if (1..=9999).contains(&at.year()) {
        Ok(at)
    } else {
        Err(RejectReason::BadTimestamp(format!(
            "{at} is outside the years 0001–9999"
        )))
    }
}

/// A reading: any finite number.
pub fn value_from_f64(value: f64, text: impl FnOnce() -> String) -> Result<f64, RejectReason> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(RejectReason::NonFiniteValue(text()))
    }
}

pub fn value_from_text(text: &str) -> Result<f64, RejectReason> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(RejectReason::EmptyField("value"));
    }
    match trimmed.parse::<f64>() {
        Ok(value) => value_from_f64(value, || trimmed.to_string()),
        Err(_) => Err(RejectReason::WrongType {
            field: "value",
            expected: "a number",
        }),
    }
}

/// Kafka partitions are non-negative 32-bit integers.
pub fn kafka_partition(value: i64) -> Result<i32, RejectReason> {
    match i32::try_from(value) {
        Ok(partition) if partition >= 0 => Ok(partition),
        _ => Err(RejectReason::OutOfRange {
            field: "kafka_partition",
            detail: format!("{value} is not between 0 and {}", i32::MAX),
        }),
    }
}

/// Kafka offsets are non-negative 64-bit integers.
pub fn kafka_offset(value: i64) -> Result<i64, RejectReason> {
    if value >= 0 {
        Ok(value)
    } else {
        Err(RejectReason::OutOfRange {
            field: "kafka_offset",
            detail: format!("{value} is negative"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked_like_varchar_255() {
        assert_eq!(identifier("event_id", "e-1"), Ok("e-1".to_string()));
        assert_eq!(
            identifier("event_id", ""),
            Err(RejectReason::EmptyField("event_id"))
        );
        assert_eq!(
            identifier("sensor_id", "a\0b"),
            Err(RejectReason::NulCharacter("sensor_id"))
        );
        // 255 multi-byte characters fit; 256 do not.
        assert!(identifier("event_id", &"é".repeat(255)).is_ok());
        assert_eq!(
            identifier("event_id", &"é".repeat(256)),
            Err(RejectReason::TooLong {
                field: "event_id",
                characters: 256
            })
        );
    }

    #[test]
    fn sub_microsecond_digits_are_rounded_as_postgresql_rounds_them() {
        let at = |text: &str| timestamp_from_text(text).unwrap().to_rfc3339();
        assert_eq!(
            at("2026-02-28T23:59:59.9999999Z"),
            "2026-03-01T00:00:00+00:00"
        );
        assert_eq!(
            at("2026-02-10T10:00:00.0000005Z"),
            "2026-02-10T10:00:00+00:00"
        );
        assert_eq!(
            at("2026-02-10T10:00:00.0000015Z"),
            "2026-02-10T10:00:00.000002+00:00"
        );
        assert_eq!(
            at("2026-02-10T10:00:00.123456789Z"),
            "2026-02-10T10:00:00.123457+00:00"
        );
        assert_eq!(
            at("2026-02-10T10:00:00.5+02:00"),
            "2026-02-10T08:00:00.500+00:00"
        );
    }

    #[test]
    fn timestamps_need_an_offset_or_are_epoch_milliseconds() {
        let at = timestamp_from_text("2026-01-31T12:00:00+01:00").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-01-31T11:00:00+00:00");
        assert_eq!(
            timestamp_from_text("1769857200000").unwrap(),
            timestamp_from_millis(1_769_857_200_000).unwrap()
        );
        assert!(matches!(
            timestamp_from_text("2026-01-31T12:00:00"),
            Err(RejectReason::BadTimestamp(_))
        ));
        assert!(matches!(
            timestamp_from_text("yesterday"),
            Err(RejectReason::BadTimestamp(_))
        ));
        assert!(matches!(
            timestamp_from_millis(i64::MAX),
            Err(RejectReason::BadTimestamp(_))
        ));
        assert!(matches!(
            timestamp_from_text("99999999999999999"),
            Err(RejectReason::BadTimestamp(_))
        ));
    }

    fn reason(result: Result<DateTime<Utc>, RejectReason>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn epoch_numbers_in_another_unit_are_refused_with_the_date_they_would_mean() {
        // 2026-01-01T00:00:00Z in seconds, microseconds and nanoseconds.
        let seconds = reason(timestamp_from_text("1767225600"));
        assert!(
            seconds.contains("epoch seconds (2026-01-01T00:00:00Z)"),
            "{seconds}"
        );
        let micros = reason(timestamp_from_millis(1_767_225_600_000_000));
        assert!(
            micros.contains("epoch microseconds (2026-01-01T00:00:00Z)"),
            "{micros}"
        );
        let nanos = reason(timestamp_from_millis(1_767_225_600_000_000_000));
        assert!(
            nanos.contains("epoch nanoseconds (2026-01-01T00:00:00Z)"),
            "{nanos}"
        );
        let tiny = reason(timestamp_from_millis(1));
        assert!(tiny.contains("before 1973-03-03"), "{tiny}");
        assert!(reason(timestamp_from_millis(-5)).contains("1973"));
        // The smallest plausible milliseconds and today's are fine.
        assert!(timestamp_from_millis(SMALLEST_PLAUSIBLE_MILLIS).is_ok());
        assert_eq!(
            timestamp_from_millis(1_767_225_600_000)
                .unwrap()
                .to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        // Far past in milliseconds is still fine when it is plausible as milliseconds.
        assert!(timestamp_from_millis(-SMALLEST_PLAUSIBLE_MILLIS * 10).is_ok());
    }

    #[test]
    fn values_must_be_finite_numbers() {
        assert_eq!(value_from_text(" 21.5 "), Ok(21.5));
        assert!(matches!(
            value_from_text("NaN"),
            Err(RejectReason::NonFiniteValue(_))
        ));
        assert!(matches!(
            value_from_text("-inf"),
            Err(RejectReason::NonFiniteValue(_))
        ));
        assert!(matches!(
            value_from_text("warm"),
            Err(RejectReason::WrongType { .. })
        ));
    }

    #[test]
    fn kafka_coordinates_are_non_negative() {
        assert_eq!(kafka_partition(3), Ok(3));
        assert!(kafka_partition(-1).is_err());
        assert!(kafka_partition(i64::from(i32::MAX) + 1).is_err());
        assert_eq!(kafka_offset(0), Ok(0));
        assert!(kafka_offset(-5).is_err());
    }
}
