//! Owns the [`Upcasters`] registry: per-type payload migrations applied on
//! read so callers always see an event at its type's current schema version.
//!
//! Upcasting never touches stored bytes; hashes and verification always use
//! what is on disk (see the `*_raw` readers on [`crate::Store`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::StoreError;
use crate::event::RecordedEvent;

/// One migration step: the payload at `from_version` in, the payload at
/// `from_version + 1` out.
type Step = Arc<dyn Fn(rmpv::Value) -> Result<rmpv::Value, String> + Send + Sync>;

/// A registry of upcasting steps keyed by (event type, from version).
#[derive(Clone, Default)]
pub struct Upcasters {
    steps: HashMap<String, HashMap<u16, Step>>,
}

impl std::fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<(&str, u16)> = self
            .steps
            .iter()
            .flat_map(|(t, m)| m.keys().map(move |v| (t.as_str(), *v)))
            .collect();
        keys.sort_unstable();
        f.debug_struct("Upcasters").field("steps", &keys).finish()
    }
}

impl Upcasters {
    /// An empty registry.
    pub fn new() -> Upcasters {
        Upcasters::default()
    }

    /// Registers the step that turns `event_type` payloads at `from_version`
    /// into payloads at `from_version + 1`. Steps chain: a v1 event with steps
    /// for 1 and 2 is read at v3. Registering the same step twice replaces it;
    /// a step from `u16::MAX` is never run.
    pub fn register<F>(
        &mut self,
        event_type: impl Into<String>,
        from_version: u16,
        step: F,
    ) -> &mut Self
    where
        F: Fn(rmpv::Value) -> Result<rmpv::Value, String> + Send + Sync + 'static,
    {
        self.steps
            .entry(event_type.into())
            .or_default()
            .insert(from_version, Arc::new(step));
        self
    }

    /// Whether no step is registered.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The schema version `event_type` is read at, given it was stored at
    /// `stored`.
    pub fn current_version(&self, event_type: &str, stored: u16) -> u16 {
        let Some(steps) = self.steps.get(event_type) else {
            return stored;
        };
        let mut version = stored;
        while version < u16::MAX && steps.contains_key(&version) {
            version += 1;
        }
        version
    }

    /// Brings `event` to its type's current schema version, re-encoding the
    /// payload when any step ran. Events without steps pass through untouched.
    pub fn apply(&self, mut event: RecordedEvent) -> Result<RecordedEvent, StoreError> {
        let Some(steps) = self.steps.get(&event.event_type) else {
            return Ok(event);
        };
        if event.schema_version == u16::MAX || !steps.contains_key(&event.schema_version) {
            return Ok(event);
        }
        let fail = |event: &RecordedEvent, from: u16, detail: String| StoreError::Upcast {
            position: event.position,
            event_type: event.event_type.clone(),
            from_version: from,
            detail,
        };
        let mut value = rmpv::decode::read_value(&mut event.payload.as_slice()).map_err(|e| {
            fail(
                &event,
                event.schema_version,
                format!("stored payload does not decode: {e}"),
            )
        })?;
        let mut version = event.schema_version;
        while version < u16::MAX {
            let Some(step) = steps.get(&version) else {
                break;
            };
            value = step(value).map_err(|detail| fail(&event, version, detail))?;
            version += 1;
        }
        let mut payload = Vec::with_capacity(event.payload.len());
        rmpv::encode::write_value(&mut payload, &value).map_err(|e| {
            fail(
                &event,
                version,
                format!("upcast payload does not encode: {e}"),
            )
        })?;
        event.payload = payload;
        event.schema_version = version;
        Ok(event)
    }
}
