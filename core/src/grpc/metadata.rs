//! Custom metadata (PROTOCOL-HTTP2.md, "Custom-Metadata"): an ordered multimap of lower-case
//! keys to ASCII or binary values, and its wire form.

use core::fmt;

use bytes::Bytes;

use super::base64;

/// Why a metadata key or value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataError {
    /// The key is empty.
    EmptyKey,
    /// The key holds a byte outside `0-9 a-z _ - .` (upper case included, for wire keys).
    InvalidKey(u8),
    /// The key is a header gRPC or HTTP/2 uses itself (see [`is_reserved_header`]).
    ReservedKey,
    /// An ASCII value holds a byte outside printable ASCII 0x20..=0x7E.
    InvalidValue(u8),
    /// A binary value under a key not ending in `-bin`, or an ASCII value under one that does.
    KindMismatch,
    /// A `-bin` value from the wire is not valid base64.
    BadBase64(base64::Base64Error),
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyKey => f.write_str("empty metadata key"),
            Self::InvalidKey(b) => write!(f, "invalid byte {b:#04x} in metadata key"),
            Self::ReservedKey => f.write_str("reserved header name used as metadata key"),
            Self::InvalidValue(b) => write!(f, "invalid byte {b:#04x} in ASCII metadata value"),
            Self::KindMismatch => f.write_str(
                "binary values need a key ending in -bin, ASCII values one that does not",
            ),
            Self::BadBase64(e) => write!(f, "binary metadata value: {e}"),
        }
    }
}

impl std::error::Error for MetadataError {}

/// A handler's metadata it could not build ends its call INTERNAL, so `?` works on
/// `Metadata::insert` in a handler.
impl From<MetadataError> for super::Status {
    fn from(error: MetadataError) -> Self {
        super::Status::internal(format!("invalid metadata: {error}"))
    }
}

/// `true` for header names that are not custom metadata: gRPC never accepts them from the
/// application as metadata nor surfaces them as metadata.
///
/// Pseudo-headers, `content-type`, `te`, the `grpc-*` headers the protocol itself defines
/// (PROTOCOL-HTTP2.md), `content-length`, `host` and the HTTP/2 connection-specific headers
/// (RFC 9113 §8.2.2). `user-agent` is deliberately not reserved: like grpc-go and C-core,
/// servers surface it as metadata (the transport still writes its own, see `head`).
pub fn is_reserved_header(name: &[u8]) -> bool {
    name.first() == Some(&b':')
        || matches!(
            name,
            b"content-type"
                | b"te"
                | b"grpc-status"
                | b"grpc-message"
                | b"grpc-status-details-bin"
                | b"grpc-timeout"
                | b"grpc-encoding"
                | b"grpc-accept-encoding"
                | b"grpc-message-type"
                | b"content-length"
                | b"host"
                | b"connection"
                | b"keep-alive"
                | b"proxy-connection"
                | b"transfer-encoding"
                | b"upgrade"
        )
}

fn is_key_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'_' | b'-' | b'.')
}

/// A validated metadata key: non-empty, only `0-9 a-z _ - .` (PROTOCOL-HTTP2.md,
/// "Header-Name"), and not reserved. Keys ending in `-bin` carry binary values.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MetadataKey(Bytes);

impl MetadataKey {
    /// A key from the wire: must already be lower case; any other byte is rejected.
    pub fn from_wire(name: Bytes) -> Result<Self, MetadataError> {
        if name.is_empty() {
            return Err(MetadataError::EmptyKey);
        }
        if let Some(&b) = name.iter().find(|&&b| !is_key_byte(b)) {
            return Err(MetadataError::InvalidKey(b));
        }
        if is_reserved_header(&name) {
            return Err(MetadataError::ReservedKey);
        }
        Ok(Self(name))
    }

    /// A key given by the application: upper-case letters are lowered, then validated as
    /// [`MetadataKey::from_wire`] does.
    pub fn parse(key: &str) -> Result<Self, MetadataError> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            Self::from_wire(Bytes::from(key.to_ascii_lowercase()))
        } else {
            Self::from_wire(Bytes::copy_from_slice(key.as_bytes()))
        }
    }

    /// A key from a literal, validated without copying.
    ///
    /// # Panics
    /// When `key` is not a valid lower-case metadata key: a literal is a programming error,
    /// never peer input.
    pub fn from_static(key: &'static str) -> Self {
        match Self::from_wire(Bytes::from_static(key.as_bytes())) {
            Ok(k) => k,
            Err(e) => panic!("invalid static metadata key {key:?}: {e}"),
        }
    }

    /// The key as text (always ASCII).
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes pass validation, so this never falls back.
        core::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The key's bytes, as sent on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `true` when the key ends in `-bin`: its values are binary and travel base64-encoded.
    pub fn is_binary(&self) -> bool {
        self.0.ends_with(b"-bin")
    }
}

impl fmt::Debug for MetadataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MetadataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MetadataValue {
    /// Printable ASCII (0x20..=0x7E), for keys not ending in `-bin`.
    Ascii(Bytes),
    /// Arbitrary bytes, for keys ending in `-bin` (base64 on the wire, raw here).
    Binary(Bytes),
}

impl MetadataValue {
    /// An ASCII value, checked to be printable ASCII (PROTOCOL-HTTP2.md, "ASCII-Value").
    /// Leading and trailing spaces are dropped: an HTTP/2 field value may not have them
    /// (RFC 9113 §8.2.1), so the value kept is the one the peer will see.
    pub fn ascii(value: impl Into<Bytes>) -> Result<Self, MetadataError> {
        let value = value.into();
        if let Some(&b) = value.iter().find(|&&b| !(0x20..=0x7e).contains(&b)) {
            return Err(MetadataError::InvalidValue(b));
        }
        let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
        let end = value
            .iter()
            .rposition(|&b| b != b' ')
            .map_or(start, |i| i + 1);
        Ok(Self::Ascii(value.slice(start..end)))
    }

    /// The raw bytes (decoded, for binary values).
    pub fn as_bytes(&self) -> &Bytes {
        match self {
            Self::Ascii(b) | Self::Binary(b) => b,
        }
    }

    /// The value as text, for ASCII values.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Ascii(b) => core::str::from_utf8(b).ok(),
            Self::Binary(_) => None,
        }
    }

    fn is_binary(&self) -> bool {
        matches!(self, Self::Binary(_))
    }
}

/// Custom metadata in wire order. Keys repeat; lookups compare keys case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(MetadataKey, MetadataValue)>,
}

fn key_matches(stored: &MetadataKey, key: &str) -> bool {
    stored.as_bytes().eq_ignore_ascii_case(key.as_bytes())
}

impl Metadata {
    /// Empty metadata; allocates nothing until the first entry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries (a repeated key counts once per value).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `value` under `key` after the existing entries, checking that the value kind
    /// matches the key (`-bin` keys take binary values).
    pub fn append_value(
        &mut self,
        key: MetadataKey,
        value: MetadataValue,
    ) -> Result<(), MetadataError> {
        if key.is_binary() != value.is_binary() {
            return Err(MetadataError::KindMismatch);
        }
        self.entries.push((key, value));
        Ok(())
    }

    /// Replaces every value under `key` with `value` (kept at the first entry's position).
    pub fn insert_value(
        &mut self,
        key: MetadataKey,
        value: MetadataValue,
    ) -> Result<(), MetadataError> {
        if key.is_binary() != value.is_binary() {
            return Err(MetadataError::KindMismatch);
        }
        match self.entries.iter().position(|(k, _)| *k == key) {
            Some(first) => {
                let mut index = 0;
                self.entries.retain(|(k, _)| {
                    let keep = index <= first || *k != key;
                    index += 1;
                    keep
                });
                if let Some(slot) = self.entries.get_mut(first) {
                    slot.1 = value;
                }
            }
            None => self.entries.push((key, value)),
        }
        Ok(())
    }

    /// Sets the ASCII `key` to `value`, replacing earlier values.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let value = MetadataValue::ascii(Bytes::copy_from_slice(value.as_bytes()))?;
        self.insert_value(MetadataKey::parse(key)?, value)
    }

    /// Adds an ASCII `value` under `key`, keeping earlier values.
    pub fn append(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let value = MetadataValue::ascii(Bytes::copy_from_slice(value.as_bytes()))?;
        self.append_value(MetadataKey::parse(key)?, value)
    }

    /// Sets the binary `key` (ending in `-bin`) to `value`, replacing earlier values.
    pub fn insert_bin(&mut self, key: &str, value: impl Into<Bytes>) -> Result<(), MetadataError> {
        self.insert_value(
            MetadataKey::parse(key)?,
            MetadataValue::Binary(value.into()),
        )
    }

    /// Adds a binary `value` under `key` (ending in `-bin`), keeping earlier values.
    pub fn append_bin(&mut self, key: &str, value: impl Into<Bytes>) -> Result<(), MetadataError> {
        self.append_value(
            MetadataKey::parse(key)?,
            MetadataValue::Binary(value.into()),
        )
    }

    /// The first ASCII value under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.get_all(key).find_map(MetadataValue::as_str)
    }

    /// The first binary value under `key`.
    pub fn get_bin(&self, key: &str) -> Option<&Bytes> {
        self.get_all(key).find_map(|v| match v {
            MetadataValue::Binary(b) => Some(b),
            MetadataValue::Ascii(_) => None,
        })
    }

    /// Every value under `key`, in wire order.
    pub fn get_all<'a, 'k>(
        &'a self,
        key: &'k str,
    ) -> impl Iterator<Item = &'a MetadataValue> + use<'a, 'k> {
        self.entries
            .iter()
            .filter(move |(k, _)| key_matches(k, key))
            .map(|(_, v)| v)
    }

    /// `true` when some entry has `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| key_matches(k, key))
    }

    /// Removes every entry under `key`, returning the first removed value.
    pub fn remove(&mut self, key: &str) -> Option<MetadataValue> {
        let first = self.entries.iter().position(|(k, _)| key_matches(k, key))?;
        let (_, value) = self.entries.remove(first);
        self.entries.retain(|(k, _)| !key_matches(k, key));
        Some(value)
    }

    /// The entries in wire order.
    pub fn iter(&self) -> core::slice::Iter<'_, (MetadataKey, MetadataValue)> {
        self.entries.iter()
    }

    /// Adds one received field (RFC 9113 field already checked by the caller). The key must
    /// be a valid lower-case, non-reserved metadata key; a `-bin` value is base64-decoded,
    /// padded or not; an ASCII value is stripped of surrounding spaces and tabs and must be
    /// printable ASCII.
    pub fn push_from_wire(&mut self, name: Bytes, value: Bytes) -> Result<(), MetadataError> {
        let key = MetadataKey::from_wire(name)?;
        let value = if key.is_binary() {
            let mut decoded = Vec::new();
            base64::decode(&value, &mut decoded).map_err(MetadataError::BadBase64)?;
            MetadataValue::Binary(Bytes::from(decoded))
        } else {
            let start = value
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t'))
                .unwrap_or(value.len());
            let end = value
                .iter()
                .rposition(|b| !matches!(b, b' ' | b'\t'))
                .map_or(start, |i| i + 1);
            MetadataValue::ascii(value.slice(start..end.max(start)))?
        };
        self.entries.push((key, value));
        Ok(())
    }

    /// Calls `f(name, value)` for each entry in its wire form (binary values base64-encoded
    /// without padding), encoding into `scratch`, which is cleared and reused per entry.
    pub fn for_each_wire_with(&self, scratch: &mut Vec<u8>, mut f: impl FnMut(&[u8], &[u8])) {
        for (k, v) in &self.entries {
            match v {
                MetadataValue::Ascii(b) => f(k.as_bytes(), b),
                MetadataValue::Binary(b) => {
                    scratch.clear();
                    base64::encode_unpadded(b, scratch);
                    f(k.as_bytes(), scratch);
                }
            }
        }
    }

    /// As [`Metadata::for_each_wire_with`] with a scratch buffer local to the call (allocated
    /// only when there is a binary entry).
    pub fn for_each_wire(&self, f: impl FnMut(&[u8], &[u8])) {
        let mut scratch = Vec::new();
        self.for_each_wire_with(&mut scratch, f);
    }
}

impl IntoIterator for Metadata {
    type Item = (MetadataKey, MetadataValue);
    type IntoIter = std::vec::IntoIter<(MetadataKey, MetadataValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a Metadata {
    type Item = &'a (MetadataKey, MetadataValue);
    type IntoIter = core::slice::Iter<'a, (MetadataKey, MetadataValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(md: &Metadata) -> Vec<(String, String)> {
        let mut out = Vec::new();
        md.for_each_wire(|n, v| {
            out.push((
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            ))
        });
        out
    }

    #[test]
    fn key_validation() {
        assert!(MetadataKey::from_wire(Bytes::from_static(b"x-trace_id.v2")).is_ok());
        assert_eq!(
            MetadataKey::from_wire(Bytes::new()),
            Err(MetadataError::EmptyKey)
        );
        assert_eq!(
            MetadataKey::from_wire(Bytes::from_static(b"X-Id")),
            Err(MetadataError::InvalidKey(b'X')),
            "wire keys are never lowered"
        );
        for bad in [&b"a b"[..], b"a:b", b"a/b", b"a\0", b"caf\xc3\xa9", b"a!"] {
            assert!(matches!(
                MetadataKey::from_wire(Bytes::copy_from_slice(bad)),
                Err(MetadataError::InvalidKey(_))
            ));
        }
        assert_eq!(MetadataKey::parse("X-Id").unwrap().as_str(), "x-id");
        assert_eq!(MetadataKey::parse(""), Err(MetadataError::EmptyKey));
        assert_eq!(
            MetadataKey::parse("Grpc-Timeout"),
            Err(MetadataError::ReservedKey)
        );
        assert_eq!(MetadataKey::from_static("a-bin").as_str(), "a-bin");
        assert!(MetadataKey::from_static("a-bin").is_binary());
        assert!(!MetadataKey::from_static("a-binx").is_binary());
    }

    #[test]
    #[should_panic(expected = "invalid static metadata key")]
    fn from_static_rejects_invalid() {
        let _ = MetadataKey::from_static("Bad Key");
    }

    #[test]
    fn reserved_headers() {
        for name in [
            &b":path"[..],
            b":status",
            b"content-type",
            b"te",
            b"grpc-status",
            b"grpc-message",
            b"grpc-status-details-bin",
            b"grpc-timeout",
            b"grpc-encoding",
            b"grpc-accept-encoding",
            b"content-length",
            b"connection",
            b"keep-alive",
            b"proxy-connection",
            b"transfer-encoding",
            b"upgrade",
            b"host",
        ] {
            assert!(is_reserved_header(name), "{name:?}");
            let mut md = Metadata::new();
            assert!(
                md.push_from_wire(Bytes::copy_from_slice(name), Bytes::new())
                    .is_err()
            );
        }
        for name in [
            &b"user-agent"[..],
            b"grpc-previous-rpc-attempts",
            b"x-grpc-status",
            b"authorization",
        ] {
            assert!(!is_reserved_header(name), "{name:?}");
        }
        let mut md = Metadata::new();
        assert_eq!(md.insert("te", "trailers"), Err(MetadataError::ReservedKey));
        assert_eq!(
            md.insert("Content-Type", "x"),
            Err(MetadataError::ReservedKey)
        );
        assert!(md.is_empty());
    }

    #[test]
    fn multimap_operations_keep_wire_order() {
        let mut md = Metadata::new();
        md.append("a", "1").unwrap();
        md.append("b", "2").unwrap();
        md.append("A", "3").unwrap();
        md.append_bin("c-bin", &b"\x00\xff"[..]).unwrap();
        assert_eq!(md.len(), 4);
        assert_eq!(md.get("a"), Some("1"));
        assert_eq!(md.get("A"), Some("1"), "lookups ignore case");
        let all: Vec<_> = md.get_all("a").filter_map(MetadataValue::as_str).collect();
        assert_eq!(all, ["1", "3"]);
        assert_eq!(md.get_bin("c-bin").map(|b| &b[..]), Some(&b"\x00\xff"[..]));
        assert_eq!(md.get("c-bin"), None);
        assert_eq!(md.get_bin("a"), None);

        md.insert("a", "9").unwrap();
        let keys: Vec<_> = md.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c-bin"], "insert replaces in place");
        assert_eq!(md.get("a"), Some("9"));
        md.insert("new", "x").unwrap();
        assert_eq!(md.iter().last().map(|(k, _)| k.as_str()), Some("new"));

        assert_eq!(
            md.remove("B").and_then(|v| v.as_str().map(str::to_owned)),
            Some("2".into())
        );
        assert_eq!(md.remove("b"), None);
        assert!(!md.contains_key("b"));
        let owned: Vec<_> = md
            .clone()
            .into_iter()
            .map(|(k, _)| k.as_str().to_owned())
            .collect();
        assert_eq!(owned, ["a", "c-bin", "new"]);
        assert_eq!((&md).into_iter().count(), 3);
    }

    #[test]
    fn value_kinds_are_checked() {
        let mut md = Metadata::new();
        assert_eq!(md.insert("a-bin", "x"), Err(MetadataError::KindMismatch));
        assert_eq!(
            md.append_bin("a", &b"x"[..]),
            Err(MetadataError::KindMismatch)
        );
        assert_eq!(
            md.insert("a", "tab\there"),
            Err(MetadataError::InvalidValue(b'\t'))
        );
        assert_eq!(md.insert("a", "é"), Err(MetadataError::InvalidValue(0xc3)));
        assert_eq!(
            md.insert("a", "\x7f"),
            Err(MetadataError::InvalidValue(0x7f))
        );
        assert!(md.insert("a", " ~printable~ ").is_ok());
        assert_eq!(md.get("a"), Some("~printable~"), "edge spaces dropped");
        assert!(md.insert("a", "   ").is_ok());
        assert_eq!(md.get("a"), Some(""));
    }

    #[test]
    fn wire_round_trip_with_padded_and_unpadded_bin() {
        let mut md = Metadata::new();
        md.append("k", "v").unwrap();
        md.append_bin("k-bin", &b"\x01\x02"[..]).unwrap();
        md.append_bin("e-bin", Bytes::new()).unwrap();
        let w = wire(&md);
        assert_eq!(
            w,
            [
                ("k".into(), "v".into()),
                ("k-bin".into(), "AQI".into()),
                ("e-bin".into(), String::new())
            ]
        );
        let mut back = Metadata::new();
        for (n, v) in &w {
            back.push_from_wire(Bytes::from(n.clone()), Bytes::from(v.clone()))
                .unwrap();
        }
        assert_eq!(back, md);

        let mut padded = Metadata::new();
        padded
            .push_from_wire(Bytes::from_static(b"k-bin"), Bytes::from_static(b"AQI="))
            .unwrap();
        assert_eq!(
            padded.get_bin("k-bin").map(|b| &b[..]),
            Some(&b"\x01\x02"[..])
        );
        assert!(matches!(
            padded.push_from_wire(Bytes::from_static(b"k-bin"), Bytes::from_static(b"AQ!")),
            Err(MetadataError::BadBase64(_))
        ));
    }

    #[test]
    fn wire_ascii_values_trimmed_and_checked() {
        let mut md = Metadata::new();
        md.push_from_wire(Bytes::from_static(b"a"), Bytes::from_static(b" \tx y\t "))
            .unwrap();
        md.push_from_wire(Bytes::from_static(b"b"), Bytes::from_static(b"  "))
            .unwrap();
        assert_eq!(md.get("a"), Some("x y"));
        assert_eq!(md.get("b"), Some(""));
        assert_eq!(
            md.push_from_wire(Bytes::from_static(b"c"), Bytes::from_static(b"\x80")),
            Err(MetadataError::InvalidValue(0x80))
        );
        assert_eq!(
            md.push_from_wire(Bytes::from_static(b"C"), Bytes::from_static(b"v")),
            Err(MetadataError::InvalidKey(b'C'))
        );
    }

    #[test]
    fn scratch_is_reused() {
        let mut md = Metadata::new();
        md.append_bin("a-bin", vec![7u8; 30]).unwrap();
        md.append_bin("b-bin", vec![8u8; 3]).unwrap();
        let mut scratch = Vec::with_capacity(64);
        let ptr = scratch.as_ptr();
        let mut lens = Vec::new();
        md.for_each_wire_with(&mut scratch, |_, v| lens.push(v.len()));
        assert_eq!(lens, [40, 4]);
        assert_eq!(scratch.as_ptr(), ptr, "no reallocation");
    }
}
