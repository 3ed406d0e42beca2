//! The docs cannot drift: the examples shown are what the current binary prints, every relative
//! link and anchor resolves, every query file a doc or a comment names exists, the README stays
//! short, and the manual page describes every flag (and `man` itself reads it without a warning).
//!
//! An example is checked when a `<!-- doc-test: FIXTURE -->` line stands just before its
//! ```` ```console ```` block. Each `$ ` line runs through `sh` in a directory of its own, with
//! `metricsctl` on the PATH and `DATABASE_URL` naming a fresh database prepared as FIXTURE says:
//! `empty` (no schema), `migrated`, `sample` (migrated, then the demo's sample replayed), or
//! `partitioned-sample`. Its stdout and stderr together are compared with the lines below it:
//! `[..]` stands for any text within a line, a line `...` for any number of lines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::{TestDatabase, metricsctl, stderr_of, stdout_of};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page under docs/, relative to the repository.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md")];
    files.extend(files_under("docs", &|name| name.ends_with(".md")));
    files.extend(files_under("bench", &|name| name.ends_with(".md")));
    files
}

fn files_under(directory: &str, wanted: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    fn walk(root: &Path, relative: &Path, wanted: &dyn Fn(&str) -> bool, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(root.join(relative)) else {
            return;
        };
        for entry in entries.map(Result::unwrap) {
            let path = relative.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, wanted, out);
            } else if wanted(&entry.file_name().to_string_lossy()) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repository(), Path::new(directory), wanted, &mut out);
    out.sort();
    out
}

fn read(relative: &Path) -> String {
    std::fs::read_to_string(repository().join(relative))
        .unwrap_or_else(|e| panic!("reading {}: {e}", relative.display()))
}

/// The text outside fenced code blocks, line by line with their numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence {
            out.push((index + 1, line));
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn anchor_of(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors_of(text: &str) -> BTreeSet<String> {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let mut anchors = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let base = anchor_of(heading.trim_start_matches('#'));
        let count = seen.entry(base.clone()).or_default();
        anchors.insert(if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// Every `](target)` in a line's prose (inline code spans left out).
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let without_code: String = line
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, part)| part)
        .collect::<Vec<_>>()
        .join(" ");
    let mut rest = without_code.as_str();
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        targets.push(rest[..end].trim().to_string());
        rest = &rest[end..];
    }
    targets
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    let files = markdown_files();
    assert!(files.len() >= 10, "README.md and docs/: {files:?}");
    for file in &files {
        let text = read(file);
        for (number, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((path, anchor)) => (path, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                let absolute = repository().join(&resolved);
                if !absolute.exists() {
                    broken.push(format!(
                        "{}:{number}: {target}: no such file",
                        file.display()
                    ));
                    continue;
                }
                if let Some(anchor) = anchor {
                    let anchors = anchors_of(&read(&resolved));
                    if !anchors.contains(anchor) {
                        broken.push(format!(
                            "{}:{number}: {target}: no heading with that anchor in {} (it has: {anchors:?})",
                            file.display(),
                            resolved.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Every `name.sql` written in a text, with its line number.
fn sql_file_names(text: &str) -> Vec<(usize, String)> {
    let mut names = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let bytes = line.as_bytes();
        let mut from = 0;
        while let Some(found) = line[from..].find(".sql") {
            let end = from + found;
            let mut start = end;
            let in_name = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
            while start > 0 && in_name(bytes[start - 1]) {
                start -= 1;
            }
            // `QUERY.sql` is a constant's field, not a file name.
            let before = if start > 0 { bytes[start - 1] } else { b' ' };
            let after = bytes.get(end + 4).copied().unwrap_or(b' ');
            if start < end && !before.is_ascii_alphanumeric() && !in_name(after) {
                names.push((index + 1, line[start..end + 4].to_string()));
            }
            from = end + 4;
        }
    }
    names
}

/// What a reader reads in a file: all of a page, the comments of code (`//`, `#`, `--`), where a
/// `name.sql` is a file's name and not a field's. Lines keep their numbers.
fn commented_text(file: &Path, text: &str) -> String {
    let marker = match file.extension().and_then(|e| e.to_str()) {
        Some("md") => return text.to_string(),
        Some("rs") => "//",
        Some("sql") => "--",
        _ => "#",
    };
    text.lines()
        .map(|line| line.find(marker).map_or("", |at| &line[at..]))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_sql_file_a_doc_or_a_comment_names_exists() {
    // Files the repository holds: queries, migrations, test fixtures, the benchmarks' own.
    let mut existing = BTreeSet::new();
    for directory in ["queries", "migrations", "tests", "bench"] {
        for path in files_under(directory, &|name| name.ends_with(".sql")) {
            existing.insert(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(existing.contains("duplicates.sql"), "{existing:?}");
    // The guide's own file, named where the docs say what it is; and the names tests and
    // benchmarks give the files they write themselves.
    let elsewhere = ["init.sql"];
    let mut texts = markdown_files();
    for (directory, suffix) in [
        ("src", ".rs"),
        ("tests", ".rs"),
        ("queries", ".sql"),
        ("bench", ".sh"),
    ] {
        texts.extend(files_under(directory, &|name| name.ends_with(suffix)));
    }
    texts.extend(files_under(".ci", &|_| true));
    let mut missing = Vec::new();
    let mut named = 0;
    for file in &texts {
        if file == Path::new("tests/docs.rs") {
            continue;
        }
        for (number, name) in sql_file_names(&commented_text(file, &read(file))) {
            named += 1;
            if !existing.contains(&name) && !elsewhere.contains(&name.as_str()) {
                missing.push(format!("{}:{number}: {name}", file.display()));
            }
        }
    }
    assert!(
        named > 50,
        "only {named} names of .sql files found: is the scan right?"
    );
    assert!(
        missing.is_empty(),
        "named but not in the repository:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_readme_is_one_screenful_or_three() {
    let lines = read(Path::new("README.md")).lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; move the detail to docs/"
    );
    // Every page under docs/ is reachable from it, directly or through a page it links.
    let mut reached = BTreeSet::from([PathBuf::from("README.md")]);
    let mut queue = vec![PathBuf::from("README.md")];
    while let Some(file) = queue.pop() {
        for (_, line) in prose_lines(&read(&file)) {
            for target in link_targets(line) {
                let path = target.split('#').next().unwrap();
                if path.is_empty() || target.contains("://") || !path.ends_with(".md") {
                    continue;
                }
                let resolved = normalize(&file.parent().unwrap().join(path));
                if reached.insert(resolved.clone()) {
                    queue.push(resolved);
                }
            }
        }
    }
    let unreached: Vec<_> = files_under("docs", &|name| name.ends_with(".md"))
        .into_iter()
        .filter(|page| !reached.contains(page))
        .collect();
    assert!(
        unreached.is_empty(),
        "pages no link leads to: {unreached:?}"
    );
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn the_manual_page_describes_every_command_and_flag() {
    let output = metricsctl().arg("man").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let page = stdout_of(&output);
    assert!(
        page.contains("\n.TH metricsctl 1"),
        "roff: {}",
        &page[..page.len().min(200)]
    );
    let mut absent = Vec::new();
    let root = <metricsctl::cli::Cli as clap::CommandFactory>::command();
    let mut stack = vec![("metricsctl".to_string(), root)];
    let mut flags = 0;
    while let Some((path, command)) = stack.pop() {
        if path != "metricsctl" && !page.contains(&format!(".SH \"{}\"", path.to_uppercase())) {
            absent.push(format!("section {path}"));
        }
        for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                flags += 1;
                // roff escapes the hyphens: \-\-timeout.
                if !page.contains(&format!("\\-\\-{}", long.replace('-', "\\-"))) {
                    absent.push(format!("{path}: --{long}"));
                }
            }
        }
        for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
            stack.push((format!("{path} {}", sub.get_name()), sub.clone()));
        }
    }
    assert!(flags > 40, "only {flags} flags seen");
    assert!(absent.is_empty(), "not in the manual page: {absent:?}");
}

#[test]
fn man_reads_the_manual_page_without_a_warning() {
    let Some(man) = crate::support::program("man", "METRICSCTL_MAN") else {
        eprintln!("NOT RUN: man is not installed (apt-get install -y man-db)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("metricsctl.1");
    let output = metricsctl().arg("man").output().unwrap();
    std::fs::write(&page, output.stdout).unwrap();
    let rendered = std::process::Command::new(man)
        .args(["--warnings", "-E", "UTF-8", "-l"])
        .arg(&page)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
        .unwrap();
    // Without a terminal man still overstrikes for bold and underline: "N\x08N".
    let mut text = String::new();
    for c in stdout_of(&rendered).chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    assert!(
        rendered.status.success(),
        "man failed: {}",
        stderr_of(&rendered)
    );
    assert_eq!(
        stderr_of(&rendered).trim(),
        "",
        "man's warnings about the page"
    );
    for expected in ["METRICSCTL CHECK DUPLICATES", "--timeout", "EXIT STATUS"] {
        assert!(
            text.contains(expected),
            "{expected:?} not in the rendered page:\n{text}"
        );
    }
}

/// One checked example: where it is, what it needs, its commands and what each prints.
struct Example {
    file: PathBuf,
    line: usize,
    fixture: String,
    steps: Vec<Step>,
}

struct Step {
    line: usize,
    command: String,
    expected: Vec<String>,
}

fn examples_in(file: &Path) -> Vec<Example> {
    let text = read(file);
    let lines: Vec<&str> = text.lines().collect();
    let mut examples = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let marker = lines[index].trim().strip_prefix("<!-- doc-test:");
        index += 1;
        let Some(marker) = marker else { continue };
        let fixture = marker.trim_end_matches("-->").trim().to_string();
        assert_eq!(
            lines.get(index).map(|l| l.trim()),
            Some("```console"),
            "{}:{index}: a doc-test marker must stand just before a ```console block",
            file.display()
        );
        // A block inside a list item is indented; its lines are read without that indent.
        let indent = &lines[index][..lines[index].len() - lines[index].trim_start().len()];
        let mut example = Example {
            file: file.to_path_buf(),
            line: index,
            fixture,
            steps: Vec::new(),
        };
        index += 1;
        while index < lines.len() && lines[index].trim() != "```" {
            let line = lines[index].strip_prefix(indent).unwrap_or(lines[index]);
            if let Some(command) = line.strip_prefix("$ ") {
                example.steps.push(Step {
                    line: index + 1,
                    command: command.to_string(),
                    expected: Vec::new(),
                });
            } else {
                let step = example.steps.last_mut().unwrap_or_else(|| {
                    panic!(
                        "{}:{}: output before the first `$ ` command",
                        file.display(),
                        index + 1
                    )
                });
                step.expected.push(line.trim_end().to_string());
            }
            index += 1;
        }
        examples.push(example);
    }
    examples
}

/// Does one line match its pattern, where `[..]` stands for any text?
fn line_matches(pattern: &str, actual: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first)
        || actual.len() < first.len() + last.len()
        || !actual.ends_with(last)
    {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Do the lines match, where a line `...` stands for any number of lines?
fn lines_match(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            !actual.is_empty() && line_matches(first, &actual[0]) && lines_match(rest, &actual[1..])
        }
    }
}

#[test]
fn the_matcher_is_strict_where_the_example_is() {
    let lines = |text: &str| text.lines().map(str::to_string).collect::<Vec<_>>();
    assert!(line_matches("in [..] ms", "in 29 ms"));
    assert!(!line_matches("in [..] ms", "in 29 s"));
    assert!(line_matches("[..]", ""));
    assert!(!line_matches("OK", "OK "));
    assert!(line_matches("a [..] b [..] c", "a x b y c"));
    assert!(!line_matches("a [..] b [..] c", "a x c y b"));
    assert!(lines_match(&lines("a\n...\nd"), &lines("a\nb\nc\nd")));
    assert!(lines_match(&lines("a\n...\nd"), &lines("a\nd")));
    assert!(!lines_match(&lines("a\n...\nd"), &lines("a\nb\nc")));
    assert!(!lines_match(&lines("a\nb"), &lines("a\nb\nc")));
}

fn prepare(fixture: &str, db: &TestDatabase, dir: &Path) {
    let run = |args: &[&str]| {
        let output = db.metricsctl(args).current_dir(dir).output().unwrap();
        assert!(
            output.status.code().unwrap_or(3) < 2,
            "fixture {fixture}: metricsctl {args:?}: {}",
            stderr_of(&output)
        );
    };
    match fixture {
        "empty" => {}
        "migrated" => run(&["migrate"]),
        "sample" | "partitioned-sample" => {
            run(if fixture == "sample" {
                &["migrate"]
            } else {
                &["migrate", "--partitioned"]
            });
            run(&["generate", "--sample", "-o", "fixture.jsonl"]);
            run(&["replay", "--quiet", "fixture.jsonl"]);
            std::fs::remove_file(dir.join("fixture.jsonl")).unwrap();
        }
        other => panic!(
            "unknown doc-test fixture {other:?} (empty, migrated, sample, partitioned-sample)"
        ),
    }
}

/// Runs an example's commands in one shell, each one's output marked off, and compares.
fn run_example(example: &Example) -> Result<(), String> {
    let db = TestDatabase::new();
    let dir = tempfile::tempdir().unwrap();
    prepare(&example.fixture, &db, dir.path());
    const MARK: &str = "@@metricsctl-doc-test@@";
    let mut script = String::from("exec 2>&1\nstatus=0\n");
    for step in &example.steps {
        // `(exit $status)` hands the previous command's status on, for an `echo $?`.
        script.push_str(&format!(
            "echo {MARK}\n(exit $status); {}\nstatus=$?\n",
            step.command
        ));
    }
    let binary = assert_cmd::cargo::cargo_bin!("metricsctl");
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = metricsctl_shell(&script, dir.path(), &path, &db.url);
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    let separator = format!("{MARK}\n");
    let mut parts = printed.split(&separator).skip(1);
    for step in &example.steps {
        let actual: Vec<String> = parts
            .next()
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect();
        let mut expected = step.expected.clone();
        while expected.last().is_some_and(|l| l.is_empty()) {
            expected.pop();
        }
        if !lines_match(&expected, &actual) {
            return Err(format!(
                "{}:{}: `$ {}` printed\n{}\n-- where the example shows --\n{}",
                example.file.display(),
                step.line,
                step.command,
                actual.join("\n"),
                expected.join("\n")
            ));
        }
    }
    Ok(())
}

fn metricsctl_shell(script: &str, dir: &Path, path: &str, url: &str) -> std::process::Output {
    // The same environment the tests' metricsctl gets: none of the caller's database settings.
    let template = crate::support::metricsctl_process();
    let mut shell = std::process::Command::new("sh");
    shell.arg("-c").arg(script).current_dir(dir);
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => shell.env(name, value),
            None => shell.env_remove(name),
        };
    }
    shell
        .env("PATH", path)
        .env("DATABASE_URL", url)
        .env("COLUMNS", "200")
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

#[test]
fn the_examples_in_the_docs_are_what_the_binary_prints() {
    let examples: Vec<Example> = markdown_files()
        .iter()
        .flat_map(|f| examples_in(f))
        .collect();
    assert!(
        examples.len() >= 10,
        "only {} checked examples",
        examples.len()
    );
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = examples
            .iter()
            .map(|e| scope.spawn(move || run_example(e)))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap().err())
            .collect()
    });
    let where_: Vec<String> = examples
        .iter()
        .map(|e| format!("{}:{}", e.file.display(), e.line))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} examples ({where_:?}) differ:\n\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n\n")
    );
}
