//! Stats handlers on a channel and a server: the events of every call kind (begin, heads,
//! each message with its sizes, end with its status), of compressed messages, of a call that
//! fails, and of connections opening and closing, on every executor over loopback. None of
//! them is told under a connection's driver, and a recorder that panics changes no call.

use std::sync::{Arc, Mutex};

use anygrpc::{
    CallEvent, CallInfo, CallStats, Channel, Code, ConnectionEvent, Encoding, Server, StatsHandler,
    StatsSide,
};
use anygrpc_examples::pb::routeguide::route_guide_client::RouteGuideClient;
use anygrpc_examples::pb::routeguide::route_guide_server::RouteGuideServer;
use anygrpc_examples::pb::routeguide::{Point, Rectangle, RouteNote};
use anygrpc_examples::{route, runtimes};
use futures_util::StreamExt;
use prost::Message as _;

/// Every event a handler was told, one line each, as `side method event`.
#[derive(Default, Clone)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: String) {
        let under = anygrpc::__private::under_a_driver();
        let mut lines = self.0.lock().unwrap();
        if under {
            lines.push(format!("UNDER A DRIVER: {line}"));
        }
        lines.push(line);
    }
    /// The events of the first call to `method` on `side`, its end included.
    fn first_call(&self, side: &str, method: &str) -> Vec<String> {
        let mut events = self.of(side, method);
        if let Some(end) = events.iter().position(|e| e.starts_with("ended")) {
            events.truncate(end + 1);
        }
        events
    }
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    /// The events of the calls to `method` on `side`, in order.
    fn of(&self, side: &str, method: &str) -> Vec<String> {
        let prefix = format!("{side} /routeguide.RouteGuide/{method} ");
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }
}

fn side(side: StatsSide) -> &'static str {
    match side {
        StatsSide::Client => "client",
        StatsSide::Server => "server",
    }
}

/// Records every call and connection into its log.
struct Recording(Log);

struct CallRecording {
    log: Log,
    prefix: String,
}

impl StatsHandler for Recording {
    fn call_started(&self, call: &CallInfo<'_>) -> Option<Box<dyn CallStats>> {
        let prefix = format!("{} {}", side(call.side), call.method);
        match call.side {
            StatsSide::Client => assert!(!call.target.is_empty() && call.peer.is_empty()),
            StatsSide::Server => assert!(call.target.is_empty() && !call.peer.is_empty()),
        }
        self.0.push(format!("{prefix} begin"));
        Some(Box::new(CallRecording {
            log: self.0.clone(),
            prefix,
        }))
    }

    fn connection(&self, event: &ConnectionEvent<'_>) {
        self.0.push(match event {
            ConnectionEvent::Opened { side: s, peer } => {
                assert!(!peer.is_empty());
                format!("{} connection opened", side(*s))
            }
            ConnectionEvent::Closed { side: s, .. } => format!("{} connection closed", side(*s)),
            _ => "connection ?".into(),
        });
    }
}

impl CallStats for CallRecording {
    fn record(&mut self, event: &CallEvent<'_>) {
        let what = match event {
            CallEvent::AttemptStarted { transparent_retry } => {
                format!("attempt retry={transparent_retry}")
            }
            CallEvent::HeadersSent { metadata } => {
                format!("headers-sent x-note={:?}", metadata.get("x-note"))
            }
            CallEvent::HeadersReceived { metadata } => {
                format!("headers-received x-note={:?}", metadata.get("x-note"))
            }
            CallEvent::MessageSent {
                size,
                wire_size,
                compressed,
            } => format!("sent {size} {wire_size} {compressed}"),
            CallEvent::MessageReceived {
                size,
                wire_size,
                compressed,
            } => {
                let size = size.map_or("?".to_string(), |s| s.to_string());
                format!("received {size} {wire_size} {compressed}")
            }
            CallEvent::Ended { status, .. } => format!("ended {}", status.code().as_str()),
            _ => "?".into(),
        };
        self.log.push(format!("{} {what}", self.prefix));
    }
}

/// A handler whose every recorder panics: the calls go on as if it were not there.
struct Panicking;

struct PanickingCall;

impl StatsHandler for Panicking {
    fn call_started(&self, _: &CallInfo<'_>) -> Option<Box<dyn CallStats>> {
        Some(Box::new(PanickingCall))
    }
    fn connection(&self, _: &ConnectionEvent<'_>) {
        panic!("a stats handler panics on a connection event");
    }
}

impl CallStats for PanickingCall {
    fn record(&mut self, _: &CallEvent<'_>) {
        panic!("a recorder panics");
    }
}

/// Keeps the panics this test provokes out of its output; any other is reported.
fn quiet_provoked_panics() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let provoked = info.payload().downcast_ref::<&str>().is_some_and(|m| {
            m.starts_with("a recorder panics") || m.starts_with("a stats handler panics")
        });
        if !provoked {
            report(info);
        }
    }));
}

#[test]
fn stats_handlers_see_every_call_kind_and_connection_on_every_runtime() {
    quiet_provoked_panics();
    for &name in runtimes::RUNTIMES {
        let (client_log, server_log) = (Log::default(), Log::default());
        let (c, s) = (client_log.clone(), server_log.clone());
        let first = route::features()[0].location.unwrap();
        runtimes::run(name, |rt| async move {
            let server = Server::new(rt.clone());
            server.add_service(RouteGuideServer::new(route::Guide::default()));
            server.add_stats_handler(Panicking);
            server.add_stats_handler(Recording(s));
            let port = server.add_insecure_port("127.0.0.1:0").await.unwrap();
            server.start();
            let target = format!("127.0.0.1:{port}");
            let channel = Channel::builder(&target, rt.clone())
                .stats_handler(Recording(c.clone()))
                .stats_handler(Panicking)
                .build()
                .unwrap();
            let client = RouteGuideClient::new(channel.clone());
            assert_eq!(client.get_feature(first).await.unwrap().name, "Ridge");
            let rect = route::three_features_area();
            let listed: Vec<_> = client.list_features(rect).collect().await;
            assert_eq!(listed.len(), 3);
            let summary = client
                .record_route_from(futures_util::stream::iter(vec![first, first]))
                .await
                .unwrap();
            assert_eq!(summary.point_count, 2);
            let mut chat = client.route_chat();
            for note in ["a", "b"] {
                chat.write(RouteNote {
                    location: Some(first),
                    message: note.into(),
                })
                .await
                .unwrap();
            }
            chat.done_writing().await.unwrap();
            assert_eq!(chat.collect::<Vec<_>>().await.len(), 1);
            channel.close(None).await;

            // Compressed requests, and a call that fails.
            let gzip = Channel::builder(&target, rt.clone())
                .compression(Encoding::Gzip)
                .stats_handler(Recording(c))
                .build()
                .unwrap();
            let long = Rectangle {
                lo: Some(Point::default()),
                hi: Some(Point::default()),
            };
            let mut none = RouteGuideClient::new(gzip.clone()).list_features(long);
            assert!(none.next().await.is_none());
            let err = RouteGuideClient::new(gzip.clone())
                .get_feature(Point {
                    latitude: i32::MAX,
                    longitude: 0,
                })
                .await;
            // The example guide answers any point (unnamed when unknown): a failing call
            // comes from a method the server does not have.
            assert!(err.is_ok(), "{name}: {err:?}");
            let missing = gzip
                .unary_unary::<Point, Point>("/routeguide.RouteGuide/Missing")
                .call(Point::default())
                .await
                .unwrap_err();
            assert_eq!(missing.code(), Code::Unimplemented);
            gzip.close(None).await;
            server.stop(None).await;
        })
        .unwrap();

        let all: Vec<String> = client_log
            .lines()
            .into_iter()
            .chain(server_log.lines())
            .collect();
        assert!(
            !all.iter().any(|l| l.starts_with("UNDER A DRIVER")),
            "{name}: a stats handler ran under a driver: {all:#?}"
        );

        let request = first.encoded_len();
        let response = route::features()[0].encoded_len();
        assert_eq!(
            client_log.first_call("client", "GetFeature")[..],
            [
                "begin".to_string(),
                "attempt retry=false".into(),
                "headers-sent x-note=None".into(),
                format!("sent {request} {request} false"),
                "headers-received x-note=None".into(),
                format!("received {response} {response} false"),
                "ended OK".into(),
            ],
            "{name}: the client's unary call"
        );
        assert_eq!(
            server_log.first_call("server", "GetFeature")[..],
            [
                "begin".to_string(),
                "headers-received x-note=None".into(),
                format!("received {request} {request} false"),
                "headers-sent x-note=None".into(),
                format!("sent {response} {response} false"),
                "ended OK".into(),
            ],
            "{name}: the server's unary call"
        );
        let count = |log: &Log, side: &str, method: &str, what: &str| {
            log.first_call(side, method)
                .iter()
                .filter(|l| l.starts_with(what))
                .count()
        };
        for (method, sent, received) in [
            ("ListFeatures", 1, 3),
            ("RecordRoute", 2, 1),
            ("RouteChat", 2, 1),
        ] {
            assert_eq!(
                (
                    count(&client_log, "client", method, "sent "),
                    count(&client_log, "client", method, "received ")
                ),
                (sent, received),
                "{name}: client {method}: {:?}",
                client_log.first_call("client", method)
            );
            assert_eq!(
                (
                    count(&server_log, "server", method, "received "),
                    count(&server_log, "server", method, "sent ")
                ),
                (sent, received),
                "{name}: server {method}: {:?}",
                server_log.first_call("server", method)
            );
            for (log, side) in [(&client_log, "client"), (&server_log, "server")] {
                let events = log.first_call(side, method);
                assert_eq!(events.first().map(String::as_str), Some("begin"));
                assert_eq!(
                    events.last().map(String::as_str),
                    Some("ended OK"),
                    "{name}: {side} {method}: {events:?}"
                );
            }
        }

        // Gzip: the request is compressed on the wire and the sizes say so.
        let gzipped: Vec<String> = client_log
            .of("client", "ListFeatures")
            .into_iter()
            .filter(|l| l.starts_with("sent ") && l.ends_with(" true"))
            .collect();
        assert_eq!(gzipped.len(), 1, "{name}: {gzipped:?}");
        let sizes: Vec<usize> = gzipped[0]
            .split(' ')
            .skip(1)
            .take(2)
            .map(|n| n.parse().unwrap())
            .collect();
        assert_ne!(
            sizes[0], sizes[1],
            "{name}: the wire size is the compressed one"
        );
        assert!(
            server_log
                .of("server", "ListFeatures")
                .iter()
                .any(|l| l.starts_with("received ") && l.ends_with(" true")),
            "{name}: the server received it compressed"
        );
        assert_eq!(
            client_log
                .of("client", "Missing")
                .last()
                .map(String::as_str),
            Some("ended UNIMPLEMENTED"),
            "{name}"
        );
        assert_eq!(
            server_log
                .of("server", "Missing")
                .last()
                .map(String::as_str),
            Some("ended UNIMPLEMENTED"),
            "{name}"
        );

        for (log, side) in [(&client_log, "client"), (&server_log, "server")] {
            let lines = log.lines();
            let opened = format!("{side} connection opened");
            let closed = format!("{side} connection closed");
            assert_eq!(
                lines.iter().filter(|l| **l == opened).count(),
                2,
                "{name}: two channels, two connections: {lines:#?}"
            );
            assert_eq!(
                lines.iter().filter(|l| **l == closed).count(),
                2,
                "{name}: both closed: {lines:#?}"
            );
        }
    }
}
