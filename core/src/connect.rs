//! Opening a connection: negotiate (with redirects), choose a transport (with fallback),
//! and complete the hub handshake.

use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{debug, warn};
use url::Url;

use crate::access_token::{is_unauthorized_response, AccessToken};
use crate::error::ErrorKind;
use crate::error::{Error, Result};
use crate::http::{reqwest_failure, HttpClient, HttpOptions};
use crate::options::AccessTokenFactory;
use crate::protocol::handshake::{
    handshake_error_text, handshake_parse_failure_text, parse_handshake_response, HandshakeRequest,
    HANDSHAKE_VERSION, STATEFUL_RECONNECT_HANDSHAKE_VERSION,
};
use crate::protocol::negotiate::{
    check_negotiate_status, negotiate_failure_text, parse_negotiate_response, NegotiateRedirects,
    NegotiateResponse, NegotiateStep,
};
use crate::protocol::transports::{
    check_skip_negotiation, select_transports_in_environment, TransportKind, TransportSet,
};
use crate::protocol::{HubProtocol, MessageDecoder};
use crate::runtime;
use crate::transport::{self, ConnectRequest, OutgoingFrame, TransportEvent, TransportLink};

/// The largest negotiate answer read (an answer is a few hundred bytes).
const MAX_NEGOTIATE_RESPONSE: usize = 1024 * 1024;

/// Everything the builder decided about how to connect.
#[derive(Clone)]
pub(crate) struct ConnectOptions {
    pub url: Url,
    pub protocol: HubProtocol,
    pub transports: TransportSet,
    pub skip_negotiation: bool,
    pub access_token_factory: Option<AccessTokenFactory>,
    pub http: HttpOptions,
    pub handshake_timeout: Duration,
    pub max_message_size: usize,
    /// Whether message contents may appear in logs (off by default: they may be private).
    pub log_message_content: bool,
}

/// A connection with a running transport and a completed handshake.
pub(crate) struct Established {
    pub link: TransportLink,
    pub connection_id: Option<String>,
    pub transport: TransportKind,
    /// Holds whatever arrived right after the handshake answer.
    pub decoder: MessageDecoder,
    /// When the server agreed to stateful reconnect: how to reconnect the same connection.
    pub stateful: Option<ConnectRequest>,
}

/// Negotiates, starts a transport and completes the handshake.
pub(crate) async fn establish(
    options: &ConnectOptions,
    http: &HttpClient,
    stateful_reconnect: bool,
) -> Result<Established> {
    let opened = open_transport(options, http, stateful_reconnect).await?;
    let transport = opened.link.kind;
    debug!(%transport, stateful = opened.stateful.is_some(), "transport started");
    let version = if opened.stateful.is_some() {
        STATEFUL_RECONNECT_HANDSHAKE_VERSION
    } else {
        HANDSHAKE_VERSION
    };
    let (link, decoder) = handshake(options, opened.link, version).await?;
    Ok(Established {
        link,
        connection_id: opened.connection_id,
        transport,
        decoder,
        stateful: opened.stateful,
    })
}

struct Opened {
    link: TransportLink,
    connection_id: Option<String>,
    stateful: Option<ConnectRequest>,
}

async fn access_token(options: &ConnectOptions) -> Result<AccessToken> {
    AccessToken::from_factory(options.access_token_factory.clone()).await
}

async fn open_transport(
    options: &ConnectOptions,
    http: &HttpClient,
    stateful_reconnect: bool,
) -> Result<Opened> {
    let format = options.protocol.transfer_format();
    if options.skip_negotiation {
        check_skip_negotiation(options.transports)
            .map_err(|e| Error::invalid_argument(e.to_string()))?;
        let request = ConnectRequest {
            url: options.url.clone(),
            format,
            access_token: access_token(options).await?,
            http: http.clone(),
            max_message_size: options.max_message_size,
        };
        let transport = transport::builtin(TransportKind::WebSockets).ok_or_else(|| {
            Error::transport("'WebSockets' is not supported in your environment.")
        })?;
        return Ok(Opened {
            link: transport.connect(request).await?,
            connection_id: None,
            stateful: None,
        });
    }

    let (mut response, mut base_url, mut token) =
        negotiate(options, http, stateful_reconnect).await?;
    // A transport this platform lacks is skipped with the official text, not tried.
    let mut attempts = select_transports_in_environment(
        &response.available_transports,
        options.transports,
        format,
        transport::available(),
    )
    .into_attempts();
    let mut refusals = Vec::new();
    while let Some(next) = attempts.next_attempt() {
        if next.renegotiate {
            (response, base_url, token) = negotiate(options, http, stateful_reconnect).await?;
        }
        let transport = transport::builtin(next.transport)
            .expect("the selection offers only the transports this platform has");
        let request = ConnectRequest {
            url: response.connect_url(&base_url),
            format,
            access_token: token.clone(),
            http: http.clone(),
            max_message_size: options.max_message_size,
        };
        match transport.connect(request.clone()).await {
            Ok(link) => {
                let stateful = (response.use_stateful_reconnect
                    && next.transport.supports_stateful_reconnect())
                .then_some(request);
                return Ok(Opened {
                    link,
                    connection_id: Some(response.connection_id),
                    stateful,
                });
            }
            Err(e) => {
                warn!(transport = %transport.kind(), error = %e, "transport failed to start");
                attempts.failed(next.transport, &e.to_string());
                refusals.push(e.status());
            }
        }
    }
    let error = Error::transport(attempts.error_text());
    Err(match shared_status(&refusals) {
        Some(status) => error.with_status(status),
        None => error,
    })
}

/// The HTTP status every tried transport was refused with, when they all were refused with the
/// same one (say 401 to an expired token): then that status is why the connection failed.
fn shared_status(refusals: &[Option<u16>]) -> Option<u16> {
    let first = (*refusals.first()?)?;
    refusals
        .iter()
        .all(|status| *status == Some(first))
        .then_some(first)
}

/// The negotiate loop: follows redirects (up to 100), and returns the answer naming the
/// connection, the hub URL it applies to, and the token to use with it.
async fn negotiate(
    options: &ConnectOptions,
    http: &HttpClient,
    stateful_reconnect: bool,
) -> Result<(NegotiateResponse, Url, AccessToken)> {
    let mut redirects = NegotiateRedirects::new(options.url.clone(), stateful_reconnect);
    let mut token = access_token(options).await?;
    loop {
        let url = redirects.negotiate_url();
        debug!(url = %without_query(&url), "negotiating");
        let response = token
            .authorized(
                ErrorKind::Negotiation,
                |token| {
                    http.request(reqwest::Method::POST, &url, token.as_deref())
                        .timeout(http.timeout)
                        .send()
                },
                is_unauthorized_response,
            )
            .await?
            .map_err(|e| reqwest_failure(e, ErrorKind::Negotiation, negotiate_failure_text))?;
        let status = response.status().as_u16();
        let body = read_limited(response, MAX_NEGOTIATE_RESPONSE).await?;
        check_negotiate_status(status, &String::from_utf8_lossy(&body))
            .map_err(|text| Error::negotiation(Some(status), text))?;
        // From here the status was a success: the failures are the answer's, not the status's.
        let answer =
            parse_negotiate_response(&body).map_err(|e| Error::negotiation(None, e.to_string()))?;
        match redirects
            .on_answer(answer)
            .map_err(|e| Error::negotiation(None, e.to_string()))?
        {
            NegotiateStep::Negotiate { access_token, .. } => {
                match access_token {
                    // The redirect's token replaces the factory (as the official clients).
                    Some(t) => token = AccessToken::fixed(Some(t)),
                    None => token.fetch(ErrorKind::Negotiation).await?,
                }
            }
            NegotiateStep::Connect {
                response,
                base_url,
                access_token,
            } => {
                let token = match access_token {
                    Some(t) => AccessToken::fixed(Some(t)),
                    None => token,
                };
                return Ok((response, base_url, token));
            }
        }
    }
}

/// Reads a negotiate answer's body, up to `limit` bytes.
async fn read_limited(response: reqwest::Response, limit: usize) -> Result<Vec<u8>> {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk
            .map_err(|e| reqwest_failure(e, ErrorKind::Negotiation, negotiate_failure_text))?;
        if body.len() + chunk.len() > limit {
            return Err(Error::negotiation(
                None,
                negotiate_failure_text(&format!("the answer is larger than {limit} bytes")),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A URL without its query, which may carry tokens, for logs.
pub(crate) fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// How long a transport that failed a send has to report why it closed.
const CLOSE_REASON_WAIT: Duration = Duration::from_secs(1);

/// The error a transport closed with, if it reports one soon; messages before it are dropped
/// (the handshake failed anyway).
async fn closed_reason(link: &mut TransportLink) -> Option<Error> {
    let reason = async {
        loop {
            match link.incoming.recv().await {
                Some(TransportEvent::Message(_)) => continue,
                Some(TransportEvent::Closed(reason)) => return reason,
                None => return None,
            }
        }
    };
    tokio::select! {
        reason = reason => reason,
        _ = runtime::sleep(CLOSE_REASON_WAIT) => None,
    }
}

/// Sends the handshake request and waits (bounded) for the answer.
async fn handshake(
    options: &ConnectOptions,
    mut link: TransportLink,
    version: u32,
) -> Result<(TransportLink, MessageDecoder)> {
    let request = HandshakeRequest::new(options.protocol.name(), version).to_bytes();
    let (written, written_rx) = oneshot::channel();
    link.outgoing
        .send(OutgoingFrame {
            data: request.into(),
            written: Some(written.into()),
        })
        .await
        .map_err(|_| Error::transport("The transport closed before the handshake."))?;
    let written = written_rx
        .await
        .map_err(|_| Error::transport("The transport closed before the handshake."))
        .and_then(|written| written);
    if let Err(error) = written {
        // The transport may have closed meanwhile (a poll answered 404 while the handshake
        // POST was in flight): its reason is the cause, not the aborted send's.
        return Err(closed_reason(&mut link).await.unwrap_or(error));
    }

    let timeout = options.handshake_timeout;
    let mut received = Vec::new();
    let answer = async {
        loop {
            match link.incoming.recv().await {
                Some(TransportEvent::Message(bytes)) => {
                    received.extend_from_slice(&bytes);
                    // Parse only once a separator arrived, so a server trickling bytes
                    // cannot make this quadratic.
                    if !bytes.contains(&crate::protocol::handshake::RECORD_SEPARATOR)
                        && received.len() <= options.max_message_size
                    {
                        continue;
                    }
                    if let Some((response, consumed)) =
                        parse_handshake_response(&received, options.max_message_size)
                            .map_err(|e| Error::handshake(handshake_parse_failure_text(&e)))?
                    {
                        if let Some(error) = response.error {
                            return Err(Error::handshake(handshake_error_text(&error)));
                        }
                        let mut decoder = options.protocol.decoder(options.max_message_size);
                        decoder.push(&received[consumed..]);
                        return Ok(decoder);
                    }
                }
                Some(TransportEvent::Closed(Some(error))) => return Err(error),
                Some(TransportEvent::Closed(None)) | None => return Err(Error::handshake(
                    "The underlying connection was closed before the hub handshake could complete.",
                )),
            }
        }
    };
    let decoder = tokio::select! {
        result = answer => result?,
        _ = runtime::sleep(timeout) => {
            return Err(Error::timeout(format!(
                "The server did not answer the handshake within {} ms.",
                timeout.as_millis()
            )))
        }
    };
    Ok((link, decoder))
}

#[cfg(test)]
mod tests {
    use super::shared_status;

    #[test]
    fn a_status_is_shared_only_when_every_tried_transport_had_it() {
        assert_eq!(shared_status(&[Some(401)]), Some(401));
        assert_eq!(shared_status(&[Some(401), Some(401)]), Some(401));
        assert_eq!(shared_status(&[Some(401), Some(404)]), None);
        assert_eq!(shared_status(&[Some(401), None]), None);
        assert_eq!(shared_status(&[None]), None);
        assert_eq!(shared_status(&[]), None);
    }
}
