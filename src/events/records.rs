//! Splitting a byte stream into records: a line for JSON Lines and kcat, a logical record for
//! CSV (a quoted field may span lines). Each record keeps its first line number and its bytes.

use std::collections::VecDeque;
use std::io::{self, BufRead};

use anyhow::Context as _;

use super::csv_format::CsvHeader;
use super::{Format, Parsed, RejectReason, detect_format, json_format, kcat_format};

/// A record longer than this is rejected and only its start kept, so memory stays bounded.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// A quoted CSV field may span lines, but not more than this many: an unclosed quote is then
/// taken for what it is, and only its own line is rejected.
const MAX_CSV_RECORD_LINES: usize = 256;
/// Lines looked at to tell the formats apart: one bad line must not decide a whole file.
const DETECTION_LINES: usize = 16;
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

/// One physical line, without its line break.
struct Line {
    number: u64,
    bytes: Vec<u8>,
    /// The line break taken off the end, put back if a CSV record continues on the next line.
    line_break: &'static [u8],
    too_long: bool,
}

impl Line {
    fn is_blank(&self) -> bool {
        self.bytes.iter().all(u8::is_ascii_whitespace)
    }
}

/// A record's lines before parsing, and a reason decided while assembling it.
struct RawRecord {
    line: u64,
    bytes: Vec<u8>,
    too_long: bool,
    unterminated_quote: bool,
}

/// Physical lines from the input, with lines looked at ahead (format detection) or given back
/// (after an unclosed CSV quote) served first.
struct Lines {
    reader: Box<dyn BufRead>,
    read: u64,
    pending: VecDeque<Line>,
}

impl Lines {
    fn next(&mut self) -> io::Result<Option<Line>> {
        if let Some(line) = self.pending.pop_front() {
            return Ok(Some(line));
        }
        self.read_from_input()
    }

    /// Reads one line including its line break, keeping at most MAX_RECORD_BYTES of it.
    fn read_from_input(&mut self) -> io::Result<Option<Line>> {
        let mut bytes = Vec::new();
        let mut too_long = false;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                if bytes.is_empty() && !too_long {
                    return Ok(None);
                }
                break;
            }
            let (chunk, done) = match memchr(b'\n', available) {
                Some(end) => (&available[..=end], true),
                None => (available, false),
            };
            let room = MAX_RECORD_BYTES.saturating_sub(bytes.len());
            if chunk.len() > room {
                too_long = true;
                bytes.extend_from_slice(&chunk[..room]);
            } else {
                bytes.extend_from_slice(chunk);
            }
            let consumed = chunk.len();
            self.reader.consume(consumed);
            if done {
                break;
            }
        }
        self.read += 1;
        let line_break = strip_line_break(&mut bytes);
        Ok(Some(Line {
            number: self.read,
            bytes,
            line_break,
            too_long,
        }))
    }

    /// Reads ahead up to `count` non-blank lines (or 4 MiB) without consuming them.
    fn peek_non_blank(&mut self, count: usize) -> io::Result<Vec<&[u8]>> {
        let mut non_blank = self.pending.iter().filter(|l| !l.is_blank()).count();
        let mut bytes: usize = self.pending.iter().map(|l| l.bytes.len()).sum();
        while non_blank < count && bytes < 4 * MAX_RECORD_BYTES {
            let Some(line) = self.read_from_input()? else {
                break;
            };
            non_blank += usize::from(!line.is_blank());
            bytes += line.bytes.len();
            self.pending.push_back(line);
        }
        Ok(self
            .pending
            .iter()
            .filter(|l| !l.is_blank())
            .take(count)
            .map(|l| l.bytes.as_slice())
            .collect())
    }
}

pub struct EventReader {
    lines: Lines,
    format: Format,
    csv_header: Option<(CsvHeader, Vec<u8>)>,
    /// The last line handed out in a record (or skipped as blank before it).
    handed_out: u64,
}

impl EventReader {
    /// Starts reading: detects the format from the first lines (and the file's name) unless one
    /// is given, and for CSV reads the header row (a file without a usable header is an error).
    pub fn new(
        reader: Box<dyn BufRead>,
        forced: Option<Format>,
        name: Option<&str>,
    ) -> anyhow::Result<EventReader> {
        let mut this = EventReader {
            lines: Lines {
                reader,
                read: 0,
                pending: VecDeque::new(),
            },
            format: forced.unwrap_or(Format::Jsonl),
            csv_header: None,
            handed_out: 0,
        };
        if this.lines.peek_non_blank(1)?.is_empty() {
            return Ok(this);
        }
        if let Some(first) = this.lines.pending.iter_mut().find(|l| !l.is_blank())
            && first.bytes.starts_with(UTF8_BOM)
        {
            first.bytes.drain(..UTF8_BOM.len());
        }
        this.format = match forced {
            Some(format) => format,
            None => detect_format(&this.lines.peek_non_blank(DETECTION_LINES)?, name),
        };
        if this.format == Format::Csv {
            let header = this.next_raw_record()?.expect("a non-blank line was seen");
            if header.unterminated_quote || header.too_long {
                anyhow::bail!(
                    "line {}: the CSV header row is not a complete row{}",
                    header.line,
                    NOT_CSV_HINT
                );
            }
            let parsed = CsvHeader::parse(&header.bytes)
                .with_context(|| format!("line {}{NOT_CSV_HINT}", header.line))?;
            this.csv_header = Some((parsed, header.bytes));
        }
        Ok(this)
    }

    #[cfg(test)]
    pub fn format(&self) -> Format {
        self.format
    }

    /// The CSV header row as it appeared, for a rejects file that can be replayed.
    pub fn csv_header_line(&self) -> Option<&[u8]> {
        self.csv_header.as_ref().map(|(_, raw)| raw.as_slice())
    }

    /// Physical lines read from the input so far, blank ones included.
    pub fn lines_read(&self) -> u64 {
        self.lines.read
    }

    /// The first line not yet handed out in a record: everything before it has been seen.
    pub fn next_line(&self) -> u64 {
        self.handed_out + 1
    }

    /// The next record, or `None` at the end. Only reading can fail, never a bad record.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        let Some(raw) = self.next_raw_record()? else {
            self.handed_out = self.lines.read;
            return Ok(None);
        };
        let parsed = if raw.unterminated_quote {
            Err(RejectReason::UnterminatedQuote {
                opened_on: raw.line,
            })
        } else if raw.too_long {
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

    /// The next record's lines: one non-blank line, or for CSV as many as an open quote spans.
    fn next_raw_record(&mut self) -> io::Result<Option<RawRecord>> {
        let first = loop {
            match self.lines.next()? {
                None => return Ok(None),
                Some(line) if line.is_blank() => self.handed_out = line.number,
                Some(line) => break line,
            }
        };
        let mut record = RawRecord {
            line: first.number,
            too_long: first.too_long,
            unterminated_quote: false,
            bytes: Vec::new(),
        };
        let mut last = first.number;
        if self.format == Format::Csv && !first.too_long {
            let mut quotes = QuoteState::default();
            quotes.scan(&first.bytes);
            if quotes.in_quotes {
                match self.continue_quoted(first, &mut quotes)? {
                    Quoted::Closed { bytes, last_line } => {
                        record.bytes = bytes;
                        last = last_line;
                    }
                    Quoted::Unclosed(first_alone) => {
                        record.unterminated_quote = true;
                        record.bytes = first_alone;
                    }
                }
                self.handed_out = last;
                return Ok(Some(record));
            }
        }
        record.bytes = first.bytes;
        self.handed_out = last;
        Ok(Some(record))
    }

    /// Appends lines while a quoted CSV field is open. When the quote never closes (end of
    /// input, too many lines or bytes), the lines after the first are given back to be read as
    /// records of their own.
    fn continue_quoted(&mut self, first: Line, quotes: &mut QuoteState) -> io::Result<Quoted> {
        let mut taken: Vec<Line> = Vec::new();
        let mut bytes = first.bytes.len();
        while quotes.in_quotes {
            let next = match self.lines.next()? {
                Some(next)
                    if !next.too_long
                        && taken.len() + 1 < MAX_CSV_RECORD_LINES
                        && bytes + next.bytes.len() < MAX_RECORD_BYTES =>
                {
                    next
                }
                other => {
                    // Give back in order: what was taken, then the line that did not fit.
                    for line in other.into_iter().rev().chain(taken.into_iter().rev()) {
                        self.lines.pending.push_front(line);
                    }
                    return Ok(Quoted::Unclosed(first.bytes));
                }
            };
            quotes.scan(&next.bytes);
            bytes += next.bytes.len() + next.line_break.len();
            taken.push(next);
        }
        let mut joined = first.bytes;
        let mut line_break = first.line_break;
        let mut last = first.number;
        for line in taken {
            joined.extend_from_slice(line_break);
            joined.extend_from_slice(&line.bytes);
            line_break = line.line_break;
            last = line.number;
        }
        Ok(Quoted::Closed {
            bytes: joined,
            last_line: last,
        })
    }
}

/// A CSV record whose quoted field spans lines.
enum Quoted {
    Closed {
        bytes: Vec<u8>,
        last_line: u64,
    },
    /// The quote never closed: the first line alone.
    Unclosed(Vec<u8>),
}

const NOT_CSV_HINT: &str =
    " (if the file is not CSV, name its format with --input-format jsonl or --input-format kcat)";

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
        let mut reader = EventReader::new(Box::new(input), forced, None).unwrap();
        let mut out = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            out.push(record);
        }
        (reader, out)
    }

    #[test]
    fn json_lines_keep_line_numbers_across_blank_lines() {
        let input =
            b"{\"event_id\":\"a\",\"sensor_id\":\"s\",\"timestamp\":1767225600000,\"value\":1}\n\n  \n{bad\r\n";
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
            b"{\"event_id\":\"a\",\"sensor_id\":\"s\",\"timestamp\":1767225600000,\"value\":1}\n",
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
    fn an_unclosed_quote_rejects_its_own_line_and_the_following_lines_are_read_on_their_own() {
        let input = b"event_id,sensor_id,timestamp,value\n\
            e1,s,2026-01-01T00:00:00Z,1\n\
            e2,\"s,2026-01-01T00:00:01Z,2\n\
            e3,s,2026-01-01T00:00:02Z,3\n\
            e4,s,2026-01-01T00:00:03Z,4\n";
        let (reader, out) = records(input, None);
        let lines: Vec<u64> = out.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5]);
        assert_eq!(
            out[1].parsed,
            Err(RejectReason::UnterminatedQuote { opened_on: 3 })
        );
        assert_eq!(out[1].raw, b"e2,\"s,2026-01-01T00:00:01Z,2");
        assert!(out[2].parsed.is_ok() && out[3].parsed.is_ok());
        assert_eq!(reader.lines_read(), 5);
        assert_eq!(reader.next_line(), 6);
    }

    #[test]
    fn a_json_lines_file_with_a_garbled_first_line_is_still_json_lines() {
        let input = b"\x00\x01garbage\n\
            {\"event_id\":\"a\",\"sensor_id\":\"s\",\"timestamp\":1767225600000,\"value\":1}\n\
            {\"event_id\":\"b\",\"sensor_id\":\"s\",\"timestamp\":1767225600000,\"value\":2}\n";
        let (reader, out) = records(input, None);
        assert_eq!(reader.format(), Format::Jsonl);
        assert_eq!(out.len(), 3);
        assert!(out[0].parsed.is_err());
        assert!(out[1].parsed.is_ok() && out[2].parsed.is_ok());
    }

    #[test]
    fn a_bad_csv_header_names_the_input_format_flag() {
        let error = EventReader::new(Box::new(&b"id;when;what\n1;2;3\n"[..]), None, None)
            .err()
            .expect("no usable header");
        let message = format!("{error:#}");
        assert!(message.contains("--input-format"), "{message}");
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
