//! Owns the consistency check: rebuild a projection from scratch into a scratch tree up to the
//! live model's position and compare the two key by key. The live model keeps following the
//! log until the final step, which holds the writer lock so both sides stop at one position.

use std::cmp::Ordering;

use crate::store::Store;

use super::error::ProjectionError;
use super::handle::{lock, ProjectionHandle, RebuildOptions};
use super::meta;
use super::overlay::checkpoint;
use super::rebuild::fill;
use super::status::{CheckReport, KeyDifference};

/// How many differences a report lists.
const EXAMPLES: usize = 10;

fn hex_key(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two trees key by key.
pub(crate) fn compare(
    name: &'static str,
    position: u64,
    live: &sled::Tree,
    rebuilt: &sled::Tree,
) -> Result<CheckReport, ProjectionError> {
    let mut report = CheckReport {
        name,
        position,
        live_keys: 0,
        rebuilt_keys: 0,
        only_live: 0,
        only_rebuilt: 0,
        different: 0,
        examples: Vec::new(),
    };
    let read = |item: Option<sled::Result<(sled::IVec, sled::IVec)>>| {
        item.transpose()
            .map_err(|e| ProjectionError::sled("scan projection for check", e))
    };
    let mut a_iter = live.iter();
    let mut b_iter = rebuilt.iter();
    let mut a = read(a_iter.next())?;
    let mut b = read(b_iter.next())?;
    loop {
        let order = match (&a, &b) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
        };
        let mut note = |key: &[u8], live_len: Option<usize>, rebuilt_len: Option<usize>| {
            if report.examples.len() < EXAMPLES {
                report.examples.push(KeyDifference {
                    key: hex_key(key),
                    live_len,
                    rebuilt_len,
                });
            }
        };
        match (order, &a, &b) {
            (Ordering::Less, Some((ka, va)), _) => {
                note(ka, Some(va.len()), None);
                report.only_live += 1;
                report.live_keys += 1;
                a = read(a_iter.next())?;
            }
            (Ordering::Greater, _, Some((kb, vb))) => {
                note(kb, None, Some(vb.len()));
                report.only_rebuilt += 1;
                report.rebuilt_keys += 1;
                b = read(b_iter.next())?;
            }
            (Ordering::Equal, Some((ka, va)), Some((_, vb))) => {
                if va != vb {
                    note(ka, Some(va.len()), Some(vb.len()));
                    report.different += 1;
                }
                report.live_keys += 1;
                report.rebuilt_keys += 1;
                a = read(a_iter.next())?;
                b = read(b_iter.next())?;
            }
            _ => break,
        }
    }
    Ok(report)
}

impl ProjectionHandle {
    /// Rebuilds the projection into a scratch tree up to the live model's position and
    /// compares the two key by key. Blocking; the live model keeps serving queries.
    pub fn check(&self, store: &Store) -> Result<CheckReport, ProjectionError> {
        let _maintenance = lock(&self.maintenance);
        let name = self.projection.name();
        let scratch_name = meta::scratch_tree_name(name);
        self.db
            .drop_tree(&scratch_name)
            .map_err(|e| ProjectionError::sled("drop scratch tree", e))?;
        let scratch = self
            .db
            .open_tree(&scratch_name)
            .map_err(|e| ProjectionError::sled("open scratch tree", e))?;
        let result = (|| {
            let target = checkpoint(&self.generation().tree)?;
            let bulk = fill(
                store,
                self.projection.as_ref(),
                &scratch,
                Some(target),
                0,
                RebuildOptions::default(),
            )?;
            let _writer = lock(&self.writer);
            let live = self.generation().tree;
            let target = checkpoint(&live)?;
            fill(
                store,
                self.projection.as_ref(),
                &scratch,
                Some(target),
                bulk,
                RebuildOptions::default(),
            )?;
            compare(name, target, &live, &scratch)
        })();
        drop(scratch);
        self.db
            .drop_tree(&scratch_name)
            .map_err(|e| ProjectionError::sled("drop scratch tree", e))?;
        result
    }
}
