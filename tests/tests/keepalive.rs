//! Keepalive over real sockets on every runtime: a loopback proxy that stops forwarding (a
//! frozen network) is detected by the client's keepalive PINGs, and the call in flight ends
//! with UNAVAILABLE.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anygrpc::{Channel, Code, Config, PingPolicy, Server, ServerCall};
use anygrpc_examples::runtimes;

/// A TCP proxy to `target` on a free loopback port; `frozen` stops it forwarding either way.
fn proxy(target: u16, frozen: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let frozen = frozen.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 << 10];
                    loop {
                        while frozen.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if frozen.load(Ordering::SeqCst) {
                                    // Frozen mid-read: the bytes are lost, like a dead link.
                                    continue;
                                }
                                if to.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        }
    });
    port
}

#[test]
fn keepalive_detects_a_frozen_network_on_every_runtime() {
    for &name in runtimes::RUNTIMES {
        runtimes::run(name, |rt| async move {
            let config = Config::server().ping_policy(Some(
                PingPolicy::default().min_interval(Duration::from_millis(100)),
            ));
            let server = Server::with_config(rt.clone(), config);
            server.add_generic_handler("/test.Hang/Forever", |mut call: ServerCall| {
                Box::pin(async move { while let Some(Ok(_)) = call.recv().await {} })
            });
            let port = server.add_insecure_port("127.0.0.1:0").await.unwrap();
            server.start();
            let frozen = Arc::new(AtomicBool::new(false));
            let via = proxy(port, frozen.clone());
            let channel = Channel::builder(format!("127.0.0.1:{via}"), rt.clone())
                .keepalive(Duration::from_millis(300), Duration::from_millis(500))
                .build()
                .unwrap();
            let method = channel.stream_stream::<String, String>("/test.Hang/Forever");
            let mut call = method.call();
            call.write("hello".to_string()).await.unwrap();
            // Healthy for a while: several keepalive rounds pass.
            let mut sleep = rt.sleep_until(rt.now() + Duration::from_millis(1200));
            std::future::poll_fn(|cx| sleep.as_mut().poll(cx)).await;
            assert!(!call.done(), "{name}: a healthy link survives keepalive");
            frozen.store(true, Ordering::SeqCst);
            let started = Instant::now();
            let status = call.status().await;
            assert_eq!(status.code(), Code::Unavailable, "{name}: {status}");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{name}: detected in {:?}",
                started.elapsed()
            );
            server.stop(None).await;
        })
        .unwrap();
    }
}
