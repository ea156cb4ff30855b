//! Decoding header blocks (RFC 7541 §3, §6), written for hostile input: every length is checked
//! against the block before use, every allocation is bounded by the list-size budget or the
//! table size, and nothing panics.

use bytes::{Buf, Bytes, BytesMut};

use super::table::{DynamicTable, entry_size};
use super::{DecodeError, Field, huffman, integer, static_table};
use crate::reader::Reader;

/// Decodes the header blocks one peer sends on one connection, keeping its dynamic table in step
/// with the peer's encoder. Feed it every block of the connection, in order.
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// Our SETTINGS_HEADER_TABLE_SIZE: the most a size update may ask for (§6.3).
    max_table_size: usize,
    /// We lowered our setting below the table's current maximum: the next block must start with
    /// a size update (§4.2).
    update_required: bool,
    /// Huffman output is decoded here, then copied out at its exact size. Its capacity is bounded
    /// by the largest list-size budget or table size seen.
    scratch: Vec<u8>,
}

/// A decoded string literal.
enum Str {
    /// The string's bytes. `borrowed`: a slice of the block, to be copied before it is kept in
    /// the table (so a small entry never pins a large block in memory).
    Bytes { bytes: Bytes, borrowed: bool },
    /// A Huffman string longer than anything we could emit or store: only its length was kept.
    Overflow(usize),
}

impl Str {
    fn len(&self) -> usize {
        match self {
            Self::Bytes { bytes, .. } => bytes.len(),
            Self::Overflow(len) => *len,
        }
    }
}

/// Tracks the decoded header list against `max_list_size` (RFC 9113 §6.5.2 sizes).
#[derive(Debug)]
struct List {
    max: usize,
    /// Size of the fields emitted so far; `<= max`.
    used: usize,
    /// Size of every field of the block, emitted or not (saturating).
    total: usize,
    /// A field did not fit: nothing more is emitted.
    over: bool,
}

impl List {
    /// How many more bytes (§6.5.2 sizes) may still be emitted.
    fn remaining(&self) -> usize {
        if self.over { 0 } else { self.max - self.used }
    }

    /// Emits the field if it fits in the budget; otherwise the list is over and stays so.
    fn offer(
        &mut self,
        name: Bytes,
        value: Bytes,
        never_indexed: bool,
        emit: &mut impl FnMut(Field),
    ) {
        let size = entry_size(name.len(), value.len());
        self.total = self.total.saturating_add(size);
        if size <= self.remaining() {
            self.used += size;
            emit(Field {
                name,
                value,
                never_indexed,
            });
        } else {
            self.over = true;
        }
    }

    /// Counts a field too large to have been kept.
    fn exceed(&mut self, size: usize) {
        self.total = self.total.saturating_add(size);
        self.over = true;
    }
}

const fn compression(reason: &'static str) -> DecodeError {
    DecodeError::Compression(reason)
}

/// Why decoding one representation stopped.
enum Stop {
    /// The block is malformed: COMPRESSION_ERROR, for this reason.
    Error(&'static str),
    /// The representation runs past the end of the bytes given: decoding it needs at least
    /// this many bytes of the buffer (counted from the buffer's start, not the
    /// representation's).
    Short(usize),
}

/// One header block being decoded piece by piece (see [`Decoder::decode_fragment`]).
#[derive(Debug)]
pub(crate) struct BlockState {
    list: List,
    updates: u8,
    field_seen: bool,
}

/// How far [`Decoder::decode_fragment`] got through the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Bytes fully decoded (whole representations), from the start of the buffer.
    pub(crate) consumed: usize,
    /// When `consumed` stopped short of the end: the unconsumed rest must grow to at least
    /// this many bytes before another attempt can progress (a representation split across
    /// fragments). 0 when everything was consumed.
    pub(crate) need: usize,
}

/// Why a fragment of a header block could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FragmentError {
    /// The block is malformed: connection error COMPRESSION_ERROR (RFC 9113 §4.3).
    Compression(&'static str),
    /// One representation (a field, or a string of it) is split across fragments and is
    /// larger than the caller lets be buffered: it is not decoded, so the decoder's state is
    /// lost and the connection must end.
    FieldTooLarge {
        /// Bytes the representation needs at least.
        need: usize,
    },
}

/// A header block arriving in fragments (HEADERS, then CONTINUATION frames): each fragment is
/// decoded as it arrives, and only a representation cut in two by a fragment boundary is
/// buffered until the rest of it arrives. Memory is the emitted fields (bounded by the list
/// limit) plus at most `max_tail` bytes, however long the block; the dynamic table stays in
/// step with the peer's encoder past the list limit too.
#[derive(Debug)]
pub struct PartialBlock {
    state: BlockState,
    /// The start of a representation not yet complete.
    tail: BytesMut,
    /// `tail` must hold at least this many bytes before decoding it can progress.
    need: usize,
    /// Raw bytes of the block so far.
    total: usize,
}

impl PartialBlock {
    /// A block whose decoded list may hold `max_list_size` bytes (RFC 9113 §6.5.2 sizes).
    pub fn new(max_list_size: usize) -> Self {
        Self {
            state: Decoder::start_block(max_list_size),
            tail: BytesMut::new(),
            need: 0,
            total: 0,
        }
    }

    /// Raw bytes of the block received so far.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Raw bytes buffered: the start of a representation not yet complete.
    pub fn buffered(&self) -> usize {
        self.tail.len()
    }

    /// A field did not fit the list limit: nothing more of this block is emitted, and
    /// [`finish`](Self::finish) will report [`DecodeError::ListTooLarge`].
    pub fn is_over(&self) -> bool {
        self.state.list.over
    }

    /// Decodes what `fragment` completes; `last`: the block ends with it (END_HEADERS).
    /// Emitted fields are slices of `fragment` where possible (zero copy), as in
    /// [`Decoder::decode`]. A representation cut off at the end of `fragment` is kept for the
    /// next one, unless it needs more than `max_tail` bytes.
    pub fn push(
        &mut self,
        decoder: &mut Decoder,
        fragment: &Bytes,
        last: bool,
        max_tail: usize,
        mut emit: impl FnMut(Field),
    ) -> Result<(), FragmentError> {
        self.total = self.total.saturating_add(fragment.len());
        let mut rest = fragment.clone();
        while !self.tail.is_empty() {
            // Only what the cut representation needs, so that the rest of the fragment is
            // decoded where it lies.
            let take = self.need.saturating_sub(self.tail.len()).min(rest.len());
            self.tail.extend_from_slice(&rest[..take]);
            rest.advance(take);
            let end = last && rest.is_empty();
            if self.tail.len() < self.need && !end {
                return Ok(());
            }
            let buf = core::mem::take(&mut self.tail).freeze();
            let progress = decoder
                .decode_fragment(&mut self.state, &buf, end, &mut emit)
                .map_err(FragmentError::Compression)?;
            self.keep(buf, progress, max_tail)?;
        }
        if rest.is_empty() {
            return Ok(());
        }
        let progress = decoder
            .decode_fragment(&mut self.state, &rest, last, &mut emit)
            .map_err(FragmentError::Compression)?;
        self.keep(rest, progress, max_tail)
    }

    /// After the last fragment: the checks that need the whole block
    /// ([`Decoder::finish_block`]).
    pub fn finish(self, decoder: &mut Decoder) -> Result<(), DecodeError> {
        decoder.finish_block(self.state)
    }

    /// Keeps what `progress` left of `buf` as the tail.
    fn keep(
        &mut self,
        buf: Bytes,
        progress: Progress,
        max_tail: usize,
    ) -> Result<(), FragmentError> {
        if progress.consumed == buf.len() {
            return Ok(());
        }
        if progress.need > max_tail {
            return Err(FragmentError::FieldTooLarge {
                need: progress.need,
            });
        }
        self.need = progress.need;
        let rest = buf.slice(progress.consumed..);
        drop(buf);
        // Unshared when nothing of it was emitted: no copy.
        self.tail = rest
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        Ok(())
    }
}

impl Decoder {
    /// `max_table_size`: the SETTINGS_HEADER_TABLE_SIZE in force, the most the peer's encoder
    /// may use; the table starts at that maximum (RFC 7541 §4.2). On an HTTP/2 connection
    /// that is 4,096 until the peer acknowledged ours (RFC 9113 §4.3.1), then
    /// [`set_max_table_size`](Self::set_max_table_size).
    pub fn new(max_table_size: usize) -> Self {
        Self {
            table: DynamicTable::new(max_table_size),
            max_table_size,
            update_required: false,
            scratch: Vec::new(),
        }
    }

    /// Our SETTINGS_HEADER_TABLE_SIZE changed (the peer acknowledged it). When it falls below
    /// the table's current maximum, the peer's next block must open with a size update (§4.2);
    /// a block that does not is a COMPRESSION_ERROR.
    pub fn set_max_table_size(&mut self, max: usize) {
        self.max_table_size = max;
        self.update_required |= self.table.capacity() > max;
    }

    /// Decodes one complete header block. Names and values are `Bytes` slices of `block` when
    /// literal and not Huffman-coded (zero copy), clones of table entries (refcount, no copy)
    /// when indexed, fresh only when Huffman-decoded.
    ///
    /// On [`DecodeError::ListTooLarge`] the whole block was still processed, so the table stays
    /// in sync; on [`DecodeError::Compression`] the connection must end.
    pub fn decode(
        &mut self,
        block: &Bytes,
        max_list_size: usize,
        mut emit: impl FnMut(Field),
    ) -> Result<(), DecodeError> {
        let mut state = Self::start_block(max_list_size);
        self.decode_fragment(&mut state, block, true, &mut emit)
            .map_err(DecodeError::Compression)?;
        self.finish_block(state)
    }

    /// The state for a new header block whose decoded list may hold `max_list_size` bytes
    /// (RFC 9113 §6.5.2 sizes).
    pub(crate) fn start_block(max_list_size: usize) -> BlockState {
        BlockState {
            list: List {
                max: max_list_size,
                used: 0,
                total: 0,
                over: false,
            },
            updates: 0,
            field_seen: false,
        }
    }

    /// Decodes every whole representation at the start of `buf`, a piece of the block that
    /// `state` follows: what came before it was consumed by earlier calls, what
    /// [`Progress::consumed`] leaves is to be given again, with more bytes after it, in the
    /// next call. A representation cut off by the end of `buf` is left whole, with no effect
    /// on the table or the list, unless `last` (the block ends with `buf`): then it is a
    /// COMPRESSION_ERROR. Fields are emitted in order as they are decoded, as by
    /// [`decode`](Self::decode); exceeding the list limit is not an error until
    /// [`finish_block`](Self::finish_block).
    pub(crate) fn decode_fragment(
        &mut self,
        state: &mut BlockState,
        buf: &Bytes,
        last: bool,
        emit: &mut impl FnMut(Field),
    ) -> Result<Progress, &'static str> {
        let mut r = Reader::new(buf);
        loop {
            let start = buf.len() - r.remaining();
            if start == buf.len() {
                return Ok(Progress {
                    consumed: start,
                    need: 0,
                });
            }
            match self.representation(state, buf, &mut r, emit) {
                Ok(()) => {}
                Err(Stop::Error(error)) => return Err(error),
                Err(Stop::Short(_)) if last => {
                    return Err("header block ends inside a representation (RFC 7541 §5.1, §5.2)");
                }
                Err(Stop::Short(end)) => {
                    return Ok(Progress {
                        consumed: start,
                        need: end - start,
                    });
                }
            }
        }
    }

    /// The block ended and [`decode_fragment`](Self::decode_fragment) consumed all of it:
    /// the checks that need the whole block.
    pub(crate) fn finish_block(&mut self, state: BlockState) -> Result<(), DecodeError> {
        if self.update_required {
            return Err(compression(
                "missing dynamic table size update after a smaller SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §4.2)",
            ));
        }
        if state.list.over {
            return Err(DecodeError::ListTooLarge {
                size: state.list.total,
            });
        }
        Ok(())
    }

    /// Decodes the representation at `r`, which reads `block`. Nothing changes (table, list,
    /// state) unless it is decoded whole; [`Stop::Short`] offsets are into `block`.
    fn representation(
        &mut self,
        state: &mut BlockState,
        block: &Bytes,
        r: &mut Reader<'_>,
        emit: &mut impl FnMut(Field),
    ) -> Result<(), Stop> {
        let first = r.u8().map_err(|_| Stop::Short(block.len() + 1))?;
        if first & 0xe0 == 0x20 {
            // §6.3 dynamic table size update: only before the first field (§4.2).
            if state.field_seen {
                return Err(Stop::Error(
                    "dynamic table size update after a header field (RFC 7541 §4.2)",
                ));
            }
            if state.updates >= 2 {
                return Err(Stop::Error(
                    "more than two dynamic table size updates (RFC 7541 §4.2)",
                ));
            }
            let size = self.integer(first, 5, block, r)?;
            if size > self.max_table_size {
                return Err(Stop::Error(
                    "dynamic table size update above SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §6.3)",
                ));
            }
            state.updates += 1;
            self.table.set_capacity(size);
            self.update_required = false;
            return Ok(());
        }
        if self.update_required {
            return Err(Stop::Error(
                "missing dynamic table size update after a smaller SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §4.2)",
            ));
        }
        if first & 0x80 != 0 {
            // §6.1 indexed header field.
            let index = self.integer(first, 7, block, r)?;
            let (name, value) = self.lookup(index)?;
            state.list.offer(name, value, false, emit);
        } else if first & 0x40 != 0 {
            // §6.2.1 literal with incremental indexing.
            self.literal(first, 6, true, false, block, r, &mut state.list, emit)?;
        } else {
            // §6.2.2 without indexing (0000xxxx), §6.2.3 never indexed (0001xxxx).
            let never = first & 0x10 != 0;
            self.literal(first, 4, false, never, block, r, &mut state.list, emit)?;
        }
        state.field_seen = true;
        Ok(())
    }

    /// Decodes a prefix integer (§5.1) as a `usize`; `block` is what `r` reads.
    fn integer(
        &self,
        first: u8,
        prefix: u8,
        block: &[u8],
        r: &mut Reader<'_>,
    ) -> Result<usize, Stop> {
        let value = integer::decode(first, prefix, r).map_err(|e| match e {
            integer::IntegerError::Truncated => Stop::Short(block.len() + 1),
            e => Stop::Error(e.reason()),
        })?;
        usize::try_from(value).map_err(|_| Stop::Error("integer too large for this platform"))
    }

    /// The entry at HPACK `index`: 1..=61 static, 62.. dynamic (§2.3.3).
    fn lookup(&self, index: usize) -> Result<(Bytes, Bytes), Stop> {
        if index == 0 {
            return Err(Stop::Error("index 0 (RFC 7541 §6.1)"));
        }
        if let Some((name, value)) = static_table::get(index) {
            return Ok((Bytes::from_static(name), Bytes::from_static(value)));
        }
        index
            .checked_sub(static_table::LEN + 1)
            .and_then(|position| self.table.get(position))
            .map(|e| (e.name.clone(), e.value.clone()))
            .ok_or(Stop::Error(
                "index beyond the dynamic table (RFC 7541 §2.3.3)",
            ))
    }

    /// A literal header field (§6.2): name index or literal name, then literal value.
    #[allow(clippy::too_many_arguments)] // reason: one call per representation, all state is needed
    fn literal(
        &mut self,
        first: u8,
        prefix: u8,
        indexing: bool,
        never_indexed: bool,
        block: &Bytes,
        r: &mut Reader<'_>,
        list: &mut List,
        emit: &mut impl FnMut(Field),
    ) -> Result<(), Stop> {
        // The most worth keeping of name + value + 32: what can still be emitted, or stored when
        // indexing. Huffman output beyond it is counted, never held (the HPACK bomb).
        let keep = list
            .remaining()
            .max(if indexing { self.table.capacity() } else { 0 });
        let index = self.integer(first, prefix, block, r)?;
        let name = if index == 0 {
            self.string(block, r, keep.saturating_sub(32))?
        } else {
            let (name, _) = self.lookup(index)?;
            Str::Bytes {
                bytes: name,
                borrowed: false,
            }
        };
        let cap = keep.saturating_sub(32).saturating_sub(name.len());
        let value = self.string(block, r, cap)?;
        let size = entry_size(name.len(), value.len());
        match (name, value) {
            (
                Str::Bytes {
                    bytes: name,
                    borrowed: name_borrowed,
                },
                Str::Bytes {
                    bytes: value,
                    borrowed: value_borrowed,
                },
            ) => {
                if indexing {
                    // §4.4: `insert` empties the table if the entry is larger than it.
                    self.table.insert(
                        compact(&name, name_borrowed),
                        compact(&value, value_borrowed),
                    );
                }
                list.offer(name, value, never_indexed, emit);
            }
            _ => {
                // A string overflowed `keep`, so the entry is larger than the table (§4.4
                // empties it) and than the remaining list budget.
                if indexing {
                    self.table.clear();
                }
                list.exceed(size);
            }
        }
        Ok(())
    }

    /// A string literal (§5.2): a 7-bit prefix length with the Huffman flag, then the octets.
    /// Huffman output beyond `cap` bytes is checked but not kept.
    fn string(&mut self, block: &Bytes, r: &mut Reader<'_>, cap: usize) -> Result<Str, Stop> {
        let first = r.u8().map_err(|_| Stop::Short(block.len() + 1))?;
        let len = self.integer(first, 7, block, r)?;
        let start = block.len() - r.remaining();
        let raw = r
            .take(len)
            .map_err(|_| Stop::Short(start.saturating_add(len)))?;
        if first & 0x80 == 0 {
            return Ok(Str::Bytes {
                bytes: block.slice_ref(raw),
                borrowed: true,
            });
        }
        self.scratch.clear();
        let decoded =
            huffman::decode(raw, cap, &mut self.scratch).map_err(|e| Stop::Error(e.reason()))?;
        if decoded > cap {
            return Ok(Str::Overflow(decoded));
        }
        Ok(Str::Bytes {
            bytes: Bytes::copy_from_slice(&self.scratch),
            borrowed: false,
        })
    }

    /// The dynamic table, for tests in sibling modules.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn table(&self) -> &DynamicTable {
        &self.table
    }
}

/// A copy of `bytes` for the table if it is a slice of the block, else a refcount clone.
fn compact(bytes: &Bytes, borrowed: bool) -> Bytes {
    if borrowed {
        Bytes::copy_from_slice(bytes)
    } else {
        bytes.clone()
    }
}

/// Decodes arbitrary bytes as a sequence of header blocks with small limits; must never panic,
/// and checks the decoder's invariants after every block. The first byte picks the table size
/// and the list limit; then each block is a length byte and that many bytes (a length byte of
/// 0xff instead changes our SETTINGS_HEADER_TABLE_SIZE to 16 × the next byte).
#[cfg(any(test, fuzzing))]
pub fn fuzz_decode(data: &[u8]) {
    let mut r = Reader::new(data);
    let Ok(setup) = r.u8() else { return };
    let max_list = 64 + usize::from(setup >> 4) * 32;
    let table_size = usize::from(setup & 0x0f) * 64;
    let mut decoder = Decoder::new(table_size);
    // The same blocks again, each cut in three fragments: the same fields, the same outcome.
    let mut fragmented = Decoder::new(table_size);
    while let Ok(len) = r.u8() {
        if len == 0xff {
            let Ok(size) = r.u8() else { return };
            decoder.set_max_table_size(usize::from(size) * 16);
            fragmented.set_max_table_size(usize::from(size) * 16);
            continue;
        }
        let take = usize::from(len).min(r.remaining());
        let Ok(chunk) = r.take(take) else { return };
        let block = Bytes::copy_from_slice(chunk);
        let mut emitted = 0usize;
        let mut fields = Vec::new();
        let result = decoder.decode(&block, max_list, |f| {
            emitted += entry_size(f.name.len(), f.value.len());
            fields.push(f);
        });
        assert!(emitted <= max_list, "emitted past the list limit");
        let table = decoder.table();
        assert!(table.size() <= table.capacity(), "table over its size");
        let (again, again_fields) = fuzz_fragments(&mut fragmented, &block, max_list);
        assert_eq!(again_fields, fields, "fragments emitted other fields");
        match result {
            Err(DecodeError::Compression(_)) => {
                assert!(
                    matches!(again, Err(DecodeError::Compression(_))),
                    "{again:?}"
                );
                return;
            }
            Err(DecodeError::ListTooLarge { size }) => {
                assert!(size > max_list);
                assert_eq!(again, Err(DecodeError::ListTooLarge { size }));
            }
            Ok(()) => assert_eq!(again, Ok(())),
        }
        assert!(
            table.capacity() <= decoder.max_table_size,
            "table over SETTINGS"
        );
    }
}

/// Decodes `block` as three fragments cut at a third and two thirds of it.
#[cfg(any(test, fuzzing))]
fn fuzz_fragments(
    decoder: &mut Decoder,
    block: &Bytes,
    max_list: usize,
) -> (Result<(), DecodeError>, Vec<Field>) {
    let mut fields = Vec::new();
    let mut partial = PartialBlock::new(max_list);
    let (a, b) = (block.len() / 3, block.len() * 2 / 3);
    for (range, last) in [(0..a, false), (a..b, false), (b..block.len(), true)] {
        let pushed = partial.push(decoder, &block.slice(range), last, usize::MAX, |f| {
            fields.push(f)
        });
        match pushed {
            Ok(()) => {}
            Err(FragmentError::Compression(reason)) => {
                return (Err(DecodeError::Compression(reason)), fields);
            }
            Err(FragmentError::FieldTooLarge { .. }) => unreachable!("no tail bound"),
        }
    }
    (partial.finish(decoder), fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpack::huffman;
    use bytes::BytesMut;

    type Decoded = Result<Vec<(Vec<u8>, Vec<u8>)>, DecodeError>;

    /// Decodes with a generous list limit; returns the fields or the error.
    fn run(d: &mut Decoder, block: &[u8]) -> Decoded {
        let mut out = Vec::new();
        d.decode(&Bytes::copy_from_slice(block), 1 << 20, |f| {
            out.push((f.name.to_vec(), f.value.to_vec()))
        })?;
        Ok(out)
    }

    fn is_compression(r: Decoded) -> bool {
        matches!(r, Err(DecodeError::Compression(_)))
    }

    fn huff(s: &[u8]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        integer::encode(huffman::encoded_len(s), 7, 0x80, &mut dst);
        huffman::encode(s, &mut dst);
        dst.to_vec()
    }

    fn raw(s: &[u8]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        integer::encode(s.len(), 7, 0, &mut dst);
        dst.extend_from_slice(s);
        dst.to_vec()
    }

    /// A literal with incremental indexing and a new name.
    fn indexed_literal(name: &[u8], value: &[u8]) -> Vec<u8> {
        let mut v = vec![0x40];
        v.extend(raw(name));
        v.extend(raw(value));
        v
    }

    #[test]
    fn index_zero_and_out_of_range_are_rejected() {
        let mut d = Decoder::new(4096);
        assert!(is_compression(run(&mut d, &[0x80])));
        let mut d = Decoder::new(4096);
        assert_eq!(run(&mut d, &[0x80 | 61]).unwrap()[0].0, b"www-authenticate");
        assert!(
            is_compression(run(&mut d, &[0x80 | 62])),
            "empty dynamic table"
        );
        run(&mut d, &indexed_literal(b"k", b"v")).unwrap();
        assert_eq!(
            run(&mut d, &[0x80 | 62]).unwrap(),
            [(b"k".to_vec(), b"v".to_vec())]
        );
        assert!(
            is_compression(run(&mut d, &[0x80 | 63])),
            "one past the end"
        );
        // Out-of-range name index in a literal.
        assert!(is_compression(run(&mut d, &[0x40 | 63, 0x00])));
        // Huge index: integer overflow.
        assert!(is_compression(run(
            &mut d,
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
        )));
    }

    #[test]
    fn size_update_rules() {
        // Above our SETTINGS_HEADER_TABLE_SIZE, and exactly at it.
        let mut d = Decoder::new(4096);
        assert!(is_compression(run(&mut d, &[0x3f, 0xe2, 0x1f]))); // 4097
        let mut d = Decoder::new(4096);
        assert!(run(&mut d, &[0x3f, 0xe1, 0x1f]).is_ok()); // 4096
        // Two are allowed, three are not.
        assert!(run(&mut d, &[0x20, 0x3f, 0xe1, 0x1f, 0x82]).is_ok());
        assert!(is_compression(run(&mut d, &[0x20, 0x20, 0x20, 0x82])));
        // After a field.
        let mut d = Decoder::new(4096);
        assert!(is_compression(run(&mut d, &[0x82, 0x20])));
    }

    #[test]
    fn size_update_evicts() {
        let mut d = Decoder::new(4096);
        run(&mut d, &indexed_literal(b"k", b"v")).unwrap();
        assert_eq!(d.table().len(), 1);
        run(&mut d, &[0x20]).unwrap();
        assert_eq!(d.table().len(), 0);
        assert!(is_compression(run(&mut d, &[0x80 | 62])));
    }

    #[test]
    fn lowered_setting_requires_an_update() {
        let mut d = Decoder::new(4096);
        d.set_max_table_size(1024);
        assert!(is_compression(run(&mut d, &[0x82])), "§4.2: update missing");
        let mut d = Decoder::new(4096);
        d.set_max_table_size(1024);
        assert!(
            is_compression(run(&mut d, &[0x3f, 0xe2, 0x07])),
            "1025 > 1024"
        );
        let mut d = Decoder::new(4096);
        d.set_max_table_size(1024);
        assert!(run(&mut d, &[0x3f, 0xe1, 0x07, 0x82]).is_ok(), "1024");
        assert!(run(&mut d, &[0x82]).is_ok(), "owed once");
        // Raising the setting owes nothing.
        let mut d = Decoder::new(4096);
        d.set_max_table_size(8192);
        assert!(run(&mut d, &[0x82]).is_ok());
    }

    #[test]
    fn truncated_blocks_are_rejected() {
        let full = indexed_literal(b"name", b"value");
        for cut in 1..full.len() {
            let mut d = Decoder::new(4096);
            assert!(is_compression(run(&mut d, &full[..cut])), "cut at {cut}");
        }
        // A string length pointing past the end.
        let mut d = Decoder::new(4096);
        assert!(is_compression(run(&mut d, &[0x04, 0x7f, 0x7f])));
        // A huge declared length is refused before anything is allocated.
        let mut d = Decoder::new(4096);
        assert!(is_compression(run(
            &mut d,
            &[0x00, 0xff, 0xff, 0xff, 0xff, 0x0f]
        )));
    }

    #[test]
    fn bad_huffman_is_rejected() {
        let mut block = vec![0x00];
        block.extend(raw(b"k"));
        block.extend([0x84, 0xff, 0xff, 0xff, 0xff]); // EOS
        assert!(is_compression(run(&mut Decoder::new(4096), &block)));
        let mut block = vec![0x00];
        block.extend(raw(b"k"));
        block.extend([0x81, 0x00]); // zero padding
        assert!(is_compression(run(&mut Decoder::new(4096), &block)));
        let mut block = vec![0x00];
        block.extend(huff(b"abc"));
        block.extend([0x82, 0x07, 0xff]); // '0' then 11 bits of padding
        assert!(is_compression(run(&mut Decoder::new(4096), &block)));
    }

    #[test]
    fn never_indexed_flag_and_zero_copy() {
        let mut d = Decoder::new(4096);
        let mut block = vec![0x10];
        block.extend(raw(b"password"));
        block.extend(raw(b"secret"));
        let block = Bytes::from(block);
        let mut fields = Vec::new();
        d.decode(&block, 1000, |f| fields.push(f)).unwrap();
        assert_eq!(fields.len(), 1);
        assert!(fields[0].never_indexed);
        let range = block.as_ptr_range();
        assert!(
            range.contains(&fields[0].value.as_ptr()),
            "value is a slice of the block"
        );
        assert_eq!(d.table().len(), 0);
    }

    #[test]
    fn entry_larger_than_table_empties_it() {
        let mut d = Decoder::new(100);
        run(&mut d, &indexed_literal(b"a", b"1")).unwrap();
        assert_eq!(d.table().len(), 1);
        // 32 + 1 + 68 = 101 > 100: emitted, not stored, table emptied (§4.4).
        let big = [b'x'; 68];
        let fields = run(&mut d, &indexed_literal(b"b", &big)).unwrap();
        assert_eq!(fields[0].1.len(), 68);
        assert_eq!(d.table().len(), 0);
        // Exactly 100 fits.
        run(&mut d, &indexed_literal(b"b", &big[..67])).unwrap();
        assert_eq!(d.table().size(), 100);
    }

    fn list_of(fields: &[(&[u8], &[u8])]) -> (Vec<u8>, usize) {
        let mut block = Vec::new();
        let mut size = 0;
        for (n, v) in fields {
            block.push(0x00);
            block.extend(raw(n));
            block.extend(huff(v));
            size += n.len() + v.len() + 32;
        }
        (block, size)
    }

    #[test]
    fn list_size_limit_one_byte_over() {
        let (block, size) = list_of(&[(b"aaa", b"hello"), (b"bbbb", b"world wide")]);
        let block = Bytes::from(block);
        let mut d = Decoder::new(4096);
        let mut n = 0;
        d.decode(&block, size, |_| n += 1).unwrap();
        assert_eq!(n, 2);
        let mut n = 0;
        assert_eq!(
            d.decode(&block, size - 1, |_| n += 1),
            Err(DecodeError::ListTooLarge { size })
        );
        assert_eq!(n, 1, "the first field fitted, the second did not");
    }

    #[test]
    fn list_too_large_keeps_the_table_in_sync() {
        let mut d = Decoder::new(4096);
        let mut block = indexed_literal(b"big", &[b'v'; 200]);
        block.extend(indexed_literal(b"small", b"1"));
        let block = Bytes::from(block);
        let mut n = 0;
        let r = d.decode(&block, 100, |_| n += 1);
        assert_eq!(r, Err(DecodeError::ListTooLarge { size: 235 + 38 }));
        assert_eq!(n, 0);
        // Both entries were inserted: the next block can reference them.
        let fields = run(&mut d, &[0x80 | 62, 0x80 | 63]).unwrap();
        assert_eq!(fields[0].0, b"small");
        assert_eq!(fields[1].1.len(), 200);
    }

    #[test]
    fn huffman_string_over_budget_is_not_held() {
        // A Huffman value far larger than the budget and the table: counted, not stored.
        let value = vec![b'0'; 50_000];
        let mut block = vec![0x40];
        block.extend(raw(b"k"));
        block.extend(huff(&value));
        let mut d = Decoder::new(4096);
        let r = d.decode(&Bytes::from(block), 1000, |_| panic!("nothing fits"));
        assert_eq!(r, Err(DecodeError::ListTooLarge { size: 50_033 }));
        assert!(
            d.scratch.capacity() <= 4096,
            "scratch bounded by the table size"
        );
        assert_eq!(d.table().len(), 0);
    }

    #[test]
    fn hpack_bomb_is_bounded() {
        // One ~4 KB entry, then thousands of one-byte references to it.
        let mut d = Decoder::new(4096);
        let mut block = indexed_literal(b"x", &[b'b'; 4000]);
        block.extend(std::iter::repeat_n(0x80 | 62, 10_000));
        let block = Bytes::from(block);
        let max = 16 * 1024;
        let mut emitted = 0usize;
        let mut count = 0;
        let r = d.decode(&block, max, |f| {
            emitted += f.name.len() + f.value.len() + 32;
            count += 1;
        });
        let per = 4000 + 1 + 32;
        assert_eq!(r, Err(DecodeError::ListTooLarge { size: per * 10_001 }));
        assert_eq!(count, max / per);
        assert!(emitted <= max);
        // And the decoder still works.
        assert_eq!(run(&mut d, &[0x82]).unwrap().len(), 1);
    }

    /// Decodes `block` cut at `cuts` through a [`PartialBlock`]; returns the fields (or the
    /// error) and the most bytes it buffered at once.
    fn run_fragments(
        d: &mut Decoder,
        block: &[u8],
        cuts: &[usize],
        max_list: usize,
    ) -> (Decoded, usize) {
        let block = Bytes::copy_from_slice(block);
        let mut partial = PartialBlock::new(max_list);
        let mut out = Vec::new();
        let mut buffered = 0;
        let mut at = 0;
        let ends: Vec<usize> = cuts.iter().copied().chain([block.len()]).collect();
        for (i, &end) in ends.iter().enumerate() {
            let last = i + 1 == ends.len();
            let fragment = block.slice(at..end);
            at = end;
            let pushed = partial.push(d, &fragment, last, usize::MAX, |f| {
                out.push((f.name.to_vec(), f.value.to_vec()))
            });
            buffered = buffered.max(partial.buffered());
            match pushed {
                Ok(()) => {}
                Err(FragmentError::Compression(reason)) => {
                    return (Err(DecodeError::Compression(reason)), buffered);
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(partial.total(), block.len());
        (partial.finish(d).map(|()| out), buffered)
    }

    fn sample_block() -> Vec<u8> {
        let mut block = vec![0x3f, 0xe1, 0x1f]; // size update to 4096
        block.extend(indexed_literal(b"custom-key", b"custom-value"));
        block.push(0x82);
        block.push(0x40);
        block.extend(huff(b"x-huffman-name"));
        block.extend(huff(b"a value long enough to need several bytes"));
        block.push(0x10);
        block.extend(raw(b"password"));
        block.extend(raw(&[b's'; 200])); // a length needing two bytes
        block.push(0x80 | 63);
        block
    }

    #[test]
    fn a_block_cut_anywhere_decodes_like_the_whole_block() {
        let block = sample_block();
        let whole = run(&mut Decoder::new(4096), &block).unwrap();
        for a in 0..=block.len() {
            for b in a..=block.len() {
                let mut d = Decoder::new(4096);
                let (got, _) = run_fragments(&mut d, &block, &[a, b], 1 << 20);
                assert_eq!(got.as_ref(), Ok(&whole), "cut at {a} and {b}");
                // The table is the same: the next block reads the same entries.
                assert_eq!(
                    run(&mut d, &[0x80 | 62, 0x80 | 63]).unwrap(),
                    run(
                        &mut Decoder::new(4096),
                        &[&block[..], &[0x80 | 62, 0x80 | 63]].concat()
                    )
                    .unwrap()[whole.len()..],
                    "cut at {a} and {b}"
                );
            }
        }
    }

    #[test]
    fn a_block_one_byte_per_fragment_buffers_one_representation_at_most() {
        let block = sample_block();
        let cuts: Vec<usize> = (1..block.len()).collect();
        let mut d = Decoder::new(4096);
        let (got, buffered) = run_fragments(&mut d, &block, &cuts, 1 << 20);
        assert_eq!(got.unwrap(), run(&mut Decoder::new(4096), &block).unwrap());
        // All but the last byte of the largest representation (never-indexed "password" with
        // a 200-byte value): it is decoded as soon as that byte arrives.
        assert_eq!(buffered, 1 + 1 + 8 + 2 + 200 - 1);
    }

    #[test]
    fn a_block_cut_inside_a_representation_at_its_end_is_a_compression_error() {
        let full = indexed_literal(b"name", b"value");
        for cut in 1..full.len() {
            let mut d = Decoder::new(4096);
            let (got, _) = run_fragments(&mut d, &full[..cut], &[cut / 2], 1 << 20);
            assert!(is_compression(got), "cut at {cut}");
        }
    }

    #[test]
    fn list_limit_across_fragments_keeps_the_table_in_sync() {
        let mut block = indexed_literal(b"big", &[b'v'; 200]);
        block.extend(indexed_literal(b"small", b"1"));
        for cut in 0..=block.len() {
            let mut d = Decoder::new(4096);
            let (got, _) = run_fragments(&mut d, &block, &[cut], 100);
            assert_eq!(got, Err(DecodeError::ListTooLarge { size: 235 + 38 }));
            let fields = run(&mut d, &[0x80 | 62, 0x80 | 63]).unwrap();
            assert_eq!(fields[0].0, b"small");
            assert_eq!(fields[1].1.len(), 200);
        }
    }

    #[test]
    fn a_representation_larger_than_the_tail_bound_is_refused() {
        let block = Bytes::from(indexed_literal(b"k", &[b'v'; 1000]));
        let mut d = Decoder::new(4096);
        let mut partial = PartialBlock::new(1 << 20);
        // Cut inside the value: the representation needs all its 1 + 2 + 3 + 1,000 bytes.
        let first = block.slice(..10);
        assert_eq!(
            partial.push(&mut d, &first, false, 1000, |_| {}),
            Err(FragmentError::FieldTooLarge { need: 1006 })
        );
        // Within the bound, the same cut is buffered.
        let mut d = Decoder::new(4096);
        let mut partial = PartialBlock::new(1 << 20);
        partial.push(&mut d, &first, false, 1006, |_| {}).unwrap();
        assert_eq!(partial.buffered(), 10);
        let mut n = 0;
        partial
            .push(&mut d, &block.slice(10..), true, 1006, |_| n += 1)
            .unwrap();
        assert_eq!(n, 1);
        partial.finish(&mut d).unwrap();
    }

    #[test]
    fn a_fragment_after_a_cut_is_decoded_where_it_lies() {
        // A literal cut in its name, then a long fragment: only the cut representation is
        // copied; the fields of the rest are slices of the second fragment.
        let mut block = vec![0x00];
        block.extend(raw(b"first"));
        block.extend(raw(b"1"));
        let second_field = block.len();
        block.push(0x00);
        block.extend(raw(b"second"));
        block.extend(raw(&[b'x'; 100]));
        let block = Bytes::from(block);
        let mut d = Decoder::new(4096);
        let mut partial = PartialBlock::new(1 << 20);
        partial
            .push(&mut d, &block.slice(..3), false, 64, |_| panic!("not yet"))
            .unwrap();
        let rest = block.slice(3..);
        let range = rest.as_ptr_range();
        let mut fields = Vec::new();
        partial
            .push(&mut d, &rest, true, 64, |f| fields.push(f))
            .unwrap();
        partial.finish(&mut d).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(&fields[0].name[..], b"first");
        assert!(
            range.contains(&fields[1].value.as_ptr()),
            "a slice of the fragment"
        );
        assert!(second_field > 3);
    }

    #[test]
    fn fuzz_decode_survives_pseudo_random_input() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..4000 {
            let len = (next() % 300) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Bias some inputs towards plausible HPACK: small indices and short strings.
            if i % 2 == 0 {
                for b in data.iter_mut().skip(1) {
                    if *b & 0x80 != 0 && *b & 0x40 != 0 {
                        *b &= 0x8f;
                    }
                }
            }
            fuzz_decode(&data);
        }
    }
}
