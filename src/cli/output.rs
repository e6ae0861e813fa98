//! Where a command's results go: a file or folder named by `--out`, or standard output.
//!
//! `--out` is checked before the command does any work: the file is created (or opened for
//! writing), so a path that cannot be written is refused, exit 1, before a run is recorded or
//! anything else changes. A file or folder the command created is removed again if the command
//! fails before writing it; an existing file keeps its content until the new one is written.
//!
//! Standard output is written here too, through its lock (`stdout`, `line` and the `outln!`
//! macro): a closed pipe (`feerecon ... | head -1` once `head` has gone) ends the command quietly
//! with exit 0, as Unix tools do, instead of a panic.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{CliError, user_err};

/// An `--out` file, opened before the work and written after it.
pub(super) struct OutFile {
    flag: &'static str,
    path: PathBuf,
    file: File,
    /// The file did not exist: it is removed when the command fails before writing it.
    ours: bool,
}

impl OutFile {
    /// Creates `path`, or opens it for writing without changing it; `flag` names the option in
    /// the error.
    pub(super) fn open(flag: &'static str, path: &Path) -> Result<Self, CliError> {
        let refused = |why: String| user_err(format!("{flag} {}: cannot write there: {why}", path.display()));
        if path.is_dir() {
            return Err(refused("it is a folder; name a file".into()));
        }
        let ours = std::fs::symlink_metadata(path).is_err();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| refused(e.to_string()))?;
        Ok(Self { flag, path: path.to_owned(), file, ours })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's content with `bytes` (a device or a named pipe, e.g. `--out
    /// /dev/stdout`, is written as it is).
    pub(super) fn write(mut self, bytes: &[u8]) -> Result<(), CliError> {
        let regular = self.file.metadata().is_ok_and(|m| m.is_file());
        let written = (if regular { self.file.set_len(0) } else { Ok(()) })
            .and_then(|()| self.file.write_all(bytes))
            .and_then(|()| if regular { self.file.sync_all() } else { Ok(()) });
        written.map_err(|e| user_err(format!("{} {}: {e}", self.flag, self.path.display())))?;
        self.ours = false;
        Ok(())
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        if self.ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// An `--out` folder of named files (`ledger export`), created and its files opened before the
/// work.
pub(super) struct OutDir {
    dir: PathBuf,
    /// The folder did not exist: it is removed (if empty) when the command fails.
    ours: bool,
    files: Vec<OutFile>,
}

impl OutDir {
    pub(super) fn open(flag: &'static str, dir: &Path, names: &[&str]) -> Result<Self, CliError> {
        let ours = std::fs::symlink_metadata(dir).is_err();
        std::fs::create_dir_all(dir)
            .map_err(|e| user_err(format!("{flag} {}: cannot create the folder: {e}", dir.display())))?;
        let mut out = Self { dir: dir.to_owned(), ours, files: Vec::with_capacity(names.len()) };
        for name in names {
            out.files.push(OutFile::open(flag, &dir.join(name))?);
        }
        Ok(out)
    }

    /// Writes each file its content, in the order of the names given to `open`.
    pub(super) fn write(mut self, contents: &[&[u8]]) -> Result<(), CliError> {
        let files = std::mem::take(&mut self.files);
        for (file, bytes) in files.into_iter().zip(contents) {
            file.write(bytes)?;
        }
        self.ours = false;
        Ok(())
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        // The files first (those we created are removed), then the folder if it is ours and empty.
        self.files.clear();
        if self.ours {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// A report's destination: `--out FILE`, checked at once, or standard output.
pub(super) enum Sink {
    File(OutFile),
    Stdout,
}

impl Sink {
    pub(super) fn open(out: Option<&Path>) -> Result<Self, CliError> {
        Ok(match out {
            Some(path) => Sink::File(OutFile::open("--out", path)?),
            None => Sink::Stdout,
        })
    }

    /// Writes the report; returns the file's path when it went to one (for the caller's note).
    pub(super) fn write(self, bytes: &[u8]) -> Result<Option<PathBuf>, CliError> {
        match self {
            Sink::File(f) => {
                let path = f.path().to_owned();
                f.write(bytes)?;
                Ok(Some(path))
            }
            Sink::Stdout => {
                stdout(bytes)?;
                Ok(None)
            }
        }
    }
}

/// Writes `bytes` to standard output. A closed pipe is `CliError::Closed`: the command ends there.
pub(super) fn stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).map_err(stdout_failed)
}

/// Writes a line to standard output (`outln!`), as `stdout` does.
pub(super) fn line(args: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush()).map_err(stdout_failed)
}

fn stdout_failed(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::Closed
    } else {
        CliError::Internal(anyhow::Error::new(e).context("Failed to write to standard output"))
    }
}
