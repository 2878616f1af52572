//! The scaled-out testbed for the tests: `scripts/testbed.sh` starts a real redis-server, two
//! hublink-testserver instances ("A" and "B") sharing it as their backplane, and HAProxy in
//! front of them (a sticky frontend with cookie affinity, a round-robin one without), in a
//! temporary directory; dropping the [`Testbed`] stops them all. A machine without
//! redis-server and haproxy (and no way to install them) fails the tests, with the script's
//! message.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct Testbed {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/testbed.sh")
}

fn run_script(args: &[&str]) -> Result<String, String> {
    let output = Command::new(script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "scripts/testbed.sh {} failed ({}):\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

impl Testbed {
    /// Starts everything; panics with the reason if something cannot start.
    pub fn start() -> Testbed {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().to_string_lossy().into_owned();
        let printed = run_script(&["start", &path]).unwrap_or_else(|e| panic!("{e}"));
        let env = printed
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Testbed { dir, env }
    }

    fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("scripts/testbed.sh printed no {name}"))
    }

    /// The hub at `path` (e.g. `/testhub`) through the frontend with cookie affinity.
    pub fn sticky(&self, path: &str) -> String {
        format!("{}{path}", self.var("TESTBED_STICKY_URL"))
    }

    /// The hub at `path` through the round-robin frontend (no affinity).
    pub fn round_robin(&self, path: &str) -> String {
        format!("{}{path}", self.var("TESTBED_ROUND_ROBIN_URL"))
    }

    /// SIGKILLs instance `name` ("A" or "B"): its connections end without a Close.
    pub fn kill(&self, name: &str) {
        let path = self.dir.path().to_string_lossy().into_owned();
        run_script(&["kill", &path, name]).unwrap_or_else(|e| panic!("{e}"));
    }

    /// The last lines of every process's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for name in [
            "instance-A.log",
            "instance-B.log",
            "haproxy.log",
            "redis.log",
        ] {
            let log = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            text.push_str(&format!("--- {name}\n"));
            for line in tail.into_iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let path = self.dir.path().to_string_lossy().into_owned();
        if let Err(e) = run_script(&["stop", &path]) {
            eprintln!("{e}");
        }
    }
}
