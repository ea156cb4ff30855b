//! The health service through a real anygrpc client and server, over the in-memory runtime.

use std::time::Duration;

use anygrpc::testing::MemoryRuntime;
use anygrpc::{Code, Server, UnaryStreamCall};

use super::*;

struct Fixture {
    rt: MemoryRuntime,
    server: Server,
    health: HealthReporter,
    client: HealthClient,
}

fn fixture() -> Fixture {
    let rt = MemoryRuntime::new();
    let server = Server::new(rt.handle());
    let health = serve_on(&server);
    let channel = rt.serve(&server);
    Fixture {
        rt,
        server,
        health,
        client: HealthClient::new(channel),
    }
}

fn asking(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_string(),
    }
}

/// The next status a watch sends.
async fn next(watch: &mut UnaryStreamCall<HealthCheckResponse>) -> ServingStatus {
    watch
        .read()
        .await
        .expect("the watch stays open")
        .expect("a response")
        .status()
}

#[test]
fn check_answers_for_the_server_as_a_whole_and_each_service_set() {
    let f = fixture();
    f.rt.block_on(async {
        let whole = f.client.check(asking("")).await.expect("known");
        assert_eq!(whole.status(), ServingStatus::Serving);
        let err = f.client.check(asking("x.Y")).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err}");
        assert!(err.details().contains("x.Y"), "{err}");
        f.health.set_not_serving("x.Y");
        let known = f.client.check(asking("x.Y")).await.expect("known now");
        assert_eq!(known.status(), ServingStatus::NotServing);
        f.health.clear_status("x.Y");
        let err = f.client.check(asking("x.Y")).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "forgotten: {err}");
    });
}

#[test]
fn watch_sends_service_unknown_then_each_change_of_its_service_once() {
    let f = fixture();
    f.rt.block_on(async {
        let mut watch = f.client.watch(asking("svc"));
        assert_eq!(next(&mut watch).await, ServingStatus::ServiceUnknown);
        f.health.set_serving("svc");
        assert_eq!(next(&mut watch).await, ServingStatus::Serving);
        // Neither of these is a change of `svc`: the next response is the one after them.
        f.health.set_serving("svc");
        f.health.set_not_serving("other");
        f.health.set_not_serving("svc");
        assert_eq!(next(&mut watch).await, ServingStatus::NotServing);
        f.health.clear_status("svc");
        assert_eq!(next(&mut watch).await, ServingStatus::ServiceUnknown);
        watch.cancel();
    });
}

#[test]
fn stop_reports_not_serving_to_watchers_before_it_drains_and_then_ignores_changes() {
    let f = fixture();
    f.health.set_serving("svc");
    f.rt.block_on(async {
        let mut whole = f.client.watch(asking(""));
        let mut svc = f.client.watch(asking("svc"));
        assert_eq!(next(&mut whole).await, ServingStatus::Serving);
        assert_eq!(next(&mut svc).await, ServingStatus::Serving);
        let server = f.server.clone();
        f.rt.spawn(async move { server.stop(Some(Duration::from_secs(5))).await });
        assert_eq!(next(&mut whole).await, ServingStatus::NotServing);
        assert_eq!(next(&mut svc).await, ServingStatus::NotServing);
        f.health.set_serving("svc");
        assert_eq!(f.health.status("svc"), Some(ServingStatus::NotServing));
        f.health.resume();
        assert_eq!(next(&mut svc).await, ServingStatus::Serving, "resumed");
    });
}

#[test]
fn list_gives_every_service_up_to_the_limit() {
    let f = fixture();
    f.rt.block_on(async {
        f.health.set_not_serving("a.A");
        let listed = f.client.list(HealthListRequest {}).await.expect("listed");
        let mut names: Vec<_> = listed.statuses.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["", "a.A"]);
        assert_eq!(listed.statuses["a.A"].status(), ServingStatus::NotServing);
        for i in 2..LIST_LIMIT {
            f.health.set_serving(&format!("s{i}"));
        }
        let listed = f
            .client
            .list(HealthListRequest {})
            .await
            .expect("at the limit");
        assert_eq!(listed.statuses.len(), LIST_LIMIT);
        f.health.set_serving("one.More");
        let err = f.client.list(HealthListRequest {}).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    });
}
