//! Synthetic events for benchmarks and the demo: deterministic for a given seed, in every format
//! `replay` reads. Event ids look like random UUIDs; each sensor's timestamps advance steadily;
//! each sensor sticks to one Kafka partition whose offsets count up.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::events::Format;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorSettings {
    pub count: u64,
    pub sensors: u32,
    pub seed: u64,
    pub start: DateTime<Utc>,
    pub interval_ms: i64,
    pub kafka_partitions: u32,
}

/// A small, fixed pseudo-random generator (SplitMix64): the same seed gives the same file on
/// every platform and release, which a library RNG does not promise.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

/// One generated event, serialised the way the consumer's events look.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedEvent {
    pub event_id: String,
    pub sensor_id: String,
    pub timestamp: String,
    pub value: f64,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
}

/// The events, one at a time (a million of them never sit in memory).
pub struct EventGenerator {
    settings: GeneratorSettings,
    rng: SplitMix64,
    produced: u64,
    /// Next offset per Kafka partition, created as partitions are used (there may be 2^32).
    partition_offsets: std::collections::HashMap<u32, i64>,
    sensor_width: usize,
}

impl EventGenerator {
    pub fn new(settings: GeneratorSettings) -> EventGenerator {
        EventGenerator {
            rng: SplitMix64::new(settings.seed),
            produced: 0,
            partition_offsets: std::collections::HashMap::new(),
            sensor_width: settings.sensors.max(1).to_string().len().max(3),
            settings,
        }
    }
}

impl Iterator for EventGenerator {
    type Item = GeneratedEvent;

    fn next(&mut self) -> Option<GeneratedEvent> {
        if self.produced >= self.settings.count {
            return None;
        }
        let i = self.produced;
        self.produced += 1;
        let sensors = u64::from(self.settings.sensors.max(1));
        let sensor = i % sensors;
        let round = (i / sensors) as i64;
        let partition = (sensor % u64::from(self.settings.kafka_partitions.max(1))) as u32;
        let next = self.partition_offsets.entry(partition).or_insert(0);
        let offset = *next;
        *next += 1;
        let (high, low) = (self.rng.next_u64(), self.rng.next_u64());
        let timestamp = self.settings.start
            + chrono::Duration::milliseconds(round * self.settings.interval_ms + sensor as i64);
        // A reading between 15.00 and 35.00, two decimals.
        let value = (1500 + self.rng.below(2001)) as f64 / 100.0;
        Some(GeneratedEvent {
            event_id: uuid_like(high, low),
            sensor_id: format!("sensor_{:0width$}", sensor + 1, width = self.sensor_width),
            timestamp: timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            value,
            kafka_partition: partition as i32,
            kafka_offset: offset,
        })
    }
}

/// The last timestamp the settings produce, if it is a time RFC 3339 can write (years up to
/// 9999): checked before writing anything, so no clock arithmetic can overflow on the way.
pub fn last_timestamp(settings: &GeneratorSettings) -> Option<DateTime<Utc>> {
    if settings.count == 0 {
        return Some(settings.start);
    }
    let sensors = u64::from(settings.sensors.max(1));
    let rounds = i128::from((settings.count - 1) / sensors);
    let offset_ms = rounds
        .checked_mul(i128::from(settings.interval_ms))?
        .checked_add(i128::from(sensors.min(settings.count) - 1))?;
    let offset = chrono::Duration::try_milliseconds(i64::try_from(offset_ms).ok()?)?;
    let last = settings.start.checked_add_signed(offset)?;
    (last.format("%Y").to_string().len() == 4).then_some(last)
}

/// A version-4-shaped UUID from 128 random bits.
fn uuid_like(high: u64, low: u64) -> String {
    let high = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xFFFF,
        high & 0xFFFF,
        low >> 48,
        low & 0xFFFF_FFFF_FFFF
    )
}

/// Writes events in one of replay's formats.
pub struct EventWriter<W: Write> {
    format: Format,
    sink: Sink<W>,
}

enum Sink<W: Write> {
    Lines(W),
    Csv(Box<csv::Writer<W>>),
}

#[derive(Serialize)]
struct KcatEnvelope<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    tstype: &'a str,
    ts: i64,
    broker: i32,
    key: &'a str,
    payload: String,
}

impl<W: Write> EventWriter<W> {
    pub fn new(format: Format, out: W) -> EventWriter<W> {
        let sink = match format {
            // The csv writer adds the header row from the field names of the first record.
            Format::Csv => Sink::Csv(Box::new(csv::Writer::from_writer(out))),
            Format::Jsonl | Format::Kcat => Sink::Lines(out),
        };
        EventWriter { format, sink }
    }

    pub fn write(&mut self, event: &GeneratedEvent) -> anyhow::Result<()> {
        match (&mut self.sink, self.format) {
            (Sink::Csv(csv), _) => csv.serialize(event)?,
            (Sink::Lines(out), Format::Kcat) => {
                let ts = DateTime::parse_from_rfc3339(&event.timestamp)?.timestamp_millis();
                let envelope = KcatEnvelope {
                    topic: "metrics",
                    partition: event.kafka_partition,
                    offset: event.kafka_offset,
                    tstype: "create",
                    ts,
                    broker: 0,
                    key: &event.sensor_id,
                    payload: serde_json::to_string(event)?,
                };
                serde_json::to_writer(&mut *out, &envelope)?;
                out.write_all(b"\n")?;
            }
            (Sink::Lines(out), _) => {
                serde_json::to_writer(&mut *out, event)?;
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    /// Writes a line as it is (the demo plants bad lines with this).
    pub fn write_raw_line(&mut self, line: &str) -> anyhow::Result<()> {
        match &mut self.sink {
            Sink::Lines(out) => {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            }
            Sink::Csv(_) => {
                anyhow::bail!("raw lines are written only to JSON Lines and kcat files")
            }
        }
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<W> {
        let mut out = match self.sink {
            Sink::Lines(out) => out,
            Sink::Csv(csv) => csv
                .into_inner()
                .map_err(|e| anyhow::anyhow!("writing CSV: {}", e.error()))?,
        };
        out.flush()?;
        Ok(out)
    }
}

/// What the demo's sample file holds, so the demo can say what each step should find.
#[derive(Debug, Clone, Default)]
pub struct SampleFacts {
    pub lines: u64,
    pub distinct_events: u64,
    pub repeated_lines: u64,
    pub bad_lines: u64,
    pub out_of_order_sensor: String,
    /// The sample's first and last event ids (the demo damages these two, and only these).
    pub first_event_id: String,
    pub last_event_id: String,
}

/// The demo's sample: a few thousand events over several sensors, some delivered twice, one
/// sensor's event delivered after a newer one, and a few bad lines.
pub fn write_demo_sample(out: impl Write) -> anyhow::Result<SampleFacts> {
    let settings = GeneratorSettings {
        count: 3000,
        sensors: 6,
        seed: 2026,
        start: chrono::Utc::now() - chrono::Duration::seconds(3000 / 6 * 2),
        interval_ms: 2000,
        kafka_partitions: 3,
    };
    let mut events: Vec<GeneratedEvent> = EventGenerator::new(settings).collect();
    let mut facts = SampleFacts {
        distinct_events: events.len() as u64,
        first_event_id: events
            .first()
            .map(|e| e.event_id.clone())
            .unwrap_or_default(),
        last_event_id: events
            .last()
            .map(|e| e.event_id.clone())
            .unwrap_or_default(),
        ..SampleFacts::default()
    };
    // One late arrival: sensor_002's 101st reading is delivered after its 102nd.
    let late: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.sensor_id == "sensor_002")
        .map(|(i, _)| i)
        .skip(100)
        .take(2)
        .collect();
    let (earlier_ts, later_ts) = (
        events[late[0]].timestamp.clone(),
        events[late[1]].timestamp.clone(),
    );
    events[late[0]].timestamp = later_ts;
    events[late[1]].timestamp = earlier_ts;
    facts.out_of_order_sensor = "sensor_002".to_string();

    let bad_lines = [
        r#"{"event_id":"bad-1","sensor_id":"sensor_001","timestamp":"2026-01-01T00:00:00Z","value":"NaN"}"#,
        r#"{"event_id":"bad-2","sensor_id":"sensor_003","value":21.5}"#,
        // Epoch seconds where milliseconds belong: refused, not stored in 1970.
        r#"{"event_id":"bad-3","sensor_id":"sensor_004","timestamp":1767225600,"value":20.1}"#,
    ];
    let mut writer = EventWriter::new(Format::Jsonl, out);
    let mut rng = SplitMix64::new(7);
    for (i, event) in events.iter().enumerate() {
        writer.write(event)?;
        facts.lines += 1;
        // Kafka's at-least-once delivery: now and then an event arrives twice.
        if i % 120 == 119 {
            let again = &events[i - rng.below(20) as usize];
            writer.write(again)?;
            facts.lines += 1;
            facts.repeated_lines += 1;
        }
        if i % 1000 == 700 {
            writer.write_raw_line(bad_lines[i / 1000])?;
            facts.lines += 1;
            facts.bad_lines += 1;
        }
    }
    writer.finish()?;
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(seed: u64) -> GeneratorSettings {
        GeneratorSettings {
            count: 50,
            sensors: 7,
            seed,
            start: DateTime::from_timestamp_millis(1_767_225_600_000).unwrap(),
            interval_ms: 1000,
            kafka_partitions: 3,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let a: Vec<String> = EventGenerator::new(settings(1))
            .map(|e| e.event_id)
            .collect();
        let b: Vec<String> = EventGenerator::new(settings(1))
            .map(|e| e.event_id)
            .collect();
        let c: Vec<String> = EventGenerator::new(settings(2))
            .map(|e| e.event_id)
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let distinct: std::collections::HashSet<&String> = a.iter().collect();
        assert_eq!(distinct.len(), a.len());
        assert_eq!(a[0].len(), 36);
    }

    #[test]
    fn each_sensor_advances_in_time_on_one_partition() {
        let events: Vec<GeneratedEvent> = EventGenerator::new(settings(3)).collect();
        for sensor in 1..=7 {
            let name = format!("sensor_{sensor:03}");
            let mine: Vec<&GeneratedEvent> =
                events.iter().filter(|e| e.sensor_id == name).collect();
            assert!(mine.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
            assert!(
                mine.windows(2)
                    .all(|w| w[0].kafka_partition == w[1].kafka_partition)
            );
            assert!(
                mine.windows(2)
                    .all(|w| w[0].kafka_offset < w[1].kafka_offset)
            );
        }
    }

    #[test]
    fn every_format_reads_back_as_the_same_events() {
        use crate::events::{EventReader, Parsed};
        let expected: Vec<GeneratedEvent> = EventGenerator::new(settings(4)).collect();
        for format in [Format::Jsonl, Format::Csv, Format::Kcat] {
            let mut writer = EventWriter::new(format, Vec::new());
            for event in &expected {
                writer.write(event).unwrap();
            }
            let bytes = writer.finish().unwrap();
            let mut reader =
                EventReader::new(Box::new(std::io::Cursor::new(bytes)), None, None).unwrap();
            assert_eq!(reader.format(), format);
            let mut read = Vec::new();
            while let Some(record) = reader.next_record().unwrap() {
                match record.parsed {
                    Ok(Parsed::Event(event)) => read.push(event),
                    other => panic!("{format}: {other:?}"),
                }
            }
            assert_eq!(read.len(), expected.len(), "{format}");
            for (got, want) in read.iter().zip(&expected) {
                assert_eq!(got.event_id, want.event_id);
                assert_eq!(got.value, want.value, "{format}");
                assert_eq!(got.kafka_offset, Some(want.kafka_offset));
                assert_eq!(
                    got.timestamp
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    want.timestamp
                );
            }
        }
    }
}
