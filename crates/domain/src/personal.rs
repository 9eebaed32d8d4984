//! Owns the map of personal data inside [`DomainEvent`]s: which text fields hold a customer's
//! personal data, whose data it is (the *data subject*), and a visitor over those fields so the
//! store can replace each one with ciphertext (when writing) or with [`ERASED`] (once the
//! customer is forgotten). Pure: no crypto, no I/O.
//!
//! # The personal fields
//!
//! | event                  | personal fields                                   | data subject            |
//! |------------------------|---------------------------------------------------|-------------------------|
//! | `CustomerRegistered`   | `reference`, `display_name`, `contact_points[].value` | `customer_id`       |
//! | `CustomerProfileUpdated` | `display_name`                                  | `customer_id`           |
//! | `ContactPointAdded`    | `contact_point.value`                             | `customer_id`           |
//! | `ContactPointRemoved`  | `contact_point.value`                             | `customer_id`           |
//! | `InteractionRecorded`  | `summary`, `recording_ref`                        | `customer_id`           |
//! | `NoteAdded`            | `text`                                            | `customer_id`           |
//! | `CaseOpened`           | `subject`                                         | `customer_id`           |
//! | `CaseEscalated`        | `reason`                                          | the case's customer     |
//! | `CaseDeescalated`      | `reason`                                          | the case's customer     |
//! | `CaseResolved`         | `resolution`, `root_cause`                        | the case's customer     |
//! | `CaseReopened`         | `reason`                                          | the case's customer     |
//! | `SurveyAnswered`       | `comment`                                         | `customer_id`           |
//! | `FollowUpScheduled`    | `note`                                            | `customer_id`           |
//! | `FollowUpCompleted`    | `outcome`                                         | the follow-up's customer |
//! | `FollowUpCancelled`    | `reason`                                          | the follow-up's customer |
//!
//! Every other event carries no personal text of a customer: `CustomerPreferencesChanged`,
//! `CustomerMerged`, `CustomerForgotten` (its `request_reference` is the erasure request's own
//! reference, never personal data), `CaseAssigned`, `FirstResponseGiven`, `SlaBreached`,
//! `CaseClosed`, `AgentRegistered` and `AgentRecognised`.
//!
//! What stays readable on purpose, because it is the *fact of service* and not the person:
//! every id, time, channel, direction, priority, SLA policy, level, score, category, reward,
//! the customer's language and time zone, the contact point's *kind* (email, phone, ...), the
//! name of a bot that handled an interaction, and durations. The reference and contact values
//! identify the person and are personal. Agents are employees, not customers: their names
//! and recognition reasons are not covered by customer erasure.
//!
//! Case and follow-up events after the first carry no customer id: [`data_subject`] says
//! which case or follow-up the caller has to resolve (its `CaseOpened` / `FollowUpScheduled`
//! names the customer, see [`subject_link`]).

use crate::events::DomainEvent;
use crate::ids::{CaseId, CustomerId, FollowUpId};

/// What replaces a personal field once its customer is forgotten.
pub const ERASED: &str = "[erased]";

/// One kind of personal text field. The [`name`](PersonalField::name) is stable: the vault
/// binds ciphertexts to it, so a ciphertext of one field cannot be passed off as another.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum PersonalField {
    /// `CustomerRegistered.reference`: the business's reference number for the customer.
    CustomerReference,
    /// `CustomerRegistered.display_name`, `CustomerProfileUpdated.display_name`.
    DisplayName,
    /// The `value` of a contact point (email address, phone number, handle, messaging id).
    ContactPointValue,
    /// `InteractionRecorded.summary`.
    InteractionSummary,
    /// `InteractionRecorded.recording_ref`.
    RecordingRef,
    /// `NoteAdded.text`.
    NoteText,
    /// `CaseOpened.subject`.
    CaseSubject,
    /// `CaseEscalated.reason`.
    EscalationReason,
    /// `CaseDeescalated.reason`.
    DeescalationReason,
    /// `CaseResolved.resolution`.
    Resolution,
    /// `CaseResolved.root_cause`.
    RootCause,
    /// `CaseReopened.reason`.
    ReopenReason,
    /// `SurveyAnswered.comment`.
    SurveyComment,
    /// `FollowUpScheduled.note`.
    FollowUpNote,
    /// `FollowUpCompleted.outcome`.
    FollowUpOutcome,
    /// `FollowUpCancelled.reason`.
    FollowUpCancelReason,
}

impl PersonalField {
    /// Every personal field, in a stable order.
    pub const ALL: [PersonalField; 16] = [
        PersonalField::CustomerReference,
        PersonalField::DisplayName,
        PersonalField::ContactPointValue,
        PersonalField::InteractionSummary,
        PersonalField::RecordingRef,
        PersonalField::NoteText,
        PersonalField::CaseSubject,
        PersonalField::EscalationReason,
        PersonalField::DeescalationReason,
        PersonalField::Resolution,
        PersonalField::RootCause,
        PersonalField::ReopenReason,
        PersonalField::SurveyComment,
        PersonalField::FollowUpNote,
        PersonalField::FollowUpOutcome,
        PersonalField::FollowUpCancelReason,
    ];

    /// A stable snake_case name (bound into ciphertexts; never change one).
    pub fn name(self) -> &'static str {
        match self {
            PersonalField::CustomerReference => "customer_reference",
            PersonalField::DisplayName => "display_name",
            PersonalField::ContactPointValue => "contact_point_value",
            PersonalField::InteractionSummary => "interaction_summary",
            PersonalField::RecordingRef => "recording_ref",
            PersonalField::NoteText => "note_text",
            PersonalField::CaseSubject => "case_subject",
            PersonalField::EscalationReason => "escalation_reason",
            PersonalField::DeescalationReason => "deescalation_reason",
            PersonalField::Resolution => "resolution",
            PersonalField::RootCause => "root_cause",
            PersonalField::ReopenReason => "reopen_reason",
            PersonalField::SurveyComment => "survey_comment",
            PersonalField::FollowUpNote => "follow_up_note",
            PersonalField::FollowUpOutcome => "follow_up_outcome",
            PersonalField::FollowUpCancelReason => "follow_up_cancel_reason",
        }
    }
}

/// The personal fields an event type can carry (the table in this module's docs). Optional
/// fields are listed even though a given event may leave them out; unknown types have none.
pub fn fields_of_type(event_type: &str) -> &'static [PersonalField] {
    use PersonalField as F;
    match event_type {
        "CustomerRegistered" => &[F::CustomerReference, F::DisplayName, F::ContactPointValue],
        "CustomerProfileUpdated" => &[F::DisplayName],
        "ContactPointAdded" | "ContactPointRemoved" => &[F::ContactPointValue],
        "InteractionRecorded" => &[F::InteractionSummary, F::RecordingRef],
        "NoteAdded" => &[F::NoteText],
        "CaseOpened" => &[F::CaseSubject],
        "CaseEscalated" => &[F::EscalationReason],
        "CaseDeescalated" => &[F::DeescalationReason],
        "CaseResolved" => &[F::Resolution, F::RootCause],
        "CaseReopened" => &[F::ReopenReason],
        "SurveyAnswered" => &[F::SurveyComment],
        "FollowUpScheduled" => &[F::FollowUpNote],
        "FollowUpCompleted" => &[F::FollowUpOutcome],
        "FollowUpCancelled" => &[F::FollowUpCancelReason],
        _ => &[],
    }
}

/// Whose personal data an event holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DataSubject {
    /// The event names the customer itself.
    Customer(CustomerId),
    /// An event of a case stream without a customer id: the customer is the one the case's
    /// `CaseOpened` names, which the caller must look up.
    CustomerOfCase(CaseId),
    /// An event of a follow-up stream without a customer id: the customer is the one the
    /// follow-up's `FollowUpScheduled` names, which the caller must look up.
    CustomerOfFollowUp(FollowUpId),
    /// No customer's personal data (agent events).
    NoCustomer,
}

impl DataSubject {
    /// The customer, when the event names it directly.
    pub fn customer(self) -> Option<CustomerId> {
        match self {
            DataSubject::Customer(id) => Some(id),
            _ => None,
        }
    }
}

/// Whose personal data `event` holds. Case and follow-up events without personal fields
/// (`CaseAssigned`, `SlaBreached`, ...) still name their case, so a reader can tell which
/// customer they are about.
pub fn data_subject(event: &DomainEvent) -> DataSubject {
    use DataSubject as S;
    use DomainEvent as E;
    match event {
        E::CustomerRegistered(e) => S::Customer(e.customer_id),
        E::CustomerProfileUpdated(e) => S::Customer(e.customer_id),
        E::ContactPointAdded(e) => S::Customer(e.customer_id),
        E::ContactPointRemoved(e) => S::Customer(e.customer_id),
        E::CustomerPreferencesChanged(e) => S::Customer(e.customer_id),
        E::CustomerMerged(e) => S::Customer(e.customer_id),
        E::CustomerForgotten(e) => S::Customer(e.customer_id),
        E::InteractionRecorded(e) => S::Customer(e.customer_id),
        E::NoteAdded(e) => S::Customer(e.customer_id),
        E::CaseOpened(e) => S::Customer(e.customer_id),
        E::CaseAssigned(e) => S::CustomerOfCase(e.case_id),
        E::FirstResponseGiven(e) => S::CustomerOfCase(e.case_id),
        E::CaseEscalated(e) => S::CustomerOfCase(e.case_id),
        E::CaseDeescalated(e) => S::CustomerOfCase(e.case_id),
        E::SlaBreached(e) => S::CustomerOfCase(e.case_id),
        E::CaseResolved(e) => S::CustomerOfCase(e.case_id),
        E::CaseReopened(e) => S::CustomerOfCase(e.case_id),
        E::CaseClosed(e) => S::CustomerOfCase(e.case_id),
        E::SurveyAnswered(e) => S::Customer(e.customer_id),
        E::FollowUpScheduled(e) => S::Customer(e.customer_id),
        E::FollowUpCompleted(e) => S::CustomerOfFollowUp(e.follow_up_id),
        E::FollowUpCancelled(e) => S::CustomerOfFollowUp(e.follow_up_id),
        E::AgentRegistered(_) | E::AgentRecognised(_) => S::NoCustomer,
    }
}

/// A fact that ties a case or follow-up to its customer, for resolving later
/// [`DataSubject::CustomerOfCase`] / [`DataSubject::CustomerOfFollowUp`] subjects.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SubjectLink {
    /// From `CaseOpened`.
    Case(CaseId, CustomerId),
    /// From `FollowUpScheduled`.
    FollowUp(FollowUpId, CustomerId),
}

/// The case→customer or follow-up→customer link `event` establishes, if any.
pub fn subject_link(event: &DomainEvent) -> Option<SubjectLink> {
    match event {
        DomainEvent::CaseOpened(e) => Some(SubjectLink::Case(e.case_id, e.customer_id)),
        DomainEvent::FollowUpScheduled(e) => {
            Some(SubjectLink::FollowUp(e.follow_up_id, e.customer_id))
        }
        _ => None,
    }
}

/// Calls `f` on every personal text field of `event` (present optional fields only, every
/// contact point of a registration), in the order of [`fields_of_type`], stopping at the
/// first error. `f` may rewrite the field in place; nothing else in the event is touched.
pub fn try_map_personal<E, F>(event: &mut DomainEvent, mut f: F) -> Result<(), E>
where
    F: FnMut(PersonalField, &mut String) -> Result<(), E>,
{
    use DomainEvent as Ev;
    use PersonalField as P;
    match event {
        Ev::CustomerRegistered(e) => {
            f(P::CustomerReference, &mut e.reference)?;
            f(P::DisplayName, &mut e.display_name)?;
            for point in &mut e.contact_points {
                f(P::ContactPointValue, &mut point.value)?;
            }
        }
        Ev::CustomerProfileUpdated(e) => {
            if let Some(name) = &mut e.display_name {
                f(P::DisplayName, name)?;
            }
        }
        Ev::ContactPointAdded(e) => f(P::ContactPointValue, &mut e.contact_point.value)?,
        Ev::ContactPointRemoved(e) => f(P::ContactPointValue, &mut e.contact_point.value)?,
        Ev::InteractionRecorded(e) => {
            f(P::InteractionSummary, &mut e.summary)?;
            if let Some(recording) = &mut e.recording_ref {
                f(P::RecordingRef, recording)?;
            }
        }
        Ev::NoteAdded(e) => f(P::NoteText, &mut e.text)?,
        Ev::CaseOpened(e) => f(P::CaseSubject, &mut e.subject)?,
        Ev::CaseEscalated(e) => f(P::EscalationReason, &mut e.reason)?,
        Ev::CaseDeescalated(e) => f(P::DeescalationReason, &mut e.reason)?,
        Ev::CaseResolved(e) => {
            f(P::Resolution, &mut e.resolution)?;
            f(P::RootCause, &mut e.root_cause)?;
        }
        Ev::CaseReopened(e) => f(P::ReopenReason, &mut e.reason)?,
        Ev::SurveyAnswered(e) => {
            if let Some(comment) = &mut e.comment {
                f(P::SurveyComment, comment)?;
            }
        }
        Ev::FollowUpScheduled(e) => {
            if let Some(note) = &mut e.note {
                f(P::FollowUpNote, note)?;
            }
        }
        Ev::FollowUpCompleted(e) => f(P::FollowUpOutcome, &mut e.outcome)?,
        Ev::FollowUpCancelled(e) => f(P::FollowUpCancelReason, &mut e.reason)?,
        Ev::CustomerPreferencesChanged(_)
        | Ev::CustomerMerged(_)
        | Ev::CustomerForgotten(_)
        | Ev::CaseAssigned(_)
        | Ev::FirstResponseGiven(_)
        | Ev::SlaBreached(_)
        | Ev::CaseClosed(_)
        | Ev::AgentRegistered(_)
        | Ev::AgentRecognised(_) => {}
    }
    Ok(())
}

/// Calls `f` on every personal text field of `event` (see [`try_map_personal`]).
pub fn map_personal<F>(event: &mut DomainEvent, mut f: F)
where
    F: FnMut(PersonalField, &mut String),
{
    let done: Result<(), std::convert::Infallible> = try_map_personal(event, |field, value| {
        f(field, value);
        Ok(())
    });
    match done {
        Ok(()) => {}
        Err(never) => match never {},
    }
}

/// Copies of the personal fields of `event`, in visiting order.
pub fn personal_values(event: &DomainEvent) -> Vec<(PersonalField, String)> {
    let mut copy = event.clone();
    let mut out = Vec::new();
    map_personal(&mut copy, |field, value| {
        out.push((field, std::mem::take(value)));
    });
    out
}

/// Whether `event` holds at least one personal field.
pub fn has_personal(event: &DomainEvent) -> bool {
    !personal_values(event).is_empty()
}

/// Replaces every personal field of `event` with [`ERASED`].
pub fn erase(event: &mut DomainEvent) {
    map_personal(event, |_, value| {
        value.clear();
        value.push_str(ERASED);
    });
}
