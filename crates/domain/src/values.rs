//! Value types shared by events and commands: channels, priorities, scores, rewards and the like.

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, CaseId, InteractionId, SurveyId, TeamId};
use crate::time::Timestamp;

/// A channel a customer reaches the business on (see the glossary).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum Channel {
    Phone,
    Email,
    LiveChat,
    Social,
    Messaging,
    InPerson,
    Ivr,
    MobileApp,
    SelfService,
    Chatbot,
}

impl Channel {
    /// Every channel, in a stable order.
    pub const ALL: [Channel; 10] = [
        Channel::Phone,
        Channel::Email,
        Channel::LiveChat,
        Channel::Social,
        Channel::Messaging,
        Channel::InPerson,
        Channel::Ivr,
        Channel::MobileApp,
        Channel::SelfService,
        Channel::Chatbot,
    ];

    /// A stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Phone => "phone",
            Channel::Email => "email",
            Channel::LiveChat => "live_chat",
            Channel::Social => "social",
            Channel::Messaging => "messaging",
            Channel::InPerson => "in_person",
            Channel::Ivr => "ivr",
            Channel::MobileApp => "mobile_app",
            Channel::SelfService => "self_service",
            Channel::Chatbot => "chatbot",
        }
    }

    /// A stable one-byte code, for compact index keys.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The channel for a code made by [`Channel::code`].
    pub fn from_code(code: u8) -> Option<Channel> {
        Channel::ALL.get(usize::from(code)).copied()
    }
}

/// Who started the contact.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// The kind of a contact point.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum ContactKind {
    Email,
    Phone,
    /// A social network handle, written `network:handle` (for example `x:@amina`).
    Social,
    /// A messaging id (WhatsApp number, Telegram user, ...), written `service:id`.
    Messaging,
}

/// One way to reach a customer. The value is normalised by the domain when accepted
/// (emails lower-cased, phone numbers reduced to `+` and digits).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct ContactPoint {
    pub kind: ContactKind,
    pub value: String,
}

/// Case priority.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

/// The service-level targets a case is held to, in minutes from opening.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct SlaPolicy {
    pub first_response_minutes: u32,
    pub resolution_minutes: u32,
}

/// Which SLA target a breach is about.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum SlaTarget {
    FirstResponse,
    Resolution,
}

/// Who handled an interaction: a person or a bot.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Handler {
    Agent(AgentId),
    /// A bot, by name (for example `ivr-main-menu`, `faq-bot`).
    Bot(String),
}

impl Handler {
    /// The agent, when a person handled it.
    pub fn agent(&self) -> Option<AgentId> {
        match self {
            Handler::Agent(id) => Some(*id),
            Handler::Bot(_) => None,
        }
    }
}

/// A survey score on its own scale.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Score {
    /// Customer satisfaction, 1 to 5.
    Csat(u8),
    /// Net promoter, 0 to 10.
    Nps(u8),
    /// Customer effort, 1 to 7 (7 = very easy).
    Ces(u8),
}

/// What a survey answer rates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum FeedbackSubject {
    Case(CaseId),
    Interaction(InteractionId),
}

/// What a note is attached to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum NoteTarget {
    Case(CaseId),
    Interaction(InteractionId),
}

/// Why a follow-up is scheduled.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum FollowUpReason {
    /// An NPS detractor (0-6) is called back.
    DetractorFollowUp,
    /// A check that a fix held.
    CheckAfterFix,
    /// Outreach before the customer asks (a predicted problem, a renewal).
    ProactiveOutreach,
    /// Anything else, explained in the note.
    Other,
}

/// What a follow-up relates to, if anything.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum FollowUpRelation {
    Case(CaseId),
    Survey(SurveyId),
    Interaction(InteractionId),
}

/// A metric a recognition can be tied to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum MetricKind {
    Csat,
    Nps,
    Ces,
    FirstContactResolution,
    FirstResponseTime,
    ResolutionTime,
}

/// What a recognition is for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum RecognitionBasis {
    /// Exceptional service on one case.
    Case(CaseId),
    /// A metric over a period `[from, to)`.
    Metric {
        metric: MetricKind,
        from: Timestamp,
        to: Timestamp,
    },
}

/// The reward that goes with a recognition.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Reward {
    Kudos,
    Points(u32),
    /// A voucher worth `amount_minor` (cents, fils, ...) in an ISO 4217 currency.
    Voucher {
        amount_minor: u64,
        currency: String,
    },
}

/// Who an assignment points at.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Assignee {
    pub agent: Option<AgentId>,
    pub team: Option<TeamId>,
}
