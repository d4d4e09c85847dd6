//! `NameTable`: maps names to dense ids with one open-addressing table. Names up to 20 bytes
//! (most ids) live inside their 32-byte entry, so a lookup reads one cache line; longer names live
//! in one shared arena.

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

/// Names up to this many bytes are stored in their entry.
const INLINE: usize = 20;

#[derive(Debug, Clone, Copy)]
#[repr(align(32))]
struct Entry {
    /// High half of the name's hash; `len == 0` marks an empty entry (names are never empty).
    tag: u32,
    id: u32,
    len: u32,
    /// The name itself when it fits, else its offset in the arena (first 4 bytes, little endian).
    bytes: [u8; INLINE],
}

const VACANT: Entry = Entry {
    tag: 0,
    id: 0,
    len: 0,
    bytes: [0; INLINE],
};

#[derive(Debug, Clone, Default)]
pub(crate) struct NameTable {
    entries: Vec<Entry>,
    mask: usize,
    arena: String,
}

fn hash(name: &str) -> u64 {
    FxBuildHasher.hash_one(name)
}

impl NameTable {
    /// Builds the table; the `i`-th name gets id `i`. Names must be non-empty and unique.
    pub fn build<'a>(names: impl ExactSizeIterator<Item = &'a str> + Clone) -> NameTable {
        let n = names.len();
        let size = (n + n / 2 + 1).next_power_of_two();
        let mask = size - 1;
        let mut arena =
            String::with_capacity(names.clone().map(str::len).filter(|l| *l > INLINE).sum());
        let mut entries = vec![VACANT; size];
        for (id, name) in names.enumerate() {
            let h = hash(name);
            let mut bytes = [0u8; INLINE];
            if name.len() <= INLINE {
                bytes.iter_mut().zip(name.bytes()).for_each(|(b, x)| *b = x);
            } else {
                bytes
                    .iter_mut()
                    .zip((arena.len() as u32).to_le_bytes())
                    .for_each(|(b, x)| *b = x);
                arena.push_str(name);
            }
            let e = Entry {
                tag: (h >> 32) as u32,
                id: id as u32,
                len: name.len() as u32,
                bytes,
            };
            let mut at = (h as usize) & mask;
            while let Some(slot) = entries.get_mut(at) {
                if slot.len == 0 {
                    *slot = e;
                    break;
                }
                at = (at + 1) & mask;
            }
        }
        NameTable {
            entries,
            mask,
            arena,
        }
    }

    #[inline]
    pub fn get(&self, name: &str) -> Option<u32> {
        if name.is_empty() || self.entries.is_empty() {
            return None;
        }
        let h = hash(name);
        let tag = (h >> 32) as u32;
        let mut at = (h as usize) & self.mask;
        loop {
            let e = self.entries.get(at)?;
            if e.len == 0 {
                return None;
            }
            if e.tag == tag && e.len as usize == name.len() {
                let stored = if name.len() <= INLINE {
                    e.bytes.get(..name.len())
                } else {
                    let [a, b, c, d, ..] = e.bytes;
                    let start = u32::from_le_bytes([a, b, c, d]) as usize;
                    self.arena.as_bytes().get(start..start + name.len())
                };
                if stored == Some(name.as_bytes()) {
                    return Some(e.id);
                }
            }
            at = (at + 1) & self.mask;
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>() + self.arena.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_name_and_nothing_else() {
        let mut names: Vec<String> = (0..5_000).map(|i| format!("user:u{i}")).collect();
        // Names longer than the inline part live in the arena.
        names.extend((0..500).map(|i| format!("doc:{}-{i}", "long".repeat(8))));
        names.push(format!("doc:{}", "x".repeat(16)));
        let t = NameTable::build(names.iter().map(String::as_str));
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.get(n), Some(i as u32), "{n}");
        }
        let long_miss = format!("doc:{}-500", "long".repeat(8));
        for miss in [
            "",
            "user:u5000",
            "user:u",
            "user:u1 ",
            "x",
            long_miss.as_str(),
            "doc:xxxxxxxxxxxxxxxy",
        ] {
            assert_eq!(t.get(miss), None, "{miss}");
        }
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        let empty = NameTable::build(Vec::<&str>::new().into_iter());
        assert_eq!(empty.get("a"), None);
    }
}
