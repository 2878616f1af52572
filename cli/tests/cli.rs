//! The `hublink` binary against the in-repo test server: its output, its exit codes, and one
//! clear line on stderr for bad input.

use std::process::Stdio;
use std::time::Duration;

use hublink_testserver::{TestServer, TestServerOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Bounds every run of the binary: a hang is a failure, not a stuck test.
const RUN_LIMIT: Duration = Duration::from_secs(30);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The run failed with `code` and said why in exactly one line that contains `text` (no
    /// panic, no debug output).
    fn assert_fails(&self, code: i32, text: &str) {
        assert_eq!(
            self.code,
            Some(code),
            "stdout {:?} stderr {:?}",
            self.stdout,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr, got {:?}", self.stderr);
        assert!(lines[0].starts_with("hublink: error: "), "{:?}", lines[0]);
        assert!(
            lines[0].contains(text),
            "{:?} should contain {text:?}",
            lines[0]
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
    }
}

fn hublink() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hublink"));
    command
        .env_remove("RUST_LOG")
        .env_remove("HUBLINK_TOKEN")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn run(args: &[&str]) -> Run {
    finish(hublink().args(args).output()).await
}

async fn finish(
    output: impl std::future::Future<Output = std::io::Result<std::process::Output>>,
) -> Run {
    let output = tokio::time::timeout(RUN_LIMIT, output)
        .await
        .expect("hublink ended in time")
        .expect("hublink ran");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

async fn server() -> TestServer {
    TestServer::start(TestServerOptions::default())
        .await
        .unwrap()
}

fn hub(server: &TestServer) -> String {
    format!("{}/testhub", server.base_url())
}

// scenario: ws.json.cli.call, sse.json.cli.call, lp.msgpack.cli.call
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_prints_the_result_as_json_over_each_transport_and_protocol() {
    let server = server().await;
    let url = hub(&server);
    for (transport, protocol) in [
        ("webSockets", "json"),
        ("ServerSentEvents", "json"),
        ("longpolling", "msgpack"),
        ("WebSockets", "messagepack"),
    ] {
        let result = run(&[
            "call",
            &url,
            "EchoComplexObject",
            r#"{"n":[1,2.5,"x",null,true]}"#,
            "-t",
            transport,
            "-p",
            protocol,
        ])
        .await;
        assert_eq!(
            result.code,
            Some(0),
            "{transport}/{protocol}: {}",
            result.stderr
        );
        assert_eq!(
            result.lines(),
            [r#"{"n":[1,2.5,"x",null,true]}"#],
            "{transport}/{protocol}"
        );
        let transport_name = run(&[
            "call",
            &url,
            "GetActiveTransportName",
            "-t",
            transport,
            "-p",
            protocol,
        ])
        .await;
        let expected = hublink::parse_transport(transport).unwrap()[0].to_string();
        assert_eq!(
            transport_name.lines(),
            [format!("\"{expected}\"")],
            "{}",
            transport_name.stderr
        );
    }
}

// scenario: any.any.cli.pretty-output
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pretty_output_indents_and_a_void_method_prints_null() {
    let server = server().await;
    let url = hub(&server);
    let pretty = run(&["call", &url, "Echo", r#"{"a":[1]}"#, "--output", "pretty"]).await;
    assert_eq!(
        pretty.stdout, "{\n  \"a\": [\n    1\n  ]\n}\n",
        "{}",
        pretty.stderr
    );
    let void = run(&["call", &url, "JoinGroup", r#""g""#]).await;
    assert_eq!(void.lines(), ["null"], "{}", void.stderr);
}

// scenario: any.any.cli.hub-error
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hub_method_exits_1_with_the_servers_text() {
    let server = server().await;
    let result = run(&["call", &hub(&server), "ThrowException", r#""no good""#]).await;
    result.assert_fails(1, "no good");
    assert!(result.stdout.is_empty());
}

// scenario: any.any.cli.send
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reaches_the_server_once() {
    let server = server().await;
    let url = hub(&server);
    let sent = run(&["send", &url, "Tally", r#""cli/send""#]).await;
    assert_eq!(sent.code, Some(0), "{}", sent.stderr);
    assert!(sent.stdout.is_empty());
    let counts = run(&["call", &url, "TallyCounts", r#""cli/""#]).await;
    assert_eq!(counts.lines(), [r#"{"cli/send":1}"#], "{}", counts.stderr);
}

// scenario: any.any.cli.stream
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_prints_each_item_on_its_own_line() {
    let server = server().await;
    let result = run(&[
        "stream",
        &hub(&server),
        "StreamCount",
        "1000",
        "-p",
        "msgpack",
    ])
    .await;
    assert_eq!(result.code, Some(0), "{}", result.stderr);
    let expected: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    assert_eq!(result.lines(), expected);
    let failing = run(&[
        "stream",
        &hub(&server),
        "StreamThrowException",
        r#""broken""#,
    ])
    .await;
    failing.assert_fails(1, "broken");
}

// scenario: any.any.cli.stream-ctrl-c
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_the_stream_on_the_server_and_exits_130() {
    let server = server().await;
    let url = hub(&server);
    let mut child = hublink()
        .args(["stream", &url, "InfiniteStream", "-vvv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once the stream's invocation went out (-vvv logs every frame sent).
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    while !log.contains(r#"\"target\":\"InfiniteStream\""#) {
        let line = tokio::time::timeout(RUN_LIMIT, stderr.next_line())
            .await
            .expect("a log line in time")
            .unwrap()
            .expect("hublink logs its connection");
        log.push_str(&line);
        log.push('\n');
    }
    assert_eq!(cancelled_streams(&url).await, "0");
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    while let Some(line) = stderr.next_line().await.unwrap() {
        log.push_str(&line);
        log.push('\n');
    }
    let status = tokio::time::timeout(RUN_LIMIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.ends_with("hublink: error: interrupted\n"), "{log}");
    wait_for_cancelled_streams(&url, 1).await;
}

async fn cancelled_streams(url: &str) -> String {
    let result = run(&["call", url, "CancelledStreams"]).await;
    assert_eq!(result.code, Some(0), "{}", result.stderr);
    result.stdout.trim().to_owned()
}

/// Waits (bounded) until the server has counted `expected` cancelled streams.
async fn wait_for_cancelled_streams(url: &str, expected: i64) {
    let mut last = String::new();
    for _ in 0..50 {
        last = cancelled_streams(url).await;
        if last == expected.to_string() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server counted {last} cancelled streams, not {expected}");
}

// scenario: any.any.cli.listen
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_prints_every_call_of_the_methods_as_a_json_line() {
    let server = server().await;
    let result = run(&[
        "listen",
        &hub(&server),
        "--on",
        "numbered",
        "--count",
        "3",
        "--then-invoke",
        "EmitNumbered",
        "--arg",
        "10",
        "--arg",
        "3",
    ])
    .await;
    assert_eq!(result.code, Some(0), "{}", result.stderr);
    assert_eq!(
        result.lines(),
        [
            "3",
            r#"{"method":"numbered","arguments":[10]}"#,
            r#"{"method":"numbered","arguments":[11]}"#,
            r#"{"method":"numbered","arguments":[12]}"#,
        ]
    );
}

// scenario: any.any.cli.listen-broadcast
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_receives_what_another_client_broadcasts() {
    let server = server().await;
    let url = hub(&server);
    let listener = hublink()
        .args([
            "listen",
            &url,
            "--on",
            "Message",
            "--count",
            "1",
            "--timeout",
            "20",
            "-v",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Broadcast until the listener has it (it may not be connected yet the first times).
    let output = listener.wait_with_output();
    tokio::pin!(output);
    let result = loop {
        tokio::select! {
            out = &mut output => break out.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                let sent = run(&["send", &url, "SendToAll", r#""hello all""#]).await;
                assert_eq!(sent.code, Some(0), "{}", sent.stderr);
            }
        }
    };
    assert_eq!(result.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(result.stdout).unwrap(),
        "{\"method\":\"Message\",\"arguments\":[\"hello all\"]}\n"
    );
}

// scenario: any.any.cli.repl
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repl_runs_commands_from_standard_input() {
    let server = server().await;
    let mut child = hublink()
        .args(["repl", &hub(&server)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let script = concat!(
        "invoke Echo {\"a\": [1, 2]}\n",
        "on Numbered\n",
        "invoke EmitNumbered 5 2\n",
        "stream StreamCount 3\n",
        "invoke ThrowException \"bad\"\n",
        "invoke Echo not-json\n",
        "frobnicate\n",
        "send Tally \"repl/1\"\n",
        "invoke TallyCounts \"repl/\"\n",
        "quit\n",
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).await.unwrap();
    drop(stdin);
    let result = finish(child.wait_with_output()).await;
    assert_eq!(result.code, Some(0), "{}", result.stderr);
    let lines = result.lines();
    assert!(lines[0].starts_with("connected to "), "{lines:?}");
    let lines = &lines[1..];
    assert_eq!(lines[0], r#"{"a":[1,2]}"#);
    // The server sends both Numbered calls before EmitNumbered's result, but hublink runs
    // handlers on a task of their own: the result may be printed between or before them.
    let mut emitted = lines[1..4].to_vec();
    emitted.sort_unstable();
    assert_eq!(
        emitted,
        [
            "2",
            r#"{"method":"Numbered","arguments":[5]}"#,
            r#"{"method":"Numbered","arguments":[6]}"#
        ]
    );
    assert_eq!(&lines[4..7], ["0", "1", "2"]);
    assert!(
        lines[7].starts_with("error: ") && lines[7].contains("bad"),
        "{}",
        lines[7]
    );
    assert!(
        lines[8].starts_with("error: argument 1 is not JSON"),
        "{}",
        lines[8]
    );
    assert_eq!(
        lines[9],
        "error: unknown command 'frobnicate'; 'help' lists them"
    );
    assert_eq!(lines[10], r#"{"repl/1":1}"#);
    assert_eq!(lines.len(), 11, "{lines:?}");
}

// scenario: any.any.cli.bad-arguments
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_command_lines_exit_2_with_one_clear_line() {
    // Nothing listens there: a usage error must come before any connection attempt.
    let nowhere = "http://127.0.0.1:9/hub";
    run(&["call", nowhere, "Echo", "hello"]).await.assert_fails(
        2,
        "argument 1 of Echo is not JSON: expected value at line 1 column 1 (a string needs JSON quotes: '\"hello\"')",
    );
    run(&["call", nowhere, "Echo", "{\"a\":"])
        .await
        .assert_fails(
            2,
            "argument 1 of Echo is not JSON: EOF while parsing a value at line 1 column 5",
        );
    run(&["call", nowhere, "Echo", "1", "-t", "carrier-pigeon"])
        .await
        .assert_fails(2, "Unknown transport 'carrier-pigeon': use ");
    run(&["call", nowhere, "Echo", "1", "-H", "no colon"])
        .await
        .assert_fails(2, "a header is 'Name: value', not 'no colon'");
    run(&["call", "ftp://example.com/hub", "Echo", "1"])
        .await
        .assert_fails(2, "must use http or https");
    run(&["call", nowhere, "Echo", "1", "--timeout", "-1"])
        .await
        .assert_fails(2, "--timeout must be a positive number of seconds");
    let negative = run(&["call", nowhere, "Echo", "-1", "--timeout", "0.001"]).await;
    assert_ne!(
        negative.code,
        Some(2),
        "-1 is an argument: {}",
        negative.stderr
    );
    let unknown_option = run(&["call", nowhere, "Echo", "--frobnicate"]).await;
    assert_eq!(unknown_option.code, Some(2));
    assert!(unknown_option
        .stderr
        .contains("unexpected argument '--frobnicate'"));
}

// scenario: any.any.cli.unreachable
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_exits_3_and_a_silent_one_times_out_with_6() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}/hub");
    run(&["call", &url, "Echo", "1"])
        .await
        .assert_fails(3, "could not connect: ");
    // A listener that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hub", silent.local_addr().unwrap());
    let started = std::time::Instant::now();
    run(&["call", &url, "Echo", "1", "--timeout", "1"])
        .await
        .assert_fails(6, "timed out after 1 s while connecting");
    assert!(started.elapsed() < Duration::from_secs(10));
}

// scenario: any.any.cli.token-command
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_command_runs_again_when_a_token_is_refused() {
    let server = server().await;
    let url = format!("{}/authorizedhub", server.base_url());
    let unauthorized = run(&["call", &url, "Echo", "1"]).await;
    unauthorized.assert_fails(4, "401");
    // Tokens good for one request: negotiate uses it, the WebSocket's upgrade is refused
    // with 401 and needs a new one.
    let fetch_token = format!(
        "python3 -c \"import urllib.request; print(urllib.request.urlopen('{}/generateJwtToken?uses=1').read().decode())\"",
        server.base_url()
    );
    let with_command = run(&[
        "call",
        &url,
        "Echo",
        "2",
        "-t",
        "webSockets",
        "--token-command",
        &fetch_token,
    ])
    .await;
    assert_eq!(with_command.code, Some(0), "{}", with_command.stderr);
    assert_eq!(with_command.lines(), ["2"]);
    // The same with a fixed token: refused on the second request, and the token never shows.
    let token = std::process::Command::new("sh")
        .args(["-c", &fetch_token])
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    assert!(!token.is_empty());
    let fixed = run(&[
        "call",
        &url,
        "Echo",
        "3",
        "-t",
        "webSockets",
        "--token",
        &token,
        "-vvv",
    ])
    .await;
    assert_eq!(fixed.code, Some(4), "{}", fixed.stderr);
    assert!(
        !fixed.stderr.contains(&token),
        "the token was printed: {}",
        fixed.stderr
    );
    let failing = run(&[
        "call",
        &url,
        "Echo",
        "4",
        "--token-command",
        "echo oops >&2; exit 7",
    ])
    .await;
    failing.assert_fails(3, "the token command failed (exit status: 7): oops");
}

// scenario: any.any.cli.completions
#[tokio::test]
async fn completions_are_generated_for_the_shells() {
    let bash = run(&["completions", "bash"]).await;
    assert_eq!(bash.code, Some(0));
    assert!(
        bash.stdout.contains("complete -F _hublink"),
        "{}",
        &bash.stdout[..200.min(bash.stdout.len())]
    );
    let help = run(&["--help"]).await;
    assert!(help.stdout.contains("Exit codes:"), "{}", help.stdout);
}
