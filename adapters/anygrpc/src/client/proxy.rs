//! HTTP CONNECT proxies (gRFC A1): which proxy a channel uses (the `grpc_proxy`,
//! `https_proxy`, `http_proxy` environment variables, in that order, each lowercase then
//! uppercase as C-core reads them; `no_grpc_proxy` / `no_proxy` exempt hosts), and the
//! tunnel: a `CONNECT host:port` request to the proxy, whose 2xx answer leaves a byte stream
//! to the target. TLS, when the channel has credentials, runs inside the tunnel with the
//! target's name.
//!
//! For a `dns` target the client does not resolve the target's name: it resolves the
//! proxy's, and the CONNECT names the target's host and port as written (the proxy may be
//! the only one that can resolve it). For targets whose addresses are literal or come from
//! another resolver, each connection's CONNECT names the address it was given.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};

use super::connector::{ConnectRequest, Connector, SharedConnector, dial};
use super::resolver::{Address, Endpoint, TargetUri};
use super::target::Target;
use crate::runtime::{BoxFuture, RuntimeRef, Transport};

/// The variables naming the proxy, first set (and not empty) wins.
const PROXY_VARIABLES: [&str; 6] = [
    "grpc_proxy",
    "GRPC_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
];
/// The variables listing hosts reached without the proxy, first set wins.
const NO_PROXY_VARIABLES: [&str; 4] = ["no_grpc_proxy", "NO_GRPC_PROXY", "no_proxy", "NO_PROXY"];

/// The most bytes of a proxy's answer to CONNECT read before giving up on it.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Header lines of a proxy's answer parsed at most.
const MAX_RESPONSE_HEADERS: usize = 64;

/// An HTTP proxy that tunnels a channel's connections with `CONNECT` (gRFC A1), from a URL
/// like `http://user:password@proxy.corp:3128` (the scheme may be left out; the port
/// defaults to 80). Credentials in the URL go to the proxy as `Proxy-Authorization: Basic`.
///
/// ```
/// use anygrpc::HttpProxy;
///
/// let proxy = HttpProxy::parse("http://alice:s%40cret@proxy.corp:3128").unwrap();
/// assert_eq!((proxy.host(), proxy.port()), ("proxy.corp", 3128));
/// assert!(proxy.has_credentials());
/// assert!(HttpProxy::parse("socks5://proxy.corp:1080").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct HttpProxy {
    host: String,
    port: u16,
    /// The `Proxy-Authorization` value (`Basic <base64 of user:password>`), if the URL has
    /// credentials.
    authorization: Option<String>,
}

impl fmt::Debug for HttpProxy {
    /// Never prints the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.authorization.is_some())
            .finish()
    }
}

/// A proxy URL that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError(String);

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid HTTP proxy: {}", self.0)
    }
}

impl std::error::Error for ProxyError {}

impl HttpProxy {
    /// Parses a proxy URL: `[http://][user[:password]@]host[:port][/]`, the user and
    /// password percent-encoded. Only `http` proxies exist in gRPC (the tunnel itself carries
    /// TLS when the channel has credentials).
    pub fn parse(url: &str) -> Result<Self, ProxyError> {
        let fail = |why: &str| ProxyError(format!("{:?}: {why}", redact(url)));
        let url = url.trim();
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(fail(&format!(
                    "the {scheme:?} scheme is not supported (only http)"
                )));
            }
            None => url,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| fail("bad host or port"))?;
        if host.is_empty() || host.contains([' ', ',']) {
            return Err(fail("no host"));
        }
        let authorization = userinfo.map(|userinfo| {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
            let mut credentials = decode(user);
            credentials.push(b':');
            credentials.extend(decode(password));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            )
        });
        Ok(Self {
            host: host.to_string(),
            port: port.unwrap_or(80),
            authorization,
        })
    }

    /// The proxy's host (a name or an IP literal, without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the URL had credentials (sent as `Proxy-Authorization: Basic`).
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }

    /// `host:port`, bracketing an IPv6 host.
    fn host_port(&self) -> String {
        host_port(&self.host, self.port)
    }

    /// Where the proxy is: its literal address, or its name resolved by `runtime`.
    async fn resolve(&self, runtime: &RuntimeRef) -> io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        runtime.resolve(self.host.clone(), self.port).await
    }
}

/// The URL without its credentials, for errors.
fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((before, after)) => {
            let scheme = before.split_once("://").map_or("", |(s, _)| s);
            if scheme.is_empty() {
                format!("***@{after}")
            } else {
                format!("{scheme}://***@{after}")
            }
        }
        None => url.to_string(),
    }
}

/// `host:port`, `host`, `[v6]:port`, `[v6]` (port `None` when absent).
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(bracketed) = s.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port.parse().ok()?))),
        // A bare IPv6 address.
        Some(_) => s.parse::<IpAddr>().ok().map(|_| (s, None)),
        None => Some((s, None)),
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The hosts reached without the proxy: a `no_proxy` list (`*`, host names that also match
/// their subdomains, `.domain` suffixes, IP addresses, CIDR blocks, each optionally with
/// `:port`), as curl, Go and C-core read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NoProxy {
    entries: Vec<NoProxyEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxyEntry {
    Everything,
    /// A CIDR block (an IP address is a block of its full length).
    Block(IpAddr, u8),
    /// A host name and its subdomains, optionally on one port only.
    Domain(String, Option<u16>),
}

impl NoProxy {
    /// Parses a comma-separated list; entries it cannot read are skipped.
    pub(crate) fn parse(list: &str) -> Self {
        let entries = list
            .split(',')
            .map(|entry| entry.trim().to_ascii_lowercase())
            .filter(|entry| !entry.is_empty())
            .filter_map(|entry| {
                if entry == "*" {
                    return Some(NoProxyEntry::Everything);
                }
                if let Some((ip, bits)) = entry.split_once('/') {
                    let ip: IpAddr = ip.parse().ok()?;
                    let bits: u8 = bits.parse().ok()?;
                    let most = if ip.is_ipv4() { 32 } else { 128 };
                    return (bits <= most).then_some(NoProxyEntry::Block(ip, bits));
                }
                let (host, port) = split_host_port(&entry)?;
                let host = host.trim_start_matches("*.").trim_start_matches('.');
                if let Ok(ip) = host.parse::<IpAddr>() {
                    let bits = if ip.is_ipv4() { 32 } else { 128 };
                    return Some(NoProxyEntry::Block(ip, bits));
                }
                (!host.is_empty()).then(|| NoProxyEntry::Domain(host.to_string(), port))
            })
            .collect();
        Self { entries }
    }

    /// Whether `host` (a name or an IP literal) on `port` is reached without the proxy.
    pub(crate) fn exempts(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|entry| match entry {
            NoProxyEntry::Everything => true,
            NoProxyEntry::Block(net, bits) => ip.is_some_and(|ip| in_block(ip, *net, *bits)),
            NoProxyEntry::Domain(domain, only_port) => {
                let name_matches = host == *domain
                    || host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|head| head.ends_with('.'));
                name_matches && only_port.is_none_or(|p| p == port)
            }
        })
    }
}

/// Whether `ip` lies in `net/bits` (an IPv4-mapped IPv6 address counts as IPv4).
fn in_block(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Reads one environment variable by name.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where a channel reads its proxy settings: the process environment unless a test or the
/// application gives a lookup of its own.
#[derive(Clone, Default)]
pub(crate) struct ProxyEnv(Option<Arc<Lookup>>);

impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProxyEnv(custom)"
        } else {
            "ProxyEnv(process)"
        })
    }
}

impl ProxyEnv {
    pub(crate) fn custom(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(lookup)))
    }

    /// The first of `names` that is set and not empty, with its name.
    fn first(&self, names: &[&'static str]) -> Option<(&'static str, String)> {
        names.iter().find_map(|&name| {
            let value = match &self.0 {
                Some(lookup) => lookup(name),
                None => std::env::var(name).ok(),
            }?;
            let value = value.trim().to_string();
            (!value.is_empty()).then_some((name, value))
        })
    }

    /// The proxy the environment names (an unusable URL is an error naming its variable),
    /// and its exemptions.
    pub(crate) fn proxy(&self) -> Result<Option<(HttpProxy, NoProxy)>, String> {
        let Some((name, url)) = self.first(&PROXY_VARIABLES) else {
            return Ok(None);
        };
        let proxy = HttpProxy::parse(&url).map_err(|e| format!("{name}: {e}"))?;
        let no_proxy = self
            .first(&NO_PROXY_VARIABLES)
            .map(|(_, list)| NoProxy::parse(&list))
            .unwrap_or_default();
        Ok(Some((proxy, no_proxy)))
    }
}

/// A channel's proxy options (see `ChannelBuilder::enable_http_proxy`).
#[derive(Debug, Clone)]
pub(crate) struct ProxySetting {
    pub(crate) enabled: bool,
    /// A proxy given to the builder, used for every TCP connection.
    pub(crate) explicit: Option<HttpProxy>,
    pub(crate) env: ProxyEnv,
}

impl Default for ProxySetting {
    fn default() -> Self {
        Self {
            enabled: true,
            explicit: None,
            env: ProxyEnv::default(),
        }
    }
}

/// The host and port a target names before resolution, for the built-in schemes that name
/// one (`dns`, `ipv4`, `ipv6`; the first address of a list).
pub(crate) fn target_host(uri: &TargetUri) -> Option<String> {
    match parsed_target(uri)? {
        Target::Dns { host, port } => Some(host_port(&host, port)),
        Target::Addresses(addrs) => addrs.first().map(ToString::to_string),
        Target::Unix(_) => None,
    }
}

fn parsed_target(uri: &TargetUri) -> Option<Target> {
    match uri.scheme.as_str() {
        "dns" => Target::parse(&format!("dns:///{}", uri.endpoint)).ok(),
        "ipv4" | "ipv6" | "unix" => Target::parse(uri.as_str()).ok(),
        _ => None,
    }
}

/// How a channel to `uri` connects, under its proxy `setting` and the application's
/// `connector`: the target its resolver resolves (the proxy's name, for a proxied `dns`
/// target) and the connector that opens its connections.
pub(crate) fn plan(
    uri: TargetUri,
    setting: &ProxySetting,
    connector: Option<SharedConnector>,
) -> (TargetUri, Option<SharedConnector>) {
    let chosen = if !setting.enabled {
        None
    } else if let Some(proxy) = &setting.explicit {
        Some((Ok(proxy.clone()), NoProxy::default()))
    } else if connector.is_some() {
        None
    } else {
        match setting.env.proxy() {
            Ok(found) => found.map(|(proxy, no_proxy)| (Ok(proxy), no_proxy)),
            Err(why) => Some((Err(why), NoProxy::default())),
        }
    };
    let Some((proxy, no_proxy)) = chosen else {
        return (uri, connector);
    };
    let tunnel_to = match parsed_target(&uri) {
        Some(Target::Unix(_)) => return (uri, connector),
        Some(Target::Dns { host, port }) if uri.scheme == "dns" => {
            if no_proxy.exempts(&host, port) {
                return (uri, connector);
            }
            TunnelTo::Target(host_port(&host, port))
        }
        _ => TunnelTo::EachAddress(no_proxy),
    };
    // A proxied name is not resolved here: the proxy's is, by the same resolver.
    let uri = match (&tunnel_to, &proxy) {
        (TunnelTo::Target(_), Ok(proxy)) => {
            TargetUri::parse(&format!("dns:///{}", proxy.host_port())).unwrap_or(uri)
        }
        _ => uri,
    };
    let connector = ProxyConnector {
        proxy,
        tunnel_to,
        inner: connector,
    };
    (uri, Some(SharedConnector(Arc::new(connector))))
}

/// What a proxied channel's CONNECT names.
#[derive(Debug, Clone)]
pub(crate) enum TunnelTo {
    /// The target's `host:port`: the channel resolves the proxy's name, and every address
    /// it dials is the proxy's.
    Target(String),
    /// The address each connection is given (unless `no_proxy` exempts it): the proxy is
    /// resolved at each connection.
    EachAddress(NoProxy),
}

/// The connector of a channel whose connections go through an HTTP CONNECT proxy.
pub(crate) struct ProxyConnector {
    pub(crate) proxy: Result<HttpProxy, String>,
    pub(crate) tunnel_to: TunnelTo,
    /// Dials the proxy (or an exempt address) in place of the runtime.
    pub(crate) inner: Option<SharedConnector>,
}

impl ProxyConnector {
    fn dial(
        &self,
        request: ConnectRequest,
        address: Address,
    ) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        match &self.inner {
            Some(inner) => inner.0.connect(ConnectRequest { address, ..request }),
            None => dial(&request.runtime, &address.endpoint),
        }
    }
}

impl Connector for ProxyConnector {
    fn connect(
        &self,
        request: ConnectRequest,
    ) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        let proxy = match &self.proxy {
            Ok(proxy) => proxy.clone(),
            Err(why) => {
                let error = io::Error::new(io::ErrorKind::InvalidInput, why.clone());
                return Box::pin(std::future::ready(Err(error)));
            }
        };
        match &self.tunnel_to {
            TunnelTo::Target(target) => {
                let target = target.clone();
                let dialled = self.dial(request.clone(), request.address.clone());
                Box::pin(async move { tunnel(dialled.await?, &proxy, &target).await })
            }
            TunnelTo::EachAddress(no_proxy) => {
                let backend = match &request.address.endpoint {
                    Endpoint::Tcp(addr)
                        if !no_proxy.exempts(&addr.ip().to_string(), addr.port()) =>
                    {
                        *addr
                    }
                    _ => return self.dial(request.clone(), request.address),
                };
                let inner = self.inner.clone();
                Box::pin(async move {
                    let runtime = request.runtime.clone();
                    let mut last = None;
                    for addr in proxy.resolve(&runtime).await? {
                        let address = Address {
                            endpoint: Endpoint::Tcp(addr),
                            attributes: request.address.attributes.clone(),
                        };
                        let dialled = match &inner {
                            Some(inner) => inner.0.connect(ConnectRequest {
                                address,
                                ..request.clone()
                            }),
                            None => dial(&runtime, &address.endpoint),
                        };
                        match dialled.await {
                            Ok(io) => return tunnel(io, &proxy, &backend.to_string()).await,
                            Err(e) => last = Some(e),
                        }
                    }
                    Err(last.unwrap_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("the proxy {} resolved to no address", proxy.host_port()),
                        )
                    }))
                })
            }
        }
    }
}

/// Asks the proxy on `io` for a tunnel to `target` (`host:port`); on a 2xx answer, the
/// tunnel. Any other answer is a `ConnectionRefused` error quoting the proxy's status line.
pub(crate) async fn tunnel(
    mut io: Box<dyn Transport>,
    proxy: &HttpProxy,
    target: &str,
) -> io::Result<Box<dyn Transport>> {
    let mut request = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: anygrpc/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(authorization) = &proxy.authorization {
        request.push_str("Proxy-Authorization: ");
        request.push_str(authorization);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    io.write_all(request.as_bytes()).await?;
    io.flush().await?;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let (status, leftover) = loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the HTTP proxy {} closed the connection before answering CONNECT {target}",
                    proxy.host_port()
                ),
            ));
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&head) {
            Ok(httparse::Status::Complete(len)) => {
                let code = response.code.unwrap_or_default();
                let line = status_line(&head);
                break ((code, line), head.split_off(len));
            }
            Ok(httparse::Status::Partial) if head.len() < MAX_RESPONSE_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the HTTP proxy {}'s answer to CONNECT is over {MAX_RESPONSE_HEAD} bytes",
                        proxy.host_port()
                    ),
                ));
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the HTTP proxy {} answered CONNECT with malformed HTTP ({e}): {:?}",
                        proxy.host_port(),
                        status_line(&head)
                    ),
                ));
            }
        }
    };
    let (code, line) = status;
    if !(200..300).contains(&code) {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!(
                "the HTTP proxy {} refused CONNECT {target}: {line:?}",
                proxy.host_port()
            ),
        ));
    }
    Ok(Box::new(Tunnel {
        leftover,
        read: 0,
        io,
    }))
}

/// The first line of an HTTP answer, for errors (at most 200 bytes, lossy UTF-8).
fn status_line(head: &[u8]) -> String {
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    String::from_utf8_lossy(line.get(..line.len().min(200)).unwrap_or_default()).into_owned()
}

/// A tunnel through the proxy: the bytes that arrived behind the proxy's answer come first.
struct Tunnel {
    leftover: Vec<u8>,
    read: usize,
    io: Box<dyn Transport>,
}

impl fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tunnel")
            .field("peer", &self.io.peer())
            .finish()
    }
}

impl AsyncRead for Tunnel {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(rest) = this.leftover.get(this.read..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.len());
            buf.get_mut(..n)
                .unwrap_or_default()
                .copy_from_slice(rest.get(..n).unwrap_or_default());
            this.read += n;
            if this.read == this.leftover.len() {
                this.leftover = Vec::new();
                this.read = 0;
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

impl Transport for Tunnel {
    fn peer(&self) -> String {
        self.io.peer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse_with_and_without_scheme_port_and_credentials() {
        let p = HttpProxy::parse("http://proxy.corp:3128/").unwrap();
        assert_eq!(
            (p.host(), p.port(), p.has_credentials()),
            ("proxy.corp", 3128, false)
        );
        let p = HttpProxy::parse("proxy.corp").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.corp", 80));
        let p = HttpProxy::parse("HTTP://[::1]:8080").unwrap();
        assert_eq!((p.host(), p.port()), ("::1", 8080));
        assert_eq!(p.host_port(), "[::1]:8080");
        let p = HttpProxy::parse("http://al%20ice:p%40ss:word@10.0.0.1:3128").unwrap();
        // "al ice:p@ss:word"
        let expected = base64::engine::general_purpose::STANDARD.encode("al ice:p@ss:word");
        assert_eq!(p.authorization, Some(format!("Basic {expected}")));
        let p = HttpProxy::parse("http://bob@proxy:1").unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode("bob:");
        assert_eq!(p.authorization, Some(format!("Basic {expected}")));
        assert!(
            !format!("{p:?}").contains(&expected),
            "Debug hides credentials"
        );
    }

    #[test]
    fn bad_proxy_urls_are_refused_without_their_credentials() {
        for bad in [
            "socks5://proxy:1080",
            "https://proxy:443",
            "http://:3128",
            "http://proxy:99999",
            "http://a b:1",
        ] {
            assert!(HttpProxy::parse(bad).is_err(), "{bad}");
        }
        let e = HttpProxy::parse("https://user:secret@proxy:1").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn no_proxy_matches_names_suffixes_ips_blocks_ports_and_star() {
        let list = NoProxy::parse(
            " Internal.Example , .corp,10.0.0.0/8, 192.168.1.5, [::1], svc:8080,*.wild, bad/99",
        );
        assert!(list.exempts("internal.example", 443));
        assert!(list.exempts("a.internal.example", 443), "subdomains");
        assert!(!list.exempts("xinternal.example", 443), "not a mere suffix");
        assert!(list.exempts("build.corp", 1));
        assert!(
            list.exempts("corp", 1),
            "`.corp` covers corp itself, as curl"
        );
        assert!(list.exempts("10.200.3.4", 1));
        assert!(!list.exempts("11.0.0.1", 1));
        assert!(list.exempts("192.168.1.5", 1));
        assert!(!list.exempts("192.168.1.6", 1));
        assert!(list.exempts("[::1]", 1));
        assert!(list.exempts("::ffff:10.1.1.1", 1), "IPv4-mapped");
        assert!(list.exempts("svc", 8080));
        assert!(!list.exempts("svc", 8081), "the port must match");
        assert!(list.exempts("x.wild", 1));
        assert!(!list.exempts("example.com", 443));
        assert!(NoProxy::parse("*").exempts("anything", 1));
        assert!(!NoProxy::parse("").exempts("anything", 1));
        assert!(NoProxy::parse("::/0").exempts("2001:db8::1", 1));
        assert!(NoProxy::parse("0.0.0.0/0").exempts("8.8.8.8", 1));
    }

    #[test]
    fn the_environment_is_read_in_grpcs_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            ProxyEnv::custom(move |name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            })
        };
        let chosen = |vars| {
            env(vars)
                .proxy()
                .unwrap()
                .map(|(p, _)| p.host().to_string())
        };
        assert_eq!(chosen(&[]), None);
        assert_eq!(
            chosen(&[("http_proxy", "h"), ("HTTPS_PROXY", "s")]),
            Some("s".into())
        );
        assert_eq!(
            chosen(&[("https_proxy", "s"), ("grpc_proxy", "g")]),
            Some("g".into())
        );
        assert_eq!(
            chosen(&[("GRPC_PROXY", "G"), ("https_proxy", "s")]),
            Some("G".into())
        );
        assert_eq!(
            chosen(&[("grpc_proxy", ""), ("HTTP_PROXY", "H")]),
            Some("H".into()),
            "empty is unset"
        );
        let (_, no_proxy) = env(&[
            ("http_proxy", "p"),
            ("NO_PROXY", "a"),
            ("no_grpc_proxy", "b"),
        ])
        .proxy()
        .unwrap()
        .unwrap();
        assert!(
            no_proxy.exempts("b", 1) && !no_proxy.exempts("a", 1),
            "no_grpc_proxy first"
        );
        let e = env(&[("https_proxy", "socks5://x:1")]).proxy().unwrap_err();
        assert!(e.contains("https_proxy"), "{e}");
    }

    #[test]
    fn the_plan_resolves_the_proxy_for_dns_names_and_leaves_the_rest_alone() {
        let uri = |t: &str| TargetUri::parse(t).unwrap();
        let with_env = |vars: &'static [(&'static str, &'static str)]| ProxySetting {
            env: ProxyEnv::custom(move |name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }),
            ..ProxySetting::default()
        };
        let proxied = with_env(&[
            ("https_proxy", "http://proxy.corp:3128"),
            ("no_proxy", "inside.corp"),
        ]);
        // A dns name: the proxy's name is what gets resolved.
        let (resolved, connector) = plan(uri("dns:///backend.example:443"), &proxied, None);
        assert_eq!(resolved.endpoint, "proxy.corp:3128");
        assert!(connector.is_some());
        // Exempt, unix, disabled, or the application's own connector: untouched.
        let (resolved, connector) = plan(uri("dns:///a.inside.corp:443"), &proxied, None);
        assert_eq!(resolved.endpoint, "a.inside.corp:443");
        assert!(connector.is_none());
        let (resolved, connector) = plan(uri("unix:///run/s.sock"), &proxied, None);
        assert_eq!(resolved.as_str(), "unix:///run/s.sock");
        assert!(connector.is_none());
        let off = ProxySetting {
            enabled: false,
            ..proxied.clone()
        };
        assert!(
            plan(uri("dns:///backend.example:443"), &off, None)
                .1
                .is_none()
        );
        let own = SharedConnector(Arc::new(|request: ConnectRequest| {
            request.connect_directly()
        }));
        let (resolved, connector) = plan(
            uri("dns:///backend.example:443"),
            &proxied,
            Some(own.clone()),
        );
        assert_eq!(resolved.endpoint, "backend.example:443");
        assert!(
            Arc::ptr_eq(&connector.unwrap().0, &own.0),
            "the application's connector"
        );
        // Literal addresses keep their resolution; the connector tunnels to each.
        let (resolved, connector) = plan(uri("ipv4:10.1.2.3:80"), &proxied, None);
        assert_eq!(resolved.as_str(), "ipv4:10.1.2.3:80");
        assert!(connector.is_some());
        assert_eq!(
            target_host(&uri("dns:///backend.example:443")).as_deref(),
            Some("backend.example:443")
        );
        assert_eq!(
            target_host(&uri("ipv6:[::1]:80")).as_deref(),
            Some("[::1]:80")
        );
        assert_eq!(target_host(&uri("unix:/run/s.sock")), None);
        assert_eq!(target_host(&uri("consul:///svc")), None);
    }

    /// A transport over an in-memory pipe, and the proxy's end of it.
    fn pair() -> (Box<dyn Transport>, crate::pipe::MemoryStream) {
        let (a, b, _) = crate::pipe::named_pipe("proxy", "client", 64 * 1024);
        (Box::new(a), b)
    }

    fn proxy() -> HttpProxy {
        HttpProxy::parse("http://u:p@proxy:3128").unwrap()
    }

    #[test]
    fn connect_asks_for_the_target_and_keeps_the_bytes_behind_the_answer() {
        futures_executor::block_on(async {
            let (client, mut proxy_end) = pair();
            let proxy_side = async {
                let mut seen = Vec::new();
                let mut buf = [0u8; 256];
                while !seen.ends_with(b"\r\n\r\n") {
                    let n = proxy_end.read(&mut buf).await.unwrap();
                    seen.extend_from_slice(&buf[..n]);
                }
                proxy_end
                    .write_all(b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\nearly bytes")
                    .await
                    .unwrap();
                proxy_end.write_all(b" and more").await.unwrap();
                drop(proxy_end);
                String::from_utf8(seen).unwrap()
            };
            let (seen, tunnel) = futures_util::future::join(
                proxy_side,
                tunnel(client, &proxy(), "backend.test:443"),
            )
            .await;
            assert!(
                seen.starts_with("CONNECT backend.test:443 HTTP/1.1\r\n"),
                "{seen}"
            );
            assert!(seen.contains("\r\nHost: backend.test:443\r\n"), "{seen}");
            let basic = base64::engine::general_purpose::STANDARD.encode("u:p");
            assert!(
                seen.contains(&format!("\r\nProxy-Authorization: Basic {basic}\r\n")),
                "{seen}"
            );
            let mut rest = String::new();
            tunnel.unwrap().read_to_string(&mut rest).await.unwrap();
            assert_eq!(rest, "early bytes and more");
        });
    }

    #[test]
    fn a_refusal_quotes_the_proxys_status_line() {
        for (answer, kind, quoted) in [
            (
                &b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"[..],
                io::ErrorKind::ConnectionRefused,
                "407 Proxy Authentication Required",
            ),
            (
                b"HTTP/1.0 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n",
                io::ErrorKind::ConnectionRefused,
                "502 Bad Gateway",
            ),
            (
                b"SSH-2.0-OpenSSH\r\n\r\n",
                io::ErrorKind::InvalidData,
                "SSH-2.0",
            ),
            (
                b"HTTP/1.1 200 OK\r\n",
                io::ErrorKind::UnexpectedEof,
                "closed the connection",
            ),
        ] {
            let error = futures_executor::block_on(async {
                let (client, mut proxy_end) = pair();
                let proxy_side = async {
                    let mut request = [0u8; 256];
                    let _ = proxy_end.read(&mut request).await.unwrap();
                    proxy_end.write_all(answer).await.unwrap();
                    drop(proxy_end);
                };
                let proxy = proxy();
                let asked = tunnel(client, &proxy, "b:1");
                let ((), result) = futures_util::future::join(proxy_side, asked).await;
                result.map(|_| ()).unwrap_err()
            });
            assert_eq!(error.kind(), kind, "{error}");
            assert!(error.to_string().contains(quoted), "{error}");
        }
    }

    #[test]
    fn an_endless_answer_is_cut_off() {
        let error = futures_executor::block_on(async {
            let (client, mut proxy_end) = pair();
            let flood = async {
                let _ = proxy_end.write_all(b"HTTP/1.1 200 OK\r\n").await;
                let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
                while proxy_end.write_all(line).await.is_ok() {}
            };
            let proxy = proxy();
            let asked = Box::pin(tunnel(client, &proxy, "b:1"));
            match futures_util::future::select(Box::pin(flood), asked).await {
                futures_util::future::Either::Right((result, _)) => result.map(|_| ()).unwrap_err(),
                futures_util::future::Either::Left(_) => panic!("the client kept reading"),
            }
        });
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
    }
}
