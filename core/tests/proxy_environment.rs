//! The environment's proxy settings (`HTTP_PROXY`, `NO_PROXY`), through a real tinyproxy.
//! Environment variables belong to the whole process: this file is its own test binary with
//! one test, which sets them before any other thread runs.

mod common;

use common::tinyproxy::{TinyProxy, TinyProxyOptions};
use common::{echo, TRANSPORTS};
use hublink::HubConnectionBuilder;
use hublink_testserver::{TestServer, TestServerOptions};

// scenario: any.any.proxy.environment
#[test]
fn http_proxy_and_no_proxy_from_the_environment_apply_to_every_transport() {
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "REQUEST_METHOD",
    ] {
        std::env::remove_var(name);
    }
    let proxy = TinyProxy::start(TinyProxyOptions::default());
    std::env::set_var("HTTP_PROXY", proxy.url());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = TestServer::start(TestServerOptions::default())
            .await
            .unwrap();
        let hub = format!("{}/testhub", server.base_url());
        let authority = server.addr().to_string();
        let hub_builder = || HubConnectionBuilder::new().with_url(&hub);

        for transport in TRANSPORTS {
            echo(hub_builder(), transport).await;
        }
        let requests = proxy.requests();
        let through_proxy = |start: String| requests.iter().any(|r| r.starts_with(&start));
        assert!(
            through_proxy(format!("CONNECT {authority} ")),
            "{requests:?}"
        );
        assert!(through_proxy(format!("GET {hub}?id=")), "{requests:?}");
        assert!(through_proxy(format!("POST {hub}?id=")), "{requests:?}");
        let seen = requests.len();

        // The explicit "no proxy" wins over the environment.
        for transport in TRANSPORTS {
            echo(hub_builder().with_no_proxy(), transport).await;
        }
        // NO_PROXY exempts the host, for the WebSocket as for HTTP; `*` exempts every host.
        for no_proxy in ["localhost,127.0.0.1", "*"] {
            std::env::set_var("NO_PROXY", no_proxy);
            for transport in TRANSPORTS {
                echo(hub_builder(), transport).await;
            }
        }
        assert_eq!(proxy.requests().len(), seen, "{:?}", proxy.requests());
    });
}
