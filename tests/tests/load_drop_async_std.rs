//! The load (h2load) and connection-drop suites on async-std, over loopback TCP.

mod load_drop;

fn run<F: std::future::Future<Output = ()>>(case: impl FnOnce(anygrpc::RuntimeRef) -> F) {
    async_std::task::block_on(load_drop::watched(anygrpc_async_std::runtime(), case));
}

load_drop::load_drop_suite!(run);
