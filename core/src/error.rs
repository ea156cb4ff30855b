//! Wire-level identifiers and the typed errors the connection reports.

use core::fmt;

use bytes::Bytes;

/// An HTTP/2 error code (RFC 9113 §7). Unknown codes are kept, never rejected.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// Graceful shutdown; not an error.
    pub const NO_ERROR: Self = Self(0x0);
    /// The peer violated the protocol in a way no more specific code covers.
    pub const PROTOCOL_ERROR: Self = Self(0x1);
    /// An unexpected internal failure.
    pub const INTERNAL_ERROR: Self = Self(0x2);
    /// The peer broke the flow-control rules.
    pub const FLOW_CONTROL_ERROR: Self = Self(0x3);
    /// A SETTINGS frame was not acknowledged in time.
    pub const SETTINGS_TIMEOUT: Self = Self(0x4);
    /// A frame arrived on a stream that was already half-closed remote.
    pub const STREAM_CLOSED: Self = Self(0x5);
    /// A frame had an invalid size.
    pub const FRAME_SIZE_ERROR: Self = Self(0x6);
    /// The stream was refused before any application processing.
    pub const REFUSED_STREAM: Self = Self(0x7);
    /// The stream is no longer needed.
    pub const CANCEL: Self = Self(0x8);
    /// The HPACK compression context cannot be maintained.
    pub const COMPRESSION_ERROR: Self = Self(0x9);
    /// A CONNECT request's connection failed.
    pub const CONNECT_ERROR: Self = Self(0xa);
    /// The peer is generating excessive load.
    pub const ENHANCE_YOUR_CALM: Self = Self(0xb);
    /// The transport does not meet minimum security requirements.
    pub const INADEQUATE_SECURITY: Self = Self(0xc);
    /// HTTP/1.1 is required instead of HTTP/2.
    pub const HTTP_1_1_REQUIRED: Self = Self(0xd);

    /// The registered name of the code, if it has one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ErrorCode({:#x})", self.0),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An HTTP/2 stream identifier: 31 bits, odd when the client opened the stream, 0 for the
/// connection itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct StreamId(pub u32);

impl StreamId {
    /// Stream 0: frames that concern the whole connection.
    pub const CONNECTION: Self = Self(0);
    /// The largest identifier a stream can have (2^31 - 1).
    pub const MAX: Self = Self(0x7fff_ffff);

    /// `true` for stream 0.
    pub fn is_connection(self) -> bool {
        self.0 == 0
    }

    /// `true` when a client opened (or would open) this stream: the identifier is odd.
    pub fn is_client_initiated(self) -> bool {
        self.0 % 2 == 1
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({})", self.0)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// We detected a protocol violation and sent GOAWAY with `code`.
    Protocol {
        /// The code we sent in GOAWAY.
        code: ErrorCode,
        /// What was wrong, for logs.
        reason: &'static str,
    },
    /// The peer sent GOAWAY with an error code (not NO_ERROR).
    Remote {
        /// The code the peer sent.
        code: ErrorCode,
        /// The peer's opaque debug data.
        debug: Bytes,
    },
    /// The peer stopped answering keepalive pings.
    KeepaliveTimeout,
    /// The peer did not acknowledge our SETTINGS in time; we sent GOAWAY(SETTINGS_TIMEOUT).
    SettingsTimeout,
    /// The application closed the connection.
    Local,
    /// The transport ended (EOF or an I/O error) without a GOAWAY.
    TransportClosed,
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol { code, reason } => write!(f, "protocol error {code}: {reason}"),
            Self::Remote { code, debug } => {
                write!(f, "peer closed the connection with {code}")?;
                if !debug.is_empty() {
                    write!(f, ": {}", String::from_utf8_lossy(debug))?;
                }
                Ok(())
            }
            Self::KeepaliveTimeout => f.write_str("keepalive ping not acknowledged in time"),
            Self::SettingsTimeout => f.write_str("SETTINGS not acknowledged in time"),
            Self::Local => f.write_str("connection closed locally"),
            Self::TransportClosed => f.write_str("the transport closed"),
        }
    }
}

impl std::error::Error for ConnectionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_debug_names_known_and_hex_for_unknown() {
        assert_eq!(
            format!("{:?}", ErrorCode::ENHANCE_YOUR_CALM),
            "ENHANCE_YOUR_CALM"
        );
        assert_eq!(format!("{:?}", ErrorCode(0x42)), "ErrorCode(0x42)");
        assert_eq!(ErrorCode(0x42).name(), None);
        for code in 0..=0xd {
            assert!(ErrorCode(code).name().is_some());
        }
    }

    #[test]
    fn stream_id_parity() {
        assert!(StreamId(1).is_client_initiated());
        assert!(!StreamId(2).is_client_initiated());
        assert!(StreamId::CONNECTION.is_connection());
        assert_eq!(StreamId::MAX.0, (1 << 31) - 1);
    }

    #[test]
    fn connection_error_display() {
        let e = ConnectionError::Remote {
            code: ErrorCode::PROTOCOL_ERROR,
            debug: Bytes::from_static(b"bad"),
        };
        assert_eq!(
            e.to_string(),
            "peer closed the connection with PROTOCOL_ERROR: bad"
        );
    }
}
