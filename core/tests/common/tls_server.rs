//! A TLS front made by the test for the in-repo test server: a CA and a server certificate
//! from rcgen, rustls in front of the test server, at https://127.0.0.1:PORT.

use std::sync::Arc;

use hublink_testserver::{TestServer, TestServerOptions};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};

/// A TLS front for the test server at https://127.0.0.1:PORT, with its CA's PEM.
pub struct TlsServer {
    /// `https://127.0.0.1:PORT/testhub`.
    pub url: String,
    /// The CA that issued the server certificate, PEM.
    pub ca_pem: String,
    /// With `tls_server(true)`: a client certificate (chain, key) the server accepts.
    pub client_pem: Option<(String, String)>,
    /// The plain server behind the TLS front.
    pub server: TestServer,
}

/// `client_auth`: the server requires a client certificate issued by its CA.
pub async fn tls_server(client_auth: bool) -> TlsServer {
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
        server,
    }
}
