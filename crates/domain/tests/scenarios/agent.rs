//! Agent: registration and recognition.

use crate::fixtures::*;
use sijil_domain::events::*;
use sijil_domain::*;

fn me() -> AgentId {
    agent_id(1)
}

fn supervisor() -> AgentId {
    agent_id(9)
}

fn registered() -> AgentRegistered {
    AgentRegistered {
        agent_id: me(),
        display_name: "Omar".into(),
        teams: vec![team_id(1), team_id(2)],
        at: t(0),
    }
}

fn recognise(n: u64, by: AgentId, reward: Reward, basis: RecognitionBasis) -> AgentCommand {
    AgentCommand::Recognise {
        recognition_id: recognition_id(n),
        by,
        reason: " Calm under pressure ".into(),
        reward,
        basis,
        at: t(10),
    }
}

fn recognised(n: u64, reward: Reward, basis: RecognitionBasis) -> AgentRecognised {
    AgentRecognised {
        recognition_id: recognition_id(n),
        agent_id: me(),
        by: supervisor(),
        reason: "Calm under pressure".into(),
        reward,
        basis,
        at: t(10),
    }
}

fn on_case() -> RecognitionBasis {
    RecognitionBasis::Case(case_id(1))
}

#[test]
fn registering_an_agent_drops_repeated_teams() {
    let state = nothing()
        .when(AgentCommand::Register {
            agent_id: me(),
            display_name: " Omar ".into(),
            teams: vec![team_id(1), team_id(2), team_id(1)],
            at: t(0),
        })
        .then([registered()]);
    assert_eq!(state.agent().map(|a| a.teams.len()), Some(2));
}

#[test]
fn registering_twice_or_without_a_name_is_refused() {
    let register = |name: &str| AgentCommand::Register {
        agent_id: me(),
        display_name: name.into(),
        teams: vec![],
        at: t(0),
    };
    given([registered()])
        .when(register("Omar"))
        .then_err("ALREADY_EXISTS");
    nothing().when(register("")).then_err("INVALID_TEXT");
}

#[test]
fn recognising_an_agent_with_each_kind_of_reward() {
    given([registered()])
        .when(recognise(1, supervisor(), Reward::Kudos, on_case()))
        .then([recognised(1, Reward::Kudos, on_case())]);
    let state = given([registered()])
        .when(recognise(1, supervisor(), Reward::Points(50), on_case()))
        .then([recognised(1, Reward::Points(50), on_case())]);
    assert_eq!(state.agent().map(|a| a.points), Some(50));
    let metric = RecognitionBasis::Metric {
        metric: MetricKind::Csat,
        from: t(0),
        to: t(60 * 24 * 7),
    };
    given([registered()])
        .when(recognise(
            1,
            supervisor(),
            Reward::Voucher {
                amount_minor: 10_000,
                currency: "sar".into(),
            },
            metric,
        ))
        .then([recognised(
            1,
            Reward::Voucher {
                amount_minor: 10_000,
                currency: "SAR".into(),
            },
            metric,
        )]);
}

#[test]
fn recognising_an_unregistered_agent_is_refused() {
    nothing()
        .when(recognise(1, supervisor(), Reward::Kudos, on_case()))
        .then_err("NOT_FOUND");
}

#[test]
fn an_agent_cannot_recognise_themselves() {
    given([registered()])
        .when(recognise(1, me(), Reward::Kudos, on_case()))
        .then_err("SELF_RECOGNITION");
}

#[test]
fn a_reward_must_give_something() {
    given([registered()])
        .when(recognise(1, supervisor(), Reward::Points(0), on_case()))
        .then_err("INVALID_REWARD");
    given([registered()])
        .when(recognise(
            1,
            supervisor(),
            Reward::Voucher {
                amount_minor: 0,
                currency: "EUR".into(),
            },
            on_case(),
        ))
        .then_err("INVALID_REWARD");
    given([registered()])
        .when(recognise(
            1,
            supervisor(),
            Reward::Voucher {
                amount_minor: 500,
                currency: "EURO".into(),
            },
            on_case(),
        ))
        .then_err("INVALID_CURRENCY");
}

#[test]
fn a_recognition_needs_a_reason_a_period_and_a_fresh_id() {
    given([registered()])
        .when(AgentCommand::Recognise {
            recognition_id: recognition_id(1),
            by: supervisor(),
            reason: "\n".into(),
            reward: Reward::Kudos,
            basis: on_case(),
            at: t(10),
        })
        .then_err("INVALID_TEXT");
    given([registered()])
        .when(recognise(
            1,
            supervisor(),
            Reward::Kudos,
            RecognitionBasis::Metric {
                metric: MetricKind::Nps,
                from: t(10),
                to: t(10),
            },
        ))
        .then_err("INVALID_PERIOD");
    given([
        DomainEvent::from(registered()),
        recognised(1, Reward::Kudos, on_case()).into(),
    ])
    .when(recognise(1, supervisor(), Reward::Kudos, on_case()))
    .then_err("ALREADY_EXISTS");
}
