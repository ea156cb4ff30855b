//! `event_loop [--port=N]`: a Greeter server on a hand-written `polling` loop, no executor.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

fn main() -> std::io::Result<()> {
    let port = std::env::args()
        .find_map(|a| {
            a.strip_prefix("--port=")
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(50051);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("event-loop greeter on {}", listener.local_addr()?);
    anygrpc_examples::event_loop::serve(listener, Arc::new(AtomicBool::new(false)))
}
