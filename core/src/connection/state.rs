//! The HTTP/2 stream state machine (RFC 9113 §5.1) as an explicit table.
//!
//! Push is disabled, so the reserved states never occur; every `(state, input)` pair not listed
//! is an error the caller maps to the right stream or connection error.

/// Where a stream is in its lifecycle (RFC 9113 §5.1, without the push-only reserved states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamState {
    /// Not opened yet (a client call queued behind the peer's concurrency limit).
    Idle,
    /// Both sides may send.
    Open,
    /// We sent END_STREAM; the peer may still send.
    HalfClosedLocal,
    /// The peer sent END_STREAM; we may still send.
    HalfClosedRemote,
    /// Neither side sends any more.
    Closed,
}

/// What happened to the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// We sent HEADERS.
    SendHeaders { end_stream: bool },
    /// We received HEADERS.
    RecvHeaders { end_stream: bool },
    /// We sent DATA (or trailers) with END_STREAM.
    SendEndStream,
    /// We received DATA (or trailers) with END_STREAM.
    RecvEndStream,
    /// We received DATA without END_STREAM.
    RecvData,
    /// We sent RST_STREAM.
    SendReset,
    /// We received RST_STREAM.
    RecvReset,
}

/// The transition was not allowed in that state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unexpected {
    pub(crate) state: StreamState,
    pub(crate) input: Transition,
}

/// The next state, or the illegal pair.
pub(crate) fn next(state: StreamState, input: Transition) -> Result<StreamState, Unexpected> {
    use StreamState::*;
    use Transition::*;
    match (state, input) {
        (Idle, SendHeaders { end_stream: false } | RecvHeaders { end_stream: false }) => Ok(Open),
        (Idle, SendHeaders { end_stream: true }) => Ok(HalfClosedLocal),
        (Idle, RecvHeaders { end_stream: true }) => Ok(HalfClosedRemote),
        // Response heads and trailers on an open stream.
        (Open, SendHeaders { end_stream: false } | RecvHeaders { end_stream: false }) => Ok(Open),
        (Open, SendHeaders { end_stream: true } | SendEndStream) => Ok(HalfClosedLocal),
        (Open, RecvHeaders { end_stream: true } | RecvEndStream) => Ok(HalfClosedRemote),
        (Open | HalfClosedLocal, RecvData) => Ok(state),
        (HalfClosedLocal, RecvHeaders { end_stream: false }) => Ok(HalfClosedLocal),
        (HalfClosedLocal, RecvHeaders { end_stream: true } | RecvEndStream) => Ok(Closed),
        (HalfClosedRemote, SendHeaders { end_stream: false }) => Ok(HalfClosedRemote),
        (HalfClosedRemote, SendHeaders { end_stream: true } | SendEndStream) => Ok(Closed),
        (Open | HalfClosedLocal | HalfClosedRemote, SendReset | RecvReset) => Ok(Closed),
        // Sending a reset on a closed stream is harmless; so is a late reset from the peer.
        (Closed, SendReset | RecvReset) => Ok(Closed),
        (state, input) => Err(Unexpected { state, input }),
    }
}

impl StreamState {
    /// The peer may still send DATA or HEADERS.
    pub(crate) fn can_recv(self) -> bool {
        matches!(self, StreamState::Open | StreamState::HalfClosedLocal)
    }

    /// We may still send DATA or HEADERS.
    pub(crate) fn can_send(self) -> bool {
        matches!(
            self,
            StreamState::Idle | StreamState::Open | StreamState::HalfClosedRemote
        )
    }

    /// The stream counts against MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2).
    pub(crate) fn is_active(self) -> bool {
        matches!(
            self,
            StreamState::Open | StreamState::HalfClosedLocal | StreamState::HalfClosedRemote
        )
    }
}

#[cfg(test)]
mod tests {
    use super::StreamState::*;
    use super::Transition::*;
    use super::*;

    const STATES: [StreamState; 5] = [Idle, Open, HalfClosedLocal, HalfClosedRemote, Closed];
    const INPUTS: [Transition; 9] = [
        SendHeaders { end_stream: false },
        SendHeaders { end_stream: true },
        RecvHeaders { end_stream: false },
        RecvHeaders { end_stream: true },
        SendEndStream,
        RecvEndStream,
        RecvData,
        SendReset,
        RecvReset,
    ];

    /// The table as RFC 9113 §5.1 draws it, written out independently of `next`.
    fn expected(state: StreamState, input: Transition) -> Option<StreamState> {
        let sends_end = matches!(input, SendHeaders { end_stream: true } | SendEndStream);
        let recvs_end = matches!(input, RecvHeaders { end_stream: true } | RecvEndStream);
        let reset = matches!(input, SendReset | RecvReset);
        match state {
            Idle => match input {
                SendHeaders { end_stream } => Some(if end_stream { HalfClosedLocal } else { Open }),
                RecvHeaders { end_stream } => {
                    Some(if end_stream { HalfClosedRemote } else { Open })
                }
                _ => None,
            },
            Open if reset => Some(Closed),
            Open if sends_end => Some(HalfClosedLocal),
            Open if recvs_end => Some(HalfClosedRemote),
            Open => Some(Open),
            HalfClosedLocal if reset || recvs_end => Some(Closed),
            HalfClosedLocal => match input {
                RecvHeaders { .. } | RecvData => Some(HalfClosedLocal),
                _ => None,
            },
            HalfClosedRemote if reset || sends_end => Some(Closed),
            HalfClosedRemote => match input {
                SendHeaders { .. } => Some(HalfClosedRemote),
                _ => None,
            },
            Closed if reset => Some(Closed),
            Closed => None,
        }
    }

    #[test]
    fn every_state_and_input_pair() {
        for state in STATES {
            for input in INPUTS {
                let got = next(state, input).ok();
                assert_eq!(got, expected(state, input), "{state:?} + {input:?}");
                if got.is_none() {
                    assert_eq!(next(state, input), Err(Unexpected { state, input }));
                }
            }
        }
    }

    #[test]
    fn send_and_recv_permissions_follow_half_closure() {
        assert!(Open.can_send() && Open.can_recv());
        assert!(!HalfClosedLocal.can_send() && HalfClosedLocal.can_recv());
        assert!(HalfClosedRemote.can_send() && !HalfClosedRemote.can_recv());
        assert!(!Closed.can_send() && !Closed.can_recv());
        assert!(!Idle.is_active() && !Closed.is_active() && Open.is_active());
    }
}
