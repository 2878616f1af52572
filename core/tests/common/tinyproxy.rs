//! A real forward proxy for the tests: Debian's tinyproxy, started on 127.0.0.1 with an
//! ephemeral port, a config and a log in a temporary directory, and killed when dropped.
//! `scripts/test.sh` installs it (`tinyproxy-bin`); a machine without it fails the tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long tinyproxy has to start accepting.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What the proxy allows.
#[derive(Default)]
pub struct TinyProxyOptions {
    /// The only ports CONNECT may reach; empty: any port.
    pub connect_ports: Vec<u16>,
    /// Required credentials (`BasicAuth user password`).
    pub basic_auth: Option<(String, String)>,
}

/// A running tinyproxy.
pub struct TinyProxy {
    port: u16,
    log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

fn executable() -> &'static str {
    ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .expect("tinyproxy is not installed: apt-get install tinyproxy-bin (scripts/test.sh does)")
}

impl TinyProxy {
    /// Starts tinyproxy and waits (bounded) until it accepts connections.
    pub fn start(options: TinyProxyOptions) -> TinyProxy {
        let dir = tempfile::tempdir().unwrap();
        // tinyproxy binds the port itself: take a free one and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("tinyproxy.log");
        let mut config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 100\nAllow 127.0.0.1\n\
             LogLevel Connect\nLogFile \"{}\"\n",
            log.display()
        );
        for allowed in &options.connect_ports {
            config.push_str(&format!("ConnectPort {allowed}\n"));
        }
        if let Some((user, password)) = &options.basic_auth {
            config.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let config_path = dir.path().join("tinyproxy.conf");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(executable())
            .arg("-d")
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.txt")).unwrap())
            .spawn()
            .expect("tinyproxy starts");
        let mut proxy = TinyProxy {
            port,
            log,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                let stderr = std::fs::read_to_string(proxy._dir.path().join("stderr.txt"));
                panic!("tinyproxy exited with {status}: {stderr:?}");
            }
            assert!(
                Instant::now() < deadline,
                "tinyproxy did not listen in time"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://user:password@127.0.0.1:PORT`.
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// The proxy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The requests the proxy received so far (`CONNECT host:port HTTP/1.1`,
    /// `GET http://… HTTP/1.1`, …), in order.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|line| line.split_once("Request (file descriptor "))
            .filter_map(|(_, rest)| rest.split_once("): "))
            .map(|(_, request)| request.to_owned())
            .collect()
    }
}

impl Drop for TinyProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
