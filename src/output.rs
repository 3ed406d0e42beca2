//! Rendering reports: tables for people, JSON for scripts. Everything here goes to stdout;
//! talk (progress, warnings, errors) goes to stderr elsewhere.

use std::io::Write as _;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

use crate::checks::{CheckReport, Measure, Section};
use crate::cli::CheckFormat;
use crate::status::{Failure, Status};

/// A table with metricsctl's look: condensed borders, wrapped to the terminal when there is one.
pub fn table<H: Into<comfy_table::Cell>>(header: impl IntoIterator<Item = H>) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    table
}

/// Writes a line of data to stdout. A closed pipe (`metricsctl ... | head`) is not an error.
pub fn print(text: impl std::fmt::Display) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}

/// Writes a report as pretty JSON to stdout.
pub fn print_json<T: Serialize>(report: &T) -> anyhow::Result<()> {
    print(serde_json::to_string_pretty(report)?);
    Ok(())
}

/// Prints a check's report in the chosen format.
pub fn print_check<R: CheckReport>(report: &R, format: CheckFormat) -> anyhow::Result<()> {
    match format {
        CheckFormat::Table => print(check_table(report)),
        CheckFormat::Json => print_json(&CheckJson {
            check: report.check(),
            status: report.status(),
            exit_code: report.status().code(),
            summary: report.summary(),
            report,
        })?,
        CheckFormat::Csv => print(check_csv(report)?.trim_end()),
        CheckFormat::Nagios => print(check_nagios(report)),
        CheckFormat::Prometheus => print(check_prometheus(report).trim_end()),
    }
    Ok(())
}

/// What monitoring should see when a check could not run: a status line in its own format
/// (the error itself also goes to stderr).
pub fn print_check_failure(
    check: &str,
    format: CheckFormat,
    failure: &Failure,
) -> anyhow::Result<()> {
    let message = format!("{:#}", failure.error);
    let first_line = message.lines().next().unwrap_or_default();
    match format {
        CheckFormat::Table | CheckFormat::Csv => {}
        CheckFormat::Json => print_json(&serde_json::json!({
            "check": check,
            "status": failure.status,
            "exit_code": failure.status.code(),
            "summary": first_line,
        }))?,
        CheckFormat::Nagios => print(format!(
            "METRICSCTL {} {} - {first_line}",
            check.to_uppercase(),
            failure.status
        )),
        CheckFormat::Prometheus => {
            let mut text = String::new();
            write_status_gauge(&mut text, &[(check, failure.status)]);
            print(text.trim_end());
        }
    }
    Ok(())
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

/// One section of a report as a table.
pub fn section_table(section: &Section) -> Table {
    let mut rendered = table(section.columns.iter().copied());
    for row in &section.rows {
        rendered.add_row(row.clone());
    }
    rendered
}

fn check_table(report: &impl CheckReport) -> String {
    let mut text = format!("{}: {}\n", report.status(), report.summary());
    for section in report.sections() {
        let _ = writeln!(text, "\n{}", section.title);
        if section.rows.is_empty() {
            text.push_str("  (none)\n");
            continue;
        }
        let _ = writeln!(text, "{}", section_table(&section));
    }
    text.trim_end().to_string()
}

fn check_csv(report: &impl CheckReport) -> anyhow::Result<String> {
    let sections = report.sections();
    let Some(Section { columns, rows, .. }) = sections.into_iter().next() else {
        return Ok(String::new());
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&columns)?;
    for row in &rows {
        writer.write_record(row)?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

/// A Nagios plugin's output: `METRICSCTL LAG OK - 12 s behind | lag=12s;60;300;0`, then details.
fn check_nagios(report: &impl CheckReport) -> String {
    let perfdata: Vec<String> = report.measures().iter().map(perfdatum).collect();
    let name = match report.check() {
        "all" => "checks",
        check => check,
    };
    let mut text = format!(
        "METRICSCTL {} {} - {}",
        name.to_uppercase(),
        report.status(),
        report.summary().replace('|', "/")
    );
    if !perfdata.is_empty() {
        let _ = write!(text, " | {}", perfdata.join(" "));
    }
    // Long output: plain lines, never a '|', which Nagios would read as more perfdata.
    for section in report.sections() {
        if section.rows.is_empty() {
            continue;
        }
        let _ = write!(text, "\n{}:", section.title);
        for row in &section.rows {
            let cells: Vec<String> = section
                .columns
                .iter()
                .zip(row)
                .filter(|(column, _)| !column.is_empty())
                .map(|(column, cell)| format!("{column}={}", cell.replace('|', "/")))
                .collect();
            let _ = write!(text, "\n  {}", cells.join(", "));
        }
    }
    text
}

fn perfdatum(measure: &Measure) -> String {
    let label = measure.label;
    let number = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v:.3}")
        }
    };
    format!(
        "{label}={}{};{};{};0",
        number(measure.value),
        measure.unit,
        measure.warn.map(number).unwrap_or_default(),
        measure.crit.map(number).unwrap_or_default(),
    )
}

/// node_exporter textfile-collector text: a status gauge per check, then every measure.
fn check_prometheus(report: &impl CheckReport) -> String {
    let mut text = String::new();
    write_status_gauge(&mut text, &report.statuses());
    let mut by_metric: BTreeMap<String, Vec<&Measure>> = BTreeMap::new();
    let measures = report.measures();
    for measure in &measures {
        by_metric
            .entry(format!("metricsctl_{}", measure.metric))
            .or_default()
            .push(measure);
    }
    for (name, samples) in by_metric {
        let _ = writeln!(text, "# HELP {name} {}", samples[0].help);
        let _ = writeln!(text, "# TYPE {name} gauge");
        for sample in samples {
            let _ = writeln!(
                text,
                "{name}{} {}",
                prometheus_labels(&sample.labels),
                sample.value
            );
        }
    }
    text
}

fn write_status_gauge(text: &mut String, statuses: &[(&str, Status)]) {
    text.push_str(
        "# HELP metricsctl_check_status Result of a metricsctl check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n\
         # TYPE metricsctl_check_status gauge\n",
    );
    for (check, status) in statuses {
        let _ = writeln!(
            text,
            "metricsctl_check_status{} {}",
            prometheus_labels(&[("check", check.to_string())]),
            status.code()
        );
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

/// An RFC 3339 timestamp as people read it in a table: to the second, in UTC.
pub fn timestamp_for_people(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(at) => at
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        Err(_) => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_label_values_are_escaped() {
        assert_eq!(
            prometheus_labels(&[("sensor", "a\"b\\c\nd".to_string())]),
            r#"{sensor="a\"b\\c\nd"}"#
        );
        assert_eq!(prometheus_labels(&[]), "");
    }

    #[test]
    fn perfdata_follows_the_plugin_format() {
        let lag = Measure::seconds("lag", "lag_seconds", "h", 12.0)
            .with_thresholds(Some(60.0), Some(300.0));
        assert_eq!(perfdatum(&lag), "lag=12s;60;300;0");
        let count = Measure::count("stale_sensors", "stale_sensors", "h", 3);
        assert_eq!(perfdatum(&count), "stale_sensors=3;;;0");
        let fraction = Measure::seconds("latency_p95", "latency_seconds", "h", 0.12345);
        assert_eq!(perfdatum(&fraction), "latency_p95=0.123s;;;0");
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
