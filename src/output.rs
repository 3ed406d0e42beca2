//! Rendering reports: tables for people, JSON and CSV for scripts, Nagios and Prometheus for
//! monitoring. Reports go to stdout (or, with `--output FILE`, atomically into a file); talk
//! (progress, warnings, errors) goes to stderr elsewhere.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

use crate::checks::{self, CheckReport, Measure, Section, Subject};
use crate::db::Layout;
use crate::status::{Failure, Status};
pub use crate::text::{escape_control, shell_quote, timestamp_for_people};

/// How a check's report is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckFormat {
    /// Tables for people.
    #[default]
    Table,
    /// JSON for scripts (documented, stable shape).
    Json,
    /// The main table as CSV, raw values.
    Csv,
    /// A Nagios/Icinga plugin status line with perfdata, then details (at most 4 KB).
    Nagios,
    /// Prometheus text format, for node_exporter's textfile collector.
    Prometheus,
}

/// Nagios reads at most this much of a plugin's output (Nagios 3's limit; Icinga's too).
pub const NAGIOS_OUTPUT_LIMIT: usize = 4096;

/// Writing stdout failed (other than a closed pipe): the report was lost, so the run is UNKNOWN.
#[derive(Debug)]
pub struct OutputLost(pub std::io::Error);

impl std::fmt::Display for OutputLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "writing the report to stdout failed: {}", self.0)
    }
}

impl std::error::Error for OutputLost {}

/// A report that could not be written: whatever the command found, it could not say so.
impl From<OutputLost> for Failure {
    fn from(lost: OutputLost) -> Failure {
        Failure::from(crate::error::Error::new(crate::error::What::Io, lost))
    }
}

/// How talk (stderr) and reports for people (stdout) reach the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Console {
    /// Draw progress bars (stderr is a terminal and --quiet is off).
    pub progress: bool,
    /// Informational messages on stderr are wanted.
    pub verbose: bool,
    /// --quiet: a successful run prints nothing (reports asked for are still written).
    pub quiet: bool,
}

impl Console {
    /// Prints an informational line on stderr unless --quiet.
    pub fn say(&self, message: impl std::fmt::Display) {
        if self.verbose {
            eprintln!("{message}");
        }
    }

    /// Prints a warning on stderr unless --quiet (the exit code and the report carry what
    /// monitoring needs; a cron job under --quiet stays silent when the run is OK).
    pub fn warn(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{}", escape_control(&message.to_string()));
        }
    }

    /// Prints a table (or other report for people) on stdout, unless --quiet and all is well.
    pub fn show(&self, status: Status, text: impl std::fmt::Display) -> Result<(), OutputLost> {
        if self.quiet && status == Status::Ok {
            return Ok(());
        }
        print(text)
    }
}

/// A table with metricsctl's look: condensed borders, wrapped to the terminal when there is one.
pub fn table<H: Into<comfy_table::Cell>>(header: impl IntoIterator<Item = H>) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    table
}

/// Writes a line of data to stdout. A closed pipe (`metricsctl ... | head`) is not an error;
/// any other failure (a full disk) is, so a lost report never reads as success.
/// On a terminal, control characters from the data are escaped (`escape_for_terminal`); files
/// and pipes get the values as they are.
pub fn print(text: impl std::fmt::Display) -> Result<(), OutputLost> {
    let mut stdout = std::io::stdout().lock();
    let text = text.to_string();
    let text = if stdout.is_terminal() {
        crate::text::escape_for_terminal(&text)
    } else {
        std::borrow::Cow::Borrowed(text.as_str())
    };
    let written = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(OutputLost(e)),
    }
}

/// Writes a report as pretty JSON to stdout.
pub fn print_json<T: Serialize>(report: &T) -> Result<(), OutputLost> {
    let json =
        serde_json::to_string_pretty(report).map_err(|e| OutputLost(std::io::Error::other(e)))?;
    print(json)
}

/// Where a report goes: stdout, or a file replaced atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

impl Destination {
    pub fn from_flag(output: Option<&PathBuf>) -> Destination {
        match output {
            Some(path) => Destination::File(path.clone()),
            None => Destination::Stdout,
        }
    }

    /// Delivers a rendered report (an empty one is still written to a file, never to stdout).
    pub fn deliver(&self, text: &str) -> anyhow::Result<()> {
        match self {
            Destination::Stdout if text.is_empty() => Ok(()),
            Destination::Stdout => Ok(print(text)?),
            Destination::File(path) => write_atomically(path, text),
        }
    }
}

/// Replaces `path` with `text` (plus a final newline) so that a reader sees the old file or the
/// new one, never half of one: a temporary file in the same directory, flushed to disk, then
/// renamed over it. The temporary name starts with a dot and ends in `.tmp`, which
/// node_exporter's textfile collector ignores.
pub fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let directory = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let write = || -> anyhow::Result<()> {
        let mut file = tempfile::Builder::new()
            .prefix(".metricsctl-")
            .suffix(".tmp")
            .tempfile_in(directory)?;
        file.write_all(text.as_bytes())?;
        if !text.is_empty() && !text.ends_with('\n') {
            file.write_all(b"\n")?;
        }
        file.as_file().sync_all()?;
        // Readable by the collector, which seldom runs as our user (tempfile makes it 0600).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        file.persist(path)?;
        Ok(())
    };
    write().with_context(|| format!("writing the report to {}", path.display()))
}

/// Renders a check's report in the chosen format.
pub fn render_check<R: CheckReport>(report: &R, format: CheckFormat) -> anyhow::Result<String> {
    Ok(match format {
        CheckFormat::Table => check_table(report),
        CheckFormat::Json => serde_json::to_string_pretty(&CheckJson {
            check: report.check(),
            status: report.status(),
            exit_code: report.status().code(),
            summary: report.summary(),
            report,
        })?,
        CheckFormat::Csv => check_csv(report)?.trim_end().to_string(),
        CheckFormat::Nagios => check_nagios(report),
        CheckFormat::Prometheus => check_prometheus(report).trim_end().to_string(),
    })
}

/// What monitoring should see when a check could not run: its status line in its own format,
/// with every series a successful run has (status UNKNOWN, no values). The error itself goes
/// to stderr as well.
pub fn render_check_failure(
    subject: Subject,
    layout: Option<Layout>,
    format: CheckFormat,
    failure: &Failure,
) -> String {
    let message = format!("{:#}", failure.error);
    let first_line = message.lines().next().unwrap_or_default().to_string();
    let (checks, measures) = subject.series(layout);
    let check = subject.name();
    match format {
        CheckFormat::Csv => String::new(),
        CheckFormat::Table => format!("{}: {}", failure.status, escape_control(&first_line)),
        CheckFormat::Json => {
            let mut json = serde_json::json!({
                "check": check,
                "status": failure.status,
                "exit_code": failure.status.code(),
                "summary": first_line,
            });
            if subject == Subject::All {
                json["checks"] = checks
                    .iter()
                    .map(|check| {
                        serde_json::json!({
                            "check": check.name(),
                            "status": failure.status,
                            "exit_code": failure.status.code(),
                            "summary": first_line,
                        })
                    })
                    .collect();
            }
            serde_json::to_string_pretty(&json).unwrap_or_default()
        }
        CheckFormat::Nagios => bound_nagios_output(
            &format!(
                "METRICSCTL {} {} - {}",
                nagios_service(check),
                failure.status,
                nagios_text(&first_line)
            ),
            &[],
        ),
        CheckFormat::Prometheus => {
            let statuses: Vec<(&str, Status)> = checks
                .iter()
                .map(|check| (check.name(), failure.status))
                .collect();
            prometheus_text(check, &statuses, &measures)
                .trim_end()
                .to_string()
        }
    }
}

#[derive(Serialize)]
struct CheckJson<'a, R: Serialize> {
    check: &'a str,
    status: Status,
    exit_code: u8,
    summary: String,
    #[serde(flatten)]
    report: &'a R,
}

/// One section of a report as a table (people's text, control characters escaped).
pub fn section_table(section: &Section) -> Table {
    let mut rendered = table(section.columns.iter().map(|c| c.title));
    for row in &section.rows {
        rendered.add_row(
            row.iter()
                .map(|cell| escape_control(&cell.text).into_owned())
                .collect::<Vec<_>>(),
        );
    }
    rendered
}

fn not_shown_line(section: &Section) -> Option<String> {
    (section.not_shown > 0).then(|| {
        format!(
            "… and {} more not shown (raise --limit, or see --format json)",
            section.not_shown
        )
    })
}

fn check_table(report: &impl CheckReport) -> String {
    let mut text = format!(
        "{}: {}\n",
        report.status(),
        escape_control(&report.summary())
    );
    for section in report.sections() {
        let _ = writeln!(text, "\n{}", escape_control(&section.title));
        if section.rows.is_empty() {
            text.push_str("  (none)\n");
        } else {
            let _ = writeln!(text, "{}", section_table(&section));
        }
        if let Some(line) = not_shown_line(&section) {
            let _ = writeln!(text, "{line}");
        }
    }
    text.trim_end().to_string()
}

/// The main section as CSV: raw values (RFC 3339 times, seconds as numbers), people-only
/// columns (bar charts) left out.
fn check_csv(report: &impl CheckReport) -> anyhow::Result<String> {
    let sections = report.sections();
    let Some(section) = sections.into_iter().next() else {
        return Ok(String::new());
    };
    let kept: Vec<usize> = section
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.csv.is_some())
        .map(|(i, _)| i)
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(
        kept.iter()
            .map(|&i| section.columns[i].csv.unwrap_or_default()),
    )?;
    for row in &section.rows {
        writer.write_record(kept.iter().map(|&i| row[i].raw.as_str()))?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

/// The Nagios service name: the same whether the check ran or not.
fn nagios_service(check: &str) -> String {
    match check {
        "all" => "CHECKS".to_string(),
        check => check.to_uppercase(),
    }
}

/// Text on a Nagios line: no control characters, no `|` (which starts perfdata).
fn nagios_text(text: &str) -> String {
    escape_control(text).replace('|', "/")
}

/// A Nagios plugin's output: `METRICSCTL LAG OK - 12 s behind | lag=12s;60;300`, then details,
/// at most 4 KB in all.
fn check_nagios(report: &impl CheckReport) -> String {
    let perfdata: Vec<String> = report.measures().iter().filter_map(perfdatum).collect();
    let mut first = format!(
        "METRICSCTL {} {} - {}",
        nagios_service(report.check()),
        report.status(),
        nagios_text(&report.summary())
    );
    // Long output: plain lines, never a '|', which Nagios would read as more perfdata.
    let mut details = Vec::new();
    for section in report.sections() {
        if section.rows.is_empty() {
            continue;
        }
        details.push(format!("{}:", nagios_text(&section.title)));
        for row in &section.rows {
            let cells: Vec<String> = section
                .columns
                .iter()
                .zip(row)
                .filter(|(column, _)| column.csv.is_some())
                .map(|(column, cell)| format!("{}={}", column.title, nagios_text(&cell.text)))
                .collect();
            details.push(format!("  {}", cells.join(", ")));
        }
        if let Some(line) = not_shown_line(&section) {
            details.push(format!("  {line}"));
        }
    }
    if !perfdata.is_empty() {
        let perfdata = format!(" | {}", perfdata.join(" "));
        // The perfdata must survive: shorten the summary, never the numbers.
        let room = NAGIOS_OUTPUT_LIMIT.saturating_sub(perfdata.len() + 1);
        truncate_at_char(&mut first, room);
        first.push_str(&perfdata);
    }
    bound_nagios_output(&first, &details)
}

/// The status line, then as many detail lines as fit in 4 KB, then how many did not.
fn bound_nagios_output(first: &str, details: &[String]) -> String {
    let mut text = first.to_string();
    truncate_at_char(&mut text, NAGIOS_OUTPUT_LIMIT);
    const RESERVE: usize = 80;
    for (i, line) in details.iter().enumerate() {
        let remaining = details.len() - i;
        let budget = if remaining == 1 {
            NAGIOS_OUTPUT_LIMIT
        } else {
            NAGIOS_OUTPUT_LIMIT - RESERVE
        };
        if text.len() + 1 + line.len() > budget {
            let _ = write!(
                text,
                "\n… {remaining} more lines not shown (Nagios reads 4 KB; see --format table or json)"
            );
            break;
        }
        text.push('\n');
        text.push_str(line);
    }
    text
}

fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max.saturating_sub(1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    while text.len() > max {
        text.pop();
    }
}

/// `label=value[unit];warn;crit;min`: thresholds in the plugin range syntax, a minimum only
/// where the value cannot go below it. A value that could not be measured is left out.
fn perfdatum(measure: &Measure) -> Option<String> {
    let value = measure.value?;
    if !value.is_finite() {
        return None;
    }
    let range = |t: Option<checks::Threshold>| t.map(|t| t.range()).unwrap_or_default();
    let mut text = format!(
        "{}={}{};{};{}",
        measure.label,
        checks::plain_number(value),
        measure.unit,
        range(measure.warn),
        range(measure.crit),
    );
    if let Some(min) = measure.min {
        let _ = write!(text, ";{}", checks::plain_number(min));
    }
    Some(text)
}

/// node_exporter textfile-collector text: a status gauge per check, when this run happened,
/// then every measure (NaN for what could not be measured, so no series vanishes).
fn check_prometheus(report: &impl CheckReport) -> String {
    prometheus_text(report.check(), &report.statuses(), &report.measures())
}

fn prometheus_text(check: &str, statuses: &[(&str, Status)], measures: &[Measure]) -> String {
    let mut text = String::new();
    text.push_str(
        "# HELP metricsctl_check_status Result of a metricsctl check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n\
         # TYPE metricsctl_check_status gauge\n",
    );
    for (name, status) in statuses {
        let _ = writeln!(
            text,
            "metricsctl_check_status{} {}",
            prometheus_labels(&[("check", name.to_string())]),
            status.code()
        );
    }
    // A gauge, not a sample timestamp: the textfile collector rejects timestamps.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    text.push_str(
        "# HELP metricsctl_last_run_timestamp_seconds When this metricsctl run wrote its result (Unix time).\n\
         # TYPE metricsctl_last_run_timestamp_seconds gauge\n",
    );
    let _ = writeln!(
        text,
        "metricsctl_last_run_timestamp_seconds{} {}",
        prometheus_labels(&[("check", check.to_string())]),
        prometheus_value(now)
    );
    let mut names: Vec<String> = Vec::new();
    for measure in measures {
        let name = format!("metricsctl_{}", measure.metric);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    for name in names {
        let samples: Vec<&Measure> = measures
            .iter()
            .filter(|m| format!("metricsctl_{}", m.metric) == name)
            .collect();
        let _ = writeln!(text, "# HELP {name} {}", samples[0].help);
        let _ = writeln!(text, "# TYPE {name} gauge");
        for sample in samples {
            let _ = writeln!(
                text,
                "{name}{} {}",
                prometheus_labels(&sample.labels),
                prometheus_value(sample.value.unwrap_or(f64::NAN))
            );
        }
    }
    text
}

/// Values as the text format spells them: `NaN`, `+Inf`, `-Inf`, or a plain number.
fn prometheus_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value == f64::INFINITY {
        "+Inf".to_string()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        value.to_string()
    }
}

fn prometheus_labels(labels: &[(&str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Threshold;

    #[test]
    fn prometheus_label_values_are_escaped() {
        assert_eq!(
            prometheus_labels(&[("sensor", "a\"b\\c\nd".to_string())]),
            r#"{sensor="a\"b\\c\nd"}"#
        );
        assert_eq!(prometheus_labels(&[]), "");
        assert_eq!(prometheus_value(f64::NAN), "NaN");
        assert_eq!(prometheus_value(f64::INFINITY), "+Inf");
    }

    #[test]
    fn perfdata_follows_the_plugin_format() {
        let lag = Measure::seconds("lag", "lag_seconds", "h", Some(12.0))
            .with_thresholds(Some(Threshold::Above(60.0)), Some(Threshold::Above(300.0)));
        assert_eq!(perfdatum(&lag).unwrap(), "lag=12s;60;300");
        let count = Measure::count("stale_sensors", "stale_sensors", "h", Some(3));
        assert_eq!(perfdatum(&count).unwrap(), "stale_sensors=3;;;0");
        let fraction = Measure::seconds("latency_p95", "latency_seconds", "h", Some(0.12345));
        assert_eq!(perfdatum(&fraction).unwrap(), "latency_p95=0.123s;;");
        let floor = Measure::count("last_bucket", "x", "h", Some(6000))
            .with_thresholds(Some(Threshold::Below(10.0)), Some(Threshold::Below(5.0)));
        assert_eq!(perfdatum(&floor).unwrap(), "last_bucket=6000;10:;5:;0");
        assert_eq!(perfdatum(&Measure::count("x", "x", "h", None)), None);
    }

    #[test]
    fn control_characters_are_escaped_for_people() {
        assert_eq!(escape_control("sensor_1"), "sensor_1");
        assert_eq!(
            escape_control("s1\nMETRICSCTL LAG OK - fine"),
            "s1\\nMETRICSCTL LAG OK - fine"
        );
        assert_eq!(
            escape_control("a\u{1b}[2Jb\u{202e}c"),
            "a\\u{1b}[2Jb\\u{202e}c"
        );
    }

    #[test]
    fn nagios_output_is_bounded_and_says_what_was_left_out() {
        let details: Vec<String> = (0..1000)
            .map(|i| format!("  line {i} {}", "x".repeat(40)))
            .collect();
        let text = bound_nagios_output("METRICSCTL RATE OK - fine | events=1;;;0", &details);
        assert!(text.len() <= NAGIOS_OUTPUT_LIMIT, "{}", text.len());
        assert!(text.starts_with("METRICSCTL RATE OK - fine | events=1;;;0\n"));
        assert!(text.ends_with("see --format table or json)"), "{text}");
        let few = bound_nagios_output("first", &["a".to_string(), "b".to_string()]);
        assert_eq!(few, "first\na\nb");
        let mut long = "é".repeat(5000);
        truncate_at_char(&mut long, 4096);
        assert!(long.len() <= 4096);
    }

    #[test]
    fn shell_words_are_quoted_when_they_must_be() {
        assert_eq!(shell_quote("metrics_db"), "metrics_db");
        assert_eq!(shell_quote("x; rm -rf ~"), "'x; rm -rf ~'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a\nb"), "$'a\\nb'");
    }

    #[test]
    fn timestamps_are_shown_to_the_second_in_utc() {
        assert_eq!(
            timestamp_for_people("2026-11-27T23:24:47.780881209+01:00"),
            "2026-11-27 22:24:47 UTC"
        );
        assert_eq!(timestamp_for_people("not a time"), "not a time");
    }
}
