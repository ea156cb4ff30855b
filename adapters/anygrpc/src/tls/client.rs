//! The client side: a TLS handshake over a freshly connected transport, before HTTP/2 starts.

use std::io;

use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use rustls_pki_types::ServerName;

use super::ALPN_H2;
use super::credentials::ChannelCredentials;
use crate::runtime::Transport;

impl Transport for TlsStream<Box<dyn Transport>> {
    fn peer(&self) -> String {
        self.get_ref().0.peer()
    }
}

/// The name a channel verifies the server's certificate against and sends as SNI: the host
/// part of `authority` (`host`, `host:port`, `[v6]:port`); an IP address is checked against
/// the certificate's IP addresses (and sends no SNI, RFC 6066 §3).
pub(crate) fn server_name_of(authority: &str) -> Result<ServerName<'static>, String> {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(host, _)| host),
        None => match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
            _ => authority,
        },
    };
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host:?} is not a valid TLS server name"))
}

/// Runs the TLS handshake on `io` for `name`; the error names what failed (certificate
/// verification, name mismatch, an alert from the server, no ALPN `h2`).
pub(crate) async fn connect(
    io: Box<dyn Transport>,
    credentials: &ChannelCredentials,
    name: ServerName<'static>,
) -> io::Result<Box<dyn Transport>> {
    let shown = name.to_str().into_owned();
    let connector = TlsConnector::from(credentials.config.clone());
    let stream = connector.connect(name, io).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("TLS handshake with {shown:?} failed: {e}"),
        )
    })?;
    if stream.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("TLS handshake with {shown:?} failed: the server did not select ALPN \"h2\""),
        ));
    }
    Ok(Box::new(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_authority_host() {
        let name = |a: &str| server_name_of(a).map(|n| n.to_str().into_owned());
        assert_eq!(name("localhost:443").as_deref(), Ok("localhost"));
        assert_eq!(
            name("foo.test.google.fr").as_deref(),
            Ok("foo.test.google.fr")
        );
        assert_eq!(name("127.0.0.1:50051").as_deref(), Ok("127.0.0.1"));
        assert_eq!(name("[::1]:50051").as_deref(), Ok("::1"));
        assert!(matches!(
            server_name_of("127.0.0.1:1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(server_name_of("bad name:1").is_err());
        assert!(server_name_of(":1").is_err());
    }
}
