//! Every status code both ways a handler can end a call, and cancellation from either side.

use anygrpc::{Code, WriteError};

use crate::e2e::Env;
use crate::e2e::service::{CHAT, COUNT, Ping, STATUS};

/// The 17 codes of the gRPC spec.
fn all_codes() -> Vec<Code> {
    let codes: Vec<Code> = (0..=16).map(Code::from_i32).collect();
    for (i, code) in codes.iter().enumerate() {
        assert_eq!(code.as_i32(), i as i32, "Code::from_i32 covers 0..=16");
    }
    codes
}

/// Details with characters that must be percent-encoded on the wire.
fn details_for(code: Code) -> String {
    format!("{code:?} détails 100% \"quoted\"\ttab")
}

async fn every_status_code(env: Env, via_context: bool) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let method = channel.unary_unary::<Ping, Ping>(STATUS);
    for code in all_codes() {
        let details = details_for(code);
        let request = Ping {
            count: code.as_i32() as u32,
            text: details.clone(),
            via_context,
            ..Ping::default()
        };
        let mut call = method.call(request);
        let result = (&mut call).await;
        let code_str = code.as_i32().to_string();
        match result {
            Ok(reply) => {
                assert_eq!(code, Code::Ok, "only OK carries a response");
                assert_eq!(reply.text, "body");
            }
            Err(err) => {
                assert_eq!(err.code(), code);
                assert_eq!(err.details(), details);
                assert_eq!(
                    err.trailing_metadata().get("x-code"),
                    Some(code_str.as_str())
                );
            }
        }
        // The Call object says the same after the fact.
        assert_eq!(call.code().await, code);
        if code != Code::Ok || via_context {
            assert_eq!(call.details().await, details, "{code:?}");
        }
        assert_eq!(
            call.trailing_metadata().await.get("x-code"),
            Some(code_str.as_str())
        );
    }
}

pub async fn every_status_code_from_handler_error(env: Env) {
    every_status_code(env, false).await;
}

pub async fn every_status_code_from_context(env: Env) {
    every_status_code(env, true).await;
}

pub async fn client_cancels_server_stream(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let count = channel.unary_stream::<Ping, Ping>(COUNT);
    let mut call = count.call(Ping::default());
    for i in 0..3 {
        assert_eq!(call.read().await.unwrap().unwrap().count, i);
    }
    srv.probe.wait_for("count:waiting").await;
    assert!(!call.done());
    assert!(call.cancel());
    assert!(!call.cancel(), "only the first cancel counts");
    assert!(call.cancelled());
    assert!(call.done());
    assert_eq!(call.code().await, Code::Cancelled);
    // Reading a cancelled call ends with its status.
    let mut last = None;
    while let Some(item) = call.read().await {
        last = Some(item);
    }
    assert_eq!(last.unwrap().unwrap_err().code(), Code::Cancelled);
    // The server's wait_cancelled() completed and cancelled() is true; sending fails.
    srv.probe.wait_for("count:cancelled:true").await;
    srv.probe.wait_for("count:late_send_failed:true").await;
}

pub async fn client_cancels_bidi(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let chat = channel.stream_stream::<Ping, Ping>(CHAT);
    let mut call = chat.call();
    call.write(Ping::text("x")).await.unwrap();
    assert_eq!(call.read().await.unwrap().unwrap().text, "pong:x");
    assert!(call.cancel());
    assert_eq!(call.code().await, Code::Cancelled);
    // The handler, blocked in read(), gets the cancellation.
    srv.probe.wait_for("chat:cancelled:Cancelled:true").await;
    match call.write(Ping::text("y")).await {
        Err(WriteError::Rpc(err)) => assert_eq!(err.code(), Code::Cancelled),
        other => panic!("write after cancel: {other:?}"),
    }
}

pub async fn server_ends_calls_early(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let chat = channel.stream_stream::<Ping, Ping>(CHAT);
    let mut call = chat.call();
    call.write(Ping::text("a")).await.unwrap();
    assert_eq!(call.read().await.unwrap().unwrap().text, "pong:a");
    call.write(Ping::text("abort")).await.unwrap();
    let err = call.read().await.unwrap().unwrap_err();
    assert_eq!((err.code(), err.details()), (Code::Aborted, "enough"));
    assert!(call.read().await.is_none());
    assert_eq!(call.code().await, Code::Aborted);
    assert!(!call.cancelled());
    // The client may still want to write: it learns the call is over.
    match call.write(Ping::text("b")).await {
        Err(WriteError::Rpc(err)) => assert_eq!(err.code(), Code::Aborted),
        other => panic!("write after the server ended the call: {other:?}"),
    }
    // A server stream cut short: the responses sent, then the error.
    let count = channel.unary_stream::<Ping, Ping>(COUNT);
    let mut call = count.call(Ping {
        count: 2,
        text: "cut".into(),
        ..Ping::default()
    });
    assert_eq!(call.read().await.unwrap().unwrap().count, 0);
    assert_eq!(call.read().await.unwrap().unwrap().count, 1);
    let err = call.read().await.unwrap().unwrap_err();
    assert_eq!((err.code(), err.details()), (Code::DataLoss, "cut short"));
    assert!(call.read().await.is_none());
}

/// `Ping` as a client that disagrees about field 2 would see it: a string where the server
/// sends a number, so a response with `count` set does not decode.
#[derive(Clone, PartialEq, prost::Message)]
struct Disagreeing {
    #[prost(string, tag = "2")]
    count: String,
}

/// A response the client cannot decode ends the call INTERNAL, once: the read that met it
/// and the Call object agree, and the server sees the call cancelled.
pub async fn an_undecodable_response_ends_the_call_internal(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let mut call = channel.unary_stream::<Ping, Disagreeing>(COUNT).call(Ping {
        count: 3,
        ..Ping::default()
    });
    // Response 0 has no field set (proto3 omits zero), response 1 has `count` = 1.
    let first = call.read().await.expect("a first response");
    assert_eq!(first.expect("decodes").count, "");
    let error = call
        .read()
        .await
        .expect("a second response")
        .expect_err("does not decode");
    assert_eq!(error.code(), Code::Internal, "{error:?}");
    assert_eq!(call.code().await, Code::Internal, "the call agrees");
    assert_eq!(call.details().await, error.details());
    assert!(call.read().await.is_none(), "nothing after the error");
    // The channel serves the next call.
    let count = channel.unary_stream::<Ping, Ping>(COUNT);
    let mut again = count.call(Ping {
        count: 1,
        ..Ping::default()
    });
    assert!(again.read().await.expect("one").is_ok());
}
