//! The resolvers of targets that name their addresses: `ipv4:` / `ipv6:` (a list of literal
//! addresses) and `unix:` (a socket path). They push one update when built, never another.

use super::{Address, Resolver, ResolverBuilder, ResolverHandle, ResolverUpdate, TargetUri};
use crate::client::target::Target;

/// The schemes resolved here.
pub(super) const SCHEMES: [&str; 3] = ["ipv4", "ipv6", "unix"];

/// The builder of one of [`SCHEMES`].
pub(super) struct FixedBuilder(pub(super) &'static str);

/// The addresses `target` names.
fn addresses(target: &TargetUri) -> Result<Vec<Address>, String> {
    match Target::parse(target.as_str()).map_err(|e| e.to_string())? {
        Target::Addresses(addrs) => Ok(addrs.into_iter().map(Address::tcp).collect()),
        Target::Unix(path) => Ok(vec![Address::unix(path)]),
        other => Err(format!("not a {} target: {other:?}", target.scheme)),
    }
}

impl ResolverBuilder for FixedBuilder {
    fn scheme(&self) -> &str {
        self.0
    }

    fn check(&self, target: &TargetUri) -> Result<(), String> {
        addresses(target).map(|_| ())
    }

    fn default_authority(&self, target: &TargetUri) -> String {
        Target::parse(target.as_str())
            .map_or_else(|_| "localhost".to_string(), |t| t.default_authority())
    }

    fn build(&self, target: &TargetUri, handle: ResolverHandle) -> Box<dyn Resolver> {
        match addresses(target) {
            Ok(addresses) => handle.update(ResolverUpdate::new(addresses)),
            Err(e) => handle.error(anygrpc_core::Status::unavailable(e)),
        }
        Box::new(Fixed)
    }
}

/// Nothing to do after the first update.
struct Fixed;

impl Resolver for Fixed {}
