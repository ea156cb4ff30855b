//! Running the `anygrpc` binary as a user would, and what it printed.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::io::Write;
use std::process::{Command, Stdio};

/// What one run of the CLI printed, and how it exited.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit status (`None`: killed by a signal).
    pub(crate) code: Option<i32>,
    /// Its stdout.
    pub(crate) stdout: String,
    /// Its stderr.
    pub(crate) stderr: String,
}

impl Run {
    /// Panics, showing the whole run, unless it exited `code`.
    pub(crate) fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "{self:#?}");
        self
    }

    /// Panics unless stdout has each of `parts`.
    pub(crate) fn stdout_has(self, parts: &[&str]) -> Self {
        for part in parts {
            assert!(
                self.stdout.contains(part),
                "no {part:?} in stdout: {self:#?}"
            );
        }
        self
    }

    /// Panics unless stderr has each of `parts`.
    pub(crate) fn stderr_has(self, parts: &[&str]) -> Self {
        for part in parts {
            assert!(
                self.stderr.contains(part),
                "no {part:?} in stderr: {self:#?}"
            );
        }
        self
    }
}

/// Runs `anygrpc args…`, feeding `stdin` to it.
pub(crate) fn anygrpc(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_anygrpc"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the anygrpc CLI");
    child
        .stdin
        .take()
        .expect("its stdin")
        .write_all(stdin.as_bytes())
        .expect("write its stdin");
    let output = child.wait_with_output().expect("wait for the CLI");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A local port nothing listens on (bound, then let go).
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    listener.local_addr().expect("its address").port()
}
