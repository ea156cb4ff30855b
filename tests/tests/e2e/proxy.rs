//! An HTTP CONNECT proxy for the proxy cases, written on the [`Runtime`] API so that it runs
//! on every runtime (the memory one too): it records each request it is asked (the request
//! line and headers), then either tunnels to `127.0.0.1:<port>` whatever host the CONNECT
//! names (so `backend.test:<port>` reaches the test server without any DNS) or refuses with
//! a status line of the test's choice.

use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex};

use anygrpc::{RuntimeRef, Transport};
use futures_util::future::join;
use futures_util::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What the proxy answers to CONNECT.
#[derive(Debug, Clone, Copy)]
pub enum ProxyMode {
    /// `200 Connection established`, then relays bytes both ways.
    Tunnel,
    /// This status line (`407 Proxy Authentication Required`), then closes.
    Refuse(&'static str),
}

/// One request the proxy was asked.
#[derive(Debug, Clone)]
pub struct Asked {
    /// `CONNECT host:port HTTP/1.1`.
    pub line: String,
    /// The header lines, as sent (`Name: value`).
    pub headers: Vec<String>,
}

impl Asked {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// A running test proxy.
#[derive(Debug, Clone)]
pub struct TestProxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    asked: Arc<Mutex<Vec<Asked>>>,
}

impl TestProxy {
    /// Starts a proxy on `127.0.0.1:0` of `runtime`.
    pub async fn start(runtime: &RuntimeRef, mode: ProxyMode) -> Self {
        let mut listener = runtime
            .listen("127.0.0.1:0".parse().expect("an address"))
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("bound").port();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (rt, seen) = (runtime.clone(), asked.clone());
        runtime.spawn(Box::pin(async move {
            while let Ok(client) = poll_fn(|cx| listener.poll_accept(cx)).await {
                let (rt2, seen) = (rt.clone(), seen.clone());
                rt.spawn(Box::pin(async move {
                    let _ = serve(client, &rt2, mode, &seen).await;
                }));
            }
        }));
        Self { port, asked }
    }

    /// Every request asked so far, oldest first.
    pub fn asked(&self) -> Vec<Asked> {
        self.asked.lock().expect("not poisoned").clone()
    }

    /// `http://127.0.0.1:<port>`, with `userinfo@` if given.
    pub fn url(&self, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(userinfo) => format!("http://{userinfo}@127.0.0.1:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }
}

/// A lookup of environment variables from a fixed list, for `ChannelBuilder::proxy_env`.
pub fn env_of(
    vars: &[(&str, &str)],
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static + use<> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

async fn serve(
    mut client: Box<dyn Transport>,
    runtime: &RuntimeRef,
    mode: ProxyMode,
    seen: &Mutex<Vec<Asked>>,
) -> io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = client.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    };
    let leftover = head.split_off(end + 4);
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let line = lines.next().unwrap_or_default().to_string();
    let asked = Asked {
        line: line.clone(),
        headers: lines.map(str::to_string).collect(),
    };
    seen.lock().expect("not poisoned").push(asked);
    if let ProxyMode::Refuse(status) = mode {
        client
            .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
            .await?;
        client.close().await?;
        return Ok(());
    }
    let port = line
        .split(' ')
        .nth(1)
        .and_then(|target| target.rsplit_once(':'))
        .and_then(|(_, port)| port.parse::<u16>().ok());
    let backend = match port {
        Some(port) => runtime.connect(([127, 0, 0, 1], port).into()).await,
        None => Err(io::Error::other("no port")),
    };
    let mut backend = match backend {
        Ok(backend) => backend,
        Err(_) => {
            client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return client.close().await;
        }
    };
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    backend.write_all(&leftover).await?;
    let (client_read, client_write) = client.split();
    let (backend_read, backend_write) = backend.split();
    let _ = join(
        relay(client_read, backend_write),
        relay(backend_read, client_write),
    )
    .await;
    Ok(())
}

/// Copies `from` to `to` until EOF or an error, then closes `to`.
async fn relay(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.close().await;
}
