//! Text that reaches a terminal or a shell: what came from the database or the input is shown
//! escaped, and commands we suggest are quoted, so no value can forge a line or run a command.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Control characters (a newline in a sensor id) shown as escapes, so that no text from the
/// database can forge a line of a human format. Bidirectional overrides too: they can make a
/// line read as something else.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    let needs = |c: char| c.is_control() || is_bidi_control(c);
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Text bound for a terminal: every control character escaped but the line breaks and tabs that
/// lay a report out, so no value (a sensor id holding `ESC[2J` or an OSC title sequence) acts on
/// the operator's terminal. Files and pipes get the report as it is.
pub fn escape_for_terminal(text: &str) -> Cow<'_, str> {
    let needs = |c: char| (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c);
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            c if needs(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A word for a shell command line, quoted when it needs to be: `'x; rm -rf ~'`.
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    if word.chars().any(|c| c.is_control()) {
        // $'...' (bash, zsh, ksh) is the only quoting that can spell a control character.
        let mut out = String::from("$'");
        for c in word.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// An RFC 3339 timestamp as people read it in a table: to the second, in UTC.
pub fn timestamp_for_people(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(at) => at
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        Err(_) => escape_control(rfc3339).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_gets_the_layout_but_no_control_sequence() {
        let text = "sensor\u{1b}[2J,1\n\u{1b}]0;pwned\u{7}\tx\u{9b}31m\r";
        let shown = escape_for_terminal(text);
        assert_eq!(
            shown,
            "sensor\\u{1b}[2J,1\n\\u{1b}]0;pwned\\u{7}\tx\\u{9b}31m\\r"
        );
        assert!(
            !shown
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
        );
        assert!(matches!(
            escape_for_terminal("plain\ttext\n"),
            Cow::Borrowed(_)
        ));
    }
}
