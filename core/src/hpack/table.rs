//! The HPACK dynamic table (RFC 7541 §2.3.2, §4): a FIFO of entries, newest first, whose size
//! (name + value + 32 per entry, §4.1) never exceeds the current maximum.

use std::collections::VecDeque;

use bytes::Bytes;

/// Per-entry overhead counted in the table size (RFC 7541 §4.1).
pub(crate) const ENTRY_OVERHEAD: usize = 32;

/// One dynamic table entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: Bytes,
    pub(crate) value: Bytes,
}

impl Entry {
    /// The entry's size as §4.1 counts it.
    pub(crate) fn size(&self) -> usize {
        entry_size(self.name.len(), self.value.len())
    }
}

/// §4.1 size of an entry with these name and value lengths (saturating: a sum that overflows is
/// in any case larger than every table and every list limit).
pub(crate) fn entry_size(name_len: usize, value_len: usize) -> usize {
    name_len
        .saturating_add(value_len)
        .saturating_add(ENTRY_OVERHEAD)
}

/// How a field matched the dynamic table, by 0-based position (0 = newest, HPACK index 62).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// Name and value match.
    Full(usize),
    /// Only the name matches.
    Name(usize),
}

/// The dynamic table. Entries are at most `capacity / 32` in number, so the ring stays small.
#[derive(Debug, Clone)]
pub(crate) struct DynamicTable {
    entries: VecDeque<Entry>,
    /// Sum of the entries' sizes; always `<= capacity`.
    size: usize,
    /// The current maximum size, as last set by a size update (§4.2, §6.3).
    capacity: usize,
}

impl DynamicTable {
    /// An empty table whose maximum size is `capacity`.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            size: 0,
            capacity,
        }
    }

    /// The current maximum size (§4.2).
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The current size (§4.1).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry at 0-based `position` (0 = most recently inserted).
    pub(crate) fn get(&self, position: usize) -> Option<&Entry> {
        self.entries.get(position)
    }

    /// Changes the maximum size, evicting the oldest entries until the table fits (§4.3).
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.evict_to(capacity);
    }

    /// Inserts an entry at the front, first evicting the oldest ones to make room (§4.4). An entry
    /// larger than the maximum size is not inserted and leaves the table empty (§4.4): that is
    /// not an error.
    pub(crate) fn insert(&mut self, name: Bytes, value: Bytes) {
        let entry = Entry { name, value };
        let size = entry.size();
        if size > self.capacity {
            self.clear();
            return;
        }
        self.evict_to(self.capacity - size);
        self.size += size;
        self.entries.push_front(entry);
    }

    /// Empties the table, as inserting an entry larger than the maximum does (§4.4).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.size = 0;
    }

    /// Evicts from the oldest end until the size is at most `target`.
    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some(old) => self.size -= old.size(),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// Finds a field for the encoder: the newest full match, else the newest name match.
    ///
    /// A linear scan: our encoder's table holds at most `capacity / 32` entries (under 512 at
    /// its 16 KiB cap, about ten for a gRPC request head), and most candidates are rejected on
    /// their length before any byte is compared, so a hash index would cost more to maintain on
    /// every insert and eviction than it would save.
    pub(crate) fn find(&self, name: &[u8], value: &[u8]) -> Option<Match> {
        let mut name_match = None;
        for (i, e) in self.entries.iter().enumerate() {
            if e.name.as_ref() == name {
                if e.value.as_ref() == value {
                    return Some(Match::Full(i));
                }
                name_match.get_or_insert(i);
            }
        }
        name_match.map(Match::Name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn insert_evicts_oldest_first() {
        // Entries of size 32 + 2 + 2 = 36.
        let mut t = DynamicTable::new(100);
        t.insert(b("n1"), b("v1"));
        t.insert(b("n2"), b("v2"));
        assert_eq!((t.len(), t.size()), (2, 72));
        t.insert(b("n3"), b("v3"));
        assert_eq!((t.len(), t.size()), (2, 72));
        assert_eq!(t.get(0).unwrap().name, "n3");
        assert_eq!(t.get(1).unwrap().name, "n2");
        assert!(t.get(2).is_none());
    }

    #[test]
    fn entry_exactly_the_capacity_fits_one_over_empties() {
        let mut t = DynamicTable::new(36);
        t.insert(b("n1"), b("v1"));
        assert_eq!((t.len(), t.size()), (1, 36));
        t.insert(b("n2"), b("v22"));
        assert_eq!(
            (t.len(), t.size()),
            (0, 0),
            "§4.4: a too-large entry empties the table"
        );
    }

    #[test]
    fn shrinking_evicts_and_zero_empties() {
        let mut t = DynamicTable::new(4096);
        for i in 0..10 {
            t.insert(b(&format!("name{i}")), b("value"));
        }
        let one = t.get(0).unwrap().size();
        t.set_capacity(one * 3);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(0).unwrap().name, "name9");
        t.set_capacity(0);
        assert_eq!((t.len(), t.size()), (0, 0));
        t.insert(b("a"), b(""));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn find_prefers_full_then_newest_name() {
        let mut t = DynamicTable::new(4096);
        t.insert(b("k"), b("1"));
        t.insert(b("k"), b("2"));
        t.insert(b("j"), b("3"));
        assert_eq!(t.find(b"k", b"1"), Some(Match::Full(2)));
        assert_eq!(t.find(b"k", b"9"), Some(Match::Name(1)));
        assert_eq!(t.find(b"x", b"1"), None);
    }
}
