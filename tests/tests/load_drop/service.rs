//! The service the drop cases call (`drops.Test`): one method per call kind, each recording in
//! a [`Journal`] when it starts (with the connection it came on), what it received, and when
//! it saw its call cancelled.

use std::sync::Arc;

use anygrpc::__private as handlers;
use anygrpc::{
    BoxFuture, Config, RequestStream, ResponseSink, RuntimeRef, Server, ServerCall, Service,
    ServicerContext, Status,
};
use futures_util::future::{Either, select};

use super::journal::Journal;

/// The one message, both ways: a call's label and a sequence number.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Note {
    /// Names the call in journal events.
    #[prost(string, tag = "1")]
    pub label: String,
    /// The message's place in its stream.
    #[prost(uint32, tag = "2")]
    pub seq: u32,
    /// Filler, to make a message big.
    #[prost(bytes = "vec", tag = "3")]
    pub padding: Vec<u8>,
}

impl Note {
    /// A note `seq` of the call `label`.
    pub fn new(label: &str, seq: u32) -> Self {
        Self {
            label: label.to_string(),
            seq,
            padding: Vec::new(),
        }
    }
}

/// Answers at once (unary).
pub const ECHO: &str = "/drops.Test/Echo";
/// Answers once the test records `release`, or sees its call cancelled (unary).
pub const HOLD: &str = "/drops.Test/Hold";
/// Sends responses numbered from 0 for as long as the client reads them (server streaming):
/// flow control and the server's small send buffer keep it a few KiB ahead of the client.
pub const FEED: &str = "/drops.Test/Feed";
/// Records `got:<label>:<seq>` per request, answers the count (client streaming).
pub const COLLECT: &str = "/drops.Test/Collect";
/// Answers each request with the same note (bidi streaming).
pub const CHAT: &str = "/drops.Test/Chat";
/// Reads the first request, then no more: waits for the cancellation (client streaming). With
/// the server's small stream window, the client's writes soon wait for credit that never comes.
pub const STALL: &str = "/drops.Test/Stall";

/// A started server with the service.
#[derive(Debug)]
pub struct DropServer {
    pub server: Server,
    pub port: u16,
    /// What the handlers observed: `start:<label>@<peer>`, `got:<label>:<seq>`,
    /// `cancelled:<label>`, `done:<label>`.
    pub journal: Journal,
}

impl DropServer {
    /// Starts the service on a loopback port the system picks.
    pub async fn start(runtime: RuntimeRef) -> Self {
        Self::start_with(runtime, Config::server().max_concurrent_streams).await
    }

    /// Starts the service, letting a client open `max_streams` streams at once per connection.
    pub async fn start_with(runtime: RuntimeRef, max_streams: u32) -> Self {
        let journal = Journal::default();
        // A small send buffer: a server stream stays a few KiB ahead of its reader. A small
        // stream window: a client stream gets a few KiB ahead of the handler at most.
        let config = Config::server()
            .max_send_buffer(4 << 10)
            .initial_stream_window(4 << 10)
            .max_concurrent_streams(max_streams);
        let server = Server::with_config(runtime, config);
        server.add_service(DropService {
            journal: Arc::new(journal.clone()),
        });
        let port = server
            .add_insecure_port("127.0.0.1:0")
            .await
            .expect("bind the drop test server");
        server.start();
        Self {
            server,
            port,
            journal,
        }
    }
}

#[derive(Debug, Clone)]
struct DropService {
    journal: Arc<Journal>,
}

impl Service for DropService {
    fn name(&self) -> &'static str {
        "drops.Test"
    }

    fn call(&self, method: &str, call: ServerCall) -> Option<BoxFuture<'static, ()>> {
        let j = self.journal.clone();
        Some(match method {
            "Echo" => handlers::unary(call, j, echo),
            "Hold" => handlers::unary(call, j, hold),
            "Feed" => handlers::server_streaming(call, j, feed),
            "Collect" => handlers::client_streaming(call, j, collect),
            "Chat" => handlers::bidi_streaming(call, j, chat),
            "Stall" => handlers::client_streaming(call, j, stall),
            _ => return None,
        })
    }
}

fn started(journal: &Journal, label: &str, ctx: &ServicerContext) {
    journal.record(format!("start:{label}@{}", ctx.peer()));
}

/// Records the end of a call the client went away from, and returns its status.
fn cancelled(journal: &Journal, label: &str) -> Status {
    journal.record(format!("cancelled:{label}"));
    Status::cancelled("the client went away")
}

fn echo<'a>(
    journal: &'a Journal,
    request: Note,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Note, Status>> {
    Box::pin(async move {
        started(journal, &request.label, ctx);
        Ok(request)
    })
}

fn hold<'a>(
    journal: &'a Journal,
    request: Note,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Note, Status>> {
    Box::pin(async move {
        started(journal, &request.label, ctx);
        let release = std::pin::pin!(journal.wait_for("release"));
        let gone = std::pin::pin!(ctx.wait_cancelled());
        match select(release, gone).await {
            Either::Left(_) => {
                journal.record(format!("done:{}", request.label));
                Ok(request)
            }
            Either::Right(_) => Err(cancelled(journal, &request.label)),
        }
    })
}

fn feed<'a>(
    journal: &'a Journal,
    request: Note,
    ctx: &'a mut ServicerContext,
    mut responses: ResponseSink<Note>,
) -> BoxFuture<'a, Result<(), Status>> {
    Box::pin(async move {
        started(journal, &request.label, ctx);
        for seq in 0.. {
            if responses
                .send(Note::new(&request.label, seq))
                .await
                .is_err()
            {
                break;
            }
        }
        Err(cancelled(journal, &request.label))
    })
}

fn collect<'a>(
    journal: &'a Journal,
    mut requests: RequestStream<Note>,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Note, Status>> {
    Box::pin(async move {
        let mut label = None;
        let mut count = 0;
        while let Some(request) = requests.read().await {
            let Ok(note) = request else {
                return Err(cancelled(journal, label.as_deref().unwrap_or("?")));
            };
            if label.is_none() {
                started(journal, &note.label, ctx);
            }
            journal.record(format!("got:{}:{}", note.label, note.seq));
            label = Some(note.label);
            count += 1;
        }
        Ok(Note::new(label.as_deref().unwrap_or(""), count))
    })
}

fn chat<'a>(
    journal: &'a Journal,
    mut requests: RequestStream<Note>,
    ctx: &'a mut ServicerContext,
    mut responses: ResponseSink<Note>,
) -> BoxFuture<'a, Result<(), Status>> {
    Box::pin(async move {
        let mut label = None;
        while let Some(request) = requests.read().await {
            let Ok(note) = request else {
                return Err(cancelled(journal, label.as_deref().unwrap_or("?")));
            };
            if label.is_none() {
                started(journal, &note.label, ctx);
            }
            journal.record(format!("got:{}:{}", note.label, note.seq));
            let reply = note.clone();
            label = Some(note.label);
            if responses.send(reply).await.is_err() {
                return Err(cancelled(journal, label.as_deref().unwrap_or("?")));
            }
        }
        Ok(())
    })
}

fn stall<'a>(
    journal: &'a Journal,
    mut requests: RequestStream<Note>,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Note, Status>> {
    Box::pin(async move {
        let Some(Ok(first)) = requests.read().await else {
            return Err(cancelled(journal, "?"));
        };
        started(journal, &first.label, ctx);
        ctx.wait_cancelled().await;
        Err(cancelled(journal, &first.label))
    })
}
