//! Follow-up: scheduled, then completed or cancelled, once.

use crate::fixtures::*;
use sijil_domain::events::*;
use sijil_domain::follow_up::{self, FollowUpStatus};
use sijil_domain::*;

fn schedule(
    reason: FollowUpReason,
    note: Option<&str>,
    customer: CustomerStatus,
) -> FollowUpCommand {
    FollowUpCommand::Schedule {
        follow_up_id: follow_up_id(1),
        customer_id: customer_id(1),
        customer,
        reason,
        related: Some(FollowUpRelation::Survey(survey_id(1))),
        due_at: t(60 * 24),
        agent: Some(agent_id(1)),
        team: None,
        note: note.map(str::to_owned),
        at: t(0),
    }
}

fn scheduled() -> FollowUpScheduled {
    FollowUpScheduled {
        follow_up_id: follow_up_id(1),
        customer_id: customer_id(1),
        reason: FollowUpReason::DetractorFollowUp,
        related: Some(FollowUpRelation::Survey(survey_id(1))),
        due_at: t(60 * 24),
        agent: Some(agent_id(1)),
        team: None,
        note: None,
        at: t(0),
    }
}

fn complete() -> FollowUpCommand {
    FollowUpCommand::Complete {
        outcome: "Called; refund confirmed".into(),
        agent: Some(agent_id(2)),
        at: t(100),
    }
}

fn completed() -> FollowUpCompleted {
    FollowUpCompleted {
        follow_up_id: follow_up_id(1),
        outcome: "Called; refund confirmed".into(),
        agent: Some(agent_id(2)),
        at: t(100),
    }
}

fn cancel() -> FollowUpCommand {
    FollowUpCommand::Cancel {
        reason: "Customer closed account".into(),
        at: t(100),
    }
}

fn cancelled() -> FollowUpCancelled {
    FollowUpCancelled {
        follow_up_id: follow_up_id(1),
        reason: "Customer closed account".into(),
        at: t(100),
    }
}

#[test]
fn scheduling_a_follow_up() {
    let state = nothing()
        .when(schedule(
            FollowUpReason::DetractorFollowUp,
            Some(" "),
            CustomerStatus::Active,
        ))
        .then([scheduled()]);
    let follow_up = state.follow_up().cloned();
    assert_eq!(
        follow_up.as_ref().map(|f| f.status),
        Some(FollowUpStatus::Pending)
    );
    assert_eq!(
        follow_up.as_ref().map(|f| f.is_overdue(t(60 * 24))),
        Some(false)
    );
    assert_eq!(follow_up.map(|f| f.is_overdue(t(60 * 24 + 1))), Some(true));
}

#[test]
fn scheduling_twice_is_refused() {
    given([scheduled()])
        .when(schedule(
            FollowUpReason::CheckAfterFix,
            None,
            CustomerStatus::Active,
        ))
        .then_err("ALREADY_EXISTS");
}

#[test]
fn scheduling_for_a_customer_who_is_not_active_is_refused() {
    nothing()
        .when(schedule(
            FollowUpReason::CheckAfterFix,
            None,
            CustomerStatus::MergedInto(customer_id(2)),
        ))
        .then_err("CUSTOMER_MERGED");
    nothing()
        .when(schedule(
            FollowUpReason::CheckAfterFix,
            None,
            CustomerStatus::Forgotten,
        ))
        .then_err("CUSTOMER_FORGOTTEN");
}

#[test]
fn the_reason_other_needs_a_note() {
    nothing()
        .when(schedule(
            FollowUpReason::Other,
            Some("  "),
            CustomerStatus::Active,
        ))
        .then_err("INVALID_TEXT");
    let events = nothing()
        .when(schedule(
            FollowUpReason::Other,
            Some("Renewal next month"),
            CustomerStatus::Active,
        ))
        .accepted();
    assert_eq!(events.len(), 1);
}

#[test]
fn completing_a_pending_follow_up() {
    let state = given([scheduled()]).when(complete()).then([completed()]);
    assert_eq!(
        state.follow_up().map(|f| (f.status, f.agent)),
        Some((FollowUpStatus::Completed, Some(agent_id(2))))
    );
}

#[test]
fn completing_twice_or_after_cancelling_is_refused() {
    given([DomainEvent::from(scheduled()), completed().into()])
        .when(complete())
        .then_err("INVALID_TRANSITION");
    given([DomainEvent::from(scheduled()), cancelled().into()])
        .when(complete())
        .then_err("INVALID_TRANSITION");
    nothing().when(complete()).then_err("NOT_FOUND");
}

#[test]
fn completing_needs_an_outcome() {
    given([scheduled()])
        .when(FollowUpCommand::Complete {
            outcome: "".into(),
            agent: None,
            at: t(100),
        })
        .then_err("INVALID_TEXT");
}

#[test]
fn cancelling_a_pending_follow_up() {
    let state = given([scheduled()]).when(cancel()).then([cancelled()]);
    assert_eq!(
        state.follow_up().map(|f| f.status),
        Some(FollowUpStatus::Cancelled)
    );
    assert_eq!(
        state.follow_up().map(|f| f.is_overdue(t(99_999))),
        Some(false)
    );
}

#[test]
fn cancelling_twice_or_after_completing_is_refused() {
    given([DomainEvent::from(scheduled()), cancelled().into()])
        .when(cancel())
        .then_err("INVALID_TRANSITION");
    given([DomainEvent::from(scheduled()), completed().into()])
        .when(cancel())
        .then_err("INVALID_TRANSITION");
    nothing().when(cancel()).then_err("NOT_FOUND");
}

#[test]
fn events_of_another_follow_up_are_ignored() {
    let state = follow_up::fold(&[scheduled().into()]);
    let mut foreign = cancelled();
    foreign.follow_up_id = follow_up_id(2);
    assert_eq!(follow_up::evolve(state.clone(), &foreign.into()), state);
}
