//! Services as the server sees them: a name and a way to start a call by method name.

use crate::runtime::BoxFuture;

use super::call::ServerCall;

/// A gRPC service: generated code implements it for `FooServer<T>`; raw handlers can too.
pub trait Service: Send + Sync + 'static {
    /// Fully-qualified service name, e.g. `helloworld.Greeter`.
    fn name(&self) -> &'static str;
    /// Starts handling a call to `method` (the part after the last `/`); `None` when the
    /// method is unknown (the call ends with UNIMPLEMENTED).
    fn call(&self, method: &str, call: ServerCall) -> Option<BoxFuture<'static, ()>>;
}

/// A raw handler for one full method path: bytes in, bytes out, through [`ServerCall`].
pub(crate) type GenericHandler = Box<dyn Fn(ServerCall) -> BoxFuture<'static, ()> + Send + Sync>;
