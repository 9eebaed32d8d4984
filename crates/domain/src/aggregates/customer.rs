//! The customer aggregate: registration, profile, contact points, preferences, merge and
//! erasure (forget).
//!
//! Rules:
//! - registering an existing customer is refused (`ALREADY_EXISTS`);
//! - a forgotten or merged-away customer accepts nothing but another forget: profile updates,
//!   contact points, preferences and merges are refused (`CUSTOMER_FORGOTTEN`,
//!   `CUSTOMER_MERGED`);
//! - a contact point already on the customer cannot be added again
//!   (`DUPLICATE_CONTACT_POINT`), and one that is not there cannot be removed (`NOT_FOUND`);
//! - a merge joins this (source) customer into an active target; both must be active and
//!   distinct (`MERGE_INTO_SELF`);
//! - forgetting is idempotent: forgetting a forgotten customer records nothing. A merged-away
//!   customer can still be forgotten (erasure must always be possible);
//! - an update or preference change that changes nothing records nothing.

use crate::commands::{Aggregate, CustomerStatus};
use crate::error::DomainError;
use crate::events::*;
use crate::ids::CustomerId;
use crate::time::Timestamp;
use crate::validate;
use crate::values::{Channel, ContactPoint};

/// A known customer, as rebuilt from their events.
#[derive(Clone, PartialEq, Debug)]
pub struct Customer {
    pub customer_id: CustomerId,
    pub reference: String,
    /// Empty once forgotten.
    pub display_name: String,
    pub language: String,
    pub time_zone: String,
    /// In the order added; empty once forgotten.
    pub contact_points: Vec<ContactPoint>,
    pub preferred_channel: Option<Channel>,
    pub consent_to_contact: Option<bool>,
    pub registered_at: Timestamp,
    /// The survivor this customer was merged into.
    pub merged_into: Option<CustomerId>,
    /// Erased on request: personal data (name, contact points) is cleared from the state.
    pub forgotten: bool,
}

/// The customer aggregate's state.
#[derive(Clone, PartialEq, Debug, Default)]
pub enum State {
    /// Never registered.
    #[default]
    Unknown,
    Known(Customer),
}

impl State {
    /// The customer, once registered.
    pub fn customer(&self) -> Option<&Customer> {
        match self {
            State::Unknown => None,
            State::Known(customer) => Some(customer),
        }
    }

    /// The status other aggregates' commands carry. Forgotten wins over merged.
    pub fn status(&self) -> CustomerStatus {
        match self {
            State::Unknown => CustomerStatus::Unknown,
            State::Known(c) if c.forgotten => CustomerStatus::Forgotten,
            State::Known(Customer {
                merged_into: Some(into),
                ..
            }) => CustomerStatus::MergedInto(*into),
            State::Known(_) => CustomerStatus::Active,
        }
    }
}

/// What can be asked of a customer. Only `Register` names the customer; the others address the
/// aggregate whose state is given to [`decide`].
#[derive(Clone, PartialEq, Debug)]
pub enum Command {
    Register {
        customer_id: CustomerId,
        reference: String,
        display_name: String,
        language: String,
        time_zone: String,
        /// Raw contact points; normalised, and refused if two are the same once normalised.
        contact_points: Vec<ContactPoint>,
        at: Timestamp,
    },
    /// Changes the name and/or time zone (fields left `None` stay).
    UpdateProfile {
        display_name: Option<String>,
        time_zone: Option<String>,
        at: Timestamp,
    },
    AddContactPoint {
        contact_point: ContactPoint,
        at: Timestamp,
    },
    RemoveContactPoint {
        contact_point: ContactPoint,
        at: Timestamp,
    },
    /// Changes language, preferred channel and/or consent (fields left `None` stay).
    ChangePreferences {
        language: Option<String>,
        preferred_channel: Option<Channel>,
        consent_to_contact: Option<bool>,
        at: Timestamp,
    },
    /// Merges this customer (a duplicate identity) into `into`, whose status is `target`.
    Merge {
        into: CustomerId,
        target: CustomerStatus,
        at: Timestamp,
    },
    /// Erases the customer's personal data (GDPR). Idempotent.
    Forget {
        request_reference: String,
        at: Timestamp,
    },
}

/// The customer aggregate, for generic code.
#[derive(Clone, Copy, Debug)]
pub struct CustomerAggregate;

impl Aggregate for CustomerAggregate {
    type State = State;
    type Command = Command;

    fn decide(state: &State, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
        decide(state, command)
    }

    fn evolve(state: State, event: &DomainEvent) -> State {
        evolve(state, event)
    }
}

/// Rebuilds a customer from their events, oldest first.
pub fn fold<'a, I: IntoIterator<Item = &'a DomainEvent>>(events: I) -> State {
    CustomerAggregate::fold(events)
}

fn not_found() -> DomainError {
    DomainError::NotFound {
        what: "customer",
        id: None,
    }
}

/// The customer, refusing unless they exist and are active.
fn active(state: &State) -> Result<&Customer, DomainError> {
    let customer = state.customer().ok_or_else(not_found)?;
    state.status().require_active(customer.customer_id)?;
    Ok(customer)
}

/// Decides a customer command.
pub fn decide(state: &State, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
    match command {
        Command::Register {
            customer_id,
            reference,
            display_name,
            language,
            time_zone,
            contact_points,
            at,
        } => {
            if let State::Known(existing) = state {
                return Err(DomainError::AlreadyExists {
                    what: "customer",
                    id: existing.customer_id.to_string(),
                });
            }
            let reference = validate::reference("customer reference", &reference)?;
            let display_name = validate::text(&validate::DISPLAY_NAME, &display_name)?;
            let language = validate::language_tag(&language)?;
            let time_zone = validate::time_zone(&time_zone)?;
            let mut points: Vec<ContactPoint> = Vec::with_capacity(contact_points.len());
            for raw in &contact_points {
                let point = validate::contact_point(raw)?;
                if points.contains(&point) {
                    return Err(DomainError::DuplicateContactPoint { value: point.value });
                }
                points.push(point);
            }
            Ok(vec![CustomerRegistered {
                customer_id,
                reference,
                display_name,
                language,
                time_zone,
                contact_points: points,
                at,
            }
            .into()])
        }
        Command::UpdateProfile {
            display_name,
            time_zone,
            at,
        } => {
            let customer = active(state)?;
            let display_name = display_name
                .map(|name| validate::text(&validate::DISPLAY_NAME, &name))
                .transpose()?
                .filter(|name| *name != customer.display_name);
            let time_zone = time_zone
                .map(|zone| validate::time_zone(&zone))
                .transpose()?
                .filter(|zone| *zone != customer.time_zone);
            if display_name.is_none() && time_zone.is_none() {
                return Ok(vec![]);
            }
            Ok(vec![CustomerProfileUpdated {
                customer_id: customer.customer_id,
                display_name,
                time_zone,
                at,
            }
            .into()])
        }
        Command::AddContactPoint { contact_point, at } => {
            let customer = active(state)?;
            let contact_point = validate::contact_point(&contact_point)?;
            if customer.contact_points.contains(&contact_point) {
                return Err(DomainError::DuplicateContactPoint {
                    value: contact_point.value,
                });
            }
            Ok(vec![ContactPointAdded {
                customer_id: customer.customer_id,
                contact_point,
                at,
            }
            .into()])
        }
        Command::RemoveContactPoint { contact_point, at } => {
            let customer = active(state)?;
            let contact_point = validate::contact_point(&contact_point)?;
            if !customer.contact_points.contains(&contact_point) {
                return Err(DomainError::NotFound {
                    what: "contact point",
                    id: Some(contact_point.value),
                });
            }
            Ok(vec![ContactPointRemoved {
                customer_id: customer.customer_id,
                contact_point,
                at,
            }
            .into()])
        }
        Command::ChangePreferences {
            language,
            preferred_channel,
            consent_to_contact,
            at,
        } => {
            let customer = active(state)?;
            let language = language
                .map(|tag| validate::language_tag(&tag))
                .transpose()?
                .filter(|tag| *tag != customer.language);
            let preferred_channel =
                preferred_channel.filter(|channel| Some(*channel) != customer.preferred_channel);
            let consent_to_contact =
                consent_to_contact.filter(|consent| Some(*consent) != customer.consent_to_contact);
            if language.is_none() && preferred_channel.is_none() && consent_to_contact.is_none() {
                return Ok(vec![]);
            }
            Ok(vec![CustomerPreferencesChanged {
                customer_id: customer.customer_id,
                language,
                preferred_channel,
                consent_to_contact,
                at,
            }
            .into()])
        }
        Command::Merge { into, target, at } => {
            let customer = active(state)?;
            if into == customer.customer_id {
                return Err(DomainError::MergeIntoSelf { customer: into });
            }
            target.require_active(into)?;
            Ok(vec![CustomerMerged {
                customer_id: customer.customer_id,
                into,
                at,
            }
            .into()])
        }
        Command::Forget {
            request_reference,
            at,
        } => {
            let customer = state.customer().ok_or_else(not_found)?;
            if customer.forgotten {
                return Ok(vec![]);
            }
            let request_reference =
                validate::reference("erasure request reference", &request_reference)?;
            Ok(vec![CustomerForgotten {
                customer_id: customer.customer_id,
                request_reference,
                at,
            }
            .into()])
        }
    }
}

/// Applies one event to a customer; events of other aggregates or customers are ignored.
pub fn evolve(state: State, event: &DomainEvent) -> State {
    let mut customer = match (state, event) {
        (State::Unknown, DomainEvent::CustomerRegistered(e)) => {
            return State::Known(Customer {
                customer_id: e.customer_id,
                reference: e.reference.clone(),
                display_name: e.display_name.clone(),
                language: e.language.clone(),
                time_zone: e.time_zone.clone(),
                contact_points: e.contact_points.clone(),
                preferred_channel: None,
                consent_to_contact: None,
                registered_at: e.at,
                merged_into: None,
                forgotten: false,
            });
        }
        (State::Unknown, _) => return State::Unknown,
        (State::Known(customer), _) => customer,
    };
    if event.stream() != crate::events::StreamRef::Customer(customer.customer_id) {
        return State::Known(customer);
    }
    match event {
        DomainEvent::CustomerProfileUpdated(e) => {
            if let Some(name) = &e.display_name {
                customer.display_name = name.clone();
            }
            if let Some(zone) = &e.time_zone {
                customer.time_zone = zone.clone();
            }
        }
        DomainEvent::ContactPointAdded(e)
            if !customer.contact_points.contains(&e.contact_point) =>
        {
            customer.contact_points.push(e.contact_point.clone());
        }
        DomainEvent::ContactPointRemoved(e) => {
            customer.contact_points.retain(|p| *p != e.contact_point);
        }
        DomainEvent::CustomerPreferencesChanged(e) => {
            if let Some(language) = &e.language {
                customer.language = language.clone();
            }
            if e.preferred_channel.is_some() {
                customer.preferred_channel = e.preferred_channel;
            }
            if e.consent_to_contact.is_some() {
                customer.consent_to_contact = e.consent_to_contact;
            }
        }
        DomainEvent::CustomerMerged(e) => customer.merged_into = Some(e.into),
        DomainEvent::CustomerForgotten(_) => {
            customer.forgotten = true;
            customer.display_name.clear();
            customer.contact_points.clear();
        }
        _ => {}
    }
    State::Known(customer)
}
