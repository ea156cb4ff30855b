//! Client and server interceptors and call credentials, around all four call kinds (the
//! generated RouteGuide), on every runtime.

use std::sync::{Arc, Mutex};

use anygrpc::{
    BearerToken, BoxFuture, Channel, ClientCallDetails, ClientInterceptor, Code, Metadata, Server,
    ServerCallDetails, ServerInterceptor, ServerNext, Status,
};
use anygrpc_examples::pb::routeguide::route_guide_client::RouteGuideClient;
use anygrpc_examples::pb::routeguide::route_guide_server::RouteGuideServer;
use anygrpc_examples::pb::routeguide::{Point, RouteNote};
use anygrpc_examples::{route, runtimes};
use futures_util::StreamExt;

/// Log of what the interceptors saw, shared with the test.
#[derive(Default, Clone)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Adds a tenant header, refuses RecordRoute, and records responses and outcomes.
struct Tenant(Log);

impl ClientInterceptor for Tenant {
    fn intercept(&self, details: &mut ClientCallDetails) -> Result<(), Status> {
        details.metadata.insert("x-tenant", "blue").unwrap();
        if details.method.ends_with("/RecordRoute") {
            return Err(Status::new(
                Code::PermissionDenied,
                "no routes for tenant blue",
            ));
        }
        Ok(())
    }
    fn on_response(&self, details: &ClientCallDetails, message: &[u8]) {
        self.0
            .push(format!("response {} {}B", details.method, message.len()));
    }
    fn on_complete(&self, details: &ClientCallDetails, status: &Status, _: &Metadata) {
        self.0.push(format!(
            "complete {} {}",
            details.method,
            status.code().as_str()
        ));
    }
}

/// Requires the tenant header and a bearer token; records the status each call ended with.
struct Gate(Log);

impl ServerInterceptor for Gate {
    fn intercept(&self, call: ServerCallDetails, next: ServerNext) -> BoxFuture<'_, Status> {
        Box::pin(async move {
            let method = call.method.clone();
            let status = if call.metadata.get("x-tenant") != Some("blue") {
                Status::new(Code::PermissionDenied, "unknown tenant")
            } else if call.metadata.get("authorization") != Some("Bearer s3cret") {
                Status::new(Code::Unauthenticated, "bad token")
            } else {
                next.run(call).await
            };
            self.0
                .push(format!("served {method} {}", status.code().as_str()));
            status
        })
    }
}

#[test]
fn interceptors_and_credentials_around_every_call_kind_on_every_runtime() {
    for &name in runtimes::RUNTIMES {
        let (client_log, server_log) = (Log::default(), Log::default());
        let (c, s) = (client_log.clone(), server_log.clone());
        runtimes::run(name, |rt| async move {
            let server = Server::new(rt.clone());
            server.add_service(RouteGuideServer::new(route::Guide::default()));
            server.add_interceptor(Gate(s));
            let port = server.add_insecure_port("127.0.0.1:0").await.unwrap();
            server.start();
            let target = format!("127.0.0.1:{port}");

            // Credentials are refused over cleartext unless explicitly allowed.
            let leaky = Channel::builder(&target, rt.clone())
                .call_credentials(BearerToken::new("s3cret"))
                .build()
                .unwrap();
            let err = RouteGuideClient::new(leaky)
                .get_feature(Point::default())
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated, "{name}: {err}");

            let channel = Channel::builder(&target, rt.clone())
                .interceptor(Tenant(c))
                .call_credentials(BearerToken::new("s3cret"))
                .allow_insecure_call_credentials(true)
                .build()
                .unwrap();
            let client = RouteGuideClient::new(channel.clone());
            let first = route::features()[0].location.unwrap();
            assert_eq!(client.get_feature(first).await.unwrap().name, "Ridge");
            let rect = route::three_features_area();
            let listed: Vec<_> = client.list_features(rect).collect().await;
            assert_eq!(listed.len(), 3);
            // Short-circuited by the client interceptor: never reaches the server.
            let refused = client
                .record_route_from(futures_util::stream::iter(vec![first]))
                .await
                .unwrap_err();
            assert_eq!(
                (refused.code(), refused.details()),
                (Code::PermissionDenied, "no routes for tenant blue")
            );
            let mut chat = client.route_chat();
            chat.write(RouteNote {
                location: Some(first),
                message: "a".into(),
            })
            .await
            .unwrap();
            chat.write(RouteNote {
                location: Some(first),
                message: "b".into(),
            })
            .await
            .unwrap();
            chat.done_writing().await.unwrap();
            let replies: Vec<_> = chat.collect().await;
            assert_eq!(replies.len(), 1);

            // Without the token the server interceptor rejects, and the handler never runs.
            let bare = Channel::builder(&target, rt.clone())
                .interceptor(Tenant(Log::default()))
                .build()
                .unwrap();
            let err = RouteGuideClient::new(bare)
                .get_feature(first)
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated, "{name}");
            channel.close(None).await;
            server.stop(None).await;
        })
        .unwrap();
        let client = client_log.lines();
        let server = server_log.lines();
        for expected in [
            "complete /routeguide.RouteGuide/GetFeature OK",
            "complete /routeguide.RouteGuide/ListFeatures OK",
            "complete /routeguide.RouteGuide/RecordRoute PERMISSION_DENIED",
            "complete /routeguide.RouteGuide/RouteChat OK",
        ] {
            assert!(
                client.iter().any(|l| l == expected),
                "{name}: missing {expected:?} in {client:?}"
            );
        }
        let responses = client
            .iter()
            .filter(|l| l.starts_with("response /routeguide.RouteGuide/ListFeatures"))
            .count();
        assert_eq!(
            responses, 3,
            "{name}: one on_response per streamed message: {client:?}"
        );
        for expected in [
            "served /routeguide.RouteGuide/GetFeature OK",
            "served /routeguide.RouteGuide/ListFeatures OK",
            "served /routeguide.RouteGuide/RouteChat OK",
            "served /routeguide.RouteGuide/GetFeature UNAUTHENTICATED",
        ] {
            assert!(
                server.iter().any(|l| l == expected),
                "{name}: missing {expected:?} in {server:?}"
            );
        }
        assert!(
            !server.iter().any(|l| l.contains("RecordRoute")),
            "{name}: short-circuited calls never reach the server"
        );
    }
}
