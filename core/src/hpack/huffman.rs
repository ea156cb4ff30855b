//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B).
//!
//! Encoding packs the codes MSB first into a 64-bit accumulator. Decoding runs a finite-state
//! machine four bits at a time: the states are the 256 internal nodes of the code tree, and each
//! `(state, nibble)` pair gives the next state, at most one emitted symbol (the shortest code has
//! five bits, so a nibble finishes at most one), whether EOS was reached (an error, §5.2) and
//! whether stopping there would leave valid padding (fewer than 8 bits, all ones, §5.2). The
//! machine is built at compile time from [`CODES`]; the build asserts that the code is prefix-free
//! and complete, so a mistyped row fails to compile.

use bytes::{BufMut, BytesMut};

/// RFC 7541 Appendix B: `(code, length in bits)` for symbols 0..=255, then EOS (256). Codes are
/// right-aligned.
const CODES: [(u32, u8); 257] = [
    // 0..=15
    (0x1ff8, 13),
    (0x7fffd8, 23),
    (0xfffffe2, 28),
    (0xfffffe3, 28),
    (0xfffffe4, 28),
    (0xfffffe5, 28),
    (0xfffffe6, 28),
    (0xfffffe7, 28),
    (0xfffffe8, 28),
    (0xffffea, 24),
    (0x3ffffffc, 30),
    (0xfffffe9, 28),
    (0xfffffea, 28),
    (0x3ffffffd, 30),
    (0xfffffeb, 28),
    (0xfffffec, 28),
    // 16..=31
    (0xfffffed, 28),
    (0xfffffee, 28),
    (0xfffffef, 28),
    (0xffffff0, 28),
    (0xffffff1, 28),
    (0xffffff2, 28),
    (0x3ffffffe, 30),
    (0xffffff3, 28),
    (0xffffff4, 28),
    (0xffffff5, 28),
    (0xffffff6, 28),
    (0xffffff7, 28),
    (0xffffff8, 28),
    (0xffffff9, 28),
    (0xffffffa, 28),
    (0xffffffb, 28),
    // 32..=47: ' ' ! " # $ % & ' ( ) * + , - . /
    (0x14, 6),
    (0x3f8, 10),
    (0x3f9, 10),
    (0xffa, 12),
    (0x1ff9, 13),
    (0x15, 6),
    (0xf8, 8),
    (0x7fa, 11),
    (0x3fa, 10),
    (0x3fb, 10),
    (0xf9, 8),
    (0x7fb, 11),
    (0xfa, 8),
    (0x16, 6),
    (0x17, 6),
    (0x18, 6),
    // 48..=63: 0-9 : ; < = > ?
    (0x0, 5),
    (0x1, 5),
    (0x2, 5),
    (0x19, 6),
    (0x1a, 6),
    (0x1b, 6),
    (0x1c, 6),
    (0x1d, 6),
    (0x1e, 6),
    (0x1f, 6),
    (0x5c, 7),
    (0xfb, 8),
    (0x7ffc, 15),
    (0x20, 6),
    (0xffb, 12),
    (0x3fc, 10),
    // 64..=79: @ A-O
    (0x1ffa, 13),
    (0x21, 6),
    (0x5d, 7),
    (0x5e, 7),
    (0x5f, 7),
    (0x60, 7),
    (0x61, 7),
    (0x62, 7),
    (0x63, 7),
    (0x64, 7),
    (0x65, 7),
    (0x66, 7),
    (0x67, 7),
    (0x68, 7),
    (0x69, 7),
    (0x6a, 7),
    // 80..=95: P-Z [ \ ] ^ _
    (0x6b, 7),
    (0x6c, 7),
    (0x6d, 7),
    (0x6e, 7),
    (0x6f, 7),
    (0x70, 7),
    (0x71, 7),
    (0x72, 7),
    (0xfc, 8),
    (0x73, 7),
    (0xfd, 8),
    (0x1ffb, 13),
    (0x7fff0, 19),
    (0x1ffc, 13),
    (0x3ffc, 14),
    (0x22, 6),
    // 96..=111: ` a-o
    (0x7ffd, 15),
    (0x3, 5),
    (0x23, 6),
    (0x4, 5),
    (0x24, 6),
    (0x5, 5),
    (0x25, 6),
    (0x26, 6),
    (0x27, 6),
    (0x6, 5),
    (0x74, 7),
    (0x75, 7),
    (0x28, 6),
    (0x29, 6),
    (0x2a, 6),
    (0x7, 5),
    // 112..=127: p-z { | } ~ DEL
    (0x2b, 6),
    (0x76, 7),
    (0x2c, 6),
    (0x8, 5),
    (0x9, 5),
    (0x2d, 6),
    (0x77, 7),
    (0x78, 7),
    (0x79, 7),
    (0x7a, 7),
    (0x7b, 7),
    (0x7ffe, 15),
    (0x7fc, 11),
    (0x3ffd, 14),
    (0x1ffd, 13),
    (0xffffffc, 28),
    // 128..=143
    (0xfffe6, 20),
    (0x3fffd2, 22),
    (0xfffe7, 20),
    (0xfffe8, 20),
    (0x3fffd3, 22),
    (0x3fffd4, 22),
    (0x3fffd5, 22),
    (0x7fffd9, 23),
    (0x3fffd6, 22),
    (0x7fffda, 23),
    (0x7fffdb, 23),
    (0x7fffdc, 23),
    (0x7fffdd, 23),
    (0x7fffde, 23),
    (0xffffeb, 24),
    (0x7fffdf, 23),
    // 144..=159
    (0xffffec, 24),
    (0xffffed, 24),
    (0x3fffd7, 22),
    (0x7fffe0, 23),
    (0xffffee, 24),
    (0x7fffe1, 23),
    (0x7fffe2, 23),
    (0x7fffe3, 23),
    (0x7fffe4, 23),
    (0x1fffdc, 21),
    (0x3fffd8, 22),
    (0x7fffe5, 23),
    (0x3fffd9, 22),
    (0x7fffe6, 23),
    (0x7fffe7, 23),
    (0xffffef, 24),
    // 160..=175
    (0x3fffda, 22),
    (0x1fffdd, 21),
    (0xfffe9, 20),
    (0x3fffdb, 22),
    (0x3fffdc, 22),
    (0x7fffe8, 23),
    (0x7fffe9, 23),
    (0x1fffde, 21),
    (0x7fffea, 23),
    (0x3fffdd, 22),
    (0x3fffde, 22),
    (0xfffff0, 24),
    (0x1fffdf, 21),
    (0x3fffdf, 22),
    (0x7fffeb, 23),
    (0x7fffec, 23),
    // 176..=191
    (0x1fffe0, 21),
    (0x1fffe1, 21),
    (0x3fffe0, 22),
    (0x1fffe2, 21),
    (0x7fffed, 23),
    (0x3fffe1, 22),
    (0x7fffee, 23),
    (0x7fffef, 23),
    (0xfffea, 20),
    (0x3fffe2, 22),
    (0x3fffe3, 22),
    (0x3fffe4, 22),
    (0x7ffff0, 23),
    (0x3fffe5, 22),
    (0x3fffe6, 22),
    (0x7ffff1, 23),
    // 192..=207
    (0x3ffffe0, 26),
    (0x3ffffe1, 26),
    (0xfffeb, 20),
    (0x7fff1, 19),
    (0x3fffe7, 22),
    (0x7ffff2, 23),
    (0x3fffe8, 22),
    (0x1ffffec, 25),
    (0x3ffffe2, 26),
    (0x3ffffe3, 26),
    (0x3ffffe4, 26),
    (0x7ffffde, 27),
    (0x7ffffdf, 27),
    (0x3ffffe5, 26),
    (0xfffff1, 24),
    (0x1ffffed, 25),
    // 208..=223
    (0x7fff2, 19),
    (0x1fffe3, 21),
    (0x3ffffe6, 26),
    (0x7ffffe0, 27),
    (0x7ffffe1, 27),
    (0x3ffffe7, 26),
    (0x7ffffe2, 27),
    (0xfffff2, 24),
    (0x1fffe4, 21),
    (0x1fffe5, 21),
    (0x3ffffe8, 26),
    (0x3ffffe9, 26),
    (0xffffffd, 28),
    (0x7ffffe3, 27),
    (0x7ffffe4, 27),
    (0x7ffffe5, 27),
    // 224..=239
    (0xfffec, 20),
    (0xfffff3, 24),
    (0xfffed, 20),
    (0x1fffe6, 21),
    (0x3fffe9, 22),
    (0x1fffe7, 21),
    (0x1fffe8, 21),
    (0x7ffff3, 23),
    (0x3fffea, 22),
    (0x3fffeb, 22),
    (0x1ffffee, 25),
    (0x1ffffef, 25),
    (0xfffff4, 24),
    (0xfffff5, 24),
    (0x3ffffea, 26),
    (0x7ffff4, 23),
    // 240..=255
    (0x3ffffeb, 26),
    (0x7ffffe6, 27),
    (0x3ffffec, 26),
    (0x3ffffed, 26),
    (0x7ffffe7, 27),
    (0x7ffffe8, 27),
    (0x7ffffe9, 27),
    (0x7ffffea, 27),
    (0x7ffffeb, 27),
    (0xffffffe, 28),
    (0x7ffffec, 27),
    (0x7ffffed, 27),
    (0x7ffffee, 27),
    (0x7ffffef, 27),
    (0x7fffff0, 27),
    (0x3ffffee, 26),
    // 256: EOS
    (0x3fffffff, 30),
];

/// The end-of-string symbol. It must never appear in an encoded string (§5.2).
const EOS: u16 = 256;

/// A Huffman-coded string was malformed (RFC 7541 §5.2): the caller answers COMPRESSION_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HuffmanError {
    /// The EOS symbol appeared inside the string.
    Eos,
    /// The string ended with more than 7 bits of padding, or padding that is not all ones.
    Padding,
}

impl HuffmanError {
    /// What went wrong, for the COMPRESSION_ERROR reason.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Eos => "Huffman string contains EOS (RFC 7541 §5.2)",
            Self::Padding => "Huffman padding longer than 7 bits or not all ones (RFC 7541 §5.2)",
        }
    }
}

/// Length in bytes of `s` once Huffman-coded, padding included.
pub(crate) fn encoded_len(s: &[u8]) -> usize {
    let bits: usize = s
        .iter()
        .map(|&b| usize::from(CODES[usize::from(b)].1))
        .sum();
    bits.div_ceil(8)
}

/// Appends `s` Huffman-coded to `dst`, padded to a byte boundary with the most significant bits
/// of EOS (all ones, §5.2). Writes exactly [`encoded_len`] bytes.
pub(crate) fn encode(s: &[u8], dst: &mut BytesMut) {
    // `acc` holds `pending` not-yet-written bits (< 8) plus at most one 30-bit code: < 2^38.
    let mut acc: u64 = 0;
    let mut pending: u32 = 0;
    for &b in s {
        let (code, len) = CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        pending += u32::from(len);
        while pending >= 8 {
            pending -= 8;
            dst.put_u8(((acc >> pending) & 0xff) as u8);
        }
        acc &= (1u64 << pending) - 1;
    }
    if pending > 0 {
        let pad = 8 - pending;
        dst.put_u8((((acc << pad) | ((1u64 << pad) - 1)) & 0xff) as u8);
    }
}

/// Decodes the Huffman-coded `src`, appending at most `cap` bytes to `out`. Returns the full
/// decoded length, which is larger than `cap` when the output did not fit: the whole string is
/// still checked (EOS, padding) but nothing past `cap` is kept, so memory stays bounded by the
/// caller's limit (the HPACK bomb defence).
pub(crate) fn decode(src: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<usize, HuffmanError> {
    let start = out.len();
    // Every symbol takes at least 5 bits: the output never exceeds 8/5 of the input.
    out.reserve(cap.min(src.len().saturating_mul(8) / 5));
    let mut decoded = 0usize;
    let mut state = 0u8;
    let mut accepting = true;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let step = DECODE[usize::from(state)][usize::from(nibble)];
            if step.flags & FAIL != 0 {
                return Err(HuffmanError::Eos);
            }
            if step.flags & EMIT != 0 {
                decoded += 1;
                if decoded <= cap {
                    out.push(step.sym);
                }
            }
            state = step.next;
            accepting = step.flags & ACCEPT != 0;
        }
    }
    debug_assert!(out.len() - start <= cap);
    if accepting {
        Ok(decoded)
    } else {
        Err(HuffmanError::Padding)
    }
}

/// The step emits `sym`.
const EMIT: u8 = 1;
/// The step completed EOS: the string is invalid.
const FAIL: u8 = 2;
/// Ending the string after this step leaves valid padding: the bits since the last symbol are
/// fewer than 8 and all ones.
const ACCEPT: u8 = 4;

/// One transition of the decoding machine.
#[derive(Clone, Copy)]
struct Step {
    next: u8,
    sym: u8,
    flags: u8,
}

/// A child pointer with this bit set is a leaf holding a symbol (0..=256).
const LEAF: u16 = 0x8000;

/// The code tree: internal node 0 is the root. A complete code over 257 symbols has exactly 256
/// internal nodes, so node numbers fit a `u8`.
struct Tree {
    child: [[u16; 2]; 256],
    depth: [u8; 256],
    all_ones: [bool; 256],
}

const fn build_tree() -> Tree {
    let mut t = Tree {
        child: [[0; 2]; 256],
        depth: [0; 256],
        all_ones: [false; 256],
    };
    t.all_ones[0] = true;
    let mut nodes = 1usize;
    let mut sym = 0usize;
    while sym < CODES.len() {
        let (code, len) = CODES[sym];
        assert!(len >= 5 && len <= 30, "code lengths are 5..=30 bits");
        let mut node = 0usize;
        let mut i = len;
        while i > 1 {
            i -= 1;
            let bit = ((code >> i) & 1) as usize;
            let c = t.child[node][bit];
            assert!(c & LEAF == 0, "a code is a prefix of another");
            if c == 0 {
                assert!(
                    nodes < 256,
                    "too many internal nodes: the code is not a Huffman code"
                );
                t.child[node][bit] = nodes as u16;
                t.depth[nodes] = t.depth[node] + 1;
                t.all_ones[nodes] = t.all_ones[node] && bit == 1;
                node = nodes;
                nodes += 1;
            } else {
                node = c as usize;
            }
        }
        let bit = (code & 1) as usize;
        assert!(t.child[node][bit] == 0, "two codes collide");
        t.child[node][bit] = LEAF | sym as u16;
        sym += 1;
    }
    assert!(nodes == 256, "the code is not complete");
    let mut n = 0;
    while n < 256 {
        assert!(
            t.child[n][0] != 0 && t.child[n][1] != 0,
            "the code is not complete"
        );
        n += 1;
    }
    t
}

const fn build_decoder(t: &Tree) -> [[Step; 16]; 256] {
    let mut table = [[Step {
        next: 0,
        sym: 0,
        flags: 0,
    }; 16]; 256];
    let mut state = 0usize;
    while state < 256 {
        let mut nibble = 0usize;
        while nibble < 16 {
            let mut node = state;
            let mut flags = 0u8;
            let mut sym = 0u8;
            let mut bit = 4;
            while bit > 0 {
                bit -= 1;
                let c = t.child[node][(nibble >> bit) & 1];
                if c & LEAF != 0 {
                    let s = c & !LEAF;
                    if s == EOS {
                        flags |= FAIL;
                    } else {
                        flags |= EMIT;
                        sym = s as u8;
                    }
                    node = 0;
                } else {
                    node = c as usize;
                }
            }
            if t.all_ones[node] && t.depth[node] <= 7 {
                flags |= ACCEPT;
            }
            table[state][nibble] = Step {
                next: node as u8,
                sym,
                flags,
            };
            nibble += 1;
        }
        state += 1;
    }
    table
}

const TREE: Tree = build_tree();
static DECODE: [[Step; 16]; 256] = build_decoder(&TREE);

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    fn enc(s: &[u8]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode(s, &mut dst);
        assert_eq!(dst.len(), encoded_len(s));
        dst.to_vec()
    }

    fn dec(s: &[u8]) -> Result<Vec<u8>, HuffmanError> {
        let mut out = Vec::new();
        let n = decode(s, usize::MAX, &mut out)?;
        assert_eq!(n, out.len());
        Ok(out)
    }

    /// Strings from RFC 7541 Appendix C.4 and C.6.
    const VECTORS: &[(&str, &str)] = &[
        ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
        ("no-cache", "a8eb 1064 9cbf"),
        ("custom-key", "25a8 49e9 5ba9 7d7f"),
        ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
        ("302", "6402"),
        ("307", "640e ff"),
        ("private", "aec3 771a 4b"),
        (
            "Mon, 21 Oct 2013 20:13:21 GMT",
            "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
        ),
        (
            "https://www.example.com",
            "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
        ),
        ("gzip", "9bd9 ab"),
        (
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ),
    ];

    #[test]
    fn rfc_appendix_c_strings() {
        for &(plain, coded) in VECTORS {
            assert_eq!(enc(plain.as_bytes()), hex(coded), "encoding {plain}");
            assert_eq!(
                dec(&hex(coded)).unwrap(),
                plain.as_bytes(),
                "decoding {plain}"
            );
        }
    }

    #[test]
    fn code_is_canonical() {
        // Appendix B is a canonical code: sorted by (length, symbol), each code is the previous
        // one plus one, shifted left when the length grows. Checks the transcription row by row.
        let mut order: Vec<usize> = (0..257).collect();
        order.sort_by_key(|&s| (CODES[s].1, s));
        let mut expected = 0u32;
        let mut prev_len = CODES[order[0]].1;
        for &s in &order {
            let (code, len) = CODES[s];
            expected <<= len - prev_len;
            assert_eq!(code, expected, "symbol {s}");
            expected += 1;
            prev_len = len;
        }
        assert_eq!(CODES[usize::from(EOS)], (0x3fff_ffff, 30));
    }

    #[test]
    fn every_byte_round_trips_alone_and_together() {
        for b in 0..=255u8 {
            let s = [b, b, b];
            assert_eq!(dec(&enc(&s)).unwrap(), s);
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(dec(&enc(&all)).unwrap(), all);
        let rev: Vec<u8> = (0..=255).rev().collect();
        assert_eq!(dec(&enc(&rev)).unwrap(), rev);
        assert_eq!(dec(&[]).unwrap(), b"");
    }

    #[test]
    fn random_strings_round_trip() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            let s: Vec<u8> = (0..len)
                .map(|i| (x.rotate_left(i as u32 * 5) >> 3) as u8)
                .collect();
            assert_eq!(dec(&enc(&s)).unwrap(), s);
        }
    }

    #[test]
    fn eos_inside_string_is_rejected() {
        // EOS is 30 ones: four 0xff bytes hold it plus 2 bits of padding.
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xff]), Err(HuffmanError::Eos));
        // 'a' (00011) then EOS then padding.
        let mut bits = vec![0b0001_1111u8, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(dec(&bits), Err(HuffmanError::Eos));
        bits.truncate(1);
        // 'a' followed by 3 bits of ones padding: valid.
        assert_eq!(dec(&bits).unwrap(), b"a");
    }

    #[test]
    fn padding_rules() {
        // '0' is 00000: 3 padding bits of zeros are invalid, ones are valid.
        assert_eq!(dec(&[0b0000_0000]), Err(HuffmanError::Padding));
        assert_eq!(dec(&[0b0000_0111]).unwrap(), b"0");
        assert_eq!(dec(&[0b0000_0101]), Err(HuffmanError::Padding));
        // A whole byte of ones after a complete symbol is 8 bits of padding: too long.
        assert_eq!(dec(&[0b0000_0111, 0xff]), Err(HuffmanError::Padding));
        assert_eq!(dec(&[0xff]), Err(HuffmanError::Padding));
        // Exactly 7 bits of padding after "00000" + "000" ("0" then a partial code) is wrong,
        // but '%' (010101, 6 bits) + '0' (5 bits) + 5 padding ones is fine.
        let ok = enc(b"%0");
        assert_eq!(ok.len(), 2);
        assert_eq!(dec(&ok).unwrap(), b"%0");
    }

    #[test]
    fn output_is_capped_but_fully_checked() {
        let s = b"hello world, hello world";
        let coded = enc(s);
        let mut out = Vec::new();
        assert_eq!(decode(&coded, 5, &mut out), Ok(s.len()));
        assert_eq!(out, b"hello");
        let mut bad = coded.clone();
        bad.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        out.clear();
        assert_eq!(decode(&bad, 5, &mut out), Err(HuffmanError::Eos));
        assert!(out.len() <= 5);
    }

    #[test]
    fn hpack_crate_agrees_on_every_byte() {
        // Differential: the `hpack` crate's decoder reads our codes for every symbol.
        let mut theirs = hpack::huffman::HuffmanDecoder::new();
        for b in 0..=255u8 {
            let s = [b, b'a', b];
            assert_eq!(theirs.decode(&enc(&s)).unwrap(), s.to_vec(), "byte {b}");
        }
    }
}
