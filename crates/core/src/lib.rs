#![doc = include_str!("../README.md")]

pub mod authority;
pub mod condition;
mod content;
mod decision;
mod delta;
mod digest;
mod error;
mod evaluator;
mod id;
pub mod identity;
mod index;
mod keys;
mod model;
mod names;
mod origin;
mod patch;
mod state;
pub mod sync;
pub mod token;
mod unpack;
mod why;
mod wire;
#[cfg(feature = "workload")]
pub mod workload;

pub use content::{ConditionTables, Content};
pub use decision::{Decision, DecisionView, GrantRef, GrantView, Reason, Tier};
pub use delta::{apply_ops, diff, ConditionOps, DeltaOps, Diff};
pub use error::{Error, ModelError, ModelErrorKind};
pub use evaluator::{
    Applied, At, Counts, DeltaOutcome, Evaluator, Looked, Request, Status, TokenAnswer,
    TokenDecision, WatermarkApplied, MAX_CLOCK_SKEW_MS, MAX_EPOCH, MAX_WATERMARK,
};
pub use id::{id_type, is_valid_action_name, is_valid_id, is_valid_tenant};
pub use identity::{Alg, Identity, IdentityOps, Issuer, Jwk, Table};
pub use index::{Decided, Index};
pub use keys::{
    is_typed_key, key_id, KeyPair, PublicKey, SecretKey, PUBLIC_KEY_PREFIX, SECRET_KEY_PREFIX,
};
pub use model::{ActionDef, AssignmentDef, Compiled, MembershipDef, Model, ResourceDef};
pub use names::{Names, Resources};
pub use origin::{
    compile_snapshot, content_digest, diff_models, sign_watermark, DeltaOutput, Patch, Prepared,
};
pub use state::{shorten, AssignmentKey, Freshness, State, DEFAULT_FRESHNESS};
pub use why::{Miss, MissKind, Why};
pub use wire::{
    inspect, peek, sign_raw, sign_versioned, Inspection, Limits, MessageKind, Peeked,
    FORMAT_VERSION, MAGIC, MIN_FORMAT_VERSION, PEEK_BYTES,
};
