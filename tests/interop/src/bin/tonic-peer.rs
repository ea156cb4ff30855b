//! The tonic interop peer: `tonic-peer --mode=server --port=N` serves TestService with tonic;
//! `tonic-peer --mode=client --server_port=N --test_case=NAME` runs one case with tonic's client.
//! Exits 0 on success, 1 on failure, 3 when tonic cannot express the case.

use std::process::ExitCode;

use anygrpc_interop::args::Flags;
use anygrpc_interop::tonic_peer;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tonic-peer: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tonic-peer: FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<ExitCode, String> {
    let flags = Flags::parse(std::env::args().skip(1))?;
    flags.refuse_tls()?;
    match flags.required("mode")? {
        "server" => {
            let port = flags.port("port")?;
            println!("listening on {port}");
            tonic_peer::serve(port).await.map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        "client" => {
            let port = flags.port("server_port")?;
            match tonic_peer::run_case(port, flags.required("test_case")?).await? {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(tonic_peer::Unsupported(why)) => {
                    eprintln!("tonic-peer: unsupported: {why}");
                    Ok(ExitCode::from(3))
                }
            }
        }
        other => Err(format!("--mode={other}: expected server or client")),
    }
}
