//! A scripted raw peer against one real `Connection`: what a polite peer never sends, and the
//! exact answer (GOAWAY / RST_STREAM code, `Event::Closed`, gRPC status) with memory bounded.
//!
//! - `rfc9113`: protocol violations RFC 9113 assigns a code to.
//! - `limits`: the protective limits of `Config` (floods, bombs, budgets), and the legitimate
//!   traffic that must never trip them.
//! - `budget`: the per-connection receive budget against many streams, tiny frames and
//!   floods of empty messages, in both roles, and the legitimate traffic it lets through.
//! - `grpc`: gRPC-level abuse, by a raw client against a server and a raw server against a
//!   client.

mod support;

#[path = "hostile/budget.rs"]
mod budget;
#[path = "hostile/grpc.rs"]
mod grpc;
#[path = "hostile/limits.rs"]
mod limits;
#[path = "hostile/rfc9113.rs"]
mod rfc9113;
