//! The bearer token of a connection attempt: the access-token factory's latest token, renewed
//! once when a request is refused with 401, as the official TypeScript client's
//! `AccessTokenHttpClient` does (there for its HTTP requests; here for every request:
//! negotiate, polls, send POSTs, the Server-Sent Events GET and the WebSocket upgrade).
//!
//! The token never appears in logs or error texts.

use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::error::{Error, ErrorKind, Result};
use crate::options::AccessTokenFactory;

/// One connection attempt's token, shared by its requests (clones share it).
#[derive(Clone, Default)]
pub(crate) struct AccessToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    current: Mutex<Option<String>>,
    /// `None`: the token is fixed (none at all, or a negotiate redirect's), never renewed.
    factory: Option<AccessTokenFactory>,
    /// One renewal at a time: requests refused together share the renewed token.
    renewing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("present", &self.get().is_some())
            .field("renewable", &self.inner.factory.is_some())
            .finish()
    }
}

impl AccessToken {
    /// A token that is never renewed (`None`: no token).
    pub(crate) fn fixed(token: Option<String>) -> Self {
        AccessToken {
            inner: Arc::new(Inner {
                current: Mutex::new(token),
                factory: None,
                renewing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Asks `factory` (if any) for the first token.
    pub(crate) async fn from_factory(factory: Option<AccessTokenFactory>) -> Result<Self> {
        let token = AccessToken {
            inner: Arc::new(Inner {
                current: Mutex::new(None),
                factory,
                renewing: tokio::sync::Mutex::new(()),
            }),
        };
        token.fetch(ErrorKind::Negotiation).await?;
        Ok(token)
    }

    /// The current token; an empty one counts as none.
    pub(crate) fn get(&self) -> Option<String> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|t| !t.is_empty())
    }

    /// Asks the factory (if any) for a new token and keeps it.
    pub(crate) async fn fetch(&self, kind: ErrorKind) -> Result<()> {
        let Some(factory) = &self.inner.factory else {
            return Ok(());
        };
        let token = factory()
            .await
            .map_err(|e| Error::new(kind, format!("The access token factory failed: {e}")))?;
        *self.inner.current.lock().unwrap_or_else(|e| e.into_inner()) = token;
        Ok(())
    }

    /// After a 401 to a request sent with `refused`: renews the token unless another request
    /// already did. `false` when it cannot be renewed (no factory).
    async fn renew(&self, refused: Option<&str>, kind: ErrorKind) -> Result<bool> {
        if self.inner.factory.is_none() {
            return Ok(false);
        }
        let _one_at_a_time = self.inner.renewing.lock().await;
        if self.get().as_deref() == refused {
            tracing::debug!("401 Unauthorized: asking the access token factory for a new token");
            self.fetch(kind).await?;
        }
        Ok(true)
    }

    /// Runs `attempt` with the current token; if `unauthorized` says it was refused with 401
    /// and the token can be renewed, renews it once and runs `attempt` again with the new
    /// one. The outer error is a failing factory (of kind `kind`).
    pub(crate) async fn authorized<T, E, F, Fut>(
        &self,
        kind: ErrorKind,
        mut attempt: F,
        unauthorized: impl Fn(&std::result::Result<T, E>) -> bool,
    ) -> Result<std::result::Result<T, E>>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let token = self.get();
        let first = attempt(token.clone()).await;
        if !unauthorized(&first) || !self.renew(token.as_deref(), kind).await? {
            return Ok(first);
        }
        Ok(attempt(self.get()).await)
    }
}

/// Whether a reqwest answer is a 401.
pub(crate) fn is_unauthorized_response(
    response: &std::result::Result<reqwest::Response, reqwest::Error>,
) -> bool {
    matches!(response, Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED)
}
