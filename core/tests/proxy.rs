//! HTTP proxies over real sockets, through a real forward proxy (Debian's tinyproxy, see
//! `common/tinyproxy.rs`): negotiate, Server-Sent Events and Long Polling are forwarded
//! (`http://` hubs) or tunnelled (`https://` hubs), the WebSocket always goes through a
//! `CONNECT` tunnel; `no_proxy` rules bypass the proxy for every transport alike; a refusing
//! proxy fails the start with its status, in time. The environment's proxy settings are tested
//! in `proxy_environment.rs` (a process of their own: they are process-wide).

mod common;

use std::time::Duration;

use common::tinyproxy::{TinyProxy, TinyProxyOptions};
use common::tls_server::tls_server;
use common::{echo, TRANSPORTS};
use hublink::{ErrorKind, HubConnectionBuilder, Proxy, TransportKind};
use hublink_testserver::{TestServer, TestServerOptions};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

async fn test_server() -> TestServer {
    TestServer::start(TestServerOptions::default())
        .await
        .unwrap()
}

/// The error `builder`'s start fails with, in time.
async fn start_error(builder: HubConnectionBuilder) -> hublink::Error {
    let connection = builder.build().unwrap();
    timeout(WAIT, connection.start())
        .await
        .expect("fails in time, without hanging")
        .expect_err("the start fails")
}

fn has(requests: &[String], start: &str) -> bool {
    requests.iter().any(|request| request.starts_with(start))
}

// scenario: ws.json.proxy.connect-tunnel, sse.json.proxy.forward, lp.json.proxy.forward
#[tokio::test]
async fn every_transport_goes_through_an_explicit_proxy() {
    let server = test_server().await;
    let hub = format!("{}/testhub", server.base_url());
    let authority = server.addr().to_string();
    for transport in TRANSPORTS {
        let proxy = TinyProxy::start(TinyProxyOptions::default());
        let builder = HubConnectionBuilder::new()
            .with_url(&hub)
            .with_proxy(proxy.url());
        echo(builder, transport).await;
        let requests = proxy.requests();
        assert!(
            has(&requests, &format!("POST {hub}/negotiate?")),
            "{transport}: negotiate forwarded: {requests:?}"
        );
        match transport {
            TransportKind::WebSockets => assert!(
                has(&requests, &format!("CONNECT {authority} ")),
                "the WebSocket tunnelled: {requests:?}"
            ),
            TransportKind::ServerSentEvents => assert!(
                has(&requests, &format!("GET {hub}?id=")),
                "the event stream forwarded: {requests:?}"
            ),
            TransportKind::LongPolling => {
                assert!(has(&requests, &format!("GET {hub}?id=")), "{requests:?}");
                assert!(has(&requests, &format!("POST {hub}?id=")), "{requests:?}");
            }
        }
        if transport != TransportKind::WebSockets {
            assert!(!has(&requests, "CONNECT "), "forwarded, not tunnelled");
        }
    }

    // Without negotiate the WebSocket is the only request: tunnelled too.
    let proxy = TinyProxy::start(TinyProxyOptions::default());
    let builder = HubConnectionBuilder::new()
        .with_url(&hub)
        .skip_negotiation(true)
        .with_proxy(proxy.url());
    echo(builder, TransportKind::WebSockets).await;
    assert_eq!(proxy.requests(), [format!("CONNECT {authority} HTTP/1.1")]);
}

// scenario: any.any.proxy.basic-auth
#[tokio::test]
async fn credentials_in_the_proxy_url_authorize_every_transport() {
    let server = test_server().await;
    let hub = format!("{}/testhub", server.base_url());
    let proxy = TinyProxy::start(TinyProxyOptions {
        basic_auth: Some(("hub".into(), "s3cr3t_pw".into())),
        ..Default::default()
    });
    for transport in TRANSPORTS {
        let builder = HubConnectionBuilder::new()
            .with_url(&hub)
            .with_proxy(proxy.url_with_credentials("hub", "s3cr3t_pw"));
        echo(builder, transport).await;
    }
    assert!(has(
        &proxy.requests(),
        &format!("CONNECT {} ", server.addr())
    ));
}

// scenario: any.any.proxy.no-proxy
#[tokio::test]
async fn hosts_in_no_proxy_bypass_the_proxy_on_every_transport() {
    let server = test_server().await;
    let hub = format!("{}/testhub", server.base_url());
    let proxy = TinyProxy::start(TinyProxyOptions::default());
    for no_proxy in ["127.0.0.1", "example.com, 127.0.0.0/8", "*"] {
        for transport in TRANSPORTS {
            let builder = HubConnectionBuilder::new()
                .with_url(&hub)
                .with_proxy_setting(Proxy::Url {
                    url: proxy.url(),
                    no_proxy: no_proxy.into(),
                });
            echo(builder, transport).await;
        }
    }
    // A host suffix: `localhost` is in it, 127.0.0.1 is not.
    for transport in TRANSPORTS {
        let builder = HubConnectionBuilder::new()
            .with_url(format!("http://localhost:{}/testhub", server.addr().port()))
            .with_proxy_setting(Proxy::Url {
                url: proxy.url(),
                no_proxy: ".localhost,localhost".into(),
            });
        echo(builder, transport).await;
    }
    assert_eq!(proxy.requests(), Vec::<String>::new(), "{}", proxy.log());
    // The same proxy is used when the rule does not match.
    let builder = HubConnectionBuilder::new()
        .with_url(&hub)
        .with_proxy_setting(Proxy::Url {
            url: proxy.url(),
            no_proxy: "localhost".into(),
        });
    echo(builder, TransportKind::WebSockets).await;
    assert!(has(&proxy.requests(), "CONNECT "), "{}", proxy.log());
}

// scenario: any.any.proxy.refused
#[tokio::test]
async fn a_refusing_proxy_fails_the_start_with_its_status() {
    let server = test_server().await;
    let hub = format!("{}/testhub", server.base_url());

    // CONNECT to the server's port is not allowed: negotiate is forwarded, the tunnel refused.
    let unused_port = server.addr().port().wrapping_add(1).max(1);
    let proxy = TinyProxy::start(TinyProxyOptions {
        connect_ports: vec![unused_port],
        ..Default::default()
    });
    let proxy_address = proxy.url().trim_start_matches("http://").to_owned();
    for skip_negotiation in [false, true] {
        let error = start_error(
            HubConnectionBuilder::new()
                .with_url(&hub)
                .with_transports([TransportKind::WebSockets])
                .skip_negotiation(skip_negotiation)
                .with_proxy(proxy.url()),
        )
        .await;
        let text = error.to_string();
        assert!(
            text.contains(&format!(
                "proxy {proxy_address} refused CONNECT {}: 403 ",
                server.addr()
            )),
            "{text}"
        );
        assert_eq!(error.kind(), ErrorKind::Transport, "{error:?}");
    }

    // No credentials: 407; wrong ones: tinyproxy answers 401. The password is in no error.
    let proxy = TinyProxy::start(TinyProxyOptions {
        basic_auth: Some(("hub".into(), "right".into())),
        ..Default::default()
    });
    let wrong = proxy.url_with_credentials("hub", "wrong-secret");
    for (proxy_url, status) in [(proxy.url(), 407), (wrong.clone(), 401)] {
        let error = start_error(
            HubConnectionBuilder::new()
                .with_url(&hub)
                .with_proxy(&proxy_url),
        )
        .await;
        assert_eq!(error.kind(), ErrorKind::Negotiation, "{error:?}");
        assert_eq!(error.status(), Some(status), "{error:?}");
        let error = start_error(
            HubConnectionBuilder::new()
                .with_url(&hub)
                .with_transports([TransportKind::WebSockets])
                .skip_negotiation(true)
                .with_proxy(&proxy_url),
        )
        .await;
        let text = error.to_string();
        let reason = if status == 407 {
            "407 Proxy Authentication Required"
        } else {
            "401 Unauthorized"
        };
        assert!(
            text.ends_with(&format!("CONNECT {}: {reason})", server.addr())),
            "{text}"
        );
        assert_eq!(error.status(), Some(status), "{error:?}");
    }
    for error in [
        start_error(
            HubConnectionBuilder::new()
                .with_url(&hub)
                .with_proxy(&wrong),
        )
        .await,
        start_error(
            HubConnectionBuilder::new()
                .with_url(&hub)
                .with_transports([TransportKind::WebSockets])
                .skip_negotiation(true)
                .with_proxy(&wrong),
        )
        .await,
    ] {
        assert!(!format!("{error:?}").contains("wrong-secret"), "{error:?}");
    }

    // Nothing listening where the proxy should be.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = start_error(
        HubConnectionBuilder::new()
            .with_url(&hub)
            .with_transports([TransportKind::WebSockets])
            .skip_negotiation(true)
            .with_proxy(format!("http://127.0.0.1:{closed_port}")),
    )
    .await;
    assert!(
        error
            .to_string()
            .contains(&format!("proxy 127.0.0.1:{closed_port}: could not connect")),
        "{error}"
    );
}

// scenario: any.json.proxy.tls-tunnel
#[tokio::test]
async fn https_hubs_are_tunnelled_with_tls_inside_on_every_transport() {
    let server = tls_server(false).await;
    let authority = server
        .url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for transport in TRANSPORTS {
        let proxy = TinyProxy::start(TinyProxyOptions::default());
        let builder = HubConnectionBuilder::new()
            .with_url(&server.url)
            .with_root_certificate_pem(&server.ca_pem)
            .with_proxy(proxy.url());
        echo(builder, transport).await;
        let requests = proxy.requests();
        assert!(
            has(&requests, &format!("CONNECT {authority} ")),
            "{transport}: {requests:?}"
        );
        assert!(
            requests.iter().all(|r| r.starts_with("CONNECT ")),
            "nothing in clear: {requests:?}"
        );
    }
}

#[test]
fn proxy_urls_hublink_cannot_use_are_refused_when_building() {
    for url in [
        "socks5://127.0.0.1:1080",
        "not a url",
        "https://127.0.0.1:3128",
    ] {
        let built = HubConnectionBuilder::new()
            .with_url("http://example.com/hub")
            .with_proxy(url)
            .build();
        let Err(error) = built else {
            panic!("{url} accepted");
        };
        assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error:?}");
    }
}
