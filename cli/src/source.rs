//! Where descriptors come from: server reflection (v1, falling back to v1alpha), `-proto`
//! files compiled with protox, or `-protoset` files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anygrpc_reflection::v1::server_reflection_request::MessageRequest;
use anygrpc_reflection::v1::server_reflection_response::MessageResponse;
use anygrpc_reflection::v1::{ServerReflectionRequest, ServerReflectionResponse};
use anygrpc_tokio::{CallOptions, Channel, Code, Status};
use prost::Message;
use prost_reflect::DescriptorPool;

use crate::error::CliError;

const V1: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
const V1ALPHA: &str = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

/// A pool loaded from files, or server reflection asked on demand.
#[derive(Debug)]
pub(crate) enum Source {
    /// Descriptors from `-proto` or `-protoset`.
    Files(DescriptorPool),
    /// Server reflection over `channel`.
    Reflection {
        channel: Channel,
        options: CallOptions,
    },
}

impl Source {
    /// Compiles `protos` (found under `imports`) or decodes `protosets`.
    pub(crate) fn from_files(
        protos: &[PathBuf],
        imports: &[PathBuf],
        protosets: &[PathBuf],
    ) -> Result<Self, CliError> {
        let mut pool = DescriptorPool::new();
        for path in protosets {
            let bytes = std::fs::read(path)
                .map_err(|e| CliError::usage(format!("-protoset {}: {e}", path.display())))?;
            pool.decode_file_descriptor_set(bytes.as_slice())
                .map_err(|e| CliError::usage(format!("-protoset {}: {e}", path.display())))?;
        }
        if !protos.is_empty() {
            let mut imports = imports.to_vec();
            if imports.is_empty() {
                imports.push(PathBuf::from("."));
            }
            let set = protox::compile(protos, &imports)
                .map_err(|e| CliError::usage(format!("-proto: {e}")))?;
            pool.add_file_descriptor_set(set)
                .map_err(|e| CliError::usage(format!("-proto: {e}")))?;
        }
        Ok(Self::Files(pool))
    }

    /// The fully qualified names of the server's services, sorted.
    pub(crate) async fn services(&self) -> Result<Vec<String>, CliError> {
        let mut names: Vec<String> = match self {
            Self::Files(pool) => pool.services().map(|s| s.full_name().to_owned()).collect(),
            Self::Reflection { channel, options } => {
                match reflect(
                    channel,
                    options,
                    MessageRequest::ListServices(String::new()),
                )
                .await?
                {
                    MessageResponse::ListServicesResponse(list) => {
                        list.service.into_iter().map(|s| s.name).collect()
                    }
                    other => return Err(unexpected(other)),
                }
            }
        };
        names.sort();
        Ok(names)
    }

    /// A pool holding `symbol` (a service, method or message name) and what it depends on.
    pub(crate) async fn pool_for(&self, symbol: &str) -> Result<DescriptorPool, CliError> {
        match self {
            Self::Files(pool) => Ok(pool.clone()),
            Self::Reflection { channel, options } => {
                let symbol = symbol.trim_start_matches('.');
                let ask = |name: &str| {
                    let request = MessageRequest::FileContainingSymbol(name.to_owned());
                    reflect(channel, options, request)
                };
                let answer = match ask(symbol).await {
                    // Some servers (grpcio's) do not index methods: a method's file is its
                    // service's, so ask once more for the enclosing name.
                    Err(CliError::Rpc(status)) if status.code() == Code::NotFound => {
                        match symbol
                            .rsplit_once('.')
                            .filter(|(parent, _)| parent.contains('.'))
                        {
                            Some((parent, _)) => {
                                ask(parent).await.map_err(|_| CliError::Rpc(status))?
                            }
                            None => return Err(CliError::Rpc(status)),
                        }
                    }
                    other => other?,
                };
                match answer {
                    MessageResponse::FileDescriptorResponse(files) => {
                        pool_of(files.file_descriptor_proto)
                    }
                    other => Err(unexpected(other)),
                }
            }
        }
    }
}

/// One reflection request on v1, retried on v1alpha when v1 is UNIMPLEMENTED.
async fn reflect(
    channel: &Channel,
    options: &CallOptions,
    request: MessageRequest,
) -> Result<MessageResponse, CliError> {
    match ask_on(channel, options, V1, request.clone()).await {
        Err(status) if status.code() == Code::Unimplemented => {
            ask_on(channel, options, V1ALPHA, request).await
        }
        other => other,
    }
    .map_err(CliError::Rpc)
    .and_then(|response| match response {
        MessageResponse::ErrorResponse(e) => Err(CliError::Rpc(Status::new(
            Code::from_i32(e.error_code),
            e.error_message,
        ))),
        other => Ok(other),
    })
}

/// Sends `request` on the reflection stream at `path` and reads its one answer.
async fn ask_on(
    channel: &Channel,
    options: &CallOptions,
    path: &'static str,
    request: MessageRequest,
) -> Result<MessageResponse, Status> {
    let method = channel.stream_stream::<ServerReflectionRequest, ServerReflectionResponse>(path);
    let mut call = method.call_with(options.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    if call.write(&request).await.is_err() || call.done_writing().await.is_err() {
        return Err(call.status().await);
    }
    match call.read().await {
        Some(Ok(response)) => response
            .message_response
            .ok_or_else(|| Status::internal("reflection answered nothing")),
        Some(Err(e)) => Err(e.status().clone()),
        None => Err(match call.status().await {
            s if s.code() == Code::Ok => Status::internal("reflection stream ended unanswered"),
            s => s,
        }),
    }
}

/// A pool of the encoded `FileDescriptorProto`s reflection sent.
fn pool_of(files: Vec<Vec<u8>>) -> Result<DescriptorPool, CliError> {
    let mut by_name = BTreeMap::new();
    for bytes in files {
        let file = prost_reflect::prost_types::FileDescriptorProto::decode(bytes.as_slice())
            .map_err(|e| CliError::Other(format!("reflection sent a bad descriptor: {e}")))?;
        by_name.insert(file.name().to_owned(), file);
    }
    let set = prost_reflect::prost_types::FileDescriptorSet {
        file: by_name.into_values().collect(),
    };
    DescriptorPool::from_file_descriptor_set(set)
        .map_err(|e| CliError::Other(format!("reflection sent descriptors that do not link: {e}")))
}

fn unexpected(response: MessageResponse) -> CliError {
    CliError::Other(format!("unexpected reflection answer: {response:?}"))
}
