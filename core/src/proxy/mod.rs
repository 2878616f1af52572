//! HTTP proxies outside the browser (the browser uses its own settings).
//!
//! One decision for every transport: reqwest (negotiate, Server-Sent Events, Long Polling) and
//! the WebSocket both ask a `hyper_util` proxy [`Matcher`] built the same way from the same
//! setting, so `NO_PROXY` rules (host suffixes, IP addresses and networks, `*`) are read by one
//! library and cannot disagree. Plain `http://` hubs go through the proxy as forwarded requests
//! (reqwest), `https://` hubs and every WebSocket through a `CONNECT` tunnel ([`tunnel`]).

mod tunnel;

use std::fmt;

use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use url::Url;

use crate::error::{Error, Result};

pub(crate) use tunnel::open_tunnel;

/// Which HTTP proxy a connection uses (not in the browser, which uses its own settings).
///
/// The default reads the environment as curl, reqwest and the .NET client do; an explicit
/// proxy or [`Proxy::Disabled`] ignore it.
#[non_exhaustive]
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Proxy {
    /// `HTTPS_PROXY` for `https` hubs, `HTTP_PROXY` for `http` hubs, `ALL_PROXY` for both
    /// (lower-case names too), except for the hosts `NO_PROXY` lists. Nothing set: no proxy.
    #[default]
    FromEnvironment,
    /// No proxy, whatever the environment says.
    Disabled,
    /// This proxy (`http://[user:password@]host:port`) for every hub, except the hosts
    /// `no_proxy` lists (the `NO_PROXY` syntax: comma-separated host names, which also match
    /// their subdomains, IP addresses, networks such as `10.0.0.0/8`, or `*`). The credentials,
    /// if any, are sent as `Proxy-Authorization: Basic`.
    Url {
        /// The proxy's URL.
        url: String,
        /// The hosts reached without the proxy; empty for none.
        no_proxy: String,
    },
}

impl Proxy {
    /// This proxy for every hub.
    pub fn url(url: impl Into<String>) -> Self {
        Proxy::Url {
            url: url.into(),
            no_proxy: String::new(),
        }
    }

    /// The explicit proxy's URL, checked: `http` with a host (credentials never in the error).
    fn checked_url(url: &str) -> Result<Url> {
        let parsed = Url::parse(url).map_err(|e| {
            Error::invalid_argument(format!("proxy URL '{}': {e}", without_credentials_str(url)))
        })?;
        if parsed.scheme() != "http" || parsed.host_str().is_none() {
            return Err(Error::invalid_argument(format!(
                "proxy URL '{}': only http://host:port proxies are supported",
                without_credentials_str(url)
            )));
        }
        Ok(parsed)
    }

    /// Refuses an explicit proxy URL hublink cannot use, before any connection.
    pub(crate) fn check(&self) -> Result<()> {
        if let Proxy::Url { url, .. } = self {
            Self::checked_url(url)?;
        }
        Ok(())
    }

    /// This setting with a `NO_PROXY` list that exempts every host (`*`) made [`Proxy::Disabled`]:
    /// hyper-util matches `*` against host names only, curl (and the variable's meaning)
    /// against IP addresses too. Read once per HTTP client, so reqwest and the WebSocket
    /// decide from the same environment.
    fn resolved(&self) -> Proxy {
        let exempts_every_host = |list: &str| list.split(',').any(|entry| entry.trim() == "*");
        match self {
            Proxy::FromEnvironment => {
                let no_proxy = std::env::var("NO_PROXY")
                    .or_else(|_| std::env::var("no_proxy"))
                    .unwrap_or_default();
                if exempts_every_host(&no_proxy) {
                    return Proxy::Disabled;
                }
            }
            Proxy::Url { no_proxy, .. } if exempts_every_host(no_proxy) => return Proxy::Disabled,
            _ => {}
        }
        self.clone()
    }

    /// The HTTP client of a connection to `hub_url` with this proxy setting, and the matcher
    /// that makes the same decision for the WebSocket.
    pub(crate) fn configure(
        &self,
        builder: reqwest::ClientBuilder,
        hub_url: &Url,
    ) -> Result<(reqwest::ClientBuilder, Option<Matcher>)> {
        let proxy = self.resolved();
        let matcher = proxy.matcher()?;
        let mut builder = match &proxy {
            // reqwest's default reads the environment with `Matcher::from_system`, as `matcher`.
            Proxy::FromEnvironment => builder,
            Proxy::Disabled => builder.no_proxy(),
            Proxy::Url { url, no_proxy } => {
                let url = Self::checked_url(url)?;
                let proxy = reqwest::Proxy::all(url.as_str())
                    .map_err(|e| Error::invalid_argument(format!("proxy URL: {e}")))?
                    .no_proxy(reqwest::NoProxy::from_string(no_proxy));
                builder.proxy(proxy)
            }
        };
        // A forwarding proxy may close a connection right after an answer that did not say
        // so (tinyproxy answers HTTP/1.1 without `Connection: close`, then closes): a request
        // sent on it meanwhile fails. Requests forwarded by a proxy get a connection each.
        // (Through a CONNECT tunnel, for `https`, the connection is the server's own.)
        if hub_url.scheme() == "http" && proxy_for(matcher.as_ref(), hub_url).is_some() {
            builder = builder.pool_max_idle_per_host(0);
        }
        Ok((builder, matcher))
    }

    /// The matcher deciding, for the WebSocket, what reqwest decides for HTTP requests.
    fn matcher(&self) -> Result<Option<Matcher>> {
        Ok(match self {
            Proxy::FromEnvironment => Some(Matcher::from_system()),
            Proxy::Disabled => None,
            Proxy::Url { url, no_proxy } => Some(
                Matcher::builder()
                    .all(String::from(Self::checked_url(url)?))
                    .no(no_proxy.as_str())
                    .build(),
            ),
        })
    }
}

/// The proxy `matcher` routes the `http`/`https` URL `url` through, if any.
pub(crate) fn proxy_for(matcher: Option<&Matcher>, url: &Url) -> Option<Intercept> {
    let uri: http::Uri = url.as_str().parse().ok()?;
    matcher?.intercept(&uri)
}

/// A URL that may not parse, without anything between `://` and `@`, for errors.
fn without_credentials_str(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => format!("{}{}", &url[..start + 3], &url[at + 1..]),
        (None, Some(at)) => url[at + 1..].to_owned(),
        _ => url.to_owned(),
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proxy::FromEnvironment => f.write_str("FromEnvironment"),
            Proxy::Disabled => f.write_str("Disabled"),
            // Never the credentials.
            Proxy::Url { url, no_proxy } => f
                .debug_struct("Url")
                .field("url", &without_credentials_str(url))
                .field("no_proxy", no_proxy)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(proxy: &Proxy, url: &str) -> Option<String> {
        let matcher = proxy.matcher().unwrap();
        proxy_for(matcher.as_ref(), &Url::parse(url).unwrap()).map(|i| i.uri().to_string())
    }

    #[test]
    fn an_explicit_proxy_serves_every_host_but_those_no_proxy_lists() {
        let proxy = Proxy::Url {
            url: "http://user:pa%3Ass@proxy.example:3128".into(),
            no_proxy: "internal.example, 10.0.0.0/8, ::1".into(),
        };
        let via = Some("http://proxy.example:3128/".to_owned());
        assert_eq!(route(&proxy, "https://hub.example/chat"), via);
        assert_eq!(route(&proxy, "http://127.0.0.1:5000/chat"), via);
        assert_eq!(route(&proxy, "https://notinternal.example/chat"), via);
        assert_eq!(route(&proxy, "https://internal.example/chat"), None);
        assert_eq!(route(&proxy, "https://a.b.internal.example/chat"), None);
        assert_eq!(route(&proxy, "http://10.1.2.3:80/chat"), None);
        assert_eq!(route(&proxy, "http://[::1]:80/chat"), None);
        let matcher = proxy.matcher().unwrap().unwrap();
        let uri: http::Uri = "https://hub.example/".parse().unwrap();
        let auth = matcher.intercept(&uri).unwrap();
        // user:pa:ss, percent-decoded.
        assert_eq!(auth.basic_auth().unwrap(), "Basic dXNlcjpwYTpzcw==");
        let everything = Proxy::Url {
            url: "http://proxy.example:3128".into(),
            no_proxy: "example.com, *".into(),
        }
        .resolved();
        assert_eq!(route(&everything, "https://hub.example/chat"), None);
        assert_eq!(route(&everything, "http://10.1.2.3:80/chat"), None);
        assert_eq!(route(&Proxy::Disabled, "https://hub.example/chat"), None);
    }

    #[test]
    fn proxy_urls_hublink_cannot_use_are_refused_without_their_credentials() {
        for url in [
            "socks5://u:secret@proxy.example:1080",
            "https://u:secret@proxy.example:3128",
            "http://u:secret@",
            "u:secret@proxy.example:3128",
        ] {
            let error = Proxy::url(url).check().unwrap_err();
            assert_eq!(error.kind(), crate::ErrorKind::InvalidArgument, "{url}");
            assert!(!error.to_string().contains("secret"), "{error}");
        }
        Proxy::url("http://proxy.example:3128").check().unwrap();
        let debug = format!("{:?}", Proxy::url("http://u:secret@proxy.example:3128"));
        assert!(!debug.contains("secret"), "{debug}");
    }
}
