//! Interaction: recording a contact and notes on it.

use crate::fixtures::*;
use sijil_domain::case::CaseStatus;
use sijil_domain::events::*;
use sijil_domain::*;

fn record(
    customer: CustomerStatus,
    direction: Direction,
    case: Option<CaseLink>,
) -> InteractionCommand {
    InteractionCommand::Record {
        interaction_id: interaction_id(1),
        customer_id: customer_id(1),
        customer,
        channel: Channel::Ivr,
        direction,
        handled_by: Handler::Bot(" ivr-main-menu ".into()),
        language: "AR".into(),
        summary: "  Balance enquiry, self-served  ".into(),
        duration_seconds: 95,
        case,
        recording_ref: Some("   ".into()),
        at: t(0),
    }
}

fn recorded(direction: Direction, case: Option<CaseId>) -> InteractionRecorded {
    InteractionRecorded {
        interaction_id: interaction_id(1),
        customer_id: customer_id(1),
        channel: Channel::Ivr,
        direction,
        handled_by: Handler::Bot("ivr-main-menu".into()),
        language: "ar".into(),
        summary: "Balance enquiry, self-served".into(),
        duration_seconds: 95,
        case_id: case,
        recording_ref: None,
        at: t(0),
    }
}

fn link(status: Option<CaseStatus>) -> Option<CaseLink> {
    Some(CaseLink {
        case_id: case_id(1),
        status,
    })
}

#[test]
fn recording_an_interaction_normalises_it() {
    let state = nothing()
        .when(record(CustomerStatus::Active, Direction::Inbound, None))
        .then([recorded(Direction::Inbound, None)]);
    assert!(state.interaction().is_some());
}

#[test]
fn recording_twice_is_refused() {
    given([recorded(Direction::Inbound, None)])
        .when(record(CustomerStatus::Active, Direction::Inbound, None))
        .then_err("ALREADY_EXISTS");
}

#[test]
fn recording_for_a_customer_who_is_not_active_is_refused() {
    nothing()
        .when(record(CustomerStatus::Unknown, Direction::Inbound, None))
        .then_err("NOT_FOUND");
    nothing()
        .when(record(CustomerStatus::Forgotten, Direction::Inbound, None))
        .then_err("CUSTOMER_FORGOTTEN");
    nothing()
        .when(record(
            CustomerStatus::MergedInto(customer_id(2)),
            Direction::Inbound,
            None,
        ))
        .then_err("CUSTOMER_MERGED");
}

#[test]
fn an_interaction_on_a_case_needs_the_case() {
    nothing()
        .when(record(
            CustomerStatus::Active,
            Direction::Inbound,
            link(None),
        ))
        .then_err("NOT_FOUND");
    nothing()
        .when(record(
            CustomerStatus::Active,
            Direction::Outbound,
            link(Some(CaseStatus::Open)),
        ))
        .then([recorded(Direction::Outbound, Some(case_id(1)))]);
}

#[test]
fn no_reply_on_a_closed_case_but_the_customer_may_still_write() {
    nothing()
        .when(record(
            CustomerStatus::Active,
            Direction::Outbound,
            link(Some(CaseStatus::Closed)),
        ))
        .then_err("CASE_CLOSED");
    nothing()
        .when(record(
            CustomerStatus::Active,
            Direction::Inbound,
            link(Some(CaseStatus::Closed)),
        ))
        .then([recorded(Direction::Inbound, Some(case_id(1)))]);
}

#[test]
fn recording_with_bad_inputs_is_refused() {
    let mut bad_bot = record(CustomerStatus::Active, Direction::Inbound, None);
    if let InteractionCommand::Record { handled_by, .. } = &mut bad_bot {
        *handled_by = Handler::Bot("faq bot!".into());
    }
    nothing().when(bad_bot).then_err("INVALID_REFERENCE");
    let mut bad_language = record(CustomerStatus::Active, Direction::Inbound, None);
    if let InteractionCommand::Record { language, .. } = &mut bad_language {
        *language = "e".into();
    }
    nothing().when(bad_language).then_err("INVALID_LANGUAGE");
    let mut long_summary = record(CustomerStatus::Active, Direction::Inbound, None);
    if let InteractionCommand::Record { summary, .. } = &mut long_summary {
        *summary = "é".repeat(4001);
    }
    nothing().when(long_summary).then_err("INVALID_TEXT");
}

fn add_note(n: u64, customer: CustomerStatus) -> InteractionCommand {
    InteractionCommand::AddNote {
        note_id: note_id(n),
        customer,
        author: Some(agent_id(1)),
        text: "Asked for a call back tomorrow".into(),
        at: t(5),
    }
}

fn note_added(n: u64) -> NoteAdded {
    NoteAdded {
        note_id: note_id(n),
        target: NoteTarget::Interaction(interaction_id(1)),
        customer_id: customer_id(1),
        author: Some(agent_id(1)),
        text: "Asked for a call back tomorrow".into(),
        at: t(5),
    }
}

#[test]
fn adding_a_note_to_an_interaction() {
    let state = given([recorded(Direction::Inbound, None)])
        .when(add_note(1, CustomerStatus::Active))
        .then([note_added(1)]);
    assert!(state
        .interaction()
        .is_some_and(|i| i.notes.contains(&note_id(1))));
}

#[test]
fn a_note_needs_the_interaction_a_fresh_id_and_an_active_customer() {
    nothing()
        .when(add_note(1, CustomerStatus::Active))
        .then_err("NOT_FOUND");
    given([
        DomainEvent::from(recorded(Direction::Inbound, None)),
        note_added(1).into(),
    ])
    .when(add_note(1, CustomerStatus::Active))
    .then_err("ALREADY_EXISTS");
    given([recorded(Direction::Inbound, None)])
        .when(add_note(1, CustomerStatus::Forgotten))
        .then_err("CUSTOMER_FORGOTTEN");
}
