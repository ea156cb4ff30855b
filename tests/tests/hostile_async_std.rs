//! The hostile-peer suite on async-std, over loopback TCP.

mod hostile;

fn run<F: std::future::Future<Output = ()>>(case: impl FnOnce(hostile::Env) -> F) {
    let _one_at_a_time = hostile::serial();
    async_std::task::block_on(hostile::watched(anygrpc_async_std::runtime(), case));
}

hostile::hostile_suite!(crate::run);
