//! `grpc.testing.BenchmarkService` on anygrpc: the server and the closed-loop client.

use std::time::{Duration, Instant};

use anygrpc::{Channel, RequestStream, ResponseSink, RuntimeRef, Server, ServicerContext, Status};
use futures_util::future::join_all;

use super::{Kind, Report, Scenario, Tally, Window};
use crate::pb::testing::benchmark_service_client::BenchmarkServiceClient;
use crate::pb::testing::benchmark_service_server::{BenchmarkService, BenchmarkServiceServer};
use crate::pb::testing::{Payload, SimpleRequest, SimpleResponse};

/// The answer to `request`: `response_size` zero bytes, no payload when that is 0.
pub fn respond(request: &SimpleRequest) -> Result<SimpleResponse, Status> {
    let size = usize::try_from(request.response_size)
        .map_err(|_| Status::invalid_argument("negative response_size"))?;
    Ok(SimpleResponse {
        payload: (size > 0).then(|| Payload {
            r#type: 0,
            body: vec![0; size],
        }),
        ..SimpleResponse::default()
    })
}

/// A request asking for `resp` bytes and carrying `req` bytes.
pub fn request(req: usize, resp: usize) -> SimpleRequest {
    SimpleRequest {
        response_size: i32::try_from(resp).unwrap_or(i32::MAX),
        payload: (req > 0).then(|| Payload {
            r#type: 0,
            body: vec![0; req],
        }),
        ..SimpleRequest::default()
    }
}

/// The benchmark service.
#[derive(Debug, Default)]
pub struct Bench;

impl BenchmarkService for Bench {
    async fn unary_call(
        &self,
        request: SimpleRequest,
        _: &mut ServicerContext,
    ) -> Result<SimpleResponse, Status> {
        respond(&request)
    }

    async fn streaming_call(
        &self,
        mut requests: RequestStream<SimpleRequest>,
        _: &mut ServicerContext,
        mut responses: ResponseSink<SimpleResponse>,
    ) -> Result<(), Status> {
        while let Some(request) = requests.read().await {
            responses.send(respond(&request?)?).await?;
        }
        Ok(())
    }

    async fn streaming_from_client(
        &self,
        mut requests: RequestStream<SimpleRequest>,
        _: &mut ServicerContext,
    ) -> Result<SimpleResponse, Status> {
        let mut last = SimpleRequest::default();
        while let Some(request) = requests.read().await {
            last = request?;
        }
        respond(&last)
    }

    async fn streaming_from_server(
        &self,
        request: SimpleRequest,
        _: &mut ServicerContext,
        mut responses: ResponseSink<SimpleResponse>,
    ) -> Result<(), Status> {
        let response = respond(&request)?;
        // Until the client cancels: then `send` fails and the call is over. The same response
        // each time, borrowed: tonic's API takes messages by value, so its handler clones.
        while responses.send(&response).await.is_ok() {}
        Ok(())
    }

    async fn streaming_both_ways(
        &self,
        requests: RequestStream<SimpleRequest>,
        context: &mut ServicerContext,
        responses: ResponseSink<SimpleResponse>,
    ) -> Result<(), Status> {
        self.streaming_call(requests, context, responses).await
    }
}

/// Serves BenchmarkService on `127.0.0.1:port`; returns the server and the bound port.
pub async fn serve(runtime: RuntimeRef, port: u16) -> std::io::Result<(Server, u16)> {
    let server = Server::new(runtime);
    server.add_service(BenchmarkServiceServer::new(Bench));
    let port = server
        .add_insecure_port(&format!("127.0.0.1:{port}"))
        .await?;
    server.start();
    Ok((server, port))
}

async fn unary_worker(
    client: &BenchmarkServiceClient,
    req: &SimpleRequest,
    window: &Window,
) -> Tally {
    let mut tally = Tally::default();
    while !window.over() {
        let started = Instant::now();
        let ok = client.unary_call(req).await.is_ok();
        tally.call(window, started, ok);
    }
    tally
}

async fn pingpong(client: &BenchmarkServiceClient, req: &SimpleRequest, window: &Window) -> Tally {
    let mut tally = Tally::default();
    let mut call = client.streaming_call();
    while !window.over() {
        let started = Instant::now();
        let ok = call.write(req).await.is_ok() && matches!(call.read().await, Some(Ok(_)));
        tally.call(window, started, ok);
        if !ok {
            break;
        }
    }
    call.cancel();
    tally
}

async fn stream(client: &BenchmarkServiceClient, req: &SimpleRequest, window: &Window) -> Tally {
    let mut tally = Tally::default();
    let mut call = client.streaming_from_server(req);
    let mut over = window.over();
    while !over {
        match call.read().await {
            Some(Ok(response)) => {
                over = tally.message(window, response.payload.map_or(0, |p| p.body.len()));
            }
            _ => {
                tally.errors += 1;
                break;
            }
        }
    }
    call.cancel();
    tally
}

/// Runs `scenario` for `duration` (after the warm-up) against `host:port`.
pub async fn client(
    runtime: RuntimeRef,
    name: &str,
    target: &str,
    scenario: &Scenario,
    duration: Duration,
) -> Result<Report, String> {
    let mut clients = Vec::new();
    for _ in 0..scenario.connections {
        let channel = Channel::builder(target, runtime.clone())
            .build()
            .map_err(|e| format!("bad target {target}: {e}"))?;
        clients.push(BenchmarkServiceClient::new(channel));
    }
    let req = request(scenario.req_bytes, scenario.resp_bytes);
    let window = Window::new(duration);
    let mut tally = Tally::default();
    let first = clients.first().ok_or("no connection")?;
    match scenario.kind {
        Kind::Unary => {
            let workers = clients.iter().flat_map(|client| {
                (0..scenario.per_connection()).map(|_| unary_worker(client, &req, &window))
            });
            for t in join_all(workers).await {
                tally.merge(t);
            }
        }
        Kind::PingPong => tally.merge(pingpong(first, &req, &window).await),
        Kind::Stream => tally.merge(stream(first, &req, &window).await),
    }
    for client in &clients {
        client.channel().close(None).await;
    }
    Ok(Report::new(scenario, name, tally, &window))
}
