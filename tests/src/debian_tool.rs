//! Command-line peers from Debian's packages (`h2load` and `nghttp`, package nghttp2-client):
//! a suite that needs one installs it when it is missing, as the interop suites bootstrap
//! `grpcio`, so that the README's test command passes on a fresh machine.

use std::process::Command;
use std::sync::Mutex;

/// Installs Debian package `package` unless `tool` is already on the PATH; `Err` says why it
/// could not be. Runs `apt-get` as root, or through `sudo -n` otherwise, and refreshes the
/// package lists once if the first try fails (a fresh image has none). One install at a time
/// per process: test cases run in parallel.
pub fn ensure(tool: &str, package: &str) -> Result<(), String> {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    if on_path(tool) {
        return Ok(());
    }
    let install = ["install", "-y", "--no-install-recommends", package];
    if apt_get(&install).is_err() {
        apt_get(&["update"])?;
        apt_get(&install)?;
    }
    if on_path(tool) {
        Ok(())
    } else {
        Err(format!(
            "`{tool}` is still missing after installing {package}"
        ))
    }
}

fn on_path(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn apt_get(args: &[&str]) -> Result<(), String> {
    let mut command = if is_root() {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", "apt-get"]);
        sudo
    };
    let output = command
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| format!("apt-get {args:?} could not run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "apt-get {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tool_already_there_needs_no_install() {
        // `id` comes with every Debian system (coreutils): nothing is installed for it.
        assert_eq!(super::ensure("id", "no-such-package-is-needed"), Ok(()));
    }
}
