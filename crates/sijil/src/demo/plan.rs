//! Plans the demo's simulated history: who the agents and customers are, and every command
//! their months of service amount to, each at its simulated time. Each customer's story is
//! drawn from its own forked generator, so stories do not depend on one another; the plan is
//! then sorted by time and run through the domain by [`super::exec`].
//!
//! A plan only names commands; whether they hold is for the domain's decide functions to say.
//! Stories are built so that they do (a case is resolved before it is reopened, surveys come
//! after the case they rate, nothing is recorded for a customer after they are merged away or
//! forgotten), and the executor treats any refusal as a bug of this planner.

use sijil_domain::{
    AgentId, CaseId, Channel, ContactKind, ContactPoint, CustomerId, Direction, DomainError,
    FollowUpId, InteractionId, MetricKind, NoteId, Priority, RecognitionId, SlaTarget, SurveyId,
    TeamId,
};

use super::rng::Rng;
use super::world::{self, LOCALES, TEAMS, TOPICS};

/// 2025-01-01T00:00:00Z, where the simulated history starts.
pub const HISTORY_START: i64 = 1_735_689_600_000;
/// Days of simulated history (to 2025-07-01).
pub const HISTORY_DAYS: i64 = 181;
/// Where the simulated history ends.
pub const HISTORY_END: i64 = HISTORY_START + HISTORY_DAYS * DAY;

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// Tags of forked generators.
const TAG_AGENT: u64 = 1;
const TAG_CUSTOMER: u64 = 2;
const TAG_WORLD: u64 = 3;

/// A customer's profile.
#[derive(Clone, Debug)]
pub struct Profile {
    pub id: CustomerId,
    pub reference: String,
    pub locale: usize,
    pub given: usize,
    pub family: usize,
    pub zone: &'static str,
    pub contacts: Vec<ContactPoint>,
}

/// An agent's profile.
#[derive(Clone, Debug)]
pub struct AgentProfile {
    pub id: AgentId,
    pub name: String,
    pub teams: Vec<usize>,
}

/// What an interaction's summary says.
#[derive(Clone, Copy, Debug)]
pub enum Summary {
    /// A contact that needs no case.
    Quick(u8),
    /// The contact that opened a case about a topic's subject (in the customer's language
    /// when the demo speaks it).
    Opening { topic: u8, subject: u8 },
    /// A later contact about an open case.
    CaseContact(u8),
    /// An IVR call or a bot session with nothing to say.
    Empty,
}

/// One command of the plan.
#[derive(Clone, Debug)]
pub enum Step {
    RegisterAgent {
        agent: u32,
    },
    RegisterCustomer {
        customer: u32,
    },
    ChangePreferences {
        customer: u32,
        channel: Channel,
        consent: bool,
    },
    AddContact {
        customer: u32,
        point: ContactPoint,
    },
    MoveTimeZone {
        customer: u32,
        zone: &'static str,
    },
    Interaction {
        id: InteractionId,
        customer: u32,
        channel: Channel,
        direction: Direction,
        agent: Option<u32>,
        case: Option<CaseId>,
        summary: Summary,
        duration: u32,
        /// Whether a note will be added later (the executor keeps its state).
        noted: bool,
    },
    InteractionNote {
        interaction: InteractionId,
        customer: u32,
        note: NoteId,
        author: u32,
        text: u8,
    },
    OpenCase {
        case: CaseId,
        customer: u32,
        topic: u8,
        subject: u8,
        priority: Priority,
        channel: Channel,
        agent: u32,
    },
    Assign {
        case: CaseId,
        agent: u32,
        team: u8,
    },
    FirstResponse {
        case: CaseId,
        agent: u32,
        channel: Channel,
    },
    Breach {
        case: CaseId,
        target: SlaTarget,
    },
    Escalate {
        case: CaseId,
        reason: u8,
        team: u8,
        agent: u32,
    },
    Deescalate {
        case: CaseId,
        reason: u8,
        team: u8,
        agent: u32,
    },
    CaseNote {
        case: CaseId,
        customer: u32,
        note: NoteId,
        author: u32,
        text: u8,
    },
    Resolve {
        case: CaseId,
        topic: u8,
        resolution: u8,
        root_cause: u8,
        fcr: bool,
        agent: u32,
    },
    Reopen {
        case: CaseId,
        reason: u8,
    },
    Close {
        case: CaseId,
        agent: u32,
    },
    Survey {
        id: SurveyId,
        customer: u32,
        subject: sijil_domain::FeedbackSubject,
        score: sijil_domain::Score,
        comment: Option<(u8, u8)>,
    },
    ScheduleFollowUp {
        id: FollowUpId,
        customer: u32,
        survey: SurveyId,
        due: i64,
        agent: u32,
    },
    CompleteFollowUp {
        id: FollowUpId,
        agent: u32,
        outcome: u8,
    },
    CancelFollowUp {
        id: FollowUpId,
        reason: u8,
    },
    Recognise {
        id: RecognitionId,
        agent: u32,
        by: u32,
        reason: u8,
        reward: u8,
        basis: Basis,
    },
    Merge {
        customer: u32,
        into: u32,
    },
    Forget {
        customer: u32,
    },
}

/// What a recognition is for.
#[derive(Clone, Copy, Debug)]
pub enum Basis {
    Case(CaseId),
    Metric {
        metric: MetricKind,
        from: i64,
        to: i64,
    },
}

/// A step at its simulated time; `order` breaks ties so the sort is total.
#[derive(Clone, Debug)]
pub struct Planned {
    pub at: i64,
    pub order: u64,
    pub step: Step,
}

/// The whole plan.
#[derive(Debug)]
pub struct Plan {
    pub workspace: uuid::Uuid,
    pub teams: Vec<TeamId>,
    pub agents: Vec<AgentProfile>,
    pub customers: Vec<Profile>,
    /// Sorted by time.
    pub steps: Vec<Planned>,
    /// The customer merged into another (index), if the demo is big enough.
    pub merged: Option<u32>,
    /// The forgotten customer (index), if the demo is big enough.
    pub forgotten: Option<u32>,
}

/// Agents by team, for picking who handles what.
struct Staff {
    by_team: Vec<Vec<u32>>,
    supervisors: Vec<u32>,
}

impl Staff {
    fn pick(&self, rng: &mut Rng, team: usize) -> u32 {
        let pool = &self.by_team[team];
        if pool.is_empty() {
            return *rng.pick(&self.by_team[0]);
        }
        *rng.pick(pool)
    }

    fn supervisor_other_than(&self, rng: &mut Rng, agent: u32) -> u32 {
        let first = *rng.pick(&self.supervisors);
        if first != agent {
            return first;
        }
        self.supervisors
            .iter()
            .copied()
            .find(|s| *s != agent)
            .unwrap_or(first)
    }
}

/// Collects one story's steps with increasing tie-breakers.
struct Story {
    base: u64,
    seq: u64,
    steps: Vec<Planned>,
}

impl Story {
    fn new(base: u64) -> Story {
        Story {
            base,
            seq: 0,
            steps: Vec::new(),
        }
    }

    fn push(&mut self, at: i64, step: Step) {
        self.seq += 1;
        self.steps.push(Planned {
            at,
            order: self.base + self.seq,
            step,
        });
    }
}

fn lowered(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Makes the plan for `customers` customers from `seed`.
pub fn plan(customers: u32, seed: u64) -> Result<Plan, DomainError> {
    let root = Rng::new(seed);
    let mut world_rng = root.fork(TAG_WORLD, 0);
    let workspace = world_rng.uuid_v7(HISTORY_START - 90 * DAY);
    let teams = TEAMS
        .iter()
        .map(|_| mint(&mut world_rng, HISTORY_START - 90 * DAY))
        .collect::<Result<Vec<TeamId>, _>>()?;
    let mut world = Story::new(0);

    let agent_count = (customers / 40).clamp(8, 400);
    let mut agents = Vec::with_capacity(agent_count as usize);
    let mut staff = Staff {
        by_team: vec![Vec::new(); TEAMS.len()],
        supervisors: Vec::new(),
    };
    for index in 0..agent_count {
        let mut rng = root.fork(TAG_AGENT, u64::from(index));
        let registered = HISTORY_START - 60 * DAY + i64::from(index) * 7 * MINUTE;
        let locale = &LOCALES[rng.weighted(&locale_weights())];
        let name = world::display_name(
            locale,
            rng.below(locale.given.len() as u64) as usize,
            rng.below(locale.family.len() as u64) as usize,
        );
        let team_list = match index {
            0..=2 => {
                staff.supervisors.push(index);
                vec![0, 4]
            }
            _ => {
                let team = rng.weighted(&[50, 15, 20, 10, 5]);
                if team == 0 {
                    vec![0]
                } else {
                    vec![team, 0]
                }
            }
        };
        for team in &team_list {
            staff.by_team[*team].push(index);
        }
        agents.push(AgentProfile {
            id: mint(&mut rng, registered)?,
            name,
            teams: team_list,
        });
        world.push(registered, Step::RegisterAgent { agent: index });
    }

    let mut profiles: Vec<Profile> = Vec::with_capacity(customers as usize + 1);
    let mut steps: Vec<Planned> = Vec::new();
    let merged = (customers >= 3).then_some(customers);
    let forgotten = (customers >= 3).then_some(1);
    for index in 0..customers {
        let mut rng = root.fork(TAG_CUSTOMER, u64::from(index));
        let registered = match index {
            0 => HISTORY_START + DAY + 9 * HOUR,
            1 => HISTORY_START + 3 * DAY + 14 * HOUR,
            _ if rng.chance(30) => HISTORY_START + rng.between(0, 7 * DAY),
            _ => HISTORY_START + rng.between(0, HISTORY_DAYS * DAY * 6 / 10),
        };
        let profile = make_profile(&mut rng, index, registered, None)?;
        let end = if Some(index) == forgotten {
            HISTORY_START + 120 * DAY
        } else {
            HISTORY_END
        };
        let mut story = Story::new(u64::from(index + 1) << 24);
        plan_customer(
            &mut story, &mut rng, index, &profile, registered, end, &staff,
        )?;
        if Some(index) == forgotten {
            story.push(end + HOUR, Step::Forget { customer: index });
        }
        steps.append(&mut story.steps);
        profiles.push(profile);
    }
    if let Some(duplicate) = merged {
        // Customer 0 called from a work address and was registered a second time.
        let mut rng = root.fork(TAG_CUSTOMER, u64::from(duplicate));
        let registered = HISTORY_START + 20 * DAY + 11 * HOUR;
        let original = profiles[0].clone();
        let profile = make_profile(&mut rng, duplicate, registered, Some(&original))?;
        let end = HISTORY_START + 45 * DAY;
        let mut story = Story::new(u64::from(duplicate + 1) << 24);
        plan_customer(
            &mut story, &mut rng, duplicate, &profile, registered, end, &staff,
        )?;
        story.push(
            end + HOUR,
            Step::Merge {
                customer: duplicate,
                into: 0,
            },
        );
        steps.append(&mut story.steps);
        profiles.push(profile);
    }

    // Monthly recognitions for the best agents.
    for month in 0..6i64 {
        let from = HISTORY_START + month * 30 * DAY;
        let to = from + 30 * DAY;
        for slot in 0..2u64 {
            let agent = 3 + world_rng.below(u64::from(agent_count - 3)) as u32;
            let by = staff.supervisor_other_than(&mut world_rng, agent);
            let at = to + DAY + 10 * HOUR + slot as i64 * HOUR;
            let metric = if slot == 0 {
                MetricKind::Csat
            } else {
                MetricKind::FirstResponseTime
            };
            world.push(
                at,
                Step::Recognise {
                    id: mint(&mut world_rng, at)?,
                    agent,
                    by,
                    reason: if slot == 0 { 0 } else { 2 },
                    reward: world_rng.below(3) as u8,
                    basis: Basis::Metric { metric, from, to },
                },
            );
        }
    }
    steps.append(&mut world.steps);
    steps.sort_by_key(|p| (p.at, p.order));
    Ok(Plan {
        workspace,
        teams,
        agents,
        customers: profiles,
        steps,
        merged,
        forgotten,
    })
}

/// Mints an id of type `T` at simulated time `at` (the domain checks it is a UUID v7).
fn mint<T>(rng: &mut Rng, at: i64) -> Result<T, DomainError>
where
    T: TryFrom<uuid::Uuid, Error = DomainError>,
{
    T::try_from(rng.uuid_v7(at))
}

fn locale_weights() -> Vec<u32> {
    LOCALES.iter().map(|l| l.weight).collect()
}

fn make_profile(
    rng: &mut Rng,
    index: u32,
    registered: i64,
    twin: Option<&Profile>,
) -> Result<Profile, DomainError> {
    let (locale_index, given, family, zone) = match twin {
        Some(t) => (t.locale, t.given, t.family, t.zone),
        None => {
            let locale_index = rng.weighted(&locale_weights());
            let locale = &LOCALES[locale_index];
            (
                locale_index,
                rng.below(locale.given.len() as u64) as usize,
                rng.below(locale.family.len() as u64) as usize,
                *rng.pick(locale.zones),
            )
        }
    };
    let locale = &LOCALES[locale_index];
    let (_, g) = locale.given[given];
    let (_, f) = locale.family[family];
    let mail = if twin.is_some() {
        format!(
            "{}.{}.work{index}@{}",
            lowered(g),
            lowered(f),
            locale.mail_domain
        )
    } else {
        format!(
            "{}.{}{index}@{}",
            lowered(g),
            lowered(f),
            locale.mail_domain
        )
    };
    let mut contacts = vec![ContactPoint {
        kind: ContactKind::Email,
        value: mail,
    }];
    let phone = format!(
        "+{} {:03} {:06}",
        locale.calling_code,
        100 + rng.below(900),
        index % 1_000_000
    );
    if rng.chance(75) {
        contacts.push(ContactPoint {
            kind: ContactKind::Phone,
            value: phone,
        });
    }
    if rng.chance(20) {
        contacts.push(ContactPoint {
            kind: ContactKind::Social,
            value: format!("x:@{}_{}{index}", lowered(g), lowered(f)),
        });
    }
    Ok(Profile {
        id: mint(rng, registered)?,
        reference: if twin.is_some() {
            format!("CUST-{index:06}-DUP")
        } else {
            format!("CUST-{index:06}")
        },
        locale: locale_index,
        given,
        family,
        zone,
        contacts,
    })
}

/// Plans one customer's months: registration, profile changes, contacts and cases, up to
/// `end` (later steps are dropped, which keeps a prefix of every aggregate's story).
#[allow(clippy::too_many_arguments)]
fn plan_customer(
    story: &mut Story,
    rng: &mut Rng,
    index: u32,
    profile: &Profile,
    registered: i64,
    end: i64,
    staff: &Staff,
) -> Result<(), DomainError> {
    story.push(registered, Step::RegisterCustomer { customer: index });
    if rng.chance(12) {
        story.push(
            registered + rng.between(DAY, 60 * DAY),
            Step::ChangePreferences {
                customer: index,
                channel: *rng.pick(&[
                    Channel::Email,
                    Channel::Messaging,
                    Channel::Phone,
                    Channel::LiveChat,
                ]),
                consent: rng.chance(80),
            },
        );
    }
    if rng.chance(6) {
        let locale = &LOCALES[profile.locale];
        story.push(
            registered + rng.between(5 * DAY, 90 * DAY),
            Step::AddContact {
                customer: index,
                point: ContactPoint {
                    kind: ContactKind::Messaging,
                    value: format!(
                        "whatsapp:+{}{:09}",
                        locale.calling_code,
                        rng.below(1_000_000_000)
                    ),
                },
            },
        );
    }
    if rng.chance(3) {
        let elsewhere = rng.below(LOCALES.len() as u64) as usize;
        let zone = *rng.pick(LOCALES[elsewhere].zones);
        if zone != profile.zone {
            story.push(
                registered + rng.between(10 * DAY, 120 * DAY),
                Step::MoveTimeZone {
                    customer: index,
                    zone,
                },
            );
        }
    }
    let mut t = registered + rng.between(5 * MINUTE, 10 * HOUR);
    while t < end {
        if rng.chance(28) {
            plan_case(story, rng, index, t, staff)?;
        } else {
            plan_contact(story, rng, index, t, staff)?;
        }
        t += rng.between(3 * DAY, 40 * DAY);
    }
    story.steps.retain(|p| p.at <= end);
    Ok(())
}

fn channel(rng: &mut Rng) -> Channel {
    Channel::ALL[rng.weighted(&world::CHANNEL_WEIGHTS)]
}

fn duration(rng: &mut Rng, channel: Channel) -> u32 {
    let seconds = match channel {
        Channel::Phone | Channel::InPerson => rng.between(90, 1800),
        Channel::LiveChat | Channel::Messaging | Channel::Chatbot => rng.between(60, 1500),
        Channel::Ivr => rng.between(20, 300),
        Channel::Email | Channel::Social | Channel::MobileApp | Channel::SelfService => 0,
    };
    u32::try_from(seconds).unwrap_or(0)
}

/// A contact that needs no case, maybe with a note and a rating.
fn plan_contact(
    story: &mut Story,
    rng: &mut Rng,
    customer: u32,
    t: i64,
    staff: &Staff,
) -> Result<(), DomainError> {
    let channel = channel(rng);
    let bot = world::bot_for(channel).is_some();
    let agent = (!bot).then(|| staff.pick(rng, 0));
    let direction = if !bot && matches!(channel, Channel::Phone | Channel::Email) && rng.chance(15)
    {
        Direction::Outbound
    } else {
        Direction::Inbound
    };
    let id = mint(rng, t)?;
    let noted = agent.is_some() && rng.chance(12);
    let summary = if channel == Channel::Ivr && rng.chance(50) {
        Summary::Empty
    } else {
        Summary::Quick(rng.below(world::QUICK_SUMMARIES.len() as u64) as u8)
    };
    story.push(
        t,
        Step::Interaction {
            id,
            customer,
            channel,
            direction,
            agent,
            case: None,
            summary,
            duration: duration(rng, channel),
            noted,
        },
    );
    if let (true, Some(author)) = (noted, agent) {
        let at = t + rng.between(5 * MINUTE, HOUR);
        story.push(
            at,
            Step::InteractionNote {
                interaction: id,
                customer,
                note: mint(rng, at)?,
                author,
                text: rng.below(world::NOTES.len() as u64) as u8,
            },
        );
    }
    if rng.chance(20) {
        let at = t + rng.between(HOUR, 2 * DAY);
        let score = if rng.chance(70) {
            sijil_domain::Score::Csat(csat(rng, false))
        } else {
            sijil_domain::Score::Ces(1 + rng.weighted(&[2, 3, 5, 10, 20, 30, 30]) as u8)
        };
        story.push(
            at,
            Step::Survey {
                id: mint(rng, at)?,
                customer,
                subject: sijil_domain::FeedbackSubject::Interaction(id),
                score,
                comment: comment(rng, score),
            },
        );
    }
    Ok(())
}

fn csat(rng: &mut Rng, bad: bool) -> u8 {
    let weights: [u32; 5] = if bad {
        [30, 30, 20, 12, 8]
    } else {
        [3, 5, 12, 35, 45]
    };
    1 + rng.weighted(&weights) as u8
}

fn comment(rng: &mut Rng, score: sijil_domain::Score) -> Option<(u8, u8)> {
    if !rng.chance(35) {
        return None;
    }
    let mood = match score {
        sijil_domain::Score::Csat(s) => match s {
            1 | 2 => 0,
            3 => 1,
            _ => 2,
        },
        sijil_domain::Score::Nps(s) => match s {
            0..=6 => 0,
            7 | 8 => 1,
            _ => 2,
        },
        sijil_domain::Score::Ces(s) => match s {
            1..=3 => 0,
            4 | 5 => 1,
            _ => 2,
        },
    };
    let pick = rng.below(world::COMMENTS[mood].len() as u64) as u8;
    Some((mood as u8, pick))
}

/// A case from first contact to closing: assignment, first response (sometimes late, with a
/// breach), escalations, further contacts, resolution (sometimes late), reopening, closing,
/// ratings and, for detractors, a follow-up.
fn plan_case(
    story: &mut Story,
    rng: &mut Rng,
    customer: u32,
    t: i64,
    staff: &Staff,
) -> Result<(), DomainError> {
    let topic_index = rng.weighted(&world::TOPIC_WEIGHTS);
    let topic = &TOPICS[topic_index];
    let subject = rng.below(topic.subjects.len() as u64) as u8;
    let priority = world::PRIORITIES[rng.weighted(&world::PRIORITIES.map(|(_, w)| w))].0;
    let sla = world::sla_for(priority);
    let first_channel = channel(rng);
    let mut open_at = t;
    if world::bot_for(first_channel).is_some() {
        // The bot could not help; a person opens a case from the same channel.
        story.push(
            t,
            Step::Interaction {
                id: mint(rng, t)?,
                customer,
                channel: first_channel,
                direction: Direction::Inbound,
                agent: None,
                case: None,
                summary: Summary::Opening {
                    topic: topic_index as u8,
                    subject,
                },
                duration: duration(rng, first_channel),
                noted: false,
            },
        );
        open_at = t + rng.between(2 * MINUTE, 20 * MINUTE);
    }
    let vip = rng.chance(8);
    let front_team = if vip { 4 } else { 0 };
    let agent = staff.pick(rng, front_team);
    let case = mint(rng, open_at)?;
    story.push(
        open_at,
        Step::OpenCase {
            case,
            customer,
            topic: topic_index as u8,
            subject,
            priority,
            channel: first_channel,
            agent,
        },
    );
    let contact_channel = if world::bot_for(first_channel).is_some() {
        Channel::Phone
    } else {
        first_channel
    };
    story.push(
        open_at + MINUTE,
        Step::Interaction {
            id: mint(rng, open_at + MINUTE)?,
            customer,
            channel: contact_channel,
            direction: Direction::Inbound,
            agent: Some(agent),
            case: Some(case),
            summary: Summary::Opening {
                topic: topic_index as u8,
                subject,
            },
            duration: duration(rng, contact_channel),
            noted: false,
        },
    );
    let fr_minutes = i64::from(sla.first_response_minutes);
    let assign_at = open_at + 2 * MINUTE + rng.between(0, (fr_minutes / 3).max(1) * MINUTE);
    story.push(
        assign_at,
        Step::Assign {
            case,
            agent,
            team: front_team as u8,
        },
    );
    let fr_due = open_at + fr_minutes * MINUTE;
    let mut bad = false;
    let fr_at = if rng.chance(12) {
        bad = true;
        story.push(
            fr_due + rng.between(MINUTE, 5 * MINUTE),
            Step::Breach {
                case,
                target: SlaTarget::FirstResponse,
            },
        );
        fr_due + rng.between(10 * MINUTE, fr_minutes.max(30) * MINUTE)
    } else {
        rng.between(
            assign_at + MINUTE,
            (fr_due - MINUTE).max(assign_at + MINUTE),
        )
    };
    story.push(
        fr_at,
        Step::FirstResponse {
            case,
            agent,
            channel: contact_channel,
        },
    );
    let mut cursor = fr_at;
    let mut handler = agent;
    let mut escalated = false;
    if rng.chance(22) {
        escalated = true;
        bad |= rng.chance(30);
        let level2_team = if topic.escalation_team == 1 { 1 } else { 2 };
        cursor += rng.between(10 * MINUTE, 6 * HOUR);
        let specialist = staff.pick(rng, level2_team);
        story.push(
            cursor,
            Step::Escalate {
                case,
                reason: rng.below(world::ESCALATION_REASONS.len() as u64) as u8,
                team: level2_team as u8,
                agent: specialist,
            },
        );
        cursor += 2 * MINUTE;
        story.push(
            cursor,
            Step::Assign {
                case,
                agent: specialist,
                team: level2_team as u8,
            },
        );
        handler = specialist;
        if topic.escalation_team == 3 && rng.chance(40) {
            cursor += rng.between(HOUR, DAY);
            let engineer = staff.pick(rng, 3);
            story.push(
                cursor,
                Step::Escalate {
                    case,
                    reason: 2,
                    team: 3,
                    agent: engineer,
                },
            );
            cursor += 5 * MINUTE;
            story.push(
                cursor,
                Step::Assign {
                    case,
                    agent: engineer,
                    team: 3,
                },
            );
            handler = engineer;
        }
        if rng.chance(30) {
            cursor += rng.between(HOUR, DAY);
            story.push(
                cursor,
                Step::Deescalate {
                    case,
                    reason: rng.below(world::DEESCALATION_REASONS.len() as u64) as u8,
                    team: front_team as u8,
                    agent,
                },
            );
            cursor += MINUTE;
            story.push(
                cursor,
                Step::Assign {
                    case,
                    agent,
                    team: front_team as u8,
                },
            );
            handler = agent;
        }
    }
    let extra = if escalated {
        rng.below(4)
    } else {
        rng.below(2)
    };
    for _ in 0..extra {
        cursor += rng.between(HOUR, DAY);
        let channel = *rng.pick(&[
            Channel::Phone,
            Channel::Email,
            Channel::LiveChat,
            Channel::Messaging,
        ]);
        story.push(
            cursor,
            Step::Interaction {
                id: mint(rng, cursor)?,
                customer,
                channel,
                direction: if rng.chance(50) {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                },
                agent: Some(handler),
                case: Some(case),
                summary: Summary::CaseContact(
                    rng.below(world::CASE_CONTACT_SUMMARIES.len() as u64) as u8,
                ),
                duration: duration(rng, channel),
                noted: false,
            },
        );
    }
    if rng.chance(30) {
        cursor += rng.between(5 * MINUTE, HOUR);
        story.push(
            cursor,
            Step::CaseNote {
                case,
                customer,
                note: mint(rng, cursor)?,
                author: handler,
                text: rng.below(world::NOTES.len() as u64) as u8,
            },
        );
    }
    let res_due = open_at + i64::from(sla.resolution_minutes) * MINUTE;
    let planned = open_at + i64::from(sla.resolution_minutes) * MINUTE * rng.between(10, 90) / 100;
    let mut resolve_at = planned.max(cursor + 10 * MINUTE);
    let mut resolution_breached = false;
    if rng.chance(10) || resolve_at > res_due {
        bad = true;
        resolution_breached = true;
        story.push(
            res_due + rng.between(MINUTE, 10 * MINUTE),
            Step::Breach {
                case,
                target: SlaTarget::Resolution,
            },
        );
        resolve_at = resolve_at.max(res_due + rng.between(30 * MINUTE, 2 * DAY));
    }
    let resolution = |rng: &mut Rng| Step::Resolve {
        case,
        topic: topic_index as u8,
        resolution: rng.below(topic.resolutions.len() as u64) as u8,
        root_cause: rng.below(topic.root_causes.len() as u64) as u8,
        fcr: !escalated && extra == 0 && rng.chance(70),
        agent: handler,
    };
    let step = resolution(rng);
    story.push(resolve_at, step);
    let mut last_resolved = resolve_at;
    if rng.chance(9) {
        bad = true;
        let back_at = resolve_at + rng.between(DAY, 5 * DAY);
        story.push(
            back_at,
            Step::Interaction {
                id: mint(rng, back_at)?,
                customer,
                channel: Channel::Phone,
                direction: Direction::Inbound,
                agent: Some(handler),
                case: Some(case),
                summary: Summary::CaseContact(0),
                duration: duration(rng, Channel::Phone),
                noted: false,
            },
        );
        let reopen_at = back_at + 2 * MINUTE;
        story.push(
            reopen_at,
            Step::Reopen {
                case,
                reason: rng.below(world::REOPEN_REASONS.len() as u64) as u8,
            },
        );
        if !resolution_breached && res_due < reopen_at {
            story.push(
                reopen_at + rng.between(MINUTE, 5 * MINUTE),
                Step::Breach {
                    case,
                    target: SlaTarget::Resolution,
                },
            );
        }
        last_resolved = reopen_at + rng.between(2 * HOUR, 2 * DAY);
        let step = resolution(rng);
        story.push(last_resolved, step);
    }
    story.push(
        last_resolved + rng.between(2 * DAY, 7 * DAY),
        Step::Close {
            case,
            agent: handler,
        },
    );
    if rng.chance(55) {
        let at = last_resolved + rng.between(HOUR, DAY);
        let value = csat(rng, bad);
        let score = sijil_domain::Score::Csat(value);
        story.push(
            at,
            Step::Survey {
                id: mint(rng, at)?,
                customer,
                subject: sijil_domain::FeedbackSubject::Case(case),
                score,
                comment: comment(rng, score),
            },
        );
        if value == 5 && rng.chance(4) {
            let by = staff.supervisor_other_than(rng, handler);
            let at = at + DAY;
            story.push(
                at,
                Step::Recognise {
                    id: mint(rng, at)?,
                    agent: handler,
                    by,
                    reason: 1,
                    reward: rng.below(3) as u8,
                    basis: Basis::Case(case),
                },
            );
        }
    }
    if rng.chance(30) {
        let at = last_resolved + rng.between(2 * HOUR, 2 * DAY);
        let weights: [u32; 11] = if bad {
            [8, 6, 8, 10, 10, 12, 12, 10, 10, 8, 6]
        } else {
            [1, 1, 1, 2, 2, 3, 5, 12, 20, 25, 28]
        };
        let value = rng.weighted(&weights) as u8;
        let score = sijil_domain::Score::Nps(value);
        let survey = mint(rng, at)?;
        story.push(
            at,
            Step::Survey {
                id: survey,
                customer,
                subject: sijil_domain::FeedbackSubject::Case(case),
                score,
                comment: comment(rng, score),
            },
        );
        if value <= 6 {
            let scheduled = at + rng.between(30 * MINUTE, 4 * HOUR);
            let due = scheduled + 2 * DAY;
            let caller = *rng.pick(&staff.supervisors);
            let id = mint(rng, scheduled)?;
            story.push(
                scheduled,
                Step::ScheduleFollowUp {
                    id,
                    customer,
                    survey,
                    due,
                    agent: caller,
                },
            );
            if rng.chance(80) {
                story.push(
                    scheduled + rng.between(2 * HOUR, 2 * DAY),
                    Step::CompleteFollowUp {
                        id,
                        agent: caller,
                        outcome: rng.below(world::FOLLOW_UP_OUTCOMES.len() as u64) as u8,
                    },
                );
            } else {
                story.push(
                    due + DAY,
                    Step::CancelFollowUp {
                        id,
                        reason: rng.below(world::FOLLOW_UP_CANCELLATIONS.len() as u64) as u8,
                    },
                );
            }
        }
    }
    if rng.chance(20) {
        let at = last_resolved + rng.between(HOUR, DAY);
        let score = sijil_domain::Score::Ces(1 + rng.weighted(&[3, 4, 6, 10, 20, 30, 27]) as u8);
        story.push(
            at,
            Step::Survey {
                id: mint(rng, at)?,
                customer,
                subject: sijil_domain::FeedbackSubject::Case(case),
                score,
                comment: comment(rng, score),
            },
        );
    }
    Ok(())
}
