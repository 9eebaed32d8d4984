//! Case: open, assign, first response, escalation levels, SLA breaches, resolve, reopen,
//! close, notes.

use crate::fixtures::*;
use sijil_domain::case::{self, CaseStatus};
use sijil_domain::events::*;
use sijil_domain::*;

const SLA: SlaPolicy = SlaPolicy {
    first_response_minutes: 15,
    resolution_minutes: 240,
};

fn me() -> CaseId {
    case_id(1)
}

fn open_with(customer: CustomerStatus, top_level: u8) -> CaseCommand {
    CaseCommand::Open {
        case_id: me(),
        customer_id: customer_id(1),
        customer,
        subject: "  Card declined at checkout ".into(),
        category: "payments".into(),
        priority: Priority::Urgent,
        channel: Channel::LiveChat,
        sla: SLA,
        top_level,
        at: t(0),
    }
}

fn opened() -> DomainEvent {
    opened_with_top(3)
}

fn opened_with_top(top_level: u8) -> DomainEvent {
    CaseOpened {
        case_id: me(),
        customer_id: customer_id(1),
        subject: "Card declined at checkout".into(),
        category: "payments".into(),
        priority: Priority::Urgent,
        channel: Channel::LiveChat,
        sla: SLA,
        top_level,
        at: t(0),
    }
    .into()
}

fn responded(minute: i64) -> DomainEvent {
    FirstResponseGiven {
        case_id: me(),
        agent: Some(agent_id(1)),
        channel: Channel::LiveChat,
        at: t(minute),
    }
    .into()
}

fn escalated(from: u8, minute: i64) -> DomainEvent {
    CaseEscalated {
        case_id: me(),
        from_level: from,
        to_level: from + 1,
        reason: "needs tier 2".into(),
        team: None,
        at: t(minute),
    }
    .into()
}

fn resolved(minute: i64) -> DomainEvent {
    CaseResolved {
        case_id: me(),
        resolution: "Card re-enabled".into(),
        root_cause: "fraud-rule".into(),
        first_contact_resolution: true,
        agent: Some(agent_id(1)),
        at: t(minute),
    }
    .into()
}

fn reopened(minute: i64) -> DomainEvent {
    CaseReopened {
        case_id: me(),
        reason: "declined again".into(),
        at: t(minute),
    }
    .into()
}

fn closed(minute: i64) -> DomainEvent {
    CaseClosed {
        case_id: me(),
        at: t(minute),
    }
    .into()
}

fn closed_case() -> Vec<DomainEvent> {
    vec![opened(), resolved(30), closed(60)]
}

fn resolved_case() -> Vec<DomainEvent> {
    vec![opened(), resolved(30)]
}

fn assign() -> CaseCommand {
    CaseCommand::Assign {
        agent: Some(agent_id(1)),
        team: Some(team_id(1)),
        at: t(1),
    }
}

fn respond(minute: i64) -> CaseCommand {
    CaseCommand::GiveFirstResponse {
        agent: Some(agent_id(1)),
        channel: Channel::LiveChat,
        at: t(minute),
    }
}

fn escalate(minute: i64) -> CaseCommand {
    CaseCommand::Escalate {
        reason: "needs tier 2".into(),
        team: None,
        at: t(minute),
    }
}

fn deescalate(minute: i64) -> CaseCommand {
    CaseCommand::Deescalate {
        reason: "back to front line".into(),
        team: Some(team_id(1)),
        at: t(minute),
    }
}

fn resolve(minute: i64) -> CaseCommand {
    CaseCommand::Resolve {
        resolution: "Card re-enabled".into(),
        root_cause: "fraud-rule".into(),
        first_contact_resolution: true,
        agent: Some(agent_id(1)),
        at: t(minute),
    }
}

fn reopen(minute: i64) -> CaseCommand {
    CaseCommand::Reopen {
        reason: "declined again".into(),
        at: t(minute),
    }
}

fn close(minute: i64) -> CaseCommand {
    CaseCommand::Close { at: t(minute) }
}

fn breach(target: SlaTarget, minute: i64) -> CaseCommand {
    CaseCommand::BreachSla {
        target,
        now: t(minute),
    }
}

fn note(n: u64, customer: CustomerStatus) -> CaseCommand {
    CaseCommand::AddNote {
        note_id: note_id(n),
        customer,
        author: Some(agent_id(1)),
        text: "Customer called back\r\nsame problem".into(),
        at: t(70),
    }
}

// ------------------------------------------------------------ open

#[test]
fn opening_a_case_starts_at_level_one() {
    let state = nothing()
        .when(open_with(CustomerStatus::Active, 3))
        .then([opened()]);
    assert_eq!(state.status(), Some(CaseStatus::Open));
    assert_eq!(state.level(), Some(1));
    assert_eq!(state.first_response_due(), Some(t(15)));
    assert_eq!(state.resolution_due(), Some(t(240)));
    assert!(state.breached().is_empty());
}

#[test]
fn opening_twice_is_refused() {
    given([opened()])
        .when(open_with(CustomerStatus::Active, 3))
        .then_err("ALREADY_EXISTS");
}

#[test]
fn opening_for_a_customer_who_is_not_active_is_refused() {
    nothing()
        .when(open_with(CustomerStatus::Unknown, 3))
        .then_err("NOT_FOUND");
    nothing()
        .when(open_with(CustomerStatus::Forgotten, 3))
        .then_err("CUSTOMER_FORGOTTEN");
    nothing()
        .when(open_with(CustomerStatus::MergedInto(customer_id(2)), 3))
        .then_err("CUSTOMER_MERGED");
}

#[test]
fn opening_with_bad_inputs_is_refused() {
    nothing()
        .when(open_with(CustomerStatus::Active, 0))
        .then_err("INVALID_LEVEL");
    let mut no_sla = open_with(CustomerStatus::Active, 3);
    if let CaseCommand::Open { sla, .. } = &mut no_sla {
        sla.first_response_minutes = 0;
    }
    nothing().when(no_sla).then_err("INVALID_SLA");
    let mut no_subject = open_with(CustomerStatus::Active, 3);
    if let CaseCommand::Open { subject, .. } = &mut no_subject {
        *subject = " \t ".into();
    }
    nothing().when(no_subject).then_err("INVALID_TEXT");
}

// ------------------------------------------------------------ assign

#[test]
fn assigning_an_open_case() {
    let state = given([opened()]).when(assign()).then([CaseAssigned {
        case_id: me(),
        agent: Some(agent_id(1)),
        team: Some(team_id(1)),
        at: t(1),
    }]);
    assert_eq!(
        state.case().map(|c| c.assignee),
        Some(Assignee {
            agent: Some(agent_id(1)),
            team: Some(team_id(1))
        })
    );
}

#[test]
fn assigning_to_nobody_is_refused() {
    given([opened()])
        .when(CaseCommand::Assign {
            agent: None,
            team: None,
            at: t(1),
        })
        .then_err("INVALID_ASSIGNMENT");
}

#[test]
fn assigning_a_closed_resolved_or_unopened_case_is_refused() {
    given(closed_case()).when(assign()).then_err("CASE_CLOSED");
    given(resolved_case())
        .when(assign())
        .then_err("ALREADY_RESOLVED");
    nothing().when(assign()).then_err("NOT_FOUND");
}

// ------------------------------------------------------------ first response

#[test]
fn giving_the_first_response() {
    let state = given([opened()]).when(respond(10)).then([responded(10)]);
    assert_eq!(state.case().and_then(|c| c.first_response_at), Some(t(10)));
}

#[test]
fn the_first_response_is_given_only_once() {
    given([opened(), responded(10)])
        .when(respond(20))
        .then_err("ALREADY_RESPONDED");
}

#[test]
fn no_first_response_on_a_closed_or_resolved_case() {
    given(closed_case())
        .when(respond(70))
        .then_err("CASE_CLOSED");
    given(resolved_case())
        .when(respond(40))
        .then_err("ALREADY_RESOLVED");
}

// ------------------------------------------------------------ escalation levels

#[test]
fn escalating_moves_up_one_level() {
    let state = given([opened()]).when(escalate(5)).then([escalated(1, 5)]);
    assert_eq!(state.level(), Some(2));
}

#[test]
fn no_escalation_past_the_top_level() {
    given([opened(), escalated(1, 5), escalated(2, 6)])
        .when(escalate(7))
        .then_err("TOP_LEVEL_REACHED");
    given([opened_with_top(1)])
        .when(escalate(7))
        .then_err("TOP_LEVEL_REACHED");
}

#[test]
fn no_escalation_of_a_closed_or_resolved_case() {
    given(closed_case())
        .when(escalate(70))
        .then_err("CASE_CLOSED");
    given(resolved_case())
        .when(escalate(40))
        .then_err("ALREADY_RESOLVED");
}

#[test]
fn escalating_needs_a_reason() {
    given([opened()])
        .when(CaseCommand::Escalate {
            reason: "".into(),
            team: None,
            at: t(5),
        })
        .then_err("INVALID_TEXT");
}

#[test]
fn deescalating_moves_down_one_level() {
    let state = given([opened(), escalated(1, 5)])
        .when(deescalate(8))
        .then([CaseDeescalated {
            case_id: me(),
            from_level: 2,
            to_level: 1,
            reason: "back to front line".into(),
            team: Some(team_id(1)),
            at: t(8),
        }]);
    assert_eq!(state.level(), Some(1));
    assert_eq!(state.case().and_then(|c| c.assignee.team), Some(team_id(1)));
}

#[test]
fn no_deescalation_below_level_one() {
    given([opened()])
        .when(deescalate(8))
        .then_err("BOTTOM_LEVEL_REACHED");
}

#[test]
fn no_deescalation_of_a_closed_case() {
    given([opened(), escalated(1, 5), resolved(30), closed(60)])
        .when(deescalate(70))
        .then_err("CASE_CLOSED");
}

// ------------------------------------------------------------ SLA breaches

fn breached(target: SlaTarget, due_minute: i64, now_minute: i64) -> SlaBreached {
    SlaBreached {
        case_id: me(),
        target,
        due_at: t(due_minute),
        overdue_ms: (now_minute - due_minute) * 60_000,
        at: t(now_minute),
    }
}

#[test]
fn a_first_response_target_passed_without_a_response_is_breached() {
    let state = given([opened()])
        .when(breach(SlaTarget::FirstResponse, 20))
        .then([breached(SlaTarget::FirstResponse, 15, 20)]);
    assert!(state.breached().contains(&SlaTarget::FirstResponse));
}

#[test]
fn a_target_is_not_breached_before_it_is_due() {
    let error = given([opened()])
        .when(breach(SlaTarget::FirstResponse, 15))
        .then_err("NOT_DUE");
    assert_eq!(
        error,
        DomainError::NotDue {
            target: SlaTarget::FirstResponse,
            due_at: t(15)
        }
    );
    given([opened()])
        .when(breach(SlaTarget::Resolution, 100))
        .then_err("NOT_DUE");
}

#[test]
fn a_breach_is_recorded_once_per_target() {
    let first = breached(SlaTarget::FirstResponse, 15, 20);
    given([opened(), first.into()])
        .when(breach(SlaTarget::FirstResponse, 30))
        .then_err("ALREADY_BREACHED");
    given([opened(), breached(SlaTarget::FirstResponse, 15, 20).into()])
        .when(breach(SlaTarget::Resolution, 300))
        .then([breached(SlaTarget::Resolution, 240, 300)]);
}

#[test]
fn a_target_met_in_time_is_not_breached() {
    given([opened(), responded(15)])
        .when(breach(SlaTarget::FirstResponse, 20))
        .then_err("TARGET_MET");
    // A resolution before the first-response due time meets the first-response target too.
    given([opened(), resolved(10)])
        .when(breach(SlaTarget::FirstResponse, 20))
        .then_err("TARGET_MET");
}

#[test]
fn a_late_first_response_can_still_be_recorded_as_breached() {
    given([opened(), responded(25)])
        .when(breach(SlaTarget::FirstResponse, 30))
        .then([breached(SlaTarget::FirstResponse, 15, 30)]);
}

#[test]
fn no_resolution_breach_on_a_resolved_or_closed_case() {
    given([opened(), resolved(300)])
        .when(breach(SlaTarget::Resolution, 301))
        .then_err("ALREADY_RESOLVED");
    given([opened(), resolved(30), closed(60)])
        .when(breach(SlaTarget::Resolution, 301))
        .then_err("CASE_CLOSED");
    given([opened(), responded(20), resolved(30), closed(60)])
        .when(breach(SlaTarget::FirstResponse, 301))
        .then_err("CASE_CLOSED");
}

#[test]
fn a_reopened_case_past_its_resolution_target_is_breached() {
    given([opened(), resolved(30), reopened(200)])
        .when(breach(SlaTarget::Resolution, 250))
        .then([breached(SlaTarget::Resolution, 240, 250)]);
}

#[test]
fn breaching_an_unopened_case_is_refused() {
    nothing()
        .when(breach(SlaTarget::Resolution, 250))
        .then_err("NOT_FOUND");
}

#[test]
fn the_checker_can_ask_whether_a_breach_is_due() {
    let state = case::fold(&[opened()]);
    let case = state.case().cloned();
    assert_eq!(
        case.as_ref()
            .map(|c| c.breach_due(SlaTarget::FirstResponse, t(15))),
        Some(false)
    );
    assert_eq!(
        case.map(|c| c.breach_due(SlaTarget::FirstResponse, t(16))),
        Some(true)
    );
}

// ------------------------------------------------------------ resolve, reopen, close

#[test]
fn resolving_an_open_case() {
    let state = given([opened()]).when(resolve(30)).then([resolved(30)]);
    assert_eq!(state.status(), Some(CaseStatus::Resolved));
}

#[test]
fn a_case_resolves_only_once_until_reopened() {
    given(resolved_case())
        .when(resolve(40))
        .then_err("ALREADY_RESOLVED");
    given([opened(), resolved(30), reopened(35)])
        .when(resolve(40))
        .then([CaseResolved {
            case_id: me(),
            resolution: "Card re-enabled".into(),
            root_cause: "fraud-rule".into(),
            // after a reopen it is never a first-contact resolution
            first_contact_resolution: false,
            agent: Some(agent_id(1)),
            at: t(40),
        }]);
}

#[test]
fn resolving_a_closed_case_or_without_a_root_cause_is_refused() {
    given(closed_case())
        .when(resolve(70))
        .then_err("CASE_CLOSED");
    given([opened()])
        .when(CaseCommand::Resolve {
            resolution: "Fixed".into(),
            root_cause: " ".into(),
            first_contact_resolution: false,
            agent: None,
            at: t(30),
        })
        .then_err("INVALID_TEXT");
}

#[test]
fn reopening_a_resolved_case() {
    let state = given(resolved_case()).when(reopen(35)).then([reopened(35)]);
    assert_eq!(state.status(), Some(CaseStatus::Open));
    assert_eq!(state.case().map(|c| c.reopens), Some(1));
}

#[test]
fn only_a_resolved_case_reopens() {
    given([opened()]).when(reopen(35)).then_err("NOT_RESOLVED");
    given(closed_case())
        .when(reopen(70))
        .then_err("CASE_CLOSED");
}

#[test]
fn closing_a_resolved_case() {
    let state = given(resolved_case()).when(close(60)).then([closed(60)]);
    assert_eq!(state.status(), Some(CaseStatus::Closed));
}

#[test]
fn only_a_resolved_case_closes() {
    given([opened()]).when(close(60)).then_err("NOT_RESOLVED");
    given(closed_case()).when(close(70)).then_err("CASE_CLOSED");
    nothing().when(close(70)).then_err("NOT_FOUND");
}

// ------------------------------------------------------------ notes

#[test]
fn a_note_on_a_closed_case_is_allowed() {
    let state = given(closed_case())
        .when(note(1, CustomerStatus::Active))
        .then([NoteAdded {
            note_id: note_id(1),
            target: NoteTarget::Case(me()),
            customer_id: customer_id(1),
            author: Some(agent_id(1)),
            text: "Customer called back\nsame problem".into(),
            at: t(70),
        }]);
    assert!(state.case().is_some_and(|c| c.notes.contains(&note_id(1))));
}

#[test]
fn a_note_for_a_customer_who_is_not_active_is_refused() {
    given([opened()])
        .when(note(1, CustomerStatus::Forgotten))
        .then_err("CUSTOMER_FORGOTTEN");
    given([opened()])
        .when(note(1, CustomerStatus::MergedInto(customer_id(2))))
        .then_err("CUSTOMER_MERGED");
}

#[test]
fn a_note_id_is_used_once_and_a_note_needs_a_case_and_text() {
    let first = given([opened()])
        .when(note(1, CustomerStatus::Active))
        .accepted();
    let mut past = vec![opened()];
    past.extend(first);
    given(past)
        .when(note(1, CustomerStatus::Active))
        .then_err("ALREADY_EXISTS");
    nothing()
        .when(note(1, CustomerStatus::Active))
        .then_err("NOT_FOUND");
    given([opened()])
        .when(CaseCommand::AddNote {
            note_id: note_id(2),
            customer: CustomerStatus::Active,
            author: None,
            text: "x".repeat(10_001),
            at: t(5),
        })
        .then_err("INVALID_TEXT");
}

#[test]
fn events_of_another_case_are_ignored() {
    let state = case::fold(&[opened()]);
    let foreign: DomainEvent = CaseClosed {
        case_id: case_id(2),
        at: t(3),
    }
    .into();
    assert_eq!(case::evolve(state.clone(), &foreign), state);
}
