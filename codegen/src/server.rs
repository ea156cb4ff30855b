//! Writes `<service>_server`: the trait users implement (one `impl Future` method per RPC, so an
//! `async fn` satisfies it) and `<Service>Server<T>`, which routes calls to it as an
//! `anygrpc::Service`.

use std::fmt::Write as _;

use prost_build::{Method, Service};

use crate::service::{
    Kind, Options, full_service_name, message_type, module_name, push_docs, type_stem,
};

/// Appends the server module of `service` to `buf`.
pub(crate) fn write(service: &Service, options: &Options, buf: &mut String) {
    let g = &options.anygrpc_path;
    let full_name = full_service_name(service);
    let module = module_name(service, "server");
    let trait_name = &service.name;
    let server = format!("{}Server", type_stem(service));
    let arc = "::std::sync::Arc";

    let _ = writeln!(
        buf,
        "/// Server side of the `{full_name}` service: implement [`{module}::{trait_name}`] and serve it\n\
         /// with [`{module}::{server}`].\npub mod {module} {{"
    );
    buf.push_str("#![allow(dead_code, unreachable_pub)]\n");
    let _ = writeln!(
        buf,
        "/// Fully-qualified name of the service, as it appears in call paths.\n\
         pub const SERVICE_NAME: &str = \"{full_name}\";\n"
    );

    push_docs(
        buf,
        &service.comments,
        &format!(
            "Implementation of `{full_name}`: write `async fn`s for these methods, wrap the value\n\
             in [`{server}`] and add that to a server. Returning `Err(status)` ends the call with it."
        ),
    );
    let _ = writeln!(
        buf,
        "pub trait {trait_name}: ::core::marker::Send + ::core::marker::Sync + 'static {{"
    );
    for method in &service.methods {
        write_trait_method(method, options, buf);
    }
    buf.push_str("}\n\n");

    let _ = writeln!(
        buf,
        "/// Serves an implementation of [`{trait_name}`] as `{full_name}`, routing each call to its method.
pub struct {server}<T>({arc}<T>);

impl<T> {server}<T> {{
    /// Serves `service`.
    pub fn new(service: T) -> Self {{
        Self({arc}::new(service))
    }}

    /// Serves a `service` that is shared with other code.
    pub fn from_arc(service: {arc}<T>) -> Self {{
        Self(service)
    }}
}}

impl<T> ::core::clone::Clone for {server}<T> {{
    fn clone(&self) -> Self {{
        Self({arc}::clone(&self.0))
    }}
}}

impl<T> ::core::fmt::Debug for {server}<T> {{
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {{
        f.debug_struct(\"{server}\").field(\"service\", &SERVICE_NAME).finish_non_exhaustive()
    }}
}}
"
    );

    let _ = writeln!(
        buf,
        "impl<T: {trait_name}> {g}::Service for {server}<T> {{
    fn name(&self) -> &'static str {{
        SERVICE_NAME
    }}

    fn call(&self, method: &str, call: {g}::ServerCall) -> ::core::option::Option<{g}::BoxFuture<'static, ()>> {{"
    );
    if service.methods.is_empty() {
        // No method to route to: every call is unknown (UNIMPLEMENTED).
        buf.push_str("let _ = (method, call);\n::core::option::Option::None\n}\n}\n}\n");
        return;
    }
    buf.push_str("match method {\n");
    for method in &service.methods {
        write_route(method, trait_name, options, buf);
    }
    buf.push_str("_ => ::core::option::Option::None,\n}\n}\n}\n}\n");
}

/// Appends the trait method of one RPC.
fn write_trait_method(method: &Method, options: &Options, buf: &mut String) {
    let g = &options.anygrpc_path;
    let req = message_type(&method.input_type);
    let resp = message_type(&method.output_type);
    let rpc = &method.proto_name;
    let c = options.codec_arg();
    let context = format!("context: &mut {g}::ServicerContext");
    let (params, output, kind_line) = match Kind::of(method) {
        Kind::Unary => (
            format!("request: {req}, {context}"),
            resp,
            format!("Unary RPC `{rpc}`: one request in, one response out."),
        ),
        Kind::ServerStreaming => (
            format!("request: {req}, {context}, responses: {g}::ResponseSink<{resp}{c}>"),
            "()".to_owned(),
            format!(
                "Server-streaming RPC `{rpc}`: `send` each response on `responses`;\n\
                 returning `Ok(())` ends the call with status OK."
            ),
        ),
        Kind::ClientStreaming => (
            format!("requests: {g}::RequestStream<{req}{c}>, {context}"),
            resp,
            format!(
                "Client-streaming RPC `{rpc}`: `read` the requests from `requests` until `None`,\n\
                 then return the single response."
            ),
        ),
        Kind::Bidi => (
            format!(
                "requests: {g}::RequestStream<{req}{c}>, {context}, responses: {g}::ResponseSink<{resp}{c}>"
            ),
            "()".to_owned(),
            format!(
                "Bidirectional-streaming RPC `{rpc}`: read `requests` and `send` on `responses` in\n\
                 any order; returning `Ok(())` ends the call with status OK."
            ),
        ),
    };
    push_docs(buf, &method.comments, &kind_line);
    let _ = writeln!(
        buf,
        "fn {}(&self, {params}) -> impl ::core::future::Future<Output = ::core::result::Result<{output}, {g}::Status>> + ::core::marker::Send;\n",
        method.name
    );
}

/// Appends the `match` arm that hands a call to `method` over to its anygrpc handler helper.
fn write_route(method: &Method, trait_name: &str, options: &Options, buf: &mut String) {
    let g = &options.anygrpc_path;
    let (helper, args) = match Kind::of(method) {
        Kind::Unary => ("unary", "service, request, context"),
        Kind::ServerStreaming => ("server_streaming", "service, request, context, responses"),
        Kind::ClientStreaming => ("client_streaming", "service, requests, context"),
        Kind::Bidi => ("bidi_streaming", "service, requests, context, responses"),
    };
    // A named codec goes to the helper's `_with_codec` form, its value last.
    let (suffix, codec) = match options.codec_value() {
        Some(codec) => ("_with_codec", format!(", {codec}")),
        None => ("", String::new()),
    };
    let _ = writeln!(
        buf,
        "\"{rpc}\" => ::core::option::Option::Some({g}::__private::{helper}{suffix}(call, ::std::sync::Arc::clone(&self.0), |{args}| {{
            ::std::boxed::Box::pin(<T as {trait_name}>::{name}({args}))
        }}{codec})),",
        rpc = method.proto_name,
        name = method.name,
    );
}
