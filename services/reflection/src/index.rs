//! The index of registered descriptors and the answer to each kind of request (in the v1
//! messages; v1alpha's are converted through their encoding).

use std::collections::{HashMap, HashSet};
use std::fmt;

use anygrpc::Code;
use prost_reflect::{DescriptorPool, FileDescriptor};

use crate::v1::server_reflection_request::MessageRequest;
use crate::v1::server_reflection_response::MessageResponse;
use crate::v1::{
    ErrorResponse, ExtensionNumberResponse, ExtensionRequest, FileDescriptorResponse,
    ListServiceResponse, ServerReflectionRequest, ServerReflectionResponse, ServiceResponse,
};

/// Every descriptor registered, and where each name is defined.
pub(crate) struct Index {
    pool: DescriptorPool,
    /// Fully-qualified symbol (no leading dot) → the name of the file defining it.
    symbols: HashMap<String, String>,
    /// (extended message, field number) → the name of the file defining the extension.
    extensions: HashMap<(String, i32), String>,
    /// What `list_services` answers, sorted.
    services: Vec<String>,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("files", &self.pool.files().len())
            .field("symbols", &self.symbols.len())
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

/// The files already sent on one stream: each is sent once, as a dependency.
#[derive(Debug, Default)]
pub(crate) struct SentFiles(HashSet<String>);

impl Index {
    /// Indexes `pool`; `hidden` services are left out of `list_services` (the reflection
    /// versions not served).
    pub(crate) fn new(pool: DescriptorPool, hidden: &[&str]) -> Self {
        let mut symbols = HashMap::new();
        let mut add = |name: &str, file: FileDescriptor| {
            symbols.insert(name.to_string(), file.name().to_string());
        };
        for service in pool.services() {
            add(service.full_name(), service.parent_file());
            for method in service.methods() {
                add(method.full_name(), service.parent_file());
            }
        }
        for message in pool.all_messages() {
            let file = message.parent_file();
            add(message.full_name(), file.clone());
            for field in message.fields() {
                add(field.full_name(), file.clone());
            }
            for oneof in message.oneofs() {
                add(oneof.full_name(), file.clone());
            }
        }
        for enumeration in pool.all_enums() {
            let file = enumeration.parent_file();
            add(enumeration.full_name(), file.clone());
            for value in enumeration.values() {
                // protobuf scopes a value beside its enum (`pkg.VALUE`); the name under the
                // enum (`pkg.Enum.VALUE`) is accepted too.
                add(value.full_name(), file.clone());
                add(
                    &format!("{}.{}", enumeration.full_name(), value.name()),
                    file.clone(),
                );
            }
        }
        let mut extensions = HashMap::new();
        for extension in pool.all_extensions() {
            let file = extension.parent_file();
            add(extension.full_name(), file.clone());
            if let Ok(number) = i32::try_from(extension.number()) {
                extensions.insert(
                    (
                        extension.containing_message().full_name().to_string(),
                        number,
                    ),
                    file.name().to_string(),
                );
            }
        }
        let mut services: Vec<String> = pool
            .services()
            .map(|s| s.full_name().to_string())
            .filter(|name| !hidden.contains(&name.as_str()))
            .collect();
        services.sort();
        services.dedup();
        Self {
            pool,
            symbols,
            extensions,
            services,
        }
    }

    /// The answer to `request`, the next on a stream that was already sent `sent`.
    pub(crate) fn answer(
        &self,
        request: ServerReflectionRequest,
        sent: &mut SentFiles,
    ) -> ServerReflectionResponse {
        let answer = match &request.message_request {
            None => Err(error(
                Code::InvalidArgument,
                "the request sets none of its message_request fields".to_string(),
            )),
            Some(MessageRequest::FileByFilename(name)) => self
                .pool
                .get_file_by_name(name)
                .map(|file| files(file, sent))
                .ok_or_else(|| not_found(format!("unknown file {name:?}"))),
            Some(MessageRequest::FileContainingSymbol(symbol)) => self
                .file_of_symbol(symbol)
                .map(|file| files(file, sent))
                .ok_or_else(|| not_found(format!("unknown symbol {symbol:?}"))),
            Some(MessageRequest::FileContainingExtension(request)) => self
                .file_of_extension(request)
                .map(|file| files(file, sent))
                .ok_or_else(|| {
                    not_found(format!(
                        "no extension {} of {:?} is known",
                        request.extension_number, request.containing_type
                    ))
                }),
            Some(MessageRequest::AllExtensionNumbersOfType(name)) => self
                .extension_numbers(name)
                .ok_or_else(|| not_found(format!("unknown message type {name:?}"))),
            Some(MessageRequest::ListServices(_)) => {
                Ok(MessageResponse::ListServicesResponse(ListServiceResponse {
                    service: self
                        .services
                        .iter()
                        .map(|name| ServiceResponse { name: name.clone() })
                        .collect(),
                }))
            }
        };
        ServerReflectionResponse {
            valid_host: request.host.clone(),
            original_request: Some(request),
            message_response: Some(answer.unwrap_or_else(|e| e)),
        }
    }

    fn file_of_symbol(&self, symbol: &str) -> Option<FileDescriptor> {
        let file = self.symbols.get(symbol)?;
        self.pool.get_file_by_name(file)
    }

    fn file_of_extension(&self, request: &ExtensionRequest) -> Option<FileDescriptor> {
        let key = (request.containing_type.clone(), request.extension_number);
        let file = self.extensions.get(&key)?;
        self.pool.get_file_by_name(file)
    }

    fn extension_numbers(&self, name: &str) -> Option<MessageResponse> {
        let message = self.pool.get_message_by_name(name)?;
        let mut numbers: Vec<i32> = message
            .extensions()
            .filter_map(|e| i32::try_from(e.number()).ok())
            .collect();
        numbers.sort_unstable();
        Some(MessageResponse::AllExtensionNumbersResponse(
            ExtensionNumberResponse {
                base_type_name: message.full_name().to_string(),
                extension_number: numbers,
            },
        ))
    }
}

/// `file`, always, then the files it depends on, transitively, that this stream was not sent
/// yet; all are marked sent.
fn files(file: FileDescriptor, sent: &mut SentFiles) -> MessageResponse {
    let mut encoded = vec![file.encode_to_vec()];
    sent.0.insert(file.name().to_string());
    let mut pending: Vec<FileDescriptor> = file.dependencies().collect();
    pending.reverse();
    while let Some(dependency) = pending.pop() {
        if sent.0.insert(dependency.name().to_string()) {
            encoded.push(dependency.encode_to_vec());
            let mut next: Vec<FileDescriptor> = dependency.dependencies().collect();
            next.reverse();
            pending.extend(next);
        }
    }
    MessageResponse::FileDescriptorResponse(FileDescriptorResponse {
        file_descriptor_proto: encoded,
    })
}

fn not_found(message: String) -> MessageResponse {
    error(Code::NotFound, message)
}

fn error(code: Code, message: String) -> MessageResponse {
    MessageResponse::ErrorResponse(ErrorResponse {
        error_code: code.as_i32(),
        error_message: message,
    })
}
