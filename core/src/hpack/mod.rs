//! HPACK header compression (RFC 7541), written for hostile input.

use bytes::Bytes;

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
