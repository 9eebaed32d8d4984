//! Aggregate states the bus folded recently, reused while their stream has not moved.
//!
//! Loading an aggregate reads every event of its stream, decodes it and opens its sealed
//! personal fields; opening a customer to read their timeline did that on every request
//! (~10 % of the server's CPU under the timeline load). A state is kept with the stream
//! version it was folded at and the customer its stream is about, and is handed out again
//! only while the stream's durable version is still that version, so it is always exactly
//! what a fold would give: any new event (a profile change, a merge, a forget) makes it
//! stale. A customer's data key can also be destroyed without an event on this stream (a
//! survivor forgotten after a merge, another node's forget); the caller checks that
//! before reusing a state ([`crate::bus::CommandBus`]).
//!
//! Bounded: beyond [`CAPACITY`] states an arbitrary one makes room.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use sijil_domain::CustomerId;
use uuid::Uuid;

/// States kept at most.
pub const CAPACITY: usize = 4096;

/// Which state: the aggregate's type, the workspace, the stream.
type Key = (TypeId, Uuid, String);

struct Kept {
    state: Arc<dyn Any + Send + Sync>,
    version: u64,
    subject: Option<CustomerId>,
}

/// The kept states.
#[derive(Default)]
pub struct Snapshots {
    kept: Mutex<HashMap<Key, Kept>>,
}

impl Snapshots {
    /// The state of aggregate `A` on `stream` of `workspace` if it was kept at `version`,
    /// with the customer the stream is about.
    pub fn get<A: 'static, S: Clone + 'static>(
        &self,
        workspace: Uuid,
        stream: &str,
        version: u64,
    ) -> Option<(S, Option<CustomerId>)> {
        let key = (TypeId::of::<A>(), workspace, stream.to_owned());
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let hit = kept.get(&key).filter(|k| k.version == version)?;
        let state = hit.state.downcast_ref::<S>()?.clone();
        Some((state, hit.subject))
    }

    /// Keeps `state`, folded at `version`, in place of any older one.
    pub fn put<A: 'static, S: Clone + Send + Sync + 'static>(
        &self,
        workspace: Uuid,
        stream: &str,
        version: u64,
        state: &S,
        subject: Option<CustomerId>,
    ) {
        let key = (TypeId::of::<A>(), workspace, stream.to_owned());
        let kept = Kept {
            state: Arc::new(state.clone()),
            version,
            subject,
        };
        let mut all = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if all.len() >= CAPACITY && !all.contains_key(&key) {
            if let Some(victim) = all.keys().next().cloned() {
                all.remove(&victim);
            }
        }
        all.insert(key, kept);
    }

    /// Drops every state about `customer` (their data key is being destroyed).
    pub fn forget(&self, customer: CustomerId) {
        let mut all = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|_, kept| kept.subject != Some(customer));
    }

    /// States kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct A;
    struct B;

    fn customer() -> CustomerId {
        CustomerId::new(Uuid::now_v7()).unwrap()
    }

    #[test]
    fn a_state_is_handed_out_only_at_the_version_it_was_kept_at() {
        let snapshots = Snapshots::default();
        let ws = Uuid::now_v7();
        let c = customer();
        snapshots.put::<A, String>(ws, "customer-1", 3, &"three".to_owned(), Some(c));
        assert_eq!(
            snapshots.get::<A, String>(ws, "customer-1", 3),
            Some(("three".to_owned(), Some(c)))
        );
        assert_eq!(snapshots.get::<A, String>(ws, "customer-1", 4), None);
        assert_eq!(snapshots.get::<A, String>(ws, "customer-1", 2), None);
        // another workspace, another stream, another aggregate: nothing
        assert_eq!(
            snapshots.get::<A, String>(Uuid::now_v7(), "customer-1", 3),
            None
        );
        assert_eq!(snapshots.get::<A, String>(ws, "customer-2", 3), None);
        assert_eq!(snapshots.get::<B, String>(ws, "customer-1", 3), None);
        // a newer fold replaces the older one
        snapshots.put::<A, String>(ws, "customer-1", 4, &"four".to_owned(), Some(c));
        assert_eq!(snapshots.get::<A, String>(ws, "customer-1", 3), None);
        assert_eq!(snapshots.len(), 1);
        // forgetting the customer drops what was kept about them
        snapshots.put::<A, String>(ws, "case-1", 9, &"case".to_owned(), Some(c));
        snapshots.put::<A, String>(ws, "customer-2", 1, &"other".to_owned(), Some(customer()));
        snapshots.forget(c);
        assert_eq!(snapshots.len(), 1);
        assert!(snapshots.get::<A, String>(ws, "customer-2", 1).is_some());
    }

    #[test]
    fn it_holds_at_most_its_capacity() {
        let snapshots = Snapshots::default();
        let ws = Uuid::now_v7();
        for i in 0..CAPACITY + 100 {
            snapshots.put::<A, u64>(ws, &format!("s-{i}"), 1, &(i as u64), None);
        }
        assert_eq!(snapshots.len(), CAPACITY);
        let last = format!("s-{}", CAPACITY + 99);
        assert_eq!(
            snapshots.get::<A, u64>(ws, &last, 1),
            Some(((CAPACITY + 99) as u64, None))
        );
    }
}
