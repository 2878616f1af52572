//! TLS over real sockets: a TLS server made by the test (a CA and a server certificate from
//! rcgen, rustls in front of the in-repo test server). Negotiate and every transport use one
//! trust store: the CA as an extra root works for WebSockets, Server-Sent Events and Long
//! Polling; without it every transport fails with a certificate error; the dangerous option
//! accepts the unknown CA.

mod common;

use std::time::Duration;

use common::tls_server::tls_server;
use common::{echo, TRANSPORTS};
use hublink::{ErrorKind, HubConnectionBuilder, TransportKind};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

// scenario: ws.json.tls.extra-root, sse.json.tls.extra-root, lp.json.tls.extra-root
#[tokio::test]
async fn an_extra_root_is_trusted_by_negotiate_and_every_transport() {
    let server = tls_server(false).await;
    for transport in TRANSPORTS {
        let builder = HubConnectionBuilder::new()
            .with_url(&server.url)
            .with_root_certificate_pem(&server.ca_pem);
        echo(builder, transport).await;
    }
    // The WebSocket on its own (no negotiate before it) trusts the same roots.
    let builder = HubConnectionBuilder::new()
        .with_url(&server.url)
        .skip_negotiation(true)
        .with_root_certificate_pem(&server.ca_pem);
    echo(builder, TransportKind::WebSockets).await;
}

// scenario: any.any.tls.unknown-ca-refused
#[tokio::test]
async fn an_unknown_ca_is_refused_with_a_clear_error() {
    let server = tls_server(false).await;
    for transport in TRANSPORTS {
        let connection = HubConnectionBuilder::new()
            .with_url(&server.url)
            .with_transports([transport])
            .build()
            .unwrap();
        let error = timeout(WAIT, connection.start())
            .await
            .expect("fails in time")
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Negotiation, "{error:?}");
        assert!(error.to_string().contains("certificate"), "{error}");
    }
    let connection = HubConnectionBuilder::new()
        .with_url(&server.url)
        .skip_negotiation(true)
        .with_transports([TransportKind::WebSockets])
        .build()
        .unwrap();
    let error = timeout(WAIT, connection.start())
        .await
        .expect("fails in time")
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transport, "{error:?}");
    assert!(error.to_string().contains("certificate"), "{error}");
}

// scenario: any.any.tls.danger-accept-invalid-certs
#[tokio::test]
async fn the_dangerous_option_accepts_an_unknown_ca() {
    let server = tls_server(false).await;
    for transport in TRANSPORTS {
        let builder = HubConnectionBuilder::new()
            .with_url(&server.url)
            .danger_accept_invalid_certs(true);
        echo(builder, transport).await;
    }
}

#[test]
fn bad_pem_is_refused_when_building() {
    let built = HubConnectionBuilder::new()
        .with_url("https://example.com/hub")
        .with_root_certificate_pem("not a certificate")
        .build();
    let Err(error) = built else {
        panic!("bad PEM accepted");
    };
    assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error:?}");
}

// scenario: any.any.tls.client-certificate
#[tokio::test]
async fn a_client_certificate_is_presented_on_every_transport() {
    let server = tls_server(true).await;
    let (chain, key) = server.client_pem.clone().unwrap();
    for transport in TRANSPORTS {
        let builder = HubConnectionBuilder::new()
            .with_url(&server.url)
            .with_root_certificate_pem(&server.ca_pem)
            .with_client_certificate_pem(&chain, &key);
        echo(builder, transport).await;
    }
    // Without it the server refuses the handshake.
    let connection = HubConnectionBuilder::new()
        .with_url(&server.url)
        .with_root_certificate_pem(&server.ca_pem)
        .build()
        .unwrap();
    let error = timeout(WAIT, connection.start())
        .await
        .expect("fails in time")
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Negotiation, "{error:?}");
    assert!(!error.to_string().contains(&key), "{error}");
}
