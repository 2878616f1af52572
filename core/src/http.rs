//! The HTTP side of a connection: one client with the connection's cookies, the user's
//! headers, hublink's user agent, the access token and request timeouts.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, USER_AGENT};
use url::Url;

use crate::error::{Error, Result};

/// Default timeout of negotiate, send and DELETE requests (the official 100 s).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(100);

/// The user agent hublink sends, in the official clients' format.
pub fn user_agent() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let major_minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    format!(
        "hublink/{major_minor} ({version}; {}; Rust; Unknown Runtime Version)",
        std::env::consts::OS
    )
}

/// The HTTP settings a user gives the builder.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Headers added to every request (negotiate, transports); they override hublink's own.
    pub headers: Vec<(String, String)>,
    /// Timeout of negotiate, send and DELETE requests.
    pub timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            headers: Vec::new(),
            timeout: DEFAULT_HTTP_TIMEOUT,
        }
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
}

impl HttpClient {
    pub(crate) fn new(options: &HttpOptions) -> Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_str(&user_agent()).expect("an ASCII user agent"),
        );
        for (name, value) in &options.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Error::InvalidArgument(format!("header name {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| Error::InvalidArgument(format!("header {name}: {e}")))?;
            headers.insert(name, value);
        }
        let builder = reqwest::Client::builder();
        #[cfg(not(target_arch = "wasm32"))]
        let cookies = Arc::new(reqwest::cookie::Jar::default());
        #[cfg(not(target_arch = "wasm32"))]
        let builder = builder.cookie_provider(cookies.clone());
        let client = builder
            .build()
            .map_err(|e| Error::InvalidArgument(format!("HTTP client: {e}")))?;
        Ok(HttpClient {
            client,
            #[cfg(not(target_arch = "wasm32"))]
            cookies,
            headers: Arc::new(headers),
            timeout: options.timeout,
        })
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

/// A reqwest error in words, with its causes, without the URL (it may carry a token).
pub(crate) fn describe_reqwest_error(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
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
