//! One edge seen from the publisher: pushes over HTTP(S) to the Worker's push endpoints, and the
//! catch-up that brings an edge from whatever it holds to the journal's latest epoch, reading
//! where it stands from its answers (each push answer carries the edge's epoch).

use std::collections::BTreeMap;
use std::time::Duration;

use edge_authz_protocol::{ErrorAnswer, PushAnswer};
use serde::Deserialize as _;
use serde_json::Value;

use super::store::Link;

/// Links are replayed instead of the snapshot while they weigh less than the snapshot or this.
const CHAIN_BYTES: usize = 64 * 1024;

/// Where an edge stands as its answers say: its epoch (`None`: it holds no snapshot) and its
/// watermark (push answers do not carry `confirmed_at`: always `None` here).
pub use edge_authz::sync::Head;
/// The kind of a pushed message; its route is `/v1/{tenant}/{kind}`.
pub use edge_authz::MessageKind as Kind;

/// An edge's head from its epoch and watermark.
pub fn edge_head(epoch: Option<u64>, watermark: u64) -> Head {
    Head {
        epoch,
        watermark,
        confirmed_at: None,
    }
}

/// What an edge answered to one push.
#[derive(Debug, Clone)]
pub enum Answer {
    Ok(Value),
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// 401: the edge wants a push token (its `PUSH_TOKEN`), and the one sent, if any, is not it.
    Unauthorized {
        token_sent: bool,
        message: String,
    },
    Unreachable(String),
}

impl Answer {
    /// What a failed answer means for the catch-up (a 200 here would be a caller's mistake).
    pub fn into_error(self) -> EdgeError {
        match self {
            Answer::Refused {
                status,
                code,
                message,
            } => EdgeError::Refused {
                status,
                code,
                message,
            },
            Answer::Unauthorized {
                token_sent,
                message,
            } => EdgeError::Unauthorized {
                token_sent,
                message,
            },
            Answer::Unreachable(m) => EdgeError::Unreachable(m),
            Answer::Ok(_) => EdgeError::Unreachable("200 where a failure was expected".into()),
        }
    }
}

/// Why a catch-up stopped short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeError {
    /// Network, timeout, 5xx: try again later.
    Unreachable(String),
    /// The edge refused a message (wrong key, another tenant, too large...): its configuration
    /// does not match this publisher's. Tried again later, reported every time.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// 401: the edge's `PUSH_TOKEN` is set and this publisher sent no token (`token_sent`
    /// false) or another one. A configuration error: tried again later, slowly.
    Unauthorized { token_sent: bool, message: String },
    /// A 200 that does not say where the edge stands (a missing, mistyped or contradicting
    /// epoch or watermark): not an acknowledgement. Tried again later.
    BadAnswer(String),
    /// The edge holds a later epoch or watermark than this journal issued (`journal`, its
    /// latest epoch).
    Ahead { head: Head, journal: u64 },
    /// The edge holds this epoch with other content.
    Conflict(String),
}

impl EdgeError {
    /// The stable code of the `edge_error` event.
    pub fn code(&self) -> &str {
        match self {
            EdgeError::Refused { code, .. } => code.as_str(),
            EdgeError::Unauthorized { .. } => "unauthorized",
            EdgeError::BadAnswer(_) => "bad_answer",
            EdgeError::Ahead { head, journal } if head.epoch.is_none_or(|e| e <= *journal) => {
                "watermark_ahead"
            }
            EdgeError::Ahead { .. } => "edge_ahead",
            EdgeError::Conflict(_) => "epoch_conflict",
            EdgeError::Unreachable(_) => "unreachable",
        }
    }
}

impl std::fmt::Display for EdgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EdgeError::Unreachable(m) => write!(f, "unreachable: {m}"),
            EdgeError::Refused {
                status,
                code,
                message,
            } => write!(f, "refused ({status} {code}): {message}"),
            EdgeError::Unauthorized {
                token_sent,
                message,
            } => {
                let what = if *token_sent {
                    "the edge refused the push token sent; check that --push-token-file (or EDGE_AUTHZ_PUSH_TOKEN) holds the edge's PUSH_TOKEN"
                } else {
                    "the edge needs a push token (its PUSH_TOKEN) and none was sent; give it with --push-token-file FILE (or EDGE_AUTHZ_PUSH_TOKEN)"
                };
                match message.trim() {
                    "" => write!(f, "unauthorized (401): {what} [unauthorized]"),
                    m => write!(f, "unauthorized (401 {m:.200}): {what} [unauthorized]"),
                }
            }
            EdgeError::BadAnswer(m) => write!(f, "{m} [bad_answer]"),
            EdgeError::Ahead { head, journal } if head.epoch.is_none_or(|e| e <= *journal) => {
                write!(
                    f,
                    "the edge holds watermark {}, ahead of this journal's latest epoch {journal}: it refuses every epoch below it (run `publish --recover-watermark`) [watermark_ahead]",
                    head.watermark
                )
            }
            EdgeError::Ahead { head, .. } => write!(
                f,
                "the edge holds epoch {} and watermark {}, ahead of this journal (another publisher, or a lost journal) [edge_ahead]",
                head.epoch.map_or("none".to_string(), |e| e.to_string()),
                head.watermark
            ),
            EdgeError::Conflict(m) => write!(f, "{m} [epoch_conflict]"),
        }
    }
}

/// The token the edges' push endpoints may require (`PUSH_TOKEN`), sent as
/// `Authorization: Bearer <token>`. Never printed: its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct PushToken(String);

impl PushToken {
    /// The token in `text` (a file's content, an environment variable's value), trimmed:
    /// `None` when empty; an error (that does not show the token) when it is not one line of
    /// visible ASCII, which is all an HTTP header carries.
    pub fn parse(text: &str) -> Result<Option<PushToken>, String> {
        let token = text.trim();
        if token.is_empty() {
            return Ok(None);
        }
        if token.lines().count() > 1 {
            return Err("holds more than one line (the token is one line)".into());
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "holds characters a token cannot have (only visible ASCII, no spaces)".into(),
            );
        }
        Ok(Some(PushToken(token.to_string())))
    }
}

impl std::fmt::Debug for PushToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushToken(..)")
    }
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    tenant: String,
    /// `Bearer <token>`, when a push token was given.
    authorization: Option<String>,
}

impl Client {
    pub fn new(url: &str, tenant: &str, timeout: Duration, token: Option<&PushToken>) -> Client {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(3))))
            .http_status_as_error(false)
            .max_redirects(0)
            .build();
        Client {
            agent: config.into(),
            base: url.trim_end_matches('/').to_string(),
            tenant: tenant.to_string(),
            authorization: token.map(|t| format!("Bearer {}", t.0)),
        }
    }

    pub fn push(&self, kind: Kind, bytes: &[u8]) -> Answer {
        let url = format!("{}/v1/{}/{}", self.base, self.tenant, kind.as_str());
        let mut request = match kind {
            Kind::Snapshot => self.agent.put(&url),
            _ => self.agent.post(&url),
        }
        .header("content-type", "application/msgpack");
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        let sent = request.send(bytes);
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return Answer::Unreachable(e.to_string()),
        };
        let status = resp.status().as_u16();
        let text = match resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
        {
            Ok(t) => t,
            Err(e) => return Answer::Unreachable(format!("the answer could not be read: {e}")),
        };
        if status == 200 {
            return match serde_json::from_str::<Value>(&text) {
                Ok(v) => Answer::Ok(v),
                Err(_) => Answer::Unreachable(format!("200 without a JSON body: {text:.200}")),
            };
        }
        // The Worker's error body, `{"error": {"code", "message"}}`, if this is one.
        let err = serde_json::from_str::<ErrorAnswer>(&text)
            .ok()
            .map(|a| a.error);
        // A 401 `unauthorized` (the Worker's push token check), or a 401 without the Worker's
        // error body (a gateway in front of it): credentials. Other 401s (`bad_signature`,
        // `unknown_key`) judge the message, not the caller.
        if status == 401 && err.as_ref().is_none_or(|e| e.code == "unauthorized") {
            let message = match err {
                Some(e) => e.message,
                None => format!("{:.200}", text.trim()),
            };
            return Answer::Unauthorized {
                token_sent: self.authorization.is_some(),
                message,
            };
        }
        match err {
            Some(e) if status < 500 => Answer::Refused {
                status,
                code: e.code,
                message: e.message,
            },
            _ => Answer::Unreachable(format!("{status}: {:.200}", text.trim())),
        }
    }
}

/// What one catch-up needs: the journal's latest epoch and watermark, its snapshot, the recent
/// links, and a fresh heartbeat (a bare watermark message at the journal's watermark).
pub struct Plan<'a> {
    pub epoch: u64,
    pub watermark: u64,
    pub snapshot: Snapshot<'a>,
    pub chain: &'a BTreeMap<u64, Link>,
    pub heartbeat: &'a [u8],
}

/// The latest epoch's snapshot, signed the first time an edge needs it (most epochs reach every
/// edge as a delta, and are never signed whole).
#[derive(Clone, Copy)]
pub struct Snapshot<'a> {
    pub signed: &'a std::sync::OnceLock<Vec<u8>>,
    /// Its size when not yet signed (the last snapshot's): what the chain is weighed against.
    pub size_hint: usize,
    pub sign: &'a (dyn Fn() -> Vec<u8> + Sync),
}

impl<'a> Snapshot<'a> {
    pub fn len(&self) -> usize {
        self.signed.get().map_or(self.size_hint, Vec::len)
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.signed.get_or_init(self.sign)
    }
}

/// One message an edge accepted.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub kind: Kind,
    /// A bare watermark at the journal's watermark (a probe, a heartbeat).
    pub heartbeat: bool,
    pub bytes: usize,
    pub head: Head,
}

pub struct Outcome {
    pub head: Option<Head>,
    pub pushed: Vec<Pushed>,
    pub error: Option<EdgeError>,
}

/// The answer as the push answer it must be (the protocol crate's `PushAnswer`), if it is one.
fn typed(v: &Value) -> Option<PushAnswer> {
    PushAnswer::deserialize(v).ok()
}

fn bad(what: &str, v: &Value) -> EdgeError {
    let text = v.to_string();
    EdgeError::BadAnswer(format!(
        "the answer to {what} does not say where the edge stands: {text:.200}"
    ))
}

/// The edge's head after it accepted a snapshot at `epoch`: its answer must be `{epoch}`, that
/// epoch (the watermark is what it was).
pub fn snapshot_answer(v: &Value, epoch: u64, watermark: u64) -> Result<Head, EdgeError> {
    match typed(v) {
        Some(PushAnswer::Snapshot { epoch: e }) if e == epoch => Ok(edge_head(Some(e), watermark)),
        _ => Err(bad(&format!("a snapshot at epoch {epoch}"), v)),
    }
}

/// The edge's epoch after it accepted a delta to `epoch`: its answer must be `{epoch, applied}`
/// with that epoch (applied or already held).
pub fn delta_answer(v: &Value, epoch: u64) -> Result<u64, EdgeError> {
    match typed(v) {
        Some(PushAnswer::Delta { epoch: e, .. }) if e == epoch => Ok(e),
        _ => Err(bad(&format!("a delta to epoch {epoch}"), v)),
    }
}

/// The edge's head after it accepted a watermark message at `watermark`: its answer must be
/// `{watermark, epoch}`, the watermark at least the one pushed (it only rises) and the epoch a
/// number or null (no snapshot yet). Also says whether a carried delta was skipped.
pub fn watermark_answer(v: &Value, watermark: u64) -> Result<(Head, bool), EdgeError> {
    match typed(v) {
        Some(PushAnswer::Watermark {
            watermark: w,
            epoch,
            delta,
        }) if w >= watermark => {
            let skipped = delta.is_some_and(|d| d.error.is_some());
            Ok((edge_head(epoch, w), skipped))
        }
        _ => Err(bad(&format!("a watermark at {watermark}"), v)),
    }
}

/// Brings one edge to the plan's epoch and watermark, starting from what the publisher believes
/// it holds (`None`: unknown, so it first sends the heartbeat, whose answer says). With
/// `heartbeat`, the edge gets a watermark message even when it is already caught up: a heartbeat
/// unless a watermark went out anyway (snapshots and deltas are answered without the edge's
/// watermark, so this is also how a belief is checked against the edge's own). `after_push` runs
/// after every accepted message (the test hook that pauses a publisher mid-push).
pub fn advance(
    client: &Client,
    plan: &Plan<'_>,
    mut head: Option<Head>,
    mut heartbeat: bool,
    after_push: &dyn Fn(),
) -> Outcome {
    let mut pushed = Vec::new();
    let mut force_snapshot = false;
    let mut probes = 0;
    let stop = |head, pushed, error| Outcome {
        head,
        pushed,
        error: Some(error),
    };
    // Every link, a snapshot, a heartbeat, and a few re-probes: never more.
    for _ in 0..plan.chain.len() + 8 {
        let Some(h) = head else {
            probes += 1;
            if probes > 2 {
                break;
            }
            match client.push(Kind::Watermark, plan.heartbeat) {
                Answer::Ok(v) => {
                    let h = match watermark_answer(&v, plan.watermark) {
                        Ok((h, _)) => h,
                        Err(e) => return stop(head, pushed, e),
                    };
                    head = Some(h);
                    heartbeat = false;
                    pushed.push(Pushed {
                        kind: Kind::Watermark,
                        heartbeat: true,
                        bytes: plan.heartbeat.len(),
                        head: h,
                    });
                    after_push();
                    continue;
                }
                failed => return stop(head, pushed, failed.into_error()),
            }
        };
        if h.epoch.is_some_and(|e| e > plan.epoch) || h.watermark > plan.epoch {
            let ahead = EdgeError::Ahead {
                head: h,
                journal: plan.epoch,
            };
            return stop(head, pushed, ahead);
        }
        let behind_on_revocation = h.watermark < plan.watermark;
        if h.epoch == Some(plan.epoch) && !behind_on_revocation && !heartbeat {
            return Outcome {
                head,
                pushed,
                error: None,
            };
        }
        // Which message next: the chain's next link when the whole rest of the chain is at hand
        // and smaller than the snapshot; a heartbeat first when the edge misses a revocation the
        // next link does not carry (so it fails closed at once); else the snapshot.
        let next = h.epoch.map(|e| e + 1);
        let rest: Option<Vec<&Link>> = next
            .filter(|n| *n <= plan.epoch)
            .map(|n| (n..=plan.epoch).map(|e| plan.chain.get(&e)).collect())
            .unwrap_or(None);
        let link = rest
            .filter(|r| {
                let bytes: usize = r.iter().map(|l| l.bytes.len()).sum();
                !force_snapshot && bytes <= plan.snapshot.len().max(CHAIN_BYTES)
            })
            .and_then(|r| r.first().copied());
        let carries_watermark = link.is_some_and(|l| l.revokes && l.epoch >= plan.watermark);
        // What goes out, and the epoch (delta, snapshot) or watermark it carries.
        let (kind, bytes, carries) =
            if h.epoch == Some(plan.epoch) || (behind_on_revocation && !carries_watermark) {
                heartbeat = false;
                (Kind::Watermark, plan.heartbeat, plan.watermark)
            } else if let Some(l) = link {
                let kind = if l.revokes {
                    Kind::Watermark
                } else {
                    Kind::Delta
                };
                (kind, l.bytes.as_slice(), l.epoch)
            } else {
                (Kind::Snapshot, plan.snapshot.bytes(), plan.epoch)
            };
        match client.push(kind, bytes) {
            Answer::Ok(v) => {
                let before = h;
                // Only an answer that says where the edge now stands acknowledges the push.
                let read = match kind {
                    Kind::Snapshot => snapshot_answer(&v, carries, h.watermark),
                    Kind::Delta => {
                        delta_answer(&v, carries).map(|e| edge_head(Some(e), h.watermark))
                    }
                    Kind::Watermark => watermark_answer(&v, carries).map(|(h, skipped)| {
                        force_snapshot |= skipped;
                        h
                    }),
                };
                let h = match read {
                    Ok(h) => h,
                    Err(e) => return stop(head, pushed, e),
                };
                // A watermark's answer tells the edge's watermark (and renews its confirmation):
                // no heartbeat is needed after it.
                if kind == Kind::Watermark {
                    heartbeat = false;
                }
                // A link that did not move the edge: it is not where we thought. Snapshot.
                if kind != Kind::Snapshot && bytes != plan.heartbeat && h.epoch == before.epoch {
                    force_snapshot = true;
                }
                if kind == Kind::Snapshot {
                    force_snapshot = false;
                }
                head = Some(h);
                pushed.push(Pushed {
                    kind,
                    heartbeat: kind == Kind::Watermark && bytes == plan.heartbeat,
                    bytes: bytes.len(),
                    head: h,
                });
                after_push();
            }
            Answer::Refused {
                status: 409,
                code,
                message,
            } => match (kind, code.as_str()) {
                (Kind::Snapshot, "already_applied") => {
                    head = Some(Head {
                        epoch: Some(plan.epoch),
                        ..h
                    });
                }
                (Kind::Snapshot, "epoch_conflict") => {
                    return stop(
                        head,
                        pushed,
                        EdgeError::Conflict(format!(
                            "the edge holds epoch {} with other content: {message}",
                            plan.epoch
                        )),
                    )
                }
                // Not where we thought: ask again (a heartbeat's answer says where it is).
                (_, "rollback") => head = None,
                _ => force_snapshot = true,
            },
            failed => return stop(head, pushed, failed.into_error()),
        }
    }
    let error = EdgeError::Unreachable("the edge did not converge on the journal's epoch".into());
    stop(head, pushed, error)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{delta_answer, snapshot_answer, watermark_answer, EdgeError, PushToken};

    fn is_bad<T: std::fmt::Debug>(r: Result<T, EdgeError>) -> bool {
        matches!(r, Err(EdgeError::BadAnswer(_)))
    }

    #[test]
    fn only_typed_answers_acknowledge() {
        let head = super::edge_head;
        assert_eq!(
            snapshot_answer(&json!({"epoch": 7}), 7, 3),
            Ok(head(Some(7), 3))
        );
        for v in [
            json!({}),
            json!({"epoch": 6}),
            json!({"epoch": "7"}),
            json!([7]),
        ] {
            assert!(is_bad(snapshot_answer(&v, 7, 3)), "{v}");
        }
        assert_eq!(
            delta_answer(&json!({"epoch": 8, "applied": false}), 8),
            Ok(8)
        );
        for v in [
            json!({}),
            json!({"epoch": 8}),
            json!({"epoch": 9, "applied": true}),
        ] {
            assert!(is_bad(delta_answer(&v, 8)), "{v}");
        }
        assert_eq!(
            watermark_answer(&json!({"watermark": 5, "epoch": null}), 4),
            Ok((head(None, 5), false))
        );
        assert_eq!(
            watermark_answer(
                &json!({"watermark": 5, "epoch": 4,
                        "delta": {"applied": false, "error": {"code": "epoch_gap", "message": "m"}}}),
                5
            ),
            Ok((head(Some(4), 5), true))
        );
        for v in [
            json!({}),
            json!({"watermark": 5}),
            json!({"watermark": 3, "epoch": 5}),
            json!({"watermark": 5, "epoch": "5"}),
            json!({"epoch": 5}),
            json!({"watermark": 5, "epoch": 4, "delta": {"applied": false, "error": {}}}),
        ] {
            assert!(is_bad(watermark_answer(&v, 4)), "{v}");
        }
    }

    #[test]
    fn an_edge_ahead_by_its_watermark_is_told_apart() {
        let ahead = |epoch, watermark| EdgeError::Ahead {
            head: super::edge_head(epoch, watermark),
            journal: 10,
        };
        assert_eq!(ahead(Some(10), 500).code(), "watermark_ahead");
        assert_eq!(ahead(None, 500).code(), "watermark_ahead");
        assert_eq!(ahead(Some(11), 0).code(), "edge_ahead");
        assert!(ahead(Some(3), 500)
            .to_string()
            .contains("--recover-watermark"));
    }

    #[test]
    fn a_push_token_is_one_trimmed_line_never_shown() {
        let token = PushToken("s3cret-token_1.2~".into());
        assert_eq!(
            PushToken::parse("  s3cret-token_1.2~\n"),
            Ok(Some(token.clone()))
        );
        assert_eq!(format!("{token:?}"), "PushToken(..)");
        assert_eq!(PushToken::parse(" \n\t"), Ok(None));
        assert_eq!(PushToken::parse(""), Ok(None));
        for bad in ["one\ntwo", "with space", "t\u{e9}l\u{e9}", "nul\0"] {
            let parsed = PushToken::parse(bad);
            assert!(parsed.is_err(), "{bad:?} is taken");
            assert!(parsed.is_err_and(|why| !why.contains(bad)));
        }
    }

    #[test]
    fn unauthorized_says_what_to_do() {
        let none = EdgeError::Unauthorized {
            token_sent: false,
            message: "this endpoint needs `Authorization: Bearer <PUSH_TOKEN>`".into(),
        };
        assert_eq!(none.code(), "unauthorized");
        assert!(none.to_string().contains("--push-token-file"));
        assert!(none.to_string().contains("none was sent"));
        let wrong = EdgeError::Unauthorized {
            token_sent: true,
            message: String::new(),
        };
        assert_eq!(wrong.code(), "unauthorized");
        assert!(wrong.to_string().contains("refused the push token"));
    }
}
