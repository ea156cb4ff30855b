//! TLS and mutual TLS, with certificates made at run time by `rcgen`: a server with
//! `ServerCredentials`, clients with `ChannelCredentials`, and a handler that reads the
//! client's verified identity from its `ServicerContext`. On tokio.
//!
//! ```sh
//! cargo run -p anygrpc-examples --bin tls
//! ```
//!
//! Real deployments load the PEM files their CA issued (`std::fs::read("server.key")?`) instead
//! of generating them; everything else stays as here.

use std::process::ExitCode;

use anygrpc_examples::pb::helloworld::greeter_client::GreeterClient;
use anygrpc_examples::pb::helloworld::greeter_server::{Greeter, GreeterServer};
use anygrpc_examples::pb::helloworld::{HelloReply, HelloRequest};
use anygrpc_tokio as grpc;
use grpc::{ChannelCredentials, ServerCredentials};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Tells the caller how it connected and who its certificate says it is.
struct WhoAmI;

impl Greeter for WhoAmI {
    async fn say_hello(
        &self,
        request: HelloRequest,
        context: &mut grpc::ServicerContext,
    ) -> Result<HelloReply, grpc::Status> {
        // `auth_context()` is `None` on a cleartext port; on a TLS port it says "ssl", and
        // holds the client certificate's identities (its SANs) when it presented one.
        let security = context
            .auth_context()
            .map_or("cleartext", |auth| auth.transport_security_type);
        let message = match context.peer_identities() {
            Some(identities) => format!(
                "Hello, {}! ({security}, your certificate says you are {})",
                request.name,
                identities.join(", ")
            ),
            None => format!(
                "Hello, {}! ({security}, no client certificate)",
                request.name
            ),
        };
        Ok(HelloReply { message })
    }
}

/// A certificate chain and its private key, in PEM.
struct Identity {
    cert: String,
    key: String,
}

/// A throwaway certificate authority, and certificates it signs.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "example CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { ca })
    }

    /// The CA's certificate: what both sides trust.
    fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses), for a server or a client.
    fn issue(
        &self,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<Identity, rcgen::Error> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names)?;
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.ca)?;
        Ok(Identity {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tls: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let pki = Pki::new()?;
    let ca = pki.ca_pem();
    // The server's certificate names the address clients dial: the client checks it.
    let server_id = pki.issue(
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let client_id = pki.issue(
        &["billing.client.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;

    // One server, two ports: TLS (any client), and mutual TLS (clients must present a
    // certificate our CA signed).
    let server = grpc::server();
    server.add_service(GreeterServer::new(WhoAmI));
    let tls = ServerCredentials::ssl(
        server_id.key.as_bytes(),
        server_id.cert.as_bytes(),
        None,
        false,
    )?;
    let tls_port = server.add_secure_port("127.0.0.1:0", tls).await?;
    let mtls = ServerCredentials::ssl(
        server_id.key.as_bytes(),
        server_id.cert.as_bytes(),
        Some(ca.as_bytes()), // verify client certificates against our CA...
        true,                // ...and refuse clients without one
    )?;
    let mtls_port = server.add_secure_port("127.0.0.1:0", mtls).await?;
    server.start();
    println!("TLS on port {tls_port}, mutual TLS on port {mtls_port}");

    // 1. TLS: the client verifies the server against our CA (`None`: the system's roots).
    let verify_server = ChannelCredentials::ssl(Some(ca.as_bytes()), None, None)?;
    let channel = grpc::secure_channel(&format!("127.0.0.1:{tls_port}"), verify_server.clone())?;
    let reply = GreeterClient::new(channel.clone())
        .say_hello(HelloRequest { name: "tls".into() })
        .await?;
    println!("TLS: {}", reply.message);
    channel.close(None).await;

    // 2. Mutual TLS: the client also presents its certificate and key.
    let with_client_cert = ChannelCredentials::ssl(
        Some(ca.as_bytes()),
        Some(client_id.key.as_bytes()),
        Some(client_id.cert.as_bytes()),
    )?;
    let channel = grpc::secure_channel(&format!("127.0.0.1:{mtls_port}"), with_client_cert)?;
    let reply = GreeterClient::new(channel.clone())
        .say_hello(HelloRequest {
            name: "mtls".into(),
        })
        .await?;
    println!("mTLS: {}", reply.message);
    channel.close(None).await;

    // 3. A client without a certificate cannot get through the mutual-TLS port: the
    //    handshake fails, and the call with it (UNAVAILABLE).
    let channel = grpc::secure_channel(&format!("127.0.0.1:{mtls_port}"), verify_server)?;
    match GreeterClient::new(channel.clone())
        .say_hello(HelloRequest {
            name: "anonymous".into(),
        })
        .await
    {
        Ok(reply) => {
            return Err(format!("a client without a certificate got in: {}", reply.message).into());
        }
        Err(err) => println!(
            "mTLS without a client certificate: {} ({})",
            err.code().as_str(),
            err.details()
        ),
    }
    channel.close(None).await;

    server.stop(None).await;
    Ok(())
}
