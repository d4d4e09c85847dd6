//! The two public error types: [`ModelError`] for compiling a model, [`Error`] for everything an
//! evaluator or the origin functions can reject. Every variant has a stable snake_case `code`.

use std::fmt;

/// What is wrong with a model; the stable detail code of an `invalid_model` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelErrorKind {
    /// Not JSON, or JSON of the wrong shape (wrong type, missing field).
    InvalidJson,
    /// A field the model format does not have.
    UnknownField,
    /// `version` is not one this build reads.
    UnsupportedVersion,
    /// A tenant, id, action or role name that breaks the identifier rules.
    MalformedId,
    /// The same id (or the same membership or assignment) twice.
    DuplicateId,
    /// A role names an action that is not declared.
    UndeclaredAction,
    /// An assignment names a role that is not declared.
    UndeclaredRole,
    /// An assignment names a resource that is not declared, or a resource's parent is undeclared.
    UndeclaredResource,
    /// A membership's `group` is not of type `group`.
    NotAGroup,
    /// Resource parents form a cycle.
    ResourceCycle,
    /// Group memberships form a cycle.
    GroupCycle,
    /// A limit (count, depth, size) is exceeded.
    LimitExceeded,
    /// Any other out-of-range value (a freshness bound of zero, a malformed CIDR or time, a
    /// condition's value of the wrong type, ...).
    InvalidValue,
    /// A condition, assignment or action names a condition that is not declared.
    UndeclaredCondition,
    /// Conditions refer to each other in a cycle.
    ConditionCycle,
}

impl ModelErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::UnknownField => "unknown_field",
            Self::UnsupportedVersion => "unsupported_model_version",
            Self::MalformedId => "malformed_id",
            Self::DuplicateId => "duplicate_id",
            Self::UndeclaredAction => "undeclared_action",
            Self::UndeclaredRole => "undeclared_role",
            Self::UndeclaredResource => "undeclared_resource",
            Self::NotAGroup => "not_a_group",
            Self::ResourceCycle => "resource_cycle",
            Self::GroupCycle => "group_cycle",
            Self::LimitExceeded => "limit_exceeded",
            Self::InvalidValue => "invalid_value",
            Self::UndeclaredCondition => "undeclared_condition",
            Self::ConditionCycle => "condition_cycle",
        }
    }
}

/// A model rejection: what (`kind`), where (`at`, a JSON path such as `assignments[3].role` or an
/// id), and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    pub kind: ModelErrorKind,
    pub at: String,
    pub message: String,
}

impl ModelError {
    pub fn new(kind: ModelErrorKind, at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            at: at.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "at `{}`: {}", self.at, self.message)
        }
    }
}

impl std::error::Error for ModelError {}

/// Everything an evaluator, a decoder or the origin functions can reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid model ({code}): {0}", code = .0.kind.code())]
    InvalidModel(ModelError),
    #[error("input is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("not an edge-authz message: wrong magic bytes")]
    BadMagic,
    #[error(
        "message format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("expected a {expected} message, got a {found} message")]
    WrongKind {
        expected: &'static str,
        found: &'static str,
    },
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("{what} has {count} entries, over the limit of {limit}")]
    LimitExceeded {
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("the signature does not verify")]
    BadSignature,
    #[error("key `{0}` is not a trusted key")]
    UnknownKey(String),
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("the message is for tenant `{found}`, this evaluator serves `{expected}`")]
    TenantMismatch { expected: String, found: String },
    #[error("epoch {incoming} is older than the held epoch {held}")]
    Rollback { incoming: u64, held: u64 },
    #[error("the delta starts at epoch {base}, {}", match held { Some(h) => format!("the held epoch is {h}"), None => "no snapshot is held".to_string() })]
    EpochGap { base: u64, held: Option<u64> },
    #[error("epoch {0} is already held with different content")]
    EpochConflict(u64),
    #[error("epoch {0} is already held with this content")]
    AlreadyApplied(u64),
    #[error("the content does not match the signed digest ({0})")]
    DigestMismatch(&'static str),
    #[error("invalid snapshot: {0}")]
    InvalidSnapshot(String),
    #[error("invalid delta: {0}")]
    InvalidDelta(String),
    #[error("a preview evaluator takes no signed messages; create a signed evaluator instead")]
    PreviewMode,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("the message was issued at {issued_at}, {ahead} ms ahead of this edge's clock ({now}), past the tolerance of {tolerance} ms: the origin's clock or the edge's is wrong")]
    ClockSkew {
        issued_at: u64,
        now: u64,
        ahead: u64,
        tolerance: u64,
    },
    #[error("watermark {watermark} is over the largest watermark an edge follows, {limit}")]
    WatermarkTooHigh { watermark: u64, limit: u64 },
    /// A listing refused by one of the decision gates 1 to 5 and 7; the code is the gate's reason.
    #[error("{message}")]
    Refused {
        reason: crate::Reason,
        message: String,
    },
    // Last: a variant added in the middle shifts every later discriminant, which costs the npm
    // package's wasm about 100 bytes gzipped.
    /// A typed key of the other kind: a secret key where a public key is expected, or the reverse.
    #[error("{}", if *public_expected {
        "a secret key was given where a public key is expected: never give a secret key to an edge"
    } else {
        "a public key was given where a secret key is expected: sign with the secret key"
    })]
    WrongKeyKind { public_expected: bool },
}

impl Error {
    /// The stable snake_case code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidModel(_) => "invalid_model",
            Self::TooLarge { .. } => "too_large",
            Self::BadMagic => "bad_magic",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::WrongKind { .. } => "wrong_kind",
            Self::Malformed { .. } => "malformed",
            Self::LimitExceeded { .. } => "limit_exceeded",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey(_) => "unknown_key",
            Self::InvalidKey(_) => "invalid_key",
            Self::TenantMismatch { .. } => "tenant_mismatch",
            Self::Rollback { .. } => "rollback",
            Self::EpochGap { .. } => "epoch_gap",
            Self::EpochConflict(_) => "epoch_conflict",
            Self::AlreadyApplied(_) => "already_applied",
            Self::DigestMismatch(_) => "digest_mismatch",
            Self::InvalidSnapshot(_) => "invalid_snapshot",
            Self::InvalidDelta(_) => "invalid_delta",
            Self::PreviewMode => "preview_mode",
            Self::InvalidArgument(_) => "invalid_argument",
            Self::ClockSkew { .. } => "clock_skew",
            Self::WatermarkTooHigh { .. } => "watermark_too_high",
            Self::Refused { reason, .. } => reason.as_str(),
            Self::WrongKeyKind { .. } => "wrong_key_kind",
        }
    }

    /// For `invalid_model`, the detail code (`group_cycle`, `unknown_field`, ...).
    pub fn detail(&self) -> Option<&'static str> {
        match self {
            Self::InvalidModel(e) => Some(e.kind.code()),
            _ => None,
        }
    }
}

impl From<ModelError> for Error {
    fn from(e: ModelError) -> Self {
        Self::InvalidModel(e)
    }
}
