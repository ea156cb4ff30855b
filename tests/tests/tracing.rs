//! What anygrpc tells `tracing`, captured by a subscriber of the test's own: the spans of a
//! failing call on both sides (OpenTelemetry's RPC fields and the status code), and the
//! events of a refused TLS handshake (the client's channel, the server's connection), on
//! every executor over loopback.

mod tls;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anygrpc::{CallOptions, Channel, ChannelCredentials, Code, Server, ServerCredentials, Status};
use anygrpc_examples::runtimes::{RUNTIMES, run};
use tls::certs::TestPki;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as the capture saw it: its name and every field recorded on it.
#[derive(Debug, Clone, Default)]
struct SpanSeen {
    name: &'static str,
    fields: BTreeMap<String, String>,
}

/// An event: its level, its fields (`message` among them) and its span's name and fields.
#[derive(Debug, Clone)]
struct EventSeen {
    level: tracing::Level,
    fields: BTreeMap<String, String>,
    span: Option<SpanSeen>,
}

#[derive(Debug, Default)]
struct Seen {
    spans: BTreeMap<u64, SpanSeen>,
    events: Vec<EventSeen>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

/// The layer that keeps everything it sees.
struct Capture(Arc<Mutex<Seen>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut span = SpanSeen {
            name: attrs.metadata().name(),
            fields: BTreeMap::new(),
        };
        attrs.record(&mut Fields(&mut span.fields));
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .spans
            .insert(id.into_u64(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(span) = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .spans
            .get_mut(&id.into_u64())
        {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let span = ctx
            .event_span(event)
            .and_then(|span| seen.spans.get(&span.id().into_u64()).cloned());
        seen.events.push(EventSeen {
            level: *event.metadata().level(),
            fields,
            span,
        });
    }
}

/// The capture, installed once for the whole test binary (the executors' threads log too).
fn seen() -> &'static Arc<Mutex<Seen>> {
    static SEEN: OnceLock<Arc<Mutex<Seen>>> = OnceLock::new();
    SEEN.get_or_init(|| {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let subscriber = tracing_subscriber::registry().with(Capture(seen.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        seen
    })
}

fn field<'a>(fields: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    fields.get(name).map_or("", String::as_str)
}

#[test]
fn a_failing_call_has_a_span_on_each_side_with_its_status_code() {
    let seen = seen();
    for name in RUNTIMES {
        let service = format!("trace.{}", name.replace('-', "_"));
        // A method path the channel keeps for the life of its callable (once per executor).
        let path: &'static str = Box::leak(format!("/{service}/Fails").into_boxed_str());
        run(name, |runtime| {
            Box::pin(async move {
                let server = Server::new(runtime.clone());
                server.add_generic_handler(path, |call| {
                    Box::pin(async move {
                        tracing::info!("the handler runs");
                        call.finish(Status::not_found("nothing here"), Default::default());
                    })
                });
                let port = server.add_insecure_port("127.0.0.1:0").await.expect("bind");
                server.start();
                let channel = Channel::builder(format!("127.0.0.1:{port}"), runtime.clone())
                    .build()
                    .expect("target");
                let err = channel
                    .unary_unary::<String, String>(path)
                    .call_with(
                        String::new(),
                        CallOptions::new().timeout(Duration::from_secs(20)),
                    )
                    .await
                    .unwrap_err();
                assert_eq!(err.code(), Code::NotFound, "{err}");
                server.stop(None).await;
            })
        })
        .expect("runtime");
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        for side in ["client", "server"] {
            let span = seen
                .spans
                .values()
                .find(|s| {
                    s.name == format!("grpc.{side}.call")
                        && field(&s.fields, "rpc.service") == service
                })
                .unwrap_or_else(|| panic!("{name}: no {side} span among {:?}", seen.spans));
            assert_eq!(field(&span.fields, "rpc.system"), "grpc", "{name} {side}");
            assert_eq!(field(&span.fields, "rpc.method"), "Fails", "{name} {side}");
            assert_eq!(
                field(&span.fields, "otel.name"),
                &path[1..],
                "{name} {side}"
            );
            assert_eq!(
                field(&span.fields, "rpc.grpc.status_code"),
                "5",
                "{name} {side}: NOT_FOUND recorded"
            );
        }
        let ended = seen.events.iter().find(|e| {
            field(&e.fields, "details") == "nothing here"
                && e.span
                    .as_ref()
                    .is_some_and(|s| s.name == "grpc.client.call")
        });
        assert!(
            ended.is_some(),
            "{name}: the client said why its call failed"
        );
        let in_handler = seen.events.iter().find(|e| {
            field(&e.fields, "message") == "the handler runs"
                && e.span
                    .as_ref()
                    .is_some_and(|s| field(&s.fields, "rpc.service") == service)
        });
        assert!(
            in_handler.is_some(),
            "{name}: the handler's log is in its call's span"
        );
    }
}

#[test]
fn a_refused_tls_handshake_is_told_on_both_sides() {
    let seen = seen();
    let pki = TestPki::new();
    for name in RUNTIMES {
        let pki = pki.clone();
        let before = server_handshake_failures();
        let port = run(name, |runtime| {
            Box::pin(async move {
                let server = Server::new(runtime.clone());
                let credentials = ServerCredentials::ssl(
                    pki.untrusted_server.key.as_bytes(),
                    pki.untrusted_server.cert.as_bytes(),
                    None,
                    false,
                )
                .expect("server credentials");
                let port = server
                    .add_secure_port("127.0.0.1:0", credentials)
                    .await
                    .expect("bind");
                server.start();
                let trusting_only_the_test_ca =
                    ChannelCredentials::ssl(Some(pki.ca.as_bytes()), None, None)
                        .expect("channel credentials");
                let channel = Channel::builder(format!("localhost:{port}"), runtime.clone())
                    .credentials(trusting_only_the_test_ca)
                    .build()
                    .expect("target");
                let err = channel
                    .unary_unary::<String, String>("/trace.Tls/Refused")
                    .call_with(
                        String::new(),
                        CallOptions::new().timeout(Duration::from_secs(20)),
                    )
                    .await
                    .unwrap_err();
                assert_eq!(err.code(), Code::Unavailable, "{err}");
                // The server's side of the handshake ends a moment later.
                let mut waited = Duration::ZERO;
                while waited < Duration::from_secs(10) && server_handshake_failures() == before {
                    let step = Duration::from_millis(20);
                    runtime.sleep_until(runtime.now() + step).await;
                    waited += step;
                }
                server.stop(None).await;
                port
            })
        })
        .expect("runtime");
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        // The client's handshake runs before its connection exists: its channel tells.
        let client = seen.events.iter().find(|e| {
            e.level == tracing::Level::WARN
                && field(&e.fields, "error").contains("UnknownIssuer")
                && field(&e.fields, "target_address") == format!("localhost:{port}")
        });
        assert!(
            client.is_some(),
            "{name}: the client told why: {:?}",
            seen.events
        );
        drop(seen);
        assert!(
            server_handshake_failures() > before,
            "{name}: the server told of the failed handshake"
        );
    }
}

/// How many server connections said so far that their TLS handshake failed.
fn server_handshake_failures() -> usize {
    let seen = seen().lock().unwrap_or_else(|p| p.into_inner());
    seen.events
        .iter()
        .filter(|e| {
            e.level == tracing::Level::WARN
                && field(&e.fields, "message") == "the connection failed"
                && field(&e.fields, "error").contains("TLS")
                && e.span.as_ref().is_some_and(|s| {
                    s.name == "grpc.connection" && field(&s.fields, "side") == "server"
                })
        })
        .count()
}
