//! The test server over real sockets: negotiate, WebSockets, Long Polling, SSE, bad input.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hublink_testserver::{TestServer, TestServerOptions};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const RS: char = '\u{1e}';

async fn server() -> TestServer {
    TestServer::start(TestServerOptions {
        long_poll_timeout: Duration::from_millis(500),
        ..TestServerOptions::default()
    })
    .await
    .expect("server starts")
}

async fn negotiate(base: &str, query: &str) -> Value {
    let res = reqwest::Client::new()
        .post(format!("{base}/testhub/negotiate{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookies: Vec<_> = res.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 3);
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("ok");
        match msg {
            Message::Text(t) => return t.to_string(),
            Message::Close(_) => panic!("closed"),
            _ => {}
        }
    }
}

async fn ws_json(base: &str) -> Ws {
    let url = format!("{}/testhub", base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::Text(
        format!("{{\"protocol\":\"json\",\"version\":1}}{RS}").into(),
    ))
    .await
    .unwrap();
    assert_eq!(next_text(&mut ws).await, format!("{{}}{RS}"));
    ws
}

#[tokio::test]
async fn negotiate_v0_and_v1() {
    let s = server().await;
    let v1 = negotiate(&s.base_url(), "?negotiateVersion=1").await;
    assert_eq!(v1["negotiateVersion"], 1);
    assert!(v1["connectionToken"].is_string());
    assert_ne!(v1["connectionToken"], v1["connectionId"]);
    let names: Vec<_> = v1["availableTransports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transport"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["WebSockets", "ServerSentEvents", "LongPolling"]);
    assert_eq!(
        v1["availableTransports"][1]["transferFormats"],
        serde_json::json!(["Text"])
    );
    assert!(v1.get("useStatefulReconnect").is_none());

    let v0 = negotiate(&s.base_url(), "").await;
    assert_eq!(v0["negotiateVersion"], 0);
    assert!(v0.get("connectionToken").is_none());

    let stateful = negotiate(
        &s.base_url(),
        "?negotiateVersion=1&useStatefulReconnect=true",
    )
    .await;
    assert_eq!(stateful["useStatefulReconnect"], true);

    let get = reqwest::get(format!("{}/testhub/negotiate", s.base_url()))
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    s.shutdown().await;
}

#[tokio::test]
async fn websocket_json_echo_and_errors() {
    let s = server().await;
    let mut ws = ws_json(&s.base_url()).await;
    ws.send(Message::Text(
        format!(
            "{{\"type\":1,\"invocationId\":\"1\",\"target\":\"echo\",\"arguments\":[\"hi\"]}}{RS}"
        )
        .into(),
    ))
    .await
    .unwrap();
    let reply: Value = serde_json::from_str(next_text(&mut ws).await.trim_end_matches(RS)).unwrap();
    assert_eq!(reply["type"], 3);
    assert_eq!(reply["result"], "hi");

    ws.send(Message::Text(
        format!(
            "{{\"type\":1,\"invocationId\":\"2\",\"target\":\"Echo\",\"arguments\":[1,2]}}{RS}"
        )
        .into(),
    ))
    .await
    .unwrap();
    let reply: Value = serde_json::from_str(next_text(&mut ws).await.trim_end_matches(RS)).unwrap();
    assert_eq!(
        reply["error"],
        "Failed to invoke 'Echo' due to an error on the server. InvalidDataException: Invocation provides 2 argument(s) but target expects 1."
    );
    s.shutdown().await;
}

#[tokio::test]
async fn malformed_frame_closes_only_that_connection() {
    let s = server().await;
    let mut bad = ws_json(&s.base_url()).await;
    let mut good = ws_json(&s.base_url()).await;
    bad.send(Message::Text(format!("{{\"type\":{RS}").into()))
        .await
        .unwrap();
    let close: Value =
        serde_json::from_str(next_text(&mut bad).await.trim_end_matches(RS)).unwrap();
    assert_eq!(close["type"], 7);
    assert!(close["error"]
        .as_str()
        .unwrap()
        .starts_with("Connection closed with an error."));

    good.send(Message::Text(
        format!(
            "{{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"ok\"]}}{RS}"
        )
        .into(),
    ))
    .await
    .unwrap();
    let reply: Value =
        serde_json::from_str(next_text(&mut good).await.trim_end_matches(RS)).unwrap();
    assert_eq!(reply["result"], "ok");
    s.shutdown().await;
}

#[tokio::test]
async fn long_polling_first_poll_data_delete() {
    let s = server().await;
    let base = s.base_url();
    let n = negotiate(&base, "?negotiateVersion=1").await;
    let url = format!(
        "{base}/testhub?id={}",
        n["connectionToken"].as_str().unwrap()
    );
    let http = reqwest::Client::new();

    let first = http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.bytes().await.unwrap().is_empty());

    let sent = http
        .post(&url)
        .body(format!("{{\"protocol\":\"json\",\"version\":1}}{RS}"))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let poll = http.get(&url).send().await.unwrap();
    assert_eq!(poll.status(), 200);
    assert_eq!(poll.text().await.unwrap(), format!("{{}}{RS}"));

    // An idle poll answers 200 empty after the poll timeout.
    let idle = http.get(&url).send().await.unwrap();
    assert_eq!(idle.status(), 200);
    assert!(idle.bytes().await.unwrap().is_empty());

    // DELETE completes a pending poll with 204.
    let pending = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move { http.get(&url).send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let deleted = http.delete(&url).send().await.unwrap();
    assert_eq!(deleted.status(), 202);
    assert_eq!(pending.await.unwrap(), 204);

    let unknown = http
        .get(format!("{base}/testhub?id=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let missing = http.get(format!("{base}/testhub")).send().await.unwrap();
    assert_eq!(missing.status(), 400);
    s.shutdown().await;
}

#[tokio::test]
async fn server_sent_events_framing() {
    let s = server().await;
    let base = s.base_url();
    let n = negotiate(&base, "?negotiateVersion=1").await;
    let url = format!(
        "{base}/testhub?id={}",
        n["connectionToken"].as_str().unwrap()
    );
    let http = reqwest::Client::new();
    let mut events = http
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(
        events.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    http.post(&url)
        .body(format!("{{\"protocol\":\"json\",\"version\":1}}{RS}"))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains(&format!("data: {{}}{RS}\r\n\r\n")) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }

    // MessagePack is refused on SSE with ASP.NET's handshake error.
    let n = negotiate(&base, "?negotiateVersion=1").await;
    let url = format!(
        "{base}/testhub?id={}",
        n["connectionToken"].as_str().unwrap()
    );
    let mut events = http
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    http.post(&url)
        .body(format!(
            "{{\"protocol\":\"messagepack\",\"version\":1}}{RS}"
        ))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while let Ok(Ok(Some(chunk))) =
        tokio::time::timeout(Duration::from_secs(5), events.chunk()).await
    {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format."), "{seen}");
    s.shutdown().await;
}
