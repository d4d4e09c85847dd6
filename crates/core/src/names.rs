//! Name storage. [`Names`]: a sorted table of names in one arena (a `String`) with their end
//! offsets, so that 100,000 ids cost their bytes plus four bytes each instead of a `String` each.
//! [`NameTable`]: maps names to their positions in a `Names` with one open-addressing table; a
//! lookup touches the table entry, the end offsets and the name's bytes.

use std::fmt;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Names by position, in one arena. Serialized as a sequence of strings.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Names {
    arena: String,
    /// `ends[i]`: where name `i` ends in the arena (it starts where name `i - 1` ends).
    ends: Vec<u32>,
}

impl Names {
    pub fn new() -> Names {
        Names::default()
    }

    /// Room for `names` names of `bytes` bytes in all.
    pub fn with_capacity(names: usize, bytes: usize) -> Names {
        Names {
            arena: String::with_capacity(bytes),
            ends: Vec::with_capacity(names),
        }
    }

    /// Appends a name. The arena is addressed with `u32`: names past 4 GiB in all are not
    /// representable (every input that builds one is bounded far below that).
    pub fn push(&mut self, name: &str) {
        self.arena.push_str(name);
        self.ends
            .push(u32::try_from(self.arena.len()).unwrap_or(u32::MAX));
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`-th name.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = match i.checked_sub(1) {
            Some(p) => *self.ends.get(p)? as usize,
            None => 0,
        };
        self.arena.get(start..end)
    }

    pub fn iter(&self) -> NamesIter<'_> {
        NamesIter {
            names: self,
            next: 0,
        }
    }

    /// Binary search in a sorted table, as `slice::binary_search`.
    pub fn binary_search(&self, name: &str) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).unwrap_or("").cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Whether the names are strictly ascending.
    pub fn is_strictly_sorted(&self) -> bool {
        let mut it = self.iter();
        let Some(mut prev) = it.next() else {
            return true;
        };
        for n in it {
            if prev >= n {
                return false;
            }
            prev = n;
        }
        true
    }

    pub fn shrink_to_fit(&mut self) {
        self.arena.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * std::mem::size_of::<u32>()
    }
}

/// The names of a [`Names`] in order.
#[derive(Clone)]
pub struct NamesIter<'a> {
    names: &'a Names,
    next: usize,
}

impl<'a> Iterator for NamesIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let n = self.names.get(self.next)?;
        self.next += 1;
        Some(n)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.names.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for NamesIter<'_> {}

impl<'a> IntoIterator for &'a Names {
    type Item = &'a str;
    type IntoIter = NamesIter<'a>;
    fn into_iter(self) -> NamesIter<'a> {
        self.iter()
    }
}

impl<S: AsRef<str>> FromIterator<S> for Names {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Names {
        let mut out = Names::new();
        for s in iter {
            out.push(s.as_ref());
        }
        out
    }
}

impl fmt::Debug for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Names {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for n in self {
            seq.serialize_element(n)?;
        }
        seq.end()
    }
}

/// Decoding reserves at most this many entries from a length prefix: a hostile prefix must not
/// allocate, the vectors grow with what actually arrives.
const RESERVE_CAP: usize = 1 << 16;

/// Deserializes one string straight into a `Names` arena (no `String` per name).
struct PushStr<'a>(&'a mut Names);

impl<'de> DeserializeSeed<'de> for PushStr<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for PushStr<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push(v);
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Names, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut out = Names::new();
                out.ends
                    .reserve(seq.size_hint().unwrap_or(0).min(RESERVE_CAP));
                while seq.next_element_seed(PushStr(&mut out))?.is_some() {}
                out.shrink_to_fit();
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

/// Resources by position: their ids (a [`Names`]) and their parents. Serialized as a sequence
/// of `(id, parent)` pairs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Resources {
    names: Names,
    /// The parent's position, or `NO_PARENT`.
    parents: Vec<u32>,
}

const NO_PARENT: u32 = u32::MAX;

impl Resources {
    pub fn new() -> Resources {
        Resources::default()
    }

    /// Appends a resource. A parent of `u32::MAX` is not representable and reads as none (no
    /// table is that long).
    pub fn push(&mut self, name: &str, parent: Option<u32>) {
        self.names.push(name);
        self.parents.push(parent.unwrap_or(NO_PARENT));
    }

    /// Resources from their ids and parents (as many of each).
    pub fn from_parts(names: Names, parents: &[Option<u32>]) -> Resources {
        Resources {
            names,
            parents: parents.iter().map(|p| p.unwrap_or(NO_PARENT)).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.parents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parents.is_empty()
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The `i`-th resource's id.
    #[inline]
    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i)
    }

    /// The `i`-th resource's parent.
    #[inline]
    pub fn parent(&self, i: usize) -> Option<u32> {
        self.parents.get(i).copied().filter(|p| *p != NO_PARENT)
    }

    pub fn get(&self, i: usize) -> Option<(&str, Option<u32>)> {
        Some((self.names.get(i)?, self.parent(i)))
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, Option<u32>)> + Clone + '_ {
        self.names
            .iter()
            .zip(&self.parents)
            .map(|(n, p)| (n, Some(*p).filter(|p| *p != NO_PARENT)))
    }

    pub fn shrink_to_fit(&mut self) {
        self.names.shrink_to_fit();
        self.parents.shrink_to_fit();
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.names.heap_bytes() + self.parents.capacity() * std::mem::size_of::<u32>()
    }
}

impl<S: AsRef<str>> FromIterator<(S, Option<u32>)> for Resources {
    fn from_iter<I: IntoIterator<Item = (S, Option<u32>)>>(iter: I) -> Resources {
        let mut out = Resources::new();
        for (n, p) in iter {
            out.push(n.as_ref(), p);
        }
        out
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Resources {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for r in self.iter() {
            seq.serialize_element(&r)?;
        }
        seq.end()
    }
}

/// Deserializes one `(id, parent)` pair into a `Resources`.
struct PushResource<'a>(&'a mut Resources);

impl<'de> DeserializeSeed<'de> for PushResource<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_tuple(2, self)
    }
}

impl<'de> Visitor<'de> for PushResource<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an (id, parent) pair")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        use serde::de::Error;
        let Resources { names, parents } = self.0;
        // On an error the whole decode fails and the partial table is dropped.
        if seq.next_element_seed(PushStr(names))?.is_none() {
            return Err(A::Error::invalid_length(0, &"an (id, parent) pair"));
        }
        let Some(parent): Option<Option<u32>> = seq.next_element()? else {
            return Err(A::Error::invalid_length(1, &"an (id, parent) pair"));
        };
        if parent == Some(NO_PARENT) {
            return Err(A::Error::custom("a resource's parent is out of range"));
        }
        parents.push(parent.unwrap_or(NO_PARENT));
        if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
            return Err(A::Error::invalid_length(3, &"an (id, parent) pair"));
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Resources {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Resources, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Resources;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of (id, parent) pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Resources, A::Error> {
                let mut out = Resources::new();
                let hint = seq.size_hint().unwrap_or(0).min(RESERVE_CAP);
                out.names.ends.reserve(hint);
                out.parents.reserve(hint);
                while seq.next_element_seed(PushResource(&mut out))?.is_some() {}
                out.shrink_to_fit();
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// High half of the name's hash.
    tag: u32,
    /// The name's position; `VACANT` marks an empty entry.
    id: u32,
}

const VACANT: Entry = Entry {
    tag: 0,
    id: u32::MAX,
};

/// An index over a [`Names`] (which it does not hold: every lookup is given it).
#[derive(Debug, Clone, Default)]
pub(crate) struct NameTable {
    entries: Vec<Entry>,
    mask: usize,
}

/// A 64-bit hash on every target: multiply-xor over 8-byte words (FxHash's step), then murmur3's
/// finalizer so that both halves are mixed (the low half picks the slot, the high half is the
/// tag). rustc-hash's hasher is `usize`-wide, so on wasm32 its high half was always zero and
/// every probe compared bytes; wasm has native 64-bit arithmetic, so this costs nothing there.
/// A tail shorter than a word is read as at most two overlapping loads (the length, hashed
/// first, tells the overlaps apart), never copied.
fn hash(name: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let bytes = name.as_bytes();
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = (h.rotate_left(5) ^ word_of(c)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        h = (h.rotate_left(5) ^ tail_word(rest)).wrapping_mul(K);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// An 8-byte chunk as a little-endian word.
#[inline(always)]
fn word_of(c: &[u8]) -> u64 {
    c.try_into().map_or(0, u64::from_le_bytes)
}

/// One to seven bytes as a word: the first and last four (overlapping) for four and more, else
/// the first, middle and last byte.
#[inline(always)]
fn tail_word(rest: &[u8]) -> u64 {
    let n = rest.len();
    let four = |at: usize| {
        rest.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b: [u8; 4]| u64::from(u32::from_le_bytes(b)))
    };
    if n >= 4 {
        four(0) | four(n - 4) << 32
    } else {
        let byte = |at: usize| u64::from(rest.get(at).copied().unwrap_or(0));
        byte(0) | byte(n / 2) << 8 | byte(n.saturating_sub(1)) << 16
    }
}

impl NameTable {
    /// Builds the table over `names`: the `i`-th name gets id `i`. Names must be unique.
    pub fn build(names: &Names) -> NameTable {
        let n = names.len();
        let size = (n + n / 2 + 1).next_power_of_two();
        let mask = size - 1;
        let mut entries = vec![VACANT; size];
        for (id, name) in names.iter().enumerate() {
            let h = hash(name);
            let e = Entry {
                tag: (h >> 32) as u32,
                id: id as u32,
            };
            let mut at = (h as usize) & mask;
            while let Some(slot) = entries.get_mut(at) {
                if slot.id == VACANT.id {
                    *slot = e;
                    break;
                }
                at = (at + 1) & mask;
            }
        }
        NameTable { entries, mask }
    }

    /// The id of `name` in `names`, which must be the table it was built over.
    #[inline]
    pub fn get(&self, names: &Names, name: &str) -> Option<u32> {
        if self.entries.is_empty() {
            return None;
        }
        let h = hash(name);
        let tag = (h >> 32) as u32;
        let mut at = (h as usize) & self.mask;
        loop {
            let e = self.entries.get(at)?;
            if e.id == VACANT.id {
                return None;
            }
            if e.tag == tag && names.get(e.id as usize) == Some(name) {
                return Some(e.id);
            }
            at = (at + 1) & self.mask;
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_name_and_nothing_else() {
        let names: Names = (0..5_000).map(|i| format!("user:u{i}")).collect();
        let t = NameTable::build(&names);
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.get(&names, n), Some(i as u32));
        }
        for miss in ["", "user:u5000", "user:u", "user:u1 ", "x"] {
            assert_eq!(t.get(&names, miss), None, "{miss}");
        }
        let empty = Names::new();
        assert_eq!(NameTable::build(&empty).get(&empty, "a"), None);
    }

    /// Every tail length (0 to 7 bytes past the last whole word) is hashed from all its bytes:
    /// names that differ in one byte of the tail, at any position, hash apart.
    #[test]
    fn tails_of_every_length_hash_every_byte() {
        for len in 1..=23usize {
            let base: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let h = hash(&base);
            for at in 0..len {
                let mut other = base.clone().into_bytes();
                if let Some(b) = other.get_mut(at) {
                    *b = b'Z';
                }
                let other = String::from_utf8(other).unwrap_or_default();
                assert_ne!(hash(&other), h, "{base} and {other}");
            }
        }
        let names: Names = (0..=40usize).map(|n| "x".repeat(n)).collect();
        let t = NameTable::build(&names);
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.get(&names, n), Some(i as u32));
        }
    }

    #[test]
    fn names_round_trip_and_search() {
        let names: Names = ["a:1", "b:22", "", "c:333"].into_iter().collect();
        assert_eq!(names.len(), 4);
        assert_eq!(names.get(1), Some("b:22"));
        assert_eq!(names.get(2), Some(""));
        assert_eq!(names.get(4), None);
        assert!(!names.is_strictly_sorted());
        let sorted: Names = ["a:1", "b:22", "c:333"].into_iter().collect();
        assert!(sorted.is_strictly_sorted());
        assert_eq!(sorted.binary_search("b:22"), Ok(1));
        assert_eq!(sorted.binary_search("b:3"), Err(2));
        let bytes = rmp_serde::to_vec(&sorted).unwrap();
        assert_eq!(
            bytes,
            rmp_serde::to_vec(&vec!["a:1", "b:22", "c:333"]).unwrap()
        );
        assert_eq!(rmp_serde::from_slice::<Names>(&bytes).unwrap(), sorted);
        assert!(rmp_serde::from_slice::<Names>(&rmp_serde::to_vec(&vec![1u8]).unwrap()).is_err());
    }

    #[test]
    fn resources_encode_as_pairs() {
        let pairs = vec![
            ("doc:a".to_string(), Some(1u32)),
            ("ws:b".to_string(), None),
        ];
        let bytes = rmp_serde::to_vec(&pairs).unwrap();
        let r: Resources = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(r.get(0), Some(("doc:a", Some(1))));
        assert_eq!(r.get(1), Some(("ws:b", None)));
        assert_eq!(rmp_serde::to_vec(&r).unwrap(), bytes);
        for bad in [
            rmp_serde::to_vec(&vec![("doc:a", Some(u32::MAX))]).unwrap(),
            rmp_serde::to_vec(&vec![("doc:a",)]).unwrap(),
            rmp_serde::to_vec(&vec![("doc:a", None::<u32>, 3u8)]).unwrap(),
            rmp_serde::to_vec(&vec![(7u8, None::<u32>)]).unwrap(),
        ] {
            assert!(rmp_serde::from_slice::<Resources>(&bytes[..0]).is_err());
            assert!(rmp_serde::from_slice::<Resources>(&bad).is_err(), "{bad:?}");
        }
    }
}
