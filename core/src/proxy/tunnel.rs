//! A `CONNECT` tunnel through an HTTP proxy, for the WebSocket (reqwest tunnels its own
//! requests). The proxy's answer is read only up to the end of its headers (what follows
//! belongs to the tunnel), at most [`MAX_ANSWER`] bytes; a refusal names the proxy's status.

use hyper_util::client::proxy::matcher::Intercept;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::Error;

/// The most of a proxy's answer to a `CONNECT` read: its status line and headers.
const MAX_ANSWER: usize = 8 * 1024;

/// The most headers an answer to a `CONNECT` may have.
const MAX_HEADERS: usize = 64;

/// Opens a TCP connection to `proxy` and asks it for a tunnel to `host:port` (`host` as in a
/// URL: IPv6 addresses in brackets). The error's text names the proxy (never its credentials)
/// and, when it refused, its status and reason, which is also the error's status.
pub(crate) async fn open_tunnel(
    proxy: &Intercept,
    host: &str,
    port: u16,
) -> Result<TcpStream, Error> {
    let proxy_uri = proxy.uri();
    // The matcher keeps no credentials in the URI: it is safe to show.
    let (Some(proxy_host), Some("http")) = (proxy_uri.host(), proxy_uri.scheme_str()) else {
        return Err(Error::transport(format!(
            "the proxy {proxy_uri} cannot tunnel the WebSocket: only http:// proxies can"
        )));
    };
    let proxy_address = format!("{proxy_host}:{}", proxy_uri.port_u16().unwrap_or(80));
    let failed = |what: String| Error::transport(format!("proxy {proxy_address}: {what}"));
    let mut stream = TcpStream::connect(&proxy_address)
        .await
        .map_err(|e| failed(format!("could not connect: {e}")))?;

    let target = format!("{host}:{port}");
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    if let Some(authorization) = proxy.basic_auth() {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(authorization.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    stream
        .write_all(&request)
        .await
        .map_err(|e| failed(format!("could not send the CONNECT request: {e}")))?;

    let (status, reason) = read_answer(&mut stream)
        .await
        .map_err(|e| failed(format!("no usable answer to CONNECT {target}: {e}")))?;
    if !(200..300).contains(&status) {
        return Err(Error::transport(format!(
            "proxy {proxy_address} refused CONNECT {target}: {status} {reason}"
        ))
        .with_status(status));
    }
    Ok(stream)
}

/// Reads the proxy's answer up to the end of its headers and no further: the status and
/// reason. Bytes are peeked first, and only the answer's own are then taken from the socket.
async fn read_answer(stream: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let room = (MAX_ANSWER - answer.len()).min(chunk.len());
        if room == 0 {
            return Err(invalid(format!("headers longer than {MAX_ANSWER} bytes")));
        }
        let peeked = stream.peek(&mut chunk[..room]).await?;
        if peeked == 0 {
            return Err(invalid("the proxy closed the connection".into()));
        }
        let before = answer.len();
        answer.extend_from_slice(&chunk[..peeked]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&answer) {
            Ok(httparse::Status::Complete(length)) => {
                stream.read_exact(&mut chunk[..length - before]).await?;
                let status = response.code.unwrap_or_default();
                let reason = response.reason.unwrap_or_default().to_owned();
                return Ok((status, reason));
            }
            Ok(httparse::Status::Partial) => {
                stream.read_exact(&mut chunk[..peeked]).await?;
            }
            Err(e) => return Err(invalid(format!("not an HTTP answer ({e})"))),
        }
    }
}

fn invalid(text: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::client::proxy::matcher::Matcher;
    use tokio::net::TcpListener;

    /// A proxy that reads the CONNECT request and answers `answer`, then closes.
    async fn proxy_answering(answer: Vec<u8>) -> Intercept {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                socket.read_exact(&mut byte).await.unwrap();
                request.push(byte[0]);
            }
            let _ = socket.write_all(&answer).await;
            let _ = socket.shutdown().await;
        });
        let uri: http::Uri = "http://hub.example/".parse().unwrap();
        Matcher::builder()
            .all(format!("http://{address}"))
            .build()
            .intercept(&uri)
            .unwrap()
    }

    #[tokio::test]
    async fn what_follows_the_answer_stays_in_the_tunnel() {
        let proxy =
            proxy_answering(b"HTTP/1.1 200 Connection established\r\n\r\nserver bytes".to_vec())
                .await;
        let mut stream = open_tunnel(&proxy, "hub.example", 443).await.unwrap();
        let mut rest = String::new();
        stream.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "server bytes");
    }

    #[tokio::test]
    async fn an_endless_answer_fails_after_the_limit() {
        let mut answer = b"HTTP/1.1 200 OK\r\nX-Padding: ".to_vec();
        answer.resize(MAX_ANSWER + 1, b'x');
        let error = open_tunnel(&proxy_answering(answer).await, "hub.example", 443)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("longer than 8192 bytes"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_proxy_that_closes_or_talks_nonsense_fails_clearly() {
        for (answer, expected) in [
            (&b"HTTP/1.1 200 OK\r\n"[..], "closed the connection"),
            (&b"SSH-2.0-OpenSSH\r\n\r\n"[..], "not an HTTP answer"),
        ] {
            let proxy = proxy_answering(answer.to_vec()).await;
            let error = open_tunnel(&proxy, "hub.example", 443).await.unwrap_err();
            let text = error.to_string();
            assert!(
                text.contains("no usable answer to CONNECT hub.example:443"),
                "{text}"
            );
            assert!(text.contains(expected), "{text}");
        }
    }
}
