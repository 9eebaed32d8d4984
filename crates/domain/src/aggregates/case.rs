//! The case (ticket) aggregate: opened, assigned, first response, escalation levels, SLA
//! breaches, resolution, reopen and close, plus internal notes.
//!
//! Lifecycle: `Open` → (`Resolve`) → `Resolved` → (`Reopen` → `Open` | `Close` → `Closed`).
//! Rules:
//! - assigning, the first response, escalating and de-escalating need an open case:
//!   `CASE_CLOSED` on a closed case, `ALREADY_RESOLVED` on a resolved one (reopen it first);
//! - the first response is given once (`ALREADY_RESPONDED`);
//! - levels start at 1 and move one step at a time, never above the case's `top_level`
//!   (`TOP_LEVEL_REACHED`) nor below 1 (`BOTTOM_LEVEL_REACHED`);
//! - a case resolves once until reopened (`ALREADY_RESOLVED`); only a resolved case reopens or
//!   closes (`NOT_RESOLVED` on an open case, `CASE_CLOSED` on a closed one). A case that must
//!   go away unsolved (spam, duplicate) is resolved with that root cause, then closed;
//! - a closed case is closed for good: it accepts only notes. Notes are internal, so they are
//!   allowed in every status, but only for an active customer;
//! - an SLA breach is recorded once per target (`ALREADY_BREACHED`), never on a closed case
//!   (`CASE_CLOSED`), and only once the target's due time (opening + the policy's minutes) has
//!   passed (`NOT_DUE`) without the target being met in time (`TARGET_MET`). The first-response
//!   target is met by the first response or by a resolution, whichever came first; a late one
//!   still lets the breach be recorded (a periodic checker may run after it). The resolution
//!   target is settled once the case is resolved (`ALREADY_RESOLVED`), since the resolution
//!   time then tells how late it was; a reopened case can breach it again.
//! - a resolution after a reopen is never a first-contact resolution (the flag is cleared).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::commands::{Aggregate, CustomerStatus};
use crate::error::DomainError;
use crate::events::*;
use crate::ids::{AgentId, CaseId, CustomerId, NoteId, TeamId};
use crate::time::Timestamp;
use crate::validate;
use crate::values::{Assignee, Channel, NoteTarget, Priority, SlaPolicy, SlaTarget};

/// Where a case is in its lifecycle.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum CaseStatus {
    Open,
    Resolved,
    Closed,
}

impl CaseStatus {
    /// A stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Resolved => "resolved",
            CaseStatus::Closed => "closed",
        }
    }
}

/// An opened case, as rebuilt from its events.
#[derive(Clone, PartialEq, Debug)]
pub struct Case {
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    pub subject: String,
    pub category: String,
    pub priority: Priority,
    pub channel: Channel,
    pub sla: SlaPolicy,
    /// The highest level this case can reach (levels start at 1).
    pub top_level: u8,
    pub opened_at: Timestamp,
    pub status: CaseStatus,
    /// The current escalation level, within `1..=top_level`.
    pub level: u8,
    pub assignee: Assignee,
    pub first_response_at: Option<Timestamp>,
    /// When the case was first resolved (kept across reopens).
    pub first_resolved_at: Option<Timestamp>,
    /// When the case was last resolved; `None` while open.
    pub resolved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub escalations: u32,
    pub resolutions: u32,
    pub reopens: u32,
    /// The SLA targets recorded as breached.
    pub breached: BTreeSet<SlaTarget>,
    pub notes: BTreeSet<NoteId>,
}

impl Case {
    /// When the first response is due.
    pub fn first_response_due(&self) -> Timestamp {
        self.opened_at.plus_minutes(self.sla.first_response_minutes)
    }

    /// When the resolution is due.
    pub fn resolution_due(&self) -> Timestamp {
        self.opened_at.plus_minutes(self.sla.resolution_minutes)
    }

    /// The due time of a target.
    pub fn due(&self, target: SlaTarget) -> Timestamp {
        match target {
            SlaTarget::FirstResponse => self.first_response_due(),
            SlaTarget::Resolution => self.resolution_due(),
        }
    }

    /// When the first-response target was met: the first response, or the first resolution if
    /// that came earlier.
    pub fn first_response_met_at(&self) -> Option<Timestamp> {
        match (self.first_response_at, self.first_resolved_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a target was recorded as breached.
    pub fn is_breached(&self, target: SlaTarget) -> bool {
        self.breached.contains(&target)
    }

    /// Whether a breach of `target` could be recorded at `now` (what an SLA checker asks).
    pub fn breach_due(&self, target: SlaTarget, now: Timestamp) -> bool {
        check_breach(self, target, now).is_ok()
    }
}

/// The case aggregate's state.
#[derive(Clone, PartialEq, Debug, Default)]
pub enum State {
    #[default]
    NotOpened,
    /// Boxed: a case is large and the not-opened state is empty.
    Opened(Box<Case>),
}

impl State {
    /// The case, once opened.
    pub fn case(&self) -> Option<&Case> {
        match self {
            State::NotOpened => None,
            State::Opened(case) => Some(case.as_ref()),
        }
    }

    /// The lifecycle status; `None` before the case is opened.
    pub fn status(&self) -> Option<CaseStatus> {
        self.case().map(|c| c.status)
    }

    /// The current level; `None` before the case is opened.
    pub fn level(&self) -> Option<u8> {
        self.case().map(|c| c.level)
    }

    /// When the first response is due.
    pub fn first_response_due(&self) -> Option<Timestamp> {
        self.case().map(Case::first_response_due)
    }

    /// When the resolution is due.
    pub fn resolution_due(&self) -> Option<Timestamp> {
        self.case().map(Case::resolution_due)
    }

    /// The SLA targets recorded as breached (empty before opening).
    pub fn breached(&self) -> BTreeSet<SlaTarget> {
        self.case().map(|c| c.breached.clone()).unwrap_or_default()
    }
}

/// What can be asked of a case. Only `Open` names the case; the others address the aggregate
/// whose state is given to [`decide`].
#[derive(Clone, PartialEq, Debug)]
pub enum Command {
    Open {
        case_id: CaseId,
        customer_id: CustomerId,
        customer: CustomerStatus,
        subject: String,
        category: String,
        priority: Priority,
        channel: Channel,
        sla: SlaPolicy,
        /// The workspace's top escalation level (at least 1).
        top_level: u8,
        at: Timestamp,
    },
    /// Gives the case to an agent and/or a team (at least one); replaces the assignment.
    Assign {
        agent: Option<AgentId>,
        team: Option<TeamId>,
        at: Timestamp,
    },
    GiveFirstResponse {
        agent: Option<AgentId>,
        channel: Channel,
        at: Timestamp,
    },
    /// Moves the case up one level, perhaps to a specialised team.
    Escalate {
        reason: String,
        team: Option<TeamId>,
        at: Timestamp,
    },
    /// Moves the case down one level.
    Deescalate {
        reason: String,
        team: Option<TeamId>,
        at: Timestamp,
    },
    /// Records that `target` was breached, as seen at `now`.
    BreachSla {
        target: SlaTarget,
        now: Timestamp,
    },
    Resolve {
        resolution: String,
        root_cause: String,
        first_contact_resolution: bool,
        agent: Option<AgentId>,
        at: Timestamp,
    },
    Reopen {
        reason: String,
        at: Timestamp,
    },
    Close {
        at: Timestamp,
    },
    /// An internal note; allowed in every status, for an active customer.
    AddNote {
        note_id: NoteId,
        customer: CustomerStatus,
        author: Option<AgentId>,
        text: String,
        at: Timestamp,
    },
}

/// The case aggregate, for generic code.
#[derive(Clone, Copy, Debug)]
pub struct CaseAggregate;

impl Aggregate for CaseAggregate {
    type State = State;
    type Command = Command;

    fn decide(state: &State, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
        decide(state, command)
    }

    fn evolve(state: State, event: &DomainEvent) -> State {
        evolve(state, event)
    }
}

/// Rebuilds a case from its events, oldest first.
pub fn fold<'a, I: IntoIterator<Item = &'a DomainEvent>>(events: I) -> State {
    CaseAggregate::fold(events)
}

fn opened(state: &State) -> Result<&Case, DomainError> {
    state.case().ok_or(DomainError::NotFound {
        what: "case",
        id: None,
    })
}

/// The case, refusing unless it is open (not resolved, not closed).
fn open(state: &State) -> Result<&Case, DomainError> {
    let case = opened(state)?;
    match case.status {
        CaseStatus::Open => Ok(case),
        CaseStatus::Resolved => Err(DomainError::AlreadyResolved),
        CaseStatus::Closed => Err(DomainError::CaseClosed),
    }
}

/// The case, refusing unless it is resolved.
fn resolved(state: &State) -> Result<&Case, DomainError> {
    let case = opened(state)?;
    match case.status {
        CaseStatus::Resolved => Ok(case),
        CaseStatus::Open => Err(DomainError::NotResolved),
        CaseStatus::Closed => Err(DomainError::CaseClosed),
    }
}

/// Whether a breach of `target` can be recorded at `now`; `Ok` gives the due time.
fn check_breach(case: &Case, target: SlaTarget, now: Timestamp) -> Result<Timestamp, DomainError> {
    if case.status == CaseStatus::Closed {
        return Err(DomainError::CaseClosed);
    }
    if case.is_breached(target) {
        return Err(DomainError::AlreadyBreached { target });
    }
    let due_at = case.due(target);
    match target {
        SlaTarget::FirstResponse => {
            if case
                .first_response_met_at()
                .is_some_and(|met| met <= due_at)
            {
                return Err(DomainError::TargetMet { target });
            }
        }
        SlaTarget::Resolution => {
            if case.status == CaseStatus::Resolved {
                return Err(DomainError::AlreadyResolved);
            }
        }
    }
    if now <= due_at {
        return Err(DomainError::NotDue { target, due_at });
    }
    Ok(due_at)
}

/// Decides a case command.
pub fn decide(state: &State, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
    match command {
        Command::Open {
            case_id,
            customer_id,
            customer,
            subject,
            category,
            priority,
            channel,
            sla,
            top_level,
            at,
        } => {
            if let State::Opened(existing) = state {
                return Err(DomainError::AlreadyExists {
                    what: "case",
                    id: existing.case_id.to_string(),
                });
            }
            customer.require_active(customer_id)?;
            let subject = validate::text(&validate::SUBJECT, &subject)?;
            let category = validate::text(&validate::CATEGORY, &category)?;
            if sla.first_response_minutes == 0 || sla.resolution_minutes == 0 {
                return Err(DomainError::InvalidSla {
                    reason: "targets must be at least one minute".to_owned(),
                });
            }
            if top_level == 0 {
                return Err(DomainError::InvalidLevel {
                    reason: "the top level must be at least 1".to_owned(),
                });
            }
            Ok(vec![CaseOpened {
                case_id,
                customer_id,
                subject,
                category,
                priority,
                channel,
                sla,
                top_level,
                at,
            }
            .into()])
        }
        Command::Assign { agent, team, at } => {
            let case = open(state)?;
            if agent.is_none() && team.is_none() {
                return Err(DomainError::InvalidAssignment);
            }
            Ok(vec![CaseAssigned {
                case_id: case.case_id,
                agent,
                team,
                at,
            }
            .into()])
        }
        Command::GiveFirstResponse { agent, channel, at } => {
            let case = open(state)?;
            if case.first_response_at.is_some() {
                return Err(DomainError::AlreadyResponded);
            }
            Ok(vec![FirstResponseGiven {
                case_id: case.case_id,
                agent,
                channel,
                at,
            }
            .into()])
        }
        Command::Escalate { reason, team, at } => {
            let case = open(state)?;
            if case.level >= case.top_level {
                return Err(DomainError::TopLevelReached {
                    top_level: case.top_level,
                });
            }
            let reason = validate::text(&validate::REASON, &reason)?;
            Ok(vec![CaseEscalated {
                case_id: case.case_id,
                from_level: case.level,
                to_level: case.level.saturating_add(1),
                reason,
                team,
                at,
            }
            .into()])
        }
        Command::Deescalate { reason, team, at } => {
            let case = open(state)?;
            if case.level <= 1 {
                return Err(DomainError::BottomLevelReached);
            }
            let reason = validate::text(&validate::REASON, &reason)?;
            Ok(vec![CaseDeescalated {
                case_id: case.case_id,
                from_level: case.level,
                to_level: case.level.saturating_sub(1),
                reason,
                team,
                at,
            }
            .into()])
        }
        Command::BreachSla { target, now } => {
            let case = opened(state)?;
            let due_at = check_breach(case, target, now)?;
            Ok(vec![SlaBreached {
                case_id: case.case_id,
                target,
                due_at,
                overdue_ms: now.millis_since(due_at),
                at: now,
            }
            .into()])
        }
        Command::Resolve {
            resolution,
            root_cause,
            first_contact_resolution,
            agent,
            at,
        } => {
            let case = open(state)?;
            let resolution = validate::text(&validate::RESOLUTION, &resolution)?;
            let root_cause = validate::text(&validate::ROOT_CAUSE, &root_cause)?;
            Ok(vec![CaseResolved {
                case_id: case.case_id,
                resolution,
                root_cause,
                first_contact_resolution: first_contact_resolution && case.reopens == 0,
                agent,
                at,
            }
            .into()])
        }
        Command::Reopen { reason, at } => {
            let case = resolved(state)?;
            let reason = validate::text(&validate::REASON, &reason)?;
            Ok(vec![CaseReopened {
                case_id: case.case_id,
                reason,
                at,
            }
            .into()])
        }
        Command::Close { at } => {
            let case = resolved(state)?;
            Ok(vec![CaseClosed {
                case_id: case.case_id,
                at,
            }
            .into()])
        }
        Command::AddNote {
            note_id,
            customer,
            author,
            text,
            at,
        } => {
            let case = opened(state)?;
            if case.notes.contains(&note_id) {
                return Err(DomainError::AlreadyExists {
                    what: "note",
                    id: note_id.to_string(),
                });
            }
            customer.require_active(case.customer_id)?;
            let text = validate::text(&validate::NOTE, &text)?;
            Ok(vec![NoteAdded {
                note_id,
                target: NoteTarget::Case(case.case_id),
                customer_id: case.customer_id,
                author,
                text,
                at,
            }
            .into()])
        }
    }
}

/// Applies one event to a case; events of other aggregates or cases are ignored.
pub fn evolve(state: State, event: &DomainEvent) -> State {
    let mut case = match (state, event) {
        (State::NotOpened, DomainEvent::CaseOpened(e)) => {
            return State::Opened(Box::new(Case {
                case_id: e.case_id,
                customer_id: e.customer_id,
                subject: e.subject.clone(),
                category: e.category.clone(),
                priority: e.priority,
                channel: e.channel,
                sla: e.sla,
                top_level: e.top_level,
                opened_at: e.at,
                status: CaseStatus::Open,
                level: 1,
                assignee: Assignee {
                    agent: None,
                    team: None,
                },
                first_response_at: None,
                first_resolved_at: None,
                resolved_at: None,
                closed_at: None,
                escalations: 0,
                resolutions: 0,
                reopens: 0,
                breached: BTreeSet::new(),
                notes: BTreeSet::new(),
            }));
        }
        (State::NotOpened, _) => return State::NotOpened,
        (State::Opened(case), _) => case,
    };
    if event.stream() != StreamRef::Case(case.case_id) {
        return State::Opened(case);
    }
    match event {
        DomainEvent::CaseAssigned(e) => {
            case.assignee = Assignee {
                agent: e.agent,
                team: e.team,
            };
        }
        DomainEvent::FirstResponseGiven(e) => {
            case.first_response_at.get_or_insert(e.at);
        }
        DomainEvent::CaseEscalated(e) => {
            case.level = e.to_level;
            case.escalations = case.escalations.saturating_add(1);
            if e.team.is_some() {
                case.assignee.team = e.team;
            }
        }
        DomainEvent::CaseDeescalated(e) => {
            case.level = e.to_level;
            if e.team.is_some() {
                case.assignee.team = e.team;
            }
        }
        DomainEvent::SlaBreached(e) => {
            case.breached.insert(e.target);
        }
        DomainEvent::CaseResolved(e) => {
            case.status = CaseStatus::Resolved;
            case.resolved_at = Some(e.at);
            case.first_resolved_at.get_or_insert(e.at);
            case.resolutions = case.resolutions.saturating_add(1);
        }
        DomainEvent::CaseReopened(_) => {
            case.status = CaseStatus::Open;
            case.resolved_at = None;
            case.reopens = case.reopens.saturating_add(1);
        }
        DomainEvent::CaseClosed(e) => {
            case.status = CaseStatus::Closed;
            case.closed_at = Some(e.at);
        }
        DomainEvent::NoteAdded(e) => {
            case.notes.insert(e.note_id);
        }
        _ => {}
    }
    State::Opened(case)
}
