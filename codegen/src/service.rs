//! The [`ServiceGenerator`] handed to prost-build, and the naming rules shared by the client and
//! server writers.

use prost_build::{Method, Service, ServiceGenerator};

use crate::{client, server};

/// Paths the generated code uses to reach things outside the proto package.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// How generated code names the anygrpc crate, e.g. `::anygrpc`.
    pub(crate) anygrpc_path: String,
    /// Path of the `Stream` trait taken by `*_from` client methods.
    pub(crate) stream_trait_path: String,
    /// Path of the codec type the messages go through; `None`: anygrpc's default (prost).
    pub(crate) codec_path: Option<String>,
}

impl Options {
    /// `, Codec` to append to a call object's or stream's type arguments (empty for the
    /// default codec, so the generated code reads as before).
    pub(crate) fn codec_arg(&self) -> String {
        self.codec_path
            .as_deref()
            .map(|codec| format!(", {codec}"))
            .unwrap_or_default()
    }

    /// An expression making the codec value, when one is named.
    pub(crate) fn codec_value(&self) -> Option<String> {
        self.codec_path
            .as_deref()
            .map(|codec| format!("<{codec} as ::core::default::Default>::default()"))
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            anygrpc_path: "::anygrpc".to_owned(),
            stream_trait_path: "::anygrpc::futures_core::Stream".to_owned(),
            codec_path: None,
        }
    }
}

/// Appends the client and/or server module of each service to the package file prost writes.
#[derive(Debug)]
pub(crate) struct ServiceWriter {
    pub(crate) options: Options,
    pub(crate) client: bool,
    pub(crate) server: bool,
}

impl ServiceGenerator for ServiceWriter {
    fn generate(&mut self, service: Service, buf: &mut String) {
        if self.client {
            client::write(&service, &self.options, buf);
        }
        if self.server {
            server::write(&service, &self.options, buf);
        }
    }
}

/// The four gRPC call shapes, from a method's streaming flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidi,
}

impl Kind {
    pub(crate) fn of(method: &Method) -> Self {
        match (method.client_streaming, method.server_streaming) {
            (false, false) => Kind::Unary,
            (false, true) => Kind::ServerStreaming,
            (true, false) => Kind::ClientStreaming,
            (true, true) => Kind::Bidi,
        }
    }
}

/// `/pkg.Service/Method`, the HTTP/2 `:path` of a call (gRPC over HTTP/2, "Path").
pub(crate) fn call_path(service: &Service, method: &Method) -> String {
    format!("/{}/{}", full_service_name(service), method.proto_name)
}

/// `pkg.Service`, or just `Service` in the default package.
pub(crate) fn full_service_name(service: &Service) -> String {
    if service.package.is_empty() {
        service.proto_name.clone()
    } else {
        format!("{}.{}", service.package, service.proto_name)
    }
}

/// An identifier without its `r#` prefix, for building longer names (`r#type` → `type_with`).
pub(crate) fn bare(ident: &str) -> &str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

/// Service name to prefix `Client`/`Server` with: `Self_` gives `SelfClient`, not `Self_Client`.
pub(crate) fn type_stem(service: &Service) -> &str {
    bare(&service.name).trim_end_matches('_')
}

/// Module name for a service, e.g. `RouteGuide` + `client` → `route_guide_client`.
pub(crate) fn module_name(service: &Service, suffix: &str) -> String {
    let mut snake = String::new();
    let mut previous_lower = false;
    for c in bare(&service.name).chars() {
        if c.is_uppercase() {
            if previous_lower {
                snake.push('_');
            }
            snake.extend(c.to_lowercase());
            previous_lower = false;
        } else {
            snake.push(c);
            previous_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    format!("{}_{suffix}", snake.trim_end_matches('_'))
}

/// Name of the `&'static str` constant holding a method's call path, e.g. `GET_FEATURE_PATH`.
pub(crate) fn path_const(method: &Method) -> String {
    format!("{}_PATH", bare(&method.name).to_uppercase())
}

/// A message type as seen from inside the generated service module, one level below the
/// package module prost resolved `rust_type` against. Absolute paths and `()` (for
/// `google.protobuf.Empty`) stay as they are.
pub(crate) fn message_type(rust_type: &str) -> String {
    if rust_type.starts_with("::") || rust_type.starts_with("crate::") || rust_type.starts_with('(')
    {
        rust_type.to_owned()
    } else {
        format!("super::{rust_type}")
    }
}

/// Appends the proto comments of an item as `///` lines, then `kind_line` as its own paragraph.
pub(crate) fn push_docs(buf: &mut String, comments: &prost_build::Comments, kind_line: &str) {
    let leading_only = prost_build::Comments {
        leading_detached: Vec::new(),
        leading: comments.leading.clone(),
        trailing: comments.trailing.clone(),
    };
    let before = buf.len();
    leading_only.append_with_indent(0, buf);
    if buf.len() > before {
        buf.push_str("///\n");
    }
    for line in kind_line.lines() {
        buf.push_str("/// ");
        buf.push_str(line);
        buf.push('\n');
    }
}

/// `#[deprecated]` for methods marked `option deprecated = true;`.
pub(crate) fn push_deprecated(buf: &mut String, method: &Method) {
    if method.options.deprecated() {
        buf.push_str("#[deprecated]\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, package: &str) -> Service {
        Service {
            name: name.to_owned(),
            proto_name: name.to_owned(),
            package: package.to_owned(),
            comments: Default::default(),
            methods: Vec::new(),
            options: Default::default(),
        }
    }

    #[test]
    fn module_names_are_snake_case() {
        assert_eq!(
            module_name(&service("RouteGuide", "p"), "client"),
            "route_guide_client"
        );
        assert_eq!(
            module_name(&service("Greeter", "p"), "server"),
            "greeter_server"
        );
        assert_eq!(module_name(&service("Self_", "p"), "server"), "self_server");
        assert_eq!(
            module_name(&service("V2Api", "p"), "client"),
            "v2_api_client"
        );
    }

    #[test]
    fn paths_include_the_package_when_there_is_one() {
        let with = service("Greeter", "helloworld");
        let without = service("Greeter", "");
        assert_eq!(full_service_name(&with), "helloworld.Greeter");
        assert_eq!(full_service_name(&without), "Greeter");
    }

    #[test]
    fn message_types_gain_one_super_unless_absolute() {
        assert_eq!(message_type("Point"), "super::Point");
        assert_eq!(
            message_type("super::common::Ping"),
            "super::super::common::Ping"
        );
        assert_eq!(message_type("::prost_types::Any"), "::prost_types::Any");
        assert_eq!(message_type("crate::pb::X"), "crate::pb::X");
        assert_eq!(message_type("()"), "()");
    }

    #[test]
    fn raw_identifiers_lose_their_prefix_when_extended() {
        assert_eq!(bare("r#type"), "type");
        assert_eq!(bare("get_feature"), "get_feature");
    }

    #[test]
    fn docs_put_the_kind_line_after_the_comments() {
        let comments = prost_build::Comments {
            leading_detached: vec![vec![" detached".to_owned()]],
            leading: vec![" Says hello.".to_owned()],
            trailing: Vec::new(),
        };
        let mut buf = String::new();
        push_docs(&mut buf, &comments, "Unary call.");
        assert_eq!(buf, "/// Says hello.\n///\n/// Unary call.\n");

        let mut bare_buf = String::new();
        push_docs(&mut bare_buf, &Default::default(), "Unary call.");
        assert_eq!(bare_buf, "/// Unary call.\n");
    }
}
