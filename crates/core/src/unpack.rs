//! Reading the signed payloads (docs/formats.md) from MessagePack with `rmp`'s primitives,
//! table by table, rather than through serde: every host's wasm carries this decoder, and
//! rmp-serde's generic path instantiates a full decoder for each type it reads (about 50 KB of
//! the package, gzipped). The encoder stays serde's (`rmp_serde`, structs as arrays); the tests
//! hold the two to the same bytes (`round_trips` below, the golden files, the hostile inputs).
//!
//! Strict: a struct is an array of exactly its fields (the last, conditions, optional), integers
//! must fit their type, strings must be UTF-8, and nothing may follow the payload.

use rmp::decode::{read_array_len, read_bin_len, read_bool, read_int, read_str_len};

use crate::content::{ConditionTables, Content};
use crate::delta::{ConditionOps, DeltaOps};
use crate::names::{Names, Resources};
use crate::wire::{DeltaPayload, SnapshotPayload, WatermarkPayload};
use crate::Error;

/// Caps what a claimed length may reserve before its elements are read (each takes a byte at
/// least, so a length is also capped by the bytes left).
const RESERVE_CAP: usize = 1 << 16;

/// A payload being read: the bytes left, and what it is (for errors).
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

type R<T> = Result<T, Error>;

impl<'a> Reader<'a> {
    fn fail(&self, detail: impl Into<String>) -> Error {
        Error::Malformed {
            what: self.what,
            detail: detail.into(),
        }
    }

    /// An array's length.
    fn array(&mut self) -> R<usize> {
        read_array_len(&mut self.rest)
            .map(|n| n as usize)
            .map_err(|_| self.fail("expected an array"))
    }

    /// An array of `n` elements (a tuple).
    fn tuple(&mut self, n: usize) -> R<()> {
        match self.array()? {
            len if len == n => Ok(()),
            len => Err(self.fail(format!("expected {n} elements, found {len}"))),
        }
    }

    /// The elements of an array, each read by `item`.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        let n = self.array()?;
        let mut out = Vec::with_capacity(n.min(self.rest.len()).min(RESERVE_CAP));
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }

    fn u64(&mut self) -> R<u64> {
        read_int::<u64, _>(&mut self.rest).map_err(|_| self.fail("expected an unsigned integer"))
    }

    fn u32(&mut self) -> R<u32> {
        let n = self.u64()?;
        u32::try_from(n).map_err(|_| self.fail(format!("{n} is out of range")))
    }

    fn u8(&mut self) -> R<u8> {
        let n = self.u64()?;
        u8::try_from(n).map_err(|_| self.fail(format!("{n} is out of range")))
    }

    fn bool(&mut self) -> R<bool> {
        read_bool(&mut self.rest).map_err(|_| self.fail("expected a boolean"))
    }

    fn take(&mut self, len: usize) -> R<&'a [u8]> {
        let (head, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or_else(|| self.fail("truncated"))?;
        self.rest = rest;
        Ok(head)
    }

    fn str(&mut self) -> R<&'a str> {
        let len = read_str_len(&mut self.rest).map_err(|_| self.fail("expected a string"))?;
        let bytes = self.take(len as usize)?;
        std::str::from_utf8(bytes).map_err(|_| self.fail("a string is not UTF-8"))
    }

    fn string(&mut self) -> R<String> {
        self.str().map(str::to_owned)
    }

    fn bin(&mut self) -> R<&'a [u8]> {
        let len = read_bin_len(&mut self.rest).map_err(|_| self.fail("expected bytes"))?;
        self.take(len as usize)
    }

    /// `nil` (then `None`), or what `value` reads.
    fn option<T>(&mut self, value: impl FnOnce(&mut Self) -> R<T>) -> R<Option<T>> {
        if self.rest.first() == Some(&0xc0) {
            self.rest = self.rest.get(1..).unwrap_or_default();
            Ok(None)
        } else {
            value(self).map(Some)
        }
    }

    /// A struct: an array of `required` fields, or of up to two more (its optional last
    /// fields). Returns how many of those are there.
    fn fields(&mut self, required: usize) -> R<usize> {
        match self.array()? {
            n if (required..=required + 2).contains(&n) => Ok(n - required),
            n => Err(self.fail(format!("expected {required} fields, found {n}"))),
        }
    }

    /// The identity part: its JSON text.
    fn identity(&mut self) -> R<crate::Identity> {
        let text = self.str()?;
        crate::Identity::from_text(text).map_err(|e| self.fail(format!("identity: {e}")))
    }

    fn freshness(&mut self) -> R<[u64; 3]> {
        self.tuple(3)?;
        Ok([self.u64()?, self.u64()?, self.u64()?])
    }

    fn strings(&mut self) -> R<Vec<String>> {
        self.list(Self::string)
    }

    fn string_pairs(&mut self) -> R<Vec<(String, String)>> {
        self.list(|r| {
            r.tuple(2)?;
            Ok((r.string()?, r.string()?))
        })
    }

    fn id_pairs(&mut self) -> R<Vec<(u32, u32)>> {
        self.list(|r| {
            r.tuple(2)?;
            Ok((r.u32()?, r.u32()?))
        })
    }

    fn names(&mut self) -> R<Names> {
        let n = self.array()?;
        let mut out = Names::new();
        for _ in 0..n {
            out.push(self.str()?);
        }
        out.shrink_to_fit();
        Ok(out)
    }

    fn resources(&mut self) -> R<Resources> {
        let n = self.array()?;
        let mut out = Resources::new();
        for _ in 0..n {
            self.tuple(2)?;
            let id = self.str()?;
            let parent = self.option(Self::u32)?;
            out.push(id, parent);
        }
        out.shrink_to_fit();
        Ok(out)
    }

    fn content(&mut self) -> R<Content> {
        let optional = self.fields(8)?;
        let mut c = Content {
            actions: self.list(|r| {
                r.tuple(2)?;
                Ok((r.string()?, r.u8()?))
            })?,
            roles: self.list(|r| {
                r.tuple(2)?;
                Ok((r.string()?, r.list(Self::u32)?))
            })?,
            resources: self.resources()?,
            subjects: self.names()?,
            memberships: self.id_pairs()?,
            assignments: self.list(|r| {
                r.tuple(4)?;
                Ok((r.u32()?, r.u32()?, r.u32()?, r.option(Self::u64)?))
            })?,
            suspended: self.list(Self::u32)?,
            freshness: self.freshness()?,
            conditional: ConditionTables::default(),
            identity: crate::Identity::default(),
        };
        if optional > 0 {
            let text = self.str()?;
            c.conditional = ConditionTables::from_text(text)
                .ok_or_else(|| self.fail("malformed condition tables"))?;
        }
        if optional > 1 {
            c.identity = self.identity()?;
        }
        Ok(c)
    }

    fn ops(&mut self) -> R<DeltaOps> {
        let optional = self.fields(13)?;
        let mut ops = DeltaOps {
            actions_set: self.list(|r| {
                r.tuple(2)?;
                Ok((r.string()?, r.u8()?))
            })?,
            actions_del: self.strings()?,
            roles_set: self.list(|r| {
                r.tuple(2)?;
                Ok((r.string()?, r.strings()?))
            })?,
            roles_del: self.strings()?,
            resources_set: self.list(|r| {
                r.tuple(2)?;
                Ok((r.string()?, r.option(Self::string)?))
            })?,
            resources_del: self.strings()?,
            memberships_add: self.string_pairs()?,
            memberships_del: self.string_pairs()?,
            assignments_set: self.list(|r| {
                r.tuple(4)?;
                Ok((r.string()?, r.string()?, r.string()?, r.option(Self::u64)?))
            })?,
            assignments_del: self.list(|r| {
                r.tuple(3)?;
                Ok((r.string()?, r.string()?, r.string()?))
            })?,
            suspended_add: self.strings()?,
            suspended_del: self.strings()?,
            freshness: self.option(Self::freshness)?,
            conditional: ConditionOps::default(),
            identity: crate::IdentityOps::default(),
        };
        if optional > 0 {
            let text = self.str()?;
            ops.conditional = ConditionOps::from_text(text)
                .ok_or_else(|| self.fail("malformed condition operations"))?;
        }
        if optional > 1 {
            let text = self.str()?;
            ops.identity = crate::IdentityOps::from_text(text)
                .ok_or_else(|| self.fail("malformed identity operations"))?;
        }
        Ok(ops)
    }
}

/// A payload that [`decode_exact`] reads.
pub(crate) trait Unpack: Sized {
    fn unpack(r: &mut Reader<'_>) -> R<Self>;
}

impl Unpack for SnapshotPayload {
    fn unpack(r: &mut Reader<'_>) -> R<Self> {
        r.tuple(4)?;
        Ok(SnapshotPayload {
            tenant: r.string()?,
            epoch: r.u64()?,
            issued_at: r.u64()?,
            content: r.content()?,
        })
    }
}

impl Unpack for DeltaPayload {
    fn unpack(r: &mut Reader<'_>) -> R<Self> {
        r.tuple(8)?;
        Ok(DeltaPayload {
            tenant: r.string()?,
            base_epoch: r.u64()?,
            epoch: r.u64()?,
            issued_at: r.u64()?,
            base_digest: serde_bytes::ByteBuf::from(r.bin()?.to_vec()),
            digest: serde_bytes::ByteBuf::from(r.bin()?.to_vec()),
            revokes: r.bool()?,
            ops: r.ops()?,
        })
    }
}

impl Unpack for WatermarkPayload {
    fn unpack(r: &mut Reader<'_>) -> R<Self> {
        r.tuple(4)?;
        Ok(WatermarkPayload {
            tenant: r.string()?,
            watermark: r.u64()?,
            issued_at: r.u64()?,
            delta: r.option(|r| Ok(serde_bytes::ByteBuf::from(r.bin()?.to_vec())))?,
        })
    }
}

/// Decodes a payload, refusing trailing bytes.
pub(crate) fn decode_exact<T: Unpack>(bytes: &[u8], what: &'static str) -> R<T> {
    let mut r = Reader { rest: bytes, what };
    let value = T::unpack(&mut r)?;
    if !r.rest.is_empty() {
        return Err(r.fail(format!("{} trailing bytes", r.rest.len())));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_content() -> Content {
        let mut resources = Resources::new();
        resources.push("org:a", None);
        resources.push("doc:b", Some(0));
        let mut subjects = Names::new();
        subjects.push("group:g");
        subjects.push("user:u");
        Content {
            actions: vec![("read".into(), 0), ("export".into(), 2)],
            roles: vec![("viewer".into(), vec![0, 1])],
            resources,
            subjects,
            memberships: vec![(1, 0)],
            assignments: vec![(0, 0, 0, None), (1, 1, 0, Some(u64::MAX))],
            suspended: vec![1],
            freshness: [1, 2, 3],
            conditional: ConditionTables::default(),
            identity: crate::Identity::default(),
        }
    }

    /// An identity part with an issuer and an entry of each session table.
    fn sample_identity() -> crate::Identity {
        crate::Identity::from_text(
            r#"{"issuers":[{"issuer":"https://i.example/","audiences":["a"],"jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]},"subject":"user:{sub}"}],
               "sessions":{"revoked":[{"sid":"s1","until":9}],"revoked_families":[{"family":"f","until":9}],"not_before":{"user:a":5}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn round_trips_what_serde_writes() {
        let mut c = sample_content();
        for (with_conditions, with_identity) in
            [(false, false), (false, true), (true, false), (true, true)]
        {
            c.identity = if with_identity {
                sample_identity()
            } else {
                Default::default()
            };
            c.conditional = ConditionTables::default();
            if with_conditions {
                c.conditional = ConditionTables {
                    conditions: vec![("a".into(), r#"{"attr":"x","op":"==","value":1}"#.into())],
                    requires: vec![(1, 0)],
                    when: vec![(0, 0)],
                };
            }
            let p = SnapshotPayload {
                tenant: "acme".into(),
                epoch: 7,
                issued_at: 1 << 40,
                content: c.clone(),
            };
            let bytes = rmp_serde::to_vec(&p).unwrap();
            assert_eq!(
                decode_exact::<SnapshotPayload>(&bytes, "snapshot").unwrap(),
                p
            );
            let mut trailing = bytes.clone();
            trailing.push(0);
            assert!(decode_exact::<SnapshotPayload>(&trailing, "snapshot").is_err());
            for cut in 0..bytes.len() {
                assert!(decode_exact::<SnapshotPayload>(&bytes[..cut], "snapshot").is_err());
            }
        }
        let mut ops = DeltaOps {
            actions_set: vec![("read".into(), 1)],
            actions_del: vec!["x".into()],
            roles_set: vec![("r".into(), vec!["read".into()])],
            roles_del: vec!["q".into()],
            resources_set: vec![
                ("doc:a".into(), None),
                ("doc:b".into(), Some("org:a".into())),
            ],
            resources_del: vec!["doc:c".into()],
            memberships_add: vec![("user:a".into(), "group:b".into())],
            memberships_del: vec![("user:c".into(), "group:d".into())],
            assignments_set: vec![("doc:a".into(), "user:a".into(), "r".into(), Some(5))],
            assignments_del: vec![("doc:a".into(), "user:b".into(), "r".into())],
            suspended_add: vec!["user:s".into()],
            suspended_del: vec!["user:t".into()],
            freshness: Some([4, 5, 6]),
            conditional: ConditionOps::default(),
            identity: crate::IdentityOps::default(),
        };
        for (with_conditions, with_identity) in
            [(false, false), (false, true), (true, false), (true, true)]
        {
            ops.identity = crate::IdentityOps::default();
            if with_identity {
                ops.identity.set = sample_identity();
                ops.identity.del_issuers = vec!["x".into()];
                ops.identity.del_families = vec![("fam".into(), "g".into())];
            }
            ops.conditional = ConditionOps::default();
            if with_conditions {
                ops.conditional = ConditionOps {
                    set: vec![("a".into(), r#"{"not":"b"}"#.into())],
                    del: vec!["c".into()],
                    requires: vec![("read".into(), vec!["a".into()]), ("x".into(), vec![])],
                    when: vec![
                        (
                            "doc:a".into(),
                            "user:a".into(),
                            "r".into(),
                            Some("a".into()),
                        ),
                        ("doc:a".into(), "user:z".into(), "r".into(), None),
                    ],
                };
            }
            let p = DeltaPayload {
                tenant: "acme".into(),
                base_epoch: 1,
                epoch: 2,
                issued_at: 3,
                base_digest: serde_bytes::ByteBuf::from(vec![1; 32]),
                digest: serde_bytes::ByteBuf::from(vec![2; 32]),
                revokes: true,
                ops: ops.clone(),
            };
            let bytes = rmp_serde::to_vec(&p).unwrap();
            assert_eq!(decode_exact::<DeltaPayload>(&bytes, "delta").unwrap(), p);
        }
        for delta in [None, Some(serde_bytes::ByteBuf::from(vec![9, 9]))] {
            let p = WatermarkPayload {
                tenant: "acme".into(),
                watermark: 3,
                issued_at: 4,
                delta,
            };
            let bytes = rmp_serde::to_vec(&p).unwrap();
            assert_eq!(
                decode_exact::<WatermarkPayload>(&bytes, "watermark").unwrap(),
                p
            );
        }
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let read = |v: &[u8]| decode_exact::<WatermarkPayload>(v, "watermark");
        // A negative epoch, a tier over u8, a non-UTF-8 tenant, a map for a struct.
        let neg = rmp_serde::to_vec(&("acme", -1i64, 4u64, ())).unwrap();
        assert!(read(&neg).is_err());
        let big_tier = rmp_serde::to_vec(&vec![("read", 256u32)]).unwrap();
        let mut r = Reader {
            rest: &big_tier,
            what: "t",
        };
        assert!(r
            .list(|r| {
                r.tuple(2)?;
                Ok((r.string()?, r.u8()?))
            })
            .is_err());
        let mut bad_utf8 = rmp_serde::to_vec(&("acme", 1u64, 2u64, ())).unwrap();
        if let Some(b) = bad_utf8.get_mut(2) {
            *b = 0xff;
        }
        assert!(read(&bad_utf8).is_err());
        let map = rmp_serde::to_vec_named(&WatermarkPayload {
            tenant: "acme".into(),
            watermark: 1,
            issued_at: 2,
            delta: None,
        })
        .unwrap();
        assert!(read(&map).is_err());
    }
}
