//! Code generator for anygrpc: turns `.proto` files into prost messages plus, for every service,
//! a client stub module and a server trait module that target the `anygrpc` crate.
//!
//! The `.proto` files are compiled in-process by [`protox`], so no `protoc` binary is needed; the
//! resulting descriptors go through [`prost_build`] for messages and through this crate's
//! [`prost_build::ServiceGenerator`] for services. Generated files are formatted by prost-build.
//!
//! In `build.rs`:
//!
//! ```no_run
//! fn main() -> std::io::Result<()> {
//!     anygrpc_build::compile_protos(&["protos/helloworld.proto"], &["protos"])
//! }
//! ```
//!
//! and in the crate, `include!(concat!(env!("OUT_DIR"), "/helloworld.rs"));` inside a module.
//! For service `Greeter` in package `helloworld` the file then holds, beside the messages:
//!
//! - `greeter_client::GreeterClient`: `new(channel)`, and per RPC `say_hello(request)` plus
//!   `say_hello_with(request, options)` (streaming-request RPCs: `rpc()`, `rpc_with(options)`,
//!   `rpc_from(stream)`, `rpc_from_with(stream, options)`), and one `*_PATH` constant per RPC;
//! - `greeter_server::Greeter`, the trait to implement (users write `async fn` in their impl),
//!   and `greeter_server::GreeterServer<T>`, which implements `anygrpc::Service`.
//!
//! Beside the Rust files it writes [`DESCRIPTOR_SET_FILE`], the encoded
//! `FileDescriptorSet` of everything it compiled (imports included), for a reflection
//! service: `include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"))`.
#![warn(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

mod client;
mod server;
mod service;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use prost_build;
pub use prost_types::FileDescriptorSet;

use prost::Message as _;
use service::{Options, ServiceWriter};

/// The file, in the output directory, that holds the encoded `FileDescriptorSet` of what was
/// compiled (imports included).
pub const DESCRIPTOR_SET_FILE: &str = "file_descriptor_set.bin";

/// Compiles `protos` (found through `includes`, like `protoc -I`) into Rust files in `OUT_DIR`,
/// with both client and server code, and emits `cargo:rerun-if-changed` for every `.proto` file
/// read, imports included. Meant to be called from `build.rs`; see [`configure`] for options.
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> io::Result<()> {
    configure().compile_protos(protos, includes)
}

/// Starts a [`Builder`] with the defaults of [`compile_protos`].
pub fn configure() -> Builder {
    Builder {
        build_client: true,
        build_server: true,
        out_dir: None,
        emit_rerun_if_changed: true,
        descriptor_set_path: None,
        options: Options::default(),
        stream_trait_path_set: false,
        prost: prost_build::Config::new(),
    }
}

/// Code generation options. Create with [`configure`], finish with [`Builder::compile_protos`] or
/// [`Builder::compile_fds`].
pub struct Builder {
    build_client: bool,
    build_server: bool,
    out_dir: Option<PathBuf>,
    emit_rerun_if_changed: bool,
    descriptor_set_path: Option<PathBuf>,
    options: Options,
    /// `stream_trait_path` was set: `anygrpc_path` leaves it alone.
    stream_trait_path_set: bool,
    prost: prost_build::Config,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("build_client", &self.build_client)
            .field("build_server", &self.build_server)
            .field("out_dir", &self.out_dir)
            .field("emit_rerun_if_changed", &self.emit_rerun_if_changed)
            .field("descriptor_set_path", &self.descriptor_set_path)
            .field("anygrpc_path", &self.options.anygrpc_path)
            .field("stream_trait_path", &self.options.stream_trait_path)
            .field("codec_path", &self.options.codec_path)
            .field("prost", &self.prost)
            .finish()
    }
}

impl Builder {
    /// Whether to generate the `<service>_client` modules. Default `true`.
    pub fn build_client(mut self, enable: bool) -> Self {
        self.build_client = enable;
        self
    }

    /// Whether to generate the `<service>_server` modules. Default `true`.
    pub fn build_server(mut self, enable: bool) -> Self {
        self.build_server = enable;
        self
    }

    /// Directory the `.rs` files are written to. Default: the `OUT_DIR` environment variable,
    /// which Cargo sets for build scripts.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Whether [`compile_protos`](Self::compile_protos) prints `cargo:rerun-if-changed=PATH`
    /// for every `.proto` file it read. Default `true`; turn off outside build scripts.
    pub fn emit_rerun_if_changed(mut self, enable: bool) -> Self {
        self.emit_rerun_if_changed = enable;
        self
    }

    /// Also writes the encoded `FileDescriptorSet` of what is compiled to `path` (it always
    /// goes to [`DESCRIPTOR_SET_FILE`] in the output directory). Use this, not
    /// `prost_config`'s `file_descriptor_set_path`, which prost-build honours only when it
    /// runs `protoc` itself.
    pub fn file_descriptor_set_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.descriptor_set_path = Some(path.into());
        self
    }

    /// Path through which generated code names the anygrpc crate. Default `::anygrpc`, so a
    /// crate using generated code depends on `anygrpc` itself (beside the adapter it runs
    /// on). To depend on an adapter alone, name the `anygrpc` it re-exports:
    /// `.anygrpc_path("::anygrpc_smol::anygrpc")` (or `anygrpc_tokio`, `anygrpc_async_std`).
    /// The `Stream` trait's path follows (`{path}::futures_core::Stream`) unless
    /// [`stream_trait_path`](Self::stream_trait_path) sets it.
    pub fn anygrpc_path(mut self, path: impl Into<String>) -> Self {
        self.options.anygrpc_path = path.into();
        if !self.stream_trait_path_set {
            self.options.stream_trait_path =
                format!("{}::futures_core::Stream", self.options.anygrpc_path);
        }
        self
    }

    /// Path of the `Stream` trait that `*_from` client methods take requests from.
    /// Default `::anygrpc::futures_core::Stream` (anygrpc re-exports `futures-core`).
    pub fn stream_trait_path(mut self, path: impl Into<String>) -> Self {
        self.options.stream_trait_path = path.into();
        self.stream_trait_path_set = true;
        self
    }

    /// Path of the [`Codec`](https://docs.rs/anygrpc) type (implementing `anygrpc::Codec` for
    /// every message of the services, and `Default`) through which the generated clients and
    /// servers encode and decode their messages, e.g. `"crate::JsonCodec"` for prost messages
    /// that also derive serde's traits (see [`prost_config`](Self::prost_config)). Default:
    /// none, anygrpc's prost codec, and the generated types name no codec.
    ///
    /// ```no_run
    /// fn main() -> std::io::Result<()> {
    ///     anygrpc_build::configure()
    ///         .codec_path("crate::json::JsonCodec")
    ///         .prost_config(|config| {
    ///             config.type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]");
    ///         })
    ///         .compile_protos(&["protos/helloworld.proto"], &["protos"])
    /// }
    /// ```
    pub fn codec_path(mut self, path: impl Into<String>) -> Self {
        self.options.codec_path = Some(path.into());
        self
    }

    /// Gives access to the underlying [`prost_build::Config`] for message options (attributes,
    /// extern paths, bytes/btree maps, ...). Its service generator and output directory are
    /// replaced by this builder's when compiling.
    pub fn prost_config(mut self, configure: impl FnOnce(&mut prost_build::Config)) -> Self {
        configure(&mut self.prost);
        self
    }

    /// Compiles `protos`, found through `includes`, with protox, then generates the Rust files.
    /// Errors (unreadable files, syntax or type errors) come back as `io::Error`s whose message
    /// names the file and position.
    pub fn compile_protos(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> io::Result<()> {
        let (fds, read) = load(protos, includes)?;
        if self.emit_rerun_if_changed {
            for path in read {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        self.compile_fds(fds)
    }

    /// Generates the Rust files for an already compiled descriptor set, and writes the set
    /// itself encoded beside them ([`DESCRIPTOR_SET_FILE`]). Descriptors need source info for
    /// the doc comments to carry over.
    pub fn compile_fds(mut self, fds: FileDescriptorSet) -> io::Result<()> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        "OUT_DIR is not set: run from a build script, or set out_dir",
                    )
                })?,
        };
        self.prost.out_dir(&out_dir);
        let encoded = fds.encode_to_vec();
        std::fs::write(out_dir.join(DESCRIPTOR_SET_FILE), &encoded)?;
        if let Some(path) = &self.descriptor_set_path {
            std::fs::write(path, &encoded)?;
        }
        if self.build_client || self.build_server {
            self.prost.service_generator(Box::new(ServiceWriter {
                options: self.options,
                client: self.build_client,
                server: self.build_server,
            }));
        }
        self.prost.compile_fds(fds)
    }
}

/// Compiles `protos` with protox, with source info (for doc comments) and imports. Also returns
/// the on-disk path of every file read, imports included (protox's built-in
/// `google/protobuf/*.proto` have none).
fn load(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> io::Result<(FileDescriptorSet, Vec<PathBuf>)> {
    let mut compiler = protox::Compiler::new(includes).map_err(protox_error)?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(protos).map_err(protox_error)?;
    let read = compiler
        .files()
        .filter_map(|file| file.path().map(Path::to_path_buf))
        .collect();
    Ok((compiler.file_descriptor_set(), read))
}

/// Turns a protox failure into an `io::Error`, keeping its file/position message.
fn protox_error(error: protox::Error) -> io::Error {
    let kind = if error.is_file_not_found() {
        io::ErrorKind::NotFound
    } else {
        io::ErrorKind::InvalidInput
    };
    io::Error::new(kind, format!("protox: {error:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_reports_every_file_read_and_keeps_comments() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/protos");
        let (fds, read) = load(&[dir.join("codegen/kitchen.proto")], &[&dir]).expect("compiles");
        let names: Vec<&str> = fds.file.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "codegen/common.proto",
                "google/protobuf/empty.proto",
                "codegen/kitchen.proto"
            ]
        );
        let mut read = read;
        read.sort();
        assert_eq!(
            read,
            [
                dir.join("codegen/common.proto"),
                dir.join("codegen/kitchen.proto")
            ]
        );
        let kitchen = &fds.file[2];
        let locations = &kitchen
            .source_code_info
            .as_ref()
            .expect("source info")
            .location;
        assert!(
            locations
                .iter()
                .any(|l| l.leading_comments().contains("Cooks and serves dishes."))
        );
    }
}
