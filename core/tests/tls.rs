//! TLS over real sockets: a TLS server made by the test (a CA and a server certificate from
//! rcgen, rustls in front of the in-repo test server). Negotiate and every transport use one
//! trust store: the CA as an extra root works for WebSockets, Server-Sent Events and Long
//! Polling; without it every transport fails with a certificate error; the dangerous option
//! accepts the unknown CA.

use std::sync::Arc;
use std::time::Duration;

use hublink::{ErrorKind, HubConnectionBuilder, TransportKind};
use hublink_testserver::{TestServer, TestServerOptions};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

/// A TLS front for the test server at https://127.0.0.1:PORT, with its CA's PEM.
struct TlsServer {
    url: String,
    ca_pem: String,
    /// With `tls_server(true)`: a client certificate (chain, key) the server accepts.
    client_pem: Option<(String, String)>,
    _server: TestServer,
}

/// `client_auth`: the server requires a client certificate issued by its CA.
async fn tls_server(client_auth: bool) -> TlsServer {
    let server = TestServer::start(TestServerOptions::default())
        .await
        .unwrap();
    let backend = server.addr();

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hublink test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let (builder, client_pem) = if client_auth {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hublink test client");
        let client = params.signed_by(&client_key, &ca).unwrap();
        (
            builder.with_client_cert_verifier(verifier),
            Some((client.pem(), client_key.serialize_pem())),
        )
    } else {
        (builder.with_no_client_auth(), None)
    };
    let config = builder
        .with_single_cert(
            vec![leaf.der().clone(), CertificateDer::from(ca.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to do.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    TlsServer {
        url: format!("https://127.0.0.1:{port}/testhub"),
        ca_pem: ca.pem(),
        client_pem,
        _server: server,
    }
}

const TRANSPORTS: [TransportKind; 3] = [
    TransportKind::WebSockets,
    TransportKind::ServerSentEvents,
    TransportKind::LongPolling,
];

async fn echo(builder: HubConnectionBuilder, transport: TransportKind) {
    let connection = builder.with_transports([transport]).build().unwrap();
    timeout(WAIT, connection.start())
        .await
        .expect("start in time")
        .unwrap_or_else(|e| panic!("{transport}: {e}"));
    let echoed: String = connection.invoke("Echo", ("over TLS",)).await.unwrap();
    assert_eq!(echoed, "over TLS");
    connection.stop().await.unwrap();
}

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
