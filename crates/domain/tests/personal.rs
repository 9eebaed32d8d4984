//! The personal-data map: every event type's personal text fields are visited (and only they),
//! the documented table names exactly the fields the visitor visits, every event has the right
//! data subject, and erasing leaves ids, times, scores and the other facts of service intact.

use std::collections::BTreeSet;

use serde_json::Value;
use sijil_domain::events::*;
use sijil_domain::personal::*;
use sijil_domain::*;

fn id(n: u8) -> uuid::Uuid {
    uuid::Builder::from_unix_timestamp_millis(1_700_000_000_000, &[n; 10]).into_uuid()
}

fn customer() -> CustomerId {
    CustomerId::new(id(1)).expect("v7")
}
fn case() -> CaseId {
    CaseId::new(id(2)).expect("v7")
}
fn follow_up() -> FollowUpId {
    FollowUpId::new(id(7)).expect("v7")
}

/// One event per type, every optional field present. Every personal string starts with
/// `pii-`; no other string does.
fn samples() -> Vec<DomainEvent> {
    let interaction = InteractionId::new(id(3)).expect("v7");
    let agent = AgentId::new(id(4)).expect("v7");
    let team = TeamId::new(id(5)).expect("v7");
    let survey = SurveyId::new(id(6)).expect("v7");
    let at = Timestamp(1_700_000_000_000);
    vec![
        CustomerRegistered {
            customer_id: customer(),
            reference: "pii-CUST-1".into(),
            display_name: "pii-أمينة الحربي".into(),
            language: "ar-SA".into(),
            time_zone: "Asia/Riyadh".into(),
            contact_points: vec![
                ContactPoint {
                    kind: ContactKind::Email,
                    value: "pii-amina@example.com".into(),
                },
                ContactPoint {
                    kind: ContactKind::Phone,
                    value: "pii-+966500000001".into(),
                },
            ],
            at,
        }
        .into(),
        CustomerProfileUpdated {
            customer_id: customer(),
            display_name: Some("pii-Amina H.".into()),
            time_zone: Some("Europe/Paris".into()),
            at,
        }
        .into(),
        ContactPointAdded {
            customer_id: customer(),
            contact_point: ContactPoint {
                kind: ContactKind::Social,
                value: "pii-x:@amina".into(),
            },
            at,
        }
        .into(),
        ContactPointRemoved {
            customer_id: customer(),
            contact_point: ContactPoint {
                kind: ContactKind::Messaging,
                value: "pii-whatsapp:+966500000001".into(),
            },
            at,
        }
        .into(),
        CustomerPreferencesChanged {
            customer_id: customer(),
            language: Some("en-GB".into()),
            preferred_channel: Some(Channel::Messaging),
            consent_to_contact: Some(true),
            at,
        }
        .into(),
        CustomerMerged {
            customer_id: customer(),
            into: CustomerId::new(id(10)).expect("v7"),
            at,
        }
        .into(),
        CustomerForgotten {
            customer_id: customer(),
            request_reference: "DSR-1".into(),
            at,
        }
        .into(),
        InteractionRecorded {
            interaction_id: interaction,
            customer_id: customer(),
            channel: Channel::Phone,
            direction: Direction::Inbound,
            handled_by: Handler::Bot("ivr".into()),
            language: "ar".into(),
            summary: "pii-Balance enquiry".into(),
            duration_seconds: 60,
            case_id: Some(case()),
            recording_ref: Some("pii-rec/1".into()),
            at,
        }
        .into(),
        NoteAdded {
            note_id: NoteId::new(id(8)).expect("v7"),
            target: NoteTarget::Interaction(interaction),
            customer_id: customer(),
            author: Some(agent),
            text: "pii-line\nbreak".into(),
            at,
        }
        .into(),
        CaseOpened {
            case_id: case(),
            customer_id: customer(),
            subject: "pii-Card declined".into(),
            category: "payments".into(),
            priority: Priority::Urgent,
            channel: Channel::LiveChat,
            sla: SlaPolicy {
                first_response_minutes: 15,
                resolution_minutes: 240,
            },
            top_level: 3,
            at,
        }
        .into(),
        CaseAssigned {
            case_id: case(),
            agent: Some(agent),
            team: Some(team),
            at,
        }
        .into(),
        FirstResponseGiven {
            case_id: case(),
            agent: None,
            channel: Channel::Email,
            at,
        }
        .into(),
        CaseEscalated {
            case_id: case(),
            from_level: 1,
            to_level: 2,
            reason: "pii-tier 2".into(),
            team: Some(team),
            at,
        }
        .into(),
        CaseDeescalated {
            case_id: case(),
            from_level: 2,
            to_level: 1,
            reason: "pii-back".into(),
            team: None,
            at,
        }
        .into(),
        SlaBreached {
            case_id: case(),
            target: SlaTarget::FirstResponse,
            due_at: at,
            overdue_ms: 60_000,
            at,
        }
        .into(),
        CaseResolved {
            case_id: case(),
            resolution: "pii-Fixed".into(),
            root_cause: "pii-config".into(),
            first_contact_resolution: true,
            agent: Some(agent),
            at,
        }
        .into(),
        CaseReopened {
            case_id: case(),
            reason: "pii-again".into(),
            at,
        }
        .into(),
        CaseClosed {
            case_id: case(),
            at,
        }
        .into(),
        SurveyAnswered {
            survey_id: survey,
            customer_id: customer(),
            subject: FeedbackSubject::Case(case()),
            score: Score::Nps(3),
            comment: Some("pii-slow".into()),
            at,
        }
        .into(),
        FollowUpScheduled {
            follow_up_id: follow_up(),
            customer_id: customer(),
            reason: FollowUpReason::DetractorFollowUp,
            related: Some(FollowUpRelation::Survey(survey)),
            due_at: at,
            agent: Some(agent),
            team: Some(team),
            note: Some("pii-call after 5".into()),
            at,
        }
        .into(),
        FollowUpCompleted {
            follow_up_id: follow_up(),
            outcome: "pii-called".into(),
            agent: None,
            at,
        }
        .into(),
        FollowUpCancelled {
            follow_up_id: follow_up(),
            reason: "pii-moved".into(),
            at,
        }
        .into(),
        AgentRegistered {
            agent_id: agent,
            display_name: "Omar".into(),
            teams: vec![team],
            at,
        }
        .into(),
        AgentRecognised {
            recognition_id: RecognitionId::new(id(9)).expect("v7"),
            agent_id: agent,
            by: AgentId::new(id(11)).expect("v7"),
            reason: "great".into(),
            reward: Reward::Voucher {
                amount_minor: 10_000,
                currency: "SAR".into(),
            },
            basis: RecognitionBasis::Metric {
                metric: MetricKind::Csat,
                from: at,
                to: Timestamp(at.0 + 1),
            },
            at,
        }
        .into(),
    ]
}

fn json(event: &DomainEvent) -> Value {
    serde_json::to_value(event).expect("events serialise")
}

/// `value` with every string starting with `pii-` replaced by `with`.
fn replace_pii(value: Value, with: &str) -> Value {
    match value {
        Value::String(s) if s.starts_with("pii-") => Value::String(with.to_owned()),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| replace_pii(v, with)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, replace_pii(v, with)))
                .collect(),
        ),
        other => other,
    }
}

fn count_pii(value: &Value) -> usize {
    match value {
        Value::String(s) => usize::from(s.starts_with("pii-")),
        Value::Array(items) => items.iter().map(count_pii).sum(),
        Value::Object(map) => map.values().map(count_pii).sum(),
        _ => 0,
    }
}

#[test]
fn the_samples_cover_every_event_type() {
    let sampled: BTreeSet<&str> = samples().iter().map(DomainEvent::event_type).collect();
    let listed: BTreeSet<&str> = EVENT_TYPES.iter().copied().collect();
    assert_eq!(sampled, listed);
    assert_eq!(samples().len(), EVENT_TYPES.len());
}

#[test]
fn every_personal_field_is_visited_and_nothing_else_changes() {
    for original in samples() {
        // Given an event whose personal strings are marked `pii-`,
        let mut event = original.clone();
        let mut visited = 0;
        // when every visited field is replaced,
        map_personal(&mut event, |_, value| {
            assert!(
                value.starts_with("pii-"),
                "{}: visited {value:?}",
                original.event_type()
            );
            visited += 1;
            *value = "REPLACED".into();
        });
        // then exactly the marked strings changed, and nothing else did.
        let expected = replace_pii(json(&original), "REPLACED");
        assert_eq!(json(&event), expected, "{}", original.event_type());
        assert_eq!(
            visited,
            count_pii(&json(&original)),
            "{}",
            original.event_type()
        );
        assert_eq!(event.event_type(), original.event_type());
        assert_eq!(event.occurred_at(), original.occurred_at());
        assert_eq!(event.stream(), original.stream());
    }
}

#[test]
fn the_documented_table_names_exactly_the_visited_fields() {
    for event in samples() {
        let visited: BTreeSet<PersonalField> = personal_values(&event)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        let table: BTreeSet<PersonalField> =
            fields_of_type(event.event_type()).iter().copied().collect();
        assert_eq!(visited, table, "{}", event.event_type());
        assert_eq!(has_personal(&event), !table.is_empty());
    }
    // Every field kind belongs to some event type, and names are unique.
    let used: BTreeSet<PersonalField> = EVENT_TYPES
        .iter()
        .flat_map(|t| fields_of_type(t).iter().copied())
        .collect();
    assert_eq!(used, PersonalField::ALL.into_iter().collect());
    let names: BTreeSet<&str> = PersonalField::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(names.len(), PersonalField::ALL.len());
    assert!(fields_of_type("NoSuchEvent").is_empty());
}

#[test]
fn absent_optional_fields_are_not_visited() {
    let at = Timestamp(5);
    let sparse: Vec<DomainEvent> = vec![
        CustomerProfileUpdated {
            customer_id: customer(),
            display_name: None,
            time_zone: Some("Asia/Tokyo".into()),
            at,
        }
        .into(),
        SurveyAnswered {
            survey_id: SurveyId::new(id(6)).expect("v7"),
            customer_id: customer(),
            subject: FeedbackSubject::Case(case()),
            score: Score::Csat(4),
            comment: None,
            at,
        }
        .into(),
        FollowUpScheduled {
            follow_up_id: follow_up(),
            customer_id: customer(),
            reason: FollowUpReason::Other,
            related: None,
            due_at: at,
            agent: None,
            team: None,
            note: None,
            at,
        }
        .into(),
        CustomerRegistered {
            customer_id: customer(),
            reference: "pii-R".into(),
            display_name: "pii-N".into(),
            language: "en".into(),
            time_zone: "UTC".into(),
            contact_points: vec![],
            at,
        }
        .into(),
    ];
    let visited: Vec<Vec<PersonalField>> = sparse
        .iter()
        .map(|e| personal_values(e).into_iter().map(|(f, _)| f).collect())
        .collect();
    assert_eq!(
        visited,
        vec![
            vec![],
            vec![],
            vec![],
            vec![PersonalField::CustomerReference, PersonalField::DisplayName],
        ]
    );
    let mut erased = sparse.clone();
    erased.iter_mut().for_each(erase);
    assert_eq!(
        &erased[..3],
        &sparse[..3],
        "nothing to erase, nothing changes"
    );
}

#[test]
fn each_event_names_its_data_subject() {
    for event in samples() {
        let subject = data_subject(&event);
        let expected = match event.event_type() {
            "AgentRegistered" | "AgentRecognised" => DataSubject::NoCustomer,
            "FollowUpCompleted" | "FollowUpCancelled" => {
                DataSubject::CustomerOfFollowUp(follow_up())
            }
            t if t.starts_with("Case") && t != "CaseOpened" => DataSubject::CustomerOfCase(case()),
            "FirstResponseGiven" | "SlaBreached" => DataSubject::CustomerOfCase(case()),
            _ => DataSubject::Customer(customer()),
        };
        assert_eq!(subject, expected, "{}", event.event_type());
        assert_eq!(subject.customer(), expected.customer());
        let link = subject_link(&event);
        match event.event_type() {
            "CaseOpened" => assert_eq!(link, Some(SubjectLink::Case(case(), customer()))),
            "FollowUpScheduled" => {
                assert_eq!(link, Some(SubjectLink::FollowUp(follow_up(), customer())))
            }
            _ => assert_eq!(link, None, "{}", event.event_type()),
        }
    }
}

#[test]
fn erasing_writes_the_marker_and_is_idempotent() {
    for original in samples() {
        let mut once = original.clone();
        erase(&mut once);
        assert_eq!(json(&once), replace_pii(json(&original), ERASED));
        let mut twice = once.clone();
        erase(&mut twice);
        assert_eq!(twice, once, "{}", original.event_type());
    }
}

#[test]
fn a_failing_visitor_stops_at_the_first_error() {
    let mut event = samples().remove(0);
    let before = event.clone();
    let mut calls = 0;
    let result: Result<(), &str> = try_map_personal(&mut event, |field, _| {
        calls += 1;
        if field == PersonalField::DisplayName {
            Err("stop")
        } else {
            Ok(())
        }
    });
    assert_eq!(result, Err("stop"));
    assert_eq!(
        calls, 2,
        "reference, then display name; contact points not reached"
    );
    assert_eq!(event, before);
}
