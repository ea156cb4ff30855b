//! The gRPC layer over HTTP/2 (grpc/grpc doc/PROTOCOL-HTTP2.md): status codes, metadata,
//! `grpc-timeout`, length-prefixed message framing, message compression, and the gRPC rules
//! for request, response and trailer header blocks.

pub mod base64;
pub mod compression;
pub mod head;
pub mod message;
pub mod metadata;
pub mod status;
pub mod timeout;

pub use compression::{Compression, CompressionError, CompressionLevel, Encoding, EncodingSet};
pub use compression::{compress, decompress};
pub use head::{HeadError, RequestHead, RequestOut, ResponseHead, Trailers};
pub use head::{
    check_request_trailers, parse_request, parse_response, parse_trailers, parse_trailers_only,
    write_request, write_response_head, write_trailers, write_trailers_only,
};
pub use message::encode_prefix;
pub use message::{MessageDecoder, MessageError, RawMessage};
pub use metadata::{Metadata, MetadataError, MetadataKey, MetadataValue};
pub use status::{Code, Status};
pub use timeout::{TimeoutError, TimeoutValue};
