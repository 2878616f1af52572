//! Access tokens against the in-repo test server over real sockets: a 401 on any request
//! (negotiate, the WebSocket upgrade, the Server-Sent Events GET, a poll, a send POST, a
//! stateful reconnect's upgrade) asks the factory for a new token once and retries that
//! request; tokens never appear in logs (tracing at TRACE) or error texts.
//!
//! The test server's `/generateJwtToken?uses=N` makes tokens that expire after N requests.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hublink::{HubConnectionBuilder, HubProtocol, TransportKind};
use hublink_testserver::{TestServer, TestServerOptions};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

/// Everything logged by every test of this file, at TRACE.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .init();
            captured
        })
        .clone()
}

/// An access-token factory that fetches tokens from the test server: the `n`th call's token
/// is valid for `uses(n)` requests. Records every token it handed out.
struct Tokens {
    handed_out: Arc<Mutex<Vec<String>>>,
}

impl Tokens {
    fn builder(
        server: &TestServer,
        path: &str,
        uses: impl Fn(usize) -> u64 + Send + Sync + 'static,
    ) -> (HubConnectionBuilder, Tokens) {
        let handed_out = Arc::new(Mutex::new(Vec::new()));
        let record = handed_out.clone();
        let base = server.base_url();
        let uses = Arc::new(uses);
        let http = reqwest::Client::new();
        let builder = HubConnectionBuilder::new()
            .with_url(format!("{base}{path}"))
            .with_access_token_factory(move || {
                let n = record.lock().unwrap().len() + 1;
                let url = format!("{base}/generateJwtToken?uses={}", uses(n));
                let http = http.clone();
                let record = record.clone();
                async move {
                    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
                    let token = response.text().await.map_err(|e| e.to_string())?;
                    record.lock().unwrap().push(token.clone());
                    Ok(Some(token))
                }
            });
        (builder, Tokens { handed_out })
    }

    fn count(&self) -> usize {
        self.handed_out.lock().unwrap().len()
    }

    fn assert_never_logged(&self, logs: &Captured, context: &str) {
        let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
        assert!(
            logs.contains("access token factory"),
            "{context}: the TRACE logs were captured"
        );
        for token in self.handed_out.lock().unwrap().iter() {
            let lines: Vec<&str> = logs
                .lines()
                .filter(|l| l.contains(token.as_str()))
                .collect();
            assert!(
                lines.is_empty(),
                "{context}: a token was logged: {lines:#?}"
            );
            // The signature part alone is unique to the token, too.
            let signature = token.rsplit('.').next().unwrap();
            assert!(
                !logs.contains(signature),
                "{context}: a token part was logged"
            );
        }
    }
}

async fn server() -> TestServer {
    TestServer::start(TestServerOptions::default())
        .await
        .expect("test server starts")
}

// scenario: any.any.auth.token-never-logged, any.any.auth.renew-on-401, ws.json.auth.renew-on-401, sse.json.auth.renew-on-401, lp.json.auth.renew-on-401
#[tokio::test]
async fn a_401_renews_the_token_once_and_retries_the_request_on_every_transport() {
    let logs = capture_logs();
    let server = server().await;
    for transport in [
        TransportKind::WebSockets,
        TransportKind::ServerSentEvents,
        TransportKind::LongPolling,
    ] {
        // The first token is refused by negotiate; the second is good for negotiate only, so
        // the transport's connect is refused; later ones are good for 3 requests each, so
        // polls and send POSTs keep being refused and retried.
        let (builder, tokens) = Tokens::builder(&server, "/authorizedhub", |n| match n {
            1 => 0,
            2 => 1,
            _ => 3,
        });
        let connection = builder
            .with_transports([transport])
            .with_protocol(HubProtocol::Json)
            .build()
            .unwrap();
        timeout(WAIT, connection.start())
            .await
            .expect("start in time")
            .unwrap_or_else(|e| panic!("{transport}: {e}"));
        assert!(tokens.count() >= 3, "{transport}: {}", tokens.count());
        for n in 0..10 {
            let echoed: String = timeout(WAIT, connection.invoke("Echo", (format!("m{n}"),)))
                .await
                .expect("invoke in time")
                .unwrap_or_else(|e| panic!("{transport}: {e}"));
            assert_eq!(echoed, format!("m{n}"));
        }
        if transport != TransportKind::WebSockets {
            // 10 invocations are at least 10 POSTs (and LP polls) of 3-use tokens.
            assert!(tokens.count() >= 5, "{transport}: {}", tokens.count());
        }
        connection.stop().await.unwrap();
        tokens.assert_never_logged(&logs, &transport.to_string());
    }
}

// scenario: any.any.auth.no-second-retry
#[tokio::test]
async fn a_second_401_fails_with_the_status_and_no_token_in_the_text() {
    let logs = capture_logs();
    let server = server().await;
    // Every token is refused: negotiate asks for a new one once, then gives up.
    let (builder, tokens) = Tokens::builder(&server, "/authorizedhub", |_| 0);
    let connection = builder.build().unwrap();
    let error = timeout(WAIT, connection.start())
        .await
        .expect("start in time")
        .unwrap_err();
    assert_eq!(error.kind(), hublink::ErrorKind::Negotiation, "{error:?}");
    assert_eq!(error.status(), Some(401), "{error:?}");
    assert_eq!(tokens.count(), 2, "the first token and one renewal");
    let text = format!("{error} {error:?}");
    for token in tokens.handed_out.lock().unwrap().iter() {
        assert!(!text.contains(token.as_str()), "{text}");
    }
    tokens.assert_never_logged(&logs, "negotiate");
}

// scenario: ws.json.auth.renew-on-stateful-reconnect
#[tokio::test]
async fn a_stateful_reconnect_with_an_expired_token_renews_it() {
    let logs = capture_logs();
    let server = server().await;
    // Each token is good for negotiate and one WebSocket upgrade: the reconnect's upgrade is
    // refused until the token is renewed.
    let (builder, tokens) = Tokens::builder(
        &server,
        "/authorizedhub?faults=drop_after_messages:40",
        |_| 2,
    );
    let connection = builder
        .with_transports([TransportKind::WebSockets])
        .with_stateful_reconnect()
        .build()
        .unwrap();
    timeout(WAIT, connection.start()).await.unwrap().unwrap();
    assert_eq!(tokens.count(), 1);
    let id = connection.connection_id();
    // The server drops the WebSocket after 40 messages; the invocations go on across it.
    for n in 0..60 {
        let echoed: String = timeout(WAIT, connection.invoke("Echo", (format!("m{n}"),)))
            .await
            .expect("invoke in time")
            .unwrap();
        assert_eq!(echoed, format!("m{n}"));
    }
    assert_eq!(connection.connection_id(), id, "the same connection");
    assert!(tokens.count() >= 2, "the reconnect renewed the token");
    connection.stop().await.unwrap();
    tokens.assert_never_logged(&logs, "stateful reconnect");
}
