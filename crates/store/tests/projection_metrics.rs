//! The metrics projection: survey figures (CSAT, NPS, CES), case-flow figures (FCR, first
//! response and resolution times, escalation rate, opened/resolved/reopened), attribution to
//! agent, team, channel and workspace, day cells and periods, the leaderboard, and workspace
//! isolation — every expectation computed by hand from the history the test builds.

mod desk;

use std::sync::Arc;
use std::time::Duration;

use desk::*;
use sijil_domain::case::CaseStatus;
use sijil_domain::{
    AgentId, CaseId, Channel, FeedbackSubject, InteractionId, Reward, Score, TeamId, Timestamp,
};
use sijil_store::projections::metrics::{
    self, LeaderboardRow, MetricsProjection, MetricsReport, Scope,
};
use sijil_store::projections::{catch_up_blocking, ProjectionHandle, Projections};

fn handle(store: &sijil_store::Store) -> ProjectionHandle {
    catch_up_blocking(store, Arc::new(MetricsProjection)).expect("catch up")
}

fn report(
    h: &ProjectionHandle,
    desk: &Desk,
    scope: Scope,
    from: Timestamp,
    to: Timestamp,
) -> MetricsReport {
    h.read(|tree| metrics::metrics(tree, desk.ws, scope, from, to))
        .expect("metrics")
}

fn close_to(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|a| (a - expected).abs() < 1e-9)
}

#[tokio::test]
async fn survey_answers_give_exact_csat_nps_and_ces_per_scope() {
    // Given a case on the phone assigned to agent X in team T, and answers about it:
    // NPS 9, 10, 9, 10, 9 (5 promoters), 7, 8, 7 (3 passives), 0, 6 (2 detractors);
    // CSAT 5, 4, 3, 2, 5; CES 7, 5, 6
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let (x, y): (AgentId, AgentId) = (id(), id());
    let team: TeamId = id();
    let case: CaseId = id();
    desk.open(case, Channel::Phone, t(0)).await;
    desk.assign(case, Some(x), Some(team), t(1)).await;
    let about_case = FeedbackSubject::Case(case);
    for (i, nps) in [9, 10, 9, 10, 9, 7, 8, 7, 0, 6].into_iter().enumerate() {
        desk.answer(about_case, Score::Nps(nps), t(10 + i as i64))
            .await;
    }
    for csat in [5, 4, 3, 2, 5] {
        desk.answer(about_case, Score::Csat(csat), t(30)).await;
    }
    for ces in [7, 5, 6] {
        desk.answer(about_case, Score::Ces(ces), t(40)).await;
    }
    // and a CSAT 1 about a live-chat interaction agent Y handled
    let chat: InteractionId = id();
    desk.interaction(chat, y, Channel::LiveChat, None, t(50))
        .await;
    desk.answer(FeedbackSubject::Interaction(chat), Score::Csat(1), t(51))
        .await;
    // and another workspace's answer on the same store
    let other = Desk::new(&store);
    let their_case: CaseId = id();
    other.open(their_case, Channel::Phone, t(0)).await;
    other.assign(their_case, Some(x), Some(team), t(1)).await;
    other
        .answer(FeedbackSubject::Case(their_case), Score::Nps(0), t(5))
        .await;
    // When the projection has caught up
    let h = handle(&store);
    let (from, to) = (day(0), day(1));
    // Then the case's agent, team and channel each see exactly the case's answers
    for scope in [
        Scope::Agent(x),
        Scope::Team(team),
        Scope::Channel(Channel::Phone),
    ] {
        let r = report(&h, &desk, scope, from, to);
        assert_eq!(
            (r.nps_promoters, r.nps_passives, r.nps_detractors),
            (5, 3, 2),
            "{scope:?}"
        );
        assert!(close_to(r.nps, 30.0), "{scope:?}: {:?}", r.nps);
        assert!(
            close_to(r.csat_average, 3.8),
            "{scope:?}: {:?}",
            r.csat_average
        );
        assert!(close_to(r.csat_satisfied_pct, 60.0), "{scope:?}");
        assert!(close_to(r.ces_average, 6.0), "{scope:?}");
        assert_eq!(r.totals.csat_sum, 19);
    }
    // and the interaction's answer counts for its agent and channel only
    let ry = report(&h, &desk, Scope::Agent(y), from, to);
    assert!(close_to(ry.csat_average, 1.0));
    assert_eq!(ry.nps, None);
    assert_eq!(ry.ces_average, None);
    let chat_channel = report(&h, &desk, Scope::Channel(Channel::LiveChat), from, to);
    assert_eq!(chat_channel.totals.csat_count, 1);
    let email = report(&h, &desk, Scope::Channel(Channel::Email), from, to);
    assert_eq!(email.totals, Default::default());
    assert_eq!((email.csat_average, email.nps), (None, None));
    // and the workspace sees both, but nothing of the other workspace
    let ws = report(&h, &desk, Scope::Workspace, from, to);
    assert_eq!(ws.totals.csat_count, 6);
    assert!(close_to(ws.csat_satisfied_pct, 50.0));
    assert!(close_to(ws.nps, 30.0));
    let theirs = h
        .read(|tree| metrics::metrics(tree, other.ws, Scope::Agent(x), from, to))
        .expect("metrics");
    assert_eq!((theirs.nps_detractors, theirs.nps_promoters), (1, 0));
    assert!(close_to(theirs.nps, -100.0));
}

#[tokio::test]
async fn case_flow_gives_fcr_response_resolution_and_escalation_figures() {
    // Given five cases opened on day 0 by email, all assigned to agent X in team T:
    // A: responded at 10 min, resolved FCR at 30
    // B: responded at 20, escalated to team T2 at 25, resolved (not FCR) at 90
    // C: responded at 30, resolved FCR at 60, reopened at 100, resolved again at 120
    // D: resolved FCR at 40, then the customer wrote again on it at 50
    // E: escalated at 5, still open
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let x: AgentId = id();
    let (t1, t2): (TeamId, TeamId) = (id(), id());
    let [a, b, c, d, e]: [CaseId; 5] = [id(), id(), id(), id(), id()];
    for case in [a, b, c, d, e] {
        desk.open(case, Channel::Email, t(0)).await;
        desk.assign(case, Some(x), Some(t1), t(1)).await;
    }
    desk.respond(a, Some(x), t(10)).await;
    desk.resolve(a, true, Some(x), t(30)).await;
    desk.respond(b, Some(x), t(20)).await;
    desk.escalate(b, Some(t2), t(25)).await;
    desk.resolve(b, false, Some(x), t(90)).await;
    desk.respond(c, Some(x), t(30)).await;
    desk.resolve(c, true, Some(x), t(60)).await;
    desk.reopen(c, t(100)).await;
    desk.resolve(c, true, Some(x), t(120)).await;
    desk.resolve(d, true, Some(x), t(40)).await;
    desk.interaction(
        id(),
        x,
        Channel::Email,
        Some((d, CaseStatus::Resolved)),
        t(50),
    )
    .await;
    desk.escalate(e, None, t(5)).await;
    let h = handle(&store);
    // Then, for the workspace over day 0:
    let r = report(&h, &desk, Scope::Workspace, day(0), day(1));
    assert_eq!(r.cases_opened, 5);
    assert_eq!(r.cases_escalated, 2);
    assert!(close_to(r.escalation_rate_pct, 40.0));
    // first responses 10, 20, 30 min: average 20 min
    assert!(close_to(r.first_response_avg_ms, 20.0 * MIN as f64));
    // resolutions 30, 90, 60, 120, 40 min: 5 resolved, average 68 min, median 60 min
    assert_eq!(r.cases_resolved, 5);
    assert!(close_to(r.resolution_avg_ms, 68.0 * MIN as f64));
    assert!(close_to(r.resolution_median_ms, 60.0 * MIN as f64));
    // FCR: only A holds (C was reopened, D had further contact; C's second resolution
    // after a reopen is never FCR): 1 of 5
    assert_eq!(r.totals.resolved_fcr, 1);
    assert!(close_to(r.fcr_pct, 20.0));
    assert_eq!(r.cases_reopened, 1);
    // and agent X, who held every case, has the same figures
    let rx = report(&h, &desk, Scope::Agent(x), day(0), day(1));
    assert_eq!(rx.cases_opened, 5);
    assert_eq!(rx.cases_escalated, 2);
    assert!(close_to(rx.fcr_pct, 20.0));
    assert!(close_to(rx.resolution_avg_ms, 68.0 * MIN as f64));
    assert_eq!(rx.totals, r.totals);
    // while team T2 received one case (B) and resolved it after 90 minutes
    let rt2 = report(&h, &desk, Scope::Team(t2), day(0), day(1));
    assert_eq!(rt2.cases_opened, 1);
    assert_eq!(rt2.cases_escalated, 0);
    assert_eq!(rt2.cases_resolved, 1);
    assert!(close_to(rt2.resolution_avg_ms, 90.0 * MIN as f64));
    assert!(close_to(rt2.fcr_pct, 0.0));
    // and team T1 resolved the other four (C twice)
    let rt1 = report(&h, &desk, Scope::Team(t1), day(0), day(1));
    assert_eq!((rt1.cases_opened, rt1.cases_resolved), (5, 4));
    assert_eq!(rt1.resolution_median_ms, Some(50.0 * MIN as f64));
}

#[tokio::test]
async fn day_cells_sum_over_any_period_of_whole_days() {
    // Given CSAT answers about an interaction: 5 on day 0, 3 on day 1, 1 on day 2
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let agent: AgentId = id();
    let call: InteractionId = id();
    desk.interaction(call, agent, Channel::Phone, None, t(0))
        .await;
    let subject = FeedbackSubject::Interaction(call);
    desk.answer(subject, Score::Csat(5), day(0)).await;
    desk.answer(subject, Score::Csat(3), Timestamp(day(1).0 + 5 * MIN))
        .await;
    desk.answer(subject, Score::Csat(1), Timestamp(day(3).0 - 1))
        .await;
    let h = handle(&store);
    let avg = |from: i64, to: i64| {
        report(&h, &desk, Scope::Agent(agent), day(from), day(to)).csat_average
    };
    // Then each period sums exactly the days it covers
    assert!(close_to(avg(0, 1), 5.0));
    assert!(close_to(avg(1, 2), 3.0));
    assert!(close_to(avg(2, 3), 1.0));
    assert!(close_to(avg(0, 2), 4.0));
    assert!(close_to(avg(0, 3), 3.0));
    assert!(close_to(avg(1, 3), 2.0));
    assert_eq!(avg(3, 10), None);
    assert_eq!(avg(1, 1), None);
    // and a period not on UTC midnights, or reversed, is refused
    let odd = h.read(|tree| metrics::metrics(tree, desk.ws, Scope::Workspace, t(1), day(1)));
    assert_eq!(odd.map(|_| ()).map_err(|e| e.code()), Err("VALIDATION"));
    let reversed = h.read(|tree| metrics::metrics(tree, desk.ws, Scope::Workspace, day(2), day(1)));
    assert_eq!(
        reversed.map(|_| ()).map_err(|e| e.code()),
        Err("VALIDATION")
    );
}

#[tokio::test]
async fn the_leaderboard_ranks_by_the_documented_score() {
    // Given four registered agents and, on day 0:
    // P: CSAT 5, 5, 5 (100 % satisfied: 40 points)
    // Q: CSAT 5, 5, 2 (2/3 satisfied: 26.67) and a 50-point recognition (bonus 2 + 5 = 7)
    // R and S: CSAT 5, 5 (too few answers to count) and kudos each (bonus 2)
    // plus, on day 5, a big recognition for S that lies outside the period
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let supervisor: AgentId = id();
    let [p, q, r, s]: [AgentId; 4] = [id(), id(), id(), id()];
    desk.register_agent(supervisor, "Sup", t(0)).await;
    for (agent, name) in [(p, "Pat"), (q, "Quinn"), (r, "Rana"), (s, "Sami")] {
        desk.register_agent(agent, name, t(0)).await;
    }
    let answers = [
        (p, vec![5, 5, 5]),
        (q, vec![5, 5, 2]),
        (r, vec![5, 5]),
        (s, vec![5, 5]),
    ];
    for (agent, scores) in answers {
        let call: InteractionId = id();
        desk.interaction(call, agent, Channel::Phone, None, t(1))
            .await;
        for score in scores {
            desk.answer(FeedbackSubject::Interaction(call), Score::Csat(score), t(2))
                .await;
        }
    }
    desk.recognise(q, supervisor, Reward::Points(50), t(3))
        .await;
    desk.recognise(r, supervisor, Reward::Kudos, t(3)).await;
    desk.recognise(s, supervisor, Reward::Kudos, t(3)).await;
    desk.recognise(s, supervisor, Reward::Points(500), day(5))
        .await;
    let h = handle(&store);
    // When the leaderboard of day 0 is read
    let board: Vec<LeaderboardRow> = h
        .read(|tree| metrics::leaderboard(tree, desk.ws, day(0), day(1), 10))
        .expect("leaderboard");
    // Then P leads, Q follows, and R and S share third place (ordered by id)
    let (mut tied_first, mut tied_second) = (r, s);
    if s < r {
        std::mem::swap(&mut tied_first, &mut tied_second);
    }
    let order: Vec<(u32, AgentId)> = board.iter().map(|row| (row.rank, row.agent)).collect();
    assert_eq!(
        order,
        vec![(1, p), (2, q), (3, tied_first), (3, tied_second)]
    );
    assert!((board[0].score - 40.0).abs() < 1e-9);
    assert!((board[1].score - (40.0 * 2.0 / 3.0 + 7.0)).abs() < 1e-9);
    assert!((board[2].score - 2.0).abs() < 1e-9);
    assert_eq!(board[0].name.as_deref(), Some("Pat"));
    assert_eq!(board[1].report.recognition_points, 50);
    assert_eq!(board[2].report.totals.csat_count, 2);
    // and `first` keeps the top rows; another period sees S's later recognition
    let top: Vec<AgentId> = h
        .read(|tree| metrics::leaderboard(tree, desk.ws, day(0), day(1), 2))
        .expect("leaderboard")
        .into_iter()
        .map(|row| row.agent)
        .collect();
    assert_eq!(top, vec![p, q]);
    let later = h
        .read(|tree| metrics::leaderboard(tree, desk.ws, day(5), day(6), 10))
        .expect("leaderboard");
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].agent, s);
    assert!(
        (later[0].score - 10.0).abs() < 1e-9,
        "bonus is capped at 10"
    );
    // and another workspace has no leaderboard
    let other = Desk::new(&store);
    let none = h
        .read(|tree| metrics::leaderboard(tree, other.ws, day(0), day(10), 10))
        .expect("leaderboard");
    assert!(none.is_empty());
}

#[tokio::test]
async fn the_running_projection_matches_a_rebuild() {
    // Given running projections while a case history is written
    let (_dir, store) = temp_store();
    let desk = Desk::new(&store);
    let projections =
        Projections::start_with(store.clone(), vec![Arc::new(MetricsProjection)]).expect("start");
    let agent: AgentId = id();
    let case: CaseId = id();
    desk.open(case, Channel::Social, t(0)).await;
    desk.assign(case, Some(agent), None, t(1)).await;
    desk.resolve(case, true, Some(agent), t(20)).await;
    desk.reopen(case, t(30)).await;
    let position = desk
        .answer(FeedbackSubject::Case(case), Score::Nps(10), t(40))
        .await;
    projections
        .wait_for(position, Duration::from_secs(10))
        .await
        .expect("caught up");
    // Then the live figures are right and the live model equals a rebuild
    let r = projections
        .read("metrics", |tree| {
            metrics::metrics(tree, desk.ws, Scope::Agent(agent), day(0), day(1))
        })
        .expect("read")
        .expect("metrics");
    assert_eq!(
        (r.cases_resolved, r.totals.resolved_fcr, r.cases_reopened),
        (1, 0, 1)
    );
    assert!(close_to(r.nps, 100.0));
    let check = projections.check("metrics").await.expect("check");
    assert!(check.is_consistent(), "{check:?}");
}
