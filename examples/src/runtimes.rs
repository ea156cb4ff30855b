//! Picks an executor by name (`--runtime=smol|async-std|tokio`) and runs a future on it.

use std::future::Future;

use anygrpc::RuntimeRef;

/// The executors the examples run on.
pub const RUNTIMES: &[&str] = &["smol"];

/// Runs `main(runtime)` to completion on the executor called `name`.
pub fn run<T, F>(name: &str, main: impl FnOnce(RuntimeRef) -> F) -> Result<T, String>
where
    F: Future<Output = T>,
{
    match name {
        "smol" => Ok(smol::block_on(main(anygrpc_smol::runtime()))),
        other => Err(format!("unknown runtime {other:?}; one of {RUNTIMES:?}")),
    }
}

/// The value of `--runtime=` in `args`, `smol` by default.
pub fn from_args(args: &[String]) -> String {
    args.iter()
        .find_map(|a| a.strip_prefix("--runtime="))
        .unwrap_or("smol")
        .to_string()
}
