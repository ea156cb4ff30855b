//! Shared pieces of the TLS tests.

pub(crate) mod certs;
