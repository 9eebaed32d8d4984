//! What every aggregate's commands share: the [`Aggregate`] shape (decide/evolve/fold), the
//! cross-aggregate facts the application hands in ([`CustomerStatus`], [`CaseLink`]), and the
//! command enums of all aggregates under distinct names.
//!
//! Commands carry raw inputs, the time (`at`) and every id (the caller mints ids); `decide`
//! validates them and emits normalised values. A command that concerns a customer but lives in
//! another aggregate (recording an interaction, opening a case, adding a note, answering a
//! survey, scheduling a follow-up) carries the customer's [`CustomerStatus`], which the
//! application reads from the customer aggregate; such commands are refused unless the customer
//! is active.

use serde::{Deserialize, Serialize};
use std::fmt::Debug;

use crate::error::DomainError;
use crate::events::DomainEvent;
use crate::ids::{CaseId, CustomerId};

pub use crate::aggregates::agent::Command as AgentCommand;
pub use crate::aggregates::case::Command as CaseCommand;
pub use crate::aggregates::customer::Command as CustomerCommand;
pub use crate::aggregates::follow_up::Command as FollowUpCommand;
pub use crate::aggregates::interaction::Command as InteractionCommand;
pub use crate::aggregates::survey::Command as SurveyCommand;

/// An event-sourced aggregate: a state rebuilt from its events, and a pure decision function.
///
/// `decide` never changes anything; it returns the events that record the command's effect
/// (possibly none, for an idempotent repeat) or the reason it is refused. `evolve` applies one
/// event and ignores events of other aggregates (and of other instances of this one).
/// States are plain data, so a host may keep and share them between threads.
pub trait Aggregate: 'static {
    /// The state; `Default` is "does not exist yet".
    type State: Default + Clone + PartialEq + Debug + Send + Sync + 'static;
    /// The commands this aggregate decides.
    type Command: Clone + Debug;

    /// Decides a command against the current state.
    fn decide(state: &Self::State, command: Self::Command)
        -> Result<Vec<DomainEvent>, DomainError>;

    /// Applies one event.
    fn evolve(state: Self::State, event: &DomainEvent) -> Self::State;

    /// Rebuilds the state from its events, oldest first.
    fn fold<'a, I>(events: I) -> Self::State
    where
        I: IntoIterator<Item = &'a DomainEvent>,
    {
        events
            .into_iter()
            .fold(Self::State::default(), |state, event| {
                Self::evolve(state, event)
            })
    }
}

/// A customer as another aggregate's command sees it, read by the application from the customer
/// aggregate ([`crate::aggregates::customer::State::status`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum CustomerStatus {
    /// Registered, neither merged away nor forgotten: things can be recorded for them.
    Active,
    /// Merged into the given survivor: record things on the survivor instead.
    MergedInto(CustomerId),
    /// Erased on request: nothing more is recorded for them.
    Forgotten,
    /// Never registered.
    Unknown,
}

impl CustomerStatus {
    /// Succeeds when the customer is active; otherwise the refusal naming `customer`:
    /// `CUSTOMER_MERGED`, `CUSTOMER_FORGOTTEN` or `NOT_FOUND`.
    pub fn require_active(self, customer: CustomerId) -> Result<(), DomainError> {
        match self {
            CustomerStatus::Active => Ok(()),
            CustomerStatus::MergedInto(into) => Err(DomainError::CustomerMerged { customer, into }),
            CustomerStatus::Forgotten => Err(DomainError::CustomerForgotten { customer }),
            CustomerStatus::Unknown => Err(DomainError::NotFound {
                what: "customer",
                id: Some(customer.to_string()),
            }),
        }
    }
}

/// The case an interaction is about, as the case aggregate sees it, read by the application
/// ([`crate::aggregates::case::State::status`]). `status` is `None` when no such case was
/// opened.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct CaseLink {
    pub case_id: CaseId,
    pub status: Option<crate::aggregates::case::CaseStatus>,
}
