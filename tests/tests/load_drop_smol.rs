//! The load (h2load) and connection-drop suites on smol, over loopback TCP.

mod load_drop;

fn run<F: std::future::Future<Output = ()>>(case: impl FnOnce(anygrpc::RuntimeRef) -> F) {
    smol::block_on(load_drop::watched(anygrpc_smol::runtime(), case));
}

load_drop::load_drop_suite!(run);
