//! The sync exchange between an authority and its replicas (docs/formats.md, "Sync frames"): what a
//! replica says it holds, the authority's head, and the messages that bring the replica to it,
//! each framed by its length (u32, little-endian). The Durable Object writes frames; Worker
//! isolates and other replicas read them.

use edge_authz::sync::Head;

/// The messages, each framed by its length. A message too long for a u32 cannot be framed
/// (no signed message is: the core refuses messages past its size limit long before).
pub fn encode<'m>(messages: impl IntoIterator<Item = &'m [u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for m in messages {
        let len = u32::try_from(m.len()).unwrap_or(u32::MAX);
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(m);
    }
    body
}

/// The messages of a framed body, in order. A truncated last frame ends the sequence: the
/// messages before it are still given, and the replica's own checks (it verifies every
/// message, and judges whether it reached the head) decide what the answer was worth.
pub fn decode(body: &[u8]) -> Frames<'_> {
    Frames { rest: body }
}

/// The messages of a framed body ([`decode`]).
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, tail) = self.rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        match tail.split_at_checked(len) {
            Some((msg, tail)) => {
                self.rest = tail;
                Some(msg)
            }
            None => {
                self.rest = &[];
                None
            }
        }
    }
}

/// The query a replica sends to ask for what it lacks: `tenant=T`, and what it holds
/// (`&epoch=E&watermark=W&confirmed=C`, each when known). Without a holder (`None`), the
/// authority answers everything from its snapshot on.
pub fn sync_query(tenant: &str, holder: Option<Head>) -> String {
    let mut q = format!("tenant={tenant}");
    if let Some(h) = holder {
        if let Some(e) = h.epoch {
            q.push_str(&format!("&epoch={e}"));
        }
        q.push_str(&format!("&watermark={}", h.watermark));
        if let Some(c) = h.confirmed_at {
            q.push_str(&format!("&confirmed={c}"));
        }
    }
    q
}

/// The holder a sync query names ([`sync_query`]), from its parameters read by `param`: none
/// without a watermark (a new replica, which needs everything). Unreadable numbers count as
/// absent.
pub fn holder_of(param: impl Fn(&str) -> Option<String>) -> Option<Head> {
    let num = |n: &str| param(n).and_then(|v| v.parse::<u64>().ok());
    num("watermark").map(|watermark| Head {
        epoch: num("epoch"),
        watermark,
        confirmed_at: num("confirmed"),
    })
}

/// The header that carries the authority's head (JSON) on a sync answer.
pub const HEAD_HEADER: &str = "x-head";

/// The head as the header's value.
pub fn head_header(head: &Head) -> String {
    serde_json::to_string(head).unwrap_or_default()
}

/// The head a header value names, if it is one.
pub fn read_head_header(value: &str) -> Option<Head> {
    serde_json::from_str(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_in_order_and_a_truncated_one_ends_them() {
        let msgs: [&[u8]; 3] = [b"one", b"", b"three"];
        let body = encode(msgs);
        assert_eq!(decode(&body).collect::<Vec<_>>(), msgs);
        let cut = &body[..body.len() - 1];
        assert_eq!(decode(cut).collect::<Vec<_>>(), &msgs[..2]);
        assert_eq!(decode(&body[..3]).count(), 0);
    }

    #[test]
    fn a_sync_query_names_its_holder() {
        let h = Head {
            epoch: Some(3),
            watermark: 2,
            confirmed_at: Some(9),
        };
        let q = sync_query("acme", Some(h));
        assert_eq!(q, "tenant=acme&epoch=3&watermark=2&confirmed=9");
        let param = |n: &str| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{n}=")).map(str::to_string))
        };
        assert_eq!(holder_of(param), Some(h));
        assert_eq!(holder_of(|_| None), None);
        assert_eq!(sync_query("acme", None), "tenant=acme");
        assert_eq!(read_head_header(&head_header(&h)), Some(h));
    }
}
