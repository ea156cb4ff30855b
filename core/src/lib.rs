//! Sans-IO HTTP/2 and gRPC protocol engine: bytes in, bytes out, time passed in, events out.
//!
//! A [`Connection`] is one HTTP/2 connection carrying gRPC calls, in the client or the server
//! role. It does no I/O, has no async, starts no threads and never reads a clock: the caller
//! moves bytes between it and a transport, passes the current [`Instant`](std::time::Instant)
//! in, and reads what happened as [`Event`]s. The same engine runs under any executor, inside a
//! custom event loop, on blocking sockets, or wired to a second `Connection` in memory for tests.
//!
//! After any input ([`Connection::recv`], [`Connection::handle_timeout`] or a command such as
//! [`Connection::start_call`]), call [`Connection::poll_transmit`] until it returns 0 and write
//! the bytes, [`Connection::poll_event`] until `None`, then [`Connection::poll_timeout`] to learn
//! when to call `handle_timeout` next.
//!
//! A whole unary call between a client and a server, in memory:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use anygrpc_core::{CallRequest, Code, Config, Connection, Event, Metadata, Side, Status};
//! use bytes::{Bytes, BytesMut};
//!
//! let now = Instant::now();
//! let mut client = Connection::new(Side::Client, Arc::new(Config::client()), now);
//! let mut server = Connection::new(Side::Server, Arc::new(Config::server()), now);
//!
//! // Moves everything `from` wants to send into `to`; returns how many bytes moved.
//! fn shuttle(from: &mut Connection, to: &mut Connection, now: Instant) -> usize {
//!     let mut wire = BytesMut::new();
//!     while from.poll_transmit(&mut wire) > 0 {}
//!     to.recv(&wire, now);
//!     wire.len()
//! }
//!
//! let call = client.start_call(CallRequest::new("/helloworld.Greeter/SayHello", "localhost"), now).unwrap();
//! client.send_message(call, Bytes::from_static(b"ping"), false).unwrap();
//! client.finish_sending(call).unwrap();
//! let mut reply = None;
//! let mut status = None;
//! while shuttle(&mut client, &mut server, now) + shuttle(&mut server, &mut client, now) > 0 {
//!     while let Some(event) = server.poll_event() {
//!         match event {
//!             Event::Message { stream, message } => {
//!                 server.release_capacity(stream, message.credit());
//!                 assert_eq!(message.decode(4 << 20).unwrap(), "ping");
//!                 server.send_message(stream, Bytes::from_static(b"pong"), false).unwrap();
//!                 server.send_trailers(stream, Status::ok(), Metadata::new()).unwrap();
//!             }
//!             _ => {} // CallStarted (path, metadata, deadline), HalfClosed, ...
//!         }
//!     }
//!     while let Some(event) = client.poll_event() {
//!         match event {
//!             Event::Message { stream, message } => {
//!                 client.release_capacity(stream, message.credit());
//!                 reply = Some(message.decode(4 << 20).unwrap());
//!             }
//!             Event::Finished { status: s, .. } => status = Some(s),
//!             _ => {}
//!         }
//!     }
//! }
//! assert_eq!(reply.as_deref(), Some(&b"pong"[..]));
//! assert_eq!(status.map(|s| s.code()), Some(Code::Ok));
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations)]

pub mod config;
mod connection;
pub mod error;
pub mod event;
pub mod frame;
/// Entry points of the fuzz targets in `core/fuzz/`, smoke-tested by `cargo test`.
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod grpc;
pub mod hpack;
mod queue;
mod reader;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use config::{Config, PingPolicy};
pub use connection::{CLIENT_PREFACE, CallError, CallRequest, Connection, Scheme, Side, Transmit};
pub use error::{ConnectionError, ErrorCode, StreamId};
pub use event::{Event, Message};
pub use grpc::{Code, Compression, CompressionLevel, Encoding, EncodingSet, Metadata, Status};
