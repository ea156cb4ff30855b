//! Writing gRPC header blocks through an `emit(name, value)` callback; the caller picks the
//! HPACK representation (e.g. never-indexed for sensitive values).

use core::time::Duration;

use super::CONTENT_TYPE;
use crate::grpc::base64;
use crate::grpc::compression::{Encoding, EncodingSet};
use crate::grpc::metadata::Metadata;
use crate::grpc::status::{Status, encode_grpc_message, grpc_message_is_plain};
use crate::grpc::timeout::encode_timeout;

/// What a client sends to start a call.
#[derive(Debug, Clone, Copy)]
pub struct RequestOut<'a> {
    /// `:path`, `/package.Service/Method`.
    pub path: &'a str,
    /// `:authority`, omitted when `None`.
    pub authority: Option<&'a str>,
    /// `:scheme`, `http` or `https`.
    pub scheme: &'a str,
    /// Sent as `grpc-timeout`, rounded up.
    pub timeout: Option<Duration>,
    /// The encoding of the messages we send (`grpc-encoding`).
    pub encoding: Option<Encoding>,
    /// What we accept (`grpc-accept-encoding`); omitted when empty.
    pub accept_encoding: EncodingSet,
    /// The transport's user agent. A `user-agent` in `metadata` is put in front of it, as
    /// C-core does.
    pub user_agent: Option<&'a str>,
    /// Custom metadata.
    pub metadata: &'a Metadata,
}

/// Writes a request head through `emit(name, value)`: pseudo-headers, content-type, te,
/// grpc-timeout, grpc-encoding, grpc-accept-encoding, user-agent, then metadata.
pub fn write_request(head: &RequestOut<'_>, emit: &mut impl FnMut(&[u8], &[u8])) {
    emit(b":method", b"POST");
    emit(b":scheme", head.scheme.as_bytes());
    emit(b":path", head.path.as_bytes());
    if let Some(authority) = head.authority {
        emit(b":authority", authority.as_bytes());
    }
    emit(b"content-type", CONTENT_TYPE);
    emit(b"te", b"trailers");
    if let Some(timeout) = head.timeout {
        emit(b"grpc-timeout", &encode_timeout(timeout));
    }
    if let Some(encoding) = head.encoding {
        emit(b"grpc-encoding", encoding.as_str().as_bytes());
    }
    if !head.accept_encoding.is_empty() {
        emit(
            b"grpc-accept-encoding",
            head.accept_encoding.to_header_value().as_bytes(),
        );
    }
    // An empty agent would leave a space at the edge of the value (RFC 9113 §8.2.1).
    let app_agent = head.metadata.get("user-agent").filter(|a| !a.is_empty());
    match (app_agent, head.user_agent) {
        (Some(app), Some(ours)) => {
            let combined = [app, ours].join(" ");
            emit(b"user-agent", combined.as_bytes());
        }
        (Some(agent), None) | (None, Some(agent)) => emit(b"user-agent", agent.as_bytes()),
        (None, None) => {}
    }
    head.metadata.for_each_wire(|name, value| {
        if name != b"user-agent" {
            emit(name, value);
        }
    });
}

/// Writes a server's response head: `:status 200`, content-type, grpc-encoding,
/// grpc-accept-encoding (when non-empty), then metadata.
pub fn write_response_head(
    encoding: Option<Encoding>,
    accept_encoding: EncodingSet,
    metadata: &Metadata,
    emit: &mut impl FnMut(&[u8], &[u8]),
) {
    emit(b":status", b"200");
    emit(b"content-type", CONTENT_TYPE);
    if let Some(encoding) = encoding {
        emit(b"grpc-encoding", encoding.as_str().as_bytes());
    }
    if !accept_encoding.is_empty() {
        emit(
            b"grpc-accept-encoding",
            accept_encoding.to_header_value().as_bytes(),
        );
    }
    metadata.for_each_wire(|name, value| emit(name, value));
}

/// Writes trailers: grpc-status, grpc-message (percent-encoded, only when non-empty),
/// grpc-status-details-bin (base64, only when non-empty), then metadata. Allocates only to
/// encode a message that needs escaping, details, or binary metadata.
pub fn write_trailers(status: &Status, metadata: &Metadata, emit: &mut impl FnMut(&[u8], &[u8])) {
    emit(b"grpc-status", status.code().as_decimal());
    let mut scratch = Vec::new();
    let message = status.message();
    if !message.is_empty() {
        if grpc_message_is_plain(message) {
            emit(b"grpc-message", message.as_bytes());
        } else {
            encode_grpc_message(message, &mut scratch);
            emit(b"grpc-message", &scratch);
        }
    }
    if !status.details().is_empty() {
        scratch.clear();
        base64::encode_unpadded(status.details(), &mut scratch);
        emit(b"grpc-status-details-bin", &scratch);
    }
    metadata.for_each_wire_with(&mut scratch, |name, value| emit(name, value));
}

/// Writes a Trailers-Only response (one HEADERS with END_STREAM): `:status 200`,
/// content-type, then the trailers as [`write_trailers`].
pub fn write_trailers_only(
    status: &Status,
    metadata: &Metadata,
    emit: &mut impl FnMut(&[u8], &[u8]),
) {
    emit(b":status", b"200");
    emit(b"content-type", CONTENT_TYPE);
    write_trailers(status, metadata, emit);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::Code;
    use crate::grpc::head::tests::{capture, f};
    use crate::grpc::head::{parse_request, parse_response, parse_trailers, parse_trailers_only};

    #[test]
    fn request_round_trip() {
        let mut md = Metadata::new();
        md.append("x-id", "42").unwrap();
        md.append_bin("trace-bin", &b"\x00\x01\xfe"[..]).unwrap();
        md.append("x-id", "43").unwrap();
        let out = RequestOut {
            path: "/pkg.Svc/Call",
            authority: Some("example.com:443"),
            scheme: "https",
            timeout: Some(Duration::from_millis(1500)),
            encoding: Some(Encoding::Gzip),
            accept_encoding: EncodingSet::EMPTY
                .with(Encoding::Gzip)
                .with(Encoding::Identity),
            user_agent: Some("anygrpc/0.1"),
            metadata: &md,
        };
        let fields = capture(|e| write_request(&out, &mut |n, v| e(n, v)));
        let names: Vec<_> = fields
            .iter()
            .map(|f| String::from_utf8_lossy(&f.name).into_owned())
            .collect();
        assert_eq!(
            names,
            [
                ":method",
                ":scheme",
                ":path",
                ":authority",
                "content-type",
                "te",
                "grpc-timeout",
                "grpc-encoding",
                "grpc-accept-encoding",
                "user-agent",
                "x-id",
                "trace-bin",
                "x-id"
            ]
        );
        let head = parse_request(fields).unwrap();
        assert_eq!(&head.path[..], b"/pkg.Svc/Call");
        assert_eq!(head.authority.as_deref(), Some(&b"example.com:443"[..]));
        assert_eq!(&head.scheme[..], b"https");
        assert_eq!(&head.content_type[..], b"application/grpc");
        assert_eq!(head.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(head.encoding.as_deref(), Some(&b"gzip"[..]));
        assert_eq!(head.accept_encoding, out.accept_encoding);
        assert_eq!(head.user_agent.as_deref(), Some(&b"anygrpc/0.1"[..]));
        let mut expect = Metadata::new();
        expect.append("user-agent", "anygrpc/0.1").unwrap();
        for (k, v) in &md {
            expect.append_value(k.clone(), v.clone()).unwrap();
        }
        assert_eq!(
            head.metadata, expect,
            "user-agent surfaced, then metadata in order"
        );
    }

    #[test]
    fn application_user_agent_goes_first() {
        let mut md = Metadata::new();
        md.insert("user-agent", "myapp/2").unwrap();
        let out = RequestOut {
            path: "/a/b",
            authority: None,
            scheme: "http",
            timeout: None,
            encoding: None,
            accept_encoding: EncodingSet::EMPTY,
            user_agent: Some("anygrpc/0.1"),
            metadata: &md,
        };
        let fields = capture(|e| write_request(&out, &mut |n, v| e(n, v)));
        let agents: Vec<_> = fields
            .iter()
            .filter(|f| &f.name[..] == b"user-agent")
            .collect();
        assert_eq!(agents.len(), 1);
        assert_eq!(&agents[0].value[..], b"myapp/2 anygrpc/0.1");
        let head = parse_request(fields).unwrap();
        assert_eq!(head.authority, None);
        assert_eq!(head.timeout, None);
        assert!(head.accept_encoding.is_empty());
    }

    #[test]
    fn written_values_have_no_edge_whitespace() {
        // RFC 9113 §8.2.1: what we write, our own parser (and any strict peer) accepts.
        let mut md = Metadata::new();
        md.insert("user-agent", " ").unwrap();
        md.insert("x-padded", "  v  ").unwrap();
        let out = RequestOut {
            path: "/a/b",
            authority: None,
            scheme: "http",
            timeout: None,
            encoding: None,
            accept_encoding: EncodingSet::EMPTY,
            user_agent: Some("anygrpc/0.1"),
            metadata: &md,
        };
        let fields = capture(|e| write_request(&out, &mut |n, v| e(n, v)));
        let head = parse_request(fields).unwrap();
        assert_eq!(head.user_agent.as_deref(), Some(&b"anygrpc/0.1"[..]));
        assert_eq!(head.metadata.get("x-padded"), Some("v"));
        let status = Status::new(crate::grpc::Code::NotFound, " no such thing ");
        let fields = capture(|e| write_trailers(&status, &md, &mut |n, v| e(n, v)));
        let trailers = parse_trailers(fields, false).unwrap();
        assert_eq!(trailers.status.message(), " no such thing ", "sent escaped");
    }

    #[test]
    fn response_head_round_trip() {
        let mut md = Metadata::new();
        md.append("x-server", "s1").unwrap();
        let fields = capture(|e| {
            write_response_head(
                Some(Encoding::Deflate),
                EncodingSet::supported(),
                &md,
                &mut |n, v| e(n, v),
            )
        });
        let head = parse_response(fields).unwrap();
        assert_eq!(head.http_status, 200);
        assert_eq!(head.content_type.as_deref(), Some(CONTENT_TYPE));
        assert_eq!(head.encoding.as_deref(), Some(&b"deflate"[..]));
        assert_eq!(head.accept_encoding, EncodingSet::supported());
        assert_eq!(head.metadata, md);
    }

    #[test]
    fn every_code_round_trips_through_trailers() {
        let mut md = Metadata::new();
        md.append("x-t", "1").unwrap();
        md.append_bin("x-bin", &b"\xff"[..]).unwrap();
        for code in Code::ALL {
            let status = Status::new(code, format!("m {} 100% ✓", code.as_str()))
                .with_details(vec![code.as_i32() as u8; 3]);
            let fields = capture(|e| write_trailers(&status, &md, &mut |n, v| e(n, v)));
            assert!(
                fields
                    .iter()
                    .all(|f| f.value.iter().all(|&b| (0x20..=0x7e).contains(&b)))
            );
            let t = parse_trailers(fields, false).unwrap();
            assert_eq!(t.status, status);
            assert_eq!(t.metadata, md);

            let fields = capture(|e| write_trailers_only(&status, &md, &mut |n, v| e(n, v)));
            let (head, t) = parse_trailers_only(fields.clone()).unwrap();
            assert_eq!(head.http_status, 200);
            assert_eq!(head.content_type.as_deref(), Some(CONTENT_TYPE));
            assert!(head.metadata.is_empty());
            assert_eq!(t.status, status);
            assert_eq!(t.metadata, md);
            assert_eq!(parse_trailers(fields, true).unwrap().status, status);
        }
    }

    #[test]
    fn minimal_trailers_omit_empty_fields() {
        let fields =
            capture(|e| write_trailers(&Status::ok(), &Metadata::new(), &mut |n, v| e(n, v)));
        assert_eq!(fields, vec![f("grpc-status", "0")]);
        let fields = capture(|e| {
            write_trailers(&Status::unknown("plain"), &Metadata::new(), &mut |n, v| {
                e(n, v)
            })
        });
        assert_eq!(
            fields,
            vec![f("grpc-status", "2"), f("grpc-message", "plain")]
        );
    }
}
