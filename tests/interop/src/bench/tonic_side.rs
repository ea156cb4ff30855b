//! `grpc.testing.BenchmarkService` on tonic 0.14 (tokio): the server and the closed-loop
//! client anygrpc is measured against, configured the way a performance-minded tonic user
//! would: tonic's defaults with `tcp_nodelay(true)`; payload bodies as `bytes::Bytes` (prost's
//! `bytes` option, so decoding splits them off the receive buffer); canned payloads sliced
//! from one static zero buffer; StreamingFromServer an always-ready stream of clones of one
//! response; a client cloning one prebuilt request per call over one `Channel` per
//! connection; tokio with one worker per process (`bench`'s `on_tokio`).

use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};

use super::{Kind, Report, Scenario, Tally, Window};
use crate::pb::tonic_testing::benchmark_service_client::BenchmarkServiceClient;
use crate::pb::tonic_testing::benchmark_service_server::{
    BenchmarkService, BenchmarkServiceServer,
};
use crate::pb::tonic_testing::{Payload, SimpleRequest, SimpleResponse};

type Out = Pin<Box<dyn Stream<Item = Result<SimpleResponse, Status>> + Send>>;

/// The one zero buffer canned payloads are sliced from: 4 MiB, the default largest message.
static ZEROS: [u8; 4 << 20] = [0; 4 << 20];

/// `size` zero bytes: a slice of [`ZEROS`], allocated only past its end.
fn zeros(size: usize) -> Bytes {
    match ZEROS.get(..size) {
        Some(zeros) => Bytes::from_static(zeros),
        None => Bytes::from(vec![0; size]),
    }
}

fn respond(request: &SimpleRequest) -> Result<SimpleResponse, Status> {
    let size = usize::try_from(request.response_size)
        .map_err(|_| Status::invalid_argument("negative response_size"))?;
    Ok(SimpleResponse {
        payload: (size > 0).then(|| Payload {
            r#type: 0,
            body: zeros(size),
        }),
        ..SimpleResponse::default()
    })
}

fn request(req: usize, resp: usize) -> SimpleRequest {
    SimpleRequest {
        response_size: i32::try_from(resp).unwrap_or(i32::MAX),
        payload: (req > 0).then(|| Payload {
            r#type: 0,
            body: zeros(req),
        }),
        ..SimpleRequest::default()
    }
}

/// The benchmark service on tonic.
#[derive(Debug, Default)]
pub struct TonicBench;

#[tonic::async_trait]
impl BenchmarkService for TonicBench {
    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        respond(request.get_ref()).map(Response::new)
    }

    type StreamingCallStream = Out;
    async fn streaming_call(
        &self,
        request: Request<Streaming<SimpleRequest>>,
    ) -> Result<Response<Out>, Status> {
        let requests = request.into_inner();
        let responses = requests.map(|r| r.and_then(|r| respond(&r)));
        Ok(Response::new(Box::pin(responses)))
    }

    async fn streaming_from_client(
        &self,
        request: Request<Streaming<SimpleRequest>>,
    ) -> Result<Response<SimpleResponse>, Status> {
        let mut requests = request.into_inner();
        let mut last = SimpleRequest::default();
        while let Some(r) = requests.next().await {
            last = r?;
        }
        respond(&last).map(Response::new)
    }

    type StreamingFromServerStream = Out;
    async fn streaming_from_server(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<Out>, Status> {
        let response = respond(request.get_ref())?;
        // Endless and always ready (tokio_stream::iter would return Pending every 32 items);
        // tonic drops it when the client cancels. Each clone shares the static payload.
        let responses = futures_util::stream::repeat_with(move || Ok(response.clone()));
        Ok(Response::new(Box::pin(responses)))
    }

    type StreamingBothWaysStream = Out;
    async fn streaming_both_ways(
        &self,
        request: Request<Streaming<SimpleRequest>>,
    ) -> Result<Response<Out>, Status> {
        self.streaming_call(request).await
    }
}

/// Serves BenchmarkService with tonic on `127.0.0.1:port` until killed.
pub async fn serve(port: u16) -> Result<(), String> {
    Server::builder()
        .tcp_nodelay(true)
        .add_service(BenchmarkServiceServer::new(TonicBench))
        .serve(([127, 0, 0, 1], port).into())
        .await
        .map_err(|e| format!("tonic server: {e}"))
}

async fn unary_worker(
    mut client: BenchmarkServiceClient<Channel>,
    req: &SimpleRequest,
    window: &Window,
) -> Tally {
    let mut tally = Tally::default();
    while !window.over() {
        let started = Instant::now();
        let ok = client.unary_call(req.clone()).await.is_ok();
        tally.call(window, started, ok);
    }
    tally
}

async fn pingpong(
    mut client: BenchmarkServiceClient<Channel>,
    req: &SimpleRequest,
    window: &Window,
) -> Tally {
    let mut tally = Tally::default();
    let (tx, rx) = mpsc::channel(1);
    let started = Instant::now();
    if tx.send(req.clone()).await.is_err() {
        tally.errors += 1;
        return tally;
    }
    let mut responses = match client.streaming_call(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(_) => {
            tally.errors += 1;
            return tally;
        }
    };
    let ok = matches!(responses.message().await, Ok(Some(_)));
    tally.call(window, started, ok);
    while ok && !window.over() {
        let started = Instant::now();
        let ok =
            tx.send(req.clone()).await.is_ok() && matches!(responses.message().await, Ok(Some(_)));
        tally.call(window, started, ok);
        if !ok {
            break;
        }
    }
    tally
}

async fn stream(
    mut client: BenchmarkServiceClient<Channel>,
    req: &SimpleRequest,
    window: &Window,
) -> Tally {
    let mut tally = Tally::default();
    let mut responses = match client.streaming_from_server(req.clone()).await {
        Ok(r) => r.into_inner(),
        Err(_) => {
            tally.errors += 1;
            return tally;
        }
    };
    let mut over = window.over();
    while !over {
        match responses.message().await {
            Ok(Some(response)) => {
                over = tally.message(window, response.payload.map_or(0, |p| p.body.len()));
            }
            _ => {
                tally.errors += 1;
                break;
            }
        }
    }
    tally // dropping `responses` cancels the call
}

/// Runs `scenario` for `duration` (after the warm-up) against `target` (`host:port`), over
/// one `Channel` (one connection) per connection the scenario asks for.
pub async fn client(
    target: String,
    scenario: Scenario,
    duration: Duration,
) -> Result<Report, String> {
    let endpoint = Endpoint::from_shared(format!("http://{target}"))
        .map_err(|e| format!("bad target {target}: {e}"))?
        .tcp_nodelay(true);
    let mut clients = Vec::new();
    for _ in 0..scenario.connections {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {target}: {e}"))?;
        clients.push(BenchmarkServiceClient::new(channel));
    }
    let req = request(scenario.req_bytes, scenario.resp_bytes);
    let window = Window::new(duration);
    let mut tally = Tally::default();
    let first = clients.first().cloned().ok_or("no connection")?;
    match scenario.kind {
        Kind::Unary => {
            let workers = clients.iter().flat_map(|client| {
                (0..scenario.per_connection()).map(|_| unary_worker(client.clone(), &req, &window))
            });
            for t in join_all(workers).await {
                tally.merge(t);
            }
        }
        Kind::PingPong => tally.merge(pingpong(first, &req, &window).await),
        Kind::Stream => tally.merge(stream(first, &req, &window).await),
    }
    Ok(Report::new(&scenario, "tonic", tally, &window))
}
