//! The tonic peer: TestService served by tonic and the client cases driven by tonic, both on
//! tokio, so anygrpc is tested against another Rust implementation in both directions.
//! Kept small: where tonic cannot express a case's client side, [`run_case`] says so with
//! [`Unsupported`] instead of pretending.

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status, Streaming};

use crate::cases::{
    ECHO_INITIAL_VALUE, ECHO_TRAILING_VALUE, LARGE_REQUEST, LARGE_RESPONSE, REQUEST_SIZES,
    RESPONSE_SIZES, SPECIAL_STATUS_MESSAGE, TEST_STATUS_MESSAGE,
};
use crate::pb::tonic_testing::test_service_client::TestServiceClient;
use crate::pb::tonic_testing::test_service_server::{TestService, TestServiceServer};
use crate::pb::tonic_testing::unimplemented_service_client::UnimplementedServiceClient;
use crate::pb::tonic_testing::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};
use crate::server::{ECHO_INITIAL, ECHO_TRAILING};
use crate::zeros;

type Out = Pin<Box<dyn Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send>>;

/// TestService on tonic.
#[derive(Debug, Default)]
pub struct TonicInterop;

fn payload(size: i32) -> Result<Payload, Status> {
    let size = usize::try_from(size)
        .map_err(|_| Status::invalid_argument(format!("negative response size {size}")))?;
    Ok(Payload {
        r#type: 0,
        body: zeros(size).into(),
    })
}

fn requested_status(status: Option<&EchoStatus>) -> Result<(), Status> {
    match status {
        Some(s) if s.code != 0 => Err(Status::new(Code::from_i32(s.code), s.message.clone())),
        _ => Ok(()),
    }
}

/// tonic does not tell a handler whether a message arrived compressed; without a
/// `grpc-encoding` on the call no message can have been, which is what the probes test.
fn check_compressed(expect: Option<&BoolValue>, metadata: &MetadataMap) -> Result<(), Status> {
    let call_compressed = metadata
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "identity");
    if expect.is_some_and(|b| b.value) && !call_compressed {
        return Err(Status::invalid_argument(
            "expect_compressed is set but the request was not compressed",
        ));
    }
    Ok(())
}

/// The echo metadata of a request: (initial, trailing).
fn echoes(metadata: &MetadataMap) -> (MetadataMap, MetadataMap) {
    let (mut initial, mut trailing) = (MetadataMap::new(), MetadataMap::new());
    if let Some(v) = metadata.get(ECHO_INITIAL) {
        initial.insert(ECHO_INITIAL, v.clone());
    }
    if let Some(v) = metadata.get_bin(ECHO_TRAILING) {
        trailing.insert_bin(ECHO_TRAILING, v.clone());
    }
    (initial, trailing)
}

fn with_initial<T>(message: T, initial: MetadataMap) -> Response<T> {
    let mut response = Response::new(message);
    *response.metadata_mut() = initial;
    response
}

/// Sends the responses `requests` describe on `tx`, then the final status; the echoed
/// trailing metadata rides on a non-OK status (tonic has no trailers for an OK stream end).
async fn stream_out(
    requests: Vec<StreamingOutputCallRequest>,
    tx: &mpsc::Sender<Result<StreamingOutputCallResponse, Status>>,
) -> Result<(), Status> {
    for request in requests {
        requested_status(request.response_status.as_ref())?;
        for p in request.response_parameters {
            if let Ok(micros @ 1..) = u64::try_from(p.interval_us) {
                tokio::time::sleep(Duration::from_micros(micros)).await;
            }
            let response = StreamingOutputCallResponse {
                payload: Some(payload(p.size)?),
            };
            if tx.send(Ok(response)).await.is_err() {
                return Ok(()); // the client went away
            }
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl TestService for TonicInterop {
    async fn empty_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        // tonic cannot send trailing metadata with an OK unary response, so the trailing
        // echo is not done here (the matrix lists custom_metadata as a tonic limitation).
        let (initial, _) = echoes(request.metadata());
        check_compressed(
            request.get_ref().expect_compressed.as_ref(),
            request.metadata(),
        )?;
        let request = request.into_inner();
        requested_status(request.response_status.as_ref())?;
        Ok(with_initial(
            SimpleResponse {
                payload: Some(payload(request.response_size)?),
                ..SimpleResponse::default()
            },
            initial,
        ))
    }

    async fn cacheable_unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        self.unary_call(request).await
    }

    type StreamingOutputCallStream = Out;
    async fn streaming_output_call(
        &self,
        request: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<Out>, Status> {
        let (initial, _) = echoes(request.metadata());
        let request = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            if let Err(status) = stream_out(vec![request], &tx).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(with_initial(Box::pin(ReceiverStream::new(rx)), initial))
    }

    async fn streaming_input_call(
        &self,
        request: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let metadata = request.metadata().clone();
        let mut requests = request.into_inner();
        let mut total: i32 = 0;
        while let Some(request) = requests.next().await {
            let request = request?;
            check_compressed(request.expect_compressed.as_ref(), &metadata)?;
            let size = request.payload.map_or(0, |p| p.body.len());
            total = i32::try_from(size)
                .ok()
                .and_then(|s| total.checked_add(s))
                .ok_or_else(|| Status::invalid_argument("aggregated payload size overflows"))?;
        }
        Ok(Response::new(StreamingInputCallResponse {
            aggregated_payload_size: total,
        }))
    }

    type FullDuplexCallStream = Out;
    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Out>, Status> {
        let (initial, trailing) = echoes(request.metadata());
        let mut requests = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let result = match request {
                    Ok(request) => stream_out(vec![request], &tx).await,
                    Err(status) => Err(status),
                };
                if let Err(status) = result {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            }
            if !trailing.is_empty() {
                // The only way to send trailers from tonic at the end of a stream.
                let status = Status::with_metadata(Code::Ok, "", trailing);
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(with_initial(Box::pin(ReceiverStream::new(rx)), initial))
    }

    type HalfDuplexCallStream = Out;
    async fn half_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Out>, Status> {
        let mut requests = request.into_inner();
        let mut all = Vec::new();
        while let Some(request) = requests.next().await {
            all.push(request?);
        }
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            if let Err(status) = stream_out(all, &tx).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn unimplemented_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented(
            "UnimplementedCall is not implemented, on purpose",
        ))
    }
}

/// Serves TestService with tonic on `127.0.0.1:port` until killed.
/// With `tls`, on a TLS port.
pub async fn serve(
    port: u16,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> Result<(), Box<dyn std::error::Error>> {
    let service = TestServiceServer::new(TonicInterop)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(usize::MAX);
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .add_service(service)
        .serve(([127, 0, 0, 1], port).into())
        .await?;
    Ok(())
}

/// A case the tonic client cannot express (the reason says why).
#[derive(Debug)]
pub struct Unsupported(pub &'static str);

fn failed(what: &str, status: &Status) -> String {
    format!(
        "{what}: call failed with {} {:?}",
        crate::cases::code_name(status.code() as i32),
        status.message()
    )
}

fn ensure(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what()) }
}

fn expect_code<T>(what: &str, result: Result<T, Status>, want: Code) -> Result<Status, String> {
    match result {
        Ok(_) => Err(format!("{what}: succeeded, expected {want:?}")),
        Err(s) if s.code() == want => Ok(s),
        Err(s) => Err(format!(
            "{what}: expected {}, got {}",
            crate::cases::code_name(want as i32),
            failed("", &s)
        )),
    }
}

fn body(size: usize) -> Option<Payload> {
    Some(Payload {
        r#type: 0,
        body: zeros(size).into(),
    })
}

fn check_body(what: &str, got: Option<&Payload>, size: usize) -> Result<(), String> {
    let len = got.map_or(0, |p| p.body.len());
    ensure(len == size, || {
        format!("{what}: {len} bytes, expected {size}")
    })
}

fn large() -> SimpleRequest {
    SimpleRequest {
        response_size: LARGE_RESPONSE,
        payload: body(LARGE_REQUEST),
        ..SimpleRequest::default()
    }
}

fn out_request(size: i32, payload: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: vec![ResponseParameters {
            size,
            ..ResponseParameters::default()
        }],
        payload: body(payload),
        ..StreamingOutputCallRequest::default()
    }
}

/// Runs the test case `name` with tonic against `127.0.0.1:port`. `Ok(Err(Unsupported))`
/// means the case cannot be written with tonic's client API.
/// With `tls`, over TLS.
pub async fn run_case(
    port: u16,
    name: &str,
    tls: Option<tonic::transport::ClientTlsConfig>,
) -> Result<Result<(), Unsupported>, String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint =
        Channel::from_shared(format!("{scheme}://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|e| format!("TLS: {e}"))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let client = TestServiceClient::new(channel.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(usize::MAX);
    let mut c = client.clone();
    match name {
        "empty_unary" => {
            c.empty_call(Empty {})
                .await
                .map_err(|s| failed("EmptyCall", &s))?;
        }
        "large_unary" | "server_compressed_unary" => {
            for compressed in [true, false] {
                let request = SimpleRequest {
                    response_compressed: Some(BoolValue { value: compressed }),
                    ..large()
                };
                let r = c
                    .unary_call(request)
                    .await
                    .map_err(|s| failed("UnaryCall", &s))?;
                check_body(
                    "UnaryCall",
                    r.get_ref().payload.as_ref(),
                    LARGE_RESPONSE as usize,
                )?;
            }
        }
        "client_compressed_unary" => {
            let probe = SimpleRequest {
                expect_compressed: Some(BoolValue { value: true }),
                ..large()
            };
            expect_code("probe", c.unary_call(probe).await, Code::InvalidArgument)?;
            let mut gz = client.clone().send_compressed(CompressionEncoding::Gzip);
            let request = SimpleRequest {
                expect_compressed: Some(BoolValue { value: true }),
                ..large()
            };
            let r = gz
                .unary_call(request)
                .await
                .map_err(|s| failed("UnaryCall", &s))?;
            check_body(
                "UnaryCall",
                r.get_ref().payload.as_ref(),
                LARGE_RESPONSE as usize,
            )?;
            let r = c
                .unary_call(large())
                .await
                .map_err(|s| failed("UnaryCall", &s))?;
            check_body(
                "UnaryCall",
                r.get_ref().payload.as_ref(),
                LARGE_RESPONSE as usize,
            )?;
        }
        "client_streaming" | "client_compressed_streaming" => {
            let compressed = name == "client_compressed_streaming";
            let mut c = if compressed {
                client.clone().send_compressed(CompressionEncoding::Gzip)
            } else {
                c
            };
            let sizes: &[usize] = if compressed {
                &[27_182, 45_904]
            } else {
                &REQUEST_SIZES
            };
            let requests: Vec<_> = sizes
                .iter()
                .map(|&s| StreamingInputCallRequest {
                    payload: body(s),
                    expect_compressed: compressed.then_some(BoolValue { value: s == 27_182 }),
                })
                .collect();
            if compressed {
                let probe = StreamingInputCallRequest {
                    payload: body(27_182),
                    expect_compressed: Some(BoolValue { value: true }),
                };
                let mut plain = client.clone();
                let result = plain
                    .streaming_input_call(tokio_stream::iter(vec![probe]))
                    .await;
                expect_code("probe", result, Code::InvalidArgument)?;
            }
            let r = c
                .streaming_input_call(tokio_stream::iter(requests))
                .await
                .map_err(|s| failed("StreamingInputCall", &s))?;
            let want: usize = sizes.iter().sum();
            let got = r.get_ref().aggregated_payload_size;
            ensure(got as usize == want, || {
                format!("aggregated {got}, expected {want}")
            })?;
        }
        "server_streaming" | "server_compressed_streaming" => {
            let sizes: &[i32] = if name == "server_streaming" {
                &RESPONSE_SIZES
            } else {
                &[31_415, 92_653]
            };
            let request = StreamingOutputCallRequest {
                response_parameters: sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &size)| ResponseParameters {
                        size,
                        compressed: (name != "server_streaming")
                            .then_some(BoolValue { value: i == 0 }),
                        ..ResponseParameters::default()
                    })
                    .collect(),
                ..StreamingOutputCallRequest::default()
            };
            let mut stream = c
                .streaming_output_call(request)
                .await
                .map_err(|s| failed("StreamingOutputCall", &s))?
                .into_inner();
            let mut got = Vec::new();
            while let Some(r) = stream.next().await {
                let r = r.map_err(|s| failed("StreamingOutputCall", &s))?;
                got.push(r.payload.map_or(0, |p| p.body.len() as i32));
            }
            ensure(got == sizes, || {
                format!("response sizes {got:?}, expected {sizes:?}")
            })?;
        }
        "ping_pong" => {
            // tonic's call resolves on the response head, which a server may hold back until
            // its first response: the first ping goes out before awaiting the call.
            let (tx, rx) = mpsc::channel(1);
            let pings: Vec<_> = RESPONSE_SIZES.into_iter().zip(REQUEST_SIZES).collect();
            tx.send(out_request(pings[0].0, pings[0].1))
                .await
                .map_err(|e| e.to_string())?;
            let mut responses = c
                .full_duplex_call(ReceiverStream::new(rx))
                .await
                .map_err(|s| failed("FullDuplexCall", &s))?
                .into_inner();
            for (i, &(size, _)) in pings.iter().enumerate() {
                match responses.next().await {
                    Some(Ok(r)) => check_body("FullDuplexCall", r.payload.as_ref(), size as usize)?,
                    Some(Err(s)) => return Err(failed("FullDuplexCall", &s)),
                    None => return Err("FullDuplexCall ended early".into()),
                }
                if let Some(&(size, payload)) = pings.get(i + 1) {
                    tx.send(out_request(size, payload))
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            drop(tx);
            if let Some(r) = responses.next().await {
                return Err(format!(
                    "FullDuplexCall: unexpected {r:?} after the last ping"
                ));
            }
        }
        "empty_stream" => {
            let mut responses = c
                .full_duplex_call(tokio_stream::empty())
                .await
                .map_err(|s| failed("FullDuplexCall", &s))?
                .into_inner();
            if let Some(r) = responses.next().await {
                return Err(format!("FullDuplexCall: unexpected {r:?}"));
            }
        }
        "custom_metadata" => {
            // tonic's unary client does not expose trailers: check them on the stream only.
            let r = c
                .unary_call(with_echo(large()))
                .await
                .map_err(|s| failed("UnaryCall", &s))?;
            check_initial("UnaryCall", r.metadata())?;
            let one = tokio_stream::iter(vec![out_request(LARGE_RESPONSE, LARGE_REQUEST)]);
            let r = c
                .full_duplex_call(with_echo(one))
                .await
                .map_err(|s| failed("FullDuplexCall", &s))?;
            check_initial("FullDuplexCall", r.metadata())?;
            let mut stream = r.into_inner();
            while let Some(m) = stream.next().await {
                m.map_err(|s| failed("FullDuplexCall", &s))?;
            }
            let trailers = stream
                .trailers()
                .await
                .map_err(|s| failed("trailers", &s))?;
            let got = trailers
                .as_ref()
                .and_then(|t| t.get_bin(ECHO_TRAILING))
                .and_then(|v| v.to_bytes().ok());
            ensure(got.as_deref() == Some(ECHO_TRAILING_VALUE), || {
                format!("FullDuplexCall: trailing {ECHO_TRAILING} = {got:?}")
            })?;
        }
        "status_code_and_message" | "special_status_message" => {
            let message = if name == "special_status_message" {
                SPECIAL_STATUS_MESSAGE
            } else {
                TEST_STATUS_MESSAGE
            };
            let status = Some(EchoStatus {
                code: 2,
                message: message.into(),
            });
            let request = SimpleRequest {
                response_status: status.clone(),
                ..SimpleRequest::default()
            };
            let s = expect_code("UnaryCall", c.unary_call(request).await, Code::Unknown)?;
            ensure(s.message() == message, || {
                format!("UnaryCall: message {:?}", s.message())
            })?;
            let request = StreamingOutputCallRequest {
                response_status: status,
                ..Default::default()
            };
            let result = match c.full_duplex_call(tokio_stream::iter(vec![request])).await {
                Ok(r) => {
                    let mut stream = r.into_inner();
                    let mut last = Ok(());
                    while let Some(m) = stream.next().await {
                        if let Err(s) = m {
                            last = Err(s);
                        }
                    }
                    last
                }
                Err(s) => Err(s),
            };
            let s = expect_code("FullDuplexCall", result, Code::Unknown)?;
            ensure(s.message() == message, || {
                format!("FullDuplexCall: message {:?}", s.message())
            })?;
        }
        "unimplemented_method" => {
            expect_code(
                "UnimplementedCall",
                c.unimplemented_call(Empty {}).await,
                Code::Unimplemented,
            )?;
        }
        "unimplemented_service" => {
            let mut other = UnimplementedServiceClient::new(channel);
            let result = other.unimplemented_call(Empty {}).await;
            expect_code("UnimplementedService", result, Code::Unimplemented)?;
        }
        "cancel_after_begin" | "cancel_after_first_response" => {
            return Ok(Err(Unsupported(
                "tonic cancels by dropping the call, which yields no status to assert on",
            )));
        }
        "timeout_on_sleeping_server" => {
            // tonic enforces the deadline itself and reports it as CANCELLED "Timeout
            // expired", before the server's DEADLINE_EXCEEDED can arrive.
            return Ok(Err(Unsupported(
                "tonic reports its own deadline as CANCELLED, not DEADLINE_EXCEEDED",
            )));
        }
        other => return Err(format!("unknown test case {other:?}")),
    }
    Ok(Ok(()))
}

fn with_echo<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    let m = request.metadata_mut();
    m.insert(ECHO_INITIAL, MetadataValue::from_static(ECHO_INITIAL_VALUE));
    m.insert_bin(
        ECHO_TRAILING,
        MetadataValue::from_bytes(ECHO_TRAILING_VALUE),
    );
    request
}

fn check_initial(what: &str, metadata: &MetadataMap) -> Result<(), String> {
    let got = metadata.get(ECHO_INITIAL).and_then(|v| v.to_str().ok());
    ensure(got == Some(ECHO_INITIAL_VALUE), || {
        format!("{what}: initial {ECHO_INITIAL} = {got:?}")
    })
}
