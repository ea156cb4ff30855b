//! Picks an executor by name (`--runtime=smol|async-std|tokio`) and runs a future on it.

use std::future::Future;
use std::sync::Arc;

use anygrpc::RuntimeRef;

/// The executors the examples run on.
pub const RUNTIMES: &[&str] = &["smol", "async-std", "tokio"];

/// Runs `main(runtime)` to completion on the executor called `name`.
pub fn run<T, F>(name: &str, main: impl FnOnce(RuntimeRef) -> F) -> Result<T, String>
where
    F: Future<Output = T>,
{
    match name {
        "smol" => {
            // smol's way for one thread: an executor the main thread runs, holding every task.
            let executor = Arc::new(smol::Executor::new());
            let runtime = anygrpc_smol::runtime_on(executor.clone());
            Ok(smol::block_on(executor.run(main(runtime))))
        }
        "async-std" => Ok(async_std::task::block_on(
            main(anygrpc_async_std::runtime()),
        )),
        "tokio" => {
            let tokio = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start tokio: {e}"))?;
            // `anygrpc_tokio::runtime()` binds to the tokio runtime it is called in.
            Ok(tokio.block_on(async { main(anygrpc_tokio::runtime()).await }))
        }
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
