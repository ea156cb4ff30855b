//! gRPC server reflection for anygrpc servers: `grpc.reflection.v1.ServerReflection` and its
//! wire-identical predecessor `grpc.reflection.v1alpha.ServerReflection`, answering from the
//! descriptor sets you register (anygrpc-build writes one beside the code it generates).
//!
//! ```no_run
//! # fn demo(server: &anygrpc::Server) -> Result<(), anygrpc_reflection::RegistrationError> {
//! # const MY_DESCRIPTORS: &[u8] = &[];
//! // MY_DESCRIPTORS: include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"))
//! anygrpc_reflection::serve_on(server, &[MY_DESCRIPTORS])?;
//! # Ok(())
//! # }
//! ```
//!
//! - `list_services` names every service of the registered sets and the reflection services
//!   served.
//! - `file_by_filename`, `file_containing_symbol` (services, methods, messages, nested
//!   messages, fields, oneofs, enums, enum values, extensions) and `file_containing_extension`
//!   answer with the file and the files it depends on, transitively; on one stream each
//!   dependency is sent once (as grpc-go): the client keeps what it was sent.
//! - `all_extension_numbers_of_type` gives the extension numbers known for a message type.
//! - What is not known is an `error_response` with NOT_FOUND naming it; a request that asks
//!   nothing is INVALID_ARGUMENT. Every answer echoes the request and the host.
//! - A descriptor set that does not decode, or whose files do not link (a missing import, an
//!   unknown type), is a [`RegistrationError`] when it is registered.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod builder;
mod index;
mod service;

pub use builder::{Builder, Reflection, RegistrationError};
pub use service::{ReflectionV1, ReflectionV1Alpha};

/// The generated messages, client stub and server trait of `grpc.reflection.v1`.
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/grpc.reflection.v1.rs"));
}

/// The generated messages, client stub and server trait of `grpc.reflection.v1alpha` (the
/// same messages as [`v1`], under the older package name).
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod v1alpha {
    include!(concat!(env!("OUT_DIR"), "/grpc.reflection.v1alpha.rs"));
}

/// The encoded `FileDescriptorSet` of the reflection protos (v1 and v1alpha); the services
/// built here always serve it, so reflection describes itself.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"));

/// Registers both reflection services on `server`, answering from `descriptor_sets` (each an
/// encoded `google.protobuf.FileDescriptorSet`) and the reflection protos themselves.
pub fn serve_on(
    server: &anygrpc::Server,
    descriptor_sets: &[&[u8]],
) -> Result<Reflection, RegistrationError> {
    let mut builder = Builder::new();
    for set in descriptor_sets {
        builder = builder.register_encoded_file_descriptor_set(set)?;
    }
    let reflection = builder.build()?;
    reflection.add_to(server);
    Ok(reflection)
}

#[cfg(test)]
mod tests;
