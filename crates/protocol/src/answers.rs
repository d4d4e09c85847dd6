//! The JSON answers every host gives, defined once (docs/http.md): errors, push answers, the
//! decisions of a batch, listings and the Worker's status. The Worker writes them, the publisher
//! and the tests read them, the npm package returns the same shapes.

use edge_authz::authority::Pushed;
use edge_authz::sync::Head;
use edge_authz::{DecisionView, DeltaOutcome, Error, Reason, Status, WatermarkApplied};
use serde::{Deserialize, Serialize};

/// A stable code and a message that says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<&Error> for ErrorBody {
    fn from(e: &Error) -> ErrorBody {
        ErrorBody::new(e.code(), e.to_string())
    }
}

/// An error answer: `{"error": {"code", "message"}}`, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    pub error: ErrorBody,
}

/// The HTTP status of a message or request the core refused (docs/http.md, "Errors").
pub fn http_status(e: &Error) -> u16 {
    match e {
        Error::BadSignature | Error::UnknownKey(_) => 401,
        Error::TenantMismatch { .. } => 403,
        Error::TooLarge { .. } => 413,
        Error::Rollback { .. }
        | Error::EpochGap { .. }
        | Error::EpochConflict(_)
        | Error::AlreadyApplied(_) => 409,
        Error::Refused { reason, .. } => match reason {
            Reason::InvalidRequest | Reason::UnknownAction => 400,
            _ => 503,
        },
        Error::InvalidKey(_) | Error::WrongKeyKind { .. } | Error::PreviewMode => 500,
        _ => 400,
    }
}

/// What a delta carried by a watermark did: applied, already held (`applied: false` alone),
/// or skipped with the reason (the watermark still took effect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedDelta {
    pub applied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl From<&DeltaOutcome> for CarriedDelta {
    fn from(d: &DeltaOutcome) -> CarriedDelta {
        match d {
            DeltaOutcome::Applied => CarriedDelta {
                applied: true,
                error: None,
            },
            DeltaOutcome::AlreadyApplied => CarriedDelta {
                applied: false,
                error: None,
            },
            DeltaOutcome::Skipped(e) => CarriedDelta {
                applied: false,
                error: Some(ErrorBody::from(e)),
            },
        }
    }
}

/// The answer to an accepted push: a snapshot `{epoch}`, a delta `{epoch, applied}`, a
/// watermark `{watermark, epoch, delta?}` (its epoch `null` before any snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PushAnswer {
    Watermark {
        watermark: u64,
        /// Present, and `null` before any snapshot.
        #[serde(deserialize_with = "present")]
        epoch: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delta: Option<CarriedDelta>,
    },
    Delta {
        epoch: u64,
        applied: bool,
    },
    Snapshot {
        epoch: u64,
    },
}

/// A field that must be present, even when it is `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<u64>::deserialize(d)
}

impl From<&Pushed> for PushAnswer {
    fn from(p: &Pushed) -> PushAnswer {
        match p {
            Pushed::Snapshot(a) => PushAnswer::Snapshot { epoch: a.epoch },
            Pushed::Delta(a) => PushAnswer::Delta {
                epoch: a.epoch,
                applied: a.applied,
            },
            Pushed::Watermark(w) => PushAnswer::from(w),
        }
    }
}

impl From<&WatermarkApplied> for PushAnswer {
    fn from(w: &WatermarkApplied) -> PushAnswer {
        PushAnswer::Watermark {
            watermark: w.watermark,
            epoch: w.epoch,
            delta: w.delta.as_ref().map(CarriedDelta::from),
        }
    }
}

impl PushAnswer {
    /// Where the answering edge stands after the push, as far as the answer says (a snapshot
    /// or delta answer does not give the watermark: 0 there means unknown).
    pub fn head(&self) -> Head {
        match *self {
            PushAnswer::Watermark {
                watermark, epoch, ..
            } => Head {
                epoch,
                watermark,
                confirmed_at: None,
            },
            PushAnswer::Delta { epoch, .. } | PushAnswer::Snapshot { epoch } => Head {
                epoch: Some(epoch),
                watermark: 0,
                confirmed_at: None,
            },
        }
    }
}

/// The answer to a batch: `{"decisions": [...]}`, in the order of the requests.
#[derive(Debug, Clone, Serialize)]
pub struct Decisions<'a> {
    pub decisions: Vec<DecisionView<'a>>,
}

/// A listing: `{"resources": [...]}` or `{"subjects": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Listing {
    Resources(Vec<String>),
    Subjects(Vec<String>),
}

/// `GET /health`: `{"ok": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub ok: bool,
}

/// The Worker's status: the evaluator's [`Status`] of the answering isolate, the authority's
/// head (null when the authority could not be reached, with `authorityError`) and what the
/// isolate knows of itself.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeStatus {
    #[serde(flatten)]
    pub status: Status,
    pub authority: Option<Head>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority_error: Option<ErrorBody>,
    pub edge: Isolate,
}

/// One isolate's view of itself, in [`EdgeStatus`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Isolate {
    /// How long ago the watermark was last confirmed with the authority.
    pub confirmed_ago_ms: Option<u64>,
    /// The isolate's whole wasm linear memory (it only grows): what counts against the
    /// isolate's memory limit with the JavaScript heap.
    pub wasm_memory_bytes: Option<f64>,
    pub decisions: Counted,
    /// How long a confirmation is reused per tier (`high`: never).
    pub reuse_ms: ReuseMs,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Counted {
    pub allowed: u64,
    pub denied: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReuseMs {
    pub high: u64,
    pub standard: u64,
    pub low: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn push_answers_read_back_as_written() {
        let answers = [
            (PushAnswer::Snapshot { epoch: 3 }, json!({"epoch": 3})),
            (
                PushAnswer::Delta {
                    epoch: 4,
                    applied: false,
                },
                json!({"epoch": 4, "applied": false}),
            ),
            (
                PushAnswer::Watermark {
                    watermark: 5,
                    epoch: None,
                    delta: None,
                },
                json!({"watermark": 5, "epoch": null}),
            ),
            (
                PushAnswer::Watermark {
                    watermark: 5,
                    epoch: Some(4),
                    delta: Some(CarriedDelta {
                        applied: false,
                        error: Some(ErrorBody::new("epoch_gap", "gap")),
                    }),
                },
                json!({"watermark": 5, "epoch": 4,
                       "delta": {"applied": false, "error": {"code": "epoch_gap", "message": "gap"}}}),
            ),
        ];
        for (answer, text) in answers {
            assert_eq!(serde_json::to_value(&answer).unwrap(), text);
            assert_eq!(serde_json::from_value::<PushAnswer>(text).unwrap(), answer);
        }
    }

    #[test]
    fn a_watermark_answer_without_its_epoch_is_not_read_as_another_kind() {
        // `{"watermark": 5}` lacks the epoch: it is no push answer at all.
        assert!(serde_json::from_value::<PushAnswer>(json!({"watermark": 5})).is_err());
        assert!(serde_json::from_value::<PushAnswer>(json!({"applied": true})).is_err());
    }

    #[test]
    fn listings_are_keyed_by_what_they_list() {
        let l = Listing::Subjects(vec!["user:a".into()]);
        assert_eq!(
            serde_json::to_value(&l).unwrap(),
            json!({"subjects": ["user:a"]})
        );
    }
}
