//! The feed: how a replica follows its authority (docs/formats.md, "Feed answers"). A replica
//! says what it holds ([`FeedQuery`]); the authority answers its head and the signed messages
//! that bring the replica there ([`FeedAnswer`], MessagePack). The Durable Object writes
//! answers; Worker isolates, the Worker's public feed and the npm package's `Replica` read them
//! with [`decode`].

use edge_authz::sync::Head;
use serde::{Deserialize, Serialize};

/// The most a public feed answer holds (bytes); past it, the answer stops early with `more`.
pub const MAX_ANSWER_BYTES: usize = 8 << 20;

/// The longest a feed request may wait for something newer (ms).
pub const MAX_WAIT_MS: u64 = 30_000;

/// The largest epoch, watermark or time a query may name (as JavaScript numbers hold exactly).
const MAX_NUMBER: u64 = (1 << 53) - 1;

/// What a feed answers: the authority's head, and the messages that bring the holder there, in
/// order (`more`: the answer stopped at its size limit; ask again from where they lead). The
/// authority is trusted for the order of the messages, never for their content: a replica
/// verifies each one again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedAnswer<'a> {
    pub head: Head,
    #[serde(borrow)]
    pub messages: Vec<&'a serde_bytes::Bytes>,
    #[serde(default)]
    pub more: bool,
}

impl<'a> FeedAnswer<'a> {
    /// The messages as byte slices.
    pub fn messages(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.messages.iter().map(|b| &b[..])
    }
}

/// The bytes of a feed answer: `head` and as many of `messages` as fit in `limit` bytes, in
/// order (`more` when some did not). `None` when not even the first fits: that message cannot
/// be served within the limit.
pub fn encode(head: Head, messages: &[&[u8]], limit: usize) -> Option<Vec<u8>> {
    // The map, the head and the array header take well under 128 bytes; each message adds at
    // most 5 bytes of header to its own.
    let mut size = 128usize;
    let mut fit = 0;
    for m in messages {
        size = size.saturating_add(m.len() + 5);
        if size > limit {
            break;
        }
        fit += 1;
    }
    if fit == 0 && !messages.is_empty() {
        return None;
    }
    let answer = FeedAnswer {
        head,
        messages: messages
            .iter()
            .take(fit)
            .map(|m| serde_bytes::Bytes::new(m))
            .collect(),
        more: fit < messages.len(),
    };
    rmp_serde::to_vec_named(&answer).ok()
}

/// Reads a feed answer; `None` when the bytes are not one (a map of `head`, `messages` and
/// `more`, in any order, `more` optional, nothing after it). Read with `rmp`'s primitives
/// rather than through serde: every host's wasm carries this, and the generic path costs tens
/// of kilobytes there.
pub fn decode(body: &[u8]) -> Option<FeedAnswer<'_>> {
    use rmp::decode::{read_array_len, read_bin_len, read_bool, read_map_len};
    let mut rd = body;
    let (mut head, mut messages, mut more) = (None, None, false);
    for _ in 0..read_map_len(&mut rd).ok()? {
        match key(&mut rd)? {
            b"head" => {
                let mut h = Head {
                    epoch: None,
                    watermark: 0,
                    confirmed_at: None,
                };
                let mut seen = 0u8;
                for _ in 0..read_map_len(&mut rd).ok()? {
                    match key(&mut rd)? {
                        b"epoch" => (h.epoch, seen) = (optional(&mut rd)?, seen | 1),
                        b"watermark" => (h.watermark, seen) = (number(&mut rd)?, seen | 2),
                        b"confirmedAt" => (h.confirmed_at, seen) = (optional(&mut rd)?, seen | 4),
                        _ => return None,
                    }
                }
                (seen == 7).then_some(())?;
                head = Some(h);
            }
            b"messages" => {
                let n = read_array_len(&mut rd).ok()? as usize;
                let mut out = Vec::with_capacity(n.min(rd.len()));
                for _ in 0..n {
                    let len = read_bin_len(&mut rd).ok()? as usize;
                    let (m, rest) = rd.split_at_checked(len)?;
                    out.push(serde_bytes::Bytes::new(m));
                    rd = rest;
                }
                messages = Some(out);
            }
            b"more" => more = read_bool(&mut rd).ok()?,
            _ => return None,
        }
    }
    rd.is_empty().then_some(())?;
    Some(FeedAnswer {
        head: head?,
        messages: messages?,
        more,
    })
}

/// A map key: a string's bytes.
fn key<'a>(rd: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = rmp::decode::read_str_len(rd).ok()? as usize;
    let (k, rest) = rd.split_at_checked(len)?;
    *rd = rest;
    Some(k)
}

fn number(rd: &mut &[u8]) -> Option<u64> {
    rmp::decode::read_int(rd).ok()
}

/// `nil` or a number.
fn optional(rd: &mut &[u8]) -> Option<Option<u64>> {
    if rd.first() == Some(&0xc0) {
        *rd = rd.get(1..)?;
        Some(None)
    } else {
        number(rd).map(Some)
    }
}

/// What a replica tells the feed it holds, and how long it will wait for something newer:
/// `after=EPOCH&watermark=W&confirmed=C&wait=MS`, each optional. Without `after` and
/// `watermark`, the replica holds nothing and the feed answers from the snapshot on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedQuery {
    pub after: Option<u64>,
    pub watermark: Option<u64>,
    pub confirmed: Option<u64>,
    pub wait_ms: u64,
}

impl FeedQuery {
    /// The query of a replica that holds `held` (`None`: nothing) and waits up to `wait_ms`.
    pub fn of(held: Option<Head>, wait_ms: u64) -> FeedQuery {
        FeedQuery {
            after: held.and_then(|h| h.epoch),
            watermark: held.map(|h| h.watermark),
            confirmed: held.and_then(|h| h.confirmed_at),
            wait_ms,
        }
    }

    /// The holder the query names, as the authority's `catch_up` takes it: a field it leaves
    /// out is one it lacks.
    pub fn holder(&self) -> Option<Head> {
        (self.after.is_some() || self.watermark.is_some()).then(|| Head {
            epoch: self.after,
            watermark: self.watermark.unwrap_or(0),
            confirmed_at: self.confirmed,
        })
    }

    /// Whether `head` holds something the replica lacks: a later epoch, or, when the query
    /// names them, a higher watermark or a later confirmation. A waiting request is answered
    /// as soon as this holds.
    pub fn is_behind(&self, head: &Head) -> bool {
        match self.holder() {
            None => head.epoch.is_some() || head.watermark > 0 || head.confirmed_at.is_some(),
            Some(_) => {
                head.epoch > self.after
                    || self.watermark.is_some_and(|w| head.watermark > w)
                    || self.confirmed.is_some_and(|c| head.confirmed_at > Some(c))
            }
        }
    }

    /// The query string (without `?`).
    pub fn to_query(&self) -> String {
        let mut parts = Vec::new();
        for (name, v) in [
            ("after", self.after),
            ("watermark", self.watermark),
            ("confirmed", self.confirmed),
        ] {
            if let Some(v) = v {
                parts.push(format!("{name}={v}"));
            }
        }
        if self.wait_ms > 0 {
            parts.push(format!("wait={}", self.wait_ms));
        }
        parts.join("&")
    }

    /// Reads a query from its parameters (`param`: a parameter's value, percent-decoded). A
    /// number that is not a whole number from 0 to 2^53 - 1, or a `wait` over
    /// [`MAX_WAIT_MS`], is refused with the parameter's name.
    pub fn parse(param: impl Fn(&str) -> Option<String>) -> Result<FeedQuery, String> {
        let num = |name: &str, max: u64| match param(name) {
            None => Ok(None),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n <= max && !v.starts_with('+') => Ok(Some(n)),
                _ => Err(format!("`{name}` must be a whole number from 0 to {max}")),
            },
        };
        Ok(FeedQuery {
            after: num("after", MAX_NUMBER)?,
            watermark: num("watermark", MAX_NUMBER)?,
            confirmed: num("confirmed", MAX_NUMBER)?,
            wait_ms: num("wait", MAX_WAIT_MS)?.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Head = Head {
        epoch: Some(3),
        watermark: 2,
        confirmed_at: Some(9),
    };

    #[test]
    fn an_answer_reads_back_and_stops_at_its_limit() {
        let msgs: [&[u8]; 3] = [b"one", b"", &[7u8; 300]];
        let body = encode(HEAD, &msgs, MAX_ANSWER_BYTES).unwrap();
        let a = decode(&body).unwrap();
        assert_eq!(a.head, HEAD);
        assert_eq!(a.messages().collect::<Vec<_>>(), msgs);
        assert!(!a.more);
        let cut = encode(HEAD, &msgs, 200).unwrap();
        let a = decode(&cut).unwrap();
        assert_eq!(a.messages().collect::<Vec<_>>(), &msgs[..2]);
        assert!(a.more);
        assert!(cut.len() <= 200);
        assert_eq!(encode(HEAD, &msgs[2..], 200), None);
        assert!(decode(&body[..body.len() - 1]).is_none());
        assert!(decode(b"").is_none());
        let empty = encode(HEAD, &[], 200).unwrap();
        assert_eq!(decode(&empty).unwrap().messages.len(), 0);
        // What serde reads, the hand reader reads too, and nothing more.
        assert_eq!(
            rmp_serde::from_slice::<FeedAnswer<'_>>(&body).ok(),
            decode(&body)
        );
        let mut trailing = body.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_none());
        let none = FeedAnswer {
            head: Head {
                epoch: None,
                watermark: 0,
                confirmed_at: None,
            },
            messages: Vec::new(),
            more: false,
        };
        let bytes = rmp_serde::to_vec_named(&none).unwrap();
        assert_eq!(decode(&bytes), Some(none));
    }

    #[test]
    fn a_query_names_its_holder_and_reads_back() {
        let q = FeedQuery::of(Some(HEAD), 25_000);
        assert_eq!(q.to_query(), "after=3&watermark=2&confirmed=9&wait=25000");
        let s = q.to_query();
        let param = |n: &str| {
            s.split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{n}=")).map(str::to_string))
        };
        assert_eq!(FeedQuery::parse(param), Ok(q));
        assert_eq!(q.holder(), Some(HEAD));
        assert_eq!(FeedQuery::of(None, 0).holder(), None);
        assert_eq!(FeedQuery::of(None, 0).to_query(), "");
        let only_after = FeedQuery {
            after: Some(3),
            ..FeedQuery::default()
        };
        assert_eq!(
            only_after.holder(),
            Some(Head {
                epoch: Some(3),
                watermark: 0,
                confirmed_at: None
            })
        );
        for (name, bad) in [
            ("wait", "30001"),
            ("after", "-1"),
            ("after", "1.5"),
            ("after", "+3"),
            ("watermark", "9007199254740992"),
            ("confirmed", "x"),
        ] {
            let p = |n: &str| (n == name).then(|| bad.to_string());
            assert!(FeedQuery::parse(p).is_err(), "{name}={bad}");
        }
    }

    #[test]
    fn a_holder_is_behind_a_head_that_moved_on() {
        let q = FeedQuery::of(Some(HEAD), 0);
        assert!(!q.is_behind(&HEAD));
        for moved in [
            Head {
                epoch: Some(4),
                ..HEAD
            },
            Head {
                watermark: 3,
                ..HEAD
            },
            Head {
                confirmed_at: Some(10),
                ..HEAD
            },
        ] {
            assert!(q.is_behind(&moved), "{moved:?}");
        }
        // Named only by its epoch, a holder waits for a later epoch alone.
        let only_after = FeedQuery {
            after: Some(3),
            ..FeedQuery::default()
        };
        assert!(!only_after.is_behind(&HEAD));
        assert!(FeedQuery::default().is_behind(&HEAD));
        assert!(!FeedQuery::default().is_behind(&Head {
            epoch: None,
            watermark: 0,
            confirmed_at: None
        }));
    }
}
