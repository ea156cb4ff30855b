//! Call credentials: metadata (a bearer token) computed for each call, possibly by awaiting a
//! token service.

use std::fmt;

use anygrpc_core::{Code, Metadata, Status};

use crate::runtime::BoxFuture;

/// What call credentials are asked for (grpc's `AuthMetadataContext`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthMetadataContext {
    /// `https://host/package.Service` (`http://` on a cleartext channel): the audience
    /// a JWT is minted for.
    pub service_url: String,
    /// The method's name (`Method`, without its service).
    pub method_name: String,
    /// `/package.Service/Method`.
    pub method: String,
}

impl AuthMetadataContext {
    /// The context of a call to `path` on `authority`.
    pub(crate) fn new(scheme: &str, authority: &str, path: &str) -> Self {
        let (service, method_name) = path
            .strip_prefix('/')
            .and_then(|p| p.rsplit_once('/'))
            .unwrap_or(("", path));
        Self {
            service_url: format!("{scheme}://{authority}/{service}"),
            method_name: method_name.to_string(),
            method: path.to_string(),
        }
    }
}

/// Per-call credentials (grpc's `CallCredentials` / `AuthMetadataPlugin`): metadata added to
/// every call, such as a bearer token. The metadata is asked for each call (each attempt,
/// with retries) and may be awaited: a provider can refresh an expired token from the
/// network without blocking anything. An `Err` fails the call with that status. Sent only over TLS unless the channel explicitly allows insecure credentials.
///
/// A provider that answers without awaiting (like [`BearerToken`]) costs no task: the call
/// starts at once, as without credentials.
///
/// ```
/// use anygrpc::{AuthMetadataContext, BoxFuture, CallCredentials, Metadata, Status};
///
/// /// A token that a real provider would refresh from its issuer.
/// struct Refreshing;
///
/// impl CallCredentials for Refreshing {
///     fn metadata(&self, context: &AuthMetadataContext) -> BoxFuture<'_, Result<Metadata, Status>> {
///         let audience = context.service_url.clone();
///         Box::pin(async move {
///             let token = format!("token-for-{audience}"); // await the issuer here
///             let mut metadata = Metadata::new();
///             metadata
///                 .insert("authorization", &format!("Bearer {token}"))
///                 .map_err(|e| Status::internal(e.to_string()))?;
///             Ok(metadata)
///         })
///     }
/// }
/// ```
pub trait CallCredentials: Send + Sync + 'static {
    /// The metadata for the call described by `context`.
    fn metadata(&self, context: &AuthMetadataContext) -> BoxFuture<'_, Result<Metadata, Status>>;
}

/// A fixed bearer token, sent as `authorization: Bearer <token>`.
#[derive(Clone)]
pub struct BearerToken(String);

impl BearerToken {
    /// Credentials sending `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl CallCredentials for BearerToken {
    fn metadata(&self, _: &AuthMetadataContext) -> BoxFuture<'_, Result<Metadata, Status>> {
        let mut metadata = Metadata::new();
        let inserted = metadata
            .insert("authorization", &format!("Bearer {}", self.0))
            .map(|_| metadata)
            .map_err(|e| Status::new(Code::Unauthenticated, format!("invalid token: {e}")));
        Box::pin(std::future::ready(inserted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_names_the_service_and_method() {
        let context = AuthMetadataContext::new("https", "example.com:443", "/pkg.Svc/Get");
        assert_eq!(context.service_url, "https://example.com:443/pkg.Svc");
        assert_eq!(context.method_name, "Get");
        assert_eq!(context.method, "/pkg.Svc/Get");
    }
}
