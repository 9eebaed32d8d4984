//! Owns importing a log written elsewhere (an export of another store, a
//! backup): checking recorded envelopes and writing them as they are, with
//! their positions, versions, times and hashes, durably.
//!
//! An import is two passes over the same envelopes, in position order:
//!
//! 1. [`ImportCheck`] looks at every envelope and writes nothing: positions
//!    gap-free and continuing this store's log, every field within the
//!    store's limits, every hash recomputed and every stream's chain
//!    unbroken (a stream may continue one this store already holds),
//!    envelopes at positions this store already holds identical to its own,
//!    new event ids unused. [`ImportCheck::finish`] tells what would be
//!    written.
//! 2. [`Store::import_events`] writes chunks of the same envelopes, each as
//!    one transaction that re-checks what it writes against the stored heads
//!    (so it can never write a broken chain, even on its own), skips
//!    envelopes already present when they are identical, and flushes before
//!    returning.
//!
//! Importing the same log twice therefore writes nothing the second time,
//! and a log that differs from what this store holds is refused. An import
//! interrupted between chunks leaves a valid prefix; running it again
//! finishes it. Imports expect no concurrent appends (the CLI holds the
//! store alone); if one happens anyway the affected chunk is refused.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::bulk::{checked_log_end, plain_head, write_decided, IndexEntries};
use crate::canonical::compute_hash;
use crate::codec;
use crate::error::StoreError;
use crate::event::{Direction, NewEvent, RecordedEvent};
use crate::layout::Head;
use crate::store::Store;
use crate::validate;

/// Why an import was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// An envelope is malformed or breaks a rule of the store (position
    /// order, field limits, reused event id).
    #[error("the imported log is invalid at position {position}: {detail}")]
    Invalid {
        /// The envelope's position.
        position: u64,
        /// What is wrong.
        detail: String,
    },
    /// A hash does not match its envelope, or a stream's chain is broken.
    #[error("the imported log does not verify at position {position}: {detail}")]
    BrokenChain {
        /// The envelope's position.
        position: u64,
        /// What is wrong.
        detail: String,
    },
    /// This store already holds a different event at a position the
    /// imported log covers.
    #[error("this store holds a different log: at position {position} {detail}")]
    DifferentLog {
        /// The first differing position.
        position: u64,
        /// How they differ.
        detail: String,
    },
    /// The imported log starts after this store's end, leaving a gap.
    #[error("the imported log starts at position {first} but this store ends at {head}; import the positions in between first")]
    Gap {
        /// The first position of the imported log.
        first: u64,
        /// This store's last position.
        head: u64,
    },
    /// The store failed while reading or writing.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImportError {
    /// A stable, upper-case code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::Invalid { .. } => "INVALID_LOG",
            ImportError::BrokenChain { .. } => "BROKEN_CHAIN",
            ImportError::DifferentLog { .. } => "DIFFERENT_LOG",
            ImportError::Gap { .. } => "LOG_GAP",
            ImportError::Store(e) => e.code(),
        }
    }
}

/// What an import holds, as [`ImportCheck::finish`] found it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Envelopes checked.
    pub events: u64,
    /// The first position of the imported log (0 if it is empty).
    pub first_position: u64,
    /// The last position of the imported log (0 if it is empty).
    pub last_position: u64,
    /// Envelopes this store already holds, identically.
    pub already_present: u64,
    /// Envelopes an import would write.
    pub new_events: u64,
}

/// Where a stream's chain stands while checking.
#[derive(Clone, Copy)]
struct Link {
    version: u64,
    hash: [u8; 32],
    /// Whether an envelope of this stream past the store's end was seen
    /// (then the store's head has been compared already).
    past_head: bool,
}

/// The first pass of an import: checks envelopes one at a time, in
/// position order, writing nothing.
pub struct ImportCheck<'a> {
    store: &'a Store,
    head: u64,
    next: Option<u64>,
    chains: HashMap<String, Link>,
    new_ids: HashSet<Uuid>,
    summary: ImportSummary,
}

impl std::fmt::Debug for ImportCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportCheck")
            .field("head", &self.head)
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

pub(crate) fn invalid(position: u64, detail: impl Into<String>) -> ImportError {
    ImportError::Invalid {
        position,
        detail: detail.into(),
    }
}

pub(crate) fn broken(position: u64, detail: impl Into<String>) -> ImportError {
    ImportError::BrokenChain {
        position,
        detail: detail.into(),
    }
}

/// Checks one envelope's fields against the store's append limits and
/// recomputes its hash.
pub(crate) fn check_envelope(event: &RecordedEvent) -> Result<(), ImportError> {
    let position = event.position;
    if position == 0 {
        return Err(invalid(0, "positions start at 1"));
    }
    if event.version == 0 {
        return Err(invalid(position, "versions start at 1"));
    }
    let as_new = NewEvent {
        event_id: event.event_id,
        workspace_id: event.workspace_id,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        occurred_at: event.occurred_at,
        actor: event.actor.clone(),
        on_behalf_of: event.on_behalf_of.clone(),
        correlation_id: event.correlation_id,
        causation_id: event.causation_id,
        payload: event.payload.clone(),
    };
    validate::batch(&event.stream_id, std::slice::from_ref(&as_new)).map_err(|e| match e {
        StoreError::Invalid(detail) => invalid(position, detail),
        other => ImportError::Store(other),
    })?;
    let recomputed = compute_hash(event);
    if recomputed != event.hash {
        return Err(broken(
            position,
            format!(
                "stored hash {} but the envelope hashes to {}",
                hex::encode(event.hash),
                hex::encode(recomputed)
            ),
        ));
    }
    Ok(())
}

/// The write pass's check of an envelope at a position the store already
/// holds: it must be the stored one.
pub(crate) fn check_same_as_stored(
    stored: &RecordedEvent,
    event: &RecordedEvent,
) -> Result<(), ImportError> {
    if stored == event {
        return Ok(());
    }
    Err(ImportError::DifferentLog {
        position: event.position,
        detail: format!(
            "this store holds event {} of `{}`, the import event {} of `{}`",
            stored.event_id, stored.stream_id, event.event_id, event.stream_id
        ),
    })
}

/// The write pass's check of a new envelope against its stream's stored
/// head (`version` 0 and a zero hash: no events yet): it must be the next
/// version and chain onto the head's hash.
pub(crate) fn check_continues(
    event: &RecordedEvent,
    version: u64,
    prev: [u8; 32],
) -> Result<(), ImportError> {
    if event.version == version + 1 && event.prev_hash == prev {
        return Ok(());
    }
    Err(broken(
        event.position,
        format!(
            "stream `{}` is at version {version} here, and version {} does not continue its chain",
            event.stream_id, event.version
        ),
    ))
}

impl<'a> ImportCheck<'a> {
    /// Starts checking a log to import into `store`.
    pub fn new(store: &'a Store) -> ImportCheck<'a> {
        ImportCheck {
            store,
            head: store.head_position(),
            next: None,
            chains: HashMap::new(),
            new_ids: HashSet::new(),
            summary: ImportSummary::default(),
        }
    }

    /// Checks the next envelope (they must come in position order).
    pub fn check(&mut self, event: &RecordedEvent) -> Result<(), ImportError> {
        let position = event.position;
        match self.next {
            None => {
                if position > self.head + 1 {
                    return Err(ImportError::Gap {
                        first: position,
                        head: self.head,
                    });
                }
                self.summary.first_position = position;
            }
            Some(next) if position != next => {
                return Err(invalid(
                    position,
                    format!("position {next} was expected next (positions must be gap-free and ascending)"),
                ));
            }
            Some(_) => {}
        }
        check_envelope(event)?;
        let link = self.link_before(event)?;
        if event.version != link.map_or(1, |l| l.version + 1) {
            return Err(broken(
                position,
                format!(
                    "stream `{}` jumps to version {} after version {}",
                    event.stream_id,
                    event.version,
                    link.map_or(0, |l| l.version)
                ),
            ));
        }
        let expected_prev = link.map_or([0; 32], |l| l.hash);
        if event.prev_hash != expected_prev {
            return Err(broken(
                position,
                format!(
                    "prev_hash {} but the previous event of `{}` hashes to {}",
                    hex::encode(event.prev_hash),
                    event.stream_id,
                    hex::encode(expected_prev)
                ),
            ));
        }
        let mut past_head = link.is_some_and(|l| l.past_head);
        if position <= self.head {
            self.compare_with_stored(event)?;
            self.summary.already_present += 1;
        } else {
            if !past_head {
                self.compare_with_head(event)?;
                past_head = true;
            }
            if !self.new_ids.insert(event.event_id)
                || self.store.event_position(event.event_id)?.is_some()
            {
                return Err(invalid(
                    position,
                    format!("event id {} is used twice", event.event_id),
                ));
            }
            self.summary.new_events += 1;
        }
        self.chains.insert(
            event.stream_id.clone(),
            Link {
                version: event.version,
                hash: event.hash,
                past_head,
            },
        );
        self.summary.events += 1;
        self.summary.last_position = position;
        self.next = Some(position + 1);
        Ok(())
    }

    /// What an import of the envelopes checked so far would do.
    pub fn finish(self) -> ImportSummary {
        self.summary
    }

    /// Where `event`'s stream stood before it: earlier in the imported log,
    /// or (for a log that starts mid-stream) in this store.
    fn link_before(&self, event: &RecordedEvent) -> Result<Option<Link>, ImportError> {
        if let Some(link) = self.chains.get(&event.stream_id) {
            return Ok(Some(*link));
        }
        if event.version <= 1 {
            return Ok(None);
        }
        let previous = self
            .store
            .read_stream_raw(&event.stream_id, event.version - 1, Direction::Forward, 1)?
            .into_iter()
            .next()
            .filter(|p| p.version == event.version - 1 && p.position < event.position);
        match previous {
            Some(p) => Ok(Some(Link {
                version: p.version,
                hash: p.hash,
                past_head: false,
            })),
            None => Err(broken(
                event.position,
                format!(
                    "stream `{}` starts at version {}, but neither the imported log nor this store holds version {}",
                    event.stream_id,
                    event.version,
                    event.version - 1
                ),
            )),
        }
    }

    /// An envelope at a position this store holds must be the stored one.
    fn compare_with_stored(&self, event: &RecordedEvent) -> Result<(), ImportError> {
        let stored = self
            .store
            .read_all_raw(event.position, 1, None)?
            .into_iter()
            .next();
        match stored {
            Some(stored) if stored == *event => Ok(()),
            Some(stored) => Err(ImportError::DifferentLog {
                position: event.position,
                detail: format!(
                    "this store holds event {} of `{}` (hash {}), the import event {} of `{}` (hash {})",
                    stored.event_id,
                    stored.stream_id,
                    hex::encode(stored.hash),
                    event.event_id,
                    event.stream_id,
                    hex::encode(event.hash)
                ),
            }),
            None => Err(ImportError::Store(StoreError::corrupt(
                event.position,
                "the store's log ends before its durable position",
            ))),
        }
    }

    /// The first envelope of a stream past this store's end must continue
    /// the stream's stored head.
    fn compare_with_head(&self, event: &RecordedEvent) -> Result<(), ImportError> {
        let stored = self.store.stream_version(&event.stream_id)?;
        let wanted = event.version.checked_sub(1).filter(|v| *v > 0);
        if stored != wanted {
            return Err(ImportError::DifferentLog {
                position: event.position,
                detail: format!(
                    "stream `{}` is at version {} here, but the import continues it from version {}",
                    event.stream_id,
                    stored.unwrap_or(0),
                    wanted.unwrap_or(0)
                ),
            });
        }
        Ok(())
    }
}

/// Turns a store-level transaction error into an import-level one.
impl Store {
    /// Writes envelopes checked by [`ImportCheck`] as they are, as one
    /// write that commits whole, and syncs. Envelopes at positions the store
    /// already holds are skipped if identical (refused otherwise); the
    /// others must continue the log and every stream's chain. Returns how
    /// many were written. Blocking.
    pub fn import_events(&self, events: &[RecordedEvent]) -> Result<u64, ImportError> {
        for event in events {
            check_envelope(event)?;
        }
        let trees = self.trees();
        let _gate = trees.write_gate();
        // Decide first (nothing written): which envelopes are new, and
        // whether each continues the log and its stream.
        let start = checked_log_end(trees)?;
        let mut last = start;
        let mut heads: HashMap<&str, Option<Head>> = HashMap::new();
        let mut fresh: Vec<&RecordedEvent> = Vec::new();
        let mut fresh_ids = HashSet::new();
        for event in events {
            let position = event.position;
            if position <= last {
                let stored = match position.checked_sub(start + 1) {
                    Some(index) => Cow::Borrowed(fresh[index as usize]),
                    None => {
                        let Some(bytes) = trees.log.get(position)? else {
                            return Err(StoreError::corrupt(
                                position,
                                "the log has a gap below its last position",
                            )
                            .into());
                        };
                        Cow::Owned(codec::decode(position, &bytes)?)
                    }
                };
                check_same_as_stored(&stored, event)?;
                continue;
            }
            if position != last + 1 {
                return Err(invalid(
                    position,
                    format!(
                        "the store ends at {last}, so position {} comes next",
                        last + 1
                    ),
                ));
            }
            let stream = event.stream_id.as_str();
            let head = match heads.get(stream) {
                Some(head) => *head,
                None => plain_head(&trees.heads, stream)?,
            };
            let (version, prev) = head.map_or((0, [0; 32]), |h| (h.version, h.hash));
            check_continues(event, version, prev)?;
            let stored_id = trees
                .event_ids
                .contains_key(event.event_id.as_bytes())
                .map_err(|e| StoreError::sled("read event ids", e))?;
            if stored_id || !fresh_ids.insert(event.event_id) {
                return Err(invalid(
                    position,
                    format!("event id {} is already stored", event.event_id),
                ));
            }
            heads.insert(
                stream,
                Some(Head {
                    version: event.version,
                    hash: event.hash,
                    position,
                }),
            );
            fresh.push(event);
            last = position;
        }
        if fresh.is_empty() {
            return Ok(0);
        }
        // Then the log (one write, flagged as committed), the index entries
        // and the commit, as a bulk append writes them.
        let envelopes = fresh
            .iter()
            .map(|event| codec::encode(event))
            .collect::<Result<Vec<_>, _>>()?;
        let entries = IndexEntries::of(fresh.iter().copied());
        write_decided(trees, &envelopes, entries, &heads, "import")?;
        self.sync_to_disk()?;
        self.durable().advance(last);
        Ok(fresh.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::{BulkAppend, RecordedAt};
    use crate::event::ExpectedVersion;

    fn new_event(n: u128) -> NewEvent {
        NewEvent {
            event_id: Uuid::from_u128(n),
            workspace_id: Uuid::from_u128(9),
            event_type: "Tested".into(),
            schema_version: 1,
            occurred_at: 1000 + n as i64,
            actor: "system:test".into(),
            on_behalf_of: None,
            correlation_id: Some(Uuid::from_u128(77)),
            causation_id: None,
            payload: vec![0x91, n as u8 & 0x7f],
        }
    }

    /// A store holding streams `a` (ids 1, 2, 4) and `b` (id 3), in that
    /// position order, plus `extra` more events on `c` from id 100.
    fn source(extra: u128) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let mut appends = vec![
            BulkAppend {
                stream: "a".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![new_event(1), new_event(2)],
            },
            BulkAppend {
                stream: "b".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![new_event(3)],
            },
            BulkAppend {
                stream: "a".into(),
                expected: ExpectedVersion::Exact(2),
                events: vec![new_event(4)],
            },
        ];
        if extra > 0 {
            appends.push(BulkAppend {
                stream: "c".into(),
                expected: ExpectedVersion::Any,
                events: (100..100 + extra).map(new_event).collect(),
            });
        }
        store
            .append_bulk(&appends, RecordedAt::StoreClock)
            .expect("fill");
        (dir, store)
    }

    fn log(store: &Store) -> Vec<RecordedEvent> {
        store.read_all_raw(1, usize::MAX, None).expect("read")
    }

    fn import(
        store: &Store,
        events: &[RecordedEvent],
    ) -> Result<(ImportSummary, u64), ImportError> {
        let mut check = ImportCheck::new(store);
        for event in events {
            check.check(event)?;
        }
        let summary = check.finish();
        let written = store.import_events(events)?;
        Ok((summary, written))
    }

    #[test]
    fn given_an_export_when_imported_into_an_empty_store_then_the_logs_are_identical() {
        let (_a, from) = source(3);
        let exported = log(&from);
        let dir = tempfile::tempdir().expect("tempdir");
        let into = Store::open(dir.path()).expect("open");
        let (summary, written) = import(&into, &exported).expect("import");
        assert_eq!(summary.new_events, 7);
        assert_eq!(written, 7);
        assert_eq!(log(&into), exported);
        assert_eq!(into.head_position(), 7);
        assert!(into.verify().expect("verify").is_ok());
        drop(into);
        let reopened = Store::open(dir.path()).expect("reopen");
        assert_eq!(log(&reopened), exported);
    }

    #[test]
    fn given_an_imported_log_when_imported_again_then_nothing_changes() {
        let (_a, from) = source(0);
        let exported = log(&from);
        let (_b, into) = {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(dir.path()).expect("open");
            (dir, store)
        };
        import(&into, &exported).expect("first");
        let (summary, written) = import(&into, &exported).expect("second");
        assert_eq!(
            (summary.already_present, summary.new_events, written),
            (4, 0, 0)
        );
        assert_eq!(log(&into), exported);
    }

    #[test]
    fn given_a_tampered_payload_when_checked_then_the_import_is_refused_before_writing() {
        let (_a, from) = source(0);
        let mut exported = log(&from);
        exported[2].payload = vec![0x91, 0x55];
        let dir = tempfile::tempdir().expect("tempdir");
        let into = Store::open(dir.path()).expect("open");
        let mut check = ImportCheck::new(&into);
        let err = exported
            .iter()
            .try_for_each(|e| check.check(e))
            .expect_err("tampered");
        assert_eq!(err.code(), "BROKEN_CHAIN");
        assert!(matches!(err, ImportError::BrokenChain { position: 3, .. }));
        let err = into
            .import_events(&exported)
            .expect_err("write pass re-checks");
        assert_eq!(err.code(), "BROKEN_CHAIN");
        assert_eq!(into.head_position(), 0);
    }

    #[test]
    fn given_a_store_with_another_log_when_imported_then_it_is_refused() {
        let (_a, from) = source(0);
        let exported = log(&from);
        let dir = tempfile::tempdir().expect("tempdir");
        let into = Store::open(dir.path()).expect("open");
        into.append_bulk(
            &[BulkAppend {
                stream: "z".into(),
                expected: ExpectedVersion::Any,
                events: vec![new_event(50)],
            }],
            RecordedAt::StoreClock,
        )
        .expect("other log");
        let err = import(&into, &exported).expect_err("different");
        assert_eq!(err.code(), "DIFFERENT_LOG");
        assert_eq!(into.head_position(), 1);
    }

    #[test]
    fn given_a_partial_export_when_imported_then_it_must_continue_the_store() {
        let (_a, from) = source(2);
        let exported = log(&from);
        let dir = tempfile::tempdir().expect("tempdir");
        let into = Store::open(dir.path()).expect("open");
        let err = import(&into, &exported[3..]).expect_err("gap");
        assert_eq!(err.code(), "LOG_GAP");
        import(&into, &exported[..3]).expect("prefix");
        let (summary, written) = import(&into, &exported[3..]).expect("rest");
        assert_eq!((summary.first_position, written), (4, 3));
        assert_eq!(log(&into), exported);
        assert!(into.verify().expect("verify").is_ok());
    }

    #[test]
    fn given_positions_out_of_order_when_checked_then_the_import_is_refused() {
        let (_a, from) = source(0);
        let mut exported = log(&from);
        exported.swap(1, 2);
        let dir = tempfile::tempdir().expect("tempdir");
        let into = Store::open(dir.path()).expect("open");
        let err = import(&into, &exported).expect_err("order");
        assert_eq!(err.code(), "INVALID_LOG");
        assert_eq!(into.head_position(), 0);
    }
}
