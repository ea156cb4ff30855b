//! TLS end to end over loopback on smol, async-std and tokio: custom roots, mutual TLS with
//! the client's identity seen by the handler, `server_host_override`, and the failures (each
//! ends with UNAVAILABLE naming the TLS error, within a bounded time).

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the e2e suite's proxy, shared by path"
)]
#[path = "e2e/proxy.rs"]
mod proxy;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use anygrpc::BoxFuture;
use anygrpc::{
    CallOptions, Channel, ChannelCredentials, Code, RpcError, RuntimeRef, Server,
    ServerCallDetails, ServerCredentials, ServerInterceptor, ServerNext, ServicerContext, Status,
};
use anygrpc_examples::runtimes::{RUNTIMES, run};
use tls::certs::{CLIENT_IDENTITY, Identity, TestPki};

const WHO: &str = "/anygrpc.tls.Test/Who";

/// The handler's view of the call: security type, identities and `:authority`.
fn who<'a>(
    _: &'a (),
    _request: String,
    context: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<String, Status>> {
    let security = context
        .auth_context()
        .map_or("none", |auth| auth.transport_security_type);
    let identities = context.peer_identities().map(|ids| ids.join(","));
    let chain = context
        .auth_context()
        .map_or(0, |auth| auth.peer_certificate_chain.len());
    let mut reply = format!(
        "{security}|{}|{}",
        identities.as_deref().unwrap_or("unauthenticated"),
        context.authority().unwrap_or("")
    );
    if chain > 0 {
        // The certificates the client presented (its leaf; the CA is not sent).
        reply.push_str(&format!("|certs:{chain}"));
    }
    Box::pin(async move { Ok(reply) })
}

async fn serve(runtime: &RuntimeRef, credentials: Option<ServerCredentials>) -> (Server, u16) {
    let server = Server::new(runtime.clone());
    server.add_generic_handler(WHO, |call| {
        anygrpc::__private::unary(call, Arc::new(()), who)
    });
    let port = match credentials {
        Some(credentials) => server.add_secure_port("127.0.0.1:0", credentials).await,
        None => server.add_insecure_port("127.0.0.1:0").await,
    }
    .expect("bind");
    server.start();
    (server, port)
}

fn server_credentials(
    identity: &Identity,
    client_ca: Option<&str>,
    require: bool,
) -> ServerCredentials {
    ServerCredentials::ssl(
        identity.key.as_bytes(),
        identity.cert.as_bytes(),
        client_ca.map(str::as_bytes),
        require,
    )
    .expect("server credentials")
}

fn client_credentials(pki: &TestPki, client: Option<&Identity>) -> ChannelCredentials {
    ChannelCredentials::ssl(
        Some(pki.ca.as_bytes()),
        client.map(|c| c.key.as_bytes()),
        client.map(|c| c.cert.as_bytes()),
    )
    .expect("channel credentials")
}

/// One `Who` call, bounded so that a hang fails the test instead of stalling it.
async fn call(channel: &Channel) -> Result<String, RpcError> {
    let options = CallOptions::new().timeout(Duration::from_secs(20));
    channel
        .unary_unary::<String, String>(WHO)
        .call_with(String::new(), options)
        .await
}

fn channel(
    runtime: &RuntimeRef,
    target: String,
    credentials: Option<ChannelCredentials>,
    host_override: Option<&str>,
) -> Channel {
    let mut builder = Channel::builder(target, runtime.clone());
    if let Some(credentials) = credentials {
        builder = builder.credentials(credentials);
    }
    if let Some(name) = host_override {
        builder = builder.server_host_override(name);
    }
    builder.build().expect("target")
}

/// Runs `case` on every executor.
fn on_every_runtime(case: impl Fn(RuntimeRef, TestPki) -> BoxFuture<'static, ()>) {
    let pki = TestPki::new();
    for name in RUNTIMES {
        eprintln!("runtime {name}");
        run(name, |runtime| case(runtime, pki.clone())).expect("runtime");
    }
}

#[test]
fn unary_over_tls_with_custom_roots() {
    on_every_runtime(|runtime, pki| {
        Box::pin(async move {
            let (server, port) =
                serve(&runtime, Some(server_credentials(&pki.server, None, false))).await;
            let creds = client_credentials(&pki, None);
            let channel = channel(&runtime, format!("localhost:{port}"), Some(creds), None);
            let reply = call(&channel).await.expect("TLS call");
            assert_eq!(reply, format!("ssl|unauthenticated|localhost:{port}"));
            // The same port refuses nothing on a second connection either.
            let again = self::channel(
                &runtime,
                format!("127.0.0.1:{port}"),
                Some(client_credentials(&pki, None)),
                None,
            );
            assert!(call(&again).await.is_ok());
            server.stop(None).await;
        })
    });
}

#[test]
fn tls_runs_inside_an_http_connect_tunnel_with_the_targets_name() {
    on_every_runtime(|runtime, pki| {
        Box::pin(async move {
            let (server, port) =
                serve(&runtime, Some(server_credentials(&pki.server, None, false))).await;
            let tunnel = proxy::TestProxy::start(&runtime, proxy::ProxyMode::Tunnel).await;
            let channel = Channel::builder(format!("localhost:{port}"), runtime.clone())
                .credentials(client_credentials(&pki, None))
                .proxy_env(proxy::env_of(&[("https_proxy", &tunnel.url(None))]))
                .build()
                .expect("target");
            // The certificate names `localhost`: verified through the tunnel.
            let reply = call(&channel).await.expect("TLS through the proxy");
            assert_eq!(reply, format!("ssl|unauthenticated|localhost:{port}"));
            let asked = tunnel.asked();
            assert_eq!(asked.len(), 1, "{asked:?}");
            assert_eq!(asked[0].line, format!("CONNECT localhost:{port} HTTP/1.1"));
            server.stop(None).await;
        })
    });
}

#[test]
fn mutual_tls_shows_the_client_identity_to_the_handler() {
    on_every_runtime(|runtime, pki| {
        Box::pin(async move {
            let creds = server_credentials(&pki.server, Some(&pki.ca), true);
            let (server, port) = serve(&runtime, Some(creds)).await;
            let channel = channel(
                &runtime,
                format!("127.0.0.1:{port}"),
                Some(client_credentials(&pki, Some(&pki.client))),
                None,
            );
            let reply = call(&channel).await.expect("mTLS call");
            assert_eq!(
                reply,
                format!("ssl|{CLIENT_IDENTITY}|127.0.0.1:{port}|certs:1")
            );
            server.stop(None).await;
        })
    });
}

/// Lets through only clients whose certificate names [`CLIENT_IDENTITY`], as a server
/// interceptor reads it from the call's auth context.
struct RequireClient;

impl ServerInterceptor for RequireClient {
    fn intercept(&self, call: ServerCallDetails, next: ServerNext) -> BoxFuture<'_, Status> {
        let known = call.auth_context.as_ref().is_some_and(|auth| {
            auth.peer_identities.iter().any(|id| id == CLIENT_IDENTITY)
                && !auth.peer_certificate_chain.is_empty()
        });
        if !known {
            return Box::pin(std::future::ready(Status::new(
                Code::PermissionDenied,
                "who are you?",
            )));
        }
        next.run(call)
    }
}

#[test]
fn a_server_interceptor_authorizes_by_the_client_certificate() {
    on_every_runtime(|runtime, pki| {
        Box::pin(async move {
            // Client certificates asked for but optional: the interceptor decides.
            let creds = server_credentials(&pki.server, Some(&pki.ca), false);
            let (server, port) = serve(&runtime, Some(creds)).await;
            server.add_interceptor(RequireClient);
            let target = format!("127.0.0.1:{port}");
            let with_cert = channel(
                &runtime,
                target.clone(),
                Some(client_credentials(&pki, Some(&pki.client))),
                None,
            );
            assert!(call(&with_cert).await.is_ok());
            let without = channel(&runtime, target, Some(client_credentials(&pki, None)), None);
            let err = call(&without).await.expect_err("refused");
            assert_eq!(err.code(), Code::PermissionDenied, "{err}");
            server.stop(None).await;
        })
    });
}

#[test]
fn optional_client_auth_accepts_clients_without_a_certificate() {
    on_every_runtime(|runtime, pki| {
        Box::pin(async move {
            let creds = server_credentials(&pki.server, Some(&pki.ca), false);
            let (server, port) = serve(&runtime, Some(creds)).await;
            let target = format!("127.0.0.1:{port}");
            let anonymous = channel(
                &runtime,
                target.clone(),
                Some(client_credentials(&pki, None)),
                None,
            );
            assert!(
                call(&anonymous)
                    .await
                    .expect("anonymous")
                    .starts_with("ssl|unauthenticated|")
            );
            let known = channel(
                &runtime,
                target,
                Some(client_credentials(&pki, Some(&pki.client))),
                None,
            );
            assert!(
                call(&known)
                    .await
                    .expect("known")
                    .starts_with(&format!("ssl|{CLIENT_IDENTITY}|"))
            );
            server.stop(None).await;
        })
    });
}

#[test]
fn server_host_override_sets_the_verified_name_and_the_authority() {
    on_every_runtime(|runtime, pki| {
        Box::pin(async move {
            let (server, port) =
                serve(&runtime, Some(server_credentials(&pki.server, None, false))).await;
            let channel = channel(
                &runtime,
                format!("127.0.0.1:{port}"),
                Some(client_credentials(&pki, None)),
                Some("foo.test.google.fr"),
            );
            let reply = call(&channel).await.expect("overridden call");
            assert_eq!(reply, "ssl|unauthenticated|foo.test.google.fr");
            server.stop(None).await;
        })
    });
}

/// Expects the call to fail with UNAVAILABLE and details containing every one of `words`.
async fn expect_unavailable(channel: &Channel, words: &[&str]) {
    let error = call(channel).await.expect_err("the call must fail");
    eprintln!("failed as expected: {}", error.details());
    assert_eq!(
        error.code(),
        Code::Unavailable,
        "details: {}",
        error.details()
    );
    for word in words {
        assert!(
            error.details().contains(word),
            "{word:?} not in {:?}",
            error.details()
        );
    }
}

#[test]
fn an_unknown_certificate_authority_is_unavailable() {
    on_every_runtime(|runtime, pki| {
        Box::pin(async move {
            let (server, port) = serve(
                &runtime,
                Some(server_credentials(&pki.untrusted_server, None, false)),
            )
            .await;
            let channel = channel(
                &runtime,
                format!("localhost:{port}"),
                Some(client_credentials(&pki, None)),
                None,
            );
            expect_unavailable(&channel, &["TLS handshake", "UnknownIssuer"]).await;
            server.stop(None).await;
        })
    });
}

#[test]
fn a_wrong_host_name_is_unavailable() {
    on_every_runtime(|runtime, pki| {
        Box::pin(async move {
            let (server, port) =
                serve(&runtime, Some(server_credentials(&pki.server, None, false))).await;
            let channel = channel(
                &runtime,
                format!("127.0.0.1:{port}"),
                Some(client_credentials(&pki, None)),
                Some("wrong.example.com"),
            );
            expect_unavailable(
                &channel,
                &["TLS handshake", "wrong.example.com", "not valid for name"],
            )
            .await;
            server.stop(None).await;
        })
    });
}

#[test]
fn an_expired_certificate_is_unavailable() {
    on_every_runtime(|runtime, pki| {
        Box::pin(async move {
            let (server, port) = serve(
                &runtime,
                Some(server_credentials(&pki.expired_server, None, false)),
            )
            .await;
            let channel = channel(
                &runtime,
                format!("localhost:{port}"),
                Some(client_credentials(&pki, None)),
                None,
            );
            expect_unavailable(&channel, &["TLS handshake", "expired"]).await;
            server.stop(None).await;
        })
    });
}

#[test]
fn a_missing_required_client_certificate_is_unavailable() {
    on_every_runtime(|runtime, pki| {
        Box::pin(async move {
            let creds = server_credentials(&pki.server, Some(&pki.ca), true);
            let (server, port) = serve(&runtime, Some(creds)).await;
            let channel = channel(
                &runtime,
                format!("localhost:{port}"),
                Some(client_credentials(&pki, None)),
                None,
            );
            expect_unavailable(&channel, &["CertificateRequired"]).await;
            server.stop(None).await;
        })
    });
}

#[test]
fn a_cleartext_client_on_a_tls_port_is_unavailable() {
    on_every_runtime(|runtime, pki| {
        Box::pin(async move {
            let (server, port) =
                serve(&runtime, Some(server_credentials(&pki.server, None, false))).await;
            let channel = channel(&runtime, format!("localhost:{port}"), None, None);
            expect_unavailable(&channel, &[]).await;
            server.stop(None).await;
        })
    });
}

#[test]
fn a_tls_client_on_a_cleartext_port_is_unavailable() {
    on_every_runtime(|runtime, pki| {
        Box::pin(async move {
            let (server, port) = serve(&runtime, None).await;
            let channel = channel(
                &runtime,
                format!("localhost:{port}"),
                Some(client_credentials(&pki, None)),
                None,
            );
            expect_unavailable(&channel, &["TLS handshake"]).await;
            server.stop(None).await;
        })
    });
}

#[test]
fn credentials_refuse_bad_pem() {
    let pki = TestPki::new();
    let bad = ChannelCredentials::ssl(Some(b"not pem"), None, None).unwrap_err();
    assert!(bad.to_string().contains("root certificates"), "{bad}");
    let half = ChannelCredentials::ssl(
        Some(pki.ca.as_bytes()),
        Some(pki.client.key.as_bytes()),
        None,
    );
    assert!(half.is_err());
    let no_roots = ServerCredentials::ssl(
        pki.server.key.as_bytes(),
        pki.server.cert.as_bytes(),
        None,
        true,
    );
    assert!(no_roots.is_err());
    let mismatched = ServerCredentials::ssl(
        pki.client.key.as_bytes(),
        pki.server.cert.as_bytes(),
        None,
        false,
    );
    assert!(mismatched.is_err());
}
