//! The export file formats and their readers and writers.
//!
//! - **jsonl**: one JSON object per line, one line per event, in position order, with every
//!   envelope field: `position`, `stream_id`, `version`, `event_id`, `workspace_id`,
//!   `event_type`, `schema_version`, `occurred_at` and `recorded_at` (unix ms), `actor`,
//!   `on_behalf_of`, `correlation_id`, `causation_id`, `payload` (the domain event decoded to
//!   JSON for people, `null` if it does not decode), `payload_b64` (the stored MessagePack
//!   bytes, which the hash covers and import uses), `prev_hash` and `hash` (hex).
//! - **msgpack**: the store's own envelope encoding (a MessagePack array per event), one after
//!   the other.
//!
//! A reader tells the two apart by the first byte (`{` starts JSON; an envelope array never
//! does).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sijil_store::projections::decode_event;
use sijil_store::RecordedEvent;
use uuid::Uuid;

/// One line of a jsonl export.
#[derive(Serialize, Deserialize)]
struct JsonEnvelope {
    position: u64,
    stream_id: String,
    version: u64,
    event_id: Uuid,
    workspace_id: Uuid,
    event_type: String,
    schema_version: u16,
    occurred_at: i64,
    recorded_at: i64,
    actor: String,
    on_behalf_of: Option<String>,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    payload: serde_json::Value,
    payload_b64: String,
    prev_hash: String,
    hash: String,
}

/// The domain event of `event` as JSON, `null` if it does not decode.
fn payload_json(event: &RecordedEvent) -> serde_json::Value {
    let Ok(domain) = decode_event(event) else {
        return serde_json::Value::Null;
    };
    domain
        .serialize_payload(serde_json::value::Serializer)
        .unwrap_or(serde_json::Value::Null)
}

/// Writes one event as a jsonl line.
pub fn write_json(out: &mut dyn Write, event: &RecordedEvent) -> Result<()> {
    let line = JsonEnvelope {
        position: event.position,
        stream_id: event.stream_id.clone(),
        version: event.version,
        event_id: event.event_id,
        workspace_id: event.workspace_id,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        occurred_at: event.occurred_at,
        recorded_at: event.recorded_at,
        actor: event.actor.clone(),
        on_behalf_of: event.on_behalf_of.clone(),
        correlation_id: event.correlation_id,
        causation_id: event.causation_id,
        payload: payload_json(event),
        payload_b64: base64::engine::general_purpose::STANDARD.encode(&event.payload),
        prev_hash: hex::encode(event.prev_hash),
        hash: hex::encode(event.hash),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes one event as a MessagePack envelope.
pub fn write_msgpack(out: &mut dyn Write, event: &RecordedEvent) -> Result<()> {
    rmp_serde::encode::write(out, event)?;
    Ok(())
}

fn hash32(field: &str, text: &str) -> Result<[u8; 32]> {
    let bytes = hex::decode(text).map_err(|e| anyhow!("{field} is not hex: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| anyhow!("{field} has {} bytes, expected 32", bytes.len()))
}

impl JsonEnvelope {
    fn into_event(self) -> Result<RecordedEvent> {
        let payload = base64::engine::general_purpose::STANDARD
            .decode(self.payload_b64.as_bytes())
            .map_err(|e| anyhow!("payload_b64 is not base64: {e}"))?;
        Ok(RecordedEvent {
            position: self.position,
            stream_id: self.stream_id,
            version: self.version,
            event_id: self.event_id,
            workspace_id: self.workspace_id,
            event_type: self.event_type,
            schema_version: self.schema_version,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            actor: self.actor,
            on_behalf_of: self.on_behalf_of,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            payload,
            prev_hash: hash32("prev_hash", &self.prev_hash)?,
            hash: hash32("hash", &self.hash)?,
        })
    }
}

/// Reads the events of an export file, in file order.
pub struct LogReader {
    input: BufReader<Box<dyn Read>>,
    json: bool,
    line: u64,
    buffer: String,
}

impl LogReader {
    /// Opens the export file at `path`.
    pub fn open(path: &Path) -> Result<LogReader> {
        let input: Box<dyn Read> =
            Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?);
        let mut input = BufReader::with_capacity(1 << 20, input);
        let first = input
            .fill_buf()
            .with_context(|| format!("cannot read {}", path.display()))?
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .copied();
        Ok(LogReader {
            input,
            json: first == Some(b'{') || first.is_none(),
            line: 0,
            buffer: String::new(),
        })
    }

    fn next_json(&mut self) -> Result<Option<RecordedEvent>> {
        loop {
            self.buffer.clear();
            self.line += 1;
            let read = self
                .input
                .read_line(&mut self.buffer)
                .with_context(|| format!("reading line {}", self.line))?;
            if read == 0 {
                return Ok(None);
            }
            let text = self.buffer.trim();
            if text.is_empty() {
                continue;
            }
            let envelope: JsonEnvelope = serde_json::from_str(text)
                .with_context(|| format!("line {} is not an exported event", self.line))?;
            return envelope
                .into_event()
                .map(Some)
                .with_context(|| format!("line {} is not an exported event", self.line));
        }
    }

    fn next_msgpack(&mut self) -> Result<Option<RecordedEvent>> {
        if self.input.fill_buf()?.is_empty() {
            return Ok(None);
        }
        self.line += 1;
        let event: RecordedEvent =
            rmp_serde::decode::from_read(&mut self.input).with_context(|| {
                format!(
                    "envelope {} of the MessagePack export does not decode",
                    self.line
                )
            })?;
        Ok(Some(event))
    }
}

impl Iterator for LogReader {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = if self.json {
            self.next_json()
        } else {
            self.next_msgpack()
        };
        next.transpose()
    }
}

/// Fails unless `path` names a readable file.
pub fn check_readable(path: &Path) -> Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", path.display());
    }
    Ok(())
}
