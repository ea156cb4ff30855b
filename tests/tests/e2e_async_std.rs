//! The end-to-end suite on async-std, over loopback TCP.

mod e2e;

fn run<F: std::future::Future<Output = ()>>(case: impl FnOnce(e2e::Env) -> F) {
    async_std::task::block_on(e2e::watched(anygrpc_async_std::runtime(), case));
}

e2e::e2e_suite!(run);
