//! Owns bounded range scans for paged queries: a key [`Window`] (inclusive lower, exclusive
//! upper bound), and [`scan`], which walks it in either direction, keeps up to `want` accepted
//! entries, probes for one more to answer "is there a next page", and gives up after a budget
//! of rejected entries, reporting where it stopped so a page costs the page, not the history.

use std::ops::Bound;

use super::error::ProjectionError;

/// How many rejected (filtered-out) entries one query may skip before it returns what it has.
pub const SKIP_BUDGET: usize = 10_000;
/// The largest page a query returns.
pub const MAX_PAGE: usize = 500;

/// A key range: `lower <= key < upper` (`upper = None`: unbounded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// Inclusive lower bound.
    pub lower: Vec<u8>,
    /// Exclusive upper bound.
    pub upper: Option<Vec<u8>>,
}

impl Window {
    /// Every key starting with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Window {
        Window {
            lower: prefix.to_vec(),
            upper: super::keys::prefix_end(prefix),
        }
    }

    /// Keeps only keys `>= key`.
    pub fn at_least(&mut self, key: Vec<u8>) {
        if key > self.lower {
            self.lower = key;
        }
    }

    /// Keeps only keys `> key`.
    pub fn above(&mut self, key: &[u8]) {
        let mut next = key.to_vec();
        next.push(0);
        self.at_least(next);
    }

    /// Keeps only keys `< key`.
    pub fn below(&mut self, key: Vec<u8>) {
        match &self.upper {
            Some(upper) if *upper <= key => {}
            _ => self.upper = Some(key),
        }
    }

    /// Keeps only keys `<= key`.
    pub fn at_most(&mut self, key: &[u8]) {
        let mut next = key.to_vec();
        next.push(0);
        self.below(next);
    }

    /// Whether no key can fall in the window.
    pub fn is_empty(&self) -> bool {
        self.upper.as_ref().is_some_and(|u| *u <= self.lower)
    }
}

/// What a scan found.
#[derive(Debug)]
pub struct Scanned<T> {
    /// Accepted entries, in scan order, with their keys.
    pub items: Vec<(Vec<u8>, T)>,
    /// Whether more accepted entries may follow (one was found, or the budget ran out).
    pub more: bool,
    /// The last key examined when the budget ran out (resume after it).
    pub stopped_at: Option<Vec<u8>>,
}

/// Collects a page from entries offered one at a time in scan order: keeps up to `want`
/// accepted entries, notes whether one more was seen, and gives up once `budget` rejections
/// are spent. Used by [`scan`] over tree rows, and by readers whose entries are not one row
/// each (the timeline's blocks).
pub struct Pager<'b, T, F> {
    want: usize,
    budget: &'b mut usize,
    accept: F,
    out: Scanned<T>,
}

impl<'b, T, F> Pager<'b, T, F>
where
    F: FnMut(&[u8], &[u8]) -> Result<Option<T>, ProjectionError>,
{
    /// A pager keeping `want` entries that `accept` takes, skipping at most `budget` others.
    pub fn new(want: usize, budget: &'b mut usize, accept: F) -> Pager<'b, T, F> {
        Pager {
            want,
            budget,
            accept,
            out: Scanned {
                items: Vec::new(),
                more: false,
                stopped_at: None,
            },
        }
    }

    /// Offers the next entry; returns whether the scan should go on.
    pub fn offer(&mut self, key: &[u8], value: &[u8]) -> Result<bool, ProjectionError> {
        match (self.accept)(key, value)? {
            Some(found) => {
                if self.out.items.len() >= self.want {
                    self.out.more = true;
                    return Ok(false);
                }
                self.out.items.push((key.to_vec(), found));
            }
            None => {
                if *self.budget == 0 {
                    self.out.more = true;
                    self.out.stopped_at = Some(key.to_vec());
                    return Ok(false);
                }
                *self.budget -= 1;
            }
        }
        Ok(true)
    }

    /// What was collected.
    pub fn finish(self) -> Scanned<T> {
        self.out
    }
}

/// Walks `window` (backwards when `reverse`), passing each entry to `accept`, until `want`
/// entries are accepted and one more was seen, the window ends, or `budget` rejections were
/// spent.
pub fn scan<T>(
    tree: &sled::Tree,
    window: &Window,
    reverse: bool,
    want: usize,
    budget: &mut usize,
    accept: impl FnMut(&[u8], &[u8]) -> Result<Option<T>, ProjectionError>,
) -> Result<Scanned<T>, ProjectionError> {
    let mut pager = Pager::new(want, budget, accept);
    if window.is_empty() {
        return Ok(pager.finish());
    }
    let upper = match &window.upper {
        Some(u) => Bound::Excluded(u.clone()),
        None => Bound::Unbounded,
    };
    let range = tree.range::<Vec<u8>, _>((Bound::Included(window.lower.clone()), upper));
    let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if reverse {
        Box::new(range.rev())
    } else {
        Box::new(range)
    };
    for item in iter {
        let (key, value) = item.map_err(|e| ProjectionError::sled("scan projection", e))?;
        if !pager.offer(&key, &value)? {
            break;
        }
    }
    Ok(pager.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_both_ways_with_budget() -> Result<(), Box<dyn std::error::Error>> {
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("t")?;
        for i in 0u8..20 {
            tree.insert([b'p', i], &[i % 2][..])?;
        }
        tree.insert([b'q', 0], &[1][..])?;
        let window = Window::prefix(b"p");
        let odd = |_: &[u8], v: &[u8]| Ok((v[0] == 1).then_some(()));
        let mut budget = 100;
        let s = scan(&tree, &window, false, 3, &mut budget, odd)?;
        let keys: Vec<u8> = s.items.iter().map(|(k, _)| k[1]).collect();
        assert_eq!(keys, vec![1, 3, 5]);
        assert!(s.more);
        let s = scan(&tree, &window, true, 30, &mut budget, odd)?;
        assert_eq!(s.items.len(), 10);
        assert!(!s.more);
        assert_eq!(s.items[0].0, vec![b'p', 19]);
        let mut tiny = 2;
        let s = scan(&tree, &window, false, 30, &mut tiny, odd)?;
        assert!(s.more);
        assert_eq!(s.stopped_at, Some(vec![b'p', 4]));
        let mut w = Window::prefix(b"p");
        w.above(&[b'p', 5]);
        w.at_most(&[b'p', 9]);
        let s = scan(&tree, &w, false, 30, &mut budget, |_, _| Ok(Some(())))?;
        let keys: Vec<u8> = s.items.iter().map(|(k, _)| k[1]).collect();
        assert_eq!(keys, vec![6, 7, 8, 9]);
        w.below(vec![b'p', 3]);
        assert!(w.is_empty());
        Ok(())
    }
}
