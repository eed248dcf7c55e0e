//! The usage journal: every settlement the ledger adds is first appended, as one line and with one
//! `write(2)`, to a file in the data directory, so a process killed before the `usage.flush` job
//! wrote its ledger to the store loses none of it: the next start replays what it finds.
//!
//! Files are `usage-<instance>-<sequence>.journal` (`0600`, in the `0700` data directory). Each
//! running instance holds an exclusive `flock` on its current file and on the rotated ones it has
//! not yet deleted; a flush rotates (closes the current file, opens the next), writes the ledger
//! to the store, and deletes the rotated files only after the store accepted them (a failed
//! flush keeps them for the next). At startup an instance locks, reads and adopts every journal
//! file no running process holds (several instances may share one data directory), writes it to
//! the store, then deletes it.
//!
//! Durability: no `fsync` per record. A write is in the kernel's page cache when `write(2)`
//! returns, so a killed process (kill -9, a panic, an OOM kill) loses nothing; a power loss or an
//! operating-system crash may lose what the kernel had not written back yet. A line cut short
//! (a write torn by such a crash) is skipped with a warning.
//!
//! Counted once: a flush records, in the transaction that adds its rows, the names of the files
//! they cover (`usage_batches`). A process killed after that commit but before it deleted those
//! files leaves them behind; the next start finds their marks and deletes them uncounted. A
//! flush whose commit failed asks the store, before retrying, whether it landed anyway. Marks
//! are dropped by the next flush (their files are gone by then), or after 30 days when their
//! instance died first; a file left unadopted for longer would be counted again.
//!
//! A line is `u1` and ten tab-separated fields — UTC day number, virtual key id, user id, backend,
//! model (empty for none; `%`, tab, CR and LF percent-escaped), requests, input, output and cached
//! input tokens, cost in micro-dollars — then a newline. No secret is written.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ledger::{Amounts, RowKey};

/// The version tag that opens every line.
const TAG: &str = "u1";
/// Fields of a line, the tag included.
const FIELDS: usize = 11;

/// A journal file could not be created, locked, read or deleted, or the store could not say
/// which adopted files it already counted.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file system refused.
    #[error("usage journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The store could not be asked.
    #[error("usage journal: could not ask the store which journal files it counted: {0}")]
    Store(#[from] crate::store::StoreError),
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A locked journal file.
#[derive(Debug)]
pub(crate) struct Held {
    path: PathBuf,
    file: File,
}

impl Held {
    /// The file's name without `.journal`: the mark a flush records with the file's records.
    pub(crate) fn id(&self) -> String {
        let name = self.path.file_stem().and_then(|n| n.to_str());
        name.unwrap_or_default().to_owned()
    }

    /// Deletes the file (the lock goes with the handle, after).
    pub(crate) fn delete(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not delete a usage journal file");
        }
    }
}

/// This instance's journal: the current file and the rotated ones not yet in the store.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    instance: String,
    sequence: u64,
    /// `None` after a file could not be opened (retried at the next rotation).
    current: Option<Held>,
    /// The current file holds records.
    written: bool,
    /// Rotated or adopted files whose records wait for the store, oldest first.
    closed: Vec<Held>,
    /// A failed write was logged (until the next rotation).
    warned: bool,
}

/// A journal file no running process held, found and locked by a start.
#[derive(Debug)]
pub(crate) struct Adopted {
    pub(crate) file: Held,
    /// Its records, summed per row.
    pub(crate) rows: HashMap<RowKey, Amounts>,
    /// How many records.
    pub(crate) records: usize,
}

impl Journal {
    /// Opens this instance's journal in `dir` (created `0700` if missing) and locks every
    /// journal file there that no running process holds: they are returned with their records,
    /// for [`Journal::adopt`] (or deletion, when the store already counted them).
    pub(crate) fn open(dir: &Path) -> Result<(Journal, Vec<Adopted>), JournalError> {
        crate::store::private::private_dir(dir).map_err(at(dir))?;
        let id = crate::secret::random_bytes::<8>().map_err(at(dir))?;
        let instance = crate::store::hex(&id);
        let mut journal = Journal {
            dir: dir.to_owned(),
            instance,
            sequence: 0,
            current: None,
            written: false,
            closed: Vec::new(),
            warned: false,
        };
        journal.current = Some(journal.next_file()?);
        let found = journal.unheld()?;
        Ok((journal, found))
    }

    /// A new file, created and locked by this instance, under the next sequence number.
    fn next_file(&mut self) -> Result<Held, JournalError> {
        loop {
            self.sequence += 1;
            let name = format!("usage-{}-{:06}.journal", self.instance, self.sequence);
            let path = self.dir.join(name);
            let mut opts = OpenOptions::new();
            opts.append(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                opts.mode(0o600);
            }
            let file = match opts.open(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                other => other.map_err(at(&path))?,
            };
            // A starting instance may have locked (and will delete) it before this one could.
            if lock(&file, &path)? && still_there(&file, &path) {
                return Ok(Held { path, file });
            }
        }
    }

    /// Locks and reads every journal file of the directory but this instance's.
    fn unheld(&self) -> Result<Vec<Adopted>, JournalError> {
        let mut found = Vec::new();
        let mine = format!("usage-{}-", self.instance);
        for entry in std::fs::read_dir(&self.dir).map_err(at(&self.dir))? {
            let path = entry.map_err(at(&self.dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.starts_with("usage-") || !name.ends_with(".journal") || name.starts_with(&mine)
            {
                continue;
            }
            let mut file = match File::open(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                other => other.map_err(at(&path))?,
            };
            // Held by a running instance, or already adopted and deleted by another start.
            if !lock(&file, &path)? || !still_there(&file, &path) {
                continue;
            }
            let mut text = Vec::new();
            file.read_to_end(&mut text).map_err(at(&path))?;
            let mut rows = HashMap::new();
            let records = read_records(&text, &path, &mut rows);
            found.push(Adopted {
                file: Held { path, file },
                rows,
                records,
            });
        }
        Ok(found)
    }

    /// Takes an adopted file's records in: the file waits with the rotated ones for the store.
    pub(crate) fn adopt(&mut self, file: Held) {
        self.closed.push(file);
    }

    /// Appends `line` (one record) with one write.
    pub(crate) fn append(&mut self, line: &[u8]) {
        let Some(current) = &self.current else { return };
        match (&current.file).write_all(line) {
            Ok(()) => self.written = true,
            Err(e) if !self.warned => {
                self.warned = true;
                tracing::warn!(path = %current.path.display(), error = %e, "could not append to the usage journal: a crash before the next flush loses this usage");
            }
            Err(_) => {}
        }
    }

    /// Closes the current file and opens the next, when the current one holds records; returns
    /// how many closed files cover the ledger as it is now (for [`Journal::release`]).
    pub(crate) fn rotate(&mut self) -> usize {
        if self.written || self.current.is_none() {
            self.closed.extend(self.current.take());
            self.written = false;
            self.warned = false;
            match self.next_file() {
                Ok(next) => self.current = Some(next),
                Err(e) => {
                    tracing::warn!(error = %e, "could not open a new usage journal file: usage is journaled again after the next flush that can")
                }
            }
        }
        self.closed.len()
    }

    /// The marks of the `covered` oldest closed files.
    pub(crate) fn ids(&self, covered: usize) -> Vec<String> {
        self.closed.iter().take(covered).map(Held::id).collect()
    }

    /// The `covered` oldest closed files, to delete: the store has their records.
    pub(crate) fn release(&mut self, covered: usize) -> Vec<Held> {
        let n = covered.min(self.closed.len());
        self.closed.drain(..n).collect()
    }
}

impl Drop for Journal {
    /// A current file without records is removed; anything else stays for the next start.
    fn drop(&mut self) {
        if !self.written
            && let Some(current) = self.current.take()
        {
            current.delete();
        }
    }
}

/// Takes `file`'s exclusive lock without waiting: false when another handle holds it.
fn lock(file: &File, path: &Path) -> Result<bool, JournalError> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(at(path)(e)),
    }
}

/// True when `path` still names the open `file` (not deleted or replaced since it was opened).
fn still_there(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// The line of one record.
pub(crate) fn line(key: &RowKey, a: &Amounts) -> String {
    format!(
        "{TAG}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
        key.day,
        escape(key.key.as_deref().unwrap_or("")),
        escape(key.user.as_deref().unwrap_or("")),
        escape(&key.backend),
        escape(&key.model),
        a.requests,
        a.input,
        a.output,
        a.cached,
        a.cost_micros,
    )
}

/// Adds the records of a journal file's `text` to `rows`; returns how many. A line that cannot
/// be read (a torn last line, damage) is skipped with a warning.
pub(crate) fn read_records(text: &[u8], path: &Path, rows: &mut HashMap<RowKey, Amounts>) -> usize {
    let mut records = 0;
    let mut lines = text.split(|b| *b == b'\n').peekable();
    while let Some(l) = lines.next() {
        let last = lines.peek().is_none();
        if last && l.is_empty() {
            break;
        }
        match std::str::from_utf8(l)
            .ok()
            .filter(|_| !last)
            .and_then(parse)
        {
            Some((key, amounts)) => {
                rows.entry(key).or_default().add(&amounts);
                records += 1;
            }
            None => tracing::warn!(
                path = %path.display(),
                line = records + 1,
                torn = last,
                "skipped an unreadable usage journal line"
            ),
        }
    }
    records
}

fn parse(l: &str) -> Option<(RowKey, Amounts)> {
    let f: Vec<&str> = l.split('\t').collect();
    if f.len() != FIELDS || f[0] != TAG {
        return None;
    }
    let n = |i: usize| f[i].parse::<u64>().ok();
    let id = |i: usize| Some(unescape(f[i])?).map(|s| (!s.is_empty()).then(|| Arc::from(s)));
    let key = RowKey {
        day: f[1].parse().ok()?,
        key: id(2)?,
        user: id(3)?,
        backend: Arc::from(unescape(f[4])?),
        model: Arc::from(unescape(f[5])?),
    };
    let amounts = Amounts {
        requests: n(6)?,
        input: n(7)?,
        output: n(8)?,
        cached: n(9)?,
        cost_micros: n(10)?,
    };
    Some((key, amounts))
}

fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['%', '\t', '\n', '\r']) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 6);
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\t' => out.push_str("%09"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            c => out.push(c),
        }
    }
    out.into()
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let c = match rest.get(i + 1..i + 3)? {
            "25" => '%',
            "09" => '\t',
            "0A" => '\n',
            "0D" => '\r',
            _ => return None,
        };
        out.push(c);
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
pub(super) mod tests;
