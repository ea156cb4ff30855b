//! The end-to-end suite on the in-memory runtime (pipes, manual clock): deterministic, and
//! every timeout costs no real time.

mod e2e;

e2e::e2e_suite!(e2e::run_memory);

#[test]
fn deadline_on_the_manual_clock() {
    e2e::memory::deadline_on_the_manual_clock();
}

#[test]
fn broken_pipe_mid_call() {
    e2e::memory::broken_pipe_mid_call();
}

#[test]
fn frozen_pipe_holds_calls() {
    e2e::memory::frozen_pipe_holds_calls();
}
