//! Property test: random appends across a few streams with random
//! expectations; a plain map of stream versions predicts exactly which
//! succeed, and the store verifies afterwards.

mod common;

use std::collections::HashMap;

use common::{events, temp_store};
use proptest::prelude::*;
use sijil_store::{ExpectedVersion, StoreError};

#[derive(Clone, Debug)]
struct Op {
    stream: usize,
    expected: ExpectedVersion,
    batch: usize,
}

fn op() -> impl Strategy<Value = Op> {
    let expected = prop_oneof![
        Just(ExpectedVersion::Any),
        Just(ExpectedVersion::NoStream),
        (0u64..8).prop_map(ExpectedVersion::Exact),
    ];
    (0usize..3, expected, 1usize..4).prop_map(|(stream, expected, batch)| Op {
        stream,
        expected,
        batch,
    })
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (_dir, store) = temp_store();
        let mut model: HashMap<usize, u64> = HashMap::new();
        let mut head = 0u64;
        for op in ops {
            let stream = format!("stream-{}", op.stream);
            let current = model.get(&op.stream).copied();
            let should_succeed = match op.expected {
                ExpectedVersion::Any => true,
                ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => current.is_none(),
                ExpectedVersion::Exact(v) => current == Some(v),
            };
            let result = store
                .append(&stream, op.expected, events("E", op.batch))
                .await;
            match result {
                Ok(r) => {
                    prop_assert!(should_succeed, "{op:?} succeeded against {current:?}");
                    let version = current.unwrap_or(0) + op.batch as u64;
                    prop_assert_eq!(r.first_position, head + 1);
                    prop_assert_eq!(r.last_position, head + op.batch as u64);
                    prop_assert_eq!(r.next_version, version + 1);
                    head = r.last_position;
                    model.insert(op.stream, version);
                }
                Err(StoreError::Conflict { actual, .. }) => {
                    prop_assert!(!should_succeed, "{op:?} conflicted against {current:?}");
                    prop_assert_eq!(actual, current);
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
        prop_assert_eq!(store.head_position(), head);
        for s in 0..3 {
            let version = store
                .stream_version(&format!("stream-{s}"))
                .expect("version");
            prop_assert_eq!(version, model.get(&s).copied());
        }
        let report = store.verify().expect("verify");
        prop_assert!(report.is_ok(), "{report:?}");
        prop_assert_eq!(report.events_checked, head);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn model_agrees_with_store(ops in prop::collection::vec(op(), 1..30)) {
        run(ops)?;
    }
}
