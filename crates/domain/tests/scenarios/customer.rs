//! Customer: registration, profile, contact points, preferences, merge, forget.

use crate::fixtures::*;
use sijil_domain::customer::{self, State};
use sijil_domain::events::*;
use sijil_domain::*;

fn me() -> CustomerId {
    customer_id(1)
}

fn other() -> CustomerId {
    customer_id(2)
}

fn register() -> CustomerCommand {
    CustomerCommand::Register {
        customer_id: me(),
        reference: " CUST-0001 ".into(),
        display_name: "  Amina Al-Harbi ".into(),
        language: "AR-sa".into(),
        time_zone: "Asia/Riyadh".into(),
        contact_points: vec![email("Amina@Example.COM"), phone("00966 50 123 4567")],
        at: t(0),
    }
}

fn registered() -> CustomerRegistered {
    CustomerRegistered {
        customer_id: me(),
        reference: "CUST-0001".into(),
        display_name: "Amina Al-Harbi".into(),
        language: "ar-SA".into(),
        time_zone: "Asia/Riyadh".into(),
        contact_points: vec![email("amina@example.com"), phone("+966501234567")],
        at: t(0),
    }
}

fn merged() -> CustomerMerged {
    CustomerMerged {
        customer_id: me(),
        into: other(),
        at: t(5),
    }
}

fn forgotten() -> CustomerForgotten {
    CustomerForgotten {
        customer_id: me(),
        request_reference: "DSR-1".into(),
        at: t(9),
    }
}

fn update_name(name: &str) -> CustomerCommand {
    CustomerCommand::UpdateProfile {
        display_name: Some(name.into()),
        time_zone: None,
        at: t(10),
    }
}

// ------------------------------------------------------------ register

#[test]
fn registering_normalises_every_input() {
    let state = nothing().when(register()).then([registered()]);
    assert_eq!(state.status(), CustomerStatus::Active);
}

#[test]
fn registering_twice_is_refused() {
    given([registered()])
        .when(register())
        .then_err("ALREADY_EXISTS");
}

#[test]
fn registering_the_same_contact_point_twice_is_refused() {
    let command = register_with(|c| {
        if let CustomerCommand::Register { contact_points, .. } = c {
            *contact_points = vec![email("a@example.com"), email(" A@EXAMPLE.com")];
        }
    });
    nothing().when(command).then_err("DUPLICATE_CONTACT_POINT");
}

/// The registration command with one field changed.
fn register_with(edit: impl FnOnce(&mut CustomerCommand)) -> CustomerCommand {
    let mut command = register();
    edit(&mut command);
    command
}

#[test]
fn registering_with_bad_inputs_is_refused() {
    let bad_language = register_with(|c| {
        if let CustomerCommand::Register { language, .. } = c {
            *language = "english".into();
        }
    });
    nothing().when(bad_language).then_err("INVALID_LANGUAGE");
    let bad_zone = register_with(|c| {
        if let CustomerCommand::Register { time_zone, .. } = c {
            *time_zone = "Mars/Olympus".into();
        }
    });
    nothing().when(bad_zone).then_err("INVALID_TIME_ZONE");
    let bad_reference = register_with(|c| {
        if let CustomerCommand::Register { reference, .. } = c {
            *reference = "CUST 1".into();
        }
    });
    nothing().when(bad_reference).then_err("INVALID_REFERENCE");
    let blank_name = register_with(|c| {
        if let CustomerCommand::Register { display_name, .. } = c {
            *display_name = "   ".into();
        }
    });
    nothing().when(blank_name).then_err("INVALID_TEXT");
    let bad_email = register_with(|c| {
        if let CustomerCommand::Register { contact_points, .. } = c {
            *contact_points = vec![email("not-an-email")];
        }
    });
    nothing().when(bad_email).then_err("INVALID_CONTACT_POINT");
}

// ------------------------------------------------------------ profile

#[test]
fn updating_the_profile_records_only_what_changes() {
    given([registered()])
        .when(CustomerCommand::UpdateProfile {
            display_name: Some("Amina Al-Harbi".into()),
            time_zone: Some("europe/paris".into()),
            at: t(10),
        })
        .then([CustomerProfileUpdated {
            customer_id: me(),
            display_name: None,
            time_zone: Some("Europe/Paris".into()),
            at: t(10),
        }]);
}

#[test]
fn an_update_that_changes_nothing_records_nothing() {
    given([registered()])
        .when(update_name(" Amina Al-Harbi"))
        .then_nothing();
}

#[test]
fn updating_an_unknown_customer_is_refused() {
    nothing().when(update_name("X")).then_err("NOT_FOUND");
}

#[test]
fn updating_a_forgotten_or_merged_customer_is_refused() {
    given([registered().into(), DomainEvent::from(forgotten())])
        .when(update_name("X"))
        .then_err("CUSTOMER_FORGOTTEN");
    given([registered().into(), DomainEvent::from(merged())])
        .when(update_name("X"))
        .then_err("CUSTOMER_MERGED");
}

#[test]
fn updating_with_a_bad_time_zone_is_refused() {
    given([registered()])
        .when(CustomerCommand::UpdateProfile {
            display_name: None,
            time_zone: Some("../etc/passwd".into()),
            at: t(10),
        })
        .then_err("INVALID_TIME_ZONE");
}

// ------------------------------------------------------------ contact points

#[test]
fn adding_a_contact_point_normalises_it() {
    let state = given([registered()])
        .when(CustomerCommand::AddContactPoint {
            contact_point: ContactPoint {
                kind: ContactKind::Social,
                value: "X:@amina".into(),
            },
            at: t(1),
        })
        .then([ContactPointAdded {
            customer_id: me(),
            contact_point: ContactPoint {
                kind: ContactKind::Social,
                value: "x:@amina".into(),
            },
            at: t(1),
        }]);
    assert_eq!(state.customer().map(|c| c.contact_points.len()), Some(3));
}

#[test]
fn adding_a_contact_point_already_there_is_refused() {
    given([registered()])
        .when(CustomerCommand::AddContactPoint {
            contact_point: phone("+966-50-123-4567"),
            at: t(1),
        })
        .then_err("DUPLICATE_CONTACT_POINT");
}

#[test]
fn adding_a_contact_point_to_a_forgotten_or_merged_customer_is_refused() {
    let add = || CustomerCommand::AddContactPoint {
        contact_point: email("new@example.com"),
        at: t(11),
    };
    given([registered().into(), DomainEvent::from(forgotten())])
        .when(add())
        .then_err("CUSTOMER_FORGOTTEN");
    given([registered().into(), DomainEvent::from(merged())])
        .when(add())
        .then_err("CUSTOMER_MERGED");
}

#[test]
fn removing_a_contact_point() {
    let state = given([registered()])
        .when(CustomerCommand::RemoveContactPoint {
            contact_point: email("AMINA@example.com"),
            at: t(1),
        })
        .then([ContactPointRemoved {
            customer_id: me(),
            contact_point: email("amina@example.com"),
            at: t(1),
        }]);
    assert_eq!(
        state.customer().map(|c| c.contact_points.clone()),
        Some(vec![phone("+966501234567")])
    );
}

#[test]
fn removing_an_absent_contact_point_is_refused() {
    given([registered()])
        .when(CustomerCommand::RemoveContactPoint {
            contact_point: email("someone@example.com"),
            at: t(1),
        })
        .then_err("NOT_FOUND");
}

#[test]
fn removing_a_contact_point_of_a_merged_customer_is_refused() {
    given([registered().into(), DomainEvent::from(merged())])
        .when(CustomerCommand::RemoveContactPoint {
            contact_point: email("amina@example.com"),
            at: t(11),
        })
        .then_err("CUSTOMER_MERGED");
}

// ------------------------------------------------------------ preferences

#[test]
fn changing_preferences() {
    let state = given([registered()])
        .when(CustomerCommand::ChangePreferences {
            language: Some("en-gb".into()),
            preferred_channel: Some(Channel::Messaging),
            consent_to_contact: Some(false),
            at: t(2),
        })
        .then([CustomerPreferencesChanged {
            customer_id: me(),
            language: Some("en-GB".into()),
            preferred_channel: Some(Channel::Messaging),
            consent_to_contact: Some(false),
            at: t(2),
        }]);
    let customer = state.customer().cloned();
    assert_eq!(
        customer.as_ref().map(|c| c.language.as_str()),
        Some("en-GB")
    );
    assert_eq!(customer.and_then(|c| c.consent_to_contact), Some(false));
}

#[test]
fn a_preference_change_that_changes_nothing_records_nothing() {
    given([registered()])
        .when(CustomerCommand::ChangePreferences {
            language: Some("ar-SA".into()),
            preferred_channel: None,
            consent_to_contact: None,
            at: t(2),
        })
        .then_nothing();
}

#[test]
fn changing_preferences_with_a_bad_tag_or_of_a_forgotten_customer_is_refused() {
    let change = |tag: &str| CustomerCommand::ChangePreferences {
        language: Some(tag.into()),
        preferred_channel: None,
        consent_to_contact: None,
        at: t(12),
    };
    given([registered()])
        .when(change("en_GB"))
        .then_err("INVALID_LANGUAGE");
    given([registered().into(), DomainEvent::from(forgotten())])
        .when(change("fr"))
        .then_err("CUSTOMER_FORGOTTEN");
}

// ------------------------------------------------------------ merge

fn merge(into: CustomerId, target: CustomerStatus) -> CustomerCommand {
    CustomerCommand::Merge {
        into,
        target,
        at: t(5),
    }
}

#[test]
fn merging_into_an_active_customer() {
    let state = given([registered()])
        .when(merge(other(), CustomerStatus::Active))
        .then([merged()]);
    assert_eq!(state.status(), CustomerStatus::MergedInto(other()));
}

#[test]
fn merging_into_itself_is_refused() {
    given([registered()])
        .when(merge(me(), CustomerStatus::Active))
        .then_err("MERGE_INTO_SELF");
}

#[test]
fn merging_into_a_target_that_is_not_active_is_refused() {
    given([registered()])
        .when(merge(other(), CustomerStatus::Unknown))
        .then_err("NOT_FOUND");
    given([registered()])
        .when(merge(other(), CustomerStatus::Forgotten))
        .then_err("CUSTOMER_FORGOTTEN");
    given([registered()])
        .when(merge(other(), CustomerStatus::MergedInto(customer_id(3))))
        .then_err("CUSTOMER_MERGED");
}

#[test]
fn merging_a_customer_that_is_not_active_is_refused() {
    nothing()
        .when(merge(other(), CustomerStatus::Active))
        .then_err("NOT_FOUND");
    given([registered().into(), DomainEvent::from(merged())])
        .when(merge(customer_id(3), CustomerStatus::Active))
        .then_err("CUSTOMER_MERGED");
    given([registered().into(), DomainEvent::from(forgotten())])
        .when(merge(other(), CustomerStatus::Active))
        .then_err("CUSTOMER_FORGOTTEN");
}

// ------------------------------------------------------------ forget

fn forget() -> CustomerCommand {
    CustomerCommand::Forget {
        request_reference: "DSR-1".into(),
        at: t(9),
    }
}

#[test]
fn forgetting_erases_personal_data_from_the_state() {
    let state = given([registered()]).when(forget()).then([forgotten()]);
    assert_eq!(state.status(), CustomerStatus::Forgotten);
    let customer = state.customer().cloned();
    assert_eq!(customer.as_ref().map(|c| c.display_name.as_str()), Some(""));
    assert_eq!(customer.map(|c| c.contact_points.is_empty()), Some(true));
}

#[test]
fn forgetting_twice_records_nothing_the_second_time() {
    given([registered().into(), DomainEvent::from(forgotten())])
        .when(forget())
        .then_nothing();
}

#[test]
fn a_merged_away_customer_can_still_be_forgotten() {
    let state = given([registered().into(), DomainEvent::from(merged())])
        .when(forget())
        .then([forgotten()]);
    assert_eq!(state.status(), CustomerStatus::Forgotten);
}

#[test]
fn forgetting_an_unknown_customer_or_with_a_bad_reference_is_refused() {
    nothing().when(forget()).then_err("NOT_FOUND");
    given([registered()])
        .when(CustomerCommand::Forget {
            request_reference: "".into(),
            at: t(9),
        })
        .then_err("INVALID_REFERENCE");
}

#[test]
fn status_of_an_unknown_customer() {
    assert_eq!(State::default().status(), CustomerStatus::Unknown);
    assert_eq!(customer::fold([]).status(), CustomerStatus::Unknown);
}

#[test]
fn events_of_another_customer_are_ignored() {
    let mine = customer::fold(&[registered().into()]);
    let foreign: DomainEvent = CustomerForgotten {
        customer_id: other(),
        request_reference: "DSR-9".into(),
        at: t(3),
    }
    .into();
    assert_eq!(customer::evolve(mine.clone(), &foreign), mine);
}
