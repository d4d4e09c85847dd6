//! Decisions: the small `Copy` value the hot path returns, and the explained, serializable view.

use serde::{Deserialize, Serialize};

/// An action's risk tier; each tier has its own freshness bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Low,
    Standard,
    High,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Low, Tier::Standard, Tier::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Low => "low",
            Tier::Standard => "standard",
            Tier::High => "high",
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_u8(v: u8) -> Option<Tier> {
        match v {
            0 => Some(Tier::Low),
            1 => Some(Tier::Standard),
            2 => Some(Tier::High),
            _ => None,
        }
    }
}

/// Why a decision came out as it did: the first failing gate (docs/decisions.md, "Gates").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    NoSnapshot,
    InvalidRequest,
    StaleSnapshot,
    Pending,
    FreshnessExceeded,
    TokenInvalid,
    TokenExpired,
    SessionRevoked,
    UnknownAction,
    Suspended,
    UnknownResource,
    Granted,
    StepUpRequired,
    ConditionFailed,
    NoGrant,
}

impl Reason {
    pub const ALL: [Reason; 15] = [
        Reason::NoSnapshot,
        Reason::InvalidRequest,
        Reason::StaleSnapshot,
        Reason::Pending,
        Reason::FreshnessExceeded,
        Reason::TokenInvalid,
        Reason::TokenExpired,
        Reason::SessionRevoked,
        Reason::UnknownAction,
        Reason::Suspended,
        Reason::UnknownResource,
        Reason::Granted,
        Reason::StepUpRequired,
        Reason::ConditionFailed,
        Reason::NoGrant,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoSnapshot => "no_snapshot",
            Reason::InvalidRequest => "invalid_request",
            Reason::StaleSnapshot => "stale_snapshot",
            Reason::Pending => "pending",
            Reason::FreshnessExceeded => "freshness_exceeded",
            Reason::TokenInvalid => "token_invalid",
            Reason::TokenExpired => "token_expired",
            Reason::SessionRevoked => "session_revoked",
            Reason::UnknownAction => "unknown_action",
            Reason::Suspended => "suspended",
            Reason::UnknownResource => "unknown_resource",
            Reason::Granted => "granted",
            Reason::StepUpRequired => "step_up_required",
            Reason::ConditionFailed => "condition_failed",
            Reason::NoGrant => "no_grant",
        }
    }
}

/// Which assignment granted a decision, as dense ids of the index that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRef {
    /// The position of the assignment in the snapshot's assignment table.
    pub assignment: u32,
    /// The subject's id in the snapshot's subject table.
    pub subject: u32,
}

/// The result of a check. Small and `Copy`: the hot path allocates nothing.
/// [`crate::Evaluator::explain`] turns it into names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    pub epoch: Option<u64>,
    pub watermark: u64,
    pub tier: Option<Tier>,
    pub grant: Option<GrantRef>,
    /// For `step_up_required` and `condition_failed`: the failing conditions, and the
    /// comparisons among them that lacked their attribute, as masks of the deciding index's
    /// condition ids ([`crate::Evaluator::explain`] names them); 0 otherwise.
    pub conditions: u64,
    pub missing: u64,
}

impl Reason {
    /// Whether the reason is a refusal by conditions (its decision names them).
    pub fn is_conditional(self) -> bool {
        matches!(self, Reason::StepUpRequired | Reason::ConditionFailed)
    }
}

/// The grant of an allowed decision, by name: `path` runs from the subject to the principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView<'a> {
    pub principal: &'a str,
    pub role: &'a str,
    pub resource: &'a str,
    pub path: Vec<&'a str>,
    /// The assignment's condition, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<&'a str>,
}

/// A decision as its JSON object (docs/decisions.md, "What a decision explains").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionView<'a> {
    pub allowed: bool,
    pub reason: Reason,
    pub epoch: Option<u64>,
    pub watermark: u64,
    pub tier: Option<Tier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantView<'a>>,
    /// For `step_up_required` and `condition_failed`: the failing conditions, sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<&'a str>>,
    /// With `conditions`: the context attributes they lacked, sorted (possibly empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<&'a str>>,
    /// For a token check that passed gate 6: the subject the token names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    /// For a token check refused at gate 6: what was wrong (`signature`, `audience`, ...).
    #[serde(rename = "tokenError", skip_serializing_if = "Option::is_none")]
    pub token_error: Option<&'static str>,
}
