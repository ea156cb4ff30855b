//! The tonic interop peer: `tonic-peer --mode=server --port=N` serves TestService with tonic;
//! `tonic-peer --mode=client --server_port=N --test_case=NAME` runs one case with tonic's client.
//! Exits 0 on success, 1 on failure, 3 when tonic cannot express the case.

use std::process::ExitCode;

use anygrpc_interop::args::Flags;
use anygrpc_interop::tonic_peer;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

fn read(flags: &Flags, name: &str) -> Result<Vec<u8>, String> {
    let path = flags.required(name)?;
    std::fs::read(path).map_err(|e| format!("--{name}={path}: {e}"))
}

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
    match flags.required("mode")? {
        "server" => {
            let port = flags.port("port")?;
            println!("listening on {port}");
            let tls = match flags.use_tls()? {
                false => flags.refuse_tls().map(|()| None)?,
                true => Some(ServerTlsConfig::new().identity(Identity::from_pem(
                    read(&flags, "tls_cert_file")?,
                    read(&flags, "tls_key_file")?,
                ))),
            };
            tonic_peer::serve(port, tls)
                .await
                .map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        "client" => {
            let port = flags.port("server_port")?;
            let tls = match flags.use_tls()? {
                false => flags.refuse_tls().map(|()| None)?,
                true => {
                    let mut tls = ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(read(&flags, "ca_file")?));
                    if let Some(name) = flags.get("server_host_override") {
                        tls = tls.domain_name(name);
                    }
                    Some(tls)
                }
            };
            match tonic_peer::run_case(port, flags.required("test_case")?, tls).await? {
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
