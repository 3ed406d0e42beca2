//! Input files: opened up front (so a missing file stops the run before anything is written),
//! read through a byte counter (for the progress bar) and gunzipped when they start with gzip's
//! magic bytes, whatever their name.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use flate2::bufread::MultiGzDecoder;

const READ_BUFFER: usize = 256 * 1024;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One input named on the command line: a file, or `-` for stdin.
pub struct InputFile {
    /// How messages name it.
    pub name: String,
    /// Its size in bytes, when known (not for stdin or pipes).
    pub size: Option<u64>,
    /// Device and inode, so an output can be refused when it is this input.
    pub identity: Option<(u64, u64)>,
    source: Option<Box<dyn Read + Send>>,
}

impl std::fmt::Debug for InputFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InputFile({})", self.name)
    }
}

/// Opens every input, failing on the first that cannot be read.
pub fn open_inputs(specs: &[String]) -> anyhow::Result<Vec<InputFile>> {
    if specs.iter().filter(|s| s.as_str() == "-").count() > 1 {
        bail!("stdin (-) can be named only once");
    }
    specs
        .iter()
        .map(|spec| {
            if spec == "-" {
                // stdin may be a redirected file (`- < t.jsonl`): it has an identity too.
                let identity = nix::sys::stat::fstat(std::io::stdin())
                    .ok()
                    .map(|stat| (stat.st_dev, stat.st_ino));
                return Ok(InputFile {
                    name: "<stdin>".to_string(),
                    size: None,
                    identity,
                    source: Some(Box::new(io::stdin())),
                });
            }
            let path = PathBuf::from(spec);
            let file = File::open(&path).with_context(|| format!("cannot open {spec}"))?;
            let metadata = file
                .metadata()
                .with_context(|| format!("cannot read {spec}"))?;
            if metadata.is_dir() {
                bail!("{spec} is a directory, not an event file");
            }
            Ok(InputFile {
                name: spec.clone(),
                size: metadata.is_file().then_some(metadata.len()),
                identity: Some((metadata.dev(), metadata.ino())),
                source: Some(Box::new(file)),
            })
        })
        .collect()
}

impl InputFile {
    /// For an input that can stall (stdin, a pipe: no size), reading stops with an error once
    /// `stopped` says so, instead of waiting for bytes that may never come (the run's --timeout,
    /// a signal). Regular files never stall and are left as they are.
    pub fn stoppable(mut self, stopped: fn() -> bool) -> InputFile {
        if self.size.is_none()
            && let Some(source) = self.source.take()
        {
            self.source = Some(Box::new(StoppableReader::new(source, stopped)));
        }
        self
    }

    /// The decoded byte stream, counting raw bytes read into `bytes_read`, and whether it is
    /// gzip (whose read errors mean a cut-off or corrupt file).
    pub fn into_reader(
        mut self,
        bytes_read: Arc<AtomicU64>,
    ) -> io::Result<(Box<dyn BufRead + Send>, bool)> {
        let source = self.source.take().expect("an input is read once");
        let mut raw = BufReader::with_capacity(
            READ_BUFFER,
            CountingReader {
                inner: source,
                bytes_read,
            },
        );
        let is_gzip = raw.fill_buf()?.starts_with(&GZIP_MAGIC);
        if is_gzip {
            Ok((
                Box::new(BufReader::with_capacity(
                    READ_BUFFER,
                    MultiGzDecoder::new(raw),
                )),
                true,
            ))
        } else {
            Ok((Box::new(raw), false))
        }
    }
}

/// Reads its source on a thread of its own, so the reader can give up waiting.
struct StoppableReader {
    chunks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    pending: Vec<u8>,
    offset: usize,
    stopped: fn() -> bool,
}

impl StoppableReader {
    fn new(mut source: Box<dyn Read + Send>, stopped: fn() -> bool) -> StoppableReader {
        let (sender, chunks) = std::sync::mpsc::sync_channel(4);
        std::thread::spawn(move || {
            loop {
                let mut chunk = vec![0u8; READ_BUFFER];
                match source.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        chunk.truncate(n);
                        if sender.send(Ok(chunk)).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = sender.send(Err(e));
                        break;
                    }
                }
            }
        });
        StoppableReader {
            chunks,
            pending: Vec::new(),
            offset: 0,
            stopped,
        }
    }
}

impl Read for StoppableReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.offset == self.pending.len() {
            match self
                .chunks
                .recv_timeout(std::time::Duration::from_millis(50))
            {
                Ok(chunk) => {
                    self.pending = chunk?;
                    self.offset = 0;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if (self.stopped)() => {
                    return Err(io::Error::other(
                        "the run was stopped while waiting for input",
                    ));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        let n = buf.len().min(self.pending.len() - self.offset);
        buf[..n].copy_from_slice(&self.pending[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

struct CountingReader {
    inner: Box<dyn Read + Send>,
    bytes_read: Arc<AtomicU64>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn read_all(path: &std::path::Path) -> io::Result<String> {
        let input = open_inputs(&[path.display().to_string()])
            .unwrap()
            .pop()
            .unwrap();
        let mut text = String::new();
        input
            .into_reader(Arc::new(AtomicU64::new(0)))?
            .0
            .read_to_string(&mut text)?;
        Ok(text)
    }

    #[test]
    fn gzip_is_recognised_by_its_magic_bytes_not_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, gzip(b"line one\nline two\n")).unwrap();
        assert_eq!(read_all(&path).unwrap(), "line one\nline two\n");
    }

    #[test]
    fn a_truncated_gzip_stream_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.gz");
        let compressed = gzip(&b"0123456789abcdef\n".repeat(1000));
        std::fs::write(&path, &compressed[..compressed.len() / 2]).unwrap();
        assert!(read_all(&path).is_err());
    }

    #[test]
    fn missing_files_and_directories_are_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.jsonl").display().to_string();
        let err = open_inputs(std::slice::from_ref(&missing)).unwrap_err();
        assert!(format!("{err:#}").contains(&missing));
        let err = open_inputs(&[dir.path().display().to_string()]).unwrap_err();
        assert!(err.to_string().contains("directory"));
        assert!(open_inputs(&["-".to_string(), "-".to_string()]).is_err());
    }
}
