//! Typed handler adapters for the four call kinds, used by generated services: they decode
//! requests with the method's codec (prost by default), run the user's method with a
//! `ServicerContext`, and end the call with its status.

use std::sync::Arc;

use anygrpc_core::Status;

use super::call::{RequestStream, ResponseSink, ServerCall, ServicerContext};
use crate::codec::{Codec, ProstCodec};
use crate::runtime::BoxFuture;

/// A unary method of service `S`.
pub type UnaryMethod<S, Req, Resp> =
    for<'a> fn(&'a S, Req, &'a mut ServicerContext) -> BoxFuture<'a, Result<Resp, Status>>;
/// A server-streaming method of service `S`, its responses encoded by `C`.
pub type ServerStreamingMethod<S, Req, Resp, C = ProstCodec> =
    for<'a> fn(
        &'a S,
        Req,
        &'a mut ServicerContext,
        ResponseSink<Resp, C>,
    ) -> BoxFuture<'a, Result<(), Status>>;
/// A client-streaming method of service `S`, its requests decoded by `C`.
pub type ClientStreamingMethod<S, Req, Resp, C = ProstCodec> =
    for<'a> fn(
        &'a S,
        RequestStream<Req, C>,
        &'a mut ServicerContext,
    ) -> BoxFuture<'a, Result<Resp, Status>>;
/// A bidi-streaming method of service `S`, its messages encoded and decoded by `C`.
pub type BidiStreamingMethod<S, Req, Resp, C = ProstCodec> =
    for<'a> fn(
        &'a S,
        RequestStream<Req, C>,
        &'a mut ServicerContext,
        ResponseSink<Resp, C>,
    ) -> BoxFuture<'a, Result<(), Status>>;

/// Reads the single request of a unary-request call (unary and server-streaming) and waits
/// for the client's half-close before handing it over, so that the method runs only for a
/// well-formed call, as in grpc-java: a client that half-closes without a request, or sends a
/// second one, gets INTERNAL and the method never sees the call. A second request ends the call
/// as soon as it arrives; conforming clients half-close with their request, so the wait costs
/// them nothing.
async fn single_request<Req, C: Codec<Req>>(
    requests: &mut RequestStream<Req, C>,
) -> Result<Req, Status> {
    let request = match requests.read().await {
        Some(Ok(request)) => request,
        Some(Err(status)) => return Err(status),
        None => {
            return Err(Status::internal(
                "the client half-closed without a request message",
            ));
        }
    };
    requests.expect_end().await?;
    Ok(request)
}

/// Sends the one response of a unary-response call unless the handler failed.
async fn reply<Resp, C: Codec<Resp>>(
    context: ServicerContext,
    mut responses: ResponseSink<Resp, C>,
    result: Result<Resp, Status>,
) {
    let result = match result {
        Ok(response) if !context.failed() => responses.send(response).await,
        Ok(_) => Ok(()),
        Err(status) => Err(status),
    };
    context.finish(result);
}

/// Runs a unary handler, its messages protobuf.
pub fn unary<S, Req, Resp>(
    call: ServerCall,
    service: Arc<S>,
    method: UnaryMethod<S, Req, Resp>,
) -> BoxFuture<'static, ()>
where
    S: Send + Sync + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
    ProstCodec: Codec<Req> + Codec<Resp>,
{
    unary_with_codec(call, service, method, ProstCodec)
}

/// Runs a unary handler, its messages encoded and decoded by `codec`.
pub fn unary_with_codec<S, Req, Resp, C>(
    call: ServerCall,
    service: Arc<S>,
    method: UnaryMethod<S, Req, Resp>,
    codec: C,
) -> BoxFuture<'static, ()>
where
    S: Send + Sync + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
    C: Codec<Req> + Codec<Resp>,
{
    Box::pin(async move {
        let (mut context, mut requests, responses) = call.into_parts_with::<Req, Resp, C>(codec);
        let first = single_request(&mut requests).await;
        context.set_request_compressed(requests.last_compressed());
        let result = match first {
            Ok(request) => method(&service, request, &mut context).await,
            Err(status) => Err(status),
        };
        reply(context, responses, result).await;
    })
}

/// Runs a server-streaming handler, its messages protobuf.
pub fn server_streaming<S, Req, Resp>(
    call: ServerCall,
    service: Arc<S>,
    method: ServerStreamingMethod<S, Req, Resp>,
) -> BoxFuture<'static, ()>
where
    S: Send + Sync + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
    ProstCodec: Codec<Req> + Codec<Resp>,
{
    server_streaming_with_codec(call, service, method, ProstCodec)
}

/// Runs a server-streaming handler, its messages encoded and decoded by `codec`.
pub fn server_streaming_with_codec<S, Req, Resp, C>(
    call: ServerCall,
    service: Arc<S>,
    method: ServerStreamingMethod<S, Req, Resp, C>,
    codec: C,
) -> BoxFuture<'static, ()>
where
    S: Send + Sync + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
    C: Codec<Req> + Codec<Resp>,
{
    Box::pin(async move {
        let (mut context, mut requests, responses) = call.into_parts_with::<Req, Resp, C>(codec);
        let first = single_request(&mut requests).await;
        context.set_request_compressed(requests.last_compressed());
        let result = match first {
            Ok(request) => method(&service, request, &mut context, responses).await,
            Err(status) => Err(status),
        };
        context.finish(result);
    })
}

/// Runs a client-streaming handler, its messages protobuf.
pub fn client_streaming<S, Req, Resp>(
    call: ServerCall,
    service: Arc<S>,
    method: ClientStreamingMethod<S, Req, Resp>,
) -> BoxFuture<'static, ()>
where
    S: Send + Sync + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
    ProstCodec: Codec<Req> + Codec<Resp>,
{
    client_streaming_with_codec(call, service, method, ProstCodec)
}

/// Runs a client-streaming handler, its messages encoded and decoded by `codec`.
pub fn client_streaming_with_codec<S, Req, Resp, C>(
    call: ServerCall,
    service: Arc<S>,
    method: ClientStreamingMethod<S, Req, Resp, C>,
    codec: C,
) -> BoxFuture<'static, ()>
where
    S: Send + Sync + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
    C: Codec<Req> + Codec<Resp>,
{
    Box::pin(async move {
        let (mut context, requests, responses) = call.into_parts_with::<Req, Resp, C>(codec);
        let result = method(&service, requests, &mut context).await;
        reply(context, responses, result).await;
    })
}

/// Runs a bidi-streaming handler, its messages protobuf.
pub fn bidi_streaming<S, Req, Resp>(
    call: ServerCall,
    service: Arc<S>,
    method: BidiStreamingMethod<S, Req, Resp>,
) -> BoxFuture<'static, ()>
where
    S: Send + Sync + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
    ProstCodec: Codec<Req> + Codec<Resp>,
{
    bidi_streaming_with_codec(call, service, method, ProstCodec)
}

/// Runs a bidi-streaming handler, its messages encoded and decoded by `codec`.
pub fn bidi_streaming_with_codec<S, Req, Resp, C>(
    call: ServerCall,
    service: Arc<S>,
    method: BidiStreamingMethod<S, Req, Resp, C>,
    codec: C,
) -> BoxFuture<'static, ()>
where
    S: Send + Sync + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
    C: Codec<Req> + Codec<Resp>,
{
    Box::pin(async move {
        let (mut context, requests, responses) = call.into_parts_with::<Req, Resp, C>(codec);
        let result = method(&service, requests, &mut context, responses).await;
        context.finish(result);
    })
}
