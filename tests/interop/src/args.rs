//! The standard interop command line: `--name=value` flags, the TLS flags (`--use_tls`,
//! `--tls_cert_file`/`--tls_key_file` for servers, `--ca_file` for clients), and the executor
//! choice.

use std::collections::HashMap;
use std::future::Future;

use anygrpc::{ChannelCredentials, RuntimeRef, ServerCredentials};

/// Parsed `--name=value` flags.
#[derive(Debug, Default)]
pub struct Flags(HashMap<String, String>);

impl Flags {
    /// Parses `args` (without the program name); `--flag` alone means `--flag=true`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut flags = HashMap::new();
        for arg in args {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(format!(
                    "unexpected argument {arg:?} (flags are --name=value)"
                ));
            };
            let (name, value) = flag.split_once('=').unwrap_or((flag, "true"));
            flags.insert(name.to_string(), value.to_string());
        }
        Ok(Self(flags))
    }

    /// The flag's value, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The flag's value, or an error naming it.
    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required"))
    }

    /// A port flag.
    pub fn port(&self, name: &str) -> Result<u16, String> {
        let value = self.required(name)?;
        value
            .parse()
            .map_err(|_| format!("--{name}={value} is not a port"))
    }

    /// `--use_tls`: `false` when absent.
    pub fn use_tls(&self) -> Result<bool, String> {
        match self.get("use_tls") {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(format!("--use_tls={other}: expected true or false")),
        }
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, String> {
        let path = self.required(name)?;
        std::fs::read(path).map_err(|e| format!("--{name}={path}: {e}"))
    }

    /// With `--use_tls=true`, the server's credentials from `--tls_cert_file` (the chain)
    /// and `--tls_key_file`.
    pub fn server_credentials(&self) -> Result<Option<ServerCredentials>, String> {
        if !self.use_tls()? {
            return self.refuse_tls().map(|()| None);
        }
        let credentials = ServerCredentials::ssl(
            &self.read("tls_key_file")?,
            &self.read("tls_cert_file")?,
            None,
            false,
        );
        credentials
            .map(Some)
            .map_err(|e| format!("bad TLS credentials: {e}"))
    }

    /// With `--use_tls=true`, the client's credentials: the roots of `--ca_file`, else the
    /// system's (`--use_test_ca=true` needs `--ca_file`: grpc's test CA is not built in).
    pub fn channel_credentials(&self) -> Result<Option<ChannelCredentials>, String> {
        if !self.use_tls()? {
            return self.refuse_tls().map(|()| None);
        }
        let roots = match self.get("ca_file") {
            Some(_) => Some(self.read("ca_file")?),
            None if self.get("use_test_ca") == Some("true") => {
                return Err(
                    "--use_test_ca=true needs --ca_file (grpc's test CA is not built in)".into(),
                );
            }
            None => None,
        };
        let credentials = ChannelCredentials::ssl(roots.as_deref(), None, None);
        credentials
            .map(Some)
            .map_err(|e| format!("bad TLS roots: {e}"))
    }

    /// Fails unless the flags leave TLS off, for a peer that does not speak TLS: `--use_tls=true`
    /// (and the certificate flags, which only make sense with it) are refused, not ignored.
    pub fn refuse_tls(&self) -> Result<(), String> {
        match self.get("use_tls") {
            None | Some("false") => {}
            Some("true") => {
                return Err("--use_tls=true: TLS is not supported by this peer".into());
            }
            Some(other) => return Err(format!("--use_tls={other}: expected true or false")),
        }
        for name in ["tls_cert_file", "tls_key_file", "ca_file", "use_test_ca"] {
            if self.get(name).is_some_and(|v| v != "false") {
                return Err(format!("--{name} needs --use_tls=true"));
            }
        }
        Ok(())
    }

    /// `--runtime=`, `smol` by default.
    pub fn runtime(&self) -> &str {
        self.get("runtime").unwrap_or("smol")
    }
}

/// The executors anygrpc's interop binaries run on (the examples' list).
pub use anygrpc_examples::runtimes::RUNTIMES;

/// Runs `main(runtime)` to completion on the executor called `name`.
pub fn run_on<T, F>(name: &str, main: impl FnOnce(RuntimeRef) -> F) -> Result<T, String>
where
    F: Future<Output = T>,
{
    anygrpc_examples::runtimes::run(name, main)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Result<Flags, String> {
        Flags::parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn parses_flags_and_refuses_tls() {
        let f = flags(&["--port=8080", "--use_tls=false"]).unwrap();
        assert_eq!(f.port("port"), Ok(8080));
        assert_eq!(f.refuse_tls(), Ok(()));
        assert_eq!(f.runtime(), "smol");
        assert!(flags(&["--use_tls=true"]).unwrap().refuse_tls().is_err());
        assert!(flags(&["--ca_file=x.pem"]).unwrap().refuse_tls().is_err());
        assert!(flags(&["--port=x"]).unwrap().port("port").is_err());
        assert_eq!(
            flags(&["--use_tls=maybe"])
                .unwrap()
                .use_tls()
                .map_err(|_| ()),
            Err(())
        );
        let missing = flags(&["--use_tls=true"]).unwrap().server_credentials();
        assert!(missing.is_err_and(|e| e.contains("--tls_key_file")));
        let no_file = flags(&["--use_tls=true", "--ca_file=/nonexistent.pem"]).unwrap();
        assert!(
            no_file
                .channel_credentials()
                .is_err_and(|e| e.contains("/nonexistent.pem"))
        );
        assert!(
            flags(&[])
                .unwrap()
                .channel_credentials()
                .is_ok_and(|c| c.is_none())
        );
        assert!(flags(&["port=1"]).is_err());
    }
}
