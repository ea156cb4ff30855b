//! Runnable anygrpc programs and the pieces they share.
//!
//! - [`blocking`]: a unary call over `std::net::TcpStream`, driving
//!   [`anygrpc_core::Connection`] by hand (no async runtime). Binary: `blocking_client`.
//! - [`helloworld`]: the Greeter messages, with `prost` derives.
//! - [`greeter`]: `SayHello` through [`blocking::unary_call`], and how the programs print it.
//! - [`python_peer`]: the Python `grpcio` Greeter server the `demo` binary and the interop tests
//!   talk to.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blocking;
pub mod greeter;
pub mod helloworld;
pub mod python_peer;

/// The README's Rust snippets, compiled as doc tests so they stay true to the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
