//! Encoding header lists (RFC 7541 §6) with a policy tuned for repeated gRPC request heads.
//!
//! Policy, per field:
//! 1. `NeverIndexed` fields are always literals never indexed (§6.2.3), with an indexed name
//!    when one exists: their value never enters any table.
//! 2. An exact name + value match in the static table, then in the dynamic table, is one
//!    indexed representation (§6.1): one byte for indices below 127.
//! 3. Otherwise a literal, with the name indexed when the static (preferred: it never moves) or
//!    dynamic table has it, and inserted with incremental indexing (§6.2.1) unless its name is
//!    one whose value changes on every message (`grpc-timeout`, `content-length`, `date`) or the
//!    entry would take more than 3/4 of the table (it would flush everything else).
//! 4. A string is Huffman-coded (§5.2) only when that is strictly shorter.
//!
//! Encoding writes straight into the caller's buffer (Huffman lengths are computed first), so a
//! warmed-up encoder allocates only when it inserts a new entry.

use bytes::{Bytes, BytesMut};

use super::static_table;
use super::table::{self, DynamicTable, entry_size};
use super::{huffman, integer};

/// The largest dynamic table our encoder uses, whatever the peer allows: 16 KiB. It bounds the
/// memory the peer's SETTINGS_HEADER_TABLE_SIZE can make us hold and the length of the table
/// scan.
pub const MAX_ENCODER_TABLE_SIZE: usize = 16 * 1024;

/// The table size both ends start with (RFC 7541 §4.2, RFC 9113 §6.5.2).
const DEFAULT_TABLE_SIZE: usize = 4096;

/// Names whose values change on (almost) every message: indexing them would only evict useful
/// entries.
const UNINDEXED_NAMES: [&[u8]; 3] = [b"grpc-timeout", b"content-length", b"date"];

/// Whether a field may enter compression contexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensitivity {
    /// An ordinary field: indexed when worthwhile.
    Normal,
    /// A secret (`authorization`, cookies, tokens): sent as a literal never indexed (§6.2.3), so
    /// neither we nor any intermediary put it in a table where compression could leak it (§7.1).
    NeverIndexed,
}

/// Encodes the header lists we send on one connection, keeping a dynamic table the peer's
/// decoder mirrors. Feed it every block of the connection, in the order they go on the wire.
#[derive(Debug)]
pub struct Encoder {
    table: DynamicTable,
    /// The smallest table size set since the last block, when a size update is owed (§4.2).
    pending_low: Option<usize>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An encoder with the RFC default table size, 4096.
    pub fn new() -> Self {
        Self {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            pending_low: None,
        }
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed: shrink (or grow, up to it and to
    /// [`MAX_ENCODER_TABLE_SIZE`]) our table and signal the size update(s) at the start of the
    /// next block (RFC 7541 §4.2: the minimum reached, then the final size).
    pub fn set_max_table_size(&mut self, peer_max: usize) {
        let size = peer_max.min(MAX_ENCODER_TABLE_SIZE);
        if size == self.table.capacity() && self.pending_low.is_none() {
            return;
        }
        self.pending_low = Some(self.pending_low.map_or(size, |low| low.min(size)));
        self.table.set_capacity(size);
    }

    /// Appends the encoding of `fields` (name, value, sensitivity) to `dst` as one header block.
    /// Names must already be lowercase (RFC 9113 §8.2.1).
    pub fn encode<'a>(
        &mut self,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8], Sensitivity)>,
        dst: &mut BytesMut,
    ) {
        if let Some(low) = self.pending_low.take() {
            // §6.3 dynamic table size update(s), before the first field (§4.2).
            let size = self.table.capacity();
            if low < size {
                integer::encode(low, 5, 0x20, dst);
            }
            integer::encode(size, 5, 0x20, dst);
        }
        for (name, value, sensitivity) in fields {
            self.field(name, value, sensitivity, dst);
        }
    }

    fn field(&mut self, name: &[u8], value: &[u8], sensitivity: Sensitivity, dst: &mut BytesMut) {
        let in_static = static_table::find(name, value);
        if sensitivity == Sensitivity::Normal {
            if let Some(static_table::Match::Full(index)) = in_static {
                integer::encode(index, 7, 0x80, dst);
                return;
            }
        }
        let in_dynamic = self.table.find(name, value);
        if sensitivity == Sensitivity::Normal {
            if let Some(table::Match::Full(position)) = in_dynamic {
                integer::encode(dynamic_index(position), 7, 0x80, dst);
                return;
            }
        }
        let name_index = match (in_static, in_dynamic) {
            (Some(static_table::Match::Full(i) | static_table::Match::Name(i)), _) => i,
            (None, Some(table::Match::Full(p) | table::Match::Name(p))) => dynamic_index(p),
            (None, None) => 0,
        };
        let indexing = sensitivity == Sensitivity::Normal && self.worth_indexing(name, value);
        let (prefix, flags) = match (indexing, sensitivity) {
            (true, _) => (6, 0x40),
            (false, Sensitivity::NeverIndexed) => (4, 0x10),
            (false, Sensitivity::Normal) => (4, 0x00),
        };
        integer::encode(name_index, prefix, flags, dst);
        if name_index == 0 {
            string(name, dst);
        }
        string(value, dst);
        if indexing {
            self.table
                .insert(Bytes::copy_from_slice(name), Bytes::copy_from_slice(value));
        }
    }

    /// Insert unless the value changes every message or the entry would crowd out the rest.
    fn worth_indexing(&self, name: &[u8], value: &[u8]) -> bool {
        !UNINDEXED_NAMES.contains(&name)
            && entry_size(name.len(), value.len()) <= self.table.capacity() / 4 * 3
    }

    /// The dynamic table, for tests in sibling modules.
    #[cfg(test)]
    pub(crate) fn table(&self) -> &DynamicTable {
        &self.table
    }
}

/// HPACK index of the dynamic entry at `position` (§2.3.3).
fn dynamic_index(position: usize) -> usize {
    position + static_table::LEN + 1
}

/// A string literal (§5.2), Huffman-coded only when strictly shorter.
fn string(s: &[u8], dst: &mut BytesMut) {
    let huffman_len = huffman::encoded_len(s);
    if huffman_len < s.len() {
        integer::encode(huffman_len, 7, 0x80, dst);
        huffman::encode(s, dst);
    } else {
        integer::encode(s.len(), 7, 0x00, dst);
        dst.extend_from_slice(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(e: &mut Encoder, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        e.encode(
            fields
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes(), Sensitivity::Normal)),
            &mut dst,
        );
        dst.to_vec()
    }

    #[test]
    fn static_full_match_is_one_byte() {
        let mut e = Encoder::new();
        assert_eq!(
            encode(&mut e, &[(":method", "POST"), (":status", "200")]),
            [0x83, 0x88]
        );
        assert_eq!(e.table().len(), 0);
    }

    #[test]
    fn never_indexed_stays_literal_and_out_of_the_table() {
        let mut e = Encoder::new();
        let mut dst = BytesMut::new();
        for _ in 0..2 {
            dst.clear();
            e.encode(
                [(&b"authorization"[..], &b"x"[..], Sensitivity::NeverIndexed)],
                &mut dst,
            );
            // 0001 + name index 23 on 4 bits (15 + 8), then a 1-byte raw value.
            assert_eq!(dst.as_ref(), [0x1f, 0x08, 0x01, b'x']);
        }
        assert_eq!(e.table().len(), 0);
        // Even an exact static match stays literal.
        dst.clear();
        e.encode(
            [(&b":method"[..], &b"GET"[..], Sensitivity::NeverIndexed)],
            &mut dst,
        );
        assert_eq!(dst.as_ref(), [0x12, 0x03, b'G', b'E', b'T']);
    }

    #[test]
    fn volatile_names_are_not_indexed() {
        let mut e = Encoder::new();
        let first = encode(&mut e, &[("grpc-timeout", "1S"), ("content-length", "5")]);
        let second = encode(&mut e, &[("grpc-timeout", "1S"), ("content-length", "5")]);
        assert_eq!(first, second);
        assert_eq!(e.table().len(), 0);
        assert_eq!(first[0], 0x00, "literal without indexing, new name");
    }

    #[test]
    fn large_entries_are_not_indexed() {
        let mut e = Encoder::new();
        // 3/4 of 4096 = 3072: an entry of exactly 3072 is indexed, one byte more is not.
        let fits = "v".repeat(3072 - 32 - 1);
        encode(&mut e, &[("k", &fits)]);
        assert_eq!(e.table().len(), 1);
        let over = "w".repeat(3072 - 32);
        encode(&mut e, &[("k", &over)]);
        assert_eq!(e.table().len(), 1);
        assert_eq!(e.table().get(0).unwrap().value.len(), fits.len());
    }

    #[test]
    fn size_updates_signal_minimum_then_final() {
        let mut e = Encoder::new();
        encode(&mut e, &[("a", "b")]);
        e.set_max_table_size(100);
        e.set_max_table_size(4096);
        let block = encode(&mut e, &[]);
        // 001 + 100 on 5 bits (31 + 69), then 001 + 4096 (31 + 4065 = 0xe1 0x1f).
        assert_eq!(block, [0x3f, 69, 0x3f, 0xe1, 0x1f]);
        assert_eq!(encode(&mut e, &[]), [] as [u8; 0], "signalled once");
        e.set_max_table_size(4096);
        assert_eq!(encode(&mut e, &[]), [] as [u8; 0], "no change, no update");
        e.set_max_table_size(0);
        assert_eq!(
            encode(&mut e, &[("a", "b")]),
            [0x20, 0x00, 0x01, b'a', 0x01, b'b']
        );
        e.set_max_table_size(1 << 30);
        let block = encode(&mut e, &[]);
        assert_eq!(e.table().capacity(), MAX_ENCODER_TABLE_SIZE, "capped");
        assert_eq!(block, [0x3f, 0xe1, 0x7f], "16384 - 31 = 16353");
    }
}
