//! Editing the log's segment files from outside the store, as damage or a
//! tamperer would, reading them by the record layout documented in the
//! store's `segments` module: length (u32 BE), CRC-32 of the rest (u32 BE),
//! position (u64 BE), flags (u8), envelope; zeros after the last record.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const HEADER: usize = 17;

fn segments(store_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(store_dir.join("segments"))
        .expect("segments directory")
        .map(|entry| entry.expect("entry").path())
        .filter_map(|path| {
            let first = path.file_stem()?.to_str()?.parse().ok()?;
            Some((first, path))
        })
        .collect();
    files.sort();
    files
}

/// Where `position`'s record is: its file, its offset and the file's bytes.
fn find(store_dir: &Path, position: u64) -> (PathBuf, usize, Vec<u8>) {
    let files = segments(store_dir);
    let (first, path) = files
        .iter()
        .rev()
        .find(|(first, _)| *first <= position)
        .expect("a segment holding the position")
        .clone();
    let bytes = std::fs::read(&path).expect("read segment");
    let mut at = 0usize;
    for _ in first..position {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += HEADER + len;
    }
    (path, at, bytes)
}

#[allow(dead_code)] // not every test binary that includes this module edits records
/// Rewrites the envelope at `position` with `edit`. With `seal`, the
/// record's length and checksum are made to match the new envelope (a
/// tamperer who knows the format); without, they stay as they were and the
/// envelope must keep its length (damage), which works while the store is
/// open too.
pub fn edit_record(store_dir: &Path, position: u64, seal: bool, edit: impl FnOnce(&mut Vec<u8>)) {
    let (path, at, mut bytes) = find(store_dir, position);
    let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
    let mut envelope = bytes[at + HEADER..at + HEADER + len].to_vec();
    edit(&mut envelope);
    if !seal {
        assert_eq!(envelope.len(), len, "damage keeps the length");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open segment");
        file.write_all_at(&envelope, (at + HEADER) as u64)
            .expect("write segment");
        return;
    }
    let mut record = Vec::with_capacity(HEADER + envelope.len());
    record.extend_from_slice(&(envelope.len() as u32).to_be_bytes());
    record.extend_from_slice(&[0; 4]);
    record.extend_from_slice(&bytes[at + 8..at + HEADER]);
    record.extend_from_slice(&envelope);
    let crc = crc32fast::hash(&record[8..]);
    record[4..8].copy_from_slice(&crc.to_be_bytes());
    bytes.splice(at..at + HEADER + len, record);
    std::fs::write(&path, &bytes).expect("write segment");
}

/// Every record's (position, envelope), in order.
#[allow(dead_code)] // not every test binary that includes this module reads the whole log
pub fn envelopes(store_dir: &Path) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    for (first, path) in segments(store_dir) {
        let bytes = std::fs::read(&path).expect("read segment");
        let mut at = 0usize;
        let mut position = first;
        // The active segment keeps zeros past its last record.
        while at < bytes.len() && bytes[at..at + HEADER] != [0; HEADER] {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            out.push((position, bytes[at + HEADER..at + HEADER + len].to_vec()));
            at += HEADER + len;
            position += 1;
        }
    }
    out
}

/// Cuts the log after `position`, as a power cut that lost its unsynced tail leaves it
/// (the store must be closed).
#[allow(dead_code)] // not every test binary that includes this module cuts the log
pub fn cut_after(store_dir: &Path, position: u64) {
    let (path, at, _) = find(store_dir, position + 1);
    for (first, later) in segments(store_dir) {
        if first > position + 1 {
            std::fs::remove_file(later).expect("remove segment");
        }
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open segment")
        .set_len(at as u64)
        .expect("cut segment");
}
