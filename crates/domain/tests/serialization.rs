//! Every event type round-trips through MessagePack (maps with field names, as the store writes
//! them) and JSON via `serialize_payload` / `deserialize_payload`, for hand-written samples and
//! for arbitrary generated events; `EVENT_TYPES` names every variant exactly once.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sijil_domain::events::*;
use sijil_domain::*;

// ------------------------------------------------------------ codecs

fn to_msgpack(event: &DomainEvent) -> Vec<u8> {
    let mut buf = Vec::new();
    event
        .serialize_payload(&mut rmp_serde::Serializer::new(&mut buf).with_struct_map())
        .expect("msgpack encodes");
    buf
}

fn from_msgpack(event_type: &str, version: u16, bytes: &[u8]) -> DomainEvent {
    let mut de = rmp_serde::Deserializer::new(bytes);
    DomainEvent::deserialize_payload(event_type, version, &mut de).expect("msgpack decodes")
}

fn to_json(event: &DomainEvent) -> Vec<u8> {
    let mut buf = Vec::new();
    event
        .serialize_payload(&mut serde_json::Serializer::new(&mut buf))
        .expect("json encodes");
    buf
}

fn from_json(event_type: &str, version: u16, bytes: &[u8]) -> DomainEvent {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    DomainEvent::deserialize_payload(event_type, version, &mut de).expect("json decodes")
}

fn assert_round_trips(event: &DomainEvent) {
    let (event_type, version) = (event.event_type(), event.schema_version());
    assert_eq!(
        &from_msgpack(event_type, version, &to_msgpack(event)),
        event
    );
    assert_eq!(&from_json(event_type, version, &to_json(event)), event);
}

// ------------------------------------------------------------ samples, one per type

fn id(n: u8) -> uuid::Uuid {
    uuid::Builder::from_unix_timestamp_millis(1_700_000_000_000, &[n; 10]).into_uuid()
}

fn samples() -> Vec<DomainEvent> {
    let customer = CustomerId::new(id(1)).expect("v7");
    let case = CaseId::new(id(2)).expect("v7");
    let interaction = InteractionId::new(id(3)).expect("v7");
    let agent = AgentId::new(id(4)).expect("v7");
    let team = TeamId::new(id(5)).expect("v7");
    let survey = SurveyId::new(id(6)).expect("v7");
    let follow_up = FollowUpId::new(id(7)).expect("v7");
    let note = NoteId::new(id(8)).expect("v7");
    let recognition = RecognitionId::new(id(9)).expect("v7");
    let at = Timestamp(1_700_000_000_000);
    let point = ContactPoint {
        kind: ContactKind::Email,
        value: "amina@example.com".into(),
    };
    vec![
        CustomerRegistered {
            customer_id: customer,
            reference: "CUST-1".into(),
            display_name: "أمينة الحربي".into(),
            language: "ar-SA".into(),
            time_zone: "Asia/Riyadh".into(),
            contact_points: vec![point.clone()],
            at,
        }
        .into(),
        CustomerProfileUpdated {
            customer_id: customer,
            display_name: None,
            time_zone: Some("Europe/Paris".into()),
            at,
        }
        .into(),
        ContactPointAdded {
            customer_id: customer,
            contact_point: point.clone(),
            at,
        }
        .into(),
        ContactPointRemoved {
            customer_id: customer,
            contact_point: point,
            at,
        }
        .into(),
        CustomerPreferencesChanged {
            customer_id: customer,
            language: Some("en-GB".into()),
            preferred_channel: Some(Channel::Messaging),
            consent_to_contact: Some(true),
            at,
        }
        .into(),
        CustomerMerged {
            customer_id: customer,
            into: CustomerId::new(id(10)).expect("v7"),
            at,
        }
        .into(),
        CustomerForgotten {
            customer_id: customer,
            request_reference: "DSR-1".into(),
            at,
        }
        .into(),
        InteractionRecorded {
            interaction_id: interaction,
            customer_id: customer,
            channel: Channel::Phone,
            direction: Direction::Inbound,
            handled_by: Handler::Bot("ivr".into()),
            language: "ar".into(),
            summary: "Balance".into(),
            duration_seconds: 60,
            case_id: Some(case),
            recording_ref: Some("rec/1".into()),
            at,
        }
        .into(),
        NoteAdded {
            note_id: note,
            target: NoteTarget::Interaction(interaction),
            customer_id: customer,
            author: Some(agent),
            text: "line\nbreak".into(),
            at,
        }
        .into(),
        CaseOpened {
            case_id: case,
            customer_id: customer,
            subject: "Card declined".into(),
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
            case_id: case,
            agent: Some(agent),
            team: Some(team),
            at,
        }
        .into(),
        FirstResponseGiven {
            case_id: case,
            agent: None,
            channel: Channel::Email,
            at,
        }
        .into(),
        CaseEscalated {
            case_id: case,
            from_level: 1,
            to_level: 2,
            reason: "tier 2".into(),
            team: Some(team),
            at,
        }
        .into(),
        CaseDeescalated {
            case_id: case,
            from_level: 2,
            to_level: 1,
            reason: "back".into(),
            team: None,
            at,
        }
        .into(),
        SlaBreached {
            case_id: case,
            target: SlaTarget::FirstResponse,
            due_at: at,
            overdue_ms: 60_000,
            at,
        }
        .into(),
        CaseResolved {
            case_id: case,
            resolution: "Fixed".into(),
            root_cause: "config".into(),
            first_contact_resolution: true,
            agent: Some(agent),
            at,
        }
        .into(),
        CaseReopened {
            case_id: case,
            reason: "again".into(),
            at,
        }
        .into(),
        CaseClosed { case_id: case, at }.into(),
        SurveyAnswered {
            survey_id: survey,
            customer_id: customer,
            subject: FeedbackSubject::Case(case),
            score: Score::Nps(3),
            comment: Some("slow".into()),
            at,
        }
        .into(),
        FollowUpScheduled {
            follow_up_id: follow_up,
            customer_id: customer,
            reason: FollowUpReason::DetractorFollowUp,
            related: Some(FollowUpRelation::Survey(survey)),
            due_at: at,
            agent: Some(agent),
            team: Some(team),
            note: None,
            at,
        }
        .into(),
        FollowUpCompleted {
            follow_up_id: follow_up,
            outcome: "called".into(),
            agent: None,
            at,
        }
        .into(),
        FollowUpCancelled {
            follow_up_id: follow_up,
            reason: "moved".into(),
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
            recognition_id: recognition,
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

#[test]
fn event_types_name_every_variant_exactly_once() {
    let listed: BTreeSet<&str> = EVENT_TYPES.iter().copied().collect();
    assert_eq!(
        listed.len(),
        EVENT_TYPES.len(),
        "EVENT_TYPES has no repeats"
    );
    let sampled: Vec<&str> = samples().iter().map(DomainEvent::event_type).collect();
    let sampled_set: BTreeSet<&str> = sampled.iter().copied().collect();
    assert_eq!(sampled_set.len(), sampled.len(), "one sample per type");
    assert_eq!(sampled_set, listed, "the samples cover EVENT_TYPES");
}

#[test]
fn every_sample_round_trips_through_msgpack_and_json() {
    for event in samples() {
        assert_round_trips(&event);
    }
}

#[test]
fn msgpack_payloads_are_maps_with_field_names() {
    for event in samples() {
        let bytes = to_msgpack(&event);
        // A fixmap / map16 marker first, and the `at` field name inside.
        assert!(
            matches!(bytes.first(), Some(0x80..=0x8f | 0xde)),
            "{}",
            event.event_type()
        );
        assert!(
            bytes.windows(3).any(|w| w == [0xa2, b'a', b't']),
            "{} carries the field name `at`",
            event.event_type()
        );
    }
}

#[test]
fn unknown_types_and_versions_are_refused() {
    let event = &samples()[0];
    let bytes = to_msgpack(event);
    let mut de = rmp_serde::Deserializer::new(&bytes[..]);
    assert!(matches!(
        DomainEvent::deserialize_payload("NoSuchEvent", 1, &mut de),
        Err(PayloadError::UnknownType(_))
    ));
    let mut de = rmp_serde::Deserializer::new(&bytes[..]);
    assert!(matches!(
        DomainEvent::deserialize_payload(event.event_type(), 99, &mut de),
        Err(PayloadError::UnsupportedVersion { .. })
    ));
    let mut de = rmp_serde::Deserializer::new(&bytes[..]);
    assert!(matches!(
        DomainEvent::deserialize_payload("CaseClosed", 1, &mut de),
        Err(PayloadError::Decode { .. })
    ));
}

#[test]
fn stream_ids_parse_back() {
    for event in samples() {
        let stream = event.stream();
        assert_eq!(StreamRef::parse(&stream.stream_id()), Some(stream));
    }
}

// ------------------------------------------------------------ arbitrary events

fn uuid_v7() -> impl Strategy<Value = uuid::Uuid> {
    (0u64..(1 << 48), any::<[u8; 10]>())
        .prop_map(|(ms, bytes)| uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid())
}

macro_rules! id_strategy {
    ($name:ident, $ty:ty) => {
        fn $name() -> impl Strategy<Value = $ty> {
            uuid_v7().prop_filter_map("v7", |u| <$ty>::new(u).ok())
        }
    };
}
id_strategy!(customer_id, CustomerId);
id_strategy!(case_id, CaseId);
id_strategy!(interaction_id, InteractionId);
id_strategy!(agent_id, AgentId);
id_strategy!(team_id, TeamId);
id_strategy!(survey_id, SurveyId);
id_strategy!(follow_up_id, FollowUpId);
id_strategy!(note_id, NoteId);
id_strategy!(recognition_id, RecognitionId);

fn ts() -> impl Strategy<Value = Timestamp> {
    any::<i64>().prop_map(Timestamp)
}

fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

fn channel() -> impl Strategy<Value = Channel> {
    proptest::sample::select(Channel::ALL.to_vec())
}

fn contact_point() -> impl Strategy<Value = ContactPoint> {
    (
        proptest::sample::select(vec![
            ContactKind::Email,
            ContactKind::Phone,
            ContactKind::Social,
            ContactKind::Messaging,
        ]),
        text(),
    )
        .prop_map(|(kind, value)| ContactPoint { kind, value })
}

fn priority() -> impl Strategy<Value = Priority> {
    proptest::sample::select(vec![
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ])
}

fn sla_target() -> impl Strategy<Value = SlaTarget> {
    proptest::sample::select(vec![SlaTarget::FirstResponse, SlaTarget::Resolution])
}

fn handler() -> impl Strategy<Value = Handler> {
    prop_oneof![
        agent_id().prop_map(Handler::Agent),
        text().prop_map(Handler::Bot)
    ]
}

fn score() -> impl Strategy<Value = Score> {
    prop_oneof![
        any::<u8>().prop_map(Score::Csat),
        any::<u8>().prop_map(Score::Nps),
        any::<u8>().prop_map(Score::Ces),
    ]
}

fn reward() -> impl Strategy<Value = Reward> {
    prop_oneof![
        Just(Reward::Kudos),
        any::<u32>().prop_map(Reward::Points),
        (any::<u64>(), text()).prop_map(|(amount_minor, currency)| Reward::Voucher {
            amount_minor,
            currency
        }),
    ]
}

fn basis() -> impl Strategy<Value = RecognitionBasis> {
    prop_oneof![
        case_id().prop_map(RecognitionBasis::Case),
        (
            proptest::sample::select(vec![
                MetricKind::Csat,
                MetricKind::Nps,
                MetricKind::Ces,
                MetricKind::FirstContactResolution,
                MetricKind::FirstResponseTime,
                MetricKind::ResolutionTime,
            ]),
            ts(),
            ts()
        )
            .prop_map(|(metric, from, to)| RecognitionBasis::Metric { metric, from, to }),
    ]
}

fn any_event() -> impl Strategy<Value = DomainEvent> {
    prop_oneof![
        (
            customer_id(),
            text(),
            text(),
            text(),
            text(),
            proptest::collection::vec(contact_point(), 0..3),
            ts()
        )
            .prop_map(
                |(
                    customer_id,
                    reference,
                    display_name,
                    language,
                    time_zone,
                    contact_points,
                    at,
                )| {
                    CustomerRegistered {
                        customer_id,
                        reference,
                        display_name,
                        language,
                        time_zone,
                        contact_points,
                        at,
                    }
                    .into()
                }
            ),
        (
            customer_id(),
            proptest::option::of(text()),
            proptest::option::of(text()),
            ts()
        )
            .prop_map(|(customer_id, display_name, time_zone, at)| {
                CustomerProfileUpdated {
                    customer_id,
                    display_name,
                    time_zone,
                    at,
                }
                .into()
            }),
        (customer_id(), contact_point(), ts()).prop_map(|(customer_id, contact_point, at)| {
            ContactPointAdded {
                customer_id,
                contact_point,
                at,
            }
            .into()
        }),
        (customer_id(), contact_point(), ts()).prop_map(|(customer_id, contact_point, at)| {
            ContactPointRemoved {
                customer_id,
                contact_point,
                at,
            }
            .into()
        }),
        (
            customer_id(),
            proptest::option::of(text()),
            proptest::option::of(channel()),
            proptest::option::of(any::<bool>()),
            ts()
        )
            .prop_map(
                |(customer_id, language, preferred_channel, consent_to_contact, at)| {
                    CustomerPreferencesChanged {
                        customer_id,
                        language,
                        preferred_channel,
                        consent_to_contact,
                        at,
                    }
                    .into()
                }
            ),
        (customer_id(), customer_id(), ts()).prop_map(|(customer_id, into, at)| CustomerMerged {
            customer_id,
            into,
            at
        }
        .into()),
        (customer_id(), text(), ts()).prop_map(|(customer_id, request_reference, at)| {
            CustomerForgotten {
                customer_id,
                request_reference,
                at,
            }
            .into()
        }),
        (
            (
                interaction_id(),
                customer_id(),
                channel(),
                any::<bool>(),
                handler(),
                text()
            ),
            (
                text(),
                any::<u32>(),
                proptest::option::of(case_id()),
                proptest::option::of(text()),
                ts()
            ),
        )
            .prop_map(
                |(
                    (interaction_id, customer_id, channel, inbound, handled_by, language),
                    (summary, duration_seconds, case_id, recording_ref, at),
                )| {
                    InteractionRecorded {
                        interaction_id,
                        customer_id,
                        channel,
                        direction: if inbound {
                            Direction::Inbound
                        } else {
                            Direction::Outbound
                        },
                        handled_by,
                        language,
                        summary,
                        duration_seconds,
                        case_id,
                        recording_ref,
                        at,
                    }
                    .into()
                }
            ),
        (
            note_id(),
            prop_oneof![
                case_id().prop_map(NoteTarget::Case),
                interaction_id().prop_map(NoteTarget::Interaction)
            ],
            customer_id(),
            proptest::option::of(agent_id()),
            text(),
            ts()
        )
            .prop_map(
                |(note_id, target, customer_id, author, text, at)| NoteAdded {
                    note_id,
                    target,
                    customer_id,
                    author,
                    text,
                    at
                }
                .into()
            ),
        (
            (
                case_id(),
                customer_id(),
                text(),
                text(),
                priority(),
                channel()
            ),
            (any::<u32>(), any::<u32>(), any::<u8>(), ts()),
        )
            .prop_map(
                |(
                    (case_id, customer_id, subject, category, priority, channel),
                    (first, resolution, top_level, at),
                )| {
                    CaseOpened {
                        case_id,
                        customer_id,
                        subject,
                        category,
                        priority,
                        channel,
                        sla: SlaPolicy {
                            first_response_minutes: first,
                            resolution_minutes: resolution,
                        },
                        top_level,
                        at,
                    }
                    .into()
                }
            ),
        (
            case_id(),
            proptest::option::of(agent_id()),
            proptest::option::of(team_id()),
            ts()
        )
            .prop_map(|(case_id, agent, team, at)| CaseAssigned {
                case_id,
                agent,
                team,
                at
            }
            .into()),
        (case_id(), proptest::option::of(agent_id()), channel(), ts()).prop_map(
            |(case_id, agent, channel, at)| FirstResponseGiven {
                case_id,
                agent,
                channel,
                at
            }
            .into()
        ),
        (
            case_id(),
            any::<u8>(),
            any::<u8>(),
            text(),
            proptest::option::of(team_id()),
            ts()
        )
            .prop_map(
                |(case_id, from_level, to_level, reason, team, at)| CaseEscalated {
                    case_id,
                    from_level,
                    to_level,
                    reason,
                    team,
                    at
                }
                .into()
            ),
        (
            case_id(),
            any::<u8>(),
            any::<u8>(),
            text(),
            proptest::option::of(team_id()),
            ts()
        )
            .prop_map(|(case_id, from_level, to_level, reason, team, at)| {
                CaseDeescalated {
                    case_id,
                    from_level,
                    to_level,
                    reason,
                    team,
                    at,
                }
                .into()
            }),
        (case_id(), sla_target(), ts(), any::<i64>(), ts()).prop_map(
            |(case_id, target, due_at, overdue_ms, at)| SlaBreached {
                case_id,
                target,
                due_at,
                overdue_ms,
                at
            }
            .into()
        ),
        (
            case_id(),
            text(),
            text(),
            any::<bool>(),
            proptest::option::of(agent_id()),
            ts()
        )
            .prop_map(
                |(case_id, resolution, root_cause, first_contact_resolution, agent, at)| {
                    CaseResolved {
                        case_id,
                        resolution,
                        root_cause,
                        first_contact_resolution,
                        agent,
                        at,
                    }
                    .into()
                }
            ),
        (case_id(), text(), ts()).prop_map(|(case_id, reason, at)| CaseReopened {
            case_id,
            reason,
            at
        }
        .into()),
        (case_id(), ts()).prop_map(|(case_id, at)| CaseClosed { case_id, at }.into()),
        (
            survey_id(),
            customer_id(),
            prop_oneof![
                case_id().prop_map(FeedbackSubject::Case),
                interaction_id().prop_map(FeedbackSubject::Interaction)
            ],
            score(),
            proptest::option::of(text()),
            ts()
        )
            .prop_map(|(survey_id, customer_id, subject, score, comment, at)| {
                SurveyAnswered {
                    survey_id,
                    customer_id,
                    subject,
                    score,
                    comment,
                    at,
                }
                .into()
            }),
        (
            (
                follow_up_id(),
                customer_id(),
                proptest::sample::select(vec![
                    FollowUpReason::DetractorFollowUp,
                    FollowUpReason::CheckAfterFix,
                    FollowUpReason::ProactiveOutreach,
                    FollowUpReason::Other
                ])
            ),
            proptest::option::of(prop_oneof![
                case_id().prop_map(FollowUpRelation::Case),
                survey_id().prop_map(FollowUpRelation::Survey),
                interaction_id().prop_map(FollowUpRelation::Interaction)
            ]),
            (
                ts(),
                proptest::option::of(agent_id()),
                proptest::option::of(team_id()),
                proptest::option::of(text()),
                ts()
            ),
        )
            .prop_map(
                |(
                    (follow_up_id, customer_id, reason),
                    related,
                    (due_at, agent, team, note, at),
                )| {
                    FollowUpScheduled {
                        follow_up_id,
                        customer_id,
                        reason,
                        related,
                        due_at,
                        agent,
                        team,
                        note,
                        at,
                    }
                    .into()
                }
            ),
        (
            follow_up_id(),
            text(),
            proptest::option::of(agent_id()),
            ts()
        )
            .prop_map(|(follow_up_id, outcome, agent, at)| FollowUpCompleted {
                follow_up_id,
                outcome,
                agent,
                at
            }
            .into()),
        (follow_up_id(), text(), ts()).prop_map(|(follow_up_id, reason, at)| FollowUpCancelled {
            follow_up_id,
            reason,
            at
        }
        .into()),
        (
            agent_id(),
            text(),
            proptest::collection::vec(team_id(), 0..4),
            ts()
        )
            .prop_map(|(agent_id, display_name, teams, at)| AgentRegistered {
                agent_id,
                display_name,
                teams,
                at
            }
            .into()),
        (
            recognition_id(),
            agent_id(),
            agent_id(),
            text(),
            reward(),
            basis(),
            ts()
        )
            .prop_map(
                |(recognition_id, agent_id, by, reason, reward, basis, at)| {
                    AgentRecognised {
                        recognition_id,
                        agent_id,
                        by,
                        reason,
                        reward,
                        basis,
                        at,
                    }
                    .into()
                }
            ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_events_round_trip(event in any_event()) {
        let (event_type, version) = (event.event_type(), event.schema_version());
        prop_assert_eq!(&from_msgpack(event_type, version, &to_msgpack(&event)), &event);
        prop_assert_eq!(&from_json(event_type, version, &to_json(&event)), &event);
        prop_assert_eq!(StreamRef::parse(&event.stream().stream_id()), Some(event.stream()));
    }
}

#[test]
fn the_generator_reaches_every_event_type() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = any_event();
    let mut seen = BTreeSet::new();
    for _ in 0..2000 {
        let tree = strategy.new_tree(&mut runner).expect("a value");
        seen.insert(tree.current().event_type());
    }
    let listed: BTreeSet<&str> = EVENT_TYPES.iter().copied().collect();
    assert_eq!(seen, listed);
}
