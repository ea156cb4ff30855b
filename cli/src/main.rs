//! `anygrpc`: a grpcurl-compatible command-line gRPC client on anygrpc and tokio.
#![forbid(unsafe_code)]

mod args;
mod channel;
mod describe;
mod error;
mod insecure;
mod invoke;
mod raw;
mod source;

use std::time::Duration;

use anygrpc_tokio::{CallOptions, Channel, Code, Connectivity, Status};
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

/// grpcurl's default bound on connecting (`-connect-timeout`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the command `args` names, within `-max-time` when given.
async fn run(args: Args) -> Result<(), CliError> {
    let max_time = seconds("-max-time", args.max_time)?;
    let connect_timeout =
        seconds("-connect-timeout", args.connect_timeout)?.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    match max_time {
        // Every call carries the deadline too, so the server sees it (`grpc-timeout`).
        Some(max_time) => {
            tokio::time::timeout(max_time, run_within(args, connect_timeout, Some(max_time)))
                .await
                .unwrap_or_else(|_| {
                    Err(CliError::Rpc(Status::new(
                        Code::DeadlineExceeded,
                        format!("-max-time {} s passed", max_time.as_secs_f64()),
                    )))
                })
        }
        None => run_within(args, connect_timeout, None).await,
    }
}

/// Runs the command; each call gets `call_timeout`.
async fn run_within(
    args: Args,
    connect_timeout: Duration,
    call_timeout: Option<Duration>,
) -> Result<(), CliError> {
    let channel = channel::build(&args)?;
    let mut options = CallOptions::new().metadata(invoke::metadata(&args.headers)?);
    if let Some(timeout) = call_timeout {
        options = options.timeout(timeout);
    }
    let from_files = !(args.proto.is_empty() && args.protoset.is_empty());
    let is_call = !matches!(args.command.as_str(), "list" | "describe");
    // As grpcurl: list and describe from files need no server; everything else dials first.
    if is_call || !from_files {
        dial(&channel, &args.address, connect_timeout).await?;
    }
    let source = if from_files {
        Source::from_files(&args.proto, &args.import_path, &args.protoset)?
    } else {
        Source::Reflection {
            channel: channel.clone(),
            options: options.clone(),
        }
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

/// Waits until `channel` is connected, for at most `timeout`.
async fn dial(channel: &Channel, address: &str, timeout: Duration) -> Result<(), CliError> {
    match tokio::time::timeout(timeout, channel.channel_ready()).await {
        Ok(Connectivity::Ready) => Ok(()),
        Ok(state) => Err(CliError::Dial {
            address: address.to_owned(),
            reason: format!("the channel is {state:?}"),
        }),
        Err(_) => Err(CliError::Dial {
            address: address.to_owned(),
            reason: format!(
                "not connected within -connect-timeout {} s",
                timeout.as_secs_f64()
            ),
        }),
    }
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
