//! gRPC header blocks: parsing the fields of one decoded HEADERS block (request, response
//! head, trailers, Trailers-Only) and writing them, per PROTOCOL-HTTP2.md and the HTTP/2 field
//! rules of RFC 9113 §8.2–8.3.
//!
//! Parsing sorts each field into: an HTTP/2 violation ([`HeadError::Malformed`], a stream
//! error PROTOCOL_ERROR, RFC 9113 §8.1.1), a field gRPC itself uses, or custom metadata.
//! A field that is valid HTTP but not a valid gRPC metadata key or ASCII value (`x!`, a
//! value with bytes ≥ 0x80) is not surfaced, as it cannot be represented.
//!
//! `content-length` is checked to be a decimal number, once, but is not compared with the
//! DATA received (RFC 9113 §8.1.1 would make a mismatch malformed): gRPC delimits its
//! messages itself, the length is never used or surfaced, and grpc-go ignores it too.

use core::fmt;
use core::time::Duration;

use bytes::Bytes;

use super::base64;
use super::compression::EncodingSet;
use super::metadata::{Metadata, MetadataError, is_reserved_header};
use super::status::{Code, Status, decode_grpc_message};
use super::timeout::parse_timeout;
use crate::hpack::Field;

mod write;
pub use write::{
    RequestOut, write_request, write_response_head, write_trailers, write_trailers_only,
};

/// The content-type gRPC sends.
const CONTENT_TYPE: &[u8] = b"application/grpc";

/// Why a header block was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadError {
    /// The block breaks HTTP/2 field rules (RFC 9113 §8.1.1): reset the stream with
    /// PROTOCOL_ERROR.
    Malformed(&'static str),
    /// A request whose `:method` is not POST: a server answers HTTP 405.
    BadMethod,
    /// A request whose content-type is not `application/grpc[+…|;…]`: a server answers
    /// HTTP 415 (PROTOCOL-HTTP2.md).
    BadContentType,
    /// Valid HTTP, invalid gRPC (a bad `grpc-timeout`, undecodable `-bin` metadata): the call
    /// ends with this status.
    Grpc(Status),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed header block: {why}"),
            Self::BadMethod => f.write_str("gRPC requires the POST method"),
            Self::BadContentType => f.write_str("content-type is not application/grpc"),
            Self::Grpc(status) => fmt::Display::fmt(status, f),
        }
    }
}

impl std::error::Error for HeadError {}

/// A received gRPC request head (PROTOCOL-HTTP2.md, "Request-Headers").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `:path`, e.g. `/package.Service/Method`.
    pub path: Bytes,
    /// `:authority`, or `host` when `:authority` is absent.
    pub authority: Option<Bytes>,
    /// `:scheme`.
    pub scheme: Bytes,
    /// The full content-type, e.g. `application/grpc+proto`.
    pub content_type: Bytes,
    /// The parsed `grpc-timeout`.
    pub timeout: Option<Duration>,
    /// The raw `grpc-encoding` value; may name an encoding this build does not know.
    pub encoding: Option<Bytes>,
    /// The encodings the client accepts in responses.
    pub accept_encoding: EncodingSet,
    /// The first `user-agent` (also surfaced in `metadata`, as grpc-go and C-core do).
    pub user_agent: Option<Bytes>,
    /// Custom metadata, in wire order.
    pub metadata: Metadata,
}

/// A received response head, before any message (PROTOCOL-HTTP2.md, "Response-Headers").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// `:status`. Not checked here: a non-200 status is mapped by the caller
    /// (doc/http-grpc-status-mapping.md); 1xx is an interim response.
    pub http_status: u16,
    /// content-type, if sent.
    pub content_type: Option<Bytes>,
    /// The raw `grpc-encoding` value.
    pub encoding: Option<Bytes>,
    /// The encodings the server accepts.
    pub accept_encoding: EncodingSet,
    /// Custom metadata, in wire order.
    pub metadata: Metadata,
}

/// Received trailers: how the call ended, and trailing metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailers {
    /// From `grpc-status`, `grpc-message` and `grpc-status-details-bin`: never OK unless the
    /// peer sent `grpc-status: 0`.
    pub status: Status,
    /// Custom metadata, in wire order.
    pub metadata: Metadata,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Request,
    /// A request's trailers: only the HTTP/2 rules apply, gRPC gives them no meaning.
    RequestTrailers,
    Response,
    Trailers,
    TrailersOnly,
}

/// The fields of one block, sorted, before the per-kind rules apply.
#[derive(Default)]
struct Collected {
    method: Option<Bytes>,
    scheme: Option<Bytes>,
    path: Option<Bytes>,
    authority: Option<Bytes>,
    status: Option<Bytes>,
    host: Option<Bytes>,
    content_type: Option<Bytes>,
    timeout: Option<Bytes>,
    encoding: Option<Bytes>,
    accept_encoding: EncodingSet,
    user_agent: Option<Bytes>,
    grpc_status: Option<Bytes>,
    grpc_message: Option<Bytes>,
    details: Option<Bytes>,
    metadata: Metadata,
    bad_metadata: Option<Status>,
    content_length_seen: bool,
}

/// RFC 9113 §8.2.1: a regular field's name is non-empty and has no byte in 0x00-0x20,
/// 0x41-0x5a (upper case) or 0x7f-0xff, and no colon.
fn check_name(name: &[u8]) -> Result<(), HeadError> {
    if name.is_empty() {
        return Err(HeadError::Malformed("empty field name"));
    }
    if name.iter().any(u8::is_ascii_uppercase) {
        return Err(HeadError::Malformed("upper-case field name"));
    }
    if name.iter().any(|&b| b <= 0x20 || b >= 0x7f || b == b':') {
        return Err(HeadError::Malformed("invalid byte in field name"));
    }
    Ok(())
}

/// RFC 9113 §8.2.1: a value has no NUL, CR or LF. A pseudo-header's value (`pseudo`) also
/// may not start or end with a space or a tab. Regular fields with edge whitespace are
/// accepted as they came, a deliberate leniency (as nghttp2 offers one): grpc-go sends
/// `grpc-message` unescaped, and a status message ending in a space must not turn into
/// INTERNAL. Routing and authority never see such a value.
fn check_value(value: &[u8], pseudo: bool) -> Result<(), HeadError> {
    if value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err(HeadError::Malformed("NUL, CR or LF in field value"));
    }
    let blank = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
    if pseudo && (blank(value.first()) || blank(value.last())) {
        return Err(HeadError::Malformed(
            "whitespace at the start or end of a field value",
        ));
    }
    Ok(())
}

/// RFC 9110 §8.6: `content-length` is one decimal number (a list such as `5, 5` is refused,
/// as §8.6 allows), sent once.
fn check_content_length(value: &[u8], seen: &mut bool) -> Result<(), HeadError> {
    if *seen {
        return Err(HeadError::Malformed("duplicate content-length"));
    }
    *seen = true;
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::Malformed(
            "content-length is not a decimal number",
        ));
    }
    Ok(())
}

/// RFC 9113 §8.3.1 and RFC 9110 §4.2: the authority of an `http`/`https` request names a
/// host, and carries no userinfo (`user@`).
fn check_authority(authority: &[u8]) -> Result<(), HeadError> {
    if authority.is_empty() {
        return Err(HeadError::Malformed("empty authority"));
    }
    if authority.contains(&b'@') {
        return Err(HeadError::Malformed("userinfo in the authority"));
    }
    Ok(())
}

fn set_once(slot: &mut Option<Bytes>, value: Bytes, why: &'static str) -> Result<(), HeadError> {
    if slot.is_some() {
        return Err(HeadError::Malformed(why));
    }
    *slot = Some(value);
    Ok(())
}

fn collect(fields: impl IntoIterator<Item = Field>, block: Block) -> Result<Collected, HeadError> {
    let mut c = Collected::default();
    let mut regular_seen = false;
    let is_response = matches!(block, Block::Response | Block::TrailersOnly);
    for Field { name, value, .. } in fields {
        check_value(&value, name.first() == Some(&b':'))?;
        if name.first() == Some(&b':') {
            // RFC 9113 §8.3: pseudo-header fields precede every regular field.
            if regular_seen {
                return Err(HeadError::Malformed(
                    "pseudo-header field after a regular field",
                ));
            }
            let slot = match (&name[..], block) {
                // RFC 9113 §8.1: trailers carry no pseudo-header fields.
                (_, Block::Trailers | Block::RequestTrailers) => {
                    return Err(HeadError::Malformed("pseudo-header field in trailers"));
                }
                (b":method", Block::Request) => &mut c.method,
                (b":scheme", Block::Request) => &mut c.scheme,
                (b":path", Block::Request) => &mut c.path,
                (b":authority", Block::Request) => &mut c.authority,
                (b":status", _) if is_response => &mut c.status,
                // RFC 9113 §8.3: request pseudo-headers only in requests, :status only in
                // responses; any other pseudo-header makes the message malformed.
                (b":method" | b":scheme" | b":path" | b":authority", _) => {
                    return Err(HeadError::Malformed(
                        "request pseudo-header field in a response",
                    ));
                }
                (b":status", _) => {
                    return Err(HeadError::Malformed(":status in a request"));
                }
                _ => return Err(HeadError::Malformed("unknown pseudo-header field")),
            };
            set_once(slot, value, "duplicate pseudo-header field")?;
            continue;
        }
        regular_seen = true;
        check_name(&name)?;
        let in_trailers = matches!(block, Block::Trailers | Block::TrailersOnly);
        match &name[..] {
            // RFC 9113 §8.2.2: connection-specific fields make the message malformed.
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" => {
                return Err(HeadError::Malformed("connection-specific header field"));
            }
            // RFC 9113 §8.2.2: TE only in requests, and only "trailers".
            b"te" => {
                if !matches!(block, Block::Request | Block::RequestTrailers) {
                    return Err(HeadError::Malformed("te in a response"));
                }
                if &value[..] != b"trailers" {
                    return Err(HeadError::Malformed("te other than \"trailers\""));
                }
            }
            b"content-type" => set_once(&mut c.content_type, value, "duplicate content-type")?,
            b"content-length" => check_content_length(&value, &mut c.content_length_seen)?,
            b"grpc-timeout" if block == Block::Request => {
                set_once(&mut c.timeout, value, "duplicate grpc-timeout")?;
            }
            b"grpc-encoding" if !matches!(block, Block::Trailers | Block::RequestTrailers) => {
                set_once(&mut c.encoding, value, "duplicate grpc-encoding")?;
            }
            // A list header may be split over several fields: take the union.
            b"grpc-accept-encoding" => {
                c.accept_encoding = c.accept_encoding.union(EncodingSet::parse_accept(&value));
            }
            b"grpc-status" if in_trailers => {
                set_once(&mut c.grpc_status, value, "duplicate grpc-status")?;
            }
            b"grpc-message" if in_trailers => {
                set_once(&mut c.grpc_message, value, "duplicate grpc-message")?;
            }
            b"grpc-status-details-bin" if in_trailers => {
                set_once(&mut c.details, value, "duplicate grpc-status-details-bin")?;
            }
            b"host" if block == Block::Request => {
                set_once(&mut c.host, value, "duplicate host")?;
            }
            // Reserved names out of place (grpc-status in a request, …) are neither used nor
            // surfaced.
            _ if is_reserved_header(&name) => {}
            _ => {
                if name.as_ref() == b"user-agent" && c.user_agent.is_none() {
                    c.user_agent = Some(value.clone());
                }
                match c.metadata.push_from_wire(name, value) {
                    Ok(()) => {}
                    Err(MetadataError::BadBase64(e)) => {
                        c.bad_metadata.get_or_insert_with(|| {
                            Status::internal(format!("malformed binary metadata: {e}"))
                        });
                    }
                    // Valid HTTP, not representable as gRPC metadata: dropped.
                    Err(_) => {}
                }
            }
        }
    }
    Ok(c)
}

/// PROTOCOL-HTTP2.md: `Content-Type → "content-type" "application/grpc" [("+proto" /
/// "+json" / {custom})]`; parameters after `;` are tolerated as grpc-go does.
fn is_grpc_content_type(v: &[u8]) -> bool {
    match v.strip_prefix(b"application/grpc") {
        Some(rest) => rest.is_empty() || rest.starts_with(b"+") || rest.starts_with(b";"),
        None => false,
    }
}

/// RFC 9110 §15: three ASCII digits.
fn parse_http_status(v: &[u8]) -> Result<u16, HeadError> {
    match *v {
        [a, b, c] if v.iter().all(u8::is_ascii_digit) => {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(HeadError::Malformed(":status is not three digits")),
    }
}

/// Parses a request header block on the server.
///
/// Checks, in order: HTTP/2 rules (→ `Malformed`), `:method` POST (→ `BadMethod`),
/// content-type (→ `BadContentType`), then gRPC values (→ `Grpc`, status INTERNAL as
/// grpc-go for a malformed `grpc-timeout` or `-bin` value).
///
/// A `:path` that starts with `/` is well formed whatever follows: one that names no method
/// is for the router to answer (UNIMPLEMENTED), not a malformed request.
pub fn parse_request(fields: impl IntoIterator<Item = Field>) -> Result<RequestHead, HeadError> {
    let c = collect(fields, Block::Request)?;
    // RFC 9113 §8.3.1: exactly one valid :method, :scheme and :path (no CONNECT here).
    let method = c.method.ok_or(HeadError::Malformed("missing :method"))?;
    let scheme = c.scheme.ok_or(HeadError::Malformed("missing :scheme"))?;
    let path = c.path.ok_or(HeadError::Malformed("missing :path"))?;
    if method.is_empty() {
        return Err(HeadError::Malformed("empty :method"));
    }
    if scheme.is_empty() {
        return Err(HeadError::Malformed("empty :scheme"));
    }
    if path.is_empty() {
        return Err(HeadError::Malformed("empty :path"));
    }
    // RFC 9113 §8.3.1: the path is absolute ("/…"); only OPTIONS may ask for "*" (and is then
    // refused as not POST). A path without its "/" must never reach routing: authorization
    // by path would miss it (the class of grpc-go CVE-2026-33186).
    let options_asterisk = &path[..] == b"*" && &method[..] == b"OPTIONS";
    if !path.starts_with(b"/") && !options_asterisk {
        return Err(HeadError::Malformed(":path does not start with \"/\""));
    }
    // RFC 9113 §8.3.1: a Host differing from :authority makes the request malformed. Host
    // names are compared without regard to case (RFC 9110 §4.2.3); ports are not normalised.
    let authority = match (c.authority, c.host) {
        (Some(a), Some(h)) if !a.eq_ignore_ascii_case(&h) => {
            return Err(HeadError::Malformed("host differs from :authority"));
        }
        (Some(a), _) => Some(a),
        (None, h) => h,
    };
    if let Some(authority) = &authority {
        check_authority(authority)?;
    }
    if &method[..] != b"POST" {
        return Err(HeadError::BadMethod);
    }
    let content_type = match c.content_type {
        Some(ct) if is_grpc_content_type(&ct) => ct,
        _ => return Err(HeadError::BadContentType),
    };
    if let Some(status) = c.bad_metadata {
        return Err(HeadError::Grpc(status));
    }
    let timeout = match c.timeout {
        Some(v) => Some(parse_timeout(&v).map_err(|e| {
            HeadError::Grpc(Status::internal(format!("malformed grpc-timeout: {e}")))
        })?),
        None => None,
    };
    Ok(RequestHead {
        path,
        authority,
        scheme,
        content_type,
        timeout,
        encoding: c.encoding,
        accept_encoding: c.accept_encoding,
        user_agent: c.user_agent,
        metadata: c.metadata,
    })
}

fn response_head(c: &mut Collected) -> Result<ResponseHead, HeadError> {
    // RFC 9113 §8.3.2: a response carries exactly one :status.
    let status = c
        .status
        .take()
        .ok_or(HeadError::Malformed("missing :status"))?;
    Ok(ResponseHead {
        http_status: parse_http_status(&status)?,
        content_type: c.content_type.take(),
        encoding: c.encoding.take(),
        accept_encoding: c.accept_encoding,
        metadata: core::mem::take(&mut c.metadata),
    })
}

/// Parses a response head (HEADERS without END_STREAM) on the client.
pub fn parse_response(fields: impl IntoIterator<Item = Field>) -> Result<ResponseHead, HeadError> {
    let mut c = collect(fields, Block::Response)?;
    let head = response_head(&mut c)?;
    match c.bad_metadata {
        Some(status) => Err(HeadError::Grpc(status)),
        None => Ok(head),
    }
}

/// The call's status from trailer fields. PROTOCOL-HTTP2.md: a `grpc-status` that is present
/// must be used; without it a non-200 HTTP status is mapped
/// (doc/http-grpc-status-mapping.md), else UNKNOWN. A malformed `grpc-status` or
/// `grpc-status-details-bin` is INTERNAL, as in grpc-go.
fn trailer_status(c: &Collected, http_status: Option<u16>) -> Status {
    let code = match &c.grpc_status {
        Some(v) => match Code::parse(v) {
            Some(code) => code,
            None => {
                return Status::internal(format!(
                    "malformed grpc-status {:?}",
                    String::from_utf8_lossy(v)
                ));
            }
        },
        None => {
            return match http_status {
                Some(s) if s != 200 => Status::new(
                    Code::from_http_status(s),
                    format!("HTTP status {s} without grpc-status"),
                ),
                _ => Status::unknown("missing grpc-status"),
            };
        }
    };
    let message = c
        .grpc_message
        .as_deref()
        .map(decode_grpc_message)
        .unwrap_or_default();
    let mut details = Vec::new();
    if let Some(v) = &c.details {
        if let Err(e) = base64::decode(v, &mut details) {
            return Status::internal(format!("malformed grpc-status-details-bin: {e}"));
        }
    }
    Status::new(code, message).with_details(details)
}

/// Checks a request's trailers on the server (HEADERS with END_STREAM after the request
/// head): only the HTTP/2 field rules apply (no pseudo-header fields, valid names and values,
/// no connection-specific fields), as gRPC gives request trailers no meaning. Any error is
/// [`HeadError::Malformed`].
pub fn check_request_trailers(fields: impl IntoIterator<Item = Field>) -> Result<(), HeadError> {
    collect(fields, Block::RequestTrailers).map(|_| ())
}

/// Parses trailers (HEADERS with END_STREAM after the response head). With `trailers_only`
/// the block is a Trailers-Only response and may carry `:status` and content-type.
pub fn parse_trailers(
    fields: impl IntoIterator<Item = Field>,
    trailers_only: bool,
) -> Result<Trailers, HeadError> {
    if trailers_only {
        return parse_trailers_only(fields).map(|(_, t)| t);
    }
    let c = collect(fields, Block::Trailers)?;
    if let Some(status) = c.bad_metadata {
        return Err(HeadError::Grpc(status));
    }
    let status = trailer_status(&c, None);
    Ok(Trailers {
        status,
        metadata: c.metadata,
    })
}

/// Parses a Trailers-Only response: one HEADERS with END_STREAM carrying `:status`,
/// content-type and `grpc-status`. The metadata goes to the trailers; the head has none.
pub fn parse_trailers_only(
    fields: impl IntoIterator<Item = Field>,
) -> Result<(ResponseHead, Trailers), HeadError> {
    let mut c = collect(fields, Block::TrailersOnly)?;
    let head = response_head(&mut c)?;
    if let Some(status) = c.bad_metadata.take() {
        return Err(HeadError::Grpc(status));
    }
    let status = trailer_status(&c, Some(head.http_status));
    let trailers = Trailers {
        status,
        metadata: head.metadata.clone(),
    };
    let head = ResponseHead {
        metadata: Metadata::new(),
        ..head
    };
    Ok((head, trailers))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn f(name: &str, value: &str) -> Field {
        Field {
            name: Bytes::copy_from_slice(name.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            never_indexed: false,
        }
    }

    fn request(extra: &[(&str, &str)]) -> Vec<Field> {
        let mut v = vec![
            f(":method", "POST"),
            f(":scheme", "https"),
            f(":path", "/pkg.Svc/Call"),
            f(":authority", "example.com"),
            f("content-type", "application/grpc"),
            f("te", "trailers"),
        ];
        v.extend(extra.iter().map(|(n, val)| f(n, val)));
        v
    }

    pub(super) fn capture(write: impl FnOnce(&mut dyn FnMut(&[u8], &[u8]))) -> Vec<Field> {
        let mut out = Vec::new();
        write(&mut |n: &[u8], v: &[u8]| {
            out.push(Field {
                name: Bytes::copy_from_slice(n),
                value: Bytes::copy_from_slice(v),
                never_indexed: false,
            })
        });
        out
    }

    fn malformed(r: Result<impl fmt::Debug, HeadError>) -> &'static str {
        match r {
            Err(HeadError::Malformed(why)) => why,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn request_content_types_and_method() {
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc+json",
            "application/grpc; charset=utf-8",
        ] {
            let mut fields = request(&[]);
            fields[4] = f("content-type", ct);
            assert!(parse_request(fields).is_ok(), "{ct}");
        }
        for ct in [
            "application/json",
            "application/grpcx",
            "application/grpc-web",
            "Application/grpc",
            "",
        ] {
            let mut fields = request(&[]);
            fields[4] = f("content-type", ct);
            assert_eq!(
                parse_request(fields),
                Err(HeadError::BadContentType),
                "{ct}"
            );
        }
        let mut fields = request(&[]);
        fields.remove(4);
        assert_eq!(parse_request(fields), Err(HeadError::BadContentType));
        let mut fields = request(&[]);
        fields[0] = f(":method", "GET");
        assert_eq!(parse_request(fields), Err(HeadError::BadMethod));
    }

    #[test]
    fn request_malformed_cases() {
        let cases: Vec<(Vec<Field>, &str)> = vec![
            (request(&[("X-Upper", "v")]), "upper-case field name"),
            (request(&[("", "v")]), "empty field name"),
            (request(&[("a b", "v")]), "invalid byte in field name"),
            (request(&[("caf\u{e9}", "v")]), "invalid byte in field name"),
            (request(&[("a", "x\0y")]), "NUL, CR or LF in field value"),
            (request(&[("a", "x\ry")]), "NUL, CR or LF in field value"),
            (request(&[("a", "x\ny")]), "NUL, CR or LF in field value"),
            (
                request(&[("connection", "close")]),
                "connection-specific header field",
            ),
            (
                request(&[("keep-alive", "1")]),
                "connection-specific header field",
            ),
            (
                request(&[("proxy-connection", "x")]),
                "connection-specific header field",
            ),
            (
                request(&[("transfer-encoding", "chunked")]),
                "connection-specific header field",
            ),
            (
                request(&[("upgrade", "h2c")]),
                "connection-specific header field",
            ),
            (request(&[("te", "gzip")]), "te other than \"trailers\""),
            (
                request(&[(":path", "/x")]),
                "pseudo-header field after a regular field",
            ),
            (
                request(&[("content-type", "application/grpc")]),
                "duplicate content-type",
            ),
            (
                request(&[("grpc-timeout", "1S"), ("grpc-timeout", "1S")]),
                "duplicate grpc-timeout",
            ),
            (
                request(&[("host", "other.example")]),
                "host differs from :authority",
            ),
            (
                request(&[("host", "example.com"), ("host", "example.com")]),
                "duplicate host",
            ),
            (request(&[("a:b", "v")]), "invalid byte in field name"),
            (
                request(&[("content-length", "5x")]),
                "content-length is not a decimal number",
            ),
            (
                request(&[("content-length", "")]),
                "content-length is not a decimal number",
            ),
            (
                request(&[("content-length", "5, 5")]),
                "content-length is not a decimal number",
            ),
            (
                request(&[("content-length", "5"), ("content-length", "5")]),
                "duplicate content-length",
            ),
        ];
        for (fields, why) in cases {
            assert_eq!(malformed(parse_request(fields)), why);
        }
        let pseudo = |v: Vec<(&str, &str)>| -> Vec<Field> {
            let mut fields: Vec<Field> = v.into_iter().map(|(n, val)| f(n, val)).collect();
            fields.push(f("content-type", "application/grpc"));
            fields
        };
        let p = [(":method", "POST"), (":scheme", "http"), (":path", "/a")];
        assert_eq!(
            malformed(parse_request(pseudo(vec![p[1], p[2]]))),
            "missing :method"
        );
        assert_eq!(
            malformed(parse_request(pseudo(vec![p[0], p[2]]))),
            "missing :scheme"
        );
        assert_eq!(
            malformed(parse_request(pseudo(vec![p[0], p[1]]))),
            "missing :path"
        );
        assert_eq!(
            malformed(parse_request(pseudo(vec![p[0], p[1], (":path", "")]))),
            "empty :path"
        );
        assert_eq!(
            malformed(parse_request(pseudo(vec![p[0], p[0], p[1], p[2]]))),
            "duplicate pseudo-header field"
        );
        assert_eq!(
            malformed(parse_request(pseudo(vec![
                p[0],
                p[1],
                p[2],
                (":protocol", "websocket")
            ]))),
            "unknown pseudo-header field"
        );
        assert_eq!(
            malformed(parse_request(pseudo(vec![
                p[0],
                p[1],
                p[2],
                (":status", "200")
            ]))),
            ":status in a request"
        );
        for (i, name) in [":method", ":scheme", ":path"].into_iter().enumerate() {
            let mut v = p.to_vec();
            v[i] = (name, "");
            let why = format!("empty {name}");
            assert_eq!(malformed(parse_request(pseudo(v))), why);
        }
        for path in ["pkg.Svc/Call", "*", "?x", "svc"] {
            let v = vec![p[0], p[1], (":path", path)];
            assert_eq!(
                malformed(parse_request(pseudo(v))),
                ":path does not start with \"/\"",
                "{path}"
            );
        }
        for (authority, why) in [
            ("", "empty authority"),
            ("user@example.com", "userinfo in the authority"),
        ] {
            let v = vec![p[0], p[1], p[2], (":authority", authority)];
            assert_eq!(malformed(parse_request(pseudo(v))), why);
        }
        // A malformed block wins over a bad method.
        assert_eq!(
            malformed(parse_request(pseudo(vec![(":method", "GET"), p[1]]))),
            "missing :path"
        );
    }

    #[test]
    fn request_grpc_errors_and_host_fallback() {
        match parse_request(request(&[("grpc-timeout", "123456789S")])) {
            Err(HeadError::Grpc(s)) => assert_eq!(s.code(), Code::Internal),
            other => panic!("{other:?}"),
        }
        match parse_request(request(&[("x-bin", "!!!")])) {
            Err(HeadError::Grpc(s)) => assert_eq!(s.code(), Code::Internal),
            other => panic!("{other:?}"),
        }
        let mut fields = request(&[("host", "h.example")]);
        fields.remove(3);
        assert_eq!(
            parse_request(fields).unwrap().authority.as_deref(),
            Some(&b"h.example"[..])
        );
        assert!(parse_request(request(&[("host", "example.com")])).is_ok());
        assert!(
            parse_request(request(&[("host", "Example.COM")])).is_ok(),
            "host names compare without case"
        );
    }

    #[test]
    fn request_paths_that_are_well_formed() {
        // Any absolute path is well formed; whether it names a method is the router's call.
        for path in ["/", "/x", "/a/b/c", "/pkg.Svc/", "/pkg.Svc/Call?q=1"] {
            let mut fields = request(&[]);
            fields[2] = f(":path", path);
            assert_eq!(
                parse_request(fields).unwrap().path,
                path.as_bytes(),
                "{path}"
            );
        }
        // RFC 9113 §8.3.1: "*" is an OPTIONS request's, which is well formed, and not POST.
        let mut fields = request(&[]);
        fields[0] = f(":method", "OPTIONS");
        fields[2] = f(":path", "*");
        assert_eq!(parse_request(fields), Err(HeadError::BadMethod));
        // Inner spaces and tabs are fine; content-length is accepted whatever the DATA.
        assert!(parse_request(request(&[("a", "x \t y"), ("content-length", "0")])).is_ok());
    }

    #[test]
    fn request_trailers_rules() {
        assert_eq!(check_request_trailers(vec![f("x-late", "1")]), Ok(()));
        assert_eq!(check_request_trailers(vec![f("te", "trailers")]), Ok(()));
        // gRPC's own names mean nothing here: never an error, even repeated.
        let repeated = vec![f("grpc-status", "0"), f("grpc-status", "1")];
        assert_eq!(check_request_trailers(repeated), Ok(()));
        let bad = [
            (f(":path", "/x"), "pseudo-header field in trailers"),
            (f("X-Late", "1"), "upper-case field name"),
            (f("connection", "close"), "connection-specific header field"),
            (f("te", "gzip"), "te other than \"trailers\""),
            (f("x", "a\0b"), "NUL, CR or LF in field value"),
            (
                f("content-length", "x"),
                "content-length is not a decimal number",
            ),
        ];
        for (field, why) in bad {
            assert_eq!(malformed(check_request_trailers(vec![field])), why);
        }
    }

    #[test]
    fn reserved_and_unrepresentable_fields_are_not_metadata() {
        let head = parse_request(request(&[
            ("content-length", "5"),
            ("grpc-status", "0"),
            ("grpc-message", "x"),
            ("grpc-message-type", "t"),
            ("grpc-accept-encoding", "gzip"),
            ("grpc-accept-encoding", "deflate, br"),
            ("x!", "dropped: not a gRPC key"),
            ("x-high", "caf\u{e9}"),
            ("x-ok", "kept"),
            ("grpc-previous-rpc-attempts", "1"),
        ]))
        .unwrap();
        let keys: Vec<_> = head.metadata.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["x-ok", "grpc-previous-rpc-attempts"]);
        assert_eq!(head.metadata.get("x-ok"), Some("kept"));
        assert_eq!(head.accept_encoding.to_header_value(), "gzip,deflate");
    }

    #[test]
    fn response_head_rules() {
        let non_200 = parse_response(vec![f(":status", "503")]).unwrap();
        assert_eq!(non_200.http_status, 503, "not an error here");
        assert_eq!(non_200.content_type, None);

        let bad = [
            (
                vec![f("content-type", "application/grpc")],
                "missing :status",
            ),
            (vec![f(":status", "20")], ":status is not three digits"),
            (vec![f(":status", "2000")], ":status is not three digits"),
            (vec![f(":status", "2x0")], ":status is not three digits"),
            (
                vec![f(":status", "200"), f(":status", "200")],
                "duplicate pseudo-header field",
            ),
            (
                vec![f(":status", "200"), f(":path", "/")],
                "request pseudo-header field in a response",
            ),
            (
                vec![f(":status", "200"), f("te", "trailers")],
                "te in a response",
            ),
            (
                vec![f(":status", "200"), f("x", "1"), f(":status", "200")],
                "pseudo-header field after a regular field",
            ),
            (
                vec![f(":status", "200"), f("Content-Type", "x")],
                "upper-case field name",
            ),
            (
                vec![f(":status", "200"), f("upgrade", "x")],
                "connection-specific header field",
            ),
            (
                vec![f(":status", "200"), f(":foo", "x")],
                "unknown pseudo-header field",
            ),
            (
                vec![f(":status", "200"), f("content-length", "-1")],
                "content-length is not a decimal number",
            ),
        ];
        for (fields, why) in bad {
            assert_eq!(malformed(parse_response(fields)), why);
        }
    }

    #[test]
    fn trailer_status_fallbacks() {
        let t = parse_trailers(vec![f("x", "1")], false).unwrap();
        assert_eq!(
            t.status.code(),
            Code::Unknown,
            "missing grpc-status is never OK"
        );
        for bad in ["", "abc", "-1", "0x0"] {
            let t = parse_trailers(vec![f("grpc-status", bad)], false).unwrap();
            assert_eq!(t.status.code(), Code::Internal, "{bad:?}");
        }
        let t = parse_trailers(vec![f("grpc-status", "17")], false).unwrap();
        assert_eq!(t.status.code(), Code::Unknown);
        let t = parse_trailers(
            vec![f("grpc-status", "5"), f("grpc-message", "caf%C3%A9 %zz")],
            false,
        )
        .unwrap();
        assert_eq!(t.status.message(), "café %zz");
        let t = parse_trailers(
            vec![f("grpc-status", "5"), f("grpc-status-details-bin", "AQI=")],
            false,
        )
        .unwrap();
        assert_eq!(
            &t.status.details()[..],
            b"\x01\x02",
            "padded details accepted"
        );
        let t = parse_trailers(
            vec![f("grpc-status", "5"), f("grpc-status-details-bin", "*")],
            false,
        )
        .unwrap();
        assert_eq!(t.status.code(), Code::Internal);
        match parse_trailers(vec![f("grpc-status", "0"), f("a-bin", "#")], false) {
            Err(HeadError::Grpc(s)) => assert_eq!(s.code(), Code::Internal),
            other => panic!("{other:?}"),
        }

        // Trailers-Only from an intermediary: map the HTTP status only without grpc-status.
        let (_, t) = parse_trailers_only(vec![f(":status", "503")]).unwrap();
        assert_eq!(t.status.code(), Code::Unavailable);
        let (_, t) =
            parse_trailers_only(vec![f(":status", "404"), f("content-type", "text/html")]).unwrap();
        assert_eq!(t.status.code(), Code::Unimplemented);
        let (_, t) = parse_trailers_only(vec![f(":status", "503"), f("grpc-status", "0")]).unwrap();
        assert_eq!(
            t.status.code(),
            Code::Ok,
            "grpc-status, when present, must be used"
        );
        let (_, t) = parse_trailers_only(vec![f(":status", "200")]).unwrap();
        assert_eq!(t.status.code(), Code::Unknown);
    }

    #[test]
    fn trailers_malformed_cases() {
        let bad = [
            (
                vec![f(":status", "200"), f("grpc-status", "0")],
                "pseudo-header field in trailers",
            ),
            (
                vec![f("grpc-status", "0"), f("grpc-status", "0")],
                "duplicate grpc-status",
            ),
            (
                vec![
                    f("grpc-status", "0"),
                    f("grpc-message", "a"),
                    f("grpc-message", "b"),
                ],
                "duplicate grpc-message",
            ),
            (
                vec![f("grpc-status", "0"), f("te", "trailers")],
                "te in a response",
            ),
            (
                vec![f("grpc-status", "0"), f("transfer-encoding", "chunked")],
                "connection-specific header field",
            ),
            (vec![f("Grpc-Status", "0")], "upper-case field name"),
            (
                vec![f("grpc-message", "a\nb")],
                "NUL, CR or LF in field value",
            ),
        ];
        for (fields, why) in bad {
            assert_eq!(malformed(parse_trailers(fields, false)), why);
        }
        assert_eq!(
            malformed(parse_trailers_only(vec![f("grpc-status", "0")])),
            "missing :status"
        );
        assert_eq!(
            malformed(parse_trailers(
                vec![f(":status", "200"), f(":path", "/")],
                true
            )),
            "request pseudo-header field in a response"
        );
    }

    #[test]
    fn header_error_display() {
        assert_eq!(
            HeadError::BadMethod.to_string(),
            "gRPC requires the POST method"
        );
        assert!(HeadError::Malformed("x").to_string().contains('x'));
        assert!(
            HeadError::Grpc(Status::internal("y"))
                .to_string()
                .contains("INTERNAL")
        );
    }
}
