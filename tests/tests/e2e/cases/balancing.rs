//! Pluggable resolution and balancing: a resolver registered under a made-up scheme pushes
//! address updates (and a service config) that calls follow, a policy registered by name is
//! chosen by the service config, least_request sends calls where fewest are in flight, and
//! pick_first / round_robin behave as before on the policy trait. Which server answered is
//! counted on the servers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anygrpc::balancer::{
    PickInfo, PickResult, Policy, PolicyArgs, PolicyBuilder, PolicyChannel, PolicyConfig,
    PolicyUpdate, Subchannel,
};
use anygrpc::resolver::{
    Address, Attributes, ManualResolver, Resolver, ResolverBuilder, ResolverHandle, ResolverUpdate,
    TargetUri,
};
use anygrpc::{
    BoxFuture, CallOptions, Channel, Code, Connectivity, Listener, LoadBalancing, Runtime,
    RuntimeRef, ServiceConfig, Status, Transport,
};

use crate::e2e::service::{FLAKY, GATE, Ping, SLEEP};
use crate::e2e::{Env, TestServer};

/// `n` servers, started.
async fn servers(env: &Env, n: usize) -> Vec<TestServer> {
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(env.start_server().await);
    }
    all
}

/// The TCP address of `server`.
fn address(server: &TestServer) -> Address {
    Address::tcp(([127, 0, 0, 1], server.port).into())
}

/// `ipv4:///` with every server.
fn ipv4_target(servers: &[TestServer]) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    format!("ipv4:///{}", list.join(","))
}

/// How many events starting with `prefix` each server recorded.
fn served(servers: &[TestServer], prefix: &str) -> Vec<usize> {
    servers
        .iter()
        .map(|s| {
            let events = s.probe.events();
            events.iter().filter(|e| e.starts_with(prefix)).count()
        })
        .collect()
}

/// `n` quick calls labelled `label<i>`, each waiting for a ready subchannel.
async fn calls(channel: &Channel, label: &str, n: usize) {
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    for i in 0..n {
        let ping = Ping::text(format!("{label}{i}"));
        sleep
            .call_with(ping, CallOptions::new().wait_for_ready(true))
            .await
            .unwrap_or_else(|e| panic!("call {label}{i}: {e}"));
    }
}

/// Calls until every server answered one (subchannels come up one by one).
async fn warm_up(channel: &Channel, servers: &[TestServer], label: &str) {
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let prefix = format!("sleep:done:{label}");
    for i in 0.. {
        let counts = served(servers, &prefix);
        if counts.iter().all(|&n| n > 0) {
            return;
        }
        assert!(i < 500, "not every server was reached: {counts:?}");
        let ping = Ping::text(format!("{label}{i}"));
        let _ = sleep
            .call_with(ping, CallOptions::new().wait_for_ready(true))
            .await;
    }
}

/// Waits until the servers' `gate:entered` events add up to `n`; gives them per server.
async fn entered(env: &Env, servers: &[TestServer], n: usize) -> Vec<usize> {
    for _ in 0..5000 {
        let counts = served(servers, "gate:entered");
        if counts.iter().sum::<usize>() >= n {
            return counts;
        }
        env.sleep(Duration::from_millis(2)).await;
    }
    panic!(
        "{n} gated calls never arrived: {:?}",
        served(servers, "gate:entered")
    );
}

/// A resolver of the test's own for `moving:///my-service`: pushes `first` when built, and
/// whatever the test gives [`Moving::push`] later; counts the channel's `resolve_now` hints.
#[derive(Clone, Default)]
struct Moving {
    first: Arc<Mutex<Vec<Address>>>,
    handle: Arc<Mutex<Option<ResolverHandle>>>,
    hints: Arc<AtomicUsize>,
}

impl Moving {
    fn push(&self, update: ResolverUpdate) {
        let handle = self.handle.lock().unwrap().clone();
        handle
            .expect("the channel built the resolver")
            .update(update);
    }
}

impl ResolverBuilder for Moving {
    fn scheme(&self) -> &str {
        "moving"
    }
    fn check(&self, target: &TargetUri) -> Result<(), String> {
        match target.endpoint.as_str() {
            "my-service" => Ok(()),
            other => Err(format!("no service {other:?}")),
        }
    }
    fn build(&self, _target: &TargetUri, handle: ResolverHandle) -> Box<dyn Resolver> {
        handle.update(ResolverUpdate::new(self.first.lock().unwrap().clone()));
        *self.handle.lock().unwrap() = Some(handle);
        Box::new(MovingHints(self.hints.clone()))
    }
}

struct MovingHints(Arc<AtomicUsize>);

impl Resolver for MovingHints {
    fn resolve_now(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

pub async fn a_registered_resolver_pushes_updates_that_calls_follow(env: Env) {
    let servers = servers(&env, 3).await;
    let resolver = Moving::default();
    *resolver.first.lock().unwrap() = vec![address(&servers[0])];
    let err = Channel::builder("moving:///elsewhere", env.runtime.clone())
        .resolver(resolver.clone())
        .build()
        .expect_err("the resolver checks its targets");
    assert!(
        err.to_string().contains("no service \"elsewhere\""),
        "{err}"
    );
    let channel = Channel::builder("moving:///my-service", env.runtime.clone())
        .resolver(resolver.clone())
        .build()
        .expect("a registered scheme");
    calls(&channel, "first", 4).await;
    assert_eq!(served(&servers, "sleep:done:first"), [4, 0, 0]);

    // The resolver moves the service: calls follow at once (pick_first, the default).
    resolver.push(ResolverUpdate::new(vec![address(&servers[1])]));
    calls(&channel, "second", 4).await;
    assert_eq!(served(&servers, "sleep:done:second"), [0, 4, 0]);

    // Two addresses and a service config choosing round_robin: calls alternate.
    let config = ServiceConfig::parse(r#"{"loadBalancingConfig": [{"round_robin": {}}]}"#);
    resolver.push(
        ResolverUpdate::new(vec![address(&servers[1]), address(&servers[2])])
            .with_service_config(config),
    );
    warm_up(&channel, &servers[1..], "warm").await;
    calls(&channel, "third", 10).await;
    assert_eq!(served(&servers, "sleep:done:third"), [0, 5, 5]);
    // A server that goes away makes the channel ask its resolver again.
    let hints = resolver.hints.load(Ordering::Relaxed);
    servers[2].server.stop(None).await;
    calls(&channel, "fourth", 4).await;
    assert_eq!(served(&servers, "sleep:done:fourth")[2], 0);
    assert!(
        resolver.hints.load(Ordering::Relaxed) > hints,
        "resolve_now after a loss"
    );
    channel.close(None).await;
}

pub async fn a_resolver_error_fails_fast_calls_and_wait_for_ready_ones_wait(env: Env) {
    let server = env.start_server().await;
    let resolver = ManualResolver::new("fake");
    let channel = Channel::builder("fake:///later", env.runtime.clone())
        .resolver(resolver.clone())
        .build()
        .expect("a registered scheme");
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let patient = sleep.call_with(
        Ping::text("patient"),
        CallOptions::new().wait_for_ready(true),
    );
    resolver.error(Status::unavailable("the registry is down"));
    let err = sleep.call(Ping::text("hasty")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.details().contains("the registry is down"), "{err}");
    assert!(!patient.done(), "a wait-for-ready call waits out the error");
    resolver.update(ResolverUpdate::new(vec![Address::tcp(
        ([127, 0, 0, 1], server.port).into(),
    )]));
    assert_eq!(patient.await.unwrap().text, "patient");
    assert!(
        resolver.resolve_now_count() <= 1,
        "no storm of re-resolution: {}",
        resolver.resolve_now_count()
    );
    channel.close(None).await;
}

/// A policy of the test's own: connects only the last address and sends every call there;
/// records the `label` of each config it is given.
#[derive(Clone, Default)]
struct LastAddress {
    labels: Arc<Mutex<Vec<String>>>,
}

/// `{"label": "..."}`, parsed.
struct Label(String);

impl PolicyBuilder for LastAddress {
    fn name(&self) -> &str {
        "last_address"
    }
    fn parse_config(&self, json: &str) -> Result<PolicyConfig, String> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        match value.get("label") {
            Some(serde_json::Value::String(label)) => Ok(PolicyConfig::new(Label(label.clone()))),
            _ => Err("label must be a string".to_string()),
        }
    }
    fn build(&self, _args: PolicyArgs) -> Box<dyn Policy> {
        Box::new(LastAddressPolicy {
            labels: self.labels.clone(),
            sub: None,
            state: Connectivity::Connecting,
        })
    }
}

struct LastAddressPolicy {
    labels: Arc<Mutex<Vec<String>>>,
    sub: Option<Subchannel>,
    state: Connectivity,
}

impl LastAddressPolicy {
    fn report(&mut self, channel: &mut PolicyChannel<'_>, state: Connectivity) {
        self.state = state;
        let error = (state == Connectivity::TransientFailure)
            .then(|| Status::unavailable("the last address is down"));
        channel.set_state(state, error);
    }
}

impl Policy for LastAddressPolicy {
    fn resolver_update(&mut self, update: &PolicyUpdate<'_>, channel: &mut PolicyChannel<'_>) {
        let Some(last) = update.addresses.last() else {
            return self.report(channel, Connectivity::TransientFailure);
        };
        if let Some(Label(label)) = update.config.get::<Label>() {
            // What the policy was told: its config, the update's and the address's attributes.
            let zone = update.attributes.get("zone").unwrap_or("-");
            let weight = last.attributes.get("weight").unwrap_or("-");
            self.labels
                .lock()
                .unwrap()
                .push(format!("{label} {zone} {weight}"));
        }
        if self.sub.as_ref().is_some_and(|s| s.address() == last) {
            return;
        }
        if let Some(old) = self.sub.take() {
            channel.remove_subchannel(&old);
        }
        let sub = channel.new_subchannel(last);
        channel.connect(&sub);
        self.sub = Some(sub);
        self.report(channel, Connectivity::Connecting);
    }

    fn resolver_error(&mut self, _error: &Status, channel: &mut PolicyChannel<'_>) {
        if self.sub.is_none() {
            self.report(channel, Connectivity::TransientFailure);
        }
    }

    fn subchannel_state(
        &mut self,
        sub: &Subchannel,
        state: Connectivity,
        channel: &mut PolicyChannel<'_>,
    ) {
        if self.sub.as_ref() != Some(sub) {
            return;
        }
        if state == Connectivity::Idle {
            channel.connect(sub);
        }
        self.report(channel, channel.subchannel_state(sub));
    }

    fn pick(&mut self, _info: &PickInfo<'_>) -> PickResult {
        match (&self.sub, self.state) {
            (Some(sub), Connectivity::Ready) => PickResult::Ready(sub.clone()),
            (_, Connectivity::TransientFailure) => {
                PickResult::Fail(Status::unavailable("the last address is down"))
            }
            _ => PickResult::Wait,
        }
    }
}

pub async fn a_registered_policy_is_chosen_by_the_service_config(env: Env) {
    let servers = servers(&env, 3).await;
    let target = ipv4_target(&servers);
    let policy = LastAddress::default();
    let config = r#"{"loadBalancingConfig": [
        {"not_registered": {}}, {"last_address": {"label": "east"}}, {"round_robin": {}}
    ]}"#;
    let resolver = ManualResolver::new("fake");
    let mut addresses: Vec<Address> = servers.iter().map(address).collect();
    addresses[2].attributes = Attributes::new().with("weight", "3");
    resolver.update(
        ResolverUpdate::new(addresses).with_attributes(Attributes::new().with("zone", "z1")),
    );
    let channel = Channel::builder("fake:///three", env.runtime.clone())
        .resolver(resolver)
        .balancing_policy(policy.clone())
        .service_config(config)
        .expect("the first known entry is the registered policy")
        .build()
        .unwrap();
    calls(&channel, "custom", 6).await;
    assert_eq!(served(&servers, "sleep:done:custom"), [0, 0, 6]);
    assert_eq!(*policy.labels.lock().unwrap(), ["east z1 3"]);
    channel.close(None).await;

    // Its config parser's error names the field; without the registration nothing is known.
    let bad = Channel::builder(&target, env.runtime.clone())
        .balancing_policy(LastAddress::default())
        .service_config(r#"{"loadBalancingConfig": [{"last_address": {"label": 7}}]}"#)
        .expect_err("a bad label");
    assert_eq!(bad.field, "loadBalancingConfig[0].last_address", "{bad}");
    assert!(bad.problem.contains("label must be a string"), "{bad}");
    let unknown = Channel::builder(&target, env.runtime.clone())
        .service_config(r#"{"loadBalancingConfig": [{"last_address": {"label": "x"}}]}"#)
        .expect_err("not registered");
    assert_eq!(unknown.field, "loadBalancingConfig", "{unknown}");
    assert!(unknown.problem.contains("last_address"), "{unknown}");
    // A target whose scheme no resolver has is refused at build.
    let err = Channel::builder("consul:///svc", env.runtime.clone())
        .build()
        .expect_err("no consul resolver");
    assert!(err.to_string().contains("consul"), "{err}");
}

pub async fn least_request_sends_calls_where_fewest_are_in_flight(env: Env) {
    let servers = servers(&env, 2).await;
    let channel = Channel::builder(ipv4_target(&servers), env.runtime.clone())
        .service_config(r#"{"loadBalancingConfig": [{"least_request": {"choiceCount": 2}}]}"#)
        .expect("a valid config")
        .build()
        .unwrap();
    warm_up(&channel, &servers, "warm").await;
    let gate = channel.unary_unary::<Ping, Ping>(GATE);
    // Each gated call is held by its server until the test opens that server's gate.
    let mut held = Vec::new();
    let mut on = Vec::new();
    for i in 0..4 {
        let before = served(&servers, "gate:entered");
        held.push(gate.call(Ping::text(format!("held{i}"))));
        let after = entered(&env, &servers, i + 1).await;
        let server = (0..2)
            .find(|&s| after[s] > before[s])
            .expect("one server got it");
        if i % 2 == 1 {
            // With one call more on one server, the next goes to the other.
            assert_ne!(
                server,
                on[i - 1],
                "call {i} went to the busier server: {after:?}"
            );
        }
        on.push(server);
    }
    assert_eq!(served(&servers, "gate:entered"), [2, 2]);
    // Let the first server's two calls end: its count goes back down, so it takes the next.
    let first = on[0];
    servers[first].probe.record("gate:open");
    let mut rest = Vec::new();
    for (call, server) in held.into_iter().zip(on) {
        if server == first {
            call.await.expect("released");
        } else {
            rest.push(call);
        }
    }
    for i in 0..3 {
        gate.call(Ping::text(format!("after{i}")))
            .await
            .expect("an open gate");
    }
    let counts = served(&servers, "gate:entered");
    assert_eq!(
        counts[first], 5,
        "every later call went to the idle server: {counts:?}"
    );
    assert_eq!(counts[1 - first], 2, "{counts:?}");
    servers[1 - first].probe.record("gate:open");
    for call in rest {
        call.await.expect("released");
    }
    channel.close(None).await;
}

pub async fn pick_first_and_round_robin_behave_as_before(env: Env) {
    let servers = servers(&env, 3).await;
    let target = ipv4_target(&servers);
    let pick_first = Channel::builder(&target, env.runtime.clone())
        .build()
        .unwrap();
    calls(&pick_first, "pf", 5).await;
    assert_eq!(
        served(&servers, "sleep:done:pf"),
        [5, 0, 0],
        "the first address"
    );
    let round_robin = Channel::builder(&target, env.runtime.clone())
        .load_balancing(LoadBalancing::RoundRobin)
        .build()
        .unwrap();
    warm_up(&round_robin, &servers, "warm").await;
    calls(&round_robin, "rr", 30).await;
    assert_eq!(served(&servers, "sleep:done:rr"), [10, 10, 10], "in turn");
    // The first server stops: pick_first fails over, round_robin leaves it out.
    servers[0].server.stop(None).await;
    calls(&pick_first, "pf-after", 4).await;
    assert_eq!(served(&servers, "sleep:done:pf-after"), [0, 4, 0]);
    calls(&round_robin, "rr-after", 10).await;
    let counts = served(&servers, "sleep:done:rr-after");
    assert_eq!((counts[0], counts[1] + counts[2]), (0, 10), "{counts:?}");
    assert!(
        counts[1] >= 4 && counts[2] >= 4,
        "still in turn: {counts:?}"
    );
    for channel in [pick_first, round_robin] {
        channel.close(None).await;
    }
}

pub async fn pick_first_shuffles_its_addresses_when_the_config_says(env: Env) {
    let servers = servers(&env, 4).await;
    let target = ipv4_target(&servers);
    let config = r#"{"loadBalancingConfig": [{"pick_first": {"shuffleAddressList": true}}]}"#;
    let mut chosen = std::collections::BTreeSet::new();
    for i in 0..12 {
        let channel = Channel::builder(&target, env.runtime.clone())
            .service_config(config)
            .expect("a valid config")
            .build()
            .unwrap();
        let label = format!("shuffle{i}-");
        calls(&channel, &label, 3).await;
        let counts = served(&servers, &format!("sleep:done:{label}"));
        let used: Vec<usize> = (0..4).filter(|&s| counts[s] > 0).collect();
        assert_eq!(used.len(), 1, "one connection per channel: {counts:?}");
        chosen.insert(used[0]);
        channel.close(None).await;
    }
    // Twelve channels all on the same of four servers: about 1 in 4^11 by chance.
    assert!(chosen.len() >= 2, "the channels all chose {chosen:?}");
}

/// A runtime whose connects to `dead` never complete (a black-holed address); all else is
/// `inner`'s.
#[derive(Debug)]
struct Blackhole {
    inner: RuntimeRef,
    dead: SocketAddr,
}

impl Runtime for Blackhole {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.inner.spawn(task);
    }
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        self.inner.sleep_until(deadline)
    }
    fn now(&self) -> Instant {
        self.inner.now()
    }
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<Box<dyn Transport>>> {
        if addr == self.dead {
            return Box::pin(std::future::pending());
        }
        self.inner.connect(addr)
    }
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<Box<dyn Listener>>> {
        self.inner.listen(addr)
    }
    fn resolve(
        &self,
        host: String,
        port: u16,
    ) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        self.inner.resolve(host, port)
    }
}

pub async fn pick_first_starts_the_next_address_while_the_first_still_connects(env: Env) {
    let server = env.start_server().await;
    let dead = SocketAddr::from(([127, 0, 0, 1], env.free_port().await));
    let runtime: RuntimeRef = Arc::new(Blackhole {
        inner: env.runtime.clone(),
        dead,
    });
    let target = format!("ipv4:///{dead},127.0.0.1:{}", server.port);
    let channel = Channel::builder(target, runtime).build().unwrap();
    let start = env.now();
    calls(&channel, "eyeballs", 3).await;
    let took = env.now() - start;
    assert_eq!(served(&[server], "sleep:done:eyeballs"), [3]);
    // Happy Eyeballs (gRFC A61): the second address starts 250 ms after the first, which
    // never answers; without it the call would wait out the 20 s connect timeout.
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    if env.memory.is_some() {
        assert!(took < Duration::from_millis(300), "{took:?}");
    }
    channel.close(None).await;
}

/// A policy whose picks panic.
struct PanickyPicks;

impl PolicyBuilder for PanickyPicks {
    fn name(&self) -> &str {
        "panicky"
    }
    fn build(&self, _args: PolicyArgs) -> Box<dyn Policy> {
        Box::new(PanickyPicks)
    }
}

impl Policy for PanickyPicks {
    fn resolver_update(&mut self, _: &PolicyUpdate<'_>, channel: &mut PolicyChannel<'_>) {
        channel.set_state(Connectivity::Ready, None);
    }
    fn resolver_error(&mut self, _: &Status, _: &mut PolicyChannel<'_>) {}
    fn subchannel_state(&mut self, _: &Subchannel, _: Connectivity, _: &mut PolicyChannel<'_>) {}
    fn pick(&mut self, _info: &PickInfo<'_>) -> PickResult {
        panic!("a bug in the policy");
    }
}

/// A resolver that panics when built.
struct PanickyResolver;

impl ResolverBuilder for PanickyResolver {
    fn scheme(&self) -> &str {
        "panicky"
    }
    fn build(&self, _: &TargetUri, _: ResolverHandle) -> Box<dyn Resolver> {
        panic!("a bug in the resolver");
    }
}

pub async fn a_panicking_policy_or_resolver_fails_the_calls_only(env: Env) {
    let server = env.start_server().await;
    let channel = env
        .channel_builder(server.port)
        .balancing_policy(PanickyPicks)
        .service_config(r#"{"loadBalancingConfig": [{"panicky": {}}]}"#)
        .expect("a registered policy")
        .build()
        .unwrap();
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    for _ in 0..2 {
        let err = sleep.call(Ping::text("p")).await.unwrap_err();
        assert_eq!(err.code(), Code::Internal, "{err}");
        assert!(err.details().contains("policy panicked"), "{err}");
    }
    let channel = Channel::builder("panicky:///x", env.runtime.clone())
        .resolver(PanickyResolver)
        .build()
        .unwrap();
    let err = channel
        .unary_unary::<Ping, Ping>(SLEEP)
        .call(Ping::text("r"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    assert!(err.details().contains("resolver panicked"), "{err}");
    // The server and other channels never noticed.
    let fine = env.channel(server.port);
    assert_eq!(
        fine.unary_unary::<Ping, Ping>(SLEEP)
            .call(Ping::text("ok"))
            .await
            .unwrap()
            .text,
        "ok"
    );
}

pub async fn a_resolvers_service_config_sets_the_method_configs(env: Env) {
    let server = env.start_server().await;
    let resolver = ManualResolver::new("fake");
    let channel = Channel::builder("fake:///configured", env.runtime.clone())
        .resolver(resolver.clone())
        .service_config(
            r#"{"methodConfig": [{"name": [{"service": "e2e.Test"}], "timeout": "10s"}]}"#,
        )
        .expect("a valid config")
        .build()
        .expect("a registered scheme");
    let address = || vec![Address::tcp(([127, 0, 0, 1], server.port).into())];
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let nap = |ms| Ping {
        sleep_ms: ms,
        ..Ping::text("nap")
    };
    // The resolver's config replaces the builder's: a 50 ms timeout for the service.
    let config = r#"{"methodConfig": [{"name": [{"service": "e2e.Test"}], "timeout": "0.05s"}]}"#;
    let mut update = ResolverUpdate::new(address());
    update.service_config = Some(ServiceConfig::parse(config));
    resolver.update(update);
    // Calls started once the channel resolved (not before: see the README) take it.
    assert_eq!(channel.channel_ready().await, Connectivity::Ready);
    let err = sleep.call(nap(1_000)).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    // An update without one goes back to the builder's 10 s.
    resolver.update(ResolverUpdate::new(address()));
    assert_eq!(sleep.call(nap(100)).await.unwrap().text, "nap");

    // Its retry policy and throttle apply too: three tokens stop a call after two attempts
    // where the policy allows four.
    let config = r#"{"retryThrottling": {"maxTokens": 3, "tokenRatio": 1},
        "methodConfig": [{"name": [{"service": "e2e.Test", "method": "Flaky"}],
          "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s", "maxBackoff": "0.05s",
                          "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
    let mut update = ResolverUpdate::new(address());
    update.service_config = Some(ServiceConfig::parse(config));
    resolver.update(update);
    let flaky = channel.unary_unary::<Ping, Ping>(FLAKY);
    let err = flaky
        .call(Ping {
            count: 9,
            ..Ping::text("throttled")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    let attempts = server.probe.after("flaky:throttled:");
    assert_eq!(
        attempts,
        ["-", "1"],
        "the resolver's throttle held the retries back"
    );
}
