//! Builds the committed generated files (`tests/expected/`, kept current by `generate.rs`)
//! against a stand-in for the `anygrpc` API they target, implements the server traits with plain
//! `async fn`s, and checks that calls are routed to the right method and path.
//!
//! The stand-in lives at this test crate's root and is reachable as `::anygrpc` through
//! `extern crate self`; its signatures follow the API agreed with the `anygrpc` crate, its bodies
//! only record what happened.

// The stand-in spells out the handler signatures agreed with anygrpc, complex as they are.
#![allow(clippy::type_complexity)]

extern crate self as anygrpc;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

pub mod routeguide {
    include!("expected/route_guide.rs");
}
pub mod helloworld {
    include!("expected/helloworld.rs");
}
pub mod codegen {
    pub mod common {
        include!("expected/codegen.common.rs");
    }
    pub mod kitchen {
        pub mod v1 {
            include!("expected/codegen.kitchen.v1.rs");
        }
    }
}

// ---- stand-in for the anygrpc API ------------------------------------------------------------

pub use futures_core;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a stand-in call or handler did, in order.
type Log = Arc<Mutex<Vec<String>>>;

/// gRPC status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status(pub String);

/// Per-call server context.
#[derive(Debug, Default)]
pub struct ServicerContext {
    /// Set by handlers, to show they got a usable `&mut`.
    pub details: String,
}

/// Incoming requests of a streaming call.
#[derive(Debug)]
pub struct RequestStream<Req>(Vec<Req>);

impl<Req> RequestStream<Req> {
    /// Next request, `None` at the end.
    pub async fn read(&mut self) -> Result<Option<Req>, Status> {
        Ok(if self.0.is_empty() {
            None
        } else {
            Some(self.0.remove(0))
        })
    }
}

/// Outgoing responses of a streaming call.
#[derive(Debug)]
pub struct ResponseSink<Resp>(Log, PhantomData<fn(Resp)>);

impl<Resp: std::fmt::Debug> ResponseSink<Resp> {
    /// Sends one response.
    pub async fn send(&self, message: Resp) -> Result<(), Status> {
        self.0.lock().unwrap().push(format!("sent {message:?}"));
        Ok(())
    }
}

/// One incoming call, handed to `Service::call`.
#[derive(Debug)]
pub struct ServerCall(Log);

/// A service the server can route calls to.
pub trait Service: Send + Sync + 'static {
    /// Fully-qualified service name.
    fn name(&self) -> &'static str;
    /// Starts handling `method`; `None` when unknown.
    fn call(&self, method: &str, call: ServerCall) -> Option<BoxFuture<'static, ()>>;
}

/// Handler helpers used by generated `Service` impls (anygrpc's internal module).
pub mod __private {
    use super::*;

    /// Hands a two-request stream of default messages to handlers that take streams.
    fn two<Req: Default>() -> RequestStream<Req> {
        RequestStream(vec![Req::default(), Req::default()])
    }

    /// Unary handler.
    pub fn unary<S, Req, Resp>(
        call: ServerCall,
        service: Arc<S>,
        f: for<'a> fn(&'a S, Req, &'a mut ServicerContext) -> BoxFuture<'a, Result<Resp, Status>>,
    ) -> BoxFuture<'static, ()>
    where
        S: Send + Sync + 'static,
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + std::fmt::Debug + 'static,
    {
        Box::pin(async move {
            let mut context = ServicerContext::default();
            let result = f(&service, Req::default(), &mut context).await;
            let line = format!("unary {} {result:?}", context.details);
            call.0.lock().unwrap().push(line);
        })
    }

    /// Server-streaming handler.
    pub fn server_streaming<S, Req, Resp>(
        call: ServerCall,
        service: Arc<S>,
        f: for<'a> fn(
            &'a S,
            Req,
            &'a mut ServicerContext,
            ResponseSink<Resp>,
        ) -> BoxFuture<'a, Result<(), Status>>,
    ) -> BoxFuture<'static, ()>
    where
        S: Send + Sync + 'static,
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + std::fmt::Debug + 'static,
    {
        Box::pin(async move {
            let mut context = ServicerContext::default();
            let sink = ResponseSink(call.0.clone(), PhantomData);
            let result = f(&service, Req::default(), &mut context, sink).await;
            let line = format!("server_streaming {} {result:?}", context.details);
            call.0.lock().unwrap().push(line);
        })
    }

    /// Client-streaming handler.
    pub fn client_streaming<S, Req, Resp>(
        call: ServerCall,
        service: Arc<S>,
        f: for<'a> fn(
            &'a S,
            RequestStream<Req>,
            &'a mut ServicerContext,
        ) -> BoxFuture<'a, Result<Resp, Status>>,
    ) -> BoxFuture<'static, ()>
    where
        S: Send + Sync + 'static,
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + std::fmt::Debug + 'static,
    {
        Box::pin(async move {
            let mut context = ServicerContext::default();
            let result = f(&service, two(), &mut context).await;
            let line = format!("client_streaming {} {result:?}", context.details);
            call.0.lock().unwrap().push(line);
        })
    }

    /// Bidirectional-streaming handler.
    pub fn bidi_streaming<S, Req, Resp>(
        call: ServerCall,
        service: Arc<S>,
        f: for<'a> fn(
            &'a S,
            RequestStream<Req>,
            &'a mut ServicerContext,
            ResponseSink<Resp>,
        ) -> BoxFuture<'a, Result<(), Status>>,
    ) -> BoxFuture<'static, ()>
    where
        S: Send + Sync + 'static,
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + std::fmt::Debug + 'static,
    {
        Box::pin(async move {
            let mut context = ServicerContext::default();
            let sink = ResponseSink(call.0.clone(), PhantomData);
            let result = f(&service, two(), &mut context, sink).await;
            let line = format!("bidi_streaming {} {result:?}", context.details);
            call.0.lock().unwrap().push(line);
        })
    }
}

/// Call options.
#[derive(Debug, Default, Clone)]
pub struct CallOptions {
    /// Stand-in for a real option.
    pub timeout_ms: u64,
}

/// A channel.
#[derive(Debug, Clone, Default)]
pub struct Channel;

/// What a stand-in call was started with.
#[derive(Debug, PartialEq, Eq)]
pub struct Started {
    /// The call path.
    pub path: &'static str,
    /// Timeout from the options, if given.
    pub timeout_ms: Option<u64>,
    /// Whether requests came from a stream.
    pub from_stream: bool,
}

macro_rules! stand_in_call {
    ($(#[$doc:meta])* $name:ident<$($p:ident),*>) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<$($p),*>(pub Started, PhantomData<fn($($p),*)>);
    };
}
stand_in_call!(
    /// Unary call.
    UnaryCall<Resp>
);
stand_in_call!(
    /// Server-streaming call.
    UnaryStreamCall<Resp>
);
stand_in_call!(
    /// Client-streaming call.
    StreamUnaryCall<Req, Resp>
);
stand_in_call!(
    /// Bidi call.
    StreamStreamCall<Req, Resp>
);
stand_in_call!(
    /// Unary multi-callable.
    UnaryUnary<Req, Resp>
);
stand_in_call!(
    /// Server-streaming multi-callable.
    UnaryStream<Req, Resp>
);
stand_in_call!(
    /// Client-streaming multi-callable.
    StreamUnary<Req, Resp>
);
stand_in_call!(
    /// Bidi multi-callable.
    StreamStream<Req, Resp>
);

fn started(path: &'static str, options: Option<CallOptions>, from_stream: bool) -> Started {
    Started {
        path,
        timeout_ms: options.map(|o| o.timeout_ms),
        from_stream,
    }
}

impl Channel {
    /// Unary multi-callable.
    pub fn unary_unary<Req, Resp>(&self, path: &'static str) -> UnaryUnary<Req, Resp>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
    {
        UnaryUnary(started(path, None, false), PhantomData)
    }
    /// Server-streaming multi-callable.
    pub fn unary_stream<Req, Resp>(&self, path: &'static str) -> UnaryStream<Req, Resp>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
    {
        UnaryStream(started(path, None, false), PhantomData)
    }
    /// Client-streaming multi-callable.
    pub fn stream_unary<Req, Resp>(&self, path: &'static str) -> StreamUnary<Req, Resp>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
    {
        StreamUnary(started(path, None, false), PhantomData)
    }
    /// Bidi multi-callable.
    pub fn stream_stream<Req, Resp>(&self, path: &'static str) -> StreamStream<Req, Resp>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
    {
        StreamStream(started(path, None, false), PhantomData)
    }
}

macro_rules! unary_request {
    ($callable:ident => $call:ident<$($p:ident),*>) => {
        impl<Req, Resp> $callable<Req, Resp> {
            /// Starts a call.
            pub fn call(&self, _request: impl std::borrow::Borrow<Req>) -> $call<$($p),*> {
                $call(started(self.0.path, None, false), PhantomData)
            }
            /// Starts a call with options.
            pub fn call_with(
                &self,
                _request: impl std::borrow::Borrow<Req>,
                options: CallOptions,
            ) -> $call<$($p),*> {
                $call(started(self.0.path, Some(options), false), PhantomData)
            }
        }
    };
}
unary_request!(UnaryUnary => UnaryCall<Resp>);
unary_request!(UnaryStream => UnaryStreamCall<Resp>);

macro_rules! stream_request {
    ($callable:ident => $call:ident) => {
        impl<Req, Resp> $callable<Req, Resp> {
            /// Starts a call; write requests on it.
            pub fn call(&self) -> $call<Req, Resp> {
                $call(started(self.0.path, None, false), PhantomData)
            }
            /// Starts a call with options.
            pub fn call_with(&self, options: CallOptions) -> $call<Req, Resp> {
                $call(started(self.0.path, Some(options), false), PhantomData)
            }
            /// Starts a call fed from `requests`.
            pub fn call_from(
                &self,
                _requests: impl futures_core::Stream<Item = Req> + Send + 'static,
            ) -> $call<Req, Resp> {
                $call(started(self.0.path, None, true), PhantomData)
            }
            /// Starts a call fed from `requests`, with options.
            pub fn call_from_with(
                &self,
                _requests: impl futures_core::Stream<Item = Req> + Send + 'static,
                options: CallOptions,
            ) -> $call<Req, Resp> {
                $call(started(self.0.path, Some(options), true), PhantomData)
            }
        }
    };
}
stream_request!(StreamUnary => StreamUnaryCall);
stream_request!(StreamStream => StreamStreamCall);

// ---- user code -------------------------------------------------------------------------------

use codegen::common::Ping;
use codegen::kitchen::v1::{Dish, Order, kitchen_client, kitchen_server, order};
use routeguide::{Feature, Point, Rectangle, RouteNote, RouteSummary};
use routeguide::{route_guide_client::RouteGuideClient, route_guide_server};

/// A route guide written the way users write one: `async fn`s.
#[derive(Debug)]
struct Guide;

impl route_guide_server::RouteGuide for Guide {
    async fn get_feature(
        &self,
        request: Point,
        context: &mut ServicerContext,
    ) -> Result<Feature, Status> {
        context.details = "get_feature".into();
        Ok(Feature {
            name: format!("at {}", request.latitude),
            location: Some(request),
        })
    }

    async fn list_features(
        &self,
        _request: Rectangle,
        context: &mut ServicerContext,
        responses: ResponseSink<Feature>,
    ) -> Result<(), Status> {
        context.details = "list_features".into();
        responses.send(Feature::default()).await
    }

    async fn record_route(
        &self,
        mut requests: RequestStream<Point>,
        context: &mut ServicerContext,
    ) -> Result<RouteSummary, Status> {
        context.details = "record_route".into();
        let mut point_count = 0;
        while requests.read().await?.is_some() {
            point_count += 1;
        }
        Ok(RouteSummary {
            point_count,
            ..Default::default()
        })
    }

    async fn route_chat(
        &self,
        mut requests: RequestStream<RouteNote>,
        context: &mut ServicerContext,
        responses: ResponseSink<RouteNote>,
    ) -> Result<(), Status> {
        context.details = "route_chat".into();
        while let Some(note) = requests.read().await? {
            responses.send(note).await?;
        }
        Err(Status("done".into()))
    }
}

/// The kitchen's keyword and clashing method names, implemented.
#[derive(Debug)]
struct Cook;

impl kitchen_server::Kitchen for Cook {
    async fn r#type(&self, request: Ping, _context: &mut ServicerContext) -> Result<Ping, Status> {
        Ok(Ping { id: request.id + 7 })
    }
    async fn call(&self, _request: (), context: &mut ServicerContext) -> Result<Order, Status> {
        context.details = "Kitchen::call".into();
        Ok(Order::default())
    }
    async fn serve(
        &self,
        _request: Order,
        _context: &mut ServicerContext,
        _responses: ResponseSink<Dish>,
    ) -> Result<(), Status> {
        Ok(())
    }
    async fn gather(
        &self,
        _requests: RequestStream<Dish>,
        _context: &mut ServicerContext,
    ) -> Result<Order, Status> {
        Ok(Order::default())
    }
    async fn r#match(
        &self,
        _requests: RequestStream<Dish>,
        context: &mut ServicerContext,
        _responses: ResponseSink<Dish>,
    ) -> Result<(), Status> {
        context.details = "match".into();
        Ok(())
    }
    async fn inspect(
        &self,
        request: order::Line,
        _context: &mut ServicerContext,
    ) -> Result<order::Line, Status> {
        Ok(request)
    }
    async fn old_ping(
        &self,
        request: Ping,
        _context: &mut ServicerContext,
    ) -> Result<Ping, Status> {
        Ok(request)
    }
    async fn undocumented(
        &self,
        _request: Ping,
        _context: &mut ServicerContext,
    ) -> Result<(), Status> {
        Ok(())
    }
}

/// Routes `method` through `service` and runs the handler to completion; `None` if unrouted.
fn dispatch(service: &dyn Service, method: &str) -> Option<Vec<String>> {
    let log = Log::default();
    let mut future = service.call(method, ServerCall(log.clone()))?;
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        future.as_mut().poll(&mut cx).is_ready(),
        "stand-in handlers finish at once"
    );
    let lines = log.lock().unwrap().clone();
    Some(lines)
}

#[test]
fn server_routes_each_method_to_its_handler() {
    let server = route_guide_server::RouteGuideServer::new(Guide);
    assert_eq!(server.name(), "routeguide.RouteGuide");
    assert_eq!(route_guide_server::SERVICE_NAME, "routeguide.RouteGuide");

    assert_eq!(
        dispatch(&server, "GetFeature").unwrap(),
        [
            r#"unary get_feature Ok(Feature { name: "at 0", location: Some(Point { latitude: 0, longitude: 0 }) })"#
        ]
    );
    assert_eq!(
        dispatch(&server, "ListFeatures").unwrap(),
        [
            r#"sent Feature { name: "", location: None }"#,
            "server_streaming list_features Ok(())"
        ]
    );
    assert_eq!(
        dispatch(&server, "RecordRoute").unwrap(),
        [
            "client_streaming record_route Ok(RouteSummary { point_count: 2, feature_count: 0, distance: 0, elapsed_time: 0 })"
        ]
    );
    let chat = dispatch(&server, "RouteChat").unwrap();
    assert_eq!(chat.len(), 3, "{chat:?}");
    assert_eq!(chat[2], r#"bidi_streaming route_chat Err(Status("done"))"#);

    assert!(dispatch(&server, "getFeature").is_none(), "names are exact");
    assert!(dispatch(&server, "").is_none());
    assert!(dispatch(&server, "/routeguide.RouteGuide/GetFeature").is_none());
}

#[test]
fn server_wrappers_share_the_service() {
    let shared = Arc::new(Guide);
    let server = route_guide_server::RouteGuideServer::from_arc(shared.clone());
    let copy = server.clone();
    assert_eq!(Arc::strong_count(&shared), 3);
    assert!(format!("{copy:?}").contains("routeguide.RouteGuide"));
    let boxed: Box<dyn Service> = Box::new(copy);
    assert!(dispatch(boxed.as_ref(), "GetFeature").is_some());
    assert!(dispatch(&server, "RouteChat").is_some());
}

#[test]
fn keyword_and_clashing_methods_route_through_the_trait() {
    let server = kitchen_server::KitchenServer::new(Cook);
    assert_eq!(server.name(), "codegen.kitchen.v1.Kitchen");
    assert_eq!(
        dispatch(&server, "Call").unwrap(),
        ["unary Kitchen::call Ok(Order { lines: [] })"]
    );
    assert_eq!(
        dispatch(&server, "Type").unwrap(),
        ["unary  Ok(Ping { id: 7 })"]
    );
    assert_eq!(
        dispatch(&server, "Match").unwrap(),
        ["bidi_streaming match Ok(())"]
    );
    for method in ["Serve", "Gather", "Inspect", "OldPing", "Undocumented"] {
        assert!(dispatch(&server, method).is_some(), "{method}");
    }

    #[derive(Debug)]
    struct Nothing;
    impl codegen::kitchen::v1::idle_server::Idle for Nothing {}
    let idle = codegen::kitchen::v1::idle_server::IdleServer::new(Nothing);
    assert_eq!(idle.name(), "codegen.kitchen.v1.Idle");
    assert!(dispatch(&idle, "Anything").is_none());
}

#[test]
fn client_methods_start_calls_on_their_paths() {
    let client = RouteGuideClient::new(Channel);
    let _: &Channel = client.channel();
    let options = || CallOptions { timeout_ms: 250 };
    let get: UnaryCall<Feature> = client.get_feature(Point::default());
    assert_eq!(
        get.0,
        started("/routeguide.RouteGuide/GetFeature", None, false)
    );
    let get = client.get_feature_with(Point::default(), options());
    assert_eq!(get.0.timeout_ms, Some(250));

    let list: UnaryStreamCall<Feature> = client.list_features(Rectangle::default());
    assert_eq!(list.0.path, "/routeguide.RouteGuide/ListFeatures");
    let list = client.list_features_with(Rectangle::default(), options());
    assert_eq!(list.0.timeout_ms, Some(250));

    let record: StreamUnaryCall<Point, RouteSummary> = client.record_route();
    assert_eq!(record.0.path, "/routeguide.RouteGuide/RecordRoute");
    assert_eq!(client.record_route_with(options()).0.timeout_ms, Some(250));
    let points = Empty::<Point>(PhantomData);
    let from = client.record_route_from(points);
    assert!(from.0.from_stream);
    let from = client.record_route_from_with(Empty::<Point>(PhantomData), options());
    assert_eq!(
        from.0,
        started("/routeguide.RouteGuide/RecordRoute", Some(options()), true)
    );

    let chat: StreamStreamCall<RouteNote, RouteNote> = client.route_chat();
    assert_eq!(chat.0.path, "/routeguide.RouteGuide/RouteChat");
    assert!(client.route_chat_with(options()).0.timeout_ms.is_some());
    assert!(client.route_chat_from(Empty(PhantomData)).0.from_stream);
    assert!(
        client
            .route_chat_from_with(Empty(PhantomData), options())
            .0
            .from_stream
    );
    assert_eq!(
        routeguide::route_guide_client::ROUTE_CHAT_PATH,
        "/routeguide.RouteGuide/RouteChat"
    );

    let kitchen = kitchen_client::KitchenClient::new(Channel);
    assert_eq!(
        kitchen.r#type(Ping::default()).0.path,
        "/codegen.kitchen.v1.Kitchen/Type"
    );
    assert_eq!(kitchen.call(()).0.path, "/codegen.kitchen.v1.Kitchen/Call");
    assert_eq!(
        kitchen.r#match().0.path,
        "/codegen.kitchen.v1.Kitchen/Match"
    );
    #[allow(deprecated)] // The proto marks OldPing deprecated: this is the point.
    let old = kitchen.old_ping(Ping::default());
    assert_eq!(old.0.path, "/codegen.kitchen.v1.Kitchen/OldPing");

    let hello = helloworld::greeter_client::GreeterClient::new(Channel);
    let call: UnaryCall<helloworld::HelloReply> =
        hello.say_hello(helloworld::HelloRequest { name: "you".into() });
    assert_eq!(call.0.path, "/helloworld.Greeter/SayHello");
}

/// A stream that ends at once.
struct Empty<T>(PhantomData<fn() -> T>);

impl<T> futures_core::Stream for Empty<T> {
    type Item = T;
    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<T>> {
        Poll::Ready(None)
    }
}
