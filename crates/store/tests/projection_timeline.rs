//! The customer timeline projection: a hand-computed timeline across channels and entry
//! kinds, filters, cursor paging in both directions (property test), merges and erasure, all
//! driven by real domain commands appended to a real store.

mod projection_support;

use std::sync::Arc;

use projection_support::{append_blocking, World, EPOCH_MS};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sijil_domain::aggregates::case::Command as CaseCmd;
use sijil_domain::aggregates::follow_up::Command as FollowUpCmd;
use sijil_domain::{Channel, CustomerId, Score, SlaTarget, Timestamp, WorkspaceId};
use sijil_store::projections::timeline::{
    self, EntryKind, TimelineEntry, TimelinePage, TimelineProjection, TimelineQuery, ERASED,
};
use sijil_store::projections::{catch_up_blocking, ProjectionError, ProjectionHandle};
use sijil_store::Store;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn build(worlds: &[&World]) -> (tempfile::TempDir, Store, ProjectionHandle) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    for world in worlds {
        append_blocking(&store, world.ws, &world.log);
    }
    let handle =
        catch_up_blocking(&store, Arc::new(TimelineProjection)).expect("catch up timeline");
    (dir, store, handle)
}

fn page(
    h: &ProjectionHandle,
    ws: WorkspaceId,
    customer: CustomerId,
    query: &TimelineQuery,
) -> Result<TimelinePage, ProjectionError> {
    h.read(|t| timeline::page(t, ws, customer, query))
}

/// Every entry, in one page.
fn all(
    h: &ProjectionHandle,
    ws: WorkspaceId,
    customer: CustomerId,
) -> Result<Vec<TimelineEntry>, ProjectionError> {
    let p = page(
        h,
        ws,
        customer,
        &TimelineQuery {
            first: Some(500),
            ..TimelineQuery::default()
        },
    )?;
    assert!(!p.has_next);
    Ok(p.entries)
}

/// (minutes after the epoch, kind, channel, summary) of each entry.
fn shape(entries: &[TimelineEntry]) -> Vec<(i64, EntryKind, Option<Channel>, String)> {
    entries
        .iter()
        .map(|e| {
            (
                (e.at.millis() - EPOCH_MS) / 60_000,
                e.kind,
                e.channel,
                e.summary.clone(),
            )
        })
        .collect()
}

/// A customer's history across channels and every case step; returns the world and the
/// customer. Each command takes the next minute of the clock (minute 0 is the first).
fn journey() -> Result<(World, CustomerId), Box<dyn std::error::Error>> {
    let mut w = World::new(11);
    let noura = w.register_agent("Noura")?; // 0
    let khalid = w.register_agent("Khalid")?; // 1
    let amina = w.register("Amina Al-Harbi", "C-1", &[])?; // 2
    w.interaction(
        amina,
        Channel::Phone,
        "Asked about invoice",
        None,
        Some(noura),
    )?; // 3
    let case = w.open_case(amina, "Double charge", Channel::Email)?; // 4
    let at = w.at(); // 5
    w.case(
        case,
        CaseCmd::Assign {
            agent: Some(noura),
            team: None,
            at,
        },
    )?;
    let at = w.at(); // 6
    w.case(
        case,
        CaseCmd::Escalate {
            reason: "needs billing".into(),
            team: None,
            at,
        },
    )?;
    let at = w.at(); // 7
    w.case(
        case,
        CaseCmd::GiveFirstResponse {
            agent: Some(noura),
            channel: Channel::LiveChat,
            at,
        },
    )?;
    // Resolution was due at minute 4 + 240 = 244; the breach is seen at minute 300.
    w.now = EPOCH_MS + 300 * 60_000;
    let now = w.at(); // 300
    w.case(
        case,
        CaseCmd::BreachSla {
            target: SlaTarget::Resolution,
            now,
        },
    )?;
    w.case_note(case, "customer called again")?; // 301
    w.interaction(amina, Channel::LiveChat, "chat follow-up", Some(case), None)?; // 302
    let at = w.at(); // 303
    w.case(
        case,
        CaseCmd::Resolve {
            resolution: "refunded".into(),
            root_cause: "duplicate charge".into(),
            first_contact_resolution: false,
            agent: Some(noura),
            at,
        },
    )?;
    let at = w.at(); // 304
    w.case(
        case,
        CaseCmd::Reopen {
            reason: "charged again".into(),
            at,
        },
    )?;
    let at = w.at(); // 305
    w.case(
        case,
        CaseCmd::Resolve {
            resolution: "refunded twice".into(),
            root_cause: "billing bug".into(),
            first_contact_resolution: false,
            agent: Some(noura),
            at,
        },
    )?;
    let at = w.at(); // 306
    w.case(case, CaseCmd::Close { at })?;
    w.survey(amina, case, Score::Csat(5), Some("great help"))?; // 307
    let follow_up = w.schedule_follow_up(amina, "check next bill")?; // 308
    let at = w.at(); // 309
    w.follow_up(
        follow_up,
        FollowUpCmd::Complete {
            outcome: "all good".into(),
            agent: None,
            at,
        },
    )?;
    w.recognise(noura, khalid, case, "kept calm")?; // 310
    w.interaction(amina, Channel::Messaging, "thanks!", None, None)?; // 311
                                                                      // Recorded last but happened at minute 200: it sorts by occurrence.
    w.now = EPOCH_MS + 200 * 60_000;
    w.interaction(amina, Channel::Email, "late email", None, Some(noura))?; // 200
    Ok((w, amina))
}

#[test]
fn hand_computed_timeline_in_occurrence_order() -> TestResult {
    let (w, amina) = journey()?;
    let (_dir, _store, h) = build(&[&w]);
    use Channel::*;
    use EntryKind::*;
    let s = |t: &str| t.to_owned();
    let expected =
        vec![
        (2, Registered, None, s("Registered: Amina Al-Harbi (C-1)")),
        (3, Interaction, Some(Phone), s("Inbound phone: Asked about invoice")),
        (4, CaseOpened, Some(Email), s("Case opened (High priority, billing): Double charge")),
        (5, CaseAssigned, None, s("Assigned to Noura")),
        (6, CaseEscalated, None, s("Escalated to level 2: needs billing")),
        (7, FirstResponse, Some(LiveChat), s("First response by Noura")),
        (200, Interaction, Some(Email), s("Inbound email: late email")),
        (300, SlaBreached, None, s("Resolution target breached (56 min late)")),
        (301, Note, None, s("Note on case: customer called again")),
        (302, Interaction, Some(LiveChat), s("Inbound live chat (bot faq-bot): chat follow-up")),
        (303, CaseResolved, None, s("Resolved (root cause: duplicate charge): refunded")),
        (304, CaseReopened, None, s("Reopened: charged again")),
        (305, CaseResolved, None, s("Resolved (root cause: billing bug): refunded twice")),
        (306, CaseClosed, None, s("Closed")),
        (307, SurveyAnswered, None, s("CSAT 5/5: great help")),
        (
            308,
            FollowUpScheduled,
            None,
            s("Follow-up scheduled (CheckAfterFix), due 2024-01-02 05:08 UTC: check next bill"),
        ),
        (309, FollowUpCompleted, None, s("Follow-up completed: all good")),
        (310, Recognition, None, s("Noura recognised (kudos): kept calm")),
        (311, Interaction, Some(Messaging), s("Inbound messaging (bot faq-bot): thanks!")),
    ];
    let entries = all(&h, w.ws, amina)?;
    assert_eq!(shape(&entries), expected);
    assert_eq!(
        h.read(|t| timeline::count(t, w.ws, amina))?,
        expected.len() as u64
    );
    assert!(entries.iter().all(|e| e.actor == "agent:test"));
    assert!(entries.iter().all(|e| e.origin_customer.is_none()));
    // Newest first is the exact reverse
    let newest = page(
        &h,
        w.ws,
        amina,
        &TimelineQuery {
            first: Some(500),
            newest_first: true,
            ..TimelineQuery::default()
        },
    )?;
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(shape(&newest.entries), reversed);
    Ok(())
}

#[test]
fn filters_by_channel_kind_and_time() -> TestResult {
    let (w, amina) = journey()?;
    let (_dir, _store, h) = build(&[&w]);
    let minutes = |q: TimelineQuery| -> Result<Vec<i64>, ProjectionError> {
        let p = page(
            &h,
            w.ws,
            amina,
            &TimelineQuery {
                first: Some(500),
                ..q
            },
        )?;
        Ok(shape(&p.entries).into_iter().map(|(m, ..)| m).collect())
    };
    // Channel: entries on those channels only (entries without a channel are left out)
    assert_eq!(
        minutes(TimelineQuery {
            channels: Some(vec![Channel::LiveChat]),
            ..Default::default()
        })?,
        vec![7, 302]
    );
    assert_eq!(
        minutes(TimelineQuery {
            channels: Some(vec![Channel::Email, Channel::Phone]),
            ..Default::default()
        })?,
        vec![3, 4, 200]
    );
    // Kind
    assert_eq!(
        minutes(TimelineQuery {
            kinds: Some(vec![EntryKind::CaseResolved, EntryKind::CaseReopened]),
            ..Default::default()
        })?,
        vec![303, 304, 305]
    );
    // Time range: from inclusive, to exclusive
    let at = |m: i64| Timestamp(EPOCH_MS + m * 60_000);
    assert_eq!(
        minutes(TimelineQuery {
            from: Some(at(7)),
            to: Some(at(302)),
            ..Default::default()
        })?,
        vec![7, 200, 300, 301]
    );
    // All three together
    assert_eq!(
        minutes(TimelineQuery {
            kinds: Some(vec![EntryKind::Interaction]),
            channels: Some(vec![Channel::Email, Channel::Messaging]),
            from: Some(at(100)),
            ..Default::default()
        })?,
        vec![200, 311]
    );
    // Contradictory or oversized requests are refused
    let err = page(
        &h,
        w.ws,
        amina,
        &TimelineQuery {
            first: Some(1),
            last: Some(1),
            ..Default::default()
        },
    )
    .expect_err("first and last");
    assert_eq!(err.code(), "VALIDATION");
    let err = page(
        &h,
        w.ws,
        amina,
        &TimelineQuery {
            after: Some("garbage".into()),
            ..Default::default()
        },
    )
    .expect_err("bad cursor");
    assert_eq!(err.code(), "INVALID_CURSOR");
    Ok(())
}

/// Pages through the whole timeline with the given page sizes (cycled), forward with
/// `first`/`after` or backward with `last`/`before`; returns positions in reading order.
fn walk(
    h: &ProjectionHandle,
    ws: WorkspaceId,
    customer: CustomerId,
    sizes: &[usize],
    backward: bool,
    base: &TimelineQuery,
) -> Result<Vec<u64>, TestCaseError> {
    let mut out: Vec<u64> = Vec::new();
    let mut cursor: Option<String> = None;
    for step in 0..10_000 {
        let size = sizes[step % sizes.len()];
        let mut q = base.clone();
        if backward {
            q.last = Some(size);
            q.before = cursor.clone();
        } else {
            q.first = Some(size);
            q.after = cursor.clone();
        }
        let p = page(h, ws, customer, &q).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(p.entries.len() <= size);
        let positions: Vec<u64> = p.entries.iter().map(|e| e.position).collect();
        if backward {
            // A backward page is in reading order; it goes before what we have.
            let mut next = positions;
            next.extend(out);
            out = next;
            if !p.has_previous {
                return Ok(out);
            }
            cursor = p.start_cursor.clone();
        } else {
            out.extend(positions);
            if !p.has_next {
                return Ok(out);
            }
            cursor = p.end_cursor.clone();
        }
        prop_assert!(cursor.is_some());
    }
    Err(TestCaseError::fail("paging did not end"))
}

#[test]
fn paging_both_ways_returns_every_entry_exactly_once() -> TestResult {
    // Given customers with 0, 1, 7 and 130 entries (interactions on rotating channels)
    let mut w = World::new(12);
    let mut customers = Vec::new();
    for (i, n) in [0usize, 1, 7, 130].into_iter().enumerate() {
        let c = w.register(&format!("Pager {i}"), &format!("P-{i}"), &[])?;
        for k in 0..n {
            let channel = Channel::ALL[k % 4];
            w.interaction(c, channel, &format!("contact {k}"), None, None)?;
        }
        customers.push(c);
    }
    let (_dir, _store, h) = build(&[&w]);
    let ws = w.ws;
    let mut reference = Vec::new();
    for c in &customers {
        let entries = all(&h, ws, *c)?;
        let mut sorted = entries.clone();
        sorted.sort_by_key(|e| (e.at, e.position));
        assert_eq!(entries, sorted);
        reference.push(entries);
    }
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    let strategy = (
        0..customers.len(),
        proptest::collection::vec(1usize..20, 1..5),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some(vec![Channel::Phone, Channel::Email]))],
    );
    runner.run(
        &strategy,
        |(which, sizes, backward, newest_first, channels)| {
            let base = TimelineQuery {
                newest_first,
                channels: channels.clone(),
                ..Default::default()
            };
            let got = walk(&h, ws, customers[which], &sizes, backward, &base)?;
            let mut expected: Vec<u64> = reference[which]
                .iter()
                .filter(|e| {
                    channels
                        .as_ref()
                        .is_none_or(|cs| e.channel.is_some_and(|c| cs.contains(&c)))
                })
                .map(|e| e.position)
                .collect();
            if newest_first {
                expected.reverse();
            }
            prop_assert_eq!(got, expected);
            Ok(())
        },
    )?;
    Ok(())
}

#[test]
fn merged_history_moves_to_the_survivor() -> TestResult {
    // Given B with an interaction and an open case, merged into A; the case is then resolved
    let mut w = World::new(13);
    let a = w.register("Samir Aziz", "C-A", &[])?; // 0
    let b = w.register("Sameer Aziz", "C-B", &[])?; // 1
    w.interaction(a, Channel::Phone, "A calls", None, None)?; // 2
    w.interaction(b, Channel::Email, "B writes", None, None)?; // 3
    let case = w.open_case(b, "B's problem", Channel::Social)?; // 4
    w.merge(b, a)?; // 5
    let at = w.at(); // 6
    w.case(
        case,
        CaseCmd::Resolve {
            resolution: "fixed".into(),
            root_cause: "config".into(),
            first_contact_resolution: false,
            agent: None,
            at,
        },
    )?;
    let (_dir, _store, h) = build(&[&w]);
    let ws = w.ws;
    // Then A's timeline holds B's history, marked with its origin, and the later resolution
    let entries = all(&h, ws, a)?;
    let got: Vec<(i64, EntryKind, Option<CustomerId>)> = entries
        .iter()
        .map(|e| {
            (
                (e.at.millis() - EPOCH_MS) / 60_000,
                e.kind,
                e.origin_customer,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, EntryKind::Registered, None),
            (1, EntryKind::Registered, Some(b)),
            (2, EntryKind::Interaction, None),
            (3, EntryKind::Interaction, Some(b)),
            (4, EntryKind::CaseOpened, Some(b)),
            (5, EntryKind::Merged, Some(b)),
            (6, EntryKind::CaseResolved, Some(b)),
        ]
    );
    assert_eq!(h.read(|t| timeline::count(t, ws, a))?, 7);
    assert_eq!(h.read(|t| timeline::survivor(t, ws, b))?, a);
    assert_eq!(h.read(|t| timeline::survivor(t, ws, a))?, a);
    // And B's own range keeps B's history up to the merge
    let own: Vec<EntryKind> = all(&h, ws, b)?.iter().map(|e| e.kind).collect();
    assert_eq!(
        own,
        vec![
            EntryKind::Registered,
            EntryKind::Interaction,
            EntryKind::CaseOpened,
            EntryKind::Merged
        ]
    );
    Ok(())
}

#[test]
fn forgotten_customers_entries_carry_no_personal_text() -> TestResult {
    // Given A (with B merged into it) who talked, wrote notes and answered a survey, then is
    // forgotten; their case is closed afterwards
    let mut w = World::new(14);
    let a = w.register("Rania Haddad", "C-R", &[])?;
    let b = w.register("Rania H.", "C-RB", &[])?;
    w.interaction(b, Channel::Email, "secret-b-interaction", None, None)?;
    w.interaction(a, Channel::Phone, "secret-a-interaction", None, None)?;
    let case = w.open_case(a, "secret-subject", Channel::Phone)?;
    w.case_note(case, "secret-note")?;
    let at = w.at();
    w.case(
        case,
        CaseCmd::Resolve {
            resolution: "secret-resolution".into(),
            root_cause: "config".into(),
            first_contact_resolution: true,
            agent: None,
            at,
        },
    )?;
    w.survey(a, case, Score::Nps(3), Some("secret-comment"))?;
    w.merge(b, a)?;
    w.forget(a)?;
    let at = w.at();
    w.case(case, CaseCmd::Close { at })?;
    let other = w.register("Untouched", "C-U", &[])?;
    w.interaction(other, Channel::Phone, "public-ish", None, None)?;
    let (_dir, _store, h) = build(&[&w]);
    let ws = w.ws;
    for customer in [a, b] {
        let entries = all(&h, ws, customer)?;
        assert!(!entries.is_empty());
        for e in &entries {
            for secret in ["secret", "Rania", "Haddad", "C-R"] {
                assert!(
                    !e.summary.contains(secret),
                    "{:?} leaks {secret}",
                    e.summary
                );
            }
        }
        // The facts of service remain
        assert!(entries.iter().any(|e| e.kind == EntryKind::Interaction));
    }
    let a_entries = all(&h, ws, a)?;
    let erased = a_entries
        .iter()
        .filter(|e| e.summary.ends_with(ERASED))
        .count();
    assert!(
        erased >= 7,
        "registration, interactions, case, note, resolution, survey: {erased}"
    );
    assert!(a_entries.iter().any(|e| e.kind == EntryKind::CaseClosed));
    assert!(a_entries.iter().any(|e| e.kind == EntryKind::Forgotten));
    let resolved = a_entries
        .iter()
        .find(|e| e.kind == EntryKind::CaseResolved)
        .expect("resolution entry");
    assert_eq!(
        resolved.summary,
        format!("Resolved (root cause: config, first contact): {ERASED}")
    );
    // Another customer keeps their text
    let kept = all(&h, ws, other)?;
    assert!(kept.iter().any(|e| e.summary.contains("public-ish")));
    Ok(())
}

#[test]
fn workspaces_never_see_each_other() -> TestResult {
    let mut w1 = World::new(15);
    let mut w2 = World::new(16);
    let c1 = w1.register("One", "C-1", &[])?;
    w1.interaction(c1, Channel::Phone, "ws1 only", None, None)?;
    let c2 = w2.register("Two", "C-1", &[])?;
    let (_dir, _store, h) = build(&[&w1, &w2]);
    assert!(all(&h, w2.ws, c1)?.is_empty());
    assert!(all(&h, w1.ws, c2)?.is_empty());
    assert_eq!(all(&h, w1.ws, c1)?.len(), 2);
    assert_eq!(h.read(|t| timeline::count(t, w2.ws, c1))?, 0);
    Ok(())
}
