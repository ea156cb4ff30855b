//! `anygrpc`: a grpcurl-compatible command-line gRPC client on anygrpc and tokio.
#![forbid(unsafe_code)]

mod args;
mod channel;
mod describe;
mod error;
mod invoke;
mod raw;
mod source;

use std::time::Duration;

use anygrpc_tokio::CallOptions;
use clap::Parser;

use crate::args::Args;
use crate::error::CliError;
use crate::source::Source;

fn main() {
    let argv = args::normalize_argv(std::env::args());
    let args = match Args::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("anygrpc: cannot start tokio: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(args)) {
        e.report();
        std::process::exit(e.exit_code());
    }
}

/// Runs the command `args` names.
async fn run(args: Args) -> Result<(), CliError> {
    if let Some(config) = &args.service_config {
        serde_json::from_str::<serde_json::Value>(config)
            .map_err(|e| CliError::usage(format!("-service-config is not JSON: {e}")))?;
    }
    let max_time = seconds("-max-time", args.max_time)?;
    let connect_timeout = seconds("-connect-timeout", args.connect_timeout)?;
    let channel = channel::build(&args)?;
    let mut options = CallOptions::new().metadata(invoke::metadata(&args.headers)?);
    if let Some(timeout) = max_time.or(connect_timeout) {
        options = options.timeout(timeout);
    }
    let source = if args.proto.is_empty() && args.protoset.is_empty() {
        Source::Reflection {
            channel: channel.clone(),
            options: options.clone(),
        }
    } else {
        Source::from_files(&args.proto, &args.import_path, &args.protoset)?
    };
    match args.command.as_str() {
        "list" => match &args.symbol {
            None => source
                .services()
                .await?
                .iter()
                .for_each(|s| println!("{s}")),
            Some(service) => {
                let pool = source.pool_for(service).await?;
                let service = pool
                    .get_service_by_name(service.trim_start_matches('.'))
                    .ok_or_else(|| CliError::Other(format!("service {service:?} not found")))?;
                service
                    .methods()
                    .for_each(|m| println!("{}", m.full_name()));
            }
        },
        "describe" => {
            let symbols = match &args.symbol {
                Some(symbol) => vec![symbol.clone()],
                None => source.services().await?,
            };
            for symbol in symbols {
                let pool = source.pool_for(&symbol).await?;
                let text = describe::describe(&pool, &symbol)
                    .ok_or_else(|| CliError::Other(format!("symbol {symbol:?} not found")))?;
                println!("{text}");
            }
        }
        method_name => {
            if args.symbol.is_some() {
                return Err(CliError::usage("too many arguments after the method"));
            }
            let service = method_name
                .trim_start_matches('/')
                .rsplit_once(['/', '.'])
                .map(|(service, _)| service)
                .ok_or_else(|| {
                    CliError::usage(format!("{method_name:?} is not pkg.Service/Method"))
                })?;
            let pool = source.pool_for(service).await?;
            let method = describe::find_method(&pool, method_name)
                .ok_or_else(|| CliError::Other(format!("method {method_name:?} not found")))?;
            let requests = invoke::requests(&method, args.data.as_deref())?;
            let printing = invoke::Printing {
                emit_defaults: args.emit_defaults,
                verbose: args.verbose,
            };
            invoke::invoke(&channel, &method, requests, options, printing).await?;
        }
    }
    Ok(())
}

/// A flag's seconds as a duration; negative or not finite is a usage error.
fn seconds(flag: &str, value: Option<f64>) -> Result<Option<Duration>, CliError> {
    value
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| CliError::usage(format!("{flag} {s} is not a number of seconds")))
        })
        .transpose()
}
