//! HPACK header compression (RFC 7541), written for hostile input.
//!
//! [`Decoder`] turns the peer's header blocks into [`Field`]s without panicking, looping or
//! allocating past the list-size budget and the table size; [`Encoder`] compresses ours, with a
//! policy that makes a repeated gRPC request head one byte per field.

use core::fmt;

use bytes::Bytes;

mod decoder;
mod encoder;
mod huffman;
mod integer;
mod static_table;
mod table;

#[cfg(any(test, fuzzing))]
pub use decoder::fuzz_decode;
pub use decoder::{Decoder, FragmentError, PartialBlock};
pub use encoder::{Encoder, MAX_ENCODER_TABLE_SIZE, Sensitivity};

/// One decoded header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field name, as received (HTTP/2 requires lowercase; checked by the caller).
    pub name: Bytes,
    /// The field value.
    pub value: Bytes,
    /// The peer marked the field "never indexed" (RFC 7541 §6.2.3): keep it out of any
    /// compression context when forwarding.
    pub never_indexed: bool,
}

/// Why a header block could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The block is malformed or breaks a table rule: connection error COMPRESSION_ERROR
    /// (RFC 9113 §4.3). The decoder's state is unusable afterwards.
    Compression(&'static str),
    /// The decoded header list exceeds `max_list_size` (RFC 9113 §6.5.2 sizes: name + value + 32
    /// per field). The whole block WAS still processed, so the dynamic table stays in sync and
    /// the connection can go on (the caller answers with a stream error); fields past the limit
    /// were not emitted nor kept in memory.
    ListTooLarge {
        /// The size of the whole decoded list, saturating.
        size: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compression(reason) => write!(f, "HPACK compression error: {reason}"),
            Self::ListTooLarge { size } => {
                write!(f, "header list of {size} bytes exceeds the limit")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests;
