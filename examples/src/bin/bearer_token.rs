//! Bearer tokens, three ways on the client and one check on the server, on smol:
//!
//! - [`BearerToken`]: fixed call credentials, `authorization: Bearer <token>` on every call;
//! - `Refreshing`: async [`CallCredentials`] that fetch a token when the cached one expired;
//! - `StaleTokenFixer`: a [`UnaryUnaryClientInterceptor`] that adds the header itself and
//!   fetches a new token when the server answers UNAUTHENTICATED;
//! - `RequireToken`: a [`ServerInterceptor`] that refuses calls without a valid token
//!   (UNAUTHENTICATED) and tells the handler who called, through the call's extensions.
//!
//! ```sh
//! cargo run -p anygrpc-examples --bin bearer_token
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anygrpc_examples::pb::helloworld::greeter_client::GreeterClient;
use anygrpc_examples::pb::helloworld::greeter_server::{Greeter, GreeterServer};
use anygrpc_examples::pb::helloworld::{HelloReply, HelloRequest};
use anygrpc_smol as grpc;
use grpc::{
    AnyMsg, AuthMetadataContext, BearerToken, BoxFuture, CallCredentials, CallOptions, Channel,
    ClientCallDetails, Code, Metadata, ServerCallDetails, ServerInterceptor, ServerNext, Status,
    UnaryOutcome, UnaryUnaryClientInterceptor, UnaryUnaryContinuation,
};

// ---- The server side.

/// Who the token belongs to: what the interceptor learned, for the handler.
struct Caller(String);

/// The token check. A real one would verify a JWT's signature, or ask the issuer.
fn caller_of(token: &str) -> Option<String> {
    match token {
        "ada-secret" => Some("ada".into()),
        "bob-fresh" => Some("bob".into()),
        _ => token
            .strip_prefix("carol-session-")
            .map(|_| "carol".to_string()),
    }
}

/// Lets through only calls with a valid `authorization: Bearer` token.
struct RequireToken;

impl ServerInterceptor for RequireToken {
    fn intercept(&self, mut call: ServerCallDetails, next: ServerNext) -> BoxFuture<'_, Status> {
        Box::pin(async move {
            let caller = call
                .metadata
                .get("authorization")
                .and_then(|value| value.strip_prefix("Bearer "))
                .and_then(caller_of);
            let Some(caller) = caller else {
                // Not running `next`: the handler never sees the call.
                return Status::unauthenticated("missing or invalid bearer token");
            };
            // The handler does not need the secret itself.
            call.metadata.remove("authorization");
            call.extensions.insert(Caller(caller));
            next.run(call).await
        })
    }
}

struct Greetings;

impl Greeter for Greetings {
    async fn say_hello(
        &self,
        request: HelloRequest,
        context: &mut grpc::ServicerContext,
    ) -> Result<HelloReply, grpc::Status> {
        // Set by `RequireToken`, which runs before every handler of this server.
        let Some(Caller(caller)) = context.extensions().get::<Caller>() else {
            return Err(Status::internal("no caller: is the interceptor installed?"));
        };
        Ok(HelloReply {
            message: format!("Hello, {}! (token of {caller})", request.name),
        })
    }
}

// ---- The client side.

/// Locks `mutex`. A poisoned lock only means that another call panicked while holding it; the
/// token inside is still good, so go on with it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Async call credentials: a cached token, fetched again from the "issuer" once it expired
/// (here: after two calls, so that the example shows a refresh).
#[derive(Default)]
struct Refreshing {
    cached: Mutex<Option<(String, u32)>>, // the token, and how many calls it has left
    fetched: AtomicU32,
}

impl Refreshing {
    /// What a real provider does over the network (an OAuth token endpoint, a metadata
    /// server): awaiting here blocks nothing else.
    async fn fetch_token(&self) -> String {
        smol::Timer::after(Duration::from_millis(1)).await;
        let n = self.fetched.fetch_add(1, Ordering::Relaxed) + 1;
        format!("carol-session-{n}")
    }
}

impl CallCredentials for Refreshing {
    fn metadata(&self, context: &AuthMetadataContext) -> BoxFuture<'_, Result<Metadata, Status>> {
        println!("  credentials asked for {}", context.method);
        Box::pin(async move {
            // Never hold a std lock across an `.await`: take the token out, fetch, put back.
            // (Two calls at once may then both fetch; a real provider would share one fetch.)
            let cached = lock(&self.cached).take().filter(|(_, uses)| *uses > 0);
            let (token, uses) = match cached {
                Some(cached) => cached,
                None => {
                    let token = self.fetch_token().await;
                    println!("  fetched a new token: {token}");
                    (token, 2)
                }
            };
            let mut metadata = Metadata::new();
            metadata
                .insert("authorization", &format!("Bearer {token}"))
                .map_err(|e| Status::internal(format!("bad token: {e}")))?;
            *lock(&self.cached) = Some((token, uses - 1));
            Ok(metadata)
        })
    }
}

/// An interceptor that sends its own token and, when the server says UNAUTHENTICATED, gets
/// a fresh one for the next call.
struct StaleTokenFixer {
    token: Mutex<String>,
}

impl UnaryUnaryClientInterceptor for StaleTokenFixer {
    fn intercept_unary_unary(
        &self,
        next: UnaryUnaryContinuation,
        mut details: ClientCallDetails,
        request: AnyMsg,
    ) -> BoxFuture<'_, UnaryOutcome> {
        Box::pin(async move {
            let token = lock(&self.token).clone();
            if let Err(e) = details
                .metadata
                .insert("authorization", &format!("Bearer {token}"))
            {
                return UnaryOutcome::error(Status::internal(format!("bad token: {e}")));
            }
            let outcome = next.call(details, request).await;
            if let Err(status) = &outcome.result
                && status.code() == Code::Unauthenticated
            {
                println!("  interceptor: {token:?} was refused, fetching a new one");
                *lock(&self.token) = "bob-fresh".into();
            }
            outcome
        })
    }
}

fn main() -> ExitCode {
    match smol::block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bearer_token: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One call, printed as the example goes.
async fn greet(client: &GreeterClient, name: &str, options: CallOptions) -> grpc::Result<()> {
    match client
        .say_hello_with(HelloRequest { name: name.into() }, options)
        .await
    {
        Ok(reply) => println!("{name}: {}", reply.message),
        Err(err) if err.code() == Code::Unauthenticated => {
            println!(
                "{name}: refused, {} ({})",
                err.code().as_str(),
                err.details()
            )
        }
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

async fn run() -> grpc::Result<()> {
    let server = grpc::server();
    server.add_interceptor(RequireToken);
    server.add_service(GreeterServer::new(Greetings));
    let port = server.add_insecure_port("127.0.0.1:0").await?;
    server.start();
    let target = format!("127.0.0.1:{port}");

    // Call credentials are sent only over TLS, unless the channel allows cleartext: fine on
    // loopback for an example, never across a network (see the `tls` example for TLS).
    let plain = |target: &str| {
        Channel::builder(target, grpc::runtime()).allow_insecure_call_credentials(true)
    };

    // No token at all: the server's interceptor refuses the call.
    let anonymous = GreeterClient::new(grpc::insecure_channel(&target)?);
    greet(&anonymous, "no token", CallOptions::new()).await?;

    // 1. A fixed token for every call of a channel.
    let channel = plain(&target)
        .call_credentials(BearerToken::new("ada-secret"))
        .build()?;
    let ada = GreeterClient::new(channel);
    greet(&ada, "fixed token", CallOptions::new()).await?;
    // Credentials can also be given per call; these override the channel's.
    let wrong = CallOptions::new().credentials(BearerToken::new("guessed"));
    greet(&ada, "wrong token", wrong).await?;

    // 2. Async credentials that refresh their token.
    let channel = plain(&target)
        .call_credentials(Refreshing::default())
        .build()?;
    let carol = GreeterClient::new(channel);
    for i in 1..=3 {
        greet(&carol, &format!("refreshing #{i}"), CallOptions::new()).await?;
    }

    // 3. An interceptor that owns the header, starting with an expired token.
    let fixer = StaleTokenFixer {
        token: Mutex::new("bob-expired".into()),
    };
    let channel = plain(&target).unary_unary_interceptor(fixer).build()?;
    let bob = GreeterClient::new(channel);
    greet(&bob, "interceptor #1", CallOptions::new()).await?;
    greet(&bob, "interceptor #2", CallOptions::new()).await?;

    server.stop(None).await;
    Ok(())
}
