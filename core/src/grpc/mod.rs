//! The gRPC layer over HTTP/2.
