//! The official WebSocket error texts, shared by the native and the browser WebSocket.

/// The official error when the WebSocket could not be opened; the cause follows it.
pub(crate) const FAILED_TO_CONNECT: &str = "WebSocket failed to connect. The connection could not be found on the server, either the endpoint may not be a SignalR endpoint, the connection ID is not present on the server, or there is a proxy blocking WebSockets. If you have multiple servers check that sticky sessions are enabled.";

/// The official error for sends on a socket that is not open.
pub(crate) const NOT_OPEN: &str = "WebSocket is not in the OPEN state";

/// The official close-after-open error.
pub(crate) fn closed_with_status(code: u16, reason: &str) -> String {
    let reason = if reason.is_empty() {
        "no reason given"
    } else {
        reason
    };
    format!("WebSocket closed with status code: {code} ({reason}).")
}
