//! Registering descriptor sets and choosing the versions served.

use std::fmt;
use std::sync::Arc;

use prost_reflect::{DescriptorError, DescriptorPool};

use crate::index::Index;
use crate::service::{ReflectionV1, ReflectionV1Alpha};
use crate::{FILE_DESCRIPTOR_SET, v1, v1alpha};

/// A descriptor set that could not be registered: it does not decode as a
/// `FileDescriptorSet`, or its files do not link (an import missing from the set and from
/// those registered before it, a type that is not defined, a name defined twice).
#[derive(Debug)]
pub struct RegistrationError {
    /// Which set, counting from 0 in registration order; `None` for the reflection protos.
    set: Option<usize>,
    source: DescriptorError,
}

impl RegistrationError {
    /// Which registered set failed, counting from 0; `None` if it was the reflection
    /// service's own.
    pub fn set(&self) -> Option<usize> {
        self.set
    }
}

impl fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.set {
            Some(i) => write!(
                f,
                "descriptor set {i} cannot be registered: {}",
                self.source
            ),
            None => write!(
                f,
                "the reflection descriptors cannot be registered: {}",
                self.source
            ),
        }
    }
}

impl std::error::Error for RegistrationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Builds a [`Reflection`]: the descriptor sets it answers from and the versions it serves
/// (both by default).
#[derive(Debug)]
pub struct Builder {
    pool: DescriptorPool,
    registered: usize,
    v1: bool,
    v1alpha: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// A builder with no descriptor set registered yet, serving v1 and v1alpha.
    pub fn new() -> Self {
        Self {
            pool: DescriptorPool::new(),
            registered: 0,
            v1: true,
            v1alpha: true,
        }
    }

    /// Adds the files of one encoded `google.protobuf.FileDescriptorSet`. Its imports must be
    /// in it or in a set registered before; files already registered (by name) are skipped.
    pub fn register_encoded_file_descriptor_set(
        mut self,
        set: &[u8],
    ) -> Result<Self, RegistrationError> {
        let index = self.registered;
        self.pool
            .decode_file_descriptor_set(set)
            .map_err(|source| RegistrationError {
                set: Some(index),
                source,
            })?;
        self.registered += 1;
        Ok(self)
    }

    /// Whether to serve `grpc.reflection.v1.ServerReflection` (default: yes).
    pub fn serve_v1(mut self, serve: bool) -> Self {
        self.v1 = serve;
        self
    }

    /// Whether to serve `grpc.reflection.v1alpha.ServerReflection`, which older clients
    /// (grpcurl, grpcio-reflection) still ask (default: yes).
    pub fn serve_v1alpha(mut self, serve: bool) -> Self {
        self.v1alpha = serve;
        self
    }

    /// Indexes what was registered, and the reflection protos.
    pub fn build(mut self) -> Result<Reflection, RegistrationError> {
        self.pool
            .decode_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .map_err(|source| RegistrationError { set: None, source })?;
        let mut hidden = Vec::new();
        if !self.v1 {
            hidden.push(v1::server_reflection_server::SERVICE_NAME);
        }
        if !self.v1alpha {
            hidden.push(v1alpha::server_reflection_server::SERVICE_NAME);
        }
        Ok(Reflection {
            index: Arc::new(Index::new(self.pool, &hidden)),
            v1: self.v1,
            v1alpha: self.v1alpha,
        })
    }
}

/// The reflection services, answering from one index of descriptors; clones share it.
#[derive(Debug, Clone)]
pub struct Reflection {
    index: Arc<Index>,
    v1: bool,
    v1alpha: bool,
}

impl Reflection {
    /// The `grpc.reflection.v1` service, to add to a server.
    pub fn v1_service(&self) -> v1::server_reflection_server::ServerReflectionServer<ReflectionV1> {
        v1::server_reflection_server::ServerReflectionServer::new(ReflectionV1::new(
            self.index.clone(),
        ))
    }

    /// The `grpc.reflection.v1alpha` service, to add to a server.
    pub fn v1alpha_service(
        &self,
    ) -> v1alpha::server_reflection_server::ServerReflectionServer<ReflectionV1Alpha> {
        v1alpha::server_reflection_server::ServerReflectionServer::new(ReflectionV1Alpha::new(
            self.index.clone(),
        ))
    }

    /// Adds the versions the builder chose to `server`.
    pub fn add_to(&self, server: &anygrpc::Server) {
        if self.v1 {
            server.add_service(self.v1_service());
        }
        if self.v1alpha {
            server.add_service(self.v1alpha_service());
        }
    }
}
