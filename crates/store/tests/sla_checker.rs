//! The SLA breach checker: one breach event per missed target, none for met targets, the
//! case's own policy, no duplicates across repeated rounds, restarts or concurrent checkers,
//! and the background task with an injected clock.

mod desk;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use desk::*;
use sijil_domain::{CaseId, Channel, DomainEvent, Priority, SlaPolicy, SlaTarget, Timestamp};
use sijil_store::projections::escalation::EscalationProjection;
use sijil_store::projections::sla::{self, breach_event_id, SlaChecker};
use sijil_store::projections::{decode_event, Projections};
use sijil_store::{Direction, Store};

/// The breaches recorded on `case`'s stream: (target, due, at, actor, event id).
fn breaches(
    store: &Store,
    case: CaseId,
) -> Vec<(SlaTarget, Timestamp, Timestamp, String, uuid::Uuid)> {
    store
        .read_stream(&format!("case-{case}"), 1, Direction::Forward, 1000)
        .expect("read")
        .iter()
        .filter_map(|r| match decode_event(r).expect("decode") {
            DomainEvent::SlaBreached(e) => {
                Some((e.target, e.due_at, e.at, r.actor.clone(), r.event_id))
            }
            _ => None,
        })
        .collect()
}

fn start(store: &Store) -> Projections {
    Projections::start_with(store.clone(), vec![Arc::new(EscalationProjection)]).expect("start")
}

async fn settle(projections: &Projections, store: &Store) {
    projections
        .wait_for(store.head_position(), Duration::from_secs(10))
        .await
        .expect("projections caught up");
}

#[tokio::test]
async fn one_breach_per_missed_target_and_none_for_met_targets() {
    // Given a case nobody answered and one answered in time (respond in 15, resolve in 240)
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let (silent, answered): (CaseId, CaseId) = (id(), id());
    desk.open(silent, Channel::Phone, t(0)).await;
    desk.open(answered, Channel::Email, t(0)).await;
    desk.respond(answered, None, t(10)).await;
    let projections = start(&store);
    settle(&projections, &store).await;
    let checker = SlaChecker::new(store.clone(), projections.clone());
    // When the checker runs at the due time, then just after it
    assert_eq!(checker.check_once(t(15)).await, Ok(0));
    assert_eq!(checker.check_once(t(16)).await, Ok(1));
    // Then the silent case has one first-response breach, recorded by the checker
    let found = breaches(&store, silent);
    assert_eq!(found.len(), 1);
    let (target, due, at, actor, event_id) = found[0].clone();
    assert_eq!((target, due, at), (SlaTarget::FirstResponse, t(15), t(16)));
    assert_eq!(actor, sla::ACTOR);
    assert_eq!(event_id, breach_event_id(silent, SlaTarget::FirstResponse));
    assert!(breaches(&store, answered).is_empty());
    // and running again at once (projection possibly behind) records nothing new
    assert_eq!(checker.check_once(t(16)).await, Ok(0));
    settle(&projections, &store).await;
    assert_eq!(checker.check_once(t(17)).await, Ok(0));
    // When both resolution targets pass
    assert_eq!(checker.check_once(t(241)).await, Ok(2));
    settle(&projections, &store).await;
    assert_eq!(checker.check_once(t(300)).await, Ok(0));
    // Then each case has its resolution breach once, and the silent case two in all
    assert_eq!(breaches(&store, silent).len(), 2);
    let answered_breaches = breaches(&store, answered);
    assert_eq!(answered_breaches.len(), 1);
    assert_eq!(answered_breaches[0].0, SlaTarget::Resolution);
    assert_eq!(answered_breaches[0].1, t(240));
}

#[tokio::test]
async fn the_cases_own_policy_decides_the_due_time() {
    // Given an urgent case (respond in 5 minutes) and a low one (respond in 30)
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let (urgent, low): (CaseId, CaseId) = (id(), id());
    let tight = SlaPolicy {
        first_response_minutes: 5,
        resolution_minutes: 60,
    };
    let loose = SlaPolicy {
        first_response_minutes: 30,
        resolution_minutes: 600,
    };
    desk.open_with(urgent, Channel::Phone, Priority::Urgent, tight, t(0))
        .await;
    desk.open_with(low, Channel::Phone, Priority::Low, loose, t(0))
        .await;
    let projections = start(&store);
    settle(&projections, &store).await;
    let checker = SlaChecker::new(store.clone(), projections.clone());
    // When the checker runs six minutes in
    assert_eq!(checker.check_once(t(6)).await, Ok(1));
    // Then only the urgent case is breached, due at its policy's five minutes
    let found = breaches(&store, urgent);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].0, found[0].1), (SlaTarget::FirstResponse, t(5)));
    assert!(breaches(&store, low).is_empty());
    // and the low case's first response breaches after thirty minutes, its resolution after
    // ten hours, the urgent case's resolution after one hour
    settle(&projections, &store).await;
    assert_eq!(checker.check_once(t(31)).await, Ok(1));
    settle(&projections, &store).await;
    assert_eq!(checker.check_once(t(61)).await, Ok(1));
    settle(&projections, &store).await;
    assert_eq!(checker.check_once(t(599)).await, Ok(0));
    assert_eq!(checker.check_once(t(601)).await, Ok(1));
    assert_eq!(breaches(&store, urgent).len(), 2);
    assert_eq!(breaches(&store, low).len(), 2);
}

#[tokio::test]
async fn a_restart_records_no_duplicate() {
    // Given a checker that recorded a breach
    let dir = tempfile::tempdir().expect("temp dir");
    let case: CaseId = id();
    {
        let store = Store::open(dir.path()).expect("open");
        let desk = Desk::new(&store);
        desk.open(case, Channel::Phone, t(0)).await;
        let projections = start(&store);
        settle(&projections, &store).await;
        let checker = SlaChecker::new(store.clone(), projections.clone());
        assert_eq!(checker.check_once(t(20)).await, Ok(1));
        // (stopped before the projection saw the breach)
    }
    // When the process restarts and the checker runs again, later
    let store = reopen(dir.path()).await;
    let projections = start(&store);
    let checker = SlaChecker::new(store.clone(), projections.clone());
    assert_eq!(checker.check_once(t(25)).await, Ok(0));
    settle(&projections, &store).await;
    assert_eq!(checker.check_once(t(30)).await, Ok(0));
    // Then the stream still holds exactly one first-response breach
    let found = breaches(&store, case);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].2, t(20));
}

/// Opens the store again once the previous instance's background tasks let go of it.
async fn reopen(path: &std::path::Path) -> Store {
    for _ in 0..100 {
        match Store::open(path) {
            Ok(store) => return store,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("the store could not be reopened");
}

#[tokio::test]
async fn concurrent_checkers_record_each_breach_once() {
    // Given ten silent cases and two checkers over the same store
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let mut cases = Vec::new();
    for _ in 0..10 {
        let case: CaseId = id();
        desk.open(case, Channel::Chatbot, t(0)).await;
        cases.push(case);
    }
    let projections = start(&store);
    settle(&projections, &store).await;
    let a = SlaChecker::new(store.clone(), projections.clone());
    let b = SlaChecker::new(store.clone(), projections.clone());
    // When both run at the same time
    let (ra, rb) = tokio::join!(a.check_once(t(16)), b.check_once(t(16)));
    // Then together they recorded each case's first-response breach exactly once
    assert_eq!(ra.expect("a") + rb.expect("b"), 10);
    for case in cases {
        assert_eq!(breaches(&store, case).len(), 1);
    }
}

#[tokio::test]
async fn the_background_task_uses_the_injected_clock() {
    // Given a silent case and a checker task whose clock stands before the due time
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let case: CaseId = id();
    desk.open(case, Channel::Phone, t(0)).await;
    let projections = start(&store);
    settle(&projections, &store).await;
    let now = Arc::new(AtomicI64::new(t(10).millis()));
    let clock = {
        let now = Arc::clone(&now);
        move || Timestamp(now.load(Ordering::SeqCst))
    };
    let task = sla::spawn(
        store.clone(),
        projections.clone(),
        Duration::from_millis(20),
        clock,
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(breaches(&store, case).is_empty(), "nothing is due at t(10)");
    // When the clock passes the first-response due time
    now.store(t(16).millis(), Ordering::SeqCst);
    let mut found = Vec::new();
    for _ in 0..200 {
        found = breaches(&store, case);
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Then the task records the breach once, however many rounds run after it
    tokio::time::sleep(Duration::from_millis(150)).await;
    task.abort();
    let found_after = breaches(&store, case);
    assert_eq!(found.len(), 1);
    assert_eq!(found_after.len(), 1);
    assert_eq!(found_after[0].2, t(16));
}
