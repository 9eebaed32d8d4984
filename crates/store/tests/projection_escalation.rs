//! The escalation projection: case rows, the work queue and its filters, cursor paging,
//! workspace isolation, and the due index the SLA checker reads, on histories built through
//! the case aggregate.

mod desk;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use desk::*;
use sijil_domain::{CaseCommand, CaseId, Channel, SlaTarget, TeamId};
use sijil_store::projections::escalation::{
    self, CaseStatus, EscalationProjection, QueuePage, QueueQuery, Urgency,
};
use sijil_store::projections::{catch_up_blocking, ProjectionHandle, Projections};

fn handle(store: &sijil_store::Store) -> ProjectionHandle {
    catch_up_blocking(store, Arc::new(EscalationProjection)).expect("catch up")
}

fn queue(h: &ProjectionHandle, desk: &Desk, query: QueueQuery) -> QueuePage {
    h.read(|tree| escalation::queue(tree, desk.ws, &query))
        .expect("queue")
}

fn cases(page: &QueuePage) -> Vec<CaseId> {
    page.items.iter().map(|i| i.case.case_id).collect()
}

struct Fixture {
    team_a: TeamId,
    team_b: TeamId,
    c1: CaseId,
    c2: CaseId,
    c3: CaseId,
    c4: CaseId,
    c5: CaseId,
}

/// c1: team A, level 1, first response due t(15).
/// c5: team A, first response breached (due t(20)).
/// c2: team A, escalated to level 2 at t(11), first response due t(25).
/// c3: team B, escalated to level 2, responded: next due is the resolution at t(260).
/// c4: team A, resolved: not queued.
async fn fixture(desk: &Desk) -> Fixture {
    let f = Fixture {
        team_a: id(),
        team_b: id(),
        c1: id(),
        c2: id(),
        c3: id(),
        c4: id(),
        c5: id(),
    };
    desk.open(f.c1, Channel::Phone, t(0)).await;
    desk.assign(f.c1, None, Some(f.team_a), t(1)).await;
    desk.open(f.c5, Channel::Email, t(5)).await;
    desk.assign(f.c5, None, Some(f.team_a), t(6)).await;
    desk.case(
        f.c5,
        CaseCommand::BreachSla {
            target: SlaTarget::FirstResponse,
            now: t(30),
        },
    )
    .await;
    desk.open(f.c2, Channel::LiveChat, t(10)).await;
    desk.assign(f.c2, Some(id()), Some(f.team_a), t(10)).await;
    desk.escalate(f.c2, None, t(11)).await;
    desk.open(f.c3, Channel::Phone, t(20)).await;
    desk.escalate(f.c3, Some(f.team_b), t(21)).await;
    desk.respond(f.c3, None, t(22)).await;
    desk.open(f.c4, Channel::Phone, t(30)).await;
    desk.assign(f.c4, None, Some(f.team_a), t(30)).await;
    desk.resolve(f.c4, true, None, t(40)).await;
    f
}

fn query(now_min: i64) -> QueueQuery {
    QueueQuery {
        now: t(now_min),
        ..QueueQuery::default()
    }
}

#[tokio::test]
async fn queue_filters_by_team_level_and_urgency() {
    // Given five cases in one workspace
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let f = fixture(&desk).await;
    // When the projection has caught up
    let h = handle(&store);
    // Then the workspace queue lists the open cases by next due time
    assert_eq!(
        cases(&queue(&h, &desk, query(12))),
        vec![f.c1, f.c5, f.c2, f.c3]
    );
    // and team, level and urgency filters narrow it
    let team_a = QueueQuery {
        team: Some(f.team_a),
        ..query(12)
    };
    assert_eq!(
        cases(&queue(&h, &desk, team_a.clone())),
        vec![f.c1, f.c5, f.c2]
    );
    let team_b = QueueQuery {
        team: Some(f.team_b),
        ..query(12)
    };
    assert_eq!(cases(&queue(&h, &desk, team_b)), vec![f.c3]);
    let level2 = QueueQuery {
        min_level: 2,
        ..query(12)
    };
    assert_eq!(cases(&queue(&h, &desk, level2)), vec![f.c2, f.c3]);
    let team_a_level2 = QueueQuery {
        min_level: 2,
        ..team_a
    };
    assert_eq!(cases(&queue(&h, &desk, team_a_level2)), vec![f.c2]);
    let breached = QueueQuery {
        urgency: Urgency::Breached,
        ..query(12)
    };
    assert_eq!(cases(&queue(&h, &desk, breached)), vec![f.c5]);
    let due_10 = QueueQuery {
        urgency: Urgency::DueWithin(10),
        ..query(12)
    };
    assert_eq!(cases(&queue(&h, &desk, due_10)), vec![f.c1, f.c5]);
    let due_3 = QueueQuery {
        urgency: Urgency::DueWithin(3),
        ..query(12)
    };
    assert_eq!(cases(&queue(&h, &desk, due_3)), vec![f.c1]);
    // due exactly at now + N is included
    let due_exact = QueueQuery {
        urgency: Urgency::DueWithin(13),
        ..query(12)
    };
    assert_eq!(cases(&queue(&h, &desk, due_exact)), vec![f.c1, f.c5, f.c2]);
    let at_risk = QueueQuery {
        urgency: Urgency::BreachedOrDueWithin(0),
        ..query(15)
    };
    assert_eq!(cases(&queue(&h, &desk, at_risk)), vec![f.c1, f.c5]);
    let page = queue(&h, &desk, query(12));
    let first = &page.items[0];
    assert_eq!(first.next_target, SlaTarget::FirstResponse);
    assert_eq!(first.due_at, t(15));
    assert_eq!(page.items[3].next_target, SlaTarget::Resolution);
    assert_eq!(page.items[3].due_at, t(260));
}

#[tokio::test]
async fn case_rows_hold_level_assignee_sla_and_time_at_level() {
    // Given the fixture's cases
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let f = fixture(&desk).await;
    let h = handle(&store);
    let get = |case| {
        h.read(|tree| escalation::get(tree, desk.ws, case))
            .expect("get")
            .expect("row")
    };
    // Then each row holds the case's escalation state
    let c2 = get(f.c2);
    assert_eq!(c2.level, 2);
    assert_eq!(c2.team, Some(f.team_a));
    assert!(
        c2.agent.is_some(),
        "an escalation without a team keeps the agent"
    );
    assert_eq!(c2.escalation_count, 1);
    assert_eq!(c2.time_at_level, vec![(1, MIN)]);
    assert_eq!(c2.level_since, Some(t(11)));
    assert_eq!(c2.first_response_due, t(25));
    assert_eq!(c2.resolution_due, t(250));
    let c3 = get(f.c3);
    assert_eq!((c3.level, c3.team), (2, Some(f.team_b)));
    assert_eq!(c3.first_response_at, Some(t(22)));
    let c4 = get(f.c4);
    assert_eq!(c4.status, CaseStatus::Resolved);
    assert_eq!(c4.time_at_level, vec![(1, 10 * MIN)]);
    assert_eq!(c4.level_since, None);
    let c5 = get(f.c5);
    assert!(c5.breached_first_response && !c5.breached_resolution);
}

#[tokio::test]
async fn cursor_paging_forward_returns_every_item_exactly_once() {
    // Given 23 open cases, some sharing a due time
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let mut expected = Vec::new();
    for i in 0..23 {
        let case: CaseId = id();
        desk.open(case, Channel::Email, t(i / 2)).await;
        expected.push((t(i / 2), case));
    }
    expected.sort();
    let expected: Vec<CaseId> = expected.into_iter().map(|(_, c)| c).collect();
    let h = handle(&store);
    // When the queue is read four at a time
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = queue(
            &h,
            &desk,
            QueueQuery {
                first: Some(4),
                after: after.clone(),
                ..query(0)
            },
        );
        pages += 1;
        assert!(page.items.len() <= 4);
        seen.extend(cases(&page));
        if !page.has_next {
            break;
        }
        after = page.end_cursor.clone();
        assert!(pages < 20, "paging does not end");
    }
    // Then every case came exactly once, in due order
    assert_eq!(seen, expected);
    assert_eq!(pages, 6);
    let unique: BTreeSet<CaseId> = seen.iter().copied().collect();
    assert_eq!(unique.len(), 23);
    // and bad requests are refused
    let bad_cursor = h.read(|tree| {
        escalation::queue(
            tree,
            desk.ws,
            &QueueQuery {
                after: Some("not-a-cursor".into()),
                ..query(0)
            },
        )
    });
    assert_eq!(
        bad_cursor.map(|_| ()).map_err(|e| e.code()),
        Err("INVALID_CURSOR")
    );
    let too_big = h.read(|tree| {
        escalation::queue(
            tree,
            desk.ws,
            &QueueQuery {
                first: Some(501),
                ..query(0)
            },
        )
    });
    assert_eq!(too_big.map(|_| ()).map_err(|e| e.code()), Err("VALIDATION"));
}

#[tokio::test]
async fn another_workspaces_cases_never_appear() {
    // Given two workspaces on one store, with a case each on the same team id
    let (_dir, store) = temp_store();
    let ours = Desk::new(&store);
    let theirs = Desk::new(&store);
    let team: TeamId = id();
    let (mine, other): (CaseId, CaseId) = (id(), id());
    ours.open(mine, Channel::Phone, t(0)).await;
    ours.assign(mine, None, Some(team), t(1)).await;
    theirs.open(other, Channel::Phone, t(0)).await;
    theirs.assign(other, None, Some(team), t(1)).await;
    let h = handle(&store);
    // Then each workspace sees only its own case, by id and in every queue
    for (desk, own, foreign) in [(&ours, mine, other), (&theirs, other, mine)] {
        assert_eq!(cases(&queue(&h, desk, query(0))), vec![own]);
        let by_team = QueueQuery {
            team: Some(team),
            ..query(0)
        };
        assert_eq!(cases(&queue(&h, desk, by_team)), vec![own]);
        let row = h.read(|tree| escalation::get(tree, desk.ws, foreign));
        assert_eq!(row, Ok(None));
    }
    // and the checker's global due index names each target's workspace
    let due = h
        .read(|tree| escalation::due_before(tree, t(300), None, 100))
        .expect("due");
    assert_eq!(due.len(), 4);
    for d in &due {
        let ws = if d.case_id == mine {
            ours.ws
        } else {
            theirs.ws
        };
        assert_eq!(d.workspace, ws);
    }
}

#[tokio::test]
async fn due_index_follows_the_case_aggregates_breach_rule() {
    // Given cases in different SLA situations
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let (in_time, late, resolved, reopened, closed): (CaseId, CaseId, CaseId, CaseId, CaseId) =
        (id(), id(), id(), id(), id());
    desk.open(in_time, Channel::Phone, t(0)).await;
    desk.respond(in_time, None, t(10)).await;
    desk.open(late, Channel::Phone, t(0)).await;
    desk.respond(late, None, t(20)).await;
    desk.open(resolved, Channel::Phone, t(0)).await;
    desk.resolve(resolved, false, None, t(5)).await;
    desk.open(reopened, Channel::Phone, t(0)).await;
    desk.resolve(reopened, false, None, t(5)).await;
    desk.reopen(reopened, t(200)).await;
    desk.open(closed, Channel::Phone, t(0)).await;
    desk.resolve(closed, false, None, t(5)).await;
    desk.close(closed, t(6)).await;
    let h = handle(&store);
    let due = |now| {
        h.read(|tree| escalation::due_before(tree, now, None, 100))
            .expect("due")
            .into_iter()
            .map(|d| (d.case_id, d.target, d.due_at))
            .collect::<BTreeSet<_>>()
    };
    // Then a response in time settles the first-response target, a late one does not;
    // a resolution settles both; a reopened case is due from its opening again; a closed
    // case is never due
    let expected: BTreeSet<_> = [
        (in_time, SlaTarget::Resolution, t(240)),
        (late, SlaTarget::FirstResponse, t(15)),
        (late, SlaTarget::Resolution, t(240)),
        (reopened, SlaTarget::Resolution, t(240)),
    ]
    .into_iter()
    .collect();
    assert_eq!(due(t(241)), expected);
    // and nothing is due before its time (the due time itself is not past)
    let early: BTreeSet<_> = [(late, SlaTarget::FirstResponse, t(15))]
        .into_iter()
        .collect();
    assert_eq!(due(t(16)), early);
    assert!(due(t(15)).is_empty());
}

#[tokio::test]
async fn the_running_projection_follows_new_events_and_matches_a_rebuild() {
    // Given running projections over a store with a queued case
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let projections = Projections::start_with(store.clone(), vec![Arc::new(EscalationProjection)])
        .expect("start");
    let case: CaseId = id();
    let position = desk.open(case, Channel::Phone, t(0)).await;
    projections
        .wait_for(position, Duration::from_secs(10))
        .await
        .expect("caught up");
    let read = |projections: &Projections| {
        projections
            .read("escalation", |tree| {
                escalation::queue(tree, desk.ws, &query(0))
            })
            .expect("read")
            .expect("queue")
    };
    assert_eq!(cases(&read(&projections)), vec![case]);
    // When the case is resolved
    let position = desk.resolve(case, true, None, t(3)).await;
    projections
        .wait_for(position, Duration::from_secs(10))
        .await
        .expect("caught up");
    // Then it leaves the queue, and the live model equals a rebuild
    assert!(read(&projections).items.is_empty());
    let report = projections.check("escalation").await.expect("check");
    assert!(report.is_consistent(), "{report:?}");
}
