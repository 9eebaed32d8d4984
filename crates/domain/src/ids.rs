//! Identifier newtypes. Every id is a UUID v7 (time-ordered); the domain validates the version
//! but never mints ids itself (that needs a clock and randomness, which live outside the domain).

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

use crate::error::DomainError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "Uuid", into = "Uuid")]
        pub struct $name(Uuid);

        impl $name {
            /// What this id names, for error messages.
            pub const LABEL: &'static str = $label;

            /// Wraps a UUID, refusing anything that is not a version 7 UUID.
            pub fn new(uuid: Uuid) -> Result<Self, DomainError> {
                if uuid.get_version_num() == 7 {
                    Ok(Self(uuid))
                } else {
                    Err(DomainError::InvalidId {
                        kind: $label,
                        value: uuid.to_string(),
                    })
                }
            }

            /// Parses the textual (hyphenated or simple) form of a v7 UUID.
            pub fn parse(text: &str) -> Result<Self, DomainError> {
                let uuid = Uuid::try_parse(text).map_err(|_| DomainError::InvalidId {
                    kind: $label,
                    value: text.chars().take(64).collect(),
                })?;
                Self::new(uuid)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl TryFrom<Uuid> for $name {
            type Error = DomainError;
            fn try_from(uuid: Uuid) -> Result<Self, DomainError> {
                Self::new(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// A customer (one person or organisation served by the business).
    CustomerId,
    "customer id"
);
id_type!(
    /// A case (ticket) tracked to resolution.
    CaseId,
    "case id"
);
id_type!(
    /// One contact on one channel.
    InteractionId,
    "interaction id"
);
id_type!(
    /// A person or bot who handles interactions and cases.
    AgentId,
    "agent id"
);
id_type!(
    /// A team of agents (front line, tier 2, billing, ...).
    TeamId,
    "team id"
);
id_type!(
    /// A tenant: one business using sijil; nothing crosses workspaces.
    WorkspaceId,
    "workspace id"
);
id_type!(
    /// One survey answer (CSAT, NPS or CES).
    SurveyId,
    "survey id"
);
id_type!(
    /// One scheduled follow-up.
    FollowUpId,
    "follow-up id"
);
id_type!(
    /// One note on an interaction or case.
    NoteId,
    "note id"
);
id_type!(
    /// One recognition given to an agent.
    RecognitionId,
    "recognition id"
);
