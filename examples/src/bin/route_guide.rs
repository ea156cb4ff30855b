//! `route_guide [--runtime=smol|async-std|tokio] [serve --port=N | call --target=H:P]`
//!
//! Without `serve` or `call`: starts a RouteGuide server on a free port, runs the four call
//! kinds against it, prints what came back, stops it.

use std::process::ExitCode;

use anygrpc_examples::{route, runtimes};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .map(str::to_string)
    };
    let mode = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_default();
    let runtime = runtimes::from_args(&args);
    let label = runtime.clone();
    let outcome = runtimes::run(&label, |rt| async move {
        let tour = match mode.as_str() {
            "serve" => {
                let port = flag("port").and_then(|p| p.parse().ok()).unwrap_or(50052);
                let (server, port) = route::serve(rt, port).await.map_err(|e| e.to_string())?;
                println!("route guide serving on 127.0.0.1:{port} ({runtime})");
                server.wait_for_termination().await;
                return Ok(());
            }
            "call" => {
                let target = flag("target").unwrap_or_else(|| "127.0.0.1:50052".into());
                route::tour(rt, &target).await.map_err(|e| e.to_string())?
            }
            "" => {
                let (server, port) = route::serve(rt.clone(), 0)
                    .await
                    .map_err(|e| e.to_string())?;
                let tour = route::tour(rt, &format!("127.0.0.1:{port}")).await;
                server.stop(None).await;
                tour.map_err(|e| e.to_string())?
            }
            other => return Err(format!("unknown mode {other:?}: serve, call, or nothing")),
        };
        println!("GetFeature    -> {:?}", tour.feature);
        println!("ListFeatures  -> {:?}", tour.listed);
        println!("RecordRoute   -> {:?}", tour.summary);
        println!("RouteChat     -> {:?}", tour.chat);
        Ok(())
    });
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) | Err(e) => {
            eprintln!("route_guide: {e}");
            ExitCode::FAILURE
        }
    }
}
