//! `replay --rejects FILE`: every rejected record, verbatim, ready to fix and replay.
//!
//! The file is never one of the inputs (checked by device and inode before anything is opened
//! for writing, so hard and symbolic links count), and a regular file is replaced only by a
//! complete one: records go to a temporary file beside it, renamed over it when the replay
//! finished. A device or a pipe (`/dev/stdout`, a FIFO) is written as the records come.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tempfile::NamedTempFile;

/// A file's identity: device and inode.
pub type FileIdentity = (u64, u64);

pub struct RejectsFile {
    path: PathBuf,
    target: Target,
    /// Whether the CSV header has been written (a CSV rejects file starts with it).
    header_written: bool,
}

enum Target {
    Replace(BufWriter<NamedTempFile>),
    Stream(BufWriter<File>),
}

impl RejectsFile {
    /// Prepares the rejects file, refusing a path that is one of the inputs.
    pub fn create(path: &Path, inputs: &[(String, Option<FileIdentity>)]) -> anyhow::Result<Self> {
        let existing = match std::fs::metadata(path) {
            Ok(metadata) => Some(metadata),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => {
                return Err(error).with_context(|| format!("cannot use {}", path.display()));
            }
        };
        if let Some(metadata) = &existing {
            let identity = (metadata.dev(), metadata.ino());
            if let Some((name, _)) = inputs.iter().find(|(_, id)| *id == Some(identity)) {
                bail!(
                    "--rejects {} is the input {name} (the same file): writing rejects there would \
                     destroy it. Name a new file for the rejects, e.g. --rejects rejects.jsonl",
                    path.display()
                );
            }
            if metadata.is_dir() {
                bail!(
                    "--rejects {} is a directory; name a file in it",
                    path.display()
                );
            }
        }
        let target = match &existing {
            Some(metadata) if !metadata.is_file() => Target::Stream(BufWriter::new(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .with_context(|| format!("cannot open {} for writing", path.display()))?,
            )),
            _ => {
                let directory = match path.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent,
                    _ => Path::new("."),
                };
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let temporary = tempfile::Builder::new()
                    .prefix(&format!(".{name}."))
                    .suffix(".partial")
                    .tempfile_in(directory)
                    .with_context(|| {
                        format!(
                            "cannot create a file in {} for --rejects",
                            directory.display()
                        )
                    })?;
                let mode = existing.map(|m| m.permissions().mode()).unwrap_or(0o644);
                temporary
                    .as_file()
                    .set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
                    .with_context(|| format!("cannot prepare {}", path.display()))?;
                Target::Replace(BufWriter::new(temporary))
            }
        };
        Ok(RejectsFile {
            path: path.to_path_buf(),
            target,
            header_written: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record (after the CSV header, the first time one is given).
    pub fn write(&mut self, csv_header: Option<&[u8]>, record: &[u8]) -> io::Result<()> {
        let writer: &mut dyn Write = match &mut self.target {
            Target::Replace(writer) => writer,
            Target::Stream(writer) => writer,
        };
        if !self.header_written
            && let Some(header) = csv_header
        {
            writer.write_all(header)?;
            writer.write_all(b"\n")?;
        }
        self.header_written = true;
        writer.write_all(record)?;
        writer.write_all(b"\n")
    }

    /// Makes the file complete: flushed, synced and put in place.
    pub fn finish(self) -> io::Result<()> {
        match self.target {
            Target::Stream(mut writer) => writer.flush(),
            Target::Replace(writer) => {
                let temporary = writer.into_inner().map_err(|e| e.into_error())?;
                temporary.as_file().sync_all()?;
                temporary.persist(&self.path).map_err(|e| e.error)?;
                Ok(())
            }
        }
    }

    // Dropped without `finish`, the temporary file is removed: an earlier complete rejects file
    // stays as it was.
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(path: &Path) -> Option<FileIdentity> {
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }

    #[test]
    fn an_input_is_refused_as_rejects_file_even_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("t.jsonl");
        std::fs::write(&input, "precious\n").unwrap();
        let hard = dir.path().join("hard.jsonl");
        std::fs::hard_link(&input, &hard).unwrap();
        let soft = dir.path().join("soft.jsonl");
        std::os::unix::fs::symlink(&input, &soft).unwrap();
        let inputs = vec![("t.jsonl".to_string(), identity(&input))];
        for path in [&input, &hard, &soft] {
            let error = RejectsFile::create(path, &inputs).err().expect("refused");
            assert!(
                error.to_string().contains("is the input t.jsonl"),
                "{error}"
            );
        }
        assert_eq!(std::fs::read_to_string(&input).unwrap(), "precious\n");
    }

    #[test]
    fn a_previous_rejects_file_is_replaced_only_by_a_complete_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rejects.jsonl");
        std::fs::write(&path, "old complete\n").unwrap();
        let mut unfinished = RejectsFile::create(&path, &[]).unwrap();
        unfinished.write(None, b"new 1").unwrap();
        drop(unfinished);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old complete\n");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "the temporary file is removed");

        let mut finished = RejectsFile::create(&path, &[]).unwrap();
        finished.write(Some(b"a,b"), b"1,2").unwrap();
        finished.write(Some(b"a,b"), b"3,4").unwrap();
        finished.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1,2\n3,4\n");
    }

    #[test]
    fn a_full_device_is_an_error_not_a_success() {
        let mut full = RejectsFile::create(Path::new("/dev/full"), &[]).unwrap();
        let written = full.write(None, b"a rejected line");
        assert!(written.is_err() || full.finish().is_err());
    }
}
