//! What anygrpc expects of every [`Runtime`]: one set of checks, run by each adapter's tests on
//! its own executor and by [`MemoryRuntime`](super::MemoryRuntime)'s.
//!
//! Each check panics with the broken expectation. Real runtimes use loopback sockets only.

use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_util::future::{Either, join, select};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};

use crate::pipe::grpc_peer;
use crate::runtime::{RuntimeRef, accept};

/// Bytes the client sends in [`check_sockets`]: more than an in-memory pipe holds, so that
/// back-pressure is exercised.
const BULK: usize = 300 * 1024;

/// How long one check may take in [`runtime_conformance`] before it fails instead of hanging.
const CHECK_LIMIT: Duration = Duration::from_secs(30);

/// Runs every check below in turn, each failing after 30 s (of the runtime's own clock) rather
/// than hanging.
pub async fn runtime_conformance(rt: RuntimeRef) {
    within(&rt, "check_sockets", check_sockets(&rt)).await;
    within(&rt, "check_timers", check_timers(&rt)).await;
    within(&rt, "check_spawn", check_spawn(&rt)).await;
    within(&rt, "check_resolve", check_resolve(&rt)).await;
    within(&rt, "check_refused", check_refused(&rt)).await;
    #[cfg(unix)]
    within(&rt, "check_unix_sockets", check_unix_sockets(&rt)).await;
}

/// Listen on a Unix socket path (replacing a stale socket file left there), report it as
/// the listener's endpoint, connect, talk both ways, name peers as gRPC does (`unix:<path>`
/// on the client, `unix:` for the unnamed client on the server); a second listener on the
/// live path is `AddrInUse`; dropping the listener removes its file and refuses connections.
/// A runtime whose sockets are not files (the in-memory one) passes the same checks.
#[cfg(unix)]
pub async fn check_unix_sockets(rt: &RuntimeRef) {
    use crate::runtime::Endpoint;
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("anygrpc-conf-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let path = dir.join("s.sock");
    let path_text = path.to_str().expect("a UTF-8 temp path").to_string();
    use std::os::unix::fs::MetadataExt;
    let inode = |path: &std::path::Path| std::fs::symlink_metadata(path).ok().map(|m| m.ino());
    // A socket nobody listens on any more.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("a stale socket"));
    let stale = inode(&path);
    let mut listener = rt
        .listen_unix(path_text.clone())
        .await
        .expect("listen on a unix path with a stale socket file");
    // A runtime with real sockets replaced the stale file by its own.
    let on_disk = inode(&path).is_some_and(|now| Some(now) != stale);
    assert_eq!(
        listener.local_endpoint().expect("the listener's endpoint"),
        Endpoint::Unix(path_text.clone())
    );
    let server = async {
        let mut conn = accept(&mut *listener)
            .await
            .expect("accept on the unix socket");
        let mut hello = [0; 5];
        conn.read_exact(&mut hello).await.expect("server reads");
        conn.write_all(conn.peer().as_bytes())
            .await
            .expect("server replies with the peer it saw");
        conn.close().await.expect("server closes");
    };
    let client = async {
        let mut conn = rt
            .connect_unix(path_text.clone())
            .await
            .expect("connect to the unix socket");
        assert_eq!(
            conn.peer(),
            format!("unix:{path_text}"),
            "the client's peer"
        );
        conn.write_all(b"hello").await.expect("client writes");
        let mut seen = String::new();
        conn.read_to_string(&mut seen).await.expect("client reads");
        seen
    };
    let ((), seen) = join(server, client).await;
    assert_eq!(seen, "unix:", "the server sees an unnamed client");
    // Checking that the path is live connects to it: after the exchange, not before.
    let second = rt.listen_unix(path_text.clone()).await;
    assert_eq!(
        second.map(|_| ()).expect_err("the path is live").kind(),
        io::ErrorKind::AddrInUse
    );
    drop(listener);
    if on_disk {
        assert!(!path.exists(), "the listener removed its socket file");
    }
    let refused = rt.connect_unix(path_text).await;
    assert!(refused.is_err(), "nothing listens after the drop");
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(&dir);
}

async fn within(rt: &RuntimeRef, name: &str, check: impl Future<Output = ()>) {
    let limit = rt.sleep_until(rt.now() + CHECK_LIMIT);
    if let Either::Right(((), _)) = select(pin!(check), limit).await {
        panic!("{name} did not finish within {CHECK_LIMIT:?}");
    }
}

/// A value handed from one task to another (a minimal oneshot channel).
struct Slot<T> {
    state: Mutex<(Option<T>, Option<Waker>)>,
}

impl<T> Slot<T> {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new((None, None)),
        })
    }

    fn put(&self, value: T) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.0 = Some(value);
            state.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    async fn take(&self) -> T {
        poll_fn(|cx| {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            match state.0.take() {
                Some(v) => Poll::Ready(v),
                None => {
                    state.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

/// Listen on 127.0.0.1:0 and get the bound port; connect; echo a greeting; send more than a
/// socket buffer one way while the server counts it; half-close; read the server's reply (the
/// count and the peer name it saw) and then EOF; peer names in gRPC form on both sides.
pub async fn check_sockets(rt: &RuntimeRef) {
    let mut listener = rt
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("listen on 127.0.0.1:0");
    let addr = listener.local_addr().expect("listener local_addr");
    assert_eq!(addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST), "bound address");
    assert_ne!(addr.port(), 0, "port 0 must be replaced by the bound port");
    let pattern = || (0..=250u8).cycle().take(BULK);

    let server = async {
        let mut conn = accept(&mut *listener).await.expect("accept");
        let peer = conn.peer();
        let mut hello = [0; 5];
        conn.read_exact(&mut hello)
            .await
            .expect("server reads the greeting");
        conn.write_all(&hello).await.expect("server echoes");
        conn.flush().await.expect("server flushes");
        let mut expected = pattern();
        let (mut total, mut intact) = (0, true);
        let mut buf = vec![0; 16 * 1024];
        loop {
            let n = conn.read(&mut buf).await.expect("server reads the bulk");
            if n == 0 {
                break;
            }
            total += n;
            intact &= buf[..n].iter().all(|&b| expected.next() == Some(b));
        }
        conn.write_all(format!("{total} {intact} {peer}").as_bytes())
            .await
            .expect("server replies");
        conn.close().await.expect("server closes");
    };

    let client = async {
        let mut conn = rt.connect(addr).await.expect("connect to the listener");
        assert_eq!(conn.peer(), grpc_peer(addr), "client-side peer()");
        conn.write_all(b"hello").await.expect("client writes");
        conn.flush().await.expect("client flushes");
        let mut echo = [0; 5];
        conn.read_exact(&mut echo)
            .await
            .expect("client reads the echo");
        assert_eq!(&echo, b"hello");
        let bulk: Vec<u8> = pattern().collect();
        conn.write_all(&bulk).await.expect("client writes the bulk");
        conn.close().await.expect("client half-closes");
        let mut reply = String::new();
        conn.read_to_string(&mut reply)
            .await
            .expect("client reads the reply up to EOF");
        assert_eq!(
            conn.read(&mut [0; 8]).await.expect("read after EOF"),
            0,
            "EOF stays EOF"
        );
        reply
    };

    let ((), reply) = join(server, client).await;
    let mut words = reply.split(' ');
    assert_eq!(
        words.next(),
        Some(BULK.to_string().as_str()),
        "bytes the server received: {reply}"
    );
    assert_eq!(
        words.next(),
        Some("true"),
        "the bulk arrived intact and in order: {reply}"
    );
    let server_saw = words.next().unwrap_or_default();
    assert!(
        server_saw.starts_with("ipv4:127.0.0.1:"),
        "server-side peer(): {server_saw}"
    );
    assert_ne!(server_saw, grpc_peer(addr), "the client's port is its own");
}

/// Two timers complete in deadline order, not creation order, and not early; a deadline in
/// the past completes at once.
pub async fn check_timers(rt: &RuntimeRef) {
    let start = rt.now();
    let order = Arc::new(Mutex::new(Vec::new()));
    let done = [Slot::new(), Slot::new()];
    for (i, ms) in [(1, 60), (0, 20)] {
        let sleep = rt.sleep_until(start + Duration::from_millis(ms));
        let (order, done, rt2) = (Arc::clone(&order), Arc::clone(&done[i]), Arc::clone(rt));
        rt.spawn(Box::pin(async move {
            sleep.await;
            order
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((i, rt2.now().saturating_duration_since(start)));
            done.put(());
        }));
    }
    done[0].take().await;
    done[1].take().await;
    let order = order.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(
        order.iter().map(|&(i, _)| i).collect::<Vec<_>>(),
        vec![0, 1],
        "timers fire in deadline order"
    );
    assert!(
        order[0].1 >= Duration::from_millis(20),
        "first timer fired early: {order:?}"
    );
    assert!(
        order[1].1 >= Duration::from_millis(60),
        "second timer fired early: {order:?}"
    );
    rt.sleep_until(start).await;
}

/// A spawned task runs, and can itself spawn.
pub async fn check_spawn(rt: &RuntimeRef) {
    let slot = Slot::new();
    let (inner_slot, rt2) = (Arc::clone(&slot), Arc::clone(rt));
    rt.spawn(Box::pin(async move {
        let value = 40;
        rt2.spawn(Box::pin(async move { inner_slot.put(value + 2) }));
    }));
    assert_eq!(slot.take().await, 42, "the nested task ran");
}

/// `localhost` resolves to 127.0.0.1 or ::1, with the port asked for.
pub async fn check_resolve(rt: &RuntimeRef) {
    let addrs = rt
        .resolve(String::from("localhost"), 8080)
        .await
        .expect("resolve localhost");
    assert!(addrs.iter().all(|a| a.port() == 8080), "ports: {addrs:?}");
    let loopback = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    assert!(
        addrs.iter().any(|a| loopback.contains(&a.ip())),
        "localhost resolved to {addrs:?}"
    );
}

/// Connecting to a port nobody listens on (any more) fails with `ConnectionRefused`.
pub async fn check_refused(rt: &RuntimeRef) {
    let listener = rt
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("listen on 127.0.0.1:0");
    let addr = listener.local_addr().expect("listener local_addr");
    drop(listener);
    match rt.connect(addr).await {
        Ok(_) => panic!("connected to {addr}, which nobody listens on"),
        Err(e) => assert_eq!(
            e.kind(),
            io::ErrorKind::ConnectionRefused,
            "connect to a closed port: {e}"
        ),
    }
}
