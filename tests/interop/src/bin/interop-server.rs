//! `interop-server --port=N [--use_tls=true --tls_cert_file=F --tls_key_file=F] [--runtime=smol]`: serves grpc.testing.TestService
//! and the standard health service (`grpc.health.v1.Health`) on anygrpc until killed. Prints
//! `listening on <port>` once bound (`--port=0` picks a free one).

use std::process::ExitCode;

use anygrpc_interop::args::{Flags, run_on};

fn main() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("interop-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> Result<(), String> {
    let flags = Flags::parse(std::env::args().skip(1))?;
    let credentials = flags.server_credentials()?;
    let port = flags.port("port")?;
    run_on(flags.runtime(), |runtime| async move {
        let (server, port) =
            anygrpc_interop::server::serve(runtime, &format!("127.0.0.1:{port}"), credentials)
                .await
                .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
        println!("listening on {port}");
        server.wait_for_termination().await;
        Ok(())
    })?
}
