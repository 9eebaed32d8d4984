//! Error codes are stable, unique and grouped into kinds.

use std::collections::BTreeSet;

use sijil_domain::*;

fn one_of_each() -> Vec<DomainError> {
    let customer = CustomerId::parse("01890a5d-ac96-774b-bcce-b302099a8057").expect("v7");
    vec![
        DomainError::InvalidId {
            kind: "case id",
            value: "x".into(),
        },
        DomainError::InvalidText {
            field: "note",
            reason: "empty".into(),
        },
        DomainError::InvalidReference {
            field: "reference",
            value: "a b".into(),
        },
        DomainError::InvalidLanguage {
            value: "e".into(),
            reason: "short".into(),
        },
        DomainError::InvalidTimeZone {
            value: "Mars/Olympus".into(),
        },
        DomainError::InvalidContactPoint {
            kind: "email",
            value: "x".into(),
            reason: "no @".into(),
        },
        DomainError::InvalidCurrency {
            value: "EURO".into(),
        },
        DomainError::ScoreOutOfRange {
            scale: "CSAT",
            value: 9,
            min: 1,
            max: 5,
        },
        DomainError::InvalidReward {
            reason: "zero".into(),
        },
        DomainError::InvalidPeriod {
            from: Timestamp(2),
            to: Timestamp(1),
        },
        DomainError::InvalidSla {
            reason: "zero".into(),
        },
        DomainError::InvalidLevel {
            reason: "zero".into(),
        },
        DomainError::InvalidAssignment,
        DomainError::MergeIntoSelf { customer },
        DomainError::SelfRecognition,
        DomainError::NotFound {
            what: "case",
            id: None,
        },
        DomainError::AlreadyExists {
            what: "case",
            id: "1".into(),
        },
        DomainError::CustomerForgotten { customer },
        DomainError::CustomerMerged {
            customer,
            into: customer,
        },
        DomainError::DuplicateContactPoint { value: "x".into() },
        DomainError::CaseClosed,
        DomainError::AlreadyResolved,
        DomainError::NotResolved,
        DomainError::AlreadyResponded,
        DomainError::TopLevelReached { top_level: 3 },
        DomainError::BottomLevelReached,
        DomainError::AlreadyBreached {
            target: SlaTarget::Resolution,
        },
        DomainError::NotDue {
            target: SlaTarget::FirstResponse,
            due_at: Timestamp(0),
        },
        DomainError::TargetMet {
            target: SlaTarget::FirstResponse,
        },
        DomainError::InvalidTransition {
            what: "follow-up",
            from: "completed",
            action: "cancel",
        },
    ]
}

#[test]
fn every_variant_has_a_distinct_code_listed_in_codes() {
    let errors = one_of_each();
    let codes: Vec<&str> = errors.iter().map(DomainError::code).collect();
    let unique: BTreeSet<&str> = codes.iter().copied().collect();
    assert_eq!(unique.len(), codes.len(), "codes are distinct");
    let listed: BTreeSet<&str> = DomainError::CODES.iter().copied().collect();
    assert_eq!(
        listed.len(),
        DomainError::CODES.len(),
        "CODES has no repeats"
    );
    assert_eq!(unique, listed);
}

#[test]
fn codes_are_upper_snake_case() {
    for code in DomainError::CODES {
        assert!(
            code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
            "{code}"
        );
    }
}

#[test]
fn kinds_group_bad_input_missing_things_and_state_rules() {
    for error in one_of_each() {
        let expected = match error.code() {
            "NOT_FOUND" => ErrorKind::NotFound,
            "INVALID_TRANSITION" => ErrorKind::Rule,
            code if code.starts_with("INVALID_")
                || matches!(
                    code,
                    "SCORE_OUT_OF_RANGE" | "MERGE_INTO_SELF" | "SELF_RECOGNITION"
                ) =>
            {
                ErrorKind::Validation
            }
            _ => ErrorKind::Rule,
        };
        assert_eq!(error.kind(), expected, "{}", error.code());
    }
    assert_eq!(ErrorKind::Validation.as_str(), "VALIDATION");
    assert_eq!(ErrorKind::NotFound.as_str(), "NOT_FOUND");
    assert_eq!(ErrorKind::Rule.as_str(), "RULE");
}

#[test]
fn messages_read_well() {
    assert_eq!(
        DomainError::NotFound {
            what: "case",
            id: None
        }
        .to_string(),
        "case not found"
    );
    assert_eq!(
        DomainError::NotFound {
            what: "contact point",
            id: Some("a@b.co".into())
        }
        .to_string(),
        "contact point a@b.co not found"
    );
    assert_eq!(
        DomainError::TopLevelReached { top_level: 3 }.to_string(),
        "the case is already at the top level 3"
    );
}
