//! gRPC status codes (doc/statuscodes.md), the `Status` a call ends with, and the
//! percent-encoding of `grpc-message` (PROTOCOL-HTTP2.md, "Status-Message").

use core::fmt;

use bytes::Bytes;

use crate::error::ErrorCode;
use crate::reader::Reader;

/// A gRPC status code (doc/statuscodes.md). Values outside 0..=16 read as [`Code::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum Code {
    /// Not an error; returned on success.
    Ok = 0,
    /// The operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// Unknown error, or an error carrying no usable status.
    Unknown = 2,
    /// The client specified an invalid argument.
    InvalidArgument = 3,
    /// The deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// Some requested entity was not found.
    NotFound = 5,
    /// The entity a client attempted to create already exists.
    AlreadyExists = 6,
    /// The caller does not have permission to execute the operation.
    PermissionDenied = 7,
    /// Some resource has been exhausted (quota, memory, message size).
    ResourceExhausted = 8,
    /// The system is not in a state required for the operation.
    FailedPrecondition = 9,
    /// The operation was aborted, typically due to a concurrency issue.
    Aborted = 10,
    /// The operation was attempted past the valid range.
    OutOfRange = 11,
    /// The operation is not implemented or supported.
    Unimplemented = 12,
    /// An invariant expected by the underlying system was broken.
    Internal = 13,
    /// The service is currently unavailable; retrying may succeed.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request lacks valid authentication credentials.
    Unauthenticated = 16,
}

const ALL_CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 17] = ALL_CODES;

    /// The code with numeric value `v`; anything outside 0..=16 is [`Code::Unknown`].
    pub fn from_i32(v: i32) -> Code {
        usize::try_from(v)
            .ok()
            .and_then(|i| ALL_CODES.get(i).copied())
            .unwrap_or(Code::Unknown)
    }

    /// The numeric value sent in `grpc-status`.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The canonical upper-case name (doc/statuscodes.md), e.g. `"DEADLINE_EXCEEDED"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The `grpc-status` value as ASCII decimal, without allocating.
    pub fn as_decimal(self) -> &'static [u8] {
        const DIGITS: [&[u8]; 17] = [
            b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9", b"10", b"11", b"12", b"13",
            b"14", b"15", b"16",
        ];
        usize::try_from(self.as_i32())
            .ok()
            .and_then(|i| DIGITS.get(i).copied())
            .unwrap_or(b"2")
    }

    /// Maps the HTTP status of a response that carried no `grpc-status`
    /// (doc/http-grpc-status-mapping.md). Only for clients; never use it the other way round.
    pub fn from_http_status(status: u16) -> Code {
        match status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }

    /// Maps an RST_STREAM (or GOAWAY) error code received on a call (PROTOCOL-HTTP2.md,
    /// "Errors": CANCEL → CANCELLED, REFUSED_STREAM → UNAVAILABLE, ENHANCE_YOUR_CALM →
    /// RESOURCE_EXHAUSTED, INADEQUATE_SECURITY → PERMISSION_DENIED, all others → INTERNAL).
    pub fn from_h2_error(code: ErrorCode) -> Code {
        match code {
            ErrorCode::CANCEL => Code::Cancelled,
            ErrorCode::REFUSED_STREAM => Code::Unavailable,
            ErrorCode::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
            ErrorCode::INADEQUATE_SECURITY => Code::PermissionDenied,
            _ => Code::Internal,
        }
    }

    /// Parses a `grpc-status` value: one or more ASCII digits, nothing else (no sign, no
    /// spaces). `None` when malformed; a well-formed number above 16 is [`Code::Unknown`]
    /// (statuscodes.md: unknown codes are treated as UNKNOWN).
    pub fn parse(value: &[u8]) -> Option<Code> {
        if value.is_empty() {
            return None;
        }
        let mut n: u32 = 0;
        for &b in value {
            if !b.is_ascii_digit() {
                return None;
            }
            // Saturate: any value past 16 maps to Unknown, so precision above that is moot.
            n = n.saturating_mul(10).saturating_add(u32::from(b - b'0'));
        }
        Some(Code::from_i32(i32::try_from(n).unwrap_or(i32::MAX)))
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a call: a code, a human-readable message and optional binary details
/// (the raw bytes of `grpc-status-details-bin`, usually a serialised `google.rpc.Status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    code: Code,
    message: String,
    details: Bytes,
}

impl Status {
    /// A status with `code` and `message` and no details.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Bytes::new(),
        }
    }

    /// Success: code OK, empty message.
    pub fn ok() -> Self {
        Self::new(Code::Ok, String::new())
    }

    /// The same status carrying `details` as `grpc-status-details-bin`.
    pub fn with_details(mut self, details: impl Into<Bytes>) -> Self {
        self.details = details.into();
        self
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The status message (already percent-decoded when received).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The raw `grpc-status-details-bin` bytes (empty when absent).
    pub fn details(&self) -> &Bytes {
        &self.details
    }

    /// `true` when the code is OK.
    pub fn is_ok(&self) -> bool {
        self.code == Code::Ok
    }

    /// The status for a stream reset with `code` by the peer (see [`Code::from_h2_error`]).
    pub fn from_h2_reset(code: ErrorCode) -> Self {
        Self::new(
            Code::from_h2_error(code),
            format!("stream reset by peer with {code}"),
        )
    }

    /// CANCELLED with `message`.
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(Code::Cancelled, message)
    }

    /// UNKNOWN with `message`.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(Code::Unknown, message)
    }

    /// INTERNAL with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// UNAVAILABLE with `message`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, message)
    }

    /// DEADLINE_EXCEEDED with `message`.
    pub fn deadline_exceeded(message: impl Into<String>) -> Self {
        Self::new(Code::DeadlineExceeded, message)
    }

    /// RESOURCE_EXHAUSTED with `message`.
    pub fn resource_exhausted(message: impl Into<String>) -> Self {
        Self::new(Code::ResourceExhausted, message)
    }

    /// UNIMPLEMENTED with `message`.
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(Code::Unimplemented, message)
    }

    /// INVALID_ARGUMENT with `message`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// NOT_FOUND with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// ALREADY_EXISTS with `message`.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(Code::AlreadyExists, message)
    }

    /// PERMISSION_DENIED with `message`.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, message)
    }

    /// FAILED_PRECONDITION with `message`.
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, message)
    }

    /// ABORTED with `message`.
    pub fn aborted(message: impl Into<String>) -> Self {
        Self::new(Code::Aborted, message)
    }

    /// OUT_OF_RANGE with `message`.
    pub fn out_of_range(message: impl Into<String>) -> Self {
        Self::new(Code::OutOfRange, message)
    }

    /// DATA_LOSS with `message`.
    pub fn data_loss(message: impl Into<String>) -> Self {
        Self::new(Code::DataLoss, message)
    }

    /// UNAUTHENTICATED with `message`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "status: {}, message: {:?}",
            self.code.as_str(),
            self.message
        )
    }
}

impl std::error::Error for Status {}

/// `true` when `b` goes on the wire as is in `grpc-message`: printable ASCII except `%`
/// (PROTOCOL-HTTP2.md: "Percent-Byte-Unencoded").
fn is_unreserved(b: u8) -> bool {
    (0x20..=0x7e).contains(&b) && b != b'%'
}

/// `true` when `msg` needs no percent-encoding (so it can be sent without a copy).
pub fn grpc_message_is_plain(msg: &str) -> bool {
    msg.bytes().all(is_unreserved) && !msg.starts_with(' ') && !msg.ends_with(' ')
}

/// Appends `msg` percent-encoded for `grpc-message`: bytes outside 0x20..=0x7E and `%` become
/// `%XX` with upper-case hex (PROTOCOL-HTTP2.md, "Status-Message"), and so does a space at
/// either end, which a field value may not have (RFC 9113 §8.2.1).
pub fn encode_grpc_message(msg: &str, dst: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let last = msg.len().saturating_sub(1);
    for (i, b) in msg.bytes().enumerate() {
        let edge_space = b == b' ' && (i == 0 || i == last);
        if is_unreserved(b) && !edge_space {
            dst.push(b);
        } else {
            dst.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes a received `grpc-message`: valid `%XX` become the byte, anything else (an invalid
/// or truncated escape included) is kept verbatim, then the bytes are read as UTF-8 with
/// invalid sequences replaced (PROTOCOL-HTTP2.md: be lenient when decoding).
pub fn decode_grpc_message(value: &[u8]) -> String {
    if !value.contains(&b'%') {
        return String::from_utf8_lossy(value).into_owned();
    }
    let mut out = Vec::with_capacity(value.len());
    let mut r = Reader::new(value);
    while let Ok(b) = r.u8() {
        if b == b'%' {
            let mut ahead = r.clone();
            if let Ok(&[h, l]) = ahead.take(2) {
                if let (Some(h), Some(l)) = (hex_value(h), hex_value(l)) {
                    out.push(h << 4 | l);
                    r = ahead;
                    continue;
                }
            }
        }
        out.push(b);
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_numbers_names_and_decimal() {
        let names = [
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        ];
        for (i, name) in (0..).zip(names) {
            let code = Code::from_i32(i);
            assert_eq!(code.as_i32(), i);
            assert_eq!(code.as_str(), name);
            assert_eq!(code.as_decimal(), i.to_string().as_bytes());
            assert_eq!(Code::parse(i.to_string().as_bytes()), Some(code));
        }
        assert_eq!(Code::from_i32(17), Code::Unknown);
        assert_eq!(Code::from_i32(-1), Code::Unknown);
        assert_eq!(Code::from_i32(i32::MIN), Code::Unknown);
    }

    #[test]
    fn parse_grpc_status_is_strict_about_syntax() {
        assert_eq!(Code::parse(b"17"), Some(Code::Unknown));
        assert_eq!(Code::parse(b"99999999999999999999"), Some(Code::Unknown));
        assert_eq!(Code::parse(b"007"), Some(Code::PermissionDenied));
        for bad in [&b""[..], b"-1", b"+1", b" 1", b"1 ", b"1a", b"0x1", b"\xff"] {
            assert_eq!(Code::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn http_status_mapping_table() {
        let table = [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (200, Code::Unknown),
            (405, Code::Unknown),
            (500, Code::Unknown),
            (0, Code::Unknown),
        ];
        for (http, code) in table {
            assert_eq!(Code::from_http_status(http), code, "{http}");
        }
    }

    #[test]
    fn h2_reset_mapping() {
        assert_eq!(Code::from_h2_error(ErrorCode::CANCEL), Code::Cancelled);
        assert_eq!(
            Code::from_h2_error(ErrorCode::REFUSED_STREAM),
            Code::Unavailable
        );
        assert_eq!(
            Code::from_h2_error(ErrorCode::ENHANCE_YOUR_CALM),
            Code::ResourceExhausted
        );
        assert_eq!(
            Code::from_h2_error(ErrorCode::INADEQUATE_SECURITY),
            Code::PermissionDenied
        );
        for c in [0, 1, 2, 3, 4, 5, 6, 9, 0xa, 0xd, 0x99] {
            assert_eq!(Code::from_h2_error(ErrorCode(c)), Code::Internal);
        }
        assert_eq!(
            Status::from_h2_reset(ErrorCode::CANCEL).code(),
            Code::Cancelled
        );
    }

    #[test]
    fn status_accessors_and_display() {
        let s = Status::internal("boom \"x\"").with_details(&b"\x00\x01"[..]);
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "boom \"x\"");
        assert_eq!(&s.details()[..], b"\x00\x01");
        assert_eq!(s.to_string(), r#"status: INTERNAL, message: "boom \"x\"""#);
        assert!(Status::ok().is_ok());
        assert!(!Status::cancelled("c").is_ok());
        let e: Box<dyn std::error::Error> = Box::new(Status::unavailable("down"));
        assert_eq!(e.to_string(), "status: UNAVAILABLE, message: \"down\"");
    }

    fn enc(s: &str) -> String {
        let mut v = Vec::new();
        encode_grpc_message(s, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn percent_encoding_examples() {
        assert_eq!(enc("plain text ~"), "plain text ~");
        assert!(grpc_message_is_plain("plain text ~"));
        assert_eq!(enc("100%"), "100%25");
        assert!(!grpc_message_is_plain("100%"));
        assert_eq!(enc("a\nb\tc"), "a%0Ab%09c");
        assert_eq!(enc("\x7f"), "%7F");
        assert_eq!(enc("café"), "caf%C3%A9");
        assert_eq!(enc("😀"), "%F0%9F%98%80");
        assert_eq!(enc(" a b "), "%20a b%20");
        assert_eq!(enc(" "), "%20");
        assert!(!grpc_message_is_plain("ends with a space "));
        assert!(!grpc_message_is_plain(" starts with one"));
    }

    #[test]
    fn percent_round_trip_including_non_ascii() {
        for s in [
            "",
            "ok",
            "100% sure",
            "\u{0}\u{1f}\u{7f}",
            "日本語 テキスト",
            "a%2",
            "%%%",
        ] {
            let e = enc(s);
            assert!(e.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            assert_eq!(decode_grpc_message(e.as_bytes()), s);
        }
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(decode_grpc_message(b"a%41b"), "aAb");
        assert_eq!(
            decode_grpc_message(b"%c3%A9"),
            "é",
            "lower-case hex accepted"
        );
        assert_eq!(decode_grpc_message(b"%"), "%");
        assert_eq!(decode_grpc_message(b"%4"), "%4");
        assert_eq!(decode_grpc_message(b"%zz%41"), "%zzA");
        assert_eq!(decode_grpc_message(b"%%41"), "%A");
        assert_eq!(
            decode_grpc_message(b"%FF"),
            "\u{fffd}",
            "invalid UTF-8 replaced"
        );
        assert_eq!(decode_grpc_message(b"x\xffy"), "x\u{fffd}y");
        assert_eq!(decode_grpc_message(b"%E2%82"), "\u{fffd}");
    }
}
