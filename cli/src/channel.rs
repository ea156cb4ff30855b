//! The channel the flags describe: cleartext or TLS, authority, load balancing, service config.

use anygrpc_tokio::{Channel, ChannelCredentials};

use crate::args::Args;
use crate::error::CliError;

/// Builds the channel to `args.address`.
pub(crate) fn build(args: &Args) -> Result<Channel, CliError> {
    let mut builder = Channel::builder(args.address.clone(), anygrpc_tokio::runtime());
    if let Some(authority) = &args.authority {
        builder = builder.authority(authority.clone());
    }
    if let Some(policy) = &args.lb {
        builder = builder
            .option("grpc.lb_policy_name", policy.as_str())
            .map_err(|e| CliError::usage(format!("-lb: {e}")))?;
    }
    if let Some(config) = &args.service_config {
        builder = builder
            .service_config(config)
            .map_err(|e| CliError::usage(format!("-service-config: {e}")))?;
    }
    if !args.plaintext {
        builder = builder.credentials(credentials(args)?);
        if let Some(name) = &args.servername {
            builder = builder.server_host_override(name.clone());
        }
    } else if args.cacert.is_some() || args.cert.is_some() || args.key.is_some() {
        return Err(CliError::usage(
            "-cacert, -cert and -key need TLS: drop -plaintext",
        ));
    }
    builder
        .build()
        .map_err(|e| CliError::usage(format!("address {:?}: {e}", args.address)))
}

/// The TLS credentials of `-cacert`, `-cert` and `-key`.
fn credentials(args: &Args) -> Result<ChannelCredentials, CliError> {
    let read = |path: &Option<std::path::PathBuf>| -> Result<Option<Vec<u8>>, CliError> {
        path.as_ref()
            .map(|p| std::fs::read(p).map_err(|e| CliError::usage(format!("{}: {e}", p.display()))))
            .transpose()
    };
    let (ca, cert, key) = (read(&args.cacert)?, read(&args.cert)?, read(&args.key)?);
    if args.insecure {
        if ca.is_some() {
            return Err(CliError::usage(
                "-insecure skips verification: -cacert has nothing to do",
            ));
        }
        let client = match (&key, &cert) {
            (Some(key), Some(cert)) => Some((key.as_slice(), cert.as_slice())),
            (None, None) => None,
            _ => return Err(CliError::usage("-cert and -key go together")),
        };
        return crate::insecure::credentials(client);
    }
    ChannelCredentials::ssl(ca.as_deref(), key.as_deref(), cert.as_deref())
        .map_err(|e| CliError::usage(format!("TLS: {e}")))
}
