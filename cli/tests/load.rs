//! `hublink load` against the in-repo test server: 200 connections (the CI size; the 10,000
//! connection runs are in BENCHMARKS.md), every workload, one and two processes; the report's
//! counts must add up exactly.

use std::process::Stdio;
use std::time::Duration;

use hublink_testserver::{TestServer, TestServerOptions};
use serde_json::Value;
use tokio::process::Command;

const RUN_LIMIT: Duration = Duration::from_secs(120);
const CONNECTIONS: u64 = 200;

/// Runs `hublink load` with `extra` options and returns its JSON report (stdout) and stderr.
async fn load(server: &TestServer, extra: &[&str]) -> (Option<i32>, Value, String) {
    let url = format!("{}/testhub", server.base_url());
    let connections = CONNECTIONS.to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_hublink"))
        .args([
            "load",
            &url,
            "-n",
            &connections,
            "--ramp",
            "1000",
            "-o",
            "json",
        ])
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_LIMIT, output)
        .await
        .expect("the load run ended in time")
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("a JSON report ({e}); stderr: {stderr}"));
    (output.status.code(), report, stderr)
}

fn u(report: &Value, path: &str) -> u64 {
    report
        .pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} in {report}"))
}

async fn server() -> TestServer {
    TestServer::start(TestServerOptions::default())
        .await
        .unwrap()
}

fn assert_all_up_and_no_errors(report: &Value) {
    assert_eq!(u(report, "/connections/up"), CONNECTIONS, "{report}");
    assert_eq!(u(report, "/connections/failed"), 0, "{report}");
    assert_eq!(u(report, "/calls/failed"), 0, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert_eq!(u(report, "/closed_during_run"), 0, "{report}");
    assert!(
        report.get("histogram").is_none(),
        "no histogram in the final report"
    );
}

// scenario: any.any.load.echo
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_calls_run_at_the_rate_and_every_one_is_timed() {
    let server = server().await;
    let (code, report, stderr) = load(
        &server,
        &["--workload", "echo", "--rate", "5", "--duration", "2"],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_all_up_and_no_errors(&report);
    // 5 calls a second for 2 seconds on each connection, each timed.
    assert_eq!(u(&report, "/calls/ok"), CONNECTIONS * 10, "{report}");
    assert_eq!(u(&report, "/latency_us/count"), CONNECTIONS * 10);
    let (p50, p99, max) = (
        u(&report, "/latency_us/p50"),
        u(&report, "/latency_us/p99"),
        u(&report, "/latency_us/max"),
    );
    assert!(0 < p50 && p50 <= p99 && p99 <= max, "{report}");
    // The progress line and the summary go to stderr.
    assert!(stderr.contains("connections 200/200 up"), "{stderr}");
    assert!(stderr.contains("latency µs   p50 "), "{stderr}");
}

// scenario: any.any.load.broadcast
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_gets_every_broadcast() {
    let server = server().await;
    let (code, report, stderr) = load(
        &server,
        &[
            "--workload",
            "broadcast",
            "--rate",
            "5",
            "--duration",
            "2",
            "-q",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_all_up_and_no_errors(&report);
    assert_eq!(u(&report, "/calls/ok"), 10, "ten broadcasts: {report}");
    assert_eq!(u(&report, "/deliveries/expected"), 10 * CONNECTIONS);
    assert_eq!(
        u(&report, "/deliveries/received"),
        10 * CONNECTIONS,
        "{report}"
    );
    assert_eq!(
        u(&report, "/latency_us/count"),
        10 * CONNECTIONS,
        "fan-out latency per delivery"
    );
    assert!(stderr.is_empty(), "-q: {stderr}");
}

// scenario: any.any.load.group-chat-processes
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_chat_over_two_processes_delivers_every_message_to_its_group() {
    let server = server().await;
    let (code, report, stderr) = load(
        &server,
        &[
            "--workload",
            "group-chat",
            "--group-size",
            "10",
            "--rate",
            "2",
            "--duration",
            "1",
            "--processes",
            "2",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(u(&report, "/processes"), 2);
    assert_all_up_and_no_errors(&report);
    // Each of 200 connections sent 2 messages to its group of 10.
    assert_eq!(u(&report, "/calls/ok"), CONNECTIONS * 2, "{report}");
    assert_eq!(u(&report, "/deliveries/expected"), CONNECTIONS * 2 * 10);
    assert_eq!(
        u(&report, "/deliveries/received"),
        CONNECTIONS * 2 * 10,
        "{report}"
    );
    assert_eq!(
        u(&report, "/latency_us/count"),
        CONNECTIONS * 2 * 10,
        "merged histograms"
    );
}

// scenario: any.any.load.idle-memory
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_report_their_memory_and_a_json_file() {
    let server = server().await;
    let file = std::env::temp_dir().join(format!("hublink-load-{}.json", std::process::id()));
    let (code, report, stderr) = load(
        &server,
        &[
            "--workload",
            "idle",
            "--duration",
            "1",
            "-q",
            "--report",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_all_up_and_no_errors(&report);
    let per_connection = u(&report, "/memory/rss_per_connection_bytes");
    assert!(per_connection > 0 && per_connection < 4 << 20, "{report}");
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written, report);
    let _ = std::fs::remove_file(file);
}

// scenario: any.any.load.unreachable
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_where_nothing_connects_fails_and_says_why() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hub", closed.local_addr().unwrap());
    drop(closed);
    let output = Command::new(env!("CARGO_BIN_EXE_hublink"))
        .args(["load", &url, "-n", "5", "--duration", "1", "-q"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("hublink: error: could not connect: no connection could be opened (errors: {\"Negotiation\": 5}"),
        "{stderr}"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_hublink"))
        .args(["load", &url, "--processes", "0"])
        .output()
        .await
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
