//! The test server as a separate process: built with cargo, started on 127.0.0.1 port 0, its
//! URL read (bounded) from its stdout, and stopped by PID (SIGTERM, then SIGKILL) on drop.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to print its URL.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGTERM'd server may take to exit before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Builds `hublink-testserver` in release mode (a no-op when it is fresh) and returns its path.
pub fn build() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    eprintln!("building hublink-testserver (release)…");
    let status = Command::new(&cargo)
        .args(["build", "--quiet", "--release", "-p", "hublink-testserver"])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
    if !status.success() {
        return Err(format!(
            "`cargo build --release -p hublink-testserver` failed ({status})"
        ));
    }
    // <target>/<profile>/hublink-benchmarks → <target>/release/hublink-testserver
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot find the target directory")?;
    let server = target.join("release").join("hublink-testserver");
    if server.is_file() {
        Ok(server)
    } else {
        Err(format!(
            "{} not found (pass --server PATH, e.g. with another CARGO_TARGET_DIR)",
            server.display()
        ))
    }
}

/// A running test server process.
pub struct ServerProcess {
    child: Child,
    base_url: String,
}

impl ServerProcess {
    /// Starts `binary` on 127.0.0.1 with an OS-chosen port (on CPU `cpu` alone, if given) and
    /// waits for its URL line.
    pub fn start(binary: &Path, cpu: Option<usize>) -> Result<Self, String> {
        let mut command = Command::new(binary);
        command
            .args(["--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(cpu) = cpu {
            // SAFETY: the closure runs in the forked child before exec and only makes the
            // sched_setaffinity system call (through pin_current_thread), which is
            // async-signal-safe; it allocates nothing.
            unsafe {
                command.pre_exec(move || crate::cpu::pin_current_thread(cpu));
            }
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(read);
        });
        let mut server = ServerProcess {
            child,
            base_url: String::new(),
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) if line.trim().starts_with("http://127.0.0.1:") => {
                server.base_url = line.trim().to_owned();
                Ok(server)
            }
            Ok(Ok(line)) => Err(format!("the server printed {line:?} instead of its URL")),
            Ok(Err(e)) => Err(format!("reading the server's stdout: {e}")),
            Err(_) => Err(format!(
                "the server printed no URL within {} s",
                START_TIMEOUT.as_secs()
            )),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the PID of our own child, which has not been reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("the server did not exit after SIGTERM: killing PID {pid}");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
