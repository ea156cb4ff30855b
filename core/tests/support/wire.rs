//! Hand-built wire bytes shared by the raw-peer tests of the core (`core/tests`) and of the
//! real server and client (`tests/tests/hostile`, which includes this file by path): frames
//! with any header, raw SETTINGS, gRPC messages and literal-only HPACK blocks.
#![allow(dead_code, unreachable_pub)]

use anygrpc_core::frame::FrameType;
use bytes::{BufMut, Bytes, BytesMut};

/// A frame with any header and payload, valid or not.
pub fn raw_frame(kind: FrameType, flags: u8, stream: u32, payload: &[u8]) -> Bytes {
    let mut dst = BytesMut::with_capacity(9 + payload.len());
    let [_, a, b, c] = u32::try_from(payload.len())
        .expect("a test-sized payload")
        .to_be_bytes();
    dst.put_slice(&[a, b, c, kind.0, flags]);
    dst.put_u32(stream);
    dst.put_slice(payload);
    dst.freeze()
}

/// A SETTINGS frame with these raw (id, value) pairs, unchecked.
pub fn raw_settings(entries: &[(u16, u32)]) -> Bytes {
    let mut payload = BytesMut::new();
    for &(id, value) in entries {
        payload.put_u16(id);
        payload.put_u32(value);
    }
    raw_frame(FrameType::SETTINGS, 0, 0, &payload)
}

/// A gRPC length-prefixed message with this compressed flag.
pub fn grpc_message(compressed: u8, body: &[u8]) -> Bytes {
    let mut dst = BytesMut::with_capacity(5 + body.len());
    dst.put_u8(compressed);
    dst.put_u32(u32::try_from(body.len()).expect("a test-sized message"));
    dst.put_slice(body);
    dst.freeze()
}

/// `pairs` as owned fields.
pub fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1) after the bits in `first`.
pub fn hpack_int(value: usize, n: u8, first: u8, dst: &mut BytesMut) {
    let max = (1usize << n) - 1;
    if value < max {
        dst.put_u8(first | value as u8);
        return;
    }
    dst.put_u8(first | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        dst.put_u8((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    dst.put_u8(rest as u8);
}

/// One field as a literal with a new name (RFC 7541 §6.2), never Huffman-coded: `indexed`
/// inserts it in the dynamic table.
pub fn hpack_literal(name: &[u8], value: &[u8], indexed: bool, dst: &mut BytesMut) {
    dst.put_u8(if indexed { 0x40 } else { 0x00 });
    hpack_int(name.len(), 7, 0, dst);
    dst.put_slice(name);
    hpack_int(value.len(), 7, 0, dst);
    dst.put_slice(value);
}

/// A header block of literals without indexing: any name as given (upper case, duplicates,
/// connection headers), and no dynamic-table change on either side.
pub fn plain_block(fields: &[(String, String)]) -> Bytes {
    let mut dst = BytesMut::new();
    for (name, value) in fields {
        hpack_literal(name.as_bytes(), value.as_bytes(), false, &mut dst);
    }
    dst.freeze()
}
