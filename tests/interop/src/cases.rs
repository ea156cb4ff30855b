//! The client side of the test cases, as grpc/grpc `doc/interop-test-descriptions.md` describes
//! them, against any TestService server. A failure is an error string with the status code's
//! name and details where a call failed.

use std::time::Duration;

use anygrpc::{CallOptions, Channel, Code, Encoding, Metadata, RpcError, WriteOptions};

use crate::pb::testing::test_service_client::TestServiceClient;
use crate::pb::testing::unimplemented_service_client::UnimplementedServiceClient;
use crate::pb::testing::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest,
    StreamingInputCallRequest, StreamingOutputCallRequest, StreamingOutputCallResponse,
};
use crate::server::{ECHO_INITIAL, ECHO_TRAILING};
use crate::zeros;

/// The request payload size of the large unary cases.
pub const LARGE_REQUEST: usize = 271_828;
/// The response payload size of the large unary cases.
pub const LARGE_RESPONSE: i32 = 314_159;
/// Request payload sizes of client_streaming and ping_pong.
pub const REQUEST_SIZES: [usize; 4] = [27_182, 8, 1_828, 45_904];
/// Response sizes of server_streaming and ping_pong.
pub const RESPONSE_SIZES: [i32; 4] = [31_415, 9, 2_653, 58_979];
/// The status message of status_code_and_message.
pub const TEST_STATUS_MESSAGE: &str = "test status message";
/// The status message of special_status_message: whitespace, BMP and non-BMP characters.
pub const SPECIAL_STATUS_MESSAGE: &str =
    "\t\ntest with whitespace\r\nand Unicode BMP \u{263A} and non-BMP \u{1F608}\t\n";
/// The initial metadata value custom_metadata sends and expects back.
pub const ECHO_INITIAL_VALUE: &str = "test_initial_metadata_value";
/// The trailing binary metadata value custom_metadata sends and expects back.
pub const ECHO_TRAILING_VALUE: &[u8] = &[0xab, 0xab, 0xab];

/// A test case's failure, said in one line.
pub type Failure = String;

/// Describes a failed call: the status code's name and the details.
pub fn rpc_failure(what: &str, error: &RpcError) -> Failure {
    format!(
        "{what}: call failed with {} {:?}",
        error.code().as_str(),
        error.details()
    )
}

fn ensure(condition: bool, what: impl FnOnce() -> String) -> Result<(), Failure> {
    if condition { Ok(()) } else { Err(what()) }
}

fn expect_code<T>(
    what: &str,
    result: Result<T, RpcError>,
    want: Code,
) -> Result<RpcError, Failure> {
    match result {
        Ok(_) => Err(format!("{what}: succeeded, expected {}", want.as_str())),
        Err(e) if e.code() == want => Ok(e),
        Err(e) => Err(format!(
            "{what}: expected {}, got {} {:?}",
            want.as_str(),
            e.code().as_str(),
            e.details()
        )),
    }
}

fn payload(size: usize) -> Option<Payload> {
    Some(Payload {
        r#type: 0,
        body: zeros(size),
    })
}

fn bool_value(value: bool) -> Option<BoolValue> {
    Some(BoolValue { value })
}

fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_size: LARGE_RESPONSE,
        payload: payload(LARGE_REQUEST),
        ..SimpleRequest::default()
    }
}

fn check_body(what: &str, got: Option<&Payload>, size: usize) -> Result<(), Failure> {
    let body = got.map_or(&[][..], |p| &p.body[..]);
    ensure(body.len() == size && body.iter().all(|b| *b == 0), || {
        format!(
            "{what}: expected {size} zero bytes, got {} bytes",
            body.len()
        )
    })
}

fn streaming_request(size: i32, payload_size: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: vec![ResponseParameters {
            size,
            ..ResponseParameters::default()
        }],
        payload: payload(payload_size),
        ..StreamingOutputCallRequest::default()
    }
}

fn check_response(
    what: &str,
    got: Option<Result<StreamingOutputCallResponse, RpcError>>,
    size: i32,
) -> Result<(), Failure> {
    match got {
        Some(Ok(response)) => check_body(what, response.payload.as_ref(), size as usize),
        Some(Err(e)) => Err(rpc_failure(what, &e)),
        None => Err(format!("{what}: the stream ended before a response")),
    }
}

/// Runs the test case `name` on `channel`.
pub async fn run(name: &str, channel: &Channel) -> Result<(), Failure> {
    let client = TestServiceClient::new(channel.clone());
    match name {
        "empty_unary" => empty_unary(&client).await,
        "large_unary" => large_unary(&client).await,
        "client_compressed_unary" => client_compressed_unary(&client).await,
        "server_compressed_unary" => server_compressed_unary(&client).await,
        "client_streaming" => client_streaming(&client).await,
        "client_compressed_streaming" => client_compressed_streaming(&client).await,
        "server_streaming" => server_streaming(&client, false).await,
        "server_compressed_streaming" => server_streaming(&client, true).await,
        "ping_pong" => ping_pong(&client).await,
        "empty_stream" => empty_stream(&client).await,
        "custom_metadata" => custom_metadata(&client).await,
        "status_code_and_message" => status_message(&client, TEST_STATUS_MESSAGE).await,
        "special_status_message" => status_message(&client, SPECIAL_STATUS_MESSAGE).await,
        "unimplemented_method" => {
            let result = client.unimplemented_call(Empty {}).await;
            expect_code("UnimplementedCall", result, Code::Unimplemented).map(drop)
        }
        "unimplemented_service" => {
            let other = UnimplementedServiceClient::new(channel.clone());
            let result = other.unimplemented_call(Empty {}).await;
            expect_code("UnimplementedService", result, Code::Unimplemented).map(drop)
        }
        "cancel_after_begin" => cancel_after_begin(&client).await,
        "cancel_after_first_response" => cancel_after_first_response(&client).await,
        "timeout_on_sleeping_server" => timeout_on_sleeping_server(&client).await,
        other => Err(format!("unknown test case {other:?}")),
    }
}

async fn empty_unary(client: &TestServiceClient) -> Result<(), Failure> {
    client
        .empty_call(Empty {})
        .await
        .map_err(|e| rpc_failure("EmptyCall", &e))?;
    Ok(())
}

async fn large_unary(client: &TestServiceClient) -> Result<(), Failure> {
    let response = client
        .unary_call(large_request())
        .await
        .map_err(|e| rpc_failure("UnaryCall", &e))?;
    check_body(
        "UnaryCall",
        response.payload.as_ref(),
        LARGE_RESPONSE as usize,
    )
}

async fn client_compressed_unary(client: &TestServiceClient) -> Result<(), Failure> {
    // The probe: an uncompressed request claiming to be compressed must be refused.
    let probe = SimpleRequest {
        expect_compressed: bool_value(true),
        ..large_request()
    };
    let result = client.unary_call(probe).await;
    expect_code(
        "probe (expect_compressed, sent plain)",
        result,
        Code::InvalidArgument,
    )?;
    for compressed in [true, false] {
        let request = SimpleRequest {
            expect_compressed: bool_value(compressed),
            ..large_request()
        };
        let mut options = CallOptions::new();
        if compressed {
            options = options.compression(Encoding::Gzip);
        }
        let what = format!("UnaryCall (compressed: {compressed})");
        let response = client
            .unary_call_with(request, options)
            .await
            .map_err(|e| rpc_failure(&what, &e))?;
        check_body(&what, response.payload.as_ref(), LARGE_RESPONSE as usize)?;
    }
    Ok(())
}

async fn server_compressed_unary(client: &TestServiceClient) -> Result<(), Failure> {
    for compressed in [true, false] {
        let request = SimpleRequest {
            response_compressed: bool_value(compressed),
            ..large_request()
        };
        let what = format!("UnaryCall (response_compressed: {compressed})");
        let response = client
            .unary_call(request)
            .await
            .map_err(|e| rpc_failure(&what, &e))?;
        check_body(&what, response.payload.as_ref(), LARGE_RESPONSE as usize)?;
    }
    Ok(())
}

async fn client_streaming(client: &TestServiceClient) -> Result<(), Failure> {
    let mut call = client.streaming_input_call();
    for size in REQUEST_SIZES {
        let request = StreamingInputCallRequest {
            payload: payload(size),
            ..StreamingInputCallRequest::default()
        };
        if call.write(request).await.is_err() {
            break; // the call failed: awaiting it says why
        }
    }
    let _ = call.done_writing().await;
    let response = call
        .await
        .map_err(|e| rpc_failure("StreamingInputCall", &e))?;
    let want: usize = REQUEST_SIZES.iter().sum();
    ensure(response.aggregated_payload_size as usize == want, || {
        format!(
            "StreamingInputCall: aggregated size {}, expected {want}",
            response.aggregated_payload_size
        )
    })
}

async fn client_compressed_streaming(client: &TestServiceClient) -> Result<(), Failure> {
    let probe = StreamingInputCallRequest {
        payload: payload(27_182),
        expect_compressed: bool_value(true),
    };
    let mut call = client.streaming_input_call();
    let _ = call.write(probe).await;
    let _ = call.done_writing().await;
    expect_code(
        "probe (expect_compressed, sent plain)",
        call.await,
        Code::InvalidArgument,
    )?;

    let mut call = client.streaming_input_call_with(CallOptions::new().compression(Encoding::Gzip));
    let first = StreamingInputCallRequest {
        payload: payload(27_182),
        expect_compressed: bool_value(true),
    };
    let second = StreamingInputCallRequest {
        payload: payload(45_904),
        expect_compressed: bool_value(false),
    };
    if call.write(first).await.is_ok() {
        let _ = call.write_with(second, WriteOptions::uncompressed()).await;
    }
    let _ = call.done_writing().await;
    let response = call
        .await
        .map_err(|e| rpc_failure("StreamingInputCall", &e))?;
    ensure(response.aggregated_payload_size == 73_086, || {
        format!(
            "StreamingInputCall: aggregated size {}, expected 73086",
            response.aggregated_payload_size
        )
    })
}

async fn server_streaming(client: &TestServiceClient, compressed: bool) -> Result<(), Failure> {
    let sizes: &[i32] = if compressed {
        &[31_415, 92_653]
    } else {
        &RESPONSE_SIZES
    };
    let request = StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| ResponseParameters {
                size,
                compressed: compressed.then_some(BoolValue { value: i == 0 }),
                ..ResponseParameters::default()
            })
            .collect(),
        ..StreamingOutputCallRequest::default()
    };
    let mut call = client.streaming_output_call(request);
    for (i, &size) in sizes.iter().enumerate() {
        check_response(
            &format!("StreamingOutputCall response {i}"),
            call.read().await,
            size,
        )?;
    }
    match call.read().await {
        None => Ok(()),
        Some(Ok(_)) => Err(format!(
            "StreamingOutputCall: more than {} responses",
            sizes.len()
        )),
        Some(Err(e)) => Err(rpc_failure("StreamingOutputCall", &e)),
    }
}

async fn ping_pong(client: &TestServiceClient) -> Result<(), Failure> {
    let mut call = client.full_duplex_call();
    for (i, (size, payload_size)) in RESPONSE_SIZES.into_iter().zip(REQUEST_SIZES).enumerate() {
        let what = format!("FullDuplexCall ping {i}");
        if let Err(e) = call.write(streaming_request(size, payload_size)).await {
            return match call.read().await {
                Some(Err(rpc)) => Err(rpc_failure(&what, &rpc)),
                _ => Err(format!("{what}: write failed: {e:?}")),
            };
        }
        check_response(&what, call.read().await, size)?;
    }
    call.done_writing()
        .await
        .map_err(|e| format!("FullDuplexCall: done_writing failed: {e:?}"))?;
    match call.read().await {
        None => Ok(()),
        Some(Ok(_)) => Err("FullDuplexCall: a response after the last ping".into()),
        Some(Err(e)) => Err(rpc_failure("FullDuplexCall", &e)),
    }
}

async fn empty_stream(client: &TestServiceClient) -> Result<(), Failure> {
    let mut call = client.full_duplex_call();
    call.done_writing()
        .await
        .map_err(|e| format!("FullDuplexCall: done_writing failed: {e:?}"))?;
    match call.read().await {
        None => Ok(()),
        Some(Ok(_)) => Err("FullDuplexCall: a response to no request".into()),
        Some(Err(e)) => Err(rpc_failure("FullDuplexCall", &e)),
    }
}

fn echo_request_metadata() -> Metadata {
    let mut metadata = Metadata::new();
    let _ = metadata.insert(ECHO_INITIAL, ECHO_INITIAL_VALUE);
    let _ = metadata.insert_bin(ECHO_TRAILING, ECHO_TRAILING_VALUE);
    metadata
}

fn check_echo(what: &str, initial: &Metadata, trailing: &Metadata) -> Result<(), Failure> {
    ensure(
        initial.get(ECHO_INITIAL) == Some(ECHO_INITIAL_VALUE),
        || {
            format!(
                "{what}: initial metadata {ECHO_INITIAL} = {:?}",
                initial.get(ECHO_INITIAL)
            )
        },
    )?;
    ensure(
        trailing.get_bin(ECHO_TRAILING).map(|b| &b[..]) == Some(ECHO_TRAILING_VALUE),
        || {
            format!(
                "{what}: trailing metadata {ECHO_TRAILING} = {:?}",
                trailing.get_bin(ECHO_TRAILING)
            )
        },
    )
}

async fn custom_metadata(client: &TestServiceClient) -> Result<(), Failure> {
    let options = CallOptions::new().metadata(echo_request_metadata());
    let call = client.unary_call_with(large_request(), options.clone());
    let initial = call.initial_metadata().await;
    let trailing = call.trailing_metadata().await;
    let response = call.await.map_err(|e| rpc_failure("UnaryCall", &e))?;
    check_body(
        "UnaryCall",
        response.payload.as_ref(),
        LARGE_RESPONSE as usize,
    )?;
    check_echo("UnaryCall", &initial, &trailing)?;

    let mut call = client.full_duplex_call_with(options);
    let _ = call
        .write(streaming_request(LARGE_RESPONSE, LARGE_REQUEST))
        .await;
    check_response("FullDuplexCall", call.read().await, LARGE_RESPONSE)?;
    let _ = call.done_writing().await;
    match call.read().await {
        None => {}
        Some(Ok(_)) => return Err("FullDuplexCall: more than one response".into()),
        Some(Err(e)) => return Err(rpc_failure("FullDuplexCall", &e)),
    }
    let initial = call.initial_metadata().await;
    let trailing = call.trailing_metadata().await;
    check_echo("FullDuplexCall", &initial, &trailing)
}

async fn status_message(client: &TestServiceClient, message: &str) -> Result<(), Failure> {
    let status = Some(EchoStatus {
        code: Code::Unknown.as_i32(),
        message: message.to_string(),
    });
    let check = |what: &str, error: RpcError| {
        ensure(error.details() == message, || {
            format!(
                "{what}: details {:?}, expected {message:?}",
                error.details()
            )
        })
    };
    let request = SimpleRequest {
        response_status: status.clone(),
        ..SimpleRequest::default()
    };
    let error = expect_code("UnaryCall", client.unary_call(request).await, Code::Unknown)?;
    check("UnaryCall", error)?;

    let mut call = client.full_duplex_call();
    let request = StreamingOutputCallRequest {
        response_status: status,
        ..StreamingOutputCallRequest::default()
    };
    let _ = call.write(request).await;
    let _ = call.done_writing().await;
    let result = match call.read().await {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e),
        None => Ok(()),
    };
    let error = expect_code("FullDuplexCall", result, Code::Unknown)?;
    check("FullDuplexCall", error)
}

async fn cancel_after_begin(client: &TestServiceClient) -> Result<(), Failure> {
    let call = client.streaming_input_call();
    call.cancel();
    expect_code("StreamingInputCall", call.await, Code::Cancelled).map(drop)
}

async fn cancel_after_first_response(client: &TestServiceClient) -> Result<(), Failure> {
    let mut call = client.full_duplex_call();
    let _ = call.write(streaming_request(31_415, 27_182)).await;
    check_response("FullDuplexCall", call.read().await, 31_415)?;
    call.cancel();
    let result = match call.read().await {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e),
        None => Ok(()),
    };
    expect_code("FullDuplexCall after cancel", result, Code::Cancelled).map(drop)
}

async fn timeout_on_sleeping_server(client: &TestServiceClient) -> Result<(), Failure> {
    let options = CallOptions::new().timeout(Duration::from_millis(1));
    let mut call = client.full_duplex_call_with(options);
    let _ = call
        .write(StreamingOutputCallRequest {
            payload: payload(27_182),
            ..StreamingOutputCallRequest::default()
        })
        .await;
    let result = match call.read().await {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e),
        None => Ok(()),
    };
    expect_code(
        "FullDuplexCall with a 1 ms deadline",
        result,
        Code::DeadlineExceeded,
    )
    .map(drop)
}

/// The canonical name of a numeric status code.
pub fn code_name(code: i32) -> &'static str {
    Code::from_i32(code).as_str()
}
