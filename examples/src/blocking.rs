//! A blocking unary gRPC call over `std::net::TcpStream`, driving [`Connection`] by hand.
//!
//! No async runtime and no threads: one socket, one loop. The loop is the polling order of the
//! core's contract:
//!
//! 1. after any input, write everything [`Connection::poll_transmit`] produces;
//! 2. take every [`Connection::poll_event`] until `None`;
//! 3. sleep in `read` at most until [`Connection::poll_timeout`], then feed what was read to
//!    [`Connection::recv`], or call [`Connection::handle_timeout`] when the instant is reached.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anygrpc_core::{
    CallError, CallRequest, Code, Config, Connection, Event, Metadata, Side, Status,
};
use bytes::{Bytes, BytesMut};

/// How long connecting may take when the call has no timeout (gRPC's minimum connect timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A successful unary call: the response message and the server's metadata.
#[derive(Debug, Clone)]
pub struct UnaryReply {
    /// The response message, decompressed, still protobuf-encoded.
    pub message: Bytes,
    /// The response headers' custom metadata.
    pub initial_metadata: Metadata,
    /// The trailers' custom metadata.
    pub trailing_metadata: Metadata,
}

/// A failed unary call: the non-OK status and whatever metadata the server sent with it.
#[derive(Debug, Clone)]
pub struct RpcError {
    /// The final status: the server's, or one derived locally (UNAVAILABLE when the connection
    /// failed, DEADLINE_EXCEEDED when the timeout passed, INTERNAL for a malformed response).
    pub status: Status,
    /// The response headers' custom metadata (empty when none arrived).
    pub initial_metadata: Metadata,
    /// The trailers' custom metadata (empty when the status was derived locally).
    pub trailing_metadata: Metadata,
}

impl RpcError {
    /// A locally derived failure, without metadata.
    fn local(status: Status) -> Self {
        Self {
            status,
            initial_metadata: Metadata::new(),
            trailing_metadata: Metadata::new(),
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.status.fmt(f)
    }
}

impl std::error::Error for RpcError {}

/// Calls the unary method `path` (`/package.Service/Method`) on `target` (`host:port`) with
/// one encoded request message, waiting at most `timeout` (sent as `grpc-timeout`).
pub fn unary_call(
    target: &str,
    path: &str,
    request: Bytes,
    timeout: Option<Duration>,
) -> Result<UnaryReply, RpcError> {
    let mut call = CallRequest::new(path.to_string(), target);
    call.timeout = timeout;
    unary_call_with(target, call, request)
}

/// Like [`unary_call`], with a full [`CallRequest`] (metadata, compression, ...).
pub fn unary_call_with(
    target: &str,
    call: CallRequest,
    request: Bytes,
) -> Result<UnaryReply, RpcError> {
    let started = Instant::now();
    let deadline = call.timeout.and_then(|t| started.checked_add(t));
    let mut socket = connect(target, deadline).map_err(RpcError::local)?;
    // Small frames (HEADERS, WINDOW_UPDATE, PING ACK) should not wait for Nagle.
    socket
        .set_nodelay(true)
        .map_err(|e| RpcError::local(io_status(&e)))?;

    // The connection's clock is `Instant::now()`, passed in at every input.
    let mut conn = Connection::new(Side::Client, Arc::new(Config::client()), Instant::now());
    // Start the call, queue its one message and half-close: nothing is written yet.
    let refused = |e: CallError| RpcError::local(e.to_status());
    let id = conn.start_call(call, Instant::now()).map_err(refused)?;
    conn.send_message(id, request, false).map_err(refused)?;
    conn.finish_sending(id).map_err(refused)?;

    let limit = conn.config().max_recv_message_size;
    let mut out = BytesMut::new();
    let mut buf = vec![0; READ_CHUNK];
    let mut initial_metadata = Metadata::new();
    let mut replies: Vec<Bytes> = Vec::new();
    let mut decode_error: Option<Status> = None;

    loop {
        // 1. Write everything the connection has to say (preface, SETTINGS, HEADERS, DATA,
        //    WINDOW_UPDATE, ACKs...). `poll_transmit` appends up to a byte budget per call.
        while conn.poll_transmit(&mut out) > 0 {}
        if !out.is_empty() {
            socket
                .write_all(&out)
                .map_err(|e| RpcError::local(io_status(&e)))?;
            out.clear();
        }

        // 2. Process every event. A message holds flow-control credit until released.
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Headers { metadata, .. } => initial_metadata = metadata,
                Event::Message { stream, message } => {
                    conn.release_capacity(stream, message.credit());
                    match message.decode(limit) {
                        Ok(bytes) => replies.push(bytes),
                        Err(status) => decode_error = Some(status),
                    }
                }
                Event::Finished {
                    status, metadata, ..
                } => {
                    say_goodbye(&mut conn, &mut socket);
                    return finish(status, decode_error, replies, initial_metadata, metadata);
                }
                Event::Closed { error } => {
                    // Only reached if the connection died without ending our call first.
                    let why = error.map_or_else(|| "closed".to_owned(), |e| e.to_string());
                    return Err(RpcError::local(Status::unavailable(why)));
                }
                _ => {}
            }
        }

        // 3. Wait for the peer, but no longer than the connection's next timer (call deadline,
        //    SETTINGS ACK timeout, keepalive). `None` means "no timer": block until data.
        let wake_at = conn.poll_timeout();
        let wait = wake_at.map(|at| at.saturating_duration_since(Instant::now()));
        // A zero read timeout is an error in std: wait at least a millisecond.
        let wait = wait.map(|w| w.max(Duration::from_millis(1)));
        socket
            .set_read_timeout(wait)
            .map_err(|e| RpcError::local(io_status(&e)))?;
        match socket.read(&mut buf) {
            Ok(0) => {
                return Err(RpcError::local(Status::unavailable(
                    "the server closed the connection before the call finished",
                )));
            }
            // 4a. Bytes in: any split is fine, the connection buffers partial frames.
            Ok(n) => conn.recv(&buf[..n], Instant::now()),
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RpcError::local(io_status(&e))),
        }
        // 4b. Time in: fire whatever is due. Calling it early is a harmless no-op.
        let now = Instant::now();
        if wake_at.is_some_and(|at| at <= now) {
            conn.handle_timeout(now);
        }
    }
}

/// Turns the end of the call into the unary result: exactly one message on OK.
fn finish(
    status: Status,
    decode_error: Option<Status>,
    mut replies: Vec<Bytes>,
    initial_metadata: Metadata,
    trailing_metadata: Metadata,
) -> Result<UnaryReply, RpcError> {
    let status = match (status.is_ok(), decode_error, replies.len()) {
        (false, _, _) => status,
        (true, Some(decode_error), _) => decode_error,
        (true, None, 1) => {
            return Ok(UnaryReply {
                message: replies.remove(0),
                initial_metadata,
                trailing_metadata,
            });
        }
        (true, None, n) => Status::new(
            Code::Internal,
            format!("a unary call ended OK with {n} response messages"),
        ),
    };
    Err(RpcError {
        status,
        initial_metadata,
        trailing_metadata,
    })
}

/// A polite client closes with GOAWAY(NO_ERROR) before hanging up; errors no longer matter.
fn say_goodbye(conn: &mut Connection, socket: &mut TcpStream) {
    conn.shutdown(Instant::now());
    let mut out = BytesMut::new();
    while conn.poll_transmit(&mut out) > 0 {}
    let _ = socket.write_all(&out);
}

/// Resolves `target` and connects to the first address that answers, before `deadline`.
fn connect(target: &str, deadline: Option<Instant>) -> Result<TcpStream, Status> {
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .map_err(|e| Status::unavailable(format!("cannot resolve {target}: {e}")))?
        .collect();
    let mut last = Status::unavailable(format!("{target} resolved to no address"));
    for addr in addrs {
        let left = match deadline {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => CONNECT_TIMEOUT,
        };
        if left.is_zero() {
            return Err(Status::deadline_exceeded(
                "deadline exceeded while connecting",
            ));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(socket) => return Ok(socket),
            Err(e) => last = Status::unavailable(format!("cannot connect to {addr}: {e}")),
        }
    }
    Err(last)
}

/// `read` gave up because the read timeout passed (the kind differs between platforms).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A transport failure, as gRPC reports it.
fn io_status(e: &io::Error) -> Status {
    Status::unavailable(format!("transport error: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn refused_connection_is_unavailable() {
        // Bind an ephemeral port, then free it: nothing listens there any more.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let err = unary_call(
            &format!("127.0.0.1:{port}"),
            "/x.Y/Z",
            Bytes::new(),
            Some(Duration::from_secs(5)),
        )
        .unwrap_err();
        assert_eq!(err.status.code(), Code::Unavailable, "{err}");
    }

    #[test]
    fn silent_server_hits_the_deadline() {
        // Accepts the connection and never answers: the call's timer must end it.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap().to_string();
        let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let begun = Instant::now();
        let err = unary_call(
            &target,
            "/x.Y/Z",
            Bytes::new(),
            Some(Duration::from_millis(200)),
        )
        .unwrap_err();
        assert_eq!(err.status.code(), Code::DeadlineExceeded, "{err}");
        let took = begun.elapsed();
        assert!(took >= Duration::from_millis(200), "ended early: {took:?}");
        assert!(took < Duration::from_secs(5), "ended late: {took:?}");
        drop(held.join());
    }

    #[test]
    fn unary_result_needs_exactly_one_message() {
        let one = finish(
            Status::ok(),
            None,
            vec![Bytes::from_static(b"a")],
            Metadata::new(),
            Metadata::new(),
        );
        assert_eq!(one.unwrap().message, Bytes::from_static(b"a"));
        for n in [0, 2] {
            let replies = vec![Bytes::new(); n];
            let err = finish(
                Status::ok(),
                None,
                replies,
                Metadata::new(),
                Metadata::new(),
            )
            .unwrap_err();
            assert_eq!(err.status.code(), Code::Internal);
        }
        let failed = finish(
            Status::invalid_argument("no"),
            None,
            vec![],
            Metadata::new(),
            Metadata::new(),
        )
        .unwrap_err();
        assert_eq!(failed.status.message(), "no");
    }
}
