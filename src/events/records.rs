//! Splitting a byte stream into records: a line for JSON Lines and kcat, a logical record for
//! CSV (a quoted field may span lines). Each record keeps its first line number and its bytes.

use std::io::{self, BufRead};

use anyhow::Context as _;

use super::csv_format::CsvHeader;
use super::{Format, Parsed, RejectReason, detect_format, json_format, kcat_format};

/// A record longer than this is rejected and only its start kept, so memory stays bounded.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One record of an input file.
#[derive(Debug)]
pub struct Record {
    /// The line the record starts on, counting from 1.
    pub line: u64,
    /// The record as it appeared, without its final line break.
    pub raw: Vec<u8>,
    pub parsed: Result<Parsed, RejectReason>,
}

/// A record's bytes before parsing.
struct RawRecord {
    line: u64,
    bytes: Vec<u8>,
    /// The line break taken off the end, put back if a CSV record continues on the next line.
    line_break: &'static [u8],
    too_long: bool,
}

pub struct EventReader {
    reader: Box<dyn BufRead>,
    format: Format,
    csv_header: Option<(CsvHeader, Vec<u8>)>,
    lines_read: u64,
    first: Option<RawRecord>,
}

impl EventReader {
    /// Starts reading: detects the format from the first non-blank line unless one is given,
    /// and for CSV reads the header row (a file without a usable header is an error).
    pub fn new(reader: Box<dyn BufRead>, forced: Option<Format>) -> anyhow::Result<EventReader> {
        let mut this = EventReader {
            reader,
            format: forced.unwrap_or(Format::Jsonl),
            csv_header: None,
            lines_read: 0,
            first: None,
        };
        let Some(mut first) = this.read_line_record()? else {
            return Ok(this);
        };
        if first.bytes.starts_with(UTF8_BOM) {
            first.bytes.drain(..UTF8_BOM.len());
        }
        this.format = forced.unwrap_or_else(|| detect_format(&first.bytes));
        if this.format == Format::Csv {
            this.complete_csv_record(&mut first)?;
            let header =
                CsvHeader::parse(&first.bytes).with_context(|| format!("line {}", first.line))?;
            this.csv_header = Some((header, first.bytes));
        } else {
            this.first = Some(first);
        }
        Ok(this)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The CSV header row as it appeared, for a rejects file that can be replayed.
    pub fn csv_header_line(&self) -> Option<&[u8]> {
        self.csv_header.as_ref().map(|(_, raw)| raw.as_slice())
    }

    /// Physical lines read so far, blank ones included.
    pub fn lines_read(&self) -> u64 {
        self.lines_read
    }

    /// The next record, or `None` at the end. Only reading can fail, never a bad record.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        let raw = match self.first.take() {
            Some(first) => first,
            None => {
                let Some(mut raw) = self.read_line_record()? else {
                    return Ok(None);
                };
                if self.format == Format::Csv {
                    self.complete_csv_record(&mut raw)?;
                }
                raw
            }
        };
        let parsed = if raw.too_long {
            Err(RejectReason::LineTooLong)
        } else {
            self.parse(&raw.bytes)
        };
        Ok(Some(Record {
            line: raw.line,
            raw: raw.bytes,
            parsed,
        }))
    }

    fn parse(&self, bytes: &[u8]) -> Result<Parsed, RejectReason> {
        match self.format {
            Format::Csv => {
                let (header, _) = self.csv_header.as_ref().expect("CSV files have a header");
                header.parse_event(bytes).map(Parsed::Event)
            }
            Format::Jsonl | Format::Kcat => {
                let text = std::str::from_utf8(bytes).map_err(|_| RejectReason::InvalidUtf8)?;
                if self.format == Format::Kcat {
                    kcat_format::parse_envelope(text)
                } else {
                    json_format::parse_event(text).map(Parsed::Event)
                }
            }
        }
    }

    /// The next non-blank physical line, without its line break.
    fn read_line_record(&mut self) -> io::Result<Option<RawRecord>> {
        loop {
            let mut bytes = Vec::new();
            let Some(too_long) = self.read_physical_line(&mut bytes)? else {
                return Ok(None);
            };
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line_break = strip_line_break(&mut bytes);
            return Ok(Some(RawRecord {
                line: self.lines_read,
                bytes,
                line_break,
                too_long,
            }));
        }
    }

    /// Appends lines while a quoted CSV field is still open.
    fn complete_csv_record(&mut self, record: &mut RawRecord) -> io::Result<()> {
        let mut quotes = QuoteState::default();
        quotes.scan(&record.bytes);
        while quotes.in_quotes && !record.too_long {
            record.bytes.extend_from_slice(record.line_break);
            let mut next = Vec::new();
            match self.read_physical_line(&mut next)? {
                None => break, // unterminated quote at the end: the CSV parser reports it
                Some(too_long) => {
                    record.line_break = strip_line_break(&mut next);
                    quotes.scan(&next);
                    record.bytes.extend_from_slice(&next);
                    record.too_long = too_long || record.bytes.len() > MAX_RECORD_BYTES;
                }
            }
        }
        Ok(())
    }

    /// Reads one line including its line break, keeping at most MAX_RECORD_BYTES of it.
    /// Returns whether it was cut, or `None` at the end of the input.
    fn read_physical_line(&mut self, line: &mut Vec<u8>) -> io::Result<Option<bool>> {
        let mut too_long = false;
        let mut read_any = false;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                if read_any {
                    self.lines_read += 1;
                    return Ok(Some(too_long));
                }
                return Ok(None);
            }
            read_any = true;
            let (chunk, done) = match memchr(b'\n', available) {
                Some(end) => (&available[..=end], true),
                None => (available, false),
            };
            let room = MAX_RECORD_BYTES.saturating_sub(line.len());
            if chunk.len() > room {
                too_long = true;
                line.extend_from_slice(&chunk[..room]);
            } else {
                line.extend_from_slice(chunk);
            }
            let consumed = chunk.len();
            self.reader.consume(consumed);
            if done {
                self.lines_read += 1;
                return Ok(Some(too_long));
            }
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Takes the line break off the end and says which it was.
fn strip_line_break(bytes: &mut Vec<u8>) -> &'static [u8] {
    if bytes.last() != Some(&b'\n') {
        return b"";
    }
    bytes.pop();
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
        return b"\r\n";
    }
    b"\n"
}

/// Tracks whether a CSV record is inside a quoted field: a quote opens one only at the start of
/// a field, and `""` inside one is an escaped quote.
#[derive(Default)]
struct QuoteState {
    in_quotes: bool,
    mid_field: bool,
}

impl QuoteState {
    fn scan(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if self.in_quotes {
                if b == b'"' {
                    if bytes.get(i + 1) == Some(&b'"') {
                        i += 1;
                    } else {
                        self.in_quotes = false;
                    }
                }
            } else if b == b'"' && !self.mid_field {
                self.in_quotes = true;
                self.mid_field = true;
            } else {
                self.mid_field = b != b',';
            }
            i += 1;
        }
        if !self.in_quotes {
            self.mid_field = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &'static [u8], forced: Option<Format>) -> (EventReader, Vec<Record>) {
        let mut reader = EventReader::new(Box::new(input), forced).unwrap();
        let mut out = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            out.push(record);
        }
        (reader, out)
    }

    #[test]
    fn json_lines_keep_line_numbers_across_blank_lines() {
        let input =
            b"{\"event_id\":\"a\",\"sensor_id\":\"s\",\"timestamp\":1,\"value\":1}\n\n  \n{bad\r\n";
        let (reader, out) = records(input, None);
        assert_eq!(reader.format(), Format::Jsonl);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].line, 1);
        assert!(out[0].parsed.is_ok());
        assert_eq!(out[1].line, 4);
        assert_eq!(out[1].raw, b"{bad");
        assert!(matches!(out[1].parsed, Err(RejectReason::MalformedJson(_))));
        assert_eq!(reader.lines_read(), 4);
    }

    #[test]
    fn csv_quoted_fields_may_span_lines_and_crlf_works() {
        let input = b"event_id,sensor_id,timestamp,value\r\n\"e,1\",\"multi\r\nline\",2026-01-01T00:00:00Z,1\r\ne2,s,2026-01-01T00:00:01Z,2\r\n";
        let (reader, out) = records(input, None);
        assert_eq!(reader.format(), Format::Csv);
        assert_eq!(
            reader.csv_header_line(),
            Some(&b"event_id,sensor_id,timestamp,value"[..])
        );
        assert_eq!(out.len(), 2);
        let Ok(Parsed::Event(first)) = &out[0].parsed else {
            panic!("{:?}", out[0].parsed)
        };
        assert_eq!(first.event_id, "e,1");
        assert_eq!(first.sensor_id, "multi\r\nline");
        assert_eq!(out[0].line, 2);
        assert_eq!(out[1].line, 4);
    }

    #[test]
    fn a_stray_quote_inside_a_csv_field_does_not_swallow_the_next_lines() {
        let input = b"event_id,sensor_id,timestamp,value\ne\"1,s,2026-01-01T00:00:00Z,1\ne2,s,2026-01-01T00:00:01Z,2\n";
        let (_, out) = records(input, None);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].line, 3);
    }

    #[test]
    fn overlong_lines_are_rejected_without_holding_them_in_memory() {
        let mut input = vec![b'x'; MAX_RECORD_BYTES * 3];
        input.push(b'\n');
        input.extend_from_slice(
            b"{\"event_id\":\"a\",\"sensor_id\":\"s\",\"timestamp\":1,\"value\":1}\n",
        );
        let input: &'static [u8] = Box::leak(input.into_boxed_slice());
        let (_, out) = records(input, Some(Format::Jsonl));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].parsed, Err(RejectReason::LineTooLong));
        assert_eq!(out[0].raw.len(), MAX_RECORD_BYTES);
        assert!(out[1].parsed.is_ok());
        assert_eq!(out[1].line, 2);
    }

    #[test]
    fn invalid_utf8_is_a_rejected_line_not_a_failure() {
        let (_, out) = records(b"{\"event_id\":\"\xff\"}\n", Some(Format::Jsonl));
        assert_eq!(out[0].parsed, Err(RejectReason::InvalidUtf8));
    }

    #[test]
    fn an_empty_input_has_no_records() {
        let (_, out) = records(b"\n\n", None);
        assert!(out.is_empty());
    }
}
