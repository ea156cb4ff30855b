//! `greeter [--runtime=smol|async-std|tokio] [serve --port=N | call --target=H:P] [--name=NAME]`
//!
//! Without `serve` or `call`: starts a Greeter server on a free port, greets it, stops it.

use std::process::ExitCode;

use anygrpc_examples::{hello, runtimes};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .map(str::to_string)
    };
    let name = flag("name").unwrap_or_else(|| "world".into());
    let mode = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_default();
    let runtime = runtimes::from_args(&args);
    let label = runtime.clone();
    let outcome = runtimes::run(&label, |rt| async move {
        match mode.as_str() {
            "serve" => {
                let port = flag("port").and_then(|p| p.parse().ok()).unwrap_or(50051);
                let (server, port) = hello::serve(rt, port).await.map_err(|e| e.to_string())?;
                println!("greeter serving on 127.0.0.1:{port} ({runtime})");
                server.wait_for_termination().await;
                Ok(())
            }
            "call" => {
                let target = flag("target").unwrap_or_else(|| "127.0.0.1:50051".into());
                let greeting = hello::greet(rt, &target, &name)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{greeting}");
                Ok(())
            }
            "" => {
                let (server, port) = hello::serve(rt.clone(), 0)
                    .await
                    .map_err(|e| e.to_string())?;
                let greeting = hello::greet(rt, &format!("127.0.0.1:{port}"), &name).await;
                server.stop(None).await;
                let greeting = greeting.map_err(|e| e.to_string())?;
                println!("{greeting} (server and client on {runtime})");
                Ok(())
            }
            other => Err(format!("unknown mode {other:?}: serve, call, or nothing")),
        }
    });
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) | Err(e) => {
            eprintln!("greeter: {e}");
            ExitCode::FAILURE
        }
    }
}
