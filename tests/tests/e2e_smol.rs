//! The end-to-end suite on smol, over loopback TCP.

mod e2e;

fn run<F: std::future::Future<Output = ()>>(case: impl FnOnce(e2e::Env) -> F) {
    smol::block_on(case(e2e::Env::real(anygrpc_smol::runtime())));
}

e2e::e2e_suite!(run);
