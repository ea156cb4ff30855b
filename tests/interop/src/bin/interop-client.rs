//! `interop-client --server_host=H --server_port=N --test_case=NAME [--server_host_override=NAME]
//! [--use_tls=true [--ca_file=F]] [--runtime=smol]`: runs one interop test case on anygrpc; exits 0 when it
//! passes, else prints the failure (status code name and details) and exits 1.

use std::process::ExitCode;

use anygrpc::Channel;
use anygrpc_interop::args::{Flags, run_on};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("interop-client: FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let flags = Flags::parse(std::env::args().skip(1))?;
    let credentials = flags.channel_credentials()?;
    let host = flags.get("server_host").unwrap_or("localhost").to_string();
    let port = flags.port("server_port")?;
    let case = flags.required("test_case")?.to_string();
    let authority = flags.get("server_host_override").map(str::to_string);
    run_on(flags.runtime(), |runtime| async move {
        let mut builder = Channel::builder(format!("{host}:{port}"), runtime);
        match (credentials, authority) {
            // Like grpc's `ssl_target_name_override`: the verified name and the authority.
            (Some(credentials), Some(name)) => {
                builder = builder.credentials(credentials).server_host_override(name);
            }
            (Some(credentials), None) => builder = builder.credentials(credentials),
            (None, Some(authority)) => builder = builder.authority(authority),
            (None, None) => {}
        }
        let channel = builder.build().map_err(|e| format!("bad target: {e}"))?;
        let result = anygrpc_interop::cases::run(&case, &channel).await;
        channel.close(None).await;
        result
    })?
}
