//! The hostile-peer suite on smol, over loopback TCP.

mod hostile;

fn run<F: std::future::Future<Output = ()>>(case: impl FnOnce(hostile::Env) -> F) {
    let _one_at_a_time = hostile::serial();
    smol::block_on(hostile::watched(anygrpc_smol::runtime(), case));
}

hostile::hostile_suite!(crate::run);
