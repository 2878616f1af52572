//! TLS outside the browser: one rustls configuration per set of options, used by the HTTP client
//! (negotiate, Server-Sent Events, Long Polling) and by the WebSocket, so both trust the same
//! roots: the operating system's (rustls-platform-verifier) plus the user's extra roots.
//! Optional client certificate; verification is on unless the user turns it off with
//! `danger_accept_invalid_certs`.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::error::{Error, Result};

/// The user's TLS settings.
#[derive(Clone, Default)]
pub(crate) struct TlsOptions {
    /// Extra trusted roots, PEM (each may hold several certificates).
    pub root_certificates_pem: Vec<String>,
    /// A client certificate: its chain (PEM) and its private key (PEM).
    pub client_certificate_pem: Option<(String, String)>,
    /// Accept any server certificate (no verification at all).
    pub danger_accept_invalid_certs: bool,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsOptions")
            .field("root_certificates", &self.root_certificates_pem.len())
            .field("client_certificate", &self.client_certificate_pem.is_some())
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .finish()
    }
}

fn certificates(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid_argument(format!("{what}: {e}")))?;
    if certificates.is_empty() {
        return Err(Error::invalid_argument(format!(
            "{what}: no PEM certificate found"
        )));
    }
    Ok(certificates)
}

impl TlsOptions {
    /// The rustls configuration these settings make. The one of the default settings is made
    /// once per process and shared: making it (the platform verifier, the crypto provider) is
    /// most of what opening a connection costs otherwise.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>> {
        static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        if self.is_default() {
            if let Some(config) = DEFAULT.get() {
                return Ok(config.clone());
            }
            let config = self.make_client_config()?;
            return Ok(DEFAULT.get_or_init(|| config).clone());
        }
        self.make_client_config()
    }

    fn is_default(&self) -> bool {
        self.root_certificates_pem.is_empty()
            && self.client_certificate_pem.is_none()
            && !self.danger_accept_invalid_certs
    }

    fn make_client_config(&self) -> Result<Arc<ClientConfig>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = Vec::new();
        for pem in &self.root_certificates_pem {
            roots.extend(certificates(pem, "root certificate")?);
        }
        let verifier: Arc<dyn ServerCertVerifier> = if self.danger_accept_invalid_certs {
            Arc::new(AcceptAnyCertificate(provider.clone()))
        } else {
            Arc::new(
                rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
                    .map_err(|e| Error::invalid_argument(format!("TLS roots: {e}")))?,
            )
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::invalid_argument(format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.client_certificate_pem {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => {
                let chain = certificates(chain, "client certificate")?;
                // The key's own error text may quote it: only say what failed.
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|_| {
                    Error::invalid_argument("client certificate key: no usable PEM private key")
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| Error::invalid_argument(format!("client certificate: {e}")))?
            }
        };
        Ok(Arc::new(config))
    }
}

/// `danger_accept_invalid_certs`: signatures are still checked, the certificate is not.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
