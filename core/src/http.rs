//! The HTTP side of a connection: one client with the connection's cookies, the user's
//! headers, hublink's user agent, the access token, request timeouts and (outside the
//! browser) the TLS settings and the proxies, which the WebSocket uses too.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use url::Url;

use crate::error::{Error, ErrorKind, Result};

/// The user agent hublink sends, in the official clients' format.
pub(crate) fn user_agent() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let major_minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    format!(
        "hublink/{major_minor} ({version}; {}; Rust; Unknown Runtime Version)",
        std::env::consts::OS
    )
}

/// The HTTP settings of a connection.
#[derive(Debug, Clone)]
pub(crate) struct HttpOptions {
    /// Headers added to every request (negotiate, transports); they override hublink's own.
    headers: HeaderMap,
    /// Cookies sent from the first request on (`name=value; attributes`).
    cookies: Vec<String>,
    /// Timeout of negotiate, send and DELETE requests.
    pub timeout: Duration,
    /// In a browser: send cookies and credentials on cross-origin requests (`withCredentials`).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    with_credentials: bool,
    /// Trusted roots, client certificate, verification (outside the browser).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) tls: crate::tls::TlsOptions,
    /// The HTTP proxy of every request and of the WebSocket (outside the browser).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) proxy: crate::proxy::Proxy,
}

impl HttpOptions {
    /// Checks the user's headers (a name or value HTTP cannot carry is refused here, before
    /// any connection).
    pub(crate) fn new(
        headers: Vec<(String, String)>,
        cookies: Vec<String>,
        timeout: Duration,
    ) -> Result<Self> {
        let mut map = HeaderMap::new();
        for (name, value) in &headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Error::invalid_argument(format!("header name {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| Error::invalid_argument(format!("header {name}: {e}")))?;
            map.insert(name, value);
        }
        Ok(HttpOptions {
            headers: map,
            cookies,
            timeout,
            with_credentials: true,
            #[cfg(not(target_arch = "wasm32"))]
            tls: Default::default(),
            #[cfg(not(target_arch = "wasm32"))]
            proxy: Default::default(),
        })
    }

    /// Whether a browser sends cookies and credentials on cross-origin requests.
    pub(crate) fn with_credentials(mut self, with_credentials: bool) -> Self {
        self.with_credentials = with_credentials;
        self
    }
}

/// One HTTP client per connection, shared by negotiate and every transport, so cookies set on
/// negotiate (sticky sessions) travel with every later request.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
    #[cfg(not(target_arch = "wasm32"))]
    cookies: Arc<reqwest::cookie::Jar>,
    headers: Arc<HeaderMap>,
    pub(crate) timeout: Duration,
    #[cfg(target_arch = "wasm32")]
    with_credentials: bool,
    /// The TLS configuration of the HTTP client, for the WebSocket too.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) tls: Arc<rustls::ClientConfig>,
    /// Decides the WebSocket's proxy as the HTTP client decides its requests'.
    #[cfg(not(target_arch = "wasm32"))]
    proxy: Option<Arc<hyper_util::client::proxy::matcher::Matcher>>,
}

impl HttpClient {
    pub(crate) fn new(options: &HttpOptions, hub_url: &Url) -> Result<Self> {
        let mut headers = HeaderMap::new();
        // Browsers do not let scripts set `User-Agent`: the official browser client sends its
        // own in `X-SignalR-User-Agent` instead.
        #[cfg(not(target_arch = "wasm32"))]
        let user_agent_header = reqwest::header::USER_AGENT;
        #[cfg(target_arch = "wasm32")]
        let user_agent_header = HeaderName::from_static("x-signalr-user-agent");
        headers.insert(
            user_agent_header,
            HeaderValue::from_str(&user_agent()).expect("an ASCII user agent"),
        );
        for (name, value) in &options.headers {
            headers.insert(name.clone(), value.clone());
        }
        let builder = reqwest::Client::builder();
        #[cfg(not(target_arch = "wasm32"))]
        let cookies = Arc::new(reqwest::cookie::Jar::default());
        #[cfg(not(target_arch = "wasm32"))]
        for cookie in &options.cookies {
            cookies.add_cookie_str(cookie, hub_url);
        }
        #[cfg(target_arch = "wasm32")]
        let _ = (hub_url, &options.cookies);
        #[cfg(not(target_arch = "wasm32"))]
        let tls = options.tls.client_config()?;
        #[cfg(not(target_arch = "wasm32"))]
        let (builder, proxy) = options.proxy.configure(
            builder
                .cookie_provider(cookies.clone())
                .tls_backend_preconfigured((*tls).clone()),
            hub_url,
        )?;
        let client = builder
            .build()
            .map_err(|e| Error::invalid_argument(format!("HTTP client: {e}")))?;
        Ok(HttpClient {
            client,
            #[cfg(not(target_arch = "wasm32"))]
            cookies,
            headers: Arc::new(headers),
            timeout: options.timeout,
            #[cfg(target_arch = "wasm32")]
            with_credentials: options.with_credentials,
            #[cfg(not(target_arch = "wasm32"))]
            tls,
            #[cfg(not(target_arch = "wasm32"))]
            proxy: proxy.map(Arc::new),
        })
    }

    /// The proxy the HTTP client would use for the `http`/`https` URL `url`, if any.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn proxy_for(
        &self,
        url: &Url,
    ) -> Option<hyper_util::client::proxy::matcher::Intercept> {
        crate::proxy::proxy_for(self.proxy.as_deref(), url)
    }

    /// A request with the user agent, the user's headers and the bearer token.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        url: &Url,
        access_token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut request = self.client.request(method, url.clone());
        if let Some(token) = access_token.filter(|t| !t.is_empty()) {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        #[cfg(target_arch = "wasm32")]
        if self.with_credentials {
            request = request.fetch_credentials_include();
        }
        request.headers((*self.headers).clone())
    }

    /// Every header a WebSocket upgrade to `url` carries outside a browser: user agent, the
    /// user's headers, the bearer token and the cookies of the connection.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn upgrade_headers(&self, url: &Url, access_token: Option<&str>) -> HeaderMap {
        use reqwest::cookie::CookieStore;
        let mut headers = HeaderMap::new();
        if let Some(token) = access_token.filter(|t| !t.is_empty()) {
            if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
                headers.insert(AUTHORIZATION, value);
            }
        }
        let mut http_url = url.clone();
        let scheme = if url.scheme() == "wss" {
            "https"
        } else {
            "http"
        };
        if http_url.set_scheme(scheme).is_ok() {
            if let Some(cookies) = self.cookies.cookies(&http_url) {
                headers.insert(reqwest::header::COOKIE, cookies);
            }
        }
        for (name, value) in self.headers.iter() {
            headers.insert(name.clone(), value.clone());
        }
        headers
    }
}

/// A reqwest error in words, with its causes (strip the URL first: it may carry a token).
pub(crate) fn describe_reqwest_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A reqwest error as an error of `kind` (of kind Timeout when the request timed out), with
/// the text `text` makes of its description, and the reqwest error kept as the cause.
pub(crate) fn reqwest_failure(
    error: reqwest::Error,
    kind: ErrorKind,
    text: impl FnOnce(&str) -> String,
) -> Error {
    let error = error.without_url();
    let kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else {
        kind
    };
    let status = error.status().map(|s| s.as_u16());
    let message = text(&describe_reqwest_error(&error));
    let failure = Error::new(kind, message).with_source(error);
    match status {
        Some(status) => failure.with_status(status),
        None => failure,
    }
}
