//! libpq's password file (`~/.pgpass`, `PGPASSFILE`, the `passfile` keyword), read the way
//! libpq reads it: lines `hostname:port:database:username:password`; a field that is exactly
//! `*` matches anything; `\` escapes `:` and `\`; lines starting with `#` are comments; the first
//! matching line wins; a file that is not a plain file, or that group or others may access, is
//! ignored with a warning (its permissions should be 0600).

use std::fs;
use std::path::{Path, PathBuf};

/// What the password file said for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found {
        password: String,
        line: usize,
    },
    NotFound,
    /// The file exists but libpq would not read it; the warning says why.
    Ignored {
        warning: String,
    },
}

/// The connection the password is wanted for.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub user: &'a str,
}

/// Socket directories libpq builds count as "localhost" in the password file.
const DEFAULT_SOCKET_DIRECTORIES: [&str; 3] = ["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// Looks up a password in the file at `path` (a missing file finds nothing, silently).
pub fn lookup(path: &Path, wanted: &Wanted<'_>) -> Lookup {
    if wanted.database.is_empty() || wanted.user.is_empty() {
        return Lookup::NotFound;
    }
    let Ok(metadata) = fs::metadata(path) else {
        return Lookup::NotFound;
    };
    if !metadata.is_file() {
        return Lookup::Ignored {
            warning: format!(
                "WARNING: password file \"{}\" is not a plain file",
                path.display()
            ),
        };
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Lookup::Ignored {
                warning: format!(
                    "WARNING: password file \"{}\" has group or world access; permissions should \
                     be u=rw (0600) or less",
                    path.display()
                ),
            };
        }
    }
    let Ok(bytes) = fs::read(path) else {
        return Lookup::NotFound;
    };
    find(&String::from_utf8_lossy(&bytes), wanted)
}

/// The matching in itself, over the file's text.
pub fn find(text: &str, wanted: &Wanted<'_>) -> Lookup {
    let host = if wanted.host.is_empty() || DEFAULT_SOCKET_DIRECTORIES.contains(&wanted.host) {
        "localhost"
    } else {
        wanted.host
    };
    let port = wanted.port.to_string();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let rest = Some(line)
            .and_then(|l| field_matches(l, host))
            .and_then(|l| field_matches(l, &port))
            .and_then(|l| field_matches(l, wanted.database))
            .and_then(|l| field_matches(l, wanted.user));
        if let Some(password) = rest {
            return Lookup::Found {
                password: unescape_password(password),
                line: index + 1,
            };
        }
    }
    Lookup::NotFound
}

/// libpq's `pwdfMatchesString`, byte for byte: if the field at the start of `line` matches
/// `token`, what follows its `:`.
fn field_matches<'a>(line: &'a str, token: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let (bytes, token) = (line.as_bytes(), token.as_bytes());
    let (mut i, mut t) = (0, 0);
    while i < bytes.len() {
        let mut escaped = false;
        if bytes[i] == b'\\' {
            i += 1;
            escaped = true;
            if i == bytes.len() {
                return None;
            }
        }
        if bytes[i] == b':' && t == token.len() && !escaped {
            return Some(&line[i + 1..]);
        }
        if t == token.len() || bytes[i] != token[t] {
            return None;
        }
        i += 1;
        t += 1;
    }
    None
}

/// The password field: up to the first unescaped `:`, with `\` escapes removed.
fn unescape_password(field: &str) -> String {
    let mut password = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match c {
            ':' => break,
            '\\' => match chars.next() {
                Some(next) => password.push(next),
                None => password.push('\\'),
            },
            c => password.push(c),
        }
    }
    password
}

/// Where libpq looks: `passfile`, then `PGPASSFILE`, then `~/.pgpass`.
pub fn location(
    passfile: Option<&Path>,
    pgpassfile: Option<&str>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    passfile
        .map(Path::to_path_buf)
        .or_else(|| pgpassfile.map(PathBuf::from))
        .or_else(|| home.map(|home| home.join(".pgpass")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted<'a>(host: &'a str, port: u16, database: &'a str, user: &'a str) -> Wanted<'a> {
        Wanted {
            host,
            port,
            database,
            user,
        }
    }

    #[test]
    fn the_first_matching_line_wins_and_wildcards_match_anything() {
        let file = "# comment\n\
                    db.internal:5432:metrics:metrics:first\n\
                    *:5432:metrics:metrics:second\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            find(file, &wanted("db.internal", 5432, "metrics", "metrics")),
            Lookup::Found {
                password: "first".into(),
                line: 2
            }
        );
        assert_eq!(
            find(file, &wanted("other", 5432, "metrics", "metrics")),
            Lookup::Found {
                password: "second".into(),
                line: 3
            }
        );
        assert_eq!(
            find(file, &wanted("other", 6432, "x", "y")),
            Lookup::Found {
                password: "fallback".into(),
                line: 4
            }
        );
        assert_eq!(
            find("h:5432:db:u:pw\n", &wanted("h", 5433, "db", "u")),
            Lookup::NotFound
        );
    }

    #[test]
    fn backslash_escapes_colons_and_backslashes_in_every_field() {
        let file = "h\\:x:5432:d\\\\b:u:p\\:a\\\\ss:ignored\n";
        assert_eq!(
            find(file, &wanted("h:x", 5432, "d\\b", "u")),
            Lookup::Found {
                password: "p:a\\ss".into(),
                line: 1
            }
        );
        // An escaped star is a literal star, not a wildcard.
        assert_eq!(
            find("\\*:5432:db:u:pw\n", &wanted("h", 5432, "db", "u")),
            Lookup::NotFound
        );
        assert_eq!(
            find("\\*:5432:db:u:pw\n", &wanted("*", 5432, "db", "u")),
            Lookup::Found {
                password: "pw".into(),
                line: 1
            }
        );
    }

    #[test]
    fn a_partial_field_or_crlf_line_ends_do_not_confuse_matching() {
        assert_eq!(
            find(
                "host:5432:db:user:pw\r\n",
                &wanted("host", 5432, "db", "user")
            ),
            Lookup::Found {
                password: "pw".into(),
                line: 1
            }
        );
        assert_eq!(
            find("hos:5432:db:user:pw\n", &wanted("host", 5432, "db", "user")),
            Lookup::NotFound
        );
        assert_eq!(
            find(
                "hostx:5432:db:user:pw\n",
                &wanted("host", 5432, "db", "user")
            ),
            Lookup::NotFound
        );
    }

    #[test]
    fn sockets_in_the_default_directory_match_localhost() {
        assert_eq!(
            find(
                "localhost:5432:db:u:pw\n",
                &wanted("/var/run/postgresql", 5432, "db", "u")
            ),
            Lookup::Found {
                password: "pw".into(),
                line: 1
            }
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_ignored_with_libpqs_warning() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        fs::write(&path, "*:*:*:*:secret\n").unwrap();
        let who = wanted("h", 5432, "db", "u");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        match lookup(&path, &who) {
            Lookup::Ignored { warning } => assert!(warning.contains("0600"), "{warning}"),
            other => panic!("{other:?}"),
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            lookup(&path, &who),
            Lookup::Found {
                password: "secret".into(),
                line: 1
            }
        );
        assert_eq!(lookup(&dir.path().join("missing"), &who), Lookup::NotFound);
        assert!(matches!(lookup(dir.path(), &who), Lookup::Ignored { .. }));
    }
}
