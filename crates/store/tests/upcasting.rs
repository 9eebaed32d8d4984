//! Upcasting on read: a real v1 → v2 payload change, chaining, raw reads and
//! verification over stored bytes, and failing upcasters.

mod common;

use common::{event, msgpack};
use serde::{Deserialize, Serialize};
use sijil_store::{Direction, ExpectedVersion, Store, StoreConfig, StoreError, Upcasters};

/// Version 1 of a test event: the call duration in whole seconds.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct CallLoggedV1 {
    call_id: String,
    duration_secs: u64,
}

/// Version 2: the duration in milliseconds.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct CallLoggedV2 {
    call_id: String,
    duration_ms: u64,
}

/// v1 → v2: rename `duration_secs` to `duration_ms` and scale it.
fn call_logged_v1_to_v2(value: rmpv::Value) -> Result<rmpv::Value, String> {
    let rmpv::Value::Map(entries) = value else {
        return Err("CallLogged v1 payload is not a map".into());
    };
    entries
        .into_iter()
        .map(|(key, value)| {
            if key.as_str() == Some("duration_secs") {
                let secs = value
                    .as_u64()
                    .ok_or("duration_secs is not an unsigned integer")?;
                let ms = secs.checked_mul(1000).ok_or("duration overflows")?;
                Ok((rmpv::Value::from("duration_ms"), rmpv::Value::from(ms)))
            } else {
                Ok((key, value))
            }
        })
        .collect::<Result<Vec<_>, &str>>()
        .map(rmpv::Value::Map)
        .map_err(str::to_owned)
}

fn upcasters() -> Upcasters {
    let mut upcasters = Upcasters::new();
    upcasters.register("CallLogged", 1, call_logged_v1_to_v2);
    upcasters
}

fn v1(call_id: &str, secs: u64) -> sijil_store::NewEvent {
    event(
        "CallLogged",
        &CallLoggedV1 {
            call_id: call_id.into(),
            duration_secs: secs,
        },
    )
}

#[tokio::test]
async fn v1_events_are_read_as_v2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let v1_event = v1("c1", 90);
    {
        // Written by "old code" that knew only v1.
        let store = Store::open(dir.path()).expect("open");
        store
            .append("call-1", ExpectedVersion::NoStream, vec![v1_event.clone()])
            .await
            .expect("append");
    }
    let store =
        Store::open_with(StoreConfig::new(dir.path()).with_upcasters(upcasters())).expect("reopen");
    let mut v2_event = event(
        "CallLogged",
        &CallLoggedV2 {
            call_id: "c2".into(),
            duration_ms: 1500,
        },
    );
    v2_event.schema_version = 2;
    store
        .append("call-1", ExpectedVersion::Exact(1), vec![v2_event.clone()])
        .await
        .expect("append");

    let read = store
        .read_stream("call-1", 1, Direction::Forward, 10)
        .expect("read");
    assert_eq!(read.len(), 2);
    assert!(read.iter().all(|e| e.schema_version == 2));
    let first: CallLoggedV2 = rmp_serde::from_slice(&read[0].payload).expect("v2 payload");
    assert_eq!(
        first,
        CallLoggedV2 {
            call_id: "c1".into(),
            duration_ms: 90_000
        }
    );
    assert_eq!(
        read[1].payload, v2_event.payload,
        "v2 events pass through untouched"
    );
    assert_eq!(store.read_all(1, 10, None).expect("read all"), read);

    // Raw reads and hashes keep the stored v1 bytes.
    let raw = store.read_all_raw(1, 10, None).expect("raw");
    assert_eq!(raw[0].schema_version, 1);
    assert_eq!(raw[0].payload, v1_event.payload);
    assert_eq!(raw[0].hash, read[0].hash);
    let raw_stream = store
        .read_stream_raw("call-1", 1, Direction::Forward, 1)
        .expect("raw");
    assert_eq!(raw_stream[0], raw[0]);
    assert!(store.verify().expect("verify").is_ok());

    // Subscriptions see upcast events too.
    let mut sub = store.subscribe_all(1);
    let seen = sub.next().await.expect("event").expect("ok");
    assert_eq!(seen.schema_version, 2);
    assert_eq!(seen.payload, read[0].payload);
}

#[tokio::test]
async fn steps_chain_and_failures_are_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut upcasters = upcasters();
    upcasters.register("CallLogged", 2, |value| {
        let rmpv::Value::Map(mut entries) = value else {
            return Err("not a map".into());
        };
        entries.push(("source".into(), "legacy".into()));
        Ok(rmpv::Value::Map(entries))
    });
    upcasters.register("Broken", 1, |_| Err("cannot upcast this".into()));
    assert_eq!(upcasters.current_version("CallLogged", 1), 3);
    assert_eq!(upcasters.current_version("Other", 7), 7);
    let store =
        Store::open_with(StoreConfig::new(dir.path()).with_upcasters(upcasters)).expect("open");
    store
        .append("call-2", ExpectedVersion::Any, vec![v1("c3", 2)])
        .await
        .expect("append");
    let read = store
        .read_stream("call-2", 1, Direction::Forward, 1)
        .expect("read");
    assert_eq!(read[0].schema_version, 3);
    let value = rmpv::decode::read_value(&mut read[0].payload.as_slice()).expect("msgpack");
    let expected =
        rmpv::decode::read_value(&mut msgpack(&serde_json_like()).as_slice()).expect("msgpack");
    assert_eq!(value, expected);

    store
        .append(
            "broken-1",
            ExpectedVersion::Any,
            vec![event("Broken", &1u8)],
        )
        .await
        .expect("append");
    let err = store.read_all(1, 10, None).expect_err("upcast failure");
    assert!(
        matches!(
            err,
            StoreError::Upcast {
                position: 2,
                from_version: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "UPCAST");
    assert_eq!(store.read_all_raw(1, 10, None).expect("raw").len(), 2);
}

/// The expected v3 payload of `v1("c3", 2)`.
fn serde_json_like() -> impl Serialize {
    #[derive(Serialize)]
    struct V3 {
        call_id: &'static str,
        duration_ms: u64,
        source: &'static str,
    }
    V3 {
        call_id: "c3",
        duration_ms: 2000,
        source: "legacy",
    }
}
