//! The end-to-end suite on smol, over loopback TCP.

mod e2e;

fn run<F: std::future::Future<Output = ()>>(case: impl FnOnce(e2e::Env) -> F) {
    smol::block_on(e2e::watched(anygrpc_smol::runtime(), case));
}

e2e::e2e_suite!(run);
