//! Message cardinality: a method that takes one request, and a call that expects one response,
//! end INTERNAL on none or several, through the real client and server.

use anygrpc::Code;

use crate::e2e::Env;
use crate::e2e::service::{CHAT, COUNT, ECHO, Ping, SLEEP};

/// The client drives each method as another kind to break its cardinality: a client-streaming
/// call to the unary Sleep sends it zero or two requests, which its handler never sees; a
/// unary call to the server-streaming Count gets two responses; a client-streaming call to the
/// bidi Chat gets none (no request) or two. Each ends INTERNAL, the Call object agrees, and the
/// channel serves the next call.
pub async fn single_message_calls_end_internal_on_zero_or_two(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    for requests in [0, 2] {
        let mut call = channel.stream_unary::<Ping, Ping>(SLEEP).call();
        for i in 0..requests {
            call.write(Ping::text(format!("sleeper {i}")))
                .await
                .expect("the server reads on");
        }
        call.done_writing().await.expect("half-close");
        let error = (&mut call)
            .await
            .expect_err("a unary method given a wrong number of requests");
        assert_eq!(
            error.code(),
            Code::Internal,
            "{requests} requests: {error:?}"
        );
        assert_eq!(call.code().await, Code::Internal);
    }
    let seen = srv.probe.events();
    assert!(
        !seen.iter().any(|e| e.starts_with("sleep:")),
        "no Sleep handler ran: {seen:?}"
    );

    let count = channel.unary_unary::<Ping, Ping>(COUNT);
    let one = Ping {
        count: 1,
        ..Ping::default()
    };
    assert_eq!(count.call(&one).await.expect("one response").count, 0);
    let two = Ping {
        count: 2,
        ..Ping::default()
    };
    let mut call = count.call(two);
    let error = (&mut call).await.expect_err("two responses");
    assert_eq!(error.code(), Code::Internal, "{error:?}");
    assert_eq!(call.code().await, Code::Internal);

    let chat = channel.stream_unary::<Ping, Ping>(CHAT);
    for (requests, expected) in [(0, Code::Internal), (1, Code::Ok), (2, Code::Internal)] {
        let mut call = chat.call();
        for i in 0..requests {
            call.write(Ping::text(i.to_string()))
                .await
                .expect("the server reads on");
        }
        call.done_writing().await.expect("half-close");
        let code = match (&mut call).await {
            Ok(reply) => {
                assert_eq!(reply.text, "pong:0");
                Code::Ok
            }
            Err(error) => error.code(),
        };
        assert_eq!(code, expected, "{requests} chat requests");
        assert_eq!(call.code().await, expected);
    }

    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let reply = echo.call(Ping::text("still there")).await;
    assert_eq!(reply.expect("a fresh call").text, "still there");
    channel.close(None).await;
    srv.server.stop(None).await;
}
