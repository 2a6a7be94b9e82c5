//! The alert journal as the sinks read it: complete JSON lines after a per-sink cursor (a byte
//! offset in a file known by its device and inode, kept in `<state_dir>/<sink>.cursor`), so each
//! sink delivers at least once and resumes where it stopped after a restart. The reader follows
//! its file, not its name, across rotation: when logrotate (or camwatch's own size rotation)
//! moves the journal, the reader finishes the moved file and then starts the new one at its
//! first line, so a sink delivers exactly what it had not; after a restart it finds the moved
//! file among the journal's siblings (`alerts.jsonl.1`, `alerts.jsonl-20261204`) by its inode.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

/// Longest journal line read. A longer complete line is skipped as malformed, so one line never
/// holds more than this in memory whatever is in the file.
pub const MAX_LINE: usize = 1 << 20;

/// Most bytes of records one batch holds (besides its record count), so a batch of long lines
/// stays bounded too. A batch always holds at least one record.
pub const MAX_BATCH_BYTES: usize = 8 << 20;

/// `firing` or `resolved`; a record without `status` is firing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert from the journal: the fields the sinks use, and the line as written. Unknown fields
/// are ignored; missing or `null` fields are empty. A line without `rule.id`, with a field of
/// the wrong type or with a `status` other than `firing` or `resolved` is malformed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Record {
    /// The journal line as written, without its newline: what webhooks and syslog carry.
    #[serde(skip)]
    pub line: String,
    /// Byte offset just past this record's line: the cursor to commit once it is delivered.
    #[serde(skip)]
    pub end: u64,
    #[serde(deserialize_with = "nullable")]
    pub id: String,
    /// Identifies one alert across its firing and resolved records.
    #[serde(deserialize_with = "nullable")]
    pub fingerprint: String,
    #[serde(deserialize_with = "nullable")]
    pub status: Status,
    #[serde(deserialize_with = "nullable")]
    pub timestamp: String,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub rule: RecordRule,
    #[serde(deserialize_with = "nullable")]
    pub category: String,
    #[serde(deserialize_with = "nullable")]
    pub summary: String,
    #[serde(deserialize_with = "nullable")]
    pub key: String,
    #[serde(deserialize_with = "nullable")]
    pub device: RecordDevice,
    pub dest_ip: Option<String>,
    pub dest_port: Option<u16>,
    pub proto: Option<String>,
    pub dest_name: Option<String>,
    pub community_id: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub evidence: RecordEvidence,
    #[serde(deserialize_with = "nullable")]
    pub sensor: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RecordRule {
    #[serde(deserialize_with = "nullable")]
    pub id: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub severity: String,
    #[serde(deserialize_with = "nullable")]
    pub description: String,
    #[serde(deserialize_with = "nullable")]
    pub references: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RecordDevice {
    pub ip: Option<String>,
    pub mac: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RecordEvidence {
    pub pcap: Option<String>,
    pub sha256: Option<String>,
    /// The matched values, by field name.
    #[serde(default)]
    pub values: BTreeMap<String, serde_json::Value>,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Record {
    /// A journal line (without its newline) as a record; `None` when it is not a JSON object of
    /// the record's shape or has no `rule.id`.
    pub fn parse(line: &str) -> Option<Self> {
        let line = line.trim_end_matches(['\r', ' ', '\t']);
        if !line.trim_start().starts_with('{') {
            return None;
        }
        let mut record: Record = serde_json::from_str(line).ok()?;
        if record.rule.id.is_empty() {
            return None;
        }
        record.line = line.to_string();
        Some(record)
    }

    /// The alert's identity: `fingerprint`, or for a record without one, its rule, device and key
    /// (so its resolution still finds it).
    pub fn fingerprint(&self) -> Cow<'_, str> {
        if self.fingerprint.is_empty() {
            let ip = self.device.ip.as_deref().unwrap_or_default();
            Cow::Owned(format!("{}|{ip}|{}", self.rule.id, self.key))
        } else {
            Cow::Borrowed(&self.fingerprint)
        }
    }
}

/// Records read after the cursor.
#[derive(Debug, Default)]
pub struct Batch {
    /// The cursor the batch was read from.
    pub start: u64,
    /// Records in journal order, each with its `end` offset.
    pub records: Vec<Record>,
    /// Offset just past the last complete line read (records and malformed lines alike): the
    /// cursor once the whole batch is delivered.
    pub end: u64,
    /// Complete lines skipped because they are not records.
    pub malformed: u64,
    /// Offset of the first of them, for the log.
    pub first_malformed: Option<u64>,
}

impl Batch {
    /// Whether the batch reaches no further than its start: nothing new to deliver or skip.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.end == self.start
    }
}

/// One sink's reader of the journal, with its cursor.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    cursor_path: PathBuf,
    sink: String,
    /// Committed: everything before it was delivered (or skipped).
    offset: u64,
    /// Complete lines in `offset..scanned`, for the backlog without rescanning the file.
    ahead: u64,
    scanned: u64,
    /// End offsets of the lines the last batch read, to keep `ahead` on commit.
    read_ends: VecDeque<u64>,
    /// The file being read and its (device, inode): the journal's path names it until a
    /// rotation moves it.
    current: Option<(File, (u64, u64))>,
    /// The file the saved cursor belongs to, until it is opened: (device, inode) and a hash of
    /// its first line (an inode number is reused once its file is deleted).
    saved_id: Option<((u64, u64), u64)>,
}

/// FNV-1a of a file's first line (up to 4 KiB; 0 while it has none): with the inode, what tells
/// the cursor's file from a later one that got the same inode number.
fn head_hash_at(file: &File) -> u64 {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 4096];
    let n = file.read_at(&mut buf, 0).unwrap_or(0);
    buf.truncate(n);
    match buf.iter().position(|b| *b == b'\n') {
        Some(end) => buf[..=end]
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)),
        None => 0,
    }
}

fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// A sibling of `path` (same directory, a name starting with the journal's) that is the file
/// `id`: where a rotation moved the journal.
fn find_moved(path: &Path, id: (u64, u64)) -> Option<PathBuf> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name()?.to_string_lossy().into_owned();
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let candidate = e.file_name().to_string_lossy().into_owned();
        (candidate.starts_with(&name) && candidate != name)
            .then(|| e.path())
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| file_id(&m) == id))
    })
}

enum Line {
    /// A line ending in `\n`, of this many bytes with the newline.
    Complete(u64),
    /// The start of a line still being written.
    Partial,
    Eof,
}

/// Reads one line into `buf` (keeping at most `MAX_LINE + 1` bytes of it).
fn next_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Line> {
    buf.clear();
    let mut len = 0u64;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(if len == 0 { Line::Eof } else { Line::Partial });
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = (MAX_LINE + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room)]);
        r.consume(take);
        len += take as u64;
        if done {
            return Ok(Line::Complete(len));
        }
    }
}

/// A complete line (with its newline) as a record, unless it is too long or not one.
fn parse_line(buf: &[u8]) -> Option<Record> {
    if buf.len() > MAX_LINE {
        return None;
    }
    let text = std::str::from_utf8(buf).ok()?;
    Record::parse(text.strip_suffix('\n').unwrap_or(text))
}

fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Calls `f` with every record in the journal before offset `end`; returns the number of
/// malformed lines. A missing journal has none.
pub fn scan(path: &Path, end: u64, mut f: impl FnMut(Record)) -> io::Result<u64> {
    let Some(file) = open_existing(path)? else { return Ok(0) };
    let mut r = BufReader::with_capacity(64 << 10, file);
    let (mut pos, mut malformed) = (0u64, 0u64);
    let mut buf = Vec::new();
    while pos < end {
        match next_line(&mut r, &mut buf)? {
            Line::Complete(n) => {
                pos += n;
                match parse_line(&buf) {
                    Some(mut record) => {
                        record.end = pos;
                        f(record);
                    }
                    None => malformed += 1,
                }
            }
            Line::Partial | Line::Eof => break,
        }
    }
    Ok(malformed)
}

impl Journal {
    /// The reader of sink `sink`, at its saved cursor (the start when it has none). The journal
    /// need not exist yet.
    pub fn open(journal: &Path, state_dir: &Path, sink: &str) -> io::Result<Self> {
        let cursor_path = state_dir.join(format!("{sink}.cursor"));
        // `offset device inode`; a cursor written before rotation was followed is `offset`.
        let (offset, saved_id) = match std::fs::read_to_string(&cursor_path) {
            Ok(text) => {
                let mut parts = text.split_whitespace().map(str::parse::<u64>);
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some(Ok(o)), Some(Ok(dev)), Some(Ok(ino)), head) => {
                        (o, Some(((dev, ino), head.and_then(Result::ok).unwrap_or(0))))
                    }
                    (Some(Ok(o)), None, None, None) => (o, None),
                    _ => {
                        tracing::warn!(
                            sink,
                            cursor = %cursor_path.display(),
                            "Delivery cursor unreadable; delivering the journal again from the start."
                        );
                        (0, None)
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, None),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", cursor_path.display()))),
        };
        Ok(Self {
            path: journal.to_path_buf(),
            cursor_path,
            sink: sink.to_string(),
            offset,
            ahead: 0,
            scanned: offset,
            read_ends: VecDeque::new(),
            current: None,
            saved_id,
        })
    }

    /// The file being read, opened if need be: the one the saved cursor belongs to (found by its
    /// inode if a rotation moved it), else the journal's path. `None` while there is no journal.
    fn file(&mut self) -> io::Result<Option<&mut File>> {
        if self.current.is_none() {
            let at_path = open_existing(&self.path)?;
            let at_path = match at_path {
                Some(f) => {
                    let id = file_id(&f.metadata()?);
                    Some((f, id))
                }
                None => None,
            };
            let same = |f: &File, id: (u64, u64), saved: ((u64, u64), u64)| {
                id == saved.0 && (saved.1 == 0 || head_hash_at(f) == saved.1)
            };
            self.current = match (self.saved_id.take(), at_path) {
                (Some(saved), Some((f, id))) if same(&f, id, saved) => Some((f, id)),
                (Some(saved), at_path) => match find_moved(&self.path, saved.0)
                    .map(File::open)
                    .transpose()?
                    .filter(|f| saved.1 == 0 || head_hash_at(f) == saved.1)
                {
                    Some(f) => Some((f, saved.0)),
                    None => {
                        if self.offset > 0 && at_path.is_some() {
                            tracing::warn!(
                                sink = %self.sink,
                                journal = %self.path.display(),
                                "The journal file the delivery cursor points into is gone (rotated and removed); delivering the current journal from its start."
                            );
                            self.reset_to_start();
                        }
                        at_path
                    }
                },
                (None, at_path) => at_path,
            };
        }
        Ok(self.current.as_mut().map(|(f, _)| f))
    }

    /// Whether the journal's path now names another, non-empty file than the one being read:
    /// the writer has moved on to a new journal after a rotation.
    fn rotated(&self) -> bool {
        let Some((_, id)) = &self.current else { return false };
        std::fs::metadata(&self.path).is_ok_and(|m| file_id(&m) != *id && m.len() > 0)
    }

    /// Moves to the journal's new file, at its start.
    fn follow_rotation(&mut self) -> io::Result<()> {
        self.current = None;
        self.saved_id = None;
        self.reset_to_start();
        if self.file()?.is_some() {
            tracing::info!(sink = %self.sink, journal = %self.path.display(), "Alert journal rotated: the moved file was delivered; reading the new one.");
        }
        self.save()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The committed cursor.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether the cursor no longer points into this file: the file is shorter than the cursor,
    /// or the byte before it is not a line end (truncated, then written again).
    fn cursor_lost(&self, file: &mut File, len: u64) -> io::Result<bool> {
        if self.offset > len {
            return Ok(true);
        }
        if self.offset == 0 {
            return Ok(false);
        }
        file.seek(SeekFrom::Start(self.offset - 1))?;
        let mut last = [0u8; 1];
        file.read_exact(&mut last)?;
        Ok(last[0] != b'\n')
    }

    /// Up to `max` complete lines after the cursor (fewer when they hold more than
    /// `MAX_BATCH_BYTES`): the records among them, and how far they reach. A partial last line
    /// is left for later. Does not move the cursor, except back to the start when the journal no
    /// longer matches it.
    pub fn read_batch(&mut self, max: usize) -> io::Result<Batch> {
        let batch = self.read_batch_here(max)?;
        if batch.is_empty() && self.rotated() {
            self.follow_rotation()?;
            return self.read_batch_here(max);
        }
        Ok(batch)
    }

    fn read_batch_here(&mut self, max: usize) -> io::Result<Batch> {
        self.read_ends.clear();
        let mut batch = Batch { start: self.offset, end: self.offset, ..Batch::default() };
        let Some(file) = self.file()? else { return Ok(batch) };
        let mut file = file.try_clone()?;
        let len = file.metadata()?.len();
        if self.cursor_lost(&mut file, len)? {
            tracing::warn!(
                sink = %self.sink,
                journal = %self.path.display(),
                cursor = self.offset,
                length = len,
                "Alert journal no longer matches the delivery cursor (rotated or truncated); delivering it again from the start."
            );
            self.reset_to_start();
            self.save()?;
            batch.start = 0;
            batch.end = 0;
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut r = BufReader::with_capacity(64 << 10, file);
        let (mut pos, mut lines, mut bytes) = (self.offset, 0usize, 0usize);
        let mut buf = Vec::new();
        while lines < max.max(1) && bytes < MAX_BATCH_BYTES {
            let Line::Complete(n) = next_line(&mut r, &mut buf)? else { break };
            pos += n;
            lines += 1;
            self.read_ends.push_back(pos);
            match parse_line(&buf) {
                Some(mut record) => {
                    record.end = pos;
                    bytes += record.line.len();
                    batch.records.push(record);
                }
                None => {
                    batch.malformed += 1;
                    batch.first_malformed.get_or_insert(pos - n);
                }
            }
            batch.end = pos;
        }
        Ok(batch)
    }

    fn reset_to_start(&mut self) {
        self.offset = 0;
        self.scanned = 0;
        self.ahead = 0;
        self.read_ends.clear();
    }

    /// Moves the cursor to `offset` (a line end the last batch reached) and saves it: write a
    /// temporary file, fsync, rename. The cursor moves even when saving fails, so this process
    /// does not deliver the same records again; the error is returned for the log.
    pub fn commit(&mut self, offset: u64) -> io::Result<()> {
        if offset == self.offset {
            return Ok(());
        }
        let consumed = if offset > self.offset && self.read_ends.contains(&offset) {
            let mut n = 0;
            while self.read_ends.front().is_some_and(|&e| e <= offset) {
                self.read_ends.pop_front();
                n += 1;
            }
            Some(n)
        } else {
            None
        };
        self.offset = offset;
        match consumed {
            Some(n) if offset <= self.scanned => self.ahead = self.ahead.saturating_sub(n),
            // Anywhere else: count again from the new cursor.
            _ => {
                self.scanned = offset;
                self.ahead = 0;
                self.read_ends.clear();
            }
        }
        self.save()
    }

    fn save(&self) -> io::Result<()> {
        let name = self.cursor_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = self.cursor_path.with_file_name(format!("{name}.tmp"));
        let context = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.cursor_path.display()));
        let mut f = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new().write(true).create(true).truncate(true),
            0o600,
        )
        .open(&tmp)
        .map_err(context)?;
        let line = match &self.current {
            Some((f, (dev, ino))) => format!("{} {dev} {ino} {}\n", self.offset, head_hash_at(f)),
            None => format!("{}\n", self.offset),
        };
        f.write_all(line.as_bytes()).map_err(context)?;
        f.sync_all().map_err(context)?;
        drop(f);
        std::fs::rename(&tmp, &self.cursor_path).map_err(context)?;
        // Makes the rename itself durable; a filesystem that cannot sync a directory still has
        // the renamed file.
        if let Some(dir) = self.cursor_path.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Complete lines after the cursor (records and malformed lines). Reads only what was
    /// appended since the last call.
    pub fn backlog(&mut self) -> io::Result<u64> {
        // Lines of a new journal the writer started after a rotation are waiting too.
        let after_rotation = if self.rotated() { count_lines(&self.path)? } else { 0 };
        let Some(file) = self.file()? else { return Ok(0) };
        let mut file = file.try_clone()?;
        let len = file.metadata()?.len();
        if len < self.scanned {
            // Truncated: `read_batch` starts again from 0 and this count follows it.
            self.scanned = self.offset.min(len);
            self.ahead = 0;
        }
        file.seek(SeekFrom::Start(self.scanned))?;
        let mut pos = self.scanned;
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            let n = match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for (i, &b) in chunk[..n].iter().enumerate() {
                if b == b'\n' {
                    self.ahead += 1;
                    self.scanned = pos + i as u64 + 1;
                }
            }
            pos += n as u64;
        }
        Ok(self.ahead + after_rotation)
    }
}

/// Complete lines in the file at `path` (none when it is missing).
fn count_lines(path: &Path) -> io::Result<u64> {
    let Some(file) = open_existing(path)? else { return Ok(0) };
    let mut r = BufReader::with_capacity(64 << 10, file);
    let mut n = 0;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(n);
        }
        n += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        let len = chunk.len();
        r.consume(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn line(id: &str) -> String {
        format!(
            r#"{{"id":"{id}","fingerprint":"fp-{id}","status":"firing","rule":{{"id":"r1","name":"R","severity":"high"}},"summary":"s {id}"}}"#
        )
    }

    fn append(path: &Path, text: &str) {
        let mut f = OpenOptions::new().create(true).append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn ids(batch: &Batch) -> Vec<&str> {
        batch.records.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn record_fields_and_defaults() {
        let text = r#"{"id":"9f3c","fingerprint":"a1b2","status":"resolved","timestamp":"2024-05-01T10:12:00.000000Z","starts_at":"2024-05-01T10:00:00.000000Z","ends_at":"2024-05-01T10:12:00.000000Z","rule":{"id":"egress","name":"Camera reached the internet","severity":"high","references":["CVE-2021-36260"]},"category":"egress","key":"device=10.0.0.5","device":{"ip":"10.0.0.5","mac":null,"vendor":"Hikvision"},"dest_ip":"8.8.8.8","dest_port":443,"proto":"tcp","dest_name":null,"evidence":{"event_type":"flow_start","matched":["x"],"sha256":"abc"},"sensor":"site-a","extra":{"a":1}}"#;
        let r = Record::parse(text).unwrap();
        assert_eq!(r.status, Status::Resolved);
        assert_eq!(r.rule.references, vec!["CVE-2021-36260"]);
        assert_eq!(r.device.ip.as_deref(), Some("10.0.0.5"));
        assert_eq!(r.device.mac, None);
        assert_eq!(r.dest_port, Some(443));
        assert_eq!(r.evidence.sha256.as_deref(), Some("abc"));
        assert_eq!(r.ends_at.as_deref(), Some("2024-05-01T10:12:00.000000Z"));
        assert_eq!(r.line, text);
        assert_eq!(r.fingerprint(), "a1b2");

        // The shape the journal writer has today: no id, fingerprint, status or key.
        let r =
            Record::parse(r#"{"rule":{"id":"r","description":null},"device":{"ip":"10.0.0.9"},"key":null}"#)
                .unwrap();
        assert_eq!(r.status, Status::Firing);
        assert_eq!(r.fingerprint(), "r|10.0.0.9|");

        for bad in [
            "[1,2]",
            "{\"rule\":5}",
            "{\"summary\":\"no rule\"}",
            "{\"rule\":{\"id\":\"r\"},\"status\":\"odd\"}",
        ] {
            assert_eq!(Record::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn partial_last_line_is_left_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let (a, b, c) = (line("a"), line("b"), line("c"));
        append(&path, &format!("{a}\n{b}\n{}", &c[..10]));
        let mut j = Journal::open(&path, dir.path(), "s").unwrap();
        let batch = j.read_batch(10).unwrap();
        assert_eq!(ids(&batch), ["a", "b"]);
        let two_lines = (a.len() + b.len() + 2) as u64;
        assert_eq!(batch.end, two_lines);
        assert_eq!(batch.records[0].end, a.len() as u64 + 1);
        j.commit(batch.end).unwrap();
        assert_eq!(j.read_batch(10).unwrap().records.len(), 0, "partial line consumed");

        append(&path, &format!("{}\n", &c[10..]));
        let batch = j.read_batch(10).unwrap();
        assert_eq!(ids(&batch), ["c"]);
        assert_eq!(batch.records[0].line, c);
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let long = format!("{{\"rule\":{{\"id\":\"{}\"}}}}", "x".repeat(MAX_LINE));
        append(&path, &format!("{}\nnot json\n{{\"rule\":5}}\n\n{long}\n{}\n", line("a"), line("b")));
        let mut j = Journal::open(&path, dir.path(), "s").unwrap();
        let batch = j.read_batch(100).unwrap();
        assert_eq!(ids(&batch), ["a", "b"]);
        assert_eq!(batch.malformed, 4);
        assert_eq!(batch.first_malformed, Some(line("a").len() as u64 + 1));
        assert_eq!(batch.end, std::fs::metadata(&path).unwrap().len());

        // A batch of nothing but malformed lines still reaches past them.
        let mut j = Journal::open(&path, dir.path(), "t").unwrap();
        j.commit(line("a").len() as u64 + 1).unwrap();
        let batch = j.read_batch(2).unwrap();
        assert!(batch.records.is_empty() && !batch.is_empty());
        assert_eq!(batch.malformed, 2);
        assert!(batch.end > j.offset());
    }

    #[test]
    fn batch_is_bounded_by_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        for i in 0..5 {
            append(&path, &format!("{}\n", line(&i.to_string())));
        }
        let mut j = Journal::open(&path, dir.path(), "s").unwrap();
        let batch = j.read_batch(2).unwrap();
        assert_eq!(ids(&batch), ["0", "1"]);
        j.commit(batch.end).unwrap();
        assert_eq!(ids(&j.read_batch(2).unwrap()), ["2", "3"]);
    }

    #[test]
    fn cursor_survives_a_new_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        append(&path, &format!("{}\n{}\n", line("a"), line("b")));
        let mut j = Journal::open(&path, dir.path(), "hook").unwrap();
        let batch = j.read_batch(1).unwrap();
        assert_eq!(ids(&batch), ["a"]);
        j.commit(batch.end).unwrap();
        let saved = std::fs::read_to_string(dir.path().join("hook.cursor")).unwrap();
        // `offset device inode head`: the cursor names the file it points into.
        let id = file_id(&std::fs::metadata(&path).unwrap());
        let head = head_hash_at(&File::open(&path).unwrap());
        assert_ne!(head, 0);
        assert_eq!(saved.trim(), format!("{} {} {} {head}", batch.end, id.0, id.1));
        assert!(!dir.path().join("hook.cursor.tmp").exists());

        let mut again = Journal::open(&path, dir.path(), "hook").unwrap();
        assert_eq!(again.offset(), batch.end);
        assert_eq!(ids(&again.read_batch(10).unwrap()), ["b"]);
        // Another sink has its own cursor.
        let mut other = Journal::open(&path, dir.path(), "other").unwrap();
        assert_eq!(ids(&other.read_batch(10).unwrap()), ["a", "b"]);
    }

    #[test]
    fn truncation_starts_again_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        append(&path, &format!("{}\n{}\n", line("a"), line("b")));
        let mut j = Journal::open(&path, dir.path(), "s").unwrap();
        let batch = j.read_batch(10).unwrap();
        j.commit(batch.end).unwrap();

        // Shorter than the cursor.
        std::fs::write(&path, format!("{}\n", line("c"))).unwrap();
        let batch = j.read_batch(10).unwrap();
        assert_eq!(ids(&batch), ["c"]);
        assert_eq!(batch.start, 0);
        assert_eq!(Journal::open(&path, dir.path(), "s").unwrap().offset(), 0, "reset not saved");
        j.commit(batch.end).unwrap();

        // Truncated and written again past the cursor: the cursor no longer sits on a line end.
        std::fs::write(&path, format!("{}\n{}\n", line("dd"), line("e"))).unwrap();
        assert_ne!(std::fs::read(&path).unwrap()[j.offset() as usize - 1], b'\n');
        assert_eq!(ids(&j.read_batch(10).unwrap()), ["dd", "e"]);
    }

    /// logrotate moves the journal while a sink is reading it; the writer adds one more record
    /// to the moved file before it reopens, then starts the new one. The sink delivers every
    /// record once: the rest of the moved file, then the new file from its start.
    #[test]
    fn a_rotated_journal_is_finished_then_the_new_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        append(&path, &format!("{}\n{}\n", line("a"), line("b")));
        let mut j = Journal::open(&path, dir.path(), "s").unwrap();
        let batch = j.read_batch(1).unwrap();
        assert_eq!(ids(&batch), ["a"]);
        j.commit(batch.end).unwrap();
        let moved = dir.path().join("alerts.jsonl.1");
        std::fs::rename(&path, &moved).unwrap();
        append(&moved, &format!("{}\n", line("c")));
        // The new journal exists but is empty: the writer may still be on the moved one.
        append(&path, "");
        let batch = j.read_batch(10).unwrap();
        assert_eq!(ids(&batch), ["b", "c"]);
        j.commit(batch.end).unwrap();
        append(&path, &format!("{}\n{}\n", line("d"), line("e")));
        assert_eq!(j.backlog().unwrap(), 2, "the new journal's lines are waiting");
        let batch = j.read_batch(10).unwrap();
        assert_eq!((ids(&batch), batch.start), (vec!["d", "e"], 0));
        j.commit(batch.end).unwrap();
        assert!(j.read_batch(10).unwrap().is_empty());
        assert_eq!(j.backlog().unwrap(), 0);
    }

    /// camwatch stopped with a cursor in the journal; the journal was rotated while it was down.
    /// The reader finds the moved file by its inode, delivers its rest, then the new file; if
    /// the moved file is gone, it starts the new file from the beginning.
    #[test]
    fn a_restart_after_rotation_finds_the_moved_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        append(&path, &format!("{}\n{}\n", line("a"), line("b")));
        {
            let mut j = Journal::open(&path, dir.path(), "s").unwrap();
            let batch = j.read_batch(1).unwrap();
            j.commit(batch.end).unwrap();
        }
        let moved = dir.path().join("alerts.jsonl-20261204");
        std::fs::rename(&path, &moved).unwrap();
        append(&path, &format!("{}\n", line("c")));
        let mut j = Journal::open(&path, dir.path(), "s").unwrap();
        let batch = j.read_batch(10).unwrap();
        assert_eq!(ids(&batch), ["b"]);
        j.commit(batch.end).unwrap();
        let batch = j.read_batch(10).unwrap();
        assert_eq!(ids(&batch), ["c"]);
        j.commit(batch.end).unwrap();
        // Stopped again; the moved file is then compressed away and the journal rotated again.
        drop(j);
        let old = dir.path().join("alerts.jsonl.1");
        std::fs::rename(&path, &old).unwrap();
        std::fs::remove_file(&old).unwrap();
        append(&path, &format!("{}\n", line("d")));
        let mut j = Journal::open(&path, dir.path(), "s").unwrap();
        assert_eq!(ids(&j.read_batch(10).unwrap()), ["d"]);
    }

    #[test]
    fn missing_journal_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("none.jsonl"), dir.path(), "s").unwrap();
        let batch = j.read_batch(10).unwrap();
        assert!(batch.is_empty());
        assert_eq!(batch.end, 0);
        assert_eq!(j.backlog().unwrap(), 0);
        assert_eq!(scan(j.path(), u64::MAX, |_| panic!("no records")).unwrap(), 0);
    }

    #[test]
    fn backlog_counts_complete_lines_after_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        append(&path, &format!("{}\n{}\nbad\n", line("a"), line("b")));
        let mut j = Journal::open(&path, dir.path(), "s").unwrap();
        assert_eq!(j.backlog().unwrap(), 3);
        let batch = j.read_batch(1).unwrap();
        j.commit(batch.end).unwrap();
        assert_eq!(j.backlog().unwrap(), 2);
        append(&path, &format!("{}\n{{\"partial", line("c")));
        assert_eq!(j.backlog().unwrap(), 3);
        let batch = j.read_batch(10).unwrap();
        assert_eq!(ids(&batch), ["b", "c"]);
        j.commit(batch.end).unwrap();
        assert_eq!(j.backlog().unwrap(), 0);
        // A restarted reader counts from its cursor.
        let mut again = Journal::open(&path, dir.path(), "s").unwrap();
        assert_eq!(again.backlog().unwrap(), 0);
        let mut fresh = Journal::open(&path, dir.path(), "fresh").unwrap();
        assert_eq!(fresh.backlog().unwrap(), 4);
    }

    #[test]
    fn scan_stops_at_the_given_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        append(&path, &format!("{}\nbad\n{}\n", line("a"), line("b")));
        let mut seen = Vec::new();
        let end = (line("a").len() + 1 + 4) as u64;
        assert_eq!(scan(&path, end, |r| seen.push(r.id)).unwrap(), 1);
        assert_eq!(seen, ["a"]);
        seen.clear();
        assert_eq!(scan(&path, u64::MAX, |r| seen.push(r.id)).unwrap(), 1);
        assert_eq!(seen, ["a", "b"]);
    }
}
