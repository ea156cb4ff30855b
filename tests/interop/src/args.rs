//! The standard interop command line: `--name=value` flags, TLS flags accepted and refused
//! clearly (TLS comes later), and the executor choice.

use std::collections::HashMap;
use std::future::Future;

use anygrpc::RuntimeRef;

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

    /// Fails unless the flags leave TLS off: TLS is not implemented yet, so `--use_tls=true`
    /// (and the certificate flags, which only make sense with it) are refused, not ignored.
    pub fn refuse_tls(&self) -> Result<(), String> {
        match self.get("use_tls") {
            None | Some("false") => {}
            Some("true") => {
                return Err("--use_tls=true: TLS is not supported by anygrpc yet".into());
            }
            Some(other) => return Err(format!("--use_tls={other}: expected true or false")),
        }
        for name in ["tls_cert_file", "tls_key_file", "ca_file", "use_test_ca"] {
            if self.get(name).is_some_and(|v| v != "false") {
                return Err(format!(
                    "--{name} needs --use_tls=true, which is not supported yet"
                ));
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
        assert!(flags(&["port=1"]).is_err());
    }
}
