//! The reflection services through a real anygrpc client and server, over the in-memory
//! runtime, on both versions.

use anygrpc::testing::MemoryRuntime;
use anygrpc::{Channel, Code, Server, StreamStreamCall};
use prost::Message;
use prost_types::FileDescriptorProto;

use super::*;
use crate::v1::server_reflection_request::MessageRequest;
use crate::v1::server_reflection_response::MessageResponse;
use crate::v1::{ExtensionRequest, ServerReflectionRequest, ServerReflectionResponse};

/// The descriptor set of `testdata/` (reflection_test/ext.proto, base.proto, timestamp.proto).
const TEST_SET: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/testdata/file_descriptor_set.bin"
));

const EXT: &str = "reflection_test/ext.proto";
const BASE: &str = "reflection_test/base.proto";
const TIMESTAMP: &str = "google/protobuf/timestamp.proto";
const V1: &str = "grpc/reflection/v1/reflection.proto";

#[derive(Clone, Copy, Debug)]
enum Version {
    V1,
    V1Alpha,
}

const BOTH: [Version; 2] = [Version::V1, Version::V1Alpha];

struct Fixture {
    rt: MemoryRuntime,
    channel: Channel,
    _server: Server,
}

fn fixture_with(builder: Builder) -> Fixture {
    let rt = MemoryRuntime::new();
    let server = Server::new(rt.handle());
    builder
        .register_encoded_file_descriptor_set(TEST_SET)
        .expect("the test set registers")
        .build()
        .expect("it links")
        .add_to(&server);
    let channel = rt.serve(&server);
    Fixture {
        rt,
        channel,
        _server: server,
    }
}

fn fixture() -> Fixture {
    fixture_with(Builder::new())
}

/// One reflection stream of either version, asked in v1 messages.
enum Stream {
    V1(StreamStreamCall<v1::ServerReflectionRequest, v1::ServerReflectionResponse>),
    V1Alpha(StreamStreamCall<v1alpha::ServerReflectionRequest, v1alpha::ServerReflectionResponse>),
}

/// `message` as its wire-identical twin of the other version.
fn twin<To: Message + Default>(message: &impl Message) -> To {
    To::decode(message.encode_to_vec().as_slice()).expect("wire-identical")
}

impl Stream {
    fn open(channel: &Channel, version: Version) -> Self {
        match version {
            Version::V1 => Self::V1(
                v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
                    .server_reflection_info(),
            ),
            Version::V1Alpha => Self::V1Alpha(
                v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone())
                    .server_reflection_info(),
            ),
        }
    }

    async fn ask_raw(&mut self, request: ServerReflectionRequest) -> ServerReflectionResponse {
        match self {
            Self::V1(call) => {
                call.write(&request).await.expect("written");
                call.read().await.expect("an answer").expect("a response")
            }
            Self::V1Alpha(call) => {
                let request: v1alpha::ServerReflectionRequest = twin(&request);
                call.write(&request).await.expect("written");
                twin(&call.read().await.expect("an answer").expect("a response"))
            }
        }
    }

    /// Asks `what` for host "h" and checks the answer echoes both.
    async fn ask(&mut self, what: MessageRequest) -> MessageResponse {
        let request = ServerReflectionRequest {
            host: "h".to_string(),
            message_request: Some(what),
        };
        let response = self.ask_raw(request.clone()).await;
        assert_eq!(response.valid_host, "h");
        assert_eq!(response.original_request.as_ref(), Some(&request));
        response.message_response.expect("an answer")
    }

    /// The names of the files the answer to `what` carries, in order.
    async fn files(&mut self, what: MessageRequest) -> Vec<String> {
        match self.ask(what).await {
            MessageResponse::FileDescriptorResponse(files) => files
                .file_descriptor_proto
                .iter()
                .map(|bytes| {
                    FileDescriptorProto::decode(bytes.as_slice())
                        .expect("a FileDescriptorProto")
                        .name()
                        .to_string()
                })
                .collect(),
            other => panic!("not files: {other:?}"),
        }
    }

    /// The error the answer to `what` is: its code and message.
    async fn error(&mut self, what: Option<MessageRequest>) -> (i32, String) {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: what,
        };
        match self.ask_raw(request).await.message_response {
            Some(MessageResponse::ErrorResponse(e)) => (e.error_code, e.error_message),
            other => panic!("not an error: {other:?}"),
        }
    }
}

fn symbol(name: &str) -> MessageRequest {
    MessageRequest::FileContainingSymbol(name.to_string())
}

fn file(name: &str) -> MessageRequest {
    MessageRequest::FileByFilename(name.to_string())
}

async fn services(stream: &mut Stream) -> Vec<String> {
    match stream
        .ask(MessageRequest::ListServices(String::new()))
        .await
    {
        MessageResponse::ListServicesResponse(list) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("not a list: {other:?}"),
    }
}

#[test]
fn list_services_names_the_registered_services_and_both_reflection_versions() {
    let f = fixture();
    f.rt.block_on(async {
        for version in BOTH {
            let mut stream = Stream::open(&f.channel, version);
            assert_eq!(
                services(&mut stream).await,
                [
                    "grpc.reflection.v1.ServerReflection",
                    "grpc.reflection.v1alpha.ServerReflection",
                    "reflection.test.Probe",
                ],
                "{version:?}"
            );
        }
    });
}

#[test]
fn a_file_comes_with_its_dependencies_each_sent_once_per_stream() {
    let f = fixture();
    f.rt.block_on(async {
        for version in BOTH {
            let mut stream = Stream::open(&f.channel, version);
            assert_eq!(
                stream.files(file(EXT)).await,
                [EXT, BASE, TIMESTAMP],
                "{version:?}"
            );
            // Already sent on this stream: the file asked for only, no dependency again.
            assert_eq!(stream.files(file(BASE)).await, [BASE], "{version:?}");
            assert_eq!(stream.files(file(EXT)).await, [EXT], "{version:?}");
            // A new stream starts afresh.
            let mut fresh = Stream::open(&f.channel, version);
            assert_eq!(
                fresh.files(file(BASE)).await,
                [BASE, TIMESTAMP],
                "{version:?}"
            );
            assert_eq!(fresh.files(file(V1)).await, [V1], "{version:?}");
        }
    });
}

#[test]
fn file_containing_symbol_finds_every_kind_of_symbol() {
    let f = fixture();
    let cases = [
        ("reflection.test.Probe", BASE),
        ("reflection.test.Probe.Ask", BASE),
        ("reflection.test.Base", BASE),
        ("reflection.test.Base.id", BASE),
        ("reflection.test.Base.choice", BASE),
        ("reflection.test.Base.Inner", BASE),
        ("reflection.test.Base.Inner.kind", BASE),
        ("reflection.test.Base.Inner.Kind", BASE),
        ("reflection.test.Base.Inner.LARGE", BASE),
        ("reflection.test.Base.Inner.Kind.LARGE", BASE),
        ("reflection.test.Color", BASE),
        ("reflection.test.GREEN", BASE),
        ("reflection.test.note", EXT),
        ("reflection.test.Holder", EXT),
        ("reflection.test.Holder.flag", EXT),
        ("google.protobuf.Timestamp", TIMESTAMP),
        (
            "grpc.reflection.v1alpha.ServerReflection",
            "grpc/reflection/v1alpha/reflection.proto",
        ),
        (
            "grpc.reflection.v1.ServerReflectionRequest.list_services",
            V1,
        ),
    ];
    f.rt.block_on(async {
        for version in BOTH {
            for (name, defined_in) in cases {
                // A stream per question, so that each answer starts with the file asked for.
                let mut stream = Stream::open(&f.channel, version);
                let files = stream.files(symbol(name)).await;
                assert_eq!(
                    files.first().map(String::as_str),
                    Some(defined_in),
                    "{version:?} {name}"
                );
            }
        }
    });
}

#[test]
fn extensions_are_found_by_type_and_number_and_listed_by_type() {
    let f = fixture();
    f.rt.block_on(async {
        for version in BOTH {
            let mut stream = Stream::open(&f.channel, version);
            for number in [100, 101, 150] {
                let what = MessageRequest::FileContainingExtension(ExtensionRequest {
                    containing_type: "reflection.test.Base".to_string(),
                    extension_number: number,
                });
                let files = stream.files(what).await;
                assert_eq!(
                    files.first().map(String::as_str),
                    Some(EXT),
                    "{version:?} {number}"
                );
            }
            let what =
                MessageRequest::AllExtensionNumbersOfType("reflection.test.Base".to_string());
            match stream.ask(what).await {
                MessageResponse::AllExtensionNumbersResponse(numbers) => {
                    assert_eq!(numbers.base_type_name, "reflection.test.Base");
                    assert_eq!(numbers.extension_number, [100, 101, 150], "{version:?}");
                }
                other => panic!("{version:?}: not numbers: {other:?}"),
            }
            let what =
                MessageRequest::AllExtensionNumbersOfType("reflection.test.Color".to_string());
            let (code, _) = match stream.ask(what).await {
                MessageResponse::ErrorResponse(e) => (e.error_code, e.error_message),
                other => panic!("an enum has no extensions: {other:?}"),
            };
            assert_eq!(code, Code::NotFound.as_i32());
        }
    });
}

#[test]
fn unknown_names_are_not_found_naming_them_and_an_empty_request_is_invalid() {
    let f = fixture();
    f.rt.block_on(async {
        for version in BOTH {
            let mut stream = Stream::open(&f.channel, version);
            let unknown = [
                (file("no/such.proto"), "no/such.proto"),
                (symbol("reflection.test.Nope"), "reflection.test.Nope"),
                (
                    symbol("reflection.test.Base.nope"),
                    "reflection.test.Base.nope",
                ),
                (
                    MessageRequest::FileContainingExtension(ExtensionRequest {
                        containing_type: "reflection.test.Base".to_string(),
                        extension_number: 199,
                    }),
                    "199",
                ),
                (
                    MessageRequest::AllExtensionNumbersOfType("no.Such".to_string()),
                    "no.Such",
                ),
            ];
            for (what, named) in unknown {
                let (code, message) = stream.error(Some(what)).await;
                assert_eq!(code, Code::NotFound.as_i32(), "{version:?}: {message}");
                assert!(message.contains(named), "{version:?}: {message}");
            }
            let (code, message) = stream.error(None).await;
            assert_eq!(
                code,
                Code::InvalidArgument.as_i32(),
                "{version:?}: {message}"
            );
            // The stream still answers after errors.
            assert_eq!(stream.files(file(BASE)).await, [BASE, TIMESTAMP]);
        }
    });
}

#[test]
fn a_builder_can_serve_one_version_only() {
    let f = fixture_with(Builder::new().serve_v1alpha(false));
    f.rt.block_on(async {
        let mut stream = Stream::open(&f.channel, Version::V1);
        assert_eq!(
            services(&mut stream).await,
            [
                "grpc.reflection.v1.ServerReflection",
                "reflection.test.Probe"
            ]
        );
        let mut alpha =
            v1alpha::server_reflection_client::ServerReflectionClient::new(f.channel.clone())
                .server_reflection_info();
        let request: v1alpha::ServerReflectionRequest = twin(&ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        });
        let _ = alpha.write(&request).await;
        let err = alpha.read().await.expect("an end").unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented, "{err}");
    });
    let f = fixture_with(Builder::new().serve_v1(false));
    f.rt.block_on(async {
        let mut stream = Stream::open(&f.channel, Version::V1Alpha);
        assert_eq!(
            services(&mut stream).await,
            [
                "grpc.reflection.v1alpha.ServerReflection",
                "reflection.test.Probe"
            ]
        );
    });
}

#[test]
fn a_set_that_does_not_decode_or_link_is_a_registration_error() {
    let garbage = Builder::new()
        .register_encoded_file_descriptor_set(TEST_SET)
        .expect("the first set is fine")
        .register_encoded_file_descriptor_set(&[0xff, 0xff, 0xff])
        .unwrap_err();
    assert_eq!(garbage.set(), Some(1), "{garbage}");
    assert!(
        garbage.to_string().contains("descriptor set 1"),
        "{garbage}"
    );

    // A file whose import is in neither this set nor an earlier one.
    let orphan = prost_types::FileDescriptorSet {
        file: vec![FileDescriptorProto {
            name: Some("orphan.proto".to_string()),
            dependency: vec!["missing.proto".to_string()],
            ..FileDescriptorProto::default()
        }],
    };
    let unlinked = Builder::new()
        .register_encoded_file_descriptor_set(&orphan.encode_to_vec())
        .unwrap_err();
    assert_eq!(unlinked.set(), Some(0));
    assert!(unlinked.to_string().contains("missing.proto"), "{unlinked}");

    // A field of a type nobody defines.
    let dangling = prost_types::FileDescriptorSet {
        file: vec![FileDescriptorProto {
            name: Some("dangling.proto".to_string()),
            message_type: vec![prost_types::DescriptorProto {
                name: Some("M".to_string()),
                field: vec![prost_types::FieldDescriptorProto {
                    name: Some("f".to_string()),
                    number: Some(1),
                    label: Some(1),
                    r#type: Some(11),
                    type_name: Some(".no.Such".to_string()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..FileDescriptorProto::default()
        }],
    };
    let err = serve_on(
        &Server::new(MemoryRuntime::new().handle()),
        &[&dangling.encode_to_vec()],
    )
    .unwrap_err();
    assert_eq!(err.set(), Some(0), "{err}");
}
