//! Rendering reports: tables for people, JSON for scripts. Everything here goes to stdout;
//! talk (progress, warnings, errors) goes to stderr elsewhere.

use std::io::Write as _;

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

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
    fn timestamps_are_shown_to_the_second_in_utc() {
        assert_eq!(
            timestamp_for_people("2026-11-27T23:24:47.780881209+01:00"),
            "2026-11-27 22:24:47 UTC"
        );
        assert_eq!(timestamp_for_people("not a time"), "not a time");
    }
}
