//! Runs the generator on the test protos and checks the code it writes: the signatures of every
//! call shape (compared with whitespace squashed, so formatting changes do not matter), the
//! builder options, errors, and the committed expected files that `tests/compiles.rs` builds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn protos_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/protos")
}

/// Runs `builder` on `protos` into a fresh directory; returns file name → contents of the
/// Rust files (the encoded descriptor set beside them aside).
fn generate(builder: anygrpc_build::Builder, protos: &[&str]) -> BTreeMap<String, String> {
    let out = tempfile::tempdir().expect("temp dir");
    generate_into(builder, protos, out.path())
}

fn generate_into(
    builder: anygrpc_build::Builder,
    protos: &[&str],
    out: &Path,
) -> BTreeMap<String, String> {
    let protos: Vec<PathBuf> = protos.iter().map(|p| protos_dir().join(p)).collect();
    builder
        .out_dir(out)
        .emit_rerun_if_changed(false)
        .compile_protos(&protos, &[protos_dir()])
        .expect("generation succeeds");
    std::fs::read_dir(out)
        .expect("read out dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("read generated file");
            (name, text)
        })
        .collect()
}

#[test]
fn the_encoded_descriptor_set_of_what_was_compiled_is_written_beside_the_code() {
    use prost::Message as _;
    let out = tempfile::tempdir().expect("temp dir");
    let extra = out.path().join("elsewhere.bin");
    generate_into(
        anygrpc_build::configure().file_descriptor_set_path(&extra),
        &["codegen/kitchen.proto"],
        out.path(),
    );
    let beside = out.path().join(anygrpc_build::DESCRIPTOR_SET_FILE);
    for path in [beside, extra] {
        let bytes = std::fs::read(&path).expect("written");
        let set = anygrpc_build::FileDescriptorSet::decode(bytes.as_slice()).expect("decodes");
        let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "codegen/common.proto",
                "google/protobuf/empty.proto",
                "codegen/kitchen.proto"
            ],
            "{}: every file compiled, imports included",
            path.display()
        );
        assert!(
            set.file[2].service.iter().any(|s| s.name() == "Kitchen"),
            "with its services"
        );
    }
}

fn kitchen() -> String {
    let files = generate(anygrpc_build::configure(), &["codegen/kitchen.proto"]);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["codegen.common.rs", "codegen.kitchen.v1.rs"],
        "one file per package, imports included"
    );
    files["codegen.kitchen.v1.rs"].clone()
}

/// Drops all whitespace and the trailing commas a formatter adds, so `needle`s can be written
/// on one line whatever the line breaks of the generated code.
fn squash(text: &str) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for (from, to) in [(",)", ")"), (",>", ">"), (",}", "}")] {
        out = out.replace(from, to);
    }
    out
}

#[track_caller]
fn assert_has(haystack: &str, needles: &[&str]) {
    let squashed = squash(haystack);
    for needle in needles {
        assert!(
            squashed.contains(&squash(needle)),
            "generated code lacks `{needle}`:\n{haystack}"
        );
    }
}

#[track_caller]
fn assert_lacks(haystack: &str, needles: &[&str]) {
    let squashed = squash(haystack);
    for needle in needles {
        assert!(
            !squashed.contains(&squash(needle)),
            "generated code has `{needle}`"
        );
    }
}

const PING: &str = "super::super::super::common::Ping";

#[test]
fn client_has_every_call_shape() {
    let code = kitchen();
    assert_has(
        &code,
        &[
            "pub mod kitchen_client {",
            "pub const TYPE_PATH: &str = \"/codegen.kitchen.v1.Kitchen/Type\";",
            "pub const OLD_PING_PATH: &str = \"/codegen.kitchen.v1.Kitchen/OldPing\";",
            "#[derive(Debug, Clone)] pub struct KitchenClient { channel: ::anygrpc::Channel, }",
            "pub fn new(channel: ::anygrpc::Channel) -> Self",
            // Unary, keyword name, message from another package.
            &format!(
                "pub fn r#type(&self, request: impl ::core::borrow::Borrow<{PING}>) -> ::anygrpc::UnaryCall<{PING}> {{ self.channel.unary_unary::<{PING}, {PING}>(TYPE_PATH).call(request) }}"
            ),
            &format!(
                "pub fn type_with(&self, request: impl ::core::borrow::Borrow<{PING}>, options: ::anygrpc::CallOptions) -> ::anygrpc::UnaryCall<{PING}> {{ self.channel.unary_unary::<{PING}, {PING}>(TYPE_PATH).call_with(request, options) }}"
            ),
            // google.protobuf.Empty is `()`; a method named like Service::call.
            "pub fn call(&self, request: impl ::core::borrow::Borrow<()>) -> ::anygrpc::UnaryCall<super::Order>",
            // Server streaming.
            "pub fn serve(&self, request: impl ::core::borrow::Borrow<super::Order>) -> ::anygrpc::UnaryStreamCall<super::Dish> { self.channel.unary_stream::<super::Order, super::Dish>(SERVE_PATH).call(request) }",
            "pub fn serve_with(&self, request: impl ::core::borrow::Borrow<super::Order>, options: ::anygrpc::CallOptions) -> ::anygrpc::UnaryStreamCall<super::Dish>",
            // Client streaming.
            "pub fn gather(&self) -> ::anygrpc::StreamUnaryCall<super::Dish, super::Order> { self.channel.stream_unary(GATHER_PATH).call() }",
            "pub fn gather_with(&self, options: ::anygrpc::CallOptions) -> ::anygrpc::StreamUnaryCall<super::Dish, super::Order> { self.channel.stream_unary(GATHER_PATH).call_with(options) }",
            "pub fn gather_from(&self, requests: impl ::anygrpc::futures_core::Stream<Item = super::Dish> + ::core::marker::Send + 'static) -> ::anygrpc::StreamUnaryCall<super::Dish, super::Order> { self.channel.stream_unary(GATHER_PATH).call_from(requests) }",
            "pub fn gather_from_with(&self, requests: impl ::anygrpc::futures_core::Stream<Item = super::Dish> + ::core::marker::Send + 'static, options: ::anygrpc::CallOptions) -> ::anygrpc::StreamUnaryCall<super::Dish, super::Order> { self.channel.stream_unary(GATHER_PATH).call_from_with(requests, options) }",
            // Bidi, keyword name.
            "pub fn r#match(&self) -> ::anygrpc::StreamStreamCall<super::Dish, super::Dish> { self.channel.stream_stream(MATCH_PATH).call() }",
            "pub fn match_with(&self, options: ::anygrpc::CallOptions) -> ::anygrpc::StreamStreamCall<super::Dish, super::Dish>",
            "pub fn match_from(&self, requests: impl ::anygrpc::futures_core::Stream<Item = super::Dish> + ::core::marker::Send + 'static) -> ::anygrpc::StreamStreamCall<super::Dish, super::Dish>",
            "pub fn match_from_with(&self, requests: impl ::anygrpc::futures_core::Stream<Item = super::Dish> + ::core::marker::Send + 'static, options: ::anygrpc::CallOptions) -> ::anygrpc::StreamStreamCall<super::Dish, super::Dish>",
            // Nested message type.
            "pub fn inspect(&self, request: impl ::core::borrow::Borrow<super::order::Line>) -> ::anygrpc::UnaryCall<super::order::Line>",
        ],
    );
}

#[test]
fn server_trait_has_every_call_shape() {
    let code = kitchen();
    assert_has(
        &code,
        &[
            "pub mod kitchen_server {",
            "pub const SERVICE_NAME: &str = \"codegen.kitchen.v1.Kitchen\";",
            "pub trait Kitchen: ::core::marker::Send + ::core::marker::Sync + 'static {",
            &format!(
                "fn r#type(&self, request: {PING}, context: &mut ::anygrpc::ServicerContext) -> impl ::core::future::Future<Output = ::core::result::Result<{PING}, ::anygrpc::Status>> + ::core::marker::Send;"
            ),
            "fn call(&self, request: (), context: &mut ::anygrpc::ServicerContext) -> impl ::core::future::Future<Output = ::core::result::Result<super::Order, ::anygrpc::Status>> + ::core::marker::Send;",
            "fn serve(&self, request: super::Order, context: &mut ::anygrpc::ServicerContext, responses: ::anygrpc::ResponseSink<super::Dish>) -> impl ::core::future::Future<Output = ::core::result::Result<(), ::anygrpc::Status>> + ::core::marker::Send;",
            "fn gather(&self, requests: ::anygrpc::RequestStream<super::Dish>, context: &mut ::anygrpc::ServicerContext) -> impl ::core::future::Future<Output = ::core::result::Result<super::Order, ::anygrpc::Status>> + ::core::marker::Send;",
            "fn r#match(&self, requests: ::anygrpc::RequestStream<super::Dish>, context: &mut ::anygrpc::ServicerContext, responses: ::anygrpc::ResponseSink<super::Dish>) -> impl ::core::future::Future<Output = ::core::result::Result<(), ::anygrpc::Status>> + ::core::marker::Send;",
            "pub struct KitchenServer<T>(::std::sync::Arc<T>);",
            "pub fn new(service: T) -> Self",
            "pub fn from_arc(service: ::std::sync::Arc<T>) -> Self",
            "impl<T: Kitchen> ::anygrpc::Service for KitchenServer<T> {",
            "fn name(&self) -> &'static str { SERVICE_NAME }",
            "fn call(&self, method: &str, call: ::anygrpc::ServerCall) -> ::core::option::Option<::anygrpc::BoxFuture<'static, ()>>",
            // Routes by proto method name, through the trait (not a same-named inherent method).
            "\"Type\" => { ::core::option::Option::Some(::anygrpc::__private::unary(call, ::std::sync::Arc::clone(&self.0), |service, request, context| { ::std::boxed::Box::pin(<T as Kitchen>::r#type(service, request, context)) })) }",
            "\"Call\" => { ::core::option::Option::Some(::anygrpc::__private::unary(call, ::std::sync::Arc::clone(&self.0), |service, request, context| { ::std::boxed::Box::pin(<T as Kitchen>::call(service, request, context)) })) }",
            "::anygrpc::__private::server_streaming(call, ::std::sync::Arc::clone(&self.0), |service, request, context, responses| { ::std::boxed::Box::pin(<T as Kitchen>::serve(service, request, context, responses)) })",
            "::anygrpc::__private::client_streaming(call, ::std::sync::Arc::clone(&self.0), |service, requests, context| { ::std::boxed::Box::pin(<T as Kitchen>::gather(service, requests, context)) })",
            "::anygrpc::__private::bidi_streaming(call, ::std::sync::Arc::clone(&self.0), |service, requests, context, responses| { ::std::boxed::Box::pin(<T as Kitchen>::r#match(service, requests, context, responses)) })",
            "_ => ::core::option::Option::None",
        ],
    );
}

#[test]
fn an_empty_service_routes_nothing() {
    let code = kitchen();
    assert_has(
        &code,
        &[
            "pub struct IdleClient",
            "pub trait Idle: ::core::marker::Send + ::core::marker::Sync + 'static {}",
            "impl<T: Idle> ::anygrpc::Service for IdleServer<T>",
            "let _ = (method, call); ::core::option::Option::None",
        ],
    );
}

#[test]
fn proto_comments_become_docs_with_the_call_kind() {
    let code = kitchen();
    for expected in [
        "/// Answers with the ping it was given (a method named after a keyword).\n",
        "/// Unary RPC `Type`: sends one request; awaiting the call gives the response.\n",
        "/// Unary RPC `Type`: one request in, one response out.\n",
        "/// Server-streaming RPC `Serve`:",
        "/// Client-streaming RPC `Gather`:",
        "/// Bidirectional-streaming RPC `Match`:",
        "/// Like `type`, with explicit call options",
        // Service comments, with prost's URL and bracket escaping.
        "/// See <https://example.com/kitchen> for the \\[menu\\].\n",
        "/// Unary RPC `Undocumented`: sends one request; awaiting the call gives the response.\n",
    ] {
        assert!(code.contains(expected), "missing doc line {expected:?}");
    }
    // The method without comments gets only its kind line.
    let undocumented = code
        .find("/// Unary RPC `Undocumented`: sends")
        .expect("kind line");
    let before = code[..undocumented].trim_end();
    assert!(
        !before.ends_with("///"),
        "no empty doc paragraph before the kind line"
    );
}

#[test]
fn deprecated_methods_are_marked_on_the_client_only() {
    let code = kitchen();
    assert_has(
        &code,
        &[
            "#[deprecated] pub fn old_ping(&self,",
            "#[deprecated] pub fn old_ping_with(&self,",
        ],
    );
    assert_eq!(code.matches("#[deprecated]").count(), 2);
}

#[test]
fn client_and_server_can_be_left_out() {
    let files = generate(
        anygrpc_build::configure().build_server(false),
        &["route_guide.proto"],
    );
    let code = &files["routeguide.rs"];
    assert_has(code, &["pub mod route_guide_client {"]);
    assert_lacks(code, &["route_guide_server", "anygrpc::Service"]);

    let files = generate(
        anygrpc_build::configure().build_client(false),
        &["route_guide.proto"],
    );
    let code = &files["routeguide.rs"];
    assert_has(code, &["pub mod route_guide_server {"]);
    assert_lacks(code, &["route_guide_client", "anygrpc::Channel"]);

    let files = generate(
        anygrpc_build::configure()
            .build_client(false)
            .build_server(false),
        &["route_guide.proto"],
    );
    let code = &files["routeguide.rs"];
    assert_has(code, &["pub struct RouteSummary"]);
    assert_lacks(code, &["route_guide_server", "route_guide_client"]);
}

#[test]
fn crate_paths_are_configurable() {
    let files = generate(
        anygrpc_build::configure()
            .anygrpc_path("::anygrpc_smol::anygrpc")
            .stream_trait_path("::anygrpc_smol::Stream"),
        &["route_guide.proto"],
    );
    let code = &files["routeguide.rs"];
    assert_has(
        code,
        &[
            "channel: ::anygrpc_smol::anygrpc::Channel",
            "requests: impl ::anygrpc_smol::Stream<Item = super::Point>",
            "impl<T: RouteGuide> ::anygrpc_smol::anygrpc::Service for RouteGuideServer<T>",
        ],
    );
    let elsewhere = code.replace("::anygrpc_smol::anygrpc::", "");
    assert_lacks(&elsewhere, &["::anygrpc::", "::futures_core::"]);
}

#[test]
fn prost_config_passes_through() {
    let files = generate(
        anygrpc_build::configure().prost_config(|config| {
            config.type_attribute(".routeguide.Point", "#[derive(PartialOrd)]");
        }),
        &["route_guide.proto"],
    );
    assert_has(
        &files["routeguide.rs"],
        &[
            "#[derive(PartialOrd)] #[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)] pub struct Point",
        ],
    );
}

#[test]
fn helloworld_greeter() {
    let files = generate(anygrpc_build::configure(), &["helloworld.proto"]);
    assert_has(
        &files["helloworld.rs"],
        &[
            "pub const SAY_HELLO_PATH: &str = \"/helloworld.Greeter/SayHello\";",
            "pub fn say_hello(&self, request: impl ::core::borrow::Borrow<super::HelloRequest>) -> ::anygrpc::UnaryCall<super::HelloReply>",
            "fn say_hello(&self, request: super::HelloRequest, context: &mut ::anygrpc::ServicerContext) -> impl ::core::future::Future<Output = ::core::result::Result<super::HelloReply, ::anygrpc::Status>> + ::core::marker::Send;",
            "\"SayHello\" =>",
        ],
    );
}

#[test]
fn syntax_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("broken.proto"),
        "syntax = \"proto3\";\nmessage Broken {\n  string name = ;\n}\n",
    )
    .expect("write proto");
    let error = anygrpc_build::configure()
        .out_dir(dir.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&[dir.path().join("broken.proto")], &[dir.path()])
        .expect_err("syntax error");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    let message = error.to_string();
    assert!(message.contains("broken.proto"), "{message}");
    assert!(message.contains(":3:"), "{message}");
}

#[test]
fn missing_files_are_not_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = anygrpc_build::configure()
        .out_dir(dir.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&["nowhere.proto"], &[dir.path()])
        .expect_err("missing file");
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{error}");
}

/// The generated files that `tests/compiles.rs` builds against a stand-in anygrpc, kept under
/// `tests/expected/`. `ANYGRPC_BLESS=1 cargo test -p anygrpc-build` rewrites them.
#[test]
fn expected_files_are_up_to_date() {
    let route_guide = generate(anygrpc_build::configure(), &["route_guide.proto"]);
    let kitchen = generate(anygrpc_build::configure(), &["codegen/kitchen.proto"]);
    let hello = generate(anygrpc_build::configure(), &["helloworld.proto"]);
    let expected = [
        ("route_guide.rs", &route_guide["routeguide.rs"]),
        ("helloworld.rs", &hello["helloworld.rs"]),
        ("codegen.common.rs", &kitchen["codegen.common.rs"]),
        ("codegen.kitchen.v1.rs", &kitchen["codegen.kitchen.v1.rs"]),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected");
    let bless = std::env::var_os("ANYGRPC_BLESS").is_some_and(|v| v == "1");
    for (name, generated) in expected {
        let path = dir.join(name);
        if bless {
            std::fs::write(&path, generated).expect("write expected file");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == *generated,
            "{} is out of date; rerun with ANYGRPC_BLESS=1 and review the diff",
            path.display()
        );
    }
}

#[test]
fn generated_code_can_name_anygrpc_through_an_adapter() {
    let files = generate(
        anygrpc_build::configure().anygrpc_path("::anygrpc_smol::anygrpc"),
        &["codegen/kitchen.proto"],
    );
    let code = squash(&files.values().cloned().collect::<String>());
    assert_has(
        &code,
        &[
            "pub fn new(channel: ::anygrpc_smol::anygrpc::Channel) -> Self",
            "requests: impl ::anygrpc_smol::anygrpc::futures_core::Stream<Item = super::Dish>",
        ],
    );
    assert_lacks(
        &code,
        &[
            "(channel: ::anygrpc::Channel)",
            "impl ::anygrpc::futures_core",
        ],
    );
    // A Stream path set on its own stays.
    let files = generate(
        anygrpc_build::configure()
            .stream_trait_path("::futures::Stream")
            .anygrpc_path("::anygrpc_smol::anygrpc"),
        &["codegen/kitchen.proto"],
    );
    let code = squash(&files.values().cloned().collect::<String>());
    assert_has(
        &code,
        &["requests: impl ::futures::Stream<Item = super::Dish>"],
    );
}

#[test]
fn a_named_codec_goes_through_every_client_and_server_type() {
    let files = generate(
        anygrpc_build::configure().codec_path("crate::Json"),
        &["codegen/kitchen.proto"],
    );
    let code = &files["codegen.kitchen.v1.rs"];
    let json = "<crate::Json as ::core::default::Default>::default()";
    assert_has(
        code,
        &[
            &format!(
                "pub fn r#type(&self, request: impl ::core::borrow::Borrow<{PING}>) -> ::anygrpc::UnaryCall<{PING}, crate::Json> {{ self.channel.unary_unary::<{PING}, {PING}>(TYPE_PATH).with_codec({json}).call(request) }}"
            ),
            &format!(
                "-> ::anygrpc::UnaryStreamCall<super::Dish, crate::Json> {{ self.channel.unary_stream::<super::Order, super::Dish>(SERVE_PATH).with_codec({json}).call(request) }}"
            ),
            &format!(
                "pub fn gather(&self) -> ::anygrpc::StreamUnaryCall<super::Dish, super::Order, crate::Json> {{ self.channel.stream_unary(GATHER_PATH).with_codec({json}).call() }}"
            ),
            "-> ::anygrpc::StreamStreamCall<super::Dish, super::Dish, crate::Json>",
            "responses: ::anygrpc::ResponseSink<super::Dish, crate::Json>",
            "requests: ::anygrpc::RequestStream<super::Dish, crate::Json>",
            &format!(
                "::anygrpc::__private::unary_with_codec(call, ::std::sync::Arc::clone(&self.0), |service, request, context| {{ ::std::boxed::Box::pin(<T as Kitchen>::r#type(service, request, context)) }}, {json})"
            ),
            "::anygrpc::__private::server_streaming_with_codec(",
            "::anygrpc::__private::client_streaming_with_codec(",
            "::anygrpc::__private::bidi_streaming_with_codec(",
        ],
    );
    assert_lacks(
        code,
        &["::anygrpc::__private::unary(", "ResponseSink<super::Dish>"],
    );
    // Without the option, the code names no codec (as before it existed).
    assert_lacks(&kitchen(), &["with_codec", "crate::Json"]);
}
