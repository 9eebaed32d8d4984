//! Owns the log's bytes: every envelope, by global position, in append-only
//! segment files under `<store>/segments/`, and finding one again by its
//! position.
//!
//! A segment is named by its first position (`{first:020}.seg`) and holds
//! records for consecutive positions:
//!
//! | bytes   | field                                                    |
//! |---------|----------------------------------------------------------|
//! | 0..4    | payload length (u32 BE)                                  |
//! | 4..8    | CRC-32 (IEEE) of bytes 8.. of the record (u32 BE)        |
//! | 8..16   | position (u64 BE)                                        |
//! | 16      | flags: bit 0 set on the last record of a committed write |
//! | 17..    | the envelope (MessagePack, [`crate::codec`])             |
//!
//! The commit flag marks where a whole write (an append group, a bulk
//! append, an import) ends: after a crash, records past the last flagged
//! one belong to a write that did not finish and are dropped
//! ([`SegmentLog::last_commit`], [`SegmentLog::truncate_after`]).
//!
//! Opening reads every segment once to learn where each record starts (4
//! bytes per event in memory) and cuts a torn tail (a short or damaged last
//! record of the last segment). Damage anywhere else is corruption. Writes
//! are `pwrite`s at the active segment's end by one writer at a time;
//! readers see only records whose offsets were published after their bytes
//! were written, and never read past the store's durable position anyway.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::StoreError;

/// Bytes before a record's envelope.
const HEADER: usize = 17;
/// Flag bit of the last record of a committed write.
const COMMIT: u8 = 1;
/// Largest envelope a record may hold (the store's own limits are far below).
const MAX_PAYLOAD: u32 = 256 * 1024 * 1024;
/// Bytes a scan reads at once (at least one whole record).
const SCAN_CHUNK: u64 = 1024 * 1024;
/// Segments never grow past this, so offsets fit in a u32.
const MAX_SEGMENT_LIMIT: u64 = 2 * 1024 * 1024 * 1024;
/// The active segment is kept this many bytes of zeros ahead of its last
/// record. Records then overwrite bytes the file already has, so the
/// `fdatasync` that acknowledges them writes data only, not the file's
/// size and block allocation as an append past the end would (about half
/// the latency here: BENCHMARKS.md).
const PREPARE_AHEAD: u64 = 4 * 1024 * 1024;
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// The log's segment files. Cheap to clone; clones share the files.
#[derive(Clone, Debug)]
pub struct SegmentLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// A segment is closed once it would grow past this many bytes.
    max_segment_bytes: u64,
    state: RwLock<State>,
    /// One appender at a time (the store's write gate also ensures it).
    append: Mutex<()>,
    /// A segment file was created or removed since the directory was synced.
    dir_unsynced: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    segments: Vec<Segment>,
    /// Position of the last record carrying the commit flag (0: none).
    last_commit: u64,
}

#[derive(Debug)]
struct Segment {
    first: u64,
    file: Arc<File>,
    /// Where each record starts: `offsets[i]` is position `first + i`.
    offsets: Vec<u32>,
    /// Bytes in use (the next record's offset).
    len: u64,
    /// Bytes of the file written so far, records and the zeros after them
    /// ([`PREPARE_AHEAD`]).
    prepared: u64,
}

impl Segment {
    fn last(&self) -> u64 {
        self.first + self.offsets.len() as u64 - 1
    }

    fn end_of(&self, index: usize) -> u64 {
        self.offsets
            .get(index + 1)
            .map_or(self.len, |&offset| u64::from(offset))
    }
}

fn checksum(body: &[u8]) -> u32 {
    crc32fast::hash(body)
}

/// One record's header fields.
struct Header {
    len: u32,
    crc: u32,
    position: u64,
    flags: u8,
}

fn parse_header(bytes: &[u8; HEADER]) -> Header {
    let u32_at =
        |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let mut position = [0u8; 8];
    position.copy_from_slice(&bytes[8..16]);
    Header {
        len: u32_at(0),
        crc: u32_at(4),
        position: u64::from_be_bytes(position),
        flags: bytes[16],
    }
}

/// Checks the record at the start of `bytes` is `position`'s and whole, and
/// returns its envelope, its flags and its length in bytes.
fn parse_record(position: u64, bytes: &[u8]) -> Result<(&[u8], u8, usize), StoreError> {
    let header: &[u8; HEADER] = bytes
        .get(..HEADER)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| StoreError::corrupt(position, "log record is cut short"))?;
    let header = parse_header(header);
    let total = HEADER + header.len as usize;
    let Some(record) = bytes.get(..total) else {
        return Err(StoreError::corrupt(position, "log record is cut short"));
    };
    if header.position != position {
        return Err(StoreError::corrupt(
            position,
            format!("log record claims position {}", header.position),
        ));
    }
    if checksum(&record[8..]) != header.crc {
        return Err(StoreError::corrupt(
            position,
            "log record fails its checksum",
        ));
    }
    Ok((&record[HEADER..], header.flags, total))
}

/// Writes zeros over `from..to` of `file`; returns how far it got.
fn prepare(file: &File, from: u64, to: u64) -> u64 {
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64) as usize;
        if file.write_all_at(&ZEROS[..n], at).is_err() {
            break;
        }
        at += n as u64;
    }
    at
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// What reading a segment file at open found.
struct Scanned {
    offsets: Vec<u32>,
    /// Bytes of whole records.
    good_len: u64,
    /// Bytes in the file.
    file_len: u64,
    /// The file holds more bytes than that: a torn tail.
    torn: bool,
    /// Only zeros follow the records (space prepared ahead of them).
    zero_tail: bool,
    /// Positions of whole records whose checksum or position does not hold
    /// while the record after them does (damage, not a torn write).
    damaged: Vec<u64>,
    last_commit: Option<u64>,
}

/// Whether a whole, valid record for `position` starts at `offset`.
fn valid_record_at(file: &File, offset: u64, position: u64, file_len: u64) -> bool {
    let mut header = [0u8; HEADER];
    if offset + HEADER as u64 > file_len || file.read_exact_at(&mut header, offset).is_err() {
        return false;
    }
    let Some(end) = record_end(&parse_header(&header), offset, file_len) else {
        return false;
    };
    let mut record = vec![0u8; (end - offset) as usize];
    file.read_exact_at(&mut record, offset).is_ok() && parse_record(position, &record).is_ok()
}

/// Where a record starting at `offset` with this header ends, if its length
/// is plausible and it fits in a file of `file_len` bytes.
fn record_end(header: &Header, offset: u64, file_len: u64) -> Option<u64> {
    let end = offset + HEADER as u64 + u64::from(header.len);
    (header.len <= MAX_PAYLOAD && end <= file_len).then_some(end)
}

/// Whether the file holds only zeros from `offset` to `file_len`.
fn zeros_from(file: &File, offset: u64, file_len: u64) -> Result<bool, StoreError> {
    let mut buffer = vec![0u8; ZEROS.len()];
    let mut at = offset;
    while at < file_len {
        let n = (file_len - at).min(buffer.len() as u64) as usize;
        file.read_exact_at(&mut buffer[..n], at)
            .map_err(StoreError::io("read a log segment"))?;
        if buffer[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Reads a segment's records from the start, up to zeros that fill the
/// rest of the file (space prepared ahead of the records). A record cut short by the end
/// of the file is a torn write: the scan stops there. So is a whole record
/// whose checksum or position fails when nothing valid follows it (a write
/// the disk did not finish). A failing record followed by a valid one is
/// damage in the middle of the log: it is kept, so that reads and `verify`
/// report it where it is, and the scan goes on.
fn scan_segment(file: &File, first: u64) -> Result<Scanned, StoreError> {
    let file_len = file
        .metadata()
        .map_err(StoreError::io("read a log segment"))?
        .len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut scanned = Scanned {
        offsets: Vec::new(),
        good_len: 0,
        file_len,
        torn: false,
        zero_tail: false,
        damaged: Vec::new(),
        last_commit: None,
    };
    let mut record = Vec::new();
    loop {
        let offset = scanned.good_len;
        if offset == file_len {
            return Ok(scanned);
        }
        let position = first + scanned.offsets.len() as u64;
        let mut header = [0u8; HEADER];
        if reader.read_exact(&mut header).is_err() {
            scanned.torn = true;
            return Ok(scanned);
        }
        if header == [0; HEADER] && zeros_from(file, offset, file_len)? {
            scanned.zero_tail = true;
            return Ok(scanned);
        }
        let parsed = parse_header(&header);
        let Some(end) = record_end(&parsed, offset, file_len) else {
            scanned.torn = true;
            return Ok(scanned);
        };
        record.clear();
        record.extend_from_slice(&header);
        record.resize((end - offset) as usize, 0);
        if reader.read_exact(&mut record[HEADER..]).is_err() {
            scanned.torn = true;
            return Ok(scanned);
        }
        let holds = parse_record(position, &record).is_ok();
        if !holds {
            if !valid_record_at(file, end, position + 1, file_len) {
                scanned.torn = true;
                return Ok(scanned);
            }
            scanned.damaged.push(position);
        }
        let Ok(at) = u32::try_from(offset) else {
            return Err(StoreError::corrupt(position, "log segment is too large"));
        };
        scanned.offsets.push(at);
        scanned.good_len = end;
        if holds && parsed.flags & COMMIT != 0 {
            scanned.last_commit = Some(position);
        }
    }
}

impl SegmentLog {
    /// Opens (creating if missing) the segments in `dir`. A torn or damaged
    /// tail of the last segment is cut off (it was never acknowledged: its
    /// write did not finish); damage in any earlier segment is corruption.
    pub fn open(dir: &Path, max_segment_bytes: u64) -> Result<SegmentLog, StoreError> {
        std::fs::create_dir_all(dir).map_err(StoreError::io("create the log directory"))?;
        let mut firsts = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(StoreError::io("list the log directory"))? {
            let entry = entry.map_err(StoreError::io("list the log directory"))?;
            let name = entry.file_name();
            if let Some(first) = name.to_str().and_then(parse_segment_name) {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        let mut state = State::default();
        let count = firsts.len();
        for (i, first) in firsts.into_iter().enumerate() {
            let path = dir.join(segment_name(first));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(StoreError::io("open a log segment"))?;
            let expected = state.segments.last().map_or(1, |s| s.last() + 1);
            if first != expected {
                return Err(StoreError::corrupt(
                    expected,
                    format!(
                        "log segment {} does not continue the log",
                        segment_name(first)
                    ),
                ));
            }
            let scanned = scan_segment(&file, first)?;
            let is_last = i + 1 == count;
            for position in &scanned.damaged {
                tracing::error!(
                    position,
                    segment = %segment_name(first),
                    "a log record fails its checksum; reads of it will fail and verify reports it"
                );
            }
            if scanned.zero_tail && !is_last {
                return Err(StoreError::corrupt(
                    first + scanned.offsets.len() as u64,
                    format!("log segment {} ends in zeros", segment_name(first)),
                ));
            }
            if scanned.torn {
                if !is_last {
                    return Err(StoreError::corrupt(
                        first + scanned.offsets.len() as u64,
                        format!("log segment {} is damaged", segment_name(first)),
                    ));
                }
                tracing::warn!(
                    segment = %segment_name(first),
                    kept_bytes = scanned.good_len,
                    "cutting the torn tail of the log"
                );
                file.set_len(scanned.good_len)
                    .and_then(|()| file.sync_all())
                    .map_err(StoreError::io("cut a torn log tail"))?;
            }
            if scanned.offsets.is_empty() {
                // An empty segment (rolled to, nothing written): drop it, so
                // every segment kept holds at least one record.
                drop(file);
                std::fs::remove_file(&path)
                    .map_err(StoreError::io("remove an empty log segment"))?;
                if !is_last {
                    return Err(StoreError::corrupt(
                        first,
                        format!("log segment {} is empty", segment_name(first)),
                    ));
                }
                continue;
            }
            if let Some(commit) = scanned.last_commit {
                state.last_commit = commit;
            }
            state.segments.push(Segment {
                first,
                file: Arc::new(file),
                offsets: scanned.offsets,
                len: scanned.good_len,
                prepared: if scanned.torn {
                    scanned.good_len
                } else {
                    scanned.file_len
                },
            });
        }
        let log = SegmentLog {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                max_segment_bytes: max_segment_bytes.clamp(1, MAX_SEGMENT_LIMIT),
                state: RwLock::new(state),
                append: Mutex::new(()),
                dir_unsynced: AtomicBool::new(true),
            }),
        };
        log.sync_dir()?;
        Ok(log)
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The last position held (0 if the log is empty).
    pub fn last_position(&self) -> u64 {
        self.read().segments.last().map_or(0, Segment::last)
    }

    /// The last position that ends a committed write (0 if none).
    pub fn last_commit(&self) -> u64 {
        self.read().last_commit
    }

    /// Whether the log holds no record.
    pub fn is_empty(&self) -> bool {
        self.read().segments.is_empty()
    }

    /// The file and byte range of `position`'s record, if held.
    fn locate(&self, position: u64) -> Option<(Arc<File>, u64, u64)> {
        self.chunk(position, position)
    }

    /// The envelope at `position`, `None` if the log does not hold it.
    pub fn get(&self, position: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((file, start, end)) = self.locate(position) else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; (end - start) as usize];
        file.read_exact_at(&mut bytes, start)
            .map_err(StoreError::io("read the log"))?;
        let (payload, _, _) = parse_record(position, &bytes)?;
        let len = payload.len();
        bytes.truncate(HEADER + len);
        bytes.drain(..HEADER);
        Ok(Some(bytes))
    }

    /// Visits the envelopes `from..=upto` that the log holds, in order,
    /// until `visit` returns `Ok(false)`; returns the first position not
    /// visited. Reads the segments in large sequential chunks.
    pub fn visit<E: From<StoreError>>(
        &self,
        from: u64,
        upto: u64,
        mut visit: impl FnMut(u64, &[u8]) -> Result<bool, E>,
    ) -> Result<u64, E> {
        let mut next = from.max(1);
        let mut buffer = Vec::new();
        while next <= upto {
            let Some((file, start, end)) = self.chunk(next, upto) else {
                return Ok(next);
            };
            buffer.resize((end - start) as usize, 0);
            file.read_exact_at(&mut buffer, start)
                .map_err(StoreError::io("read the log"))?;
            let mut at = 0usize;
            while at < buffer.len() {
                let (payload, _, used) = parse_record(next, &buffer[at..])?;
                at += used;
                let keep_going = visit(next, payload)?;
                next += 1;
                if !keep_going {
                    return Ok(next);
                }
            }
        }
        Ok(next)
    }

    /// The bytes holding records from `from` (about [`SCAN_CHUNK`] of them,
    /// at least one record, none past `upto` or the segment's end): the
    /// file, and the start and end offsets.
    fn chunk(&self, from: u64, upto: u64) -> Option<(Arc<File>, u64, u64)> {
        let state = self.read();
        let index = state
            .segments
            .partition_point(|s| s.first <= from)
            .checked_sub(1)?;
        let segment = &state.segments[index];
        let i = usize::try_from(from - segment.first).ok()?;
        let start = u64::from(*segment.offsets.get(i)?);
        let last_index = usize::try_from(upto.min(segment.last()) - segment.first).ok()?;
        // The first record past the chunk's budget ends it.
        let budget_end = start + SCAN_CHUNK;
        let stop = segment.offsets[i + 1..=last_index]
            .partition_point(|&offset| u64::from(offset) < budget_end);
        let end = segment.end_of(i + stop);
        Some((Arc::clone(&segment.file), start, end))
    }

    /// Appends the envelopes of one write at `first`, `first + 1`, …, which
    /// must continue the log. With `commit`, the last record is flagged as
    /// ending a committed write. The bytes are written (not synced: see
    /// [`SegmentLog::sync`]); if writing fails, the log is cut back to where
    /// it was and nothing was appended.
    pub fn append<'a>(
        &self,
        first: u64,
        envelopes: impl ExactSizeIterator<Item = &'a [u8]>,
        commit: bool,
    ) -> Result<(), StoreError> {
        let _one = self
            .inner
            .append
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = envelopes.len();
        if count == 0 {
            return Ok(());
        }
        let last = self.last_position();
        if first != last + 1 {
            return Err(StoreError::corrupt(
                first,
                format!("an append at {first} does not continue the log, which ends at {last}"),
            ));
        }
        let mut buffer = Vec::new();
        let mut starts = Vec::with_capacity(count);
        for (i, envelope) in envelopes.enumerate() {
            let position = first + i as u64;
            let len = u32::try_from(envelope.len())
                .ok()
                .filter(|&len| len <= MAX_PAYLOAD)
                .ok_or_else(|| {
                    StoreError::Invalid(format!("an envelope of {} bytes", envelope.len()))
                })?;
            starts.push(buffer.len() as u64);
            let flags = if commit && i + 1 == count { COMMIT } else { 0 };
            let body_at = buffer.len() + 8;
            buffer.extend_from_slice(&len.to_be_bytes());
            buffer.extend_from_slice(&[0; 4]);
            buffer.extend_from_slice(&position.to_be_bytes());
            buffer.push(flags);
            buffer.extend_from_slice(envelope);
            let crc = checksum(&buffer[body_at..]);
            buffer[body_at - 4..body_at].copy_from_slice(&crc.to_be_bytes());
        }
        let (file, at, prepared) = self.active_for(first, buffer.len() as u64)?;
        let end = at + buffer.len() as u64;
        if let Err(e) = file.write_all_at(&buffer, at) {
            // Leave the file as it was: zeros from where the records were to
            // go (a segment file keeps zeros past its records). If even that
            // fails, the torn bytes are cut when the store opens again
            // (nothing points at them).
            let _ = file.set_len(at).and_then(|()| file.set_len(prepared));
            return Err(StoreError::io("write the log")(e));
        }
        let prepared = prepared.max(end);
        let prepared = if prepared - end < PREPARE_AHEAD / 2 {
            // Best effort: if the zeros cannot be written (a full disk),
            // the next records extend the file as they go.
            prepare(&file, prepared, end + PREPARE_AHEAD)
        } else {
            prepared
        };
        let mut state = self.write();
        let Some(segment) = state.segments.last_mut() else {
            return Err(StoreError::corrupt(
                first,
                "the active log segment vanished",
            ));
        };
        for start in starts {
            // `active_for` keeps `at + buffer.len()` within a u32.
            segment.offsets.push((at + start) as u32);
        }
        segment.len = end;
        segment.prepared = prepared;
        if commit {
            state.last_commit = first + count as u64 - 1;
        }
        Ok(())
    }

    /// The segment file `bytes` more are written to, where, and how far it
    /// is prepared: the last segment, or a new one starting at `first` once
    /// the last is full.
    fn active_for(&self, first: u64, bytes: u64) -> Result<(Arc<File>, u64, u64), StoreError> {
        let too_big = || StoreError::Invalid(format!("one write of {bytes} bytes to the log"));
        if bytes > MAX_SEGMENT_LIMIT {
            return Err(too_big());
        }
        {
            let state = self.read();
            if let Some(last) = state.segments.last() {
                // An empty segment takes any write (one bigger than a
                // segment gets a segment of its own).
                let fits = last.len == 0
                    || (last.len + bytes <= self.inner.max_segment_bytes
                        && last.len + bytes <= MAX_SEGMENT_LIMIT);
                if fits {
                    return Ok((Arc::clone(&last.file), last.len, last.prepared));
                }
                // The closed segment loses its prepared zeros, and what it
                // holds must be on disk before the syncer moves on to the
                // new one.
                last.file
                    .set_len(last.len)
                    .and_then(|()| last.file.sync_data())
                    .map_err(StoreError::io("sync a log segment"))?;
            }
        }
        let path = self.inner.dir.join(segment_name(first));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(StoreError::io("create a log segment"))?;
        let file = Arc::new(file);
        self.inner.dir_unsynced.store(true, Ordering::Release);
        self.write().segments.push(Segment {
            first,
            file: Arc::clone(&file),
            offsets: Vec::new(),
            len: 0,
            prepared: 0,
        });
        Ok((file, 0, 0))
    }

    /// Makes every record appended so far durable (`fdatasync` of the
    /// active segment, and of the directory after a segment was created).
    pub fn sync(&self) -> Result<(), StoreError> {
        let active = self.read().segments.last().map(|s| Arc::clone(&s.file));
        if let Some(file) = active {
            file.sync_data()
                .map_err(StoreError::io("fdatasync the log"))?;
        }
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        if self.inner.dir_unsynced.swap(false, Ordering::AcqRel) {
            if let Err(e) = File::open(&self.inner.dir).and_then(|dir| dir.sync_all()) {
                self.inner.dir_unsynced.store(true, Ordering::Release);
                return Err(StoreError::io("fsync the log directory")(e));
            }
        }
        Ok(())
    }

    /// Removes every record after `position` (durably) and returns how
    /// many were removed.
    pub fn truncate_after(&self, position: u64) -> Result<u64, StoreError> {
        let _one = self
            .inner
            .append
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut state = self.write();
        let mut removed = 0u64;
        while let Some(segment) = state.segments.last_mut() {
            if segment.last() <= position {
                break;
            }
            if segment.first > position {
                removed += segment.offsets.len() as u64;
                let first = segment.first;
                state.segments.pop();
                std::fs::remove_file(self.inner.dir.join(segment_name(first)))
                    .map_err(StoreError::io("remove a log segment"))?;
                self.inner.dir_unsynced.store(true, Ordering::Release);
                continue;
            }
            let keep = (position - segment.first + 1) as usize;
            removed += (segment.offsets.len() - keep) as u64;
            let cut = u64::from(segment.offsets[keep]);
            segment
                .file
                .set_len(cut)
                .and_then(|()| segment.file.sync_all())
                .map_err(StoreError::io("cut the log"))?;
            segment.offsets.truncate(keep);
            segment.len = cut;
            segment.prepared = cut;
            break;
        }
        state.last_commit = state.last_commit.min(position);
        drop(state);
        self.sync_dir()?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(position: u64) -> Vec<u8> {
        format!(
            "envelope {position} {}",
            "x".repeat((position % 50) as usize)
        )
        .into_bytes()
    }

    fn append(log: &SegmentLog, first: u64, count: u64, commit: bool) {
        let envelopes: Vec<Vec<u8>> = (first..first + count).map(envelope).collect();
        log.append(first, envelopes.iter().map(Vec::as_slice), commit)
            .unwrap();
    }

    fn all(log: &SegmentLog) -> Vec<(u64, Vec<u8>)> {
        let mut seen = Vec::new();
        log.visit::<StoreError>(1, u64::MAX, |position, bytes| {
            seen.push((position, bytes.to_vec()));
            Ok(true)
        })
        .unwrap();
        seen
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn records_come_back_by_position_and_in_order_across_segments() {
        // Given a log whose segments close after 1 KiB
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path(), 1024).unwrap();
        // When 300 records are appended in writes of 7
        let mut next = 1;
        while next <= 300 {
            let count = 7.min(301 - next);
            append(&log, next, count, true);
            next += count;
        }
        // Then each reads back by position, a scan sees them all in order,
        // and they span many segments; a reopened log holds the same
        assert!(segment_files(dir.path()).len() > 10);
        for position in [1, 2, 150, 299, 300] {
            assert_eq!(log.get(position).unwrap(), Some(envelope(position)));
        }
        assert_eq!(log.get(0).unwrap(), None);
        assert_eq!(log.get(301).unwrap(), None);
        let expected: Vec<(u64, Vec<u8>)> = (1..=300).map(|p| (p, envelope(p))).collect();
        assert_eq!(all(&log), expected);
        assert_eq!(log.last_commit(), 300);
        drop(log);
        let log = SegmentLog::open(dir.path(), 1024).unwrap();
        assert_eq!(all(&log), expected);
        assert_eq!((log.last_position(), log.last_commit()), (300, 300));
    }

    #[test]
    fn a_scan_stops_where_asked() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path(), 1 << 20).unwrap();
        append(&log, 1, 50, true);
        let mut seen = Vec::new();
        let next = log
            .visit::<StoreError>(10, 20, |position, _| {
                seen.push(position);
                Ok(position < 15)
            })
            .unwrap();
        assert_eq!(seen, (10..=15).collect::<Vec<_>>());
        assert_eq!(next, 16);
        assert_eq!(
            log.visit::<StoreError>(45, 80, |_, _| Ok(true)).unwrap(),
            51
        );
    }

    #[test]
    fn a_write_bigger_than_a_segment_gets_a_segment_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path(), 100).unwrap();
        append(&log, 1, 20, true);
        append(&log, 21, 20, true);
        append(&log, 41, 1, true);
        assert_eq!(segment_files(dir.path()).len(), 3);
        drop(log);
        let log = SegmentLog::open(dir.path(), 100).unwrap();
        let expected: Vec<(u64, Vec<u8>)> = (1..=41).map(|p| (p, envelope(p))).collect();
        assert_eq!(all(&log), expected);
    }

    #[test]
    fn an_append_must_continue_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path(), 1 << 20).unwrap();
        append(&log, 1, 3, true);
        let gap = log.append(5, [&b"x"[..]].into_iter(), true);
        assert!(matches!(gap, Err(StoreError::Corrupt { .. })), "{gap:?}");
        assert_eq!(log.last_position(), 3);
    }

    #[test]
    fn a_torn_tail_is_cut_when_opened_and_only_flagged_writes_count_as_committed() {
        // Given records 1..=10 committed, 11..=14 written without a commit
        // flag, and the last record torn half way
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path(), 1 << 20).unwrap();
        append(&log, 1, 10, true);
        append(&log, 11, 4, false);
        let (_, _, end) = log.locate(14).unwrap();
        drop(log);
        let file = segment_files(dir.path()).pop().unwrap();
        OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .write_all_at(&[0; 5], end - 5)
            .unwrap();
        // When it is opened
        let log = SegmentLog::open(dir.path(), 1 << 20).unwrap();
        // Then the torn record is gone, 11..=13 are there but not committed
        assert_eq!(log.last_position(), 13);
        assert_eq!(log.last_commit(), 10);
        // And cutting after the commit leaves exactly the committed records,
        // on disk too
        assert_eq!(log.truncate_after(10).unwrap(), 3);
        append(&log, 11, 2, true);
        drop(log);
        let log = SegmentLog::open(dir.path(), 1 << 20).unwrap();
        let expected: Vec<(u64, Vec<u8>)> = (1..=12).map(|p| (p, envelope(p))).collect();
        assert_eq!(all(&log), expected);
    }

    #[test]
    fn damage_in_the_middle_is_kept_and_reported_and_a_damaged_last_record_is_a_torn_write() {
        // Given several segments
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path(), 256).unwrap();
        for first in 1..=20 {
            append(&log, first, 1, true);
        }
        let (_, _, last_end) = log.locate(20).unwrap();
        drop(log);
        let files = segment_files(dir.path());
        assert!(files.len() >= 3);
        let flip = |file: &Path, at: u64| {
            let mut bytes = std::fs::read(file).unwrap();
            bytes[at as usize] ^= 0x40;
            std::fs::write(file, &bytes).unwrap();
        };
        // When a byte of position 1's envelope and one of the very last
        // record's are flipped
        flip(&files[0], HEADER as u64 + 2);
        flip(files.last().unwrap(), last_end - 1);
        let log = SegmentLog::open(dir.path(), 256).unwrap();
        // Then position 1 is still there, and reading it reports the damage
        assert!(matches!(
            log.get(1),
            Err(StoreError::Corrupt { position: 1, .. })
        ));
        assert_eq!(log.get(2).unwrap(), Some(envelope(2)));
        // And the last record, which nothing follows, was taken for a torn write
        assert_eq!(log.last_position(), 19);
        assert_eq!(log.last_commit(), 19);
        drop(log);
        // And a segment before the last one cut short is corruption
        let file = &segment_files(dir.path())[1];
        let len = std::fs::metadata(file).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(file)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let opened = SegmentLog::open(dir.path(), 256);
        assert!(
            matches!(opened, Err(StoreError::Corrupt { .. })),
            "{opened:?}"
        );
    }

    #[test]
    fn a_flipped_byte_in_a_record_is_found_when_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path(), 1 << 20).unwrap();
        append(&log, 1, 5, true);
        let file = segment_files(dir.path()).pop().unwrap();
        let (_, start, _) = log.locate(3).unwrap();
        let handle = OpenOptions::new().write(true).open(&file).unwrap();
        handle.write_all_at(b"?", start + HEADER as u64).unwrap();
        assert!(matches!(
            log.get(3),
            Err(StoreError::Corrupt { position: 3, .. })
        ));
        let scanned = log.visit::<StoreError>(1, 5, |_, _| Ok(true));
        assert!(matches!(
            scanned,
            Err(StoreError::Corrupt { position: 3, .. })
        ));
    }

    #[test]
    fn truncating_into_earlier_segments_removes_later_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path(), 300).unwrap();
        for first in 1..=40 {
            append(&log, first, 1, true);
        }
        let before = segment_files(dir.path()).len();
        assert_eq!(log.truncate_after(5).unwrap(), 35);
        assert!(segment_files(dir.path()).len() < before);
        assert_eq!((log.last_position(), log.last_commit()), (5, 5));
        append(&log, 6, 2, true);
        drop(log);
        let log = SegmentLog::open(dir.path(), 300).unwrap();
        let expected: Vec<(u64, Vec<u8>)> = (1..=7).map(|p| (p, envelope(p))).collect();
        assert_eq!(all(&log), expected);
        assert_eq!(log.truncate_after(0).unwrap(), 7);
        assert!(log.is_empty());
        append(&log, 1, 1, true);
        assert_eq!(log.get(1).unwrap(), Some(envelope(1)));
    }

    #[test]
    fn the_active_segment_keeps_zeros_ahead_and_a_closed_one_does_not() {
        // Given records written to two segments
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path(), 64 * 1024).unwrap();
        let mut next = 1;
        while segment_files(dir.path()).len() < 2 {
            append(&log, next, 10, true);
            next += 10;
        }
        append(&log, next, 10, true);
        let files = segment_files(dir.path());
        // Then the closed segment ends at its last record, and the active one
        // holds zeros past its records
        let (_, _, closed_end) = log.locate(log.read().segments[1].first - 1).unwrap();
        assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), closed_end);
        let (_, _, active_end) = log.locate(next + 9).unwrap();
        let active_len = std::fs::metadata(&files[1]).unwrap().len();
        assert!(active_len >= active_end + PREPARE_AHEAD / 2, "{active_len}");
        // And reopened, the zeros are taken for prepared space, not a torn
        // write: nothing is cut and appends go on after the last record
        drop(log);
        let log = SegmentLog::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(log.last_position(), next + 9);
        assert_eq!(std::fs::metadata(&files[1]).unwrap().len(), active_len);
        append(&log, next + 10, 3, true);
        drop(log);
        let log = SegmentLog::open(dir.path(), 64 * 1024).unwrap();
        let expected: Vec<(u64, Vec<u8>)> = (1..=next + 12).map(|p| (p, envelope(p))).collect();
        assert_eq!(all(&log), expected);
    }

    #[test]
    fn segment_names_round_trip_and_other_files_are_ignored() {
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("42.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.seg"), None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        let log = SegmentLog::open(dir.path(), 1 << 20).unwrap();
        assert!(log.is_empty());
    }
}
