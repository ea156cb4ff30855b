//! Writes `<service>_client`: path constants and a client struct with one group of methods per
//! RPC, each building the matching multi-callable on an `anygrpc::Channel`.

use std::fmt::Write as _;

use prost_build::{Method, Service};

use crate::service::{
    Kind, Options, bare, call_path, full_service_name, message_type, module_name, path_const,
    push_deprecated, push_docs, type_stem,
};

/// Appends the client module of `service` to `buf`.
pub(crate) fn write(service: &Service, options: &Options, buf: &mut String) {
    let g = &options.anygrpc_path;
    let full_name = full_service_name(service);
    let client = format!("{}Client", type_stem(service));

    let _ = writeln!(
        buf,
        "/// Client for the `{full_name}` service: see [`{module}::{client}`].",
        module = module_name(service, "client"),
    );
    let _ = writeln!(buf, "pub mod {} {{", module_name(service, "client"));
    buf.push_str("#![allow(dead_code, unreachable_pub)]\n");

    for method in &service.methods {
        let _ = writeln!(
            buf,
            "/// Call path of `{full_name}.{}`.\npub const {}: &str = \"{}\";",
            method.proto_name,
            path_const(method),
            call_path(service, method),
        );
    }

    push_docs(
        buf,
        &service.comments,
        &format!("Client for `{full_name}`: one method per RPC, sending on a shared channel."),
    );
    let _ = writeln!(
        buf,
        "#[derive(Debug, Clone)]\npub struct {client} {{\n    channel: {g}::Channel,\n}}\n"
    );
    let _ = writeln!(buf, "impl {client} {{");
    let _ = writeln!(
        buf,
        "/// A client whose calls go out on `channel` (cheap to clone; clients may share one).
pub fn new(channel: {g}::Channel) -> Self {{
    Self {{ channel }}
}}

/// The channel this client sends its calls on.
pub fn channel(&self) -> &{g}::Channel {{
    &self.channel
}}
"
    );
    for method in &service.methods {
        write_method(method, options, buf);
    }
    buf.push_str("}\n}\n");
}

/// Appends the methods of one RPC to the client's `impl` block.
fn write_method(method: &Method, options: &Options, buf: &mut String) {
    let g = &options.anygrpc_path;
    let stream = &options.stream_trait_path;
    let name = &method.name;
    let base = bare(name);
    let req = message_type(&method.input_type);
    let resp = message_type(&method.output_type);
    let path = path_const(method);
    let rpc = &method.proto_name;
    let c = options.codec_arg();
    let with_codec = options
        .codec_value()
        .map(|codec| format!(".with_codec({codec})"))
        .unwrap_or_default();

    let (factory, call_type, kind_line) = match Kind::of(method) {
        Kind::Unary => (
            "unary_unary",
            format!("{g}::UnaryCall<{resp}{c}>"),
            format!("Unary RPC `{rpc}`: sends one request; awaiting the call gives the response."),
        ),
        Kind::ServerStreaming => (
            "unary_stream",
            format!("{g}::UnaryStreamCall<{resp}{c}>"),
            format!(
                "Server-streaming RPC `{rpc}`: sends one request; the call is a stream of responses."
            ),
        ),
        Kind::ClientStreaming => (
            "stream_unary",
            format!("{g}::StreamUnaryCall<{req}, {resp}{c}>"),
            format!(
                "Client-streaming RPC `{rpc}`: `write` requests on the call, then `done_writing`;\n\
                 awaiting the call gives the single response."
            ),
        ),
        Kind::Bidi => (
            "stream_stream",
            format!("{g}::StreamStreamCall<{req}, {resp}{c}>"),
            format!(
                "Bidirectional-streaming RPC `{rpc}`: `write` requests on the call (then\n\
                 `done_writing`) while reading its stream of responses."
            ),
        ),
    };
    let callable = format!("self.channel.{factory}({path}){with_codec}");

    if matches!(Kind::of(method), Kind::Unary | Kind::ServerStreaming) {
        // The request may be borrowed, so its type does not name the method's.
        let callable = format!("self.channel.{factory}::<{req}, {resp}>({path}){with_codec}");
        push_docs(buf, &method.comments, &kind_line);
        push_deprecated(buf, method);
        let _ = writeln!(
            buf,
            "pub fn {name}(&self, request: impl ::core::borrow::Borrow<{req}>) -> {call_type} {{\n    {callable}.call(request)\n}}\n"
        );
        let _ = writeln!(
            buf,
            "/// Like `{base}`, with explicit call options (timeout, metadata, wait_for_ready, compression)."
        );
        push_deprecated(buf, method);
        let _ = writeln!(
            buf,
            "pub fn {base}_with(&self, request: impl ::core::borrow::Borrow<{req}>, options: {g}::CallOptions) -> {call_type} {{\n    \
             {callable}.call_with(request, options)\n}}\n"
        );
        return;
    }

    push_docs(buf, &method.comments, &kind_line);
    push_deprecated(buf, method);
    let _ = writeln!(
        buf,
        "pub fn {name}(&self) -> {call_type} {{\n    {callable}.call()\n}}\n"
    );
    let _ = writeln!(
        buf,
        "/// Like `{base}`, with explicit call options (timeout, metadata, wait_for_ready, compression)."
    );
    push_deprecated(buf, method);
    let _ = writeln!(
        buf,
        "pub fn {base}_with(&self, options: {g}::CallOptions) -> {call_type} {{\n    \
         {callable}.call_with(options)\n}}\n"
    );
    let requests =
        format!("requests: impl {stream}<Item = {req}> + ::core::marker::Send + 'static");
    let _ = writeln!(
        buf,
        "/// Like `{base}`, with the requests taken from `requests` until it ends (then half-closes)."
    );
    push_deprecated(buf, method);
    let _ = writeln!(
        buf,
        "pub fn {base}_from(&self, {requests}) -> {call_type} {{\n    {callable}.call_from(requests)\n}}\n"
    );
    let _ = writeln!(
        buf,
        "/// Like `{base}_from`, with explicit call options (timeout, metadata, wait_for_ready, compression)."
    );
    push_deprecated(buf, method);
    let _ = writeln!(
        buf,
        "pub fn {base}_from_with(&self, {requests}, options: {g}::CallOptions) -> {call_type} {{\n    \
         {callable}.call_from_with(requests, options)\n}}\n"
    );
}
