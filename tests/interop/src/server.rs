//! `grpc.testing.TestService` on anygrpc, with every server feature the test cases need:
//! payloads of the requested size, compression on request (and the `expect_compressed` check),
//! `response_status`, metadata echo, and `interval_us` sleeps.

use std::time::Duration;

use anygrpc::{
    Code, Encoding, Metadata, RequestStream, ResponseSink, RuntimeRef, Server, ServicerContext,
    Status, WriteOptions,
};

use crate::pb::testing::test_service_server::{TestService, TestServiceServer};
use crate::pb::testing::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};
use crate::zeros;

/// Metadata key whose value the server echoes in its initial metadata.
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// Binary metadata key whose value the server echoes in its trailing metadata.
pub const ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";

/// The service; it needs the runtime only to sleep.
#[derive(Debug)]
pub struct Interop {
    runtime: RuntimeRef,
}

impl Interop {
    /// The service on `runtime`.
    pub fn new(runtime: RuntimeRef) -> Self {
        Self { runtime }
    }

    async fn sleep(&self, micros: i32) {
        if let Ok(micros @ 1..) = u64::try_from(micros) {
            let until = self.runtime.now() + Duration::from_micros(micros);
            self.runtime.sleep_until(until).await;
        }
    }

    /// Sends the responses `params` describe, in order.
    async fn stream_out(
        &self,
        params: &[ResponseParameters],
        responses: &mut ResponseSink<StreamingOutputCallResponse>,
    ) -> Result<(), Status> {
        for p in params {
            self.sleep(p.interval_us).await;
            let response = StreamingOutputCallResponse {
                payload: Some(payload(p.size)?),
            };
            let options = if is_true(p.compressed.as_ref()) {
                WriteOptions::default()
            } else {
                WriteOptions::uncompressed()
            };
            responses.send_with(response, options).await?;
        }
        Ok(())
    }
}

fn is_true(flag: Option<&BoolValue>) -> bool {
    flag.is_some_and(|b| b.value)
}

/// A payload of `size` zeros; a negative size is the client's error.
fn payload(size: i32) -> Result<Payload, Status> {
    let size = usize::try_from(size)
        .map_err(|_| Status::invalid_argument(format!("negative response size {size}")))?;
    Ok(Payload {
        r#type: 0,
        body: zeros(size),
    })
}

/// The status a request asks for, as an error when it is not OK.
fn requested_status(status: Option<&EchoStatus>) -> Result<(), Status> {
    match status {
        Some(s) if s.code != 0 => Err(Status::new(Code::from_i32(s.code), s.message.clone())),
        _ => Ok(()),
    }
}

/// Echoes `x-grpc-test-echo-initial` now and `x-grpc-test-echo-trailing-bin` at the end.
async fn echo_metadata(context: &mut ServicerContext) {
    let incoming = context.invocation_metadata();
    let initial = incoming.get(ECHO_INITIAL).map(str::to_string);
    let trailing = incoming.get_bin(ECHO_TRAILING).cloned();
    if let Some(value) = trailing {
        let mut metadata = Metadata::new();
        if metadata.insert_bin(ECHO_TRAILING, value).is_ok() {
            context.set_trailing_metadata(metadata);
        }
    }
    if let Some(value) = initial {
        let mut metadata = Metadata::new();
        if metadata.insert(ECHO_INITIAL, &value).is_ok() {
            context.send_initial_metadata(metadata);
        }
    }
}

/// The `expect_compressed` check: a request that says it was compressed must have been.
fn check_compressed(expect: Option<&BoolValue>, compressed: bool) -> Result<(), Status> {
    if is_true(expect) && !compressed {
        return Err(Status::invalid_argument(
            "expect_compressed is set but the request was not compressed",
        ));
    }
    Ok(())
}

/// Compress responses with gzip when any of `params` asks for compression (the others are
/// then sent with the uncompressed write flag).
fn compress_if_asked(context: &mut ServicerContext, params: &[ResponseParameters]) {
    if params.iter().any(|p| is_true(p.compressed.as_ref())) {
        context.set_compression(Encoding::Gzip);
    }
}

impl Interop {
    async fn unary(
        &self,
        request: SimpleRequest,
        context: &mut ServicerContext,
    ) -> Result<SimpleResponse, Status> {
        echo_metadata(context).await;
        check_compressed(
            request.expect_compressed.as_ref(),
            context.request_compressed(),
        )?;
        if is_true(request.response_compressed.as_ref()) {
            context.set_compression(Encoding::Gzip);
        }
        requested_status(request.response_status.as_ref())?;
        Ok(SimpleResponse {
            payload: Some(payload(request.response_size)?),
            ..SimpleResponse::default()
        })
    }
}

impl TestService for Interop {
    async fn empty_call(&self, _: Empty, context: &mut ServicerContext) -> Result<Empty, Status> {
        echo_metadata(context).await;
        Ok(Empty {})
    }

    async fn unary_call(
        &self,
        request: SimpleRequest,
        context: &mut ServicerContext,
    ) -> Result<SimpleResponse, Status> {
        self.unary(request, context).await
    }

    async fn cacheable_unary_call(
        &self,
        request: SimpleRequest,
        context: &mut ServicerContext,
    ) -> Result<SimpleResponse, Status> {
        self.unary(request, context).await
    }

    async fn streaming_output_call(
        &self,
        request: StreamingOutputCallRequest,
        context: &mut ServicerContext,
        mut responses: ResponseSink<StreamingOutputCallResponse>,
    ) -> Result<(), Status> {
        echo_metadata(context).await;
        compress_if_asked(context, &request.response_parameters);
        self.stream_out(&request.response_parameters, &mut responses)
            .await?;
        requested_status(request.response_status.as_ref())
    }

    async fn streaming_input_call(
        &self,
        mut requests: RequestStream<StreamingInputCallRequest>,
        context: &mut ServicerContext,
    ) -> Result<StreamingInputCallResponse, Status> {
        echo_metadata(context).await;
        let mut total: i32 = 0;
        while let Some(request) = requests.read().await {
            let request = request?;
            check_compressed(
                request.expect_compressed.as_ref(),
                requests.last_compressed(),
            )?;
            let size = request.payload.map_or(0, |p| p.body.len());
            total = i32::try_from(size)
                .ok()
                .and_then(|s| total.checked_add(s))
                .ok_or_else(|| Status::invalid_argument("aggregated payload size overflows"))?;
        }
        Ok(StreamingInputCallResponse {
            aggregated_payload_size: total,
        })
    }

    async fn full_duplex_call(
        &self,
        mut requests: RequestStream<StreamingOutputCallRequest>,
        context: &mut ServicerContext,
        mut responses: ResponseSink<StreamingOutputCallResponse>,
    ) -> Result<(), Status> {
        echo_metadata(context).await;
        let mut first = true;
        while let Some(request) = requests.read().await {
            let request = request?;
            if first {
                compress_if_asked(context, &request.response_parameters);
                first = false;
            }
            requested_status(request.response_status.as_ref())?;
            self.stream_out(&request.response_parameters, &mut responses)
                .await?;
        }
        Ok(())
    }

    async fn half_duplex_call(
        &self,
        mut requests: RequestStream<StreamingOutputCallRequest>,
        context: &mut ServicerContext,
        mut responses: ResponseSink<StreamingOutputCallResponse>,
    ) -> Result<(), Status> {
        echo_metadata(context).await;
        let mut all = Vec::new();
        while let Some(request) = requests.read().await {
            all.push(request?);
        }
        for request in all {
            requested_status(request.response_status.as_ref())?;
            self.stream_out(&request.response_parameters, &mut responses)
                .await?;
        }
        Ok(())
    }

    async fn unimplemented_call(&self, _: Empty, _: &mut ServicerContext) -> Result<Empty, Status> {
        Err(Status::unimplemented(
            "UnimplementedCall is not implemented, on purpose",
        ))
    }
}

/// The encoded `FileDescriptorSet` of the interop protos (`build.rs`'s), served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"));

/// Serves TestService, the health service (reporting it SERVING) and reflection (v1 and
/// v1alpha, describing the interop, health and reflection protos), on `address`
/// (`127.0.0.1:0` picks a port); returns the server and port.
pub async fn serve(
    runtime: RuntimeRef,
    address: &str,
    credentials: Option<anygrpc::ServerCredentials>,
) -> std::io::Result<(Server, u16)> {
    let server = Server::new(runtime.clone());
    server.add_service(TestServiceServer::new(Interop::new(runtime)));
    // The standard services, so that standard tools can inspect it.
    let health = anygrpc_health::serve_on(&server);
    health.set_serving("grpc.testing.TestService");
    anygrpc_reflection::serve_on(
        &server,
        &[FILE_DESCRIPTOR_SET, anygrpc_health::FILE_DESCRIPTOR_SET],
    )
    .map_err(std::io::Error::other)?;
    let port = match credentials {
        Some(credentials) => server.add_secure_port(address, credentials).await?,
        None => server.add_insecure_port(address).await?,
    };
    server.start();
    Ok((server, port))
}
