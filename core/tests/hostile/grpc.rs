//! gRPC-level abuse.
