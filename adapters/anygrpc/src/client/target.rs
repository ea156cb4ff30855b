//! Channel targets of the built-in schemes (gRPC naming doc): `host:port`, `dns:///host:port`,
//! `ipv4:///a:p,b:p`, `ipv6:///[a]:p`, `unix:path`. A channel first looks the target's scheme
//! up among its registered resolvers ([`TargetUri`](super::TargetUri)); the built-in
//! resolvers parse their targets here.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Where a channel connects, for the built-in schemes (other schemes are resolved by the
/// resolver registered for them, see `ChannelBuilder::resolver`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A name resolved through the runtime (`dns:` or a bare `host:port`).
    Dns {
        /// The host name.
        host: String,
        /// The port (443 when the target gives none, as in gRPC).
        port: u16,
    },
    /// Literal addresses (`ipv4:` / `ipv6:`), tried in order.
    Addresses(Vec<SocketAddr>),
    /// A Unix-domain socket path.
    Unix(String),
}

/// A target that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError(pub String);

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid target: {}", self.0)
    }
}

impl std::error::Error for TargetError {}

const DEFAULT_PORT: u16 = 443;

impl Target {
    /// Parses a gRPC target string.
    pub fn parse(target: &str) -> Result<Self, TargetError> {
        let err = |why: &str| TargetError(format!("{target:?}: {why}"));
        if let Some(rest) = target.strip_prefix("unix:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(err("empty unix socket path"));
            }
            return Ok(Target::Unix(path.to_string()));
        }
        for (scheme, v6) in [("ipv4:", false), ("ipv6:", true)] {
            if let Some(rest) = target.strip_prefix(scheme) {
                let list = rest.strip_prefix("///").unwrap_or(rest);
                let mut addrs = Vec::new();
                for item in list.split(',') {
                    let addr = parse_ip_port(item).ok_or_else(|| err("bad address"))?;
                    if addr.is_ipv6() != v6 {
                        return Err(err("address family does not match the scheme"));
                    }
                    addrs.push(addr);
                }
                return Ok(Target::Addresses(addrs));
            }
        }
        let rest = match target.strip_prefix("dns:") {
            // dns:///host:port or dns://authority/host:port (the DNS authority is ignored).
            Some(rest) => match rest.strip_prefix("//") {
                Some(with_authority) => with_authority
                    .split_once('/')
                    .map(|(_, h)| h)
                    .ok_or_else(|| err("missing host"))?,
                None => rest,
            },
            None => target,
        };
        if rest.is_empty() {
            return Err(err("empty host"));
        }
        if let Some(addr) = parse_ip_port(rest) {
            return Ok(Target::Addresses(vec![addr]));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| err("bad host or port"))?;
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(Target::Addresses(vec![SocketAddr::new(ip, port)]));
        }
        if host.is_empty() || host.contains(['/', ' ', ',']) {
            return Err(err("bad host"));
        }
        Ok(Target::Dns {
            host: host.to_string(),
            port,
        })
    }

    /// The `:authority` calls on this target carry by default.
    pub fn default_authority(&self) -> String {
        match self {
            Target::Dns { host, port } => format!("{host}:{port}"),
            Target::Addresses(addrs) => addrs
                .first()
                .map_or_else(|| "localhost".into(), |a| a.to_string()),
            Target::Unix(_) => "localhost".into(),
        }
    }
}

/// `1.2.3.4:5`, `[::1]:5` (a literal IP with a port).
fn parse_ip_port(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}

/// `host:port` or `host` (default port).
fn split_host_port(s: &str) -> Option<(&str, u16)> {
    if let Some(bracketed) = s.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => DEFAULT_PORT,
            None => return None,
        };
        return Some((host, port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, port.parse().ok()?)),
        Some(_) => None,
        None => Some((s, DEFAULT_PORT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            Target::parse("localhost:50051"),
            Ok(Target::Dns {
                host: "localhost".into(),
                port: 50051
            })
        );
        assert_eq!(
            Target::parse("example.com"),
            Ok(Target::Dns {
                host: "example.com".into(),
                port: 443
            })
        );
        assert_eq!(
            Target::parse("dns:///svc.local:80"),
            Ok(Target::Dns {
                host: "svc.local".into(),
                port: 80
            })
        );
        assert_eq!(
            Target::parse("dns://8.8.8.8/svc:81"),
            Ok(Target::Dns {
                host: "svc".into(),
                port: 81
            })
        );
        assert_eq!(
            Target::parse("dns:svc:82"),
            Ok(Target::Dns {
                host: "svc".into(),
                port: 82
            })
        );
        assert_eq!(
            Target::parse("ipv4:///1.2.3.4:5,1.2.3.5:6"),
            Ok(Target::Addresses(vec![
                addr("1.2.3.4:5"),
                addr("1.2.3.5:6")
            ]))
        );
        assert_eq!(
            Target::parse("ipv4:127.0.0.1:1"),
            Ok(Target::Addresses(vec![addr("127.0.0.1:1")]))
        );
        assert_eq!(
            Target::parse("ipv6:///[::1]:5,[::2]:6"),
            Ok(Target::Addresses(vec![addr("[::1]:5"), addr("[::2]:6")]))
        );
        assert_eq!(
            Target::parse("127.0.0.1:9"),
            Ok(Target::Addresses(vec![addr("127.0.0.1:9")]))
        );
        assert_eq!(
            Target::parse("[::1]:9"),
            Ok(Target::Addresses(vec![addr("[::1]:9")]))
        );
        assert_eq!(
            Target::parse("unix:/tmp/s.sock"),
            Ok(Target::Unix("/tmp/s.sock".into()))
        );
        assert_eq!(
            Target::parse("unix:///tmp/s.sock"),
            Ok(Target::Unix("/tmp/s.sock".into()))
        );
        assert_eq!(
            Target::parse("unix:rel.sock"),
            Ok(Target::Unix("rel.sock".into()))
        );
    }

    #[test]
    fn rejects_bad_targets_with_a_reason() {
        for bad in [
            "",
            "dns:///",
            "ipv4:///1.2.3.4",
            "ipv4:///[::1]:5",
            "ipv6:///1.2.3.4:5",
            "ipv4:///1.2.3.4:5,::1",
            "host:notaport",
            "host:99999",
            "unix:",
            "a b:1",
        ] {
            let e = Target::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("invalid target"), "{bad}: {e}");
        }
    }

    #[test]
    fn default_authority() {
        assert_eq!(Target::parse("svc:1").unwrap().default_authority(), "svc:1");
        assert_eq!(
            Target::parse("ipv4:1.2.3.4:5").unwrap().default_authority(),
            "1.2.3.4:5"
        );
    }
}
