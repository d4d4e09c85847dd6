//! `NameTable`: maps names to dense ids with one allocation for all names (an arena) and one
//! open-addressing table. A lookup touches the table entry and the name's bytes: two cache lines.

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// High half of the name's hash; `len == 0` marks an empty entry (names are never empty).
    tag: u32,
    id: u32,
    offset: u32,
    len: u32,
}

const VACANT: Entry = Entry {
    tag: 0,
    id: 0,
    offset: 0,
    len: 0,
};

#[derive(Debug, Clone, Default)]
pub(crate) struct NameTable {
    entries: Vec<Entry>,
    mask: usize,
    arena: String,
}

/// A 64-bit hash on every target: multiply-xor over 8-byte words (FxHash's step), then murmur3's
/// finalizer so that both halves are mixed (the low half picks the slot, the high half is the
/// tag). rustc-hash's hasher is `usize`-wide, so on wasm32 its high half was always zero and
/// every probe compared bytes; wasm has native 64-bit arithmetic, so this costs nothing there.
fn hash(name: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let bytes = name.as_bytes();
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    let mut word = [0u8; 8];
    for c in &mut chunks {
        word.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        word = [0; 8];
        if let Some(w) = word.get_mut(..rest.len()) {
            w.copy_from_slice(rest);
        }
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl NameTable {
    /// Builds the table; the `i`-th name gets id `i`. Names must be non-empty and unique.
    pub fn build<'a>(names: impl ExactSizeIterator<Item = &'a str> + Clone) -> NameTable {
        let n = names.len();
        let size = (n + n / 2 + 1).next_power_of_two();
        let mask = size - 1;
        let mut arena = String::with_capacity(names.clone().map(str::len).sum());
        let mut entries = vec![VACANT; size];
        for (id, name) in names.enumerate() {
            let h = hash(name);
            let e = Entry {
                tag: (h >> 32) as u32,
                id: id as u32,
                offset: arena.len() as u32,
                len: name.len() as u32,
            };
            arena.push_str(name);
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
                let start = e.offset as usize;
                if self.arena.as_bytes().get(start..start + name.len()) == Some(name.as_bytes()) {
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
        let names: Vec<String> = (0..5_000).map(|i| format!("user:u{i}")).collect();
        let t = NameTable::build(names.iter().map(String::as_str));
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.get(n), Some(i as u32));
        }
        for miss in ["", "user:u5000", "user:u", "user:u1 ", "x"] {
            assert_eq!(t.get(miss), None, "{miss}");
        }
        let empty = NameTable::build(std::iter::empty::<&str>().collect::<Vec<_>>().into_iter());
        assert_eq!(empty.get("a"), None);
    }
}
