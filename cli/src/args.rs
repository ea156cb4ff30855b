//! Command-line flags, spelled as grpcurl spells them.

use std::path::PathBuf;

use clap::Parser;

/// grpcurl's long flags (and ours) that take one dash; see [`normalize_argv`].
const LONG_FLAGS: &[&str] = &[
    "plaintext",
    "insecure",
    "cacert",
    "cert",
    "key",
    "authority",
    "servername",
    "max-time",
    "connect-timeout",
    "proto",
    "import-path",
    "protoset",
    "emit-defaults",
    "service-config",
    "lb",
    "help",
];

/// A grpcurl-compatible gRPC client: `anygrpc [flags] ADDRESS list|describe|METHOD`.
#[derive(Debug, Parser)]
#[command(name = "anygrpc", version, about)]
pub(crate) struct Args {
    /// Use cleartext HTTP/2 (h2c) instead of TLS.
    #[arg(long)]
    pub(crate) plaintext: bool,
    /// Accept any certificate the server shows (self-signed servers); the handshake's
    /// signatures are still checked.
    #[arg(long)]
    pub(crate) insecure: bool,
    /// PEM file of the root certificates that verify the server (default: system roots).
    #[arg(long)]
    pub(crate) cacert: Option<PathBuf>,
    /// PEM file of the client certificate chain (mutual TLS; needs -key).
    #[arg(long)]
    pub(crate) cert: Option<PathBuf>,
    /// PEM file of the client private key (mutual TLS; needs -cert).
    #[arg(long)]
    pub(crate) key: Option<PathBuf>,
    /// The :authority of each request.
    #[arg(long)]
    pub(crate) authority: Option<String>,
    /// The server name the TLS certificate must carry (instead of the host of ADDRESS).
    #[arg(long)]
    pub(crate) servername: Option<String>,
    /// A request header `name: value`; repeatable.
    #[arg(short = 'H', value_name = "HEADER")]
    pub(crate) headers: Vec<String>,
    /// Request messages as JSON (several concatenated objects for client streaming); `@`
    /// reads them from stdin.
    #[arg(short = 'd', value_name = "JSON")]
    pub(crate) data: Option<String>,
    /// The deadline of the whole operation, in seconds.
    #[arg(long = "max-time", value_name = "SECONDS")]
    pub(crate) max_time: Option<f64>,
    /// The deadline for connecting, in seconds (bounds reflection and the call while the
    /// channel connects).
    #[arg(long = "connect-timeout", value_name = "SECONDS")]
    pub(crate) connect_timeout: Option<f64>,
    /// A .proto source file describing the service, instead of server reflection; repeatable.
    #[arg(long, value_name = "FILE")]
    pub(crate) proto: Vec<PathBuf>,
    /// A directory the -proto files and their imports are found in; repeatable.
    #[arg(long = "import-path", value_name = "DIR")]
    pub(crate) import_path: Vec<PathBuf>,
    /// An encoded FileDescriptorSet describing the service, instead of server reflection.
    #[arg(long, value_name = "FILE")]
    pub(crate) protoset: Vec<PathBuf>,
    /// Print fields that hold their default value too.
    #[arg(long = "emit-defaults")]
    pub(crate) emit_defaults: bool,
    /// Verbose: also print the method, response headers and trailers.
    #[arg(short = 'v')]
    pub(crate) verbose: bool,
    /// A service config (gRFC A2) as JSON: per-method timeouts, wait-for-ready, message
    /// limits, retries, the balancing policy (which wins over -lb).
    #[arg(long = "service-config", value_name = "JSON")]
    pub(crate) service_config: Option<String>,
    /// The load-balancing policy: pick_first, round_robin or least_request.
    #[arg(
        long,
        value_name = "POLICY",
        value_parser = ["pick_first", "round_robin", "least_request"]
    )]
    pub(crate) lb: Option<String>,
    /// host:port, or unix:/path.
    pub(crate) address: String,
    /// `list [SERVICE]`, `describe [SYMBOL]`, or a method as pkg.Service/Method.
    pub(crate) command: String,
    /// The argument of `list` or `describe`.
    pub(crate) symbol: Option<String>,
}

/// Rewrites `-name` and `-name=value` for the long flags above to `--name`: grpcurl (Go's
/// flag package) takes long flags with one dash or two, clap only with two.
pub(crate) fn normalize_argv(argv: impl IntoIterator<Item = String>) -> Vec<String> {
    argv.into_iter()
        .map(|arg| {
            let Some(rest) = arg.strip_prefix('-') else {
                return arg;
            };
            if rest.starts_with('-') {
                return arg;
            }
            let name = rest.split('=').next().unwrap_or(rest);
            if LONG_FLAGS.contains(&name) {
                format!("-{arg}")
            } else {
                arg
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_dash_long_flags_become_double() {
        let argv = [
            "anygrpc",
            "-plaintext",
            "-max-time=3",
            "--proto",
            "a",
            "-d",
            "{}",
            "-v",
        ];
        let argv = normalize_argv(argv.map(String::from));
        assert_eq!(
            argv,
            [
                "anygrpc",
                "--plaintext",
                "--max-time=3",
                "--proto",
                "a",
                "-d",
                "{}",
                "-v"
            ]
        );
        let args = Args::try_parse_from(normalize_argv(
            ["anygrpc", "-plaintext", "-H", "a: b", "x:1", "list"].map(String::from),
        ))
        .expect("parses");
        assert!(args.plaintext);
        assert_eq!(args.headers, ["a: b"]);
        assert_eq!(args.command, "list");
    }
}
