//! The Python `grpcio` Greeter server used by the demo and the interop tests.
//!
//! [`python_with_grpcio`] finds a Python that has `grpcio`: `$ANYGRPC_PYTHON` when set, else the
//! venv `<workspace>/target/peers-venv`, created on first use (`python3 -m venv`, then
//! `pip install` of grpcio, grpcio-tools and grpcio's health, reflection and status packages,
//! at pinned versions) under a file lock so parallel runs
//! build it once.
//! [`GreeterServer`] runs `tests/peers/python/greeter_server.py` on an ephemeral loopback port
//! and kills it when dropped.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `grpcio` release installed into the peers' venv.
pub const GRPCIO_VERSION: &str = "1.85.3";

/// The `grpcio-tools` release (with `protobuf`) installed beside it, for the interop peer, which
/// generates its stubs from the project's protos at run time (its releases lag grpcio's).
pub const GRPCIO_TOOLS_VERSION: &str = "1.85.1";

/// The release of grpcio's standard-service packages (`grpcio-health-checking`,
/// `grpcio-reflection`, `grpcio-status`) installed beside it, for the standard-services tests.
pub const GRPCIO_SERVICES_VERSION: &str = "1.85.1";

/// What the venv holds, as pip requirements; also its marker file's content.
fn venv_manifest() -> String {
    let services = GRPCIO_SERVICES_VERSION;
    format!(
        "grpcio=={GRPCIO_VERSION} grpcio-tools=={GRPCIO_TOOLS_VERSION} \
         grpcio-health-checking=={services} grpcio-reflection=={services} \
         grpcio-status=={services}"
    )
}

/// Environment variable naming a Python interpreter that already has `grpcio`.
pub const PYTHON_ENV: &str = "ANYGRPC_PYTHON";

/// How long the server may take to print its port.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The Greeter server script.
pub fn greeter_script() -> PathBuf {
    workspace_root().join("tests/peers/python/greeter_server.py")
}

/// A Python interpreter with `grpcio`, creating the peers' venv if needed. Fails (never
/// silently skips) when no such Python can be had, saying what was tried.
pub fn python_with_grpcio() -> io::Result<PathBuf> {
    if let Some(python) = std::env::var_os(PYTHON_ENV) {
        return Ok(PathBuf::from(python));
    }
    ensure_venv(&workspace_root().join("target/peers-venv"))
}

/// Makes `dir` a venv with `grpcio` unless it already is one; returns its interpreter.
fn ensure_venv(dir: &Path) -> io::Result<PathBuf> {
    let python = dir.join("bin/python");
    let marker = dir.join(".anygrpc-grpcio-version");
    let manifest = venv_manifest();
    let ready = || fs::read_to_string(&marker).is_ok_and(|v| v.trim() == manifest);
    if ready() {
        return Ok(python);
    }
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent)?;
    }
    // One builder at a time, across processes; the lock goes with the file handle.
    let lock = File::create(dir.with_extension("lock"))?;
    lock.lock()?;
    if ready() {
        return Ok(python); // another process built it while we waited
    }
    eprintln!("creating {} with {manifest} (once)", dir.display());
    if dir.exists() {
        fs::remove_dir_all(dir)?; // a half-built venv from an interrupted run
    }
    let venv = dir.as_os_str();
    let pip = [
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
    ];
    let packages: Vec<String> = manifest.split(' ').map(str::to_string).collect();
    if run(Command::new("python3").args(["-m", "venv"]).arg(venv)).is_ok() {
        run(Command::new(&python)
            .args(["-m", "pip"])
            .args(pip)
            .args(&packages))?;
    } else {
        // Debian without python3-venv has no ensurepip: make the venv without pip and let the
        // system's pip install into it.
        fs::remove_dir_all(dir).or_else(|e| match e.kind() {
            io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        })?;
        run(Command::new("python3")
            .args(["-m", "venv", "--without-pip"])
            .arg(venv))?;
        run(Command::new("python3")
            .args(["-m", "pip", "--python"])
            .arg(&python)
            .args(pip)
            .args(&packages))?;
    }
    run(Command::new(&python).args([
        "-c",
        "import grpc, grpc_tools.protoc, grpc_health.v1, grpc_reflection.v1alpha, grpc_status",
    ]))?;
    fs::write(&marker, &manifest)?;
    Ok(python)
}

/// Runs `command` to completion; a failure carries its stderr.
fn run(command: &mut Command) -> io::Result<Output> {
    let shown = format!("{command:?}");
    let output = command.stdin(Stdio::null()).output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{shown}: {e} (is python3 installed? or set {PYTHON_ENV})"),
        )
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(io::Error::other(format!(
            "{shown} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// A running Python Greeter server; killed on drop.
#[derive(Debug)]
pub struct GreeterServer {
    child: Child,
    /// The server exits when this pipe closes, even if we die without running `Drop`.
    _stdin: Option<ChildStdin>,
    port: u16,
}

impl GreeterServer {
    /// Starts the server with [`python_with_grpcio`] and waits (bounded) for its port.
    pub fn start() -> io::Result<Self> {
        Self::start_with(&python_with_grpcio()?)
    }

    /// Starts the server with [`python_with_grpcio`], listening on the Unix-domain socket
    /// `path` too.
    pub fn start_on_unix(path: &Path) -> io::Result<Self> {
        Self::start_with_args(
            &python_with_grpcio()?,
            &["--unix".as_ref(), path.as_os_str()],
        )
    }

    /// Starts the server with `python`.
    pub fn start_with(python: &Path) -> io::Result<Self> {
        Self::start_with_args(python, &[])
    }

    /// Starts the server with `python`, passing `args` to the script.
    fn start_with_args(python: &Path, args: &[&std::ffi::OsStr]) -> io::Result<Self> {
        let mut child = Command::new(python)
            .arg("-u")
            .arg(greeter_script())
            .arg("--exit-on-stdin-eof")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", python.display())))?;
        let stdout = child.stdout.take();
        let mut server = Self {
            _stdin: child.stdin.take(),
            child,
            port: 0,
        };
        // The port comes as the first stdout line; read it on a thread so the wait is bounded.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = stdout.map(|s| BufReader::new(s).lines());
            let first = lines.as_mut().and_then(Iterator::next);
            let _ = tx.send(first);
            // Drain until the server exits.
            lines
                .into_iter()
                .flatten()
                .map_while(Result::ok)
                .for_each(drop);
        });
        let line = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => {
                let status = server.child.wait()?;
                return Err(io::Error::other(format!(
                    "the greeter server exited before printing its port ({status})"
                )));
            }
            Err(_) => {
                return Err(io::Error::other(format!(
                    "the greeter server printed no port within {STARTUP_TIMEOUT:?}"
                )));
            }
        };
        server.port = line.trim().parse().map_err(|_| {
            io::Error::other(format!("the greeter server printed {line:?}, not a port"))
        })?;
        Ok(server)
    }

    /// The bound port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, for a client.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for GreeterServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Python peer script of `tests/peers/python/` run with [`python_with_grpcio`]: it prints
/// the port it listens on, alone on its first stdout line. Killed on drop.
#[derive(Debug)]
pub struct PythonPeer {
    child: Child,
    port: u16,
}

impl PythonPeer {
    /// Runs `tests/peers/python/<script>` with `args` and reads its port.
    pub fn start(script: &str, args: &[&std::ffi::OsStr]) -> io::Result<Self> {
        let python = python_with_grpcio()?;
        let mut child = Command::new(&python)
            .arg("-u")
            .arg(workspace_root().join("tests/peers/python").join(script))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", python.display())))?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|stdout| BufReader::new(stdout).read_line(&mut line));
        let port = match (read, line.trim().parse()) {
            (Some(Ok(_)), Ok(port)) => port,
            _ => {
                let _ = child.kill();
                let status = child.wait()?;
                return Err(io::Error::other(format!(
                    "{script} printed {line:?}, not a port ({status})"
                )));
            }
        };
        Ok(Self { child, port })
    }

    /// The bound port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, for a client.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
