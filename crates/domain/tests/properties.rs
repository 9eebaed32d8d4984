//! Property tests over random command sequences. For every step: `decide` agrees with an
//! independent model of the rules, accepted events belong to the aggregate's stream, the
//! invariants hold on the incrementally evolved state, and at the end `fold(all events)`
//! equals that state.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sijil_domain::case::{self, CaseStatus};
use sijil_domain::customer;
use sijil_domain::events::*;
use sijil_domain::follow_up::{self, FollowUpStatus};
use sijil_domain::*;

fn uuid7(n: u64) -> uuid::Uuid {
    let mut random = [0u8; 10];
    random[2..].copy_from_slice(&n.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(1_700_000_000_000, &random).into_uuid()
}

fn t(minutes: i64) -> Timestamp {
    Timestamp(1_700_000_000_000 + minutes * 60_000)
}

fn customer_status() -> impl Strategy<Value = CustomerStatus> {
    prop_oneof![
        8 => Just(CustomerStatus::Active),
        1 => Just(CustomerStatus::Forgotten),
        1 => Just(CustomerStatus::Unknown),
        1 => Just(CustomerStatus::MergedInto(CustomerId::new(uuid7(99)).expect("v7"))),
    ]
}

fn status_code(status: CustomerStatus) -> Option<&'static str> {
    match status {
        CustomerStatus::Active => None,
        CustomerStatus::Forgotten => Some("CUSTOMER_FORGOTTEN"),
        CustomerStatus::MergedInto(_) => Some("CUSTOMER_MERGED"),
        CustomerStatus::Unknown => Some("NOT_FOUND"),
    }
}

/// What the model expects: accepted (with how many events) or refused with a code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Accept(usize),
    Refuse(&'static str),
}

fn outcome(result: &Result<Vec<DomainEvent>, DomainError>) -> Expect {
    match result {
        Ok(events) => Expect::Accept(events.len()),
        Err(error) => Expect::Refuse(error.code()),
    }
}

// ================================================================ case

#[derive(Clone, Debug)]
enum CaseOp {
    Open {
        top_level: u8,
        customer: CustomerStatus,
    },
    Assign {
        agent: bool,
        team: bool,
    },
    Respond,
    Escalate {
        blank_reason: bool,
    },
    Deescalate,
    Breach(SlaTarget),
    Resolve {
        fcr: bool,
    },
    Reopen,
    Close,
    Note {
        id: u64,
        customer: CustomerStatus,
    },
}

fn case_op() -> impl Strategy<Value = CaseOp> {
    prop_oneof![
        1 => (0u8..5, customer_status()).prop_map(|(top_level, customer)| CaseOp::Open { top_level, customer }),
        2 => (any::<bool>(), any::<bool>()).prop_map(|(agent, team)| CaseOp::Assign { agent, team }),
        2 => Just(CaseOp::Respond),
        3 => prop_oneof![9 => Just(false), 1 => Just(true)].prop_map(|blank_reason| CaseOp::Escalate { blank_reason }),
        2 => Just(CaseOp::Deescalate),
        3 => prop_oneof![Just(SlaTarget::FirstResponse), Just(SlaTarget::Resolution)].prop_map(CaseOp::Breach),
        3 => any::<bool>().prop_map(|fcr| CaseOp::Resolve { fcr }),
        2 => Just(CaseOp::Reopen),
        2 => Just(CaseOp::Close),
        2 => (0u64..4, customer_status()).prop_map(|(id, customer)| CaseOp::Note { id, customer }),
    ]
}

/// A case script: usually opened first, then random operations each after a random delay.
fn case_script() -> impl Strategy<Value = Vec<(CaseOp, i64)>> {
    (
        proptest::option::weighted(
            0.9,
            (1u8..5).prop_map(|top_level| CaseOp::Open {
                top_level,
                customer: CustomerStatus::Active,
            }),
        ),
        proptest::collection::vec((case_op(), 0i64..90), 0..40),
    )
        .prop_map(|(open, rest)| open.map(|op| (op, 0)).into_iter().chain(rest).collect())
}

const SLA: SlaPolicy = SlaPolicy {
    first_response_minutes: 30,
    resolution_minutes: 240,
};

fn the_case() -> CaseId {
    CaseId::new(uuid7(1)).expect("v7")
}

fn case_command(op: &CaseOp, at: Timestamp) -> CaseCommand {
    let agent = AgentId::new(uuid7(2)).expect("v7");
    let team = TeamId::new(uuid7(3)).expect("v7");
    match op {
        CaseOp::Open {
            top_level,
            customer,
        } => CaseCommand::Open {
            case_id: the_case(),
            customer_id: CustomerId::new(uuid7(4)).expect("v7"),
            customer: *customer,
            subject: "Router keeps rebooting".into(),
            category: "hardware".into(),
            priority: Priority::High,
            channel: Channel::Phone,
            sla: SLA,
            top_level: *top_level,
            at,
        },
        CaseOp::Assign { agent: a, team: tm } => CaseCommand::Assign {
            agent: a.then_some(agent),
            team: tm.then_some(team),
            at,
        },
        CaseOp::Respond => CaseCommand::GiveFirstResponse {
            agent: Some(agent),
            channel: Channel::Email,
            at,
        },
        CaseOp::Escalate { blank_reason } => CaseCommand::Escalate {
            reason: if *blank_reason {
                " ".into()
            } else {
                "needs a specialist".into()
            },
            team: Some(team),
            at,
        },
        CaseOp::Deescalate => CaseCommand::Deescalate {
            reason: "specialist done".into(),
            team: None,
            at,
        },
        CaseOp::Breach(target) => CaseCommand::BreachSla {
            target: *target,
            now: at,
        },
        CaseOp::Resolve { fcr } => CaseCommand::Resolve {
            resolution: "Firmware updated".into(),
            root_cause: "firmware".into(),
            first_contact_resolution: *fcr,
            agent: Some(agent),
            at,
        },
        CaseOp::Reopen => CaseCommand::Reopen {
            reason: "rebooting again".into(),
            at,
        },
        CaseOp::Close => CaseCommand::Close { at },
        CaseOp::Note { id, customer } => CaseCommand::AddNote {
            note_id: NoteId::new(uuid7(100 + id)).expect("v7"),
            customer: *customer,
            author: None,
            text: "checked logs".into(),
            at,
        },
    }
}

/// An independent model of a case, kept from the operations the model accepts.
#[derive(Clone, Debug, Default)]
struct CaseModel {
    opened_at: Option<Timestamp>,
    top_level: u8,
    status: Option<CaseStatus>,
    level: u8,
    responded_at: Option<Timestamp>,
    first_resolved_at: Option<Timestamp>,
    breached: BTreeSet<SlaTarget>,
    notes: BTreeSet<u64>,
    reopens: u32,
}

impl CaseModel {
    fn expect(&self, op: &CaseOp, now: Timestamp) -> Expect {
        let Some(status) = self.status else {
            return match op {
                CaseOp::Open {
                    top_level,
                    customer,
                } => match status_code(*customer) {
                    Some(code) => Expect::Refuse(code),
                    None if *top_level == 0 => Expect::Refuse("INVALID_LEVEL"),
                    None => Expect::Accept(1),
                },
                _ => Expect::Refuse("NOT_FOUND"),
            };
        };
        let working = |then: Expect| match status {
            CaseStatus::Open => then,
            CaseStatus::Resolved => Expect::Refuse("ALREADY_RESOLVED"),
            CaseStatus::Closed => Expect::Refuse("CASE_CLOSED"),
        };
        let resolved = match status {
            CaseStatus::Open => Expect::Refuse("NOT_RESOLVED"),
            CaseStatus::Resolved => Expect::Accept(1),
            CaseStatus::Closed => Expect::Refuse("CASE_CLOSED"),
        };
        match op {
            CaseOp::Open { .. } => Expect::Refuse("ALREADY_EXISTS"),
            CaseOp::Assign { agent, team } => working(if *agent || *team {
                Expect::Accept(1)
            } else {
                Expect::Refuse("INVALID_ASSIGNMENT")
            }),
            CaseOp::Respond => working(if self.responded_at.is_some() {
                Expect::Refuse("ALREADY_RESPONDED")
            } else {
                Expect::Accept(1)
            }),
            CaseOp::Escalate { blank_reason } => working(if self.level >= self.top_level {
                Expect::Refuse("TOP_LEVEL_REACHED")
            } else if *blank_reason {
                Expect::Refuse("INVALID_TEXT")
            } else {
                Expect::Accept(1)
            }),
            CaseOp::Deescalate => working(if self.level <= 1 {
                Expect::Refuse("BOTTOM_LEVEL_REACHED")
            } else {
                Expect::Accept(1)
            }),
            CaseOp::Breach(target) => {
                let opened_at = self.opened_at.unwrap_or_default();
                if status == CaseStatus::Closed {
                    return Expect::Refuse("CASE_CLOSED");
                }
                if self.breached.contains(target) {
                    return Expect::Refuse("ALREADY_BREACHED");
                }
                let due = match target {
                    SlaTarget::FirstResponse => {
                        let due = opened_at.plus_minutes(SLA.first_response_minutes);
                        let met = [self.responded_at, self.first_resolved_at]
                            .into_iter()
                            .flatten()
                            .min();
                        if met.is_some_and(|m| m <= due) {
                            return Expect::Refuse("TARGET_MET");
                        }
                        due
                    }
                    SlaTarget::Resolution => {
                        if status == CaseStatus::Resolved {
                            return Expect::Refuse("ALREADY_RESOLVED");
                        }
                        opened_at.plus_minutes(SLA.resolution_minutes)
                    }
                };
                if now <= due {
                    Expect::Refuse("NOT_DUE")
                } else {
                    Expect::Accept(1)
                }
            }
            CaseOp::Resolve { .. } => working(Expect::Accept(1)),
            CaseOp::Reopen | CaseOp::Close => resolved,
            CaseOp::Note { id, customer } => {
                if self.notes.contains(id) {
                    Expect::Refuse("ALREADY_EXISTS")
                } else if let Some(code) = status_code(*customer) {
                    Expect::Refuse(code)
                } else {
                    Expect::Accept(1)
                }
            }
        }
    }

    fn accept(&mut self, op: &CaseOp, now: Timestamp) {
        match op {
            CaseOp::Open { top_level, .. } => {
                self.opened_at = Some(now);
                self.top_level = *top_level;
                self.status = Some(CaseStatus::Open);
                self.level = 1;
            }
            CaseOp::Assign { .. } => {}
            CaseOp::Respond => self.responded_at = Some(now),
            CaseOp::Escalate { .. } => self.level += 1,
            CaseOp::Deescalate => self.level -= 1,
            CaseOp::Breach(target) => {
                self.breached.insert(*target);
            }
            CaseOp::Resolve { .. } => {
                self.status = Some(CaseStatus::Resolved);
                self.first_resolved_at.get_or_insert(now);
            }
            CaseOp::Reopen => {
                self.status = Some(CaseStatus::Open);
                self.reopens += 1;
            }
            CaseOp::Close => self.status = Some(CaseStatus::Closed),
            CaseOp::Note { id, .. } => {
                self.notes.insert(*id);
            }
        }
    }
}

fn check_case_invariants(
    state: &case::State,
    model: &CaseModel,
    log: &[DomainEvent],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(state.status(), model.status);
    let Some(case) = state.case() else {
        prop_assert!(log.is_empty());
        return Ok(());
    };
    prop_assert!(
        1 <= case.level && case.level <= case.top_level,
        "level {} of {}",
        case.level,
        case.top_level
    );
    prop_assert_eq!(case.level, model.level);
    prop_assert_eq!(&case.breached, &model.breached);
    prop_assert_eq!(case.first_response_at, model.responded_at);
    // Resolved once until reopened: resolutions = reopens, plus one while resolved or closed.
    let settled = u32::from(case.status != CaseStatus::Open);
    prop_assert_eq!(case.resolutions, case.reopens + settled);
    prop_assert_eq!(case.reopens, model.reopens);
    prop_assert_eq!(case.resolved_at.is_some(), case.status != CaseStatus::Open);

    let count = |f: fn(&DomainEvent) -> bool| log.iter().filter(|e| f(e)).count();
    prop_assert_eq!(count(|e| matches!(e, DomainEvent::CaseOpened(_))), 1);
    prop_assert!(count(|e| matches!(e, DomainEvent::FirstResponseGiven(_))) <= 1);
    prop_assert!(count(|e| matches!(e, DomainEvent::CaseClosed(_))) <= 1);
    for target in [SlaTarget::FirstResponse, SlaTarget::Resolution] {
        let breaches: Vec<&SlaBreached> = log
            .iter()
            .filter_map(|e| match e {
                DomainEvent::SlaBreached(b) if b.target == target => Some(b),
                _ => None,
            })
            .collect();
        prop_assert!(breaches.len() <= 1);
        for b in breaches {
            prop_assert!(b.at > b.due_at && b.overdue_ms > 0);
            prop_assert_eq!(b.due_at, case.due(target));
        }
    }
    // Nothing but notes after closing.
    if let Some(closed) = log
        .iter()
        .position(|e| matches!(e, DomainEvent::CaseClosed(_)))
    {
        prop_assert!(log[closed + 1..]
            .iter()
            .all(|e| matches!(e, DomainEvent::NoteAdded(_))));
    }
    // A resolution after a reopen is never first-contact.
    let mut reopened = false;
    for event in log {
        match event {
            DomainEvent::CaseReopened(_) => reopened = true,
            DomainEvent::CaseResolved(r) => prop_assert!(!(reopened && r.first_contact_resolution)),
            DomainEvent::CaseEscalated(e) => {
                prop_assert_eq!(e.to_level, e.from_level + 1);
                prop_assert!(e.to_level <= case.top_level);
            }
            DomainEvent::CaseDeescalated(e) => {
                prop_assert_eq!(e.to_level + 1, e.from_level);
                prop_assert!(e.to_level >= 1);
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn case_sequences_keep_the_rules(script in case_script()) {
        let mut state = case::State::default();
        let mut model = CaseModel::default();
        let mut log: Vec<DomainEvent> = Vec::new();
        let mut minute = 0;
        for (op, delay) in &script {
            minute += delay;
            let now = t(minute);
            let command = case_command(op, now);
            let result = case::decide(&state, command.clone());
            prop_assert_eq!(&case::decide(&state, command), &result, "decide is pure");
            let expected = model.expect(op, now);
            prop_assert_eq!(outcome(&result), expected, "{:?} on {:?}", op, model);
            if model.status == Some(CaseStatus::Closed) && !matches!(op, CaseOp::Note { .. }) {
                prop_assert!(result.is_err(), "a closed case accepts only notes");
            }
            if let Ok(events) = result {
                for event in &events {
                    prop_assert_eq!(event.stream(), StreamRef::Case(the_case()));
                    prop_assert_eq!(event.occurred_at(), now);
                    state = case::evolve(state, event);
                }
                log.extend(events);
                model.accept(op, now);
            }
            check_case_invariants(&state, &model, &log)?;
        }
        prop_assert_eq!(case::fold(&log), state);
    }
}

// ================================================================ customer

/// Raw contact points, with the normalised value the domain should record (`None`: invalid).
const POINTS: &[(ContactKind, &str, Option<&str>)] = &[
    (
        ContactKind::Email,
        "amina@example.com",
        Some("amina@example.com"),
    ),
    (
        ContactKind::Email,
        " AMINA@Example.com",
        Some("amina@example.com"),
    ),
    (ContactKind::Phone, "+966501234567", Some("+966501234567")),
    (
        ContactKind::Phone,
        "00966 50 123 4567",
        Some("+966501234567"),
    ),
    (ContactKind::Social, "X:@amina", Some("x:@amina")),
    (
        ContactKind::Messaging,
        "whatsapp:+966501234567",
        Some("whatsapp:+966501234567"),
    ),
    (ContactKind::Email, "amina@", None),
    (ContactKind::Phone, "0501234567", None),
];

const NAMES: &[&str] = &["Amina", " Amina ", "Amina Al-Harbi", ""];
const ZONES: &[(&str, Option<&str>)] = &[
    ("Asia/Riyadh", Some("Asia/Riyadh")),
    ("europe/paris", Some("Europe/Paris")),
    ("Mars/Olympus", None),
];
const LANGUAGES: &[(&str, Option<&str>)] = &[
    ("ar", Some("ar")),
    ("EN-gb", Some("en-GB")),
    ("en_GB", None),
];

#[derive(Clone, Debug)]
enum CustomerOp {
    Register,
    Rename(usize),
    MoveZone(usize),
    Add(usize),
    Remove(usize),
    Prefer {
        language: Option<usize>,
        channel: Option<Channel>,
        consent: Option<bool>,
    },
    Merge {
        into_self: bool,
        target: CustomerStatus,
    },
    Forget,
}

fn customer_op() -> impl Strategy<Value = CustomerOp> {
    prop_oneof![
        1 => Just(CustomerOp::Register),
        2 => (0..NAMES.len()).prop_map(CustomerOp::Rename),
        2 => (0..ZONES.len()).prop_map(CustomerOp::MoveZone),
        4 => (0..POINTS.len()).prop_map(CustomerOp::Add),
        3 => (0..POINTS.len()).prop_map(CustomerOp::Remove),
        2 => (
            proptest::option::of(0..LANGUAGES.len()),
            proptest::option::of(proptest::sample::select(Channel::ALL.to_vec())),
            proptest::option::of(any::<bool>()),
        )
            .prop_map(|(language, channel, consent)| CustomerOp::Prefer { language, channel, consent }),
        1 => (prop_oneof![4 => Just(false), 1 => Just(true)], customer_status())
            .prop_map(|(into_self, target)| CustomerOp::Merge { into_self, target }),
        1 => Just(CustomerOp::Forget),
    ]
}

fn customer_script() -> impl Strategy<Value = Vec<CustomerOp>> {
    (
        proptest::bool::weighted(0.9),
        proptest::collection::vec(customer_op(), 0..40),
    )
        .prop_map(|(register, rest)| {
            let mut script = Vec::with_capacity(rest.len() + 1);
            if register {
                script.push(CustomerOp::Register);
            }
            script.extend(rest);
            script
        })
}

fn the_customer() -> CustomerId {
    CustomerId::new(uuid7(10)).expect("v7")
}

fn point(index: usize) -> ContactPoint {
    let (kind, raw, _) = POINTS[index];
    ContactPoint {
        kind,
        value: raw.to_owned(),
    }
}

fn customer_command(op: &CustomerOp, at: Timestamp) -> CustomerCommand {
    match op {
        CustomerOp::Register => CustomerCommand::Register {
            customer_id: the_customer(),
            reference: "CUST-7".into(),
            display_name: "Amina".into(),
            language: "ar".into(),
            time_zone: "Asia/Riyadh".into(),
            contact_points: vec![point(0)],
            at,
        },
        CustomerOp::Rename(i) => CustomerCommand::UpdateProfile {
            display_name: Some(NAMES[*i].into()),
            time_zone: None,
            at,
        },
        CustomerOp::MoveZone(i) => CustomerCommand::UpdateProfile {
            display_name: None,
            time_zone: Some(ZONES[*i].0.into()),
            at,
        },
        CustomerOp::Add(i) => CustomerCommand::AddContactPoint {
            contact_point: point(*i),
            at,
        },
        CustomerOp::Remove(i) => CustomerCommand::RemoveContactPoint {
            contact_point: point(*i),
            at,
        },
        CustomerOp::Prefer {
            language,
            channel,
            consent,
        } => CustomerCommand::ChangePreferences {
            language: language.map(|i| LANGUAGES[i].0.to_owned()),
            preferred_channel: *channel,
            consent_to_contact: *consent,
            at,
        },
        CustomerOp::Merge { into_self, target } => CustomerCommand::Merge {
            into: if *into_self {
                the_customer()
            } else {
                CustomerId::new(uuid7(11)).expect("v7")
            },
            target: *target,
            at,
        },
        CustomerOp::Forget => CustomerCommand::Forget {
            request_reference: "DSR-7".into(),
            at,
        },
    }
}

#[derive(Clone, Debug, Default)]
struct CustomerModel {
    registered: bool,
    merged: bool,
    forgotten: bool,
    name: String,
    zone: String,
    language: String,
    channel: Option<Channel>,
    consent: Option<bool>,
    points: BTreeSet<(ContactKind, String)>,
}

impl CustomerModel {
    fn expect(&self, op: &CustomerOp) -> Expect {
        if !self.registered {
            return match op {
                CustomerOp::Register => Expect::Accept(1),
                _ => Expect::Refuse("NOT_FOUND"),
            };
        }
        match op {
            CustomerOp::Register => return Expect::Refuse("ALREADY_EXISTS"),
            CustomerOp::Forget => return Expect::Accept(usize::from(!self.forgotten)),
            _ => {}
        }
        if self.forgotten {
            return Expect::Refuse("CUSTOMER_FORGOTTEN");
        }
        if self.merged {
            return Expect::Refuse("CUSTOMER_MERGED");
        }
        match op {
            CustomerOp::Rename(i) => match NAMES[*i].trim() {
                "" => Expect::Refuse("INVALID_TEXT"),
                name => Expect::Accept(usize::from(name != self.name)),
            },
            CustomerOp::MoveZone(i) => match ZONES[*i].1 {
                None => Expect::Refuse("INVALID_TIME_ZONE"),
                Some(zone) => Expect::Accept(usize::from(zone != self.zone)),
            },
            CustomerOp::Add(i) => match POINTS[*i] {
                (_, _, None) => Expect::Refuse("INVALID_CONTACT_POINT"),
                (kind, _, Some(v)) if self.points.contains(&(kind, v.to_owned())) => {
                    Expect::Refuse("DUPLICATE_CONTACT_POINT")
                }
                _ => Expect::Accept(1),
            },
            CustomerOp::Remove(i) => match POINTS[*i] {
                (_, _, None) => Expect::Refuse("INVALID_CONTACT_POINT"),
                (kind, _, Some(v)) if self.points.contains(&(kind, v.to_owned())) => {
                    Expect::Accept(1)
                }
                _ => Expect::Refuse("NOT_FOUND"),
            },
            CustomerOp::Prefer {
                language,
                channel,
                consent,
            } => {
                let language = match language.map(|i| LANGUAGES[i].1) {
                    Some(None) => return Expect::Refuse("INVALID_LANGUAGE"),
                    Some(Some(tag)) => tag != self.language,
                    None => false,
                };
                let channel = channel.is_some() && *channel != self.channel;
                let consent = consent.is_some() && *consent != self.consent;
                Expect::Accept(usize::from(language || channel || consent))
            }
            CustomerOp::Merge {
                into_self: true, ..
            } => Expect::Refuse("MERGE_INTO_SELF"),
            CustomerOp::Merge { target, .. } => match status_code(*target) {
                Some(code) => Expect::Refuse(code),
                None => Expect::Accept(1),
            },
            CustomerOp::Register | CustomerOp::Forget => Expect::Refuse("unreachable"),
        }
    }

    fn accept(&mut self, op: &CustomerOp) {
        match op {
            CustomerOp::Register => {
                self.registered = true;
                self.name = "Amina".into();
                self.zone = "Asia/Riyadh".into();
                self.language = "ar".into();
                self.points
                    .insert((ContactKind::Email, "amina@example.com".into()));
            }
            CustomerOp::Rename(i) => self.name = NAMES[*i].trim().into(),
            CustomerOp::MoveZone(i) => self.zone = ZONES[*i].1.unwrap_or_default().into(),
            CustomerOp::Add(i) => {
                let (kind, _, v) = POINTS[*i];
                self.points.insert((kind, v.unwrap_or_default().into()));
            }
            CustomerOp::Remove(i) => {
                let (kind, _, v) = POINTS[*i];
                self.points.remove(&(kind, v.unwrap_or_default().into()));
            }
            CustomerOp::Prefer {
                language,
                channel,
                consent,
            } => {
                if let Some(Some(tag)) = language.map(|i| LANGUAGES[i].1) {
                    self.language = tag.into();
                }
                if channel.is_some() {
                    self.channel = *channel;
                }
                if consent.is_some() {
                    self.consent = *consent;
                }
            }
            CustomerOp::Merge { .. } => self.merged = true,
            CustomerOp::Forget => {
                self.forgotten = true;
                self.name.clear();
                self.points.clear();
            }
        }
    }

    fn status(&self) -> CustomerStatus {
        if !self.registered {
            CustomerStatus::Unknown
        } else if self.forgotten {
            CustomerStatus::Forgotten
        } else if self.merged {
            CustomerStatus::MergedInto(CustomerId::new(uuid7(11)).expect("v7"))
        } else {
            CustomerStatus::Active
        }
    }
}

fn check_customer_invariants(
    state: &customer::State,
    model: &CustomerModel,
    log: &[DomainEvent],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(state.status(), model.status());
    let Some(c) = state.customer() else {
        prop_assert!(log.is_empty());
        return Ok(());
    };
    let points: BTreeSet<(ContactKind, String)> = c
        .contact_points
        .iter()
        .map(|p| (p.kind, p.value.clone()))
        .collect();
    prop_assert_eq!(
        points.len(),
        c.contact_points.len(),
        "contact points are unique"
    );
    prop_assert_eq!(&points, &model.points);
    prop_assert_eq!(&c.display_name, &model.name);
    prop_assert_eq!(&c.time_zone, &model.zone);
    prop_assert_eq!(&c.language, &model.language);
    prop_assert_eq!(c.preferred_channel, model.channel);
    prop_assert_eq!(c.consent_to_contact, model.consent);
    let count = |f: fn(&DomainEvent) -> bool| log.iter().filter(|e| f(e)).count();
    prop_assert_eq!(
        count(|e| matches!(e, DomainEvent::CustomerRegistered(_))),
        1
    );
    prop_assert!(count(|e| matches!(e, DomainEvent::CustomerForgotten(_))) <= 1);
    prop_assert!(count(|e| matches!(e, DomainEvent::CustomerMerged(_))) <= 1);
    // After a forget, nothing more; after a merge, nothing but a forget.
    if let Some(i) = log
        .iter()
        .position(|e| matches!(e, DomainEvent::CustomerForgotten(_)))
    {
        prop_assert_eq!(i, log.len() - 1);
    }
    if let Some(i) = log
        .iter()
        .position(|e| matches!(e, DomainEvent::CustomerMerged(_)))
    {
        prop_assert!(log[i + 1..]
            .iter()
            .all(|e| matches!(e, DomainEvent::CustomerForgotten(_))));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn customer_sequences_keep_the_rules(script in customer_script()) {
        let mut state = customer::State::default();
        let mut model = CustomerModel::default();
        let mut log: Vec<DomainEvent> = Vec::new();
        for (minute, op) in (0i64..).zip(&script) {
            let now = t(minute);
            let result = customer::decide(&state, customer_command(op, now));
            let expected = model.expect(op);
            prop_assert_eq!(outcome(&result), expected, "{:?} on {:?}", op, model);
            if let Ok(events) = result {
                for event in &events {
                    prop_assert_eq!(event.stream(), StreamRef::Customer(the_customer()));
                    state = customer::evolve(state, event);
                }
                log.extend(events);
                model.accept(op);
            }
            check_customer_invariants(&state, &model, &log)?;
        }
        prop_assert_eq!(customer::fold(&log), state);
    }
}

// ================================================================ follow-up

#[derive(Clone, Copy, Debug)]
enum FollowUpOp {
    Schedule,
    Complete,
    Cancel,
}

proptest! {
    #[test]
    fn a_follow_up_ends_at_most_once(ops in proptest::collection::vec(
        prop_oneof![Just(FollowUpOp::Schedule), Just(FollowUpOp::Complete), Just(FollowUpOp::Cancel)],
        0..12,
    )) {
        let id = FollowUpId::new(uuid7(20)).expect("v7");
        let mut state = follow_up::State::default();
        let mut log: Vec<DomainEvent> = Vec::new();
        for (minute, op) in (0i64..).zip(&ops) {
            let at = t(minute);
            let command = match op {
                FollowUpOp::Schedule => FollowUpCommand::Schedule {
                    follow_up_id: id,
                    customer_id: CustomerId::new(uuid7(21)).expect("v7"),
                    customer: CustomerStatus::Active,
                    reason: FollowUpReason::CheckAfterFix,
                    related: None,
                    due_at: t(5),
                    agent: None,
                    team: None,
                    note: None,
                    at,
                },
                FollowUpOp::Complete => FollowUpCommand::Complete { outcome: "done".into(), agent: None, at },
                FollowUpOp::Cancel => FollowUpCommand::Cancel { reason: "not needed".into(), at },
            };
            let before = state.follow_up().map(|f| f.status);
            let expected = match (op, before) {
                (FollowUpOp::Schedule, None) => Expect::Accept(1),
                (FollowUpOp::Schedule, Some(_)) => Expect::Refuse("ALREADY_EXISTS"),
                (_, None) => Expect::Refuse("NOT_FOUND"),
                (_, Some(FollowUpStatus::Pending)) => Expect::Accept(1),
                (_, Some(_)) => Expect::Refuse("INVALID_TRANSITION"),
            };
            let result = follow_up::decide(&state, command);
            prop_assert_eq!(outcome(&result), expected);
            if let Ok(events) = result {
                for event in &events {
                    state = follow_up::evolve(state, event);
                }
                log.extend(events);
            }
            let ends = log
                .iter()
                .filter(|e| matches!(e, DomainEvent::FollowUpCompleted(_) | DomainEvent::FollowUpCancelled(_)))
                .count();
            prop_assert!(ends <= 1);
            prop_assert_eq!(ends == 1, state.follow_up().is_some_and(|f| f.status != FollowUpStatus::Pending));
        }
        prop_assert_eq!(follow_up::fold(&log), state);
    }
}
