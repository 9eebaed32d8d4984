//! Owns how timeline entries are stored: in blocks of consecutive entries of one customer,
//! one sled row per block, so a rebuild writes a row per block instead of a row per event
//! (sled's cost is per row: node copies, log records, page-table entries) and a page of 50
//! entries reads two or three rows.
//!
//! A block's key is `E ‖ ws ‖ customer ‖ order` of its first entry, where an entry's *order*
//! is `at` (ms offset by 2^63) ‖ log position, both big-endian: the key a one-row-per-entry
//! layout would give that entry, so cursors are the same. Its value is a run of records
//! `order (16) ‖ length (u32) ‖ entry value`, in strictly increasing order. Blocks of one
//! customer never overlap: every entry of a block comes before the next block's key.
//!
//! Placing an entry goes to the block it falls in: the last block whose key is at or before
//! the entry's order (the customer's first block when it comes before all of them, which then
//! moves to the new key). A block that is full ([`MAX_ENTRIES`], or [`MAX_BYTES`] of records)
//! takes an entry past its end by starting a new block with it, so a timeline written in
//! time order fills its blocks; an entry inside a full block splits it in half. Each step
//! depends only on the entries already placed, never on how the log was cut into chunks, so
//! a rebuild gives exactly the rows an incremental build gives.

use rustc_hash::FxHashMap;
use sijil_domain::Timestamp;

use super::super::error::ProjectionError;
use super::super::keys::{order_i64, prefix_end, Reader};
use super::super::overlay::Overlay;
use super::super::paging::Window;

/// Most entries in a block.
pub(crate) const MAX_ENTRIES: usize = 32;
/// Most bytes of records in a block, unless it holds a single larger entry.
pub(crate) const MAX_BYTES: usize = 4096;
/// Length of an entry's order: `at` (8) ‖ position (8).
pub(crate) const ORDER_LEN: usize = 16;
/// Bytes a record adds besides its value.
const RECORD_OVERHEAD: usize = ORDER_LEN + 4;

/// An entry's place in the timeline: `at` (order-preserving) ‖ position, big-endian.
pub(crate) type Order = [u8; ORDER_LEN];

/// The [`Order`] of the entry of the event at log position `position` that happened at `at`.
pub(crate) fn order_of(at: Timestamp, position: u64) -> Order {
    let mut order = [0; ORDER_LEN];
    order[..8].copy_from_slice(&order_i64(at.millis()).to_be_bytes());
    order[8..].copy_from_slice(&position.to_be_bytes());
    order
}

/// One entry of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub order: Order,
    pub value: &'a [u8],
}

/// The records of a block; anything malformed (short, unordered, empty) is corruption.
pub(crate) fn records(block: &[u8]) -> Result<Vec<Record<'_>>, ProjectionError> {
    let mut reader = Reader::new(block, "timeline block");
    let mut out: Vec<Record<'_>> = Vec::with_capacity(MAX_ENTRIES);
    while !reader.is_empty() {
        let mut order = [0; ORDER_LEN];
        order.copy_from_slice(reader.take(ORDER_LEN)?);
        let len = usize::try_from(reader.u32()?)
            .map_err(|_| ProjectionError::corrupt("timeline record length overflows"))?;
        let value = reader.take(len)?;
        if out.last().is_some_and(|last| last.order >= order) {
            return Err(ProjectionError::corrupt(
                "timeline block holds records out of order",
            ));
        }
        out.push(Record { order, value });
    }
    if out.is_empty() {
        return Err(ProjectionError::corrupt("timeline block is empty"));
    }
    Ok(out)
}

/// Encodes records made by [`records`] (or placed by [`put`]).
pub(crate) fn encode(records: &[Record<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(size(records));
    for record in records {
        out.extend_from_slice(&record.order);
        // Entry values are far below 4 GiB (their texts are bounded by the domain).
        out.extend_from_slice(&(record.value.len() as u32).to_be_bytes());
        out.extend_from_slice(record.value);
    }
    out
}

fn size(records: &[Record<'_>]) -> usize {
    records
        .iter()
        .map(|r| RECORD_OVERHEAD + r.value.len())
        .sum()
}

/// Whether a block of `records` takes no more entries at its end.
fn is_full(records: &[Record<'_>], extra: usize) -> bool {
    records.len() >= MAX_ENTRIES || size(records) + RECORD_OVERHEAD + extra > MAX_BYTES
}

fn key_of(prefix: &[u8], order: &Order) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + ORDER_LEN);
    key.extend_from_slice(prefix);
    key.extend_from_slice(order);
    key
}

/// Writes `records` as the block at `key`, split in two halves when over the limits.
fn save(ov: &mut Overlay<'_>, prefix: &[u8], key: Vec<u8>, records: &[Record<'_>]) {
    let over = records.len() > MAX_ENTRIES || size(records) > MAX_BYTES;
    if over && records.len() > 1 {
        let (left, right) = records.split_at(records.len() / 2);
        ov.insert(key, encode(left));
        ov.insert(key_of(prefix, &right[0].order), encode(right));
    } else {
        ov.insert(key, encode(records));
    }
}

/// Places the entry `value` at `order` in the blocks under `prefix` (one customer's range).
/// Placing an order that is already there replaces its value.
pub(crate) fn put(
    ov: &mut Overlay<'_>,
    prefix: &[u8],
    order: Order,
    value: &[u8],
) -> Result<(), ProjectionError> {
    let key = key_of(prefix, &order);
    let new = Record { order, value };
    if let Some((block_key, block)) = ov.floor(prefix, &key)? {
        let mut list = records(&block)?;
        let at = list.partition_point(|r| r.order < order);
        if list.get(at).is_some_and(|r| r.order == order) {
            list[at] = new;
            save(ov, prefix, block_key, &list);
        } else if at == list.len() && is_full(&list, value.len()) {
            ov.insert(key, encode(&[new]));
        } else {
            list.insert(at, new);
            save(ov, prefix, block_key, &list);
        }
        return Ok(());
    }
    // Before every block: join the first one (which moves to the new key) unless it is full.
    let end =
        prefix_end(prefix).ok_or_else(|| ProjectionError::corrupt("timeline prefix has no end"))?;
    match ov.ceiling(&key, &end)? {
        Some((first_key, block)) => {
            let mut list = records(&block)?;
            if is_full(&list, value.len()) {
                ov.insert(key, encode(&[new]));
            } else {
                list.insert(0, new);
                ov.remove(first_key);
                save(ov, prefix, key, &list);
            }
        }
        None => ov.insert(key, encode(&[new])),
    }
    Ok(())
}

/// Customers' last blocks held open while a chunk is applied, so a timeline written in time
/// order appends to a buffer instead of rewriting its block through the overlay per event.
/// [`Tails::put`] places exactly as [`put`] does (same rows); the open blocks are written
/// into the overlay by [`Tails::close_all`], which must run before anything reads blocks
/// through the overlay or places entries with [`put`].
#[derive(Debug, Default)]
pub(crate) struct Tails {
    /// By customer prefix: the customer's last block, with its entries after those placed.
    open: FxHashMap<Vec<u8>, Tail>,
}

/// An open last block.
#[derive(Debug)]
struct Tail {
    /// The block's key (empty while it has no entry).
    key: Vec<u8>,
    /// Its encoded records; `None` when they were written out and are read back from the
    /// overlay (the block as the tree holds it) before the next append.
    bytes: Option<Vec<u8>>,
    /// Its length in bytes.
    len: usize,
    count: usize,
    last: Order,
}

impl Tail {
    fn empty() -> Tail {
        Tail {
            key: Vec::new(),
            bytes: Some(Vec::new()),
            len: 0,
            count: 0,
            last: [0; ORDER_LEN],
        }
    }

    /// Writes the block into the overlay unless it is empty or already written out.
    fn write_out(&mut self, ov: &mut Overlay<'_>) {
        if self.count > 0 {
            if let Some(bytes) = self.bytes.take() {
                ov.insert(self.key.clone(), bytes);
            }
        }
    }

    /// Appends an entry after `last`; a full block is written out and a new one started.
    fn push(
        &mut self,
        ov: &mut Overlay<'_>,
        prefix: &[u8],
        order: Order,
        value: &[u8],
    ) -> Result<(), ProjectionError> {
        let full =
            self.count >= MAX_ENTRIES || self.len + RECORD_OVERHEAD + value.len() > MAX_BYTES;
        let bytes = if self.count == 0 || full {
            self.write_out(ov);
            self.key = key_of(prefix, &order);
            self.count = 0;
            self.bytes.insert(Vec::new())
        } else {
            match &mut self.bytes {
                Some(bytes) => bytes,
                slot @ None => {
                    let stored = ov.get(&self.key)?.ok_or_else(|| {
                        ProjectionError::corrupt("a timeline block written out is gone")
                    })?;
                    slot.insert(stored.to_vec())
                }
            }
        };
        bytes.extend_from_slice(&order);
        bytes.extend_from_slice(&(value.len() as u32).to_be_bytes());
        bytes.extend_from_slice(value);
        self.len = bytes.len();
        self.count += 1;
        self.last = order;
        Ok(())
    }
}

impl Tails {
    /// Places like [`put`], keeping the customer's last block open when the entry goes at
    /// its end.
    pub(crate) fn put(
        &mut self,
        ov: &mut Overlay<'_>,
        prefix: &[u8],
        order: Order,
        value: &[u8],
    ) -> Result<(), ProjectionError> {
        if let Some(tail) = self.open.get_mut(prefix) {
            if order > tail.last {
                return tail.push(ov, prefix, order, value);
            }
            if let Some(mut tail) = self.open.remove(prefix) {
                tail.write_out(ov);
            }
            return put(ov, prefix, order, value);
        }
        // The customer's last block (one lookup): an entry after its last entry is appended
        // there, as `put` would.
        let end = prefix_end(prefix)
            .ok_or_else(|| ProjectionError::corrupt("timeline prefix has no end"))?;
        let opened = match ov.last_below(prefix, &end)? {
            None => Some(Tail::empty()),
            Some((block_key, block)) => {
                let list = records(&block)?;
                let count = list.len();
                match list.last() {
                    Some(last) if last.order < order => Some(Tail {
                        key: block_key,
                        bytes: Some(block.to_vec()),
                        len: block.len(),
                        count,
                        last: last.order,
                    }),
                    _ => None,
                }
            }
        };
        if let Some(mut tail) = opened {
            tail.push(ov, prefix, order, value)?;
            self.open.insert(prefix.to_vec(), tail);
            return Ok(());
        }
        put(ov, prefix, order, value)
    }

    /// Writes every open block into the overlay and keeps them open, as where they end and
    /// what they hold (for a fill that carries them over commits: once the overlay is
    /// committed, the tree holds them, and the next append reads its block back).
    pub(crate) fn write_open(&mut self, ov: &mut Overlay<'_>) {
        for tail in self.open.values_mut() {
            tail.write_out(ov);
        }
    }

    /// Roughly the memory the open blocks take.
    pub(crate) fn held_bytes(&self) -> usize {
        self.open
            .iter()
            .map(|(prefix, tail)| {
                prefix.len() + tail.key.len() + tail.bytes.as_ref().map_or(0, Vec::capacity) + 96
            })
            .sum()
    }

    /// Writes every open block into the overlay.
    pub(crate) fn close_all(&mut self, ov: &mut Overlay<'_>) {
        for (_, mut tail) in self.open.drain() {
            tail.write_out(ov);
        }
    }
}

/// A block read whole: its key and its entries (order, value).
pub(crate) type Block = (Vec<u8>, Vec<(Order, Vec<u8>)>);

/// Every block under `prefix` through the overlay, in order.
pub(crate) fn all(ov: &Overlay<'_>, prefix: &[u8]) -> Result<Vec<Block>, ProjectionError> {
    let mut out = Vec::new();
    for (key, block) in ov.scan_prefix(prefix)? {
        let list = records(&block)?
            .into_iter()
            .map(|r| (r.order, r.value.to_vec()))
            .collect();
        out.push((key, list));
    }
    Ok(out)
}

/// Visits the entries under `prefix` whose full key (`prefix ‖ order`) lies in `window`, in
/// key order (backwards when `reverse`), until `visit` returns `false`. Reads only the blocks
/// that hold such entries, plus at most one.
pub(crate) fn walk(
    tree: &sled::Tree,
    prefix: &[u8],
    window: &Window,
    reverse: bool,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool, ProjectionError>,
) -> Result<(), ProjectionError> {
    let end =
        prefix_end(prefix).ok_or_else(|| ProjectionError::corrupt("timeline prefix has no end"))?;
    let upper = match &window.upper {
        Some(upper) if *upper < end => upper.clone(),
        _ => end,
    };
    let lower = if window.lower[..] < prefix[..] {
        prefix.to_vec()
    } else {
        window.lower.clone()
    };
    if upper <= lower {
        return Ok(());
    }
    let scan_err = |e| ProjectionError::sled("scan timeline", e);
    let mut key = Vec::with_capacity(prefix.len() + ORDER_LEN);
    let mut offer = |order: &Order, value: &[u8]| -> Result<Option<bool>, ProjectionError> {
        key.clear();
        key.extend_from_slice(prefix);
        key.extend_from_slice(order);
        if key < lower {
            return Ok(Some(!reverse));
        }
        if key >= upper {
            return Ok(Some(reverse));
        }
        visit(&key, value).map(|go_on| if go_on { None } else { Some(false) })
    };
    // `offer` answers None: visited, go on; Some(true): out of the window on the near side,
    // skip; Some(false): stop.
    if reverse {
        for item in tree.range::<&[u8], _>(prefix..&upper[..]).rev() {
            let (_, block) = item.map_err(scan_err)?;
            for record in records(&block)?.iter().rev() {
                if offer(&record.order, record.value)? == Some(false) {
                    return Ok(());
                }
            }
        }
    } else {
        // The block holding `lower` may start before it.
        let start = tree
            .range::<&[u8], _>(prefix..=&lower[..])
            .next_back()
            .transpose()
            .map_err(scan_err)?
            .map_or_else(|| lower.clone(), |(k, _)| k.to_vec());
        for item in tree.range::<&[u8], _>(&start[..]..&upper[..]) {
            let (_, block) = item.map_err(scan_err)?;
            for record in records(&block)? {
                if offer(&record.order, record.value)? == Some(false) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PREFIX: &[u8] = b"E-customer-";

    fn order(at: u64, position: u64) -> Order {
        let mut out = [0; ORDER_LEN];
        out[..8].copy_from_slice(&at.to_be_bytes());
        out[8..].copy_from_slice(&position.to_be_bytes());
        out
    }

    fn value(position: u64, len: usize) -> Vec<u8> {
        let mut out = position.to_be_bytes().to_vec();
        out.resize(8 + len, b'x');
        out
    }

    /// Places `entries` (at, position, value length) with a commit after every `chunk`.
    fn build(entries: &[(u64, u64, usize)], chunk: usize) -> Result<sled::Tree, ProjectionError> {
        build_with(entries, chunk, false)
    }

    /// [`build`], through [`Tails`] when `tails` (closed before every commit).
    fn build_with(
        entries: &[(u64, u64, usize)],
        chunk: usize,
        tails: bool,
    ) -> Result<sled::Tree, ProjectionError> {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(|e| ProjectionError::sled("open", e))?;
        let tree = db
            .open_tree("t")
            .map_err(|e| ProjectionError::sled("open", e))?;
        // Another customer's rows on both sides, which no walk or placement may touch.
        tree.insert(b"E-customea", &b"other"[..])
            .and_then(|_| tree.insert(b"E-customer.", &b"other"[..]))
            .map_err(|e| ProjectionError::sled("seed", e))?;
        let mut ov = Overlay::new(&tree);
        let mut open = Tails::default();
        for (i, (at, position, len)) in entries.iter().enumerate() {
            let (order, value) = (order(*at, *position), value(*position, *len));
            if tails {
                open.put(&mut ov, PREFIX, order, &value)?;
            } else {
                put(&mut ov, PREFIX, order, &value)?;
            }
            if (i + 1) % chunk == 0 {
                open.close_all(&mut ov);
                ov.commit(i as u64 + 1)?;
            }
        }
        open.close_all(&mut ov);
        ov.commit(entries.len() as u64)?;
        Ok(tree)
    }

    fn blocks(tree: &sled::Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
        tree.scan_prefix(PREFIX)
            .filter_map(Result::ok)
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }

    fn walked(
        tree: &sled::Tree,
        window: &Window,
        reverse: bool,
    ) -> Result<Vec<Vec<u8>>, ProjectionError> {
        let mut out = Vec::new();
        walk(tree, PREFIX, window, reverse, |key, value| {
            assert_eq!(&value[..8], &key[key.len() - 8..]);
            out.push(key.to_vec());
            Ok(true)
        })?;
        Ok(out)
    }

    fn check(entries: &[(u64, u64, usize)], chunk: usize) -> Result<(), TestCaseError> {
        let tree = build(entries, chunk).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut model: Vec<Vec<u8>> = entries
            .iter()
            .map(|(at, position, _)| key_of(PREFIX, &order(*at, *position)))
            .collect();
        model.sort();
        model.dedup();
        // Blocks: keyed by their first entry, within the limits, not overlapping.
        let rows = blocks(&tree);
        let mut flat = Vec::new();
        for (key, block) in &rows {
            let list = records(block).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&key[..], &key_of(PREFIX, &list[0].order)[..]);
            prop_assert!(list.len() <= MAX_ENTRIES);
            prop_assert!(list.len() == 1 || size(&list) <= MAX_BYTES);
            flat.extend(list.iter().map(|r| key_of(PREFIX, &r.order)));
        }
        prop_assert_eq!(&flat, &model);
        // Every window, both ways.
        let whole = Window::prefix(PREFIX);
        let forward =
            walked(&tree, &whole, false).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&forward, &model);
        let mut backward =
            walked(&tree, &whole, true).map_err(|e| TestCaseError::fail(e.to_string()))?;
        backward.reverse();
        prop_assert_eq!(&backward, &model);
        for (i, low) in model.iter().enumerate().step_by(7) {
            for high in model.iter().skip(i).step_by(11) {
                let mut window = Window::prefix(PREFIX);
                window.at_least(low.clone());
                window.below(high.clone());
                let expected: Vec<Vec<u8>> = model
                    .iter()
                    .filter(|k| *k >= low && *k < high)
                    .cloned()
                    .collect();
                let got = walked(&tree, &window, false)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&got, &expected);
                let mut got =
                    walked(&tree, &window, true).map_err(|e| TestCaseError::fail(e.to_string()))?;
                got.reverse();
                prop_assert_eq!(&got, &expected);
            }
        }
        // The same rows whatever the chunking.
        let one_by_one = build(entries, 1).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(blocks(&one_by_one), rows.clone());
        // And the same through open tails.
        let tailed =
            build_with(entries, chunk, true).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(blocks(&tailed), rows);
        Ok(())
    }

    #[test]
    fn entries_in_time_order_fill_their_blocks() -> Result<(), ProjectionError> {
        let entries: Vec<(u64, u64, usize)> = (0..1000).map(|i| (i * 10, i, 20)).collect();
        let tree = build(&entries, 300)?;
        let rows = blocks(&tree);
        assert_eq!(rows.len(), 1000usize.div_ceil(MAX_ENTRIES));
        // Big entries fill by bytes; an entry over the limit sits alone; a small one after
        // the first still fits with it.
        let entries = [
            (1, 1, 3000),
            (2, 2, 3000),
            (3, 3, 9000),
            (4, 4, 10),
            (2, 1, 10),
        ];
        let tree = build(&entries, 2)?;
        let counts: Vec<usize> = blocks(&tree)
            .iter()
            .map(|(_, b)| records(b).map(|r| r.len()))
            .collect::<Result<_, _>>()?;
        assert_eq!(counts, vec![2, 1, 1, 1]);
        Ok(())
    }

    #[test]
    fn malformed_blocks_are_corruption() {
        let good = encode(&[
            Record {
                order: order(1, 1),
                value: b"a",
            },
            Record {
                order: order(2, 2),
                value: b"b",
            },
        ]);
        let mut swapped = encode(&[Record {
            order: order(2, 2),
            value: b"b",
        }]);
        swapped.extend_from_slice(&encode(&[Record {
            order: order(1, 1),
            value: b"a",
        }]));
        for bad in [
            Vec::new(),
            good[..good.len() - 1].to_vec(),
            good[..10].to_vec(),
            swapped,
        ] {
            assert!(matches!(records(&bad), Err(ProjectionError::Corrupt(_))));
        }
        assert_eq!(records(&good).map(|r| r.len()).ok(), Some(2));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn blocks_hold_every_entry_once_in_order(
            entries in proptest::collection::vec((0u64..400, 0u64..100_000, 0usize..400), 0..300),
            chunk in 1usize..120,
        ) {
            check(&entries, chunk)?;
        }

        #[test]
        fn mostly_appended_timelines(
            n in 0u64..400,
            late in proptest::collection::vec((0u64..4000, 0usize..200), 0..40),
            chunk in 1usize..120,
        ) {
            let mut entries: Vec<(u64, u64, usize)> =
                (0..n).map(|i| (i * 10, i, (i % 90) as usize)).collect();
            for (i, (at, len)) in late.into_iter().enumerate() {
                let position = n + i as u64;
                entries.insert((at as usize).min(entries.len()), (at, position, len));
            }
            check(&entries, chunk)?;
        }
    }
}
