//! HTTP routing: negotiate, the three transports, CORS and the helper endpoints.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hublink_proto::transports::TransportKind;
use hublink_proto::{Payload, Value};
use serde_json::json;
use tokio::sync::mpsc::unbounded_channel;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::faults::Faults;
use crate::hub::Ctx;
use crate::session::{
    create_connection, find_endpoint, Conn, Endpoint, Event, OutFrame, RequestInfo,
};
use crate::ServerState;

pub(crate) fn router(state: Arc<ServerState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

async fn dispatch(State(server): State<Arc<ServerState>>, req: Request) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut resp = if req.method() == Method::OPTIONS {
        preflight(req.headers())
    } else {
        route(server, req).await
    };
    if let Some(origin) = origin {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    resp
}

fn preflight(headers: &HeaderMap) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    let methods = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .cloned()
        .unwrap_or(HeaderValue::from_static("GET, POST, DELETE, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    resp
}

fn status(code: StatusCode, text: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_owned(),
    )
        .into_response()
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The user of a valid token from `Authorization: Bearer` or the `access_token` query.
fn auth_user(
    server: &ServerState,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").map(str::trim).map(str::to_owned));
    let token = from_header.or_else(|| query_value(query, "access_token").map(str::to_owned))?;
    let mut tokens = server.tokens.lock().unwrap();
    let user = tokens.get(&token).cloned()?;
    // A token from `/generateJwtToken?uses=N` expires after N requests it authorized.
    let mut uses = server.token_uses.lock().unwrap();
    if let Some(left) = uses.get_mut(&token) {
        *left -= 1;
        if *left == 0 {
            uses.remove(&token);
            tokens.remove(&token);
        }
    }
    Some(user)
}

async fn route(server: Arc<ServerState>, req: Request) -> Response {
    let original_path = req.uri().path().to_owned();
    let lower = original_path.to_ascii_lowercase();
    let path = lower.trim_end_matches('/');
    let query = parse_query(req.uri().query());

    if path == "/generatejwttoken" {
        let uses = query_value(&query, "uses").and_then(|n| n.parse::<u64>().ok());
        return generate_token(&server, uses);
    }
    if path.starts_with("/clientresult/") {
        let id = original_path.trim_end_matches('/')["/clientresult/".len()..].to_owned();
        return client_result(&server, &id).await;
    }
    if path.starts_with("/redirect") {
        let n = server.redirects.fetch_add(1, Ordering::SeqCst) + 1;
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_owned();
        return axum::Json(json!({ "url": format!("http://{host}/testHub?numRedirects={n}") }))
            .into_response();
    }
    if path.starts_with("/bad-negotiate") {
        return status(StatusCode::BAD_REQUEST, "Some response from server");
    }
    if path.starts_with("/negotiate-error") {
        let error = query_value(&query, "error").unwrap_or("Negotiate refused by the test server.");
        return axum::Json(json!({ "error": error })).into_response();
    }
    if let Some(hub) = path.strip_suffix("/negotiate") {
        let Some(ep) = find_endpoint(hub.trim_start_matches('/')) else {
            return status(StatusCode::NOT_FOUND, "Not Found");
        };
        if req.method() != Method::POST {
            let mut r = status(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return r;
        }
        return negotiate(&server, ep, req.headers(), query);
    }
    let Some(ep) = find_endpoint(path.trim_start_matches('/')) else {
        return status(StatusCode::NOT_FOUND, "Not Found");
    };
    if ep.auth && auth_user(&server, req.headers(), &query).is_none() {
        return status(StatusCode::UNAUTHORIZED, "");
    }
    let is_ws = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if is_ws {
        return ws_connect(server, ep, req, query).await;
    }
    let Some(id) = query_value(&query, "id").map(str::to_owned) else {
        return status(StatusCode::BAD_REQUEST, "Connection ID required");
    };
    let conn = server.by_token.lock().unwrap().get(&id).cloned();
    let Some(conn) = conn.filter(|c| std::ptr::eq(c.endpoint, ep)) else {
        return status(StatusCode::NOT_FOUND, "No Connection with that ID");
    };
    let info = RequestInfo {
        headers: req.headers().clone(),
        query: query.clone(),
    };
    match *req.method() {
        Method::GET => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if accept.contains("text/event-stream") {
                sse(&server, ep, conn, info)
            } else {
                poll(&server, ep, conn, info).await
            }
        }
        Method::POST => send(conn, info, req.into_body()).await,
        Method::DELETE => delete(conn),
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    }
}

fn negotiate(
    server: &Arc<ServerState>,
    ep: &'static Endpoint,
    headers: &HeaderMap,
    query: Vec<(String, String)>,
) -> Response {
    let user = auth_user(server, headers, &query);
    if ep.auth && user.is_none() {
        return status(StatusCode::UNAUTHORIZED, "");
    }
    let user = user.or_else(|| query_value(&query, "user").map(str::to_owned));
    let version = match query_value(&query, "negotiateVersion") {
        None => 0,
        Some(v) => match v.parse::<i64>() {
            Err(_) => {
                return axum::Json(
                    json!({ "error": "The client requested a non-integer protocol version." }),
                )
                .into_response()
            }
            Ok(n) if n < 0 => {
                return axum::Json(json!({
                    "error": format!("The client requested version '{n}', but the server does not support this version.")
                }))
                .into_response()
            }
            Ok(n) => n.min(1),
        },
    };
    let wants_stateful = query_value(&query, "useStatefulReconnect") == Some("true");
    let stateful = wants_stateful && ep.stateful && server.options.stateful_reconnect;
    let faults = Faults::parse(query_value(&query, "faults").unwrap_or(""));
    let info = RequestInfo {
        headers: headers.clone(),
        query,
    };
    let conn = create_connection(server, ep, stateful, faults, user, info);
    let transports: Vec<_> = ep
        .transports
        .iter()
        .map(|t| {
            let formats: &[&str] = if *t == TransportKind::ServerSentEvents {
                &["Text"]
            } else {
                &["Text", "Binary"]
            };
            json!({ "transport": t.name(), "transferFormats": formats })
        })
        .collect();
    let mut body = serde_json::Map::new();
    if version >= 1 {
        body.insert("connectionToken".into(), json!(conn.token));
        body.insert("connectionId".into(), json!(conn.id));
    } else {
        // v0: the id is the token; the client puts connectionId in `id`.
        server
            .by_token
            .lock()
            .unwrap()
            .insert(conn.id.clone(), conn.clone());
        body.insert("connectionId".into(), json!(conn.id));
    }
    body.insert("negotiateVersion".into(), json!(version));
    body.insert("availableTransports".into(), json!(transports));
    if stateful {
        body.insert("useStatefulReconnect".into(), json!(true));
    }
    let mut resp = axum::Json(serde_json::Value::Object(body)).into_response();
    let h = resp.headers_mut();
    for cookie in [
        "testCookie=testValue; path=/",
        "testCookie2=testValue2; path=/",
        "expiredCookie=doesntmatter; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/",
    ] {
        h.append(header::SET_COOKIE, HeaderValue::from_static(cookie));
    }
    resp
}

fn generate_token(server: &ServerState, uses: Option<u64>) -> Response {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 3600)
        .unwrap_or(0);
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = b64(json!({
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier": "testuser",
        "exp": exp,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
    .to_string()
    .as_bytes());
    let sig = b64(uuid::Uuid::new_v4().as_bytes());
    let token = format!("{head}.{claims}.{sig}");
    server
        .tokens
        .lock()
        .unwrap()
        .insert(token.clone(), "testuser".into());
    match uses {
        // Valid for no request at all: never stored.
        Some(0) => {
            server.tokens.lock().unwrap().remove(&token);
        }
        Some(n) => {
            server.token_uses.lock().unwrap().insert(token.clone(), n);
        }
        None => {}
    }
    status(StatusCode::OK, &token)
}

async fn client_result(server: &ServerState, id: &str) -> Response {
    let conn = server.by_id.lock().unwrap().get(id).cloned();
    let Some(conn) = conn.filter(|c| !c.ended.load(Ordering::SeqCst)) else {
        return status(
            StatusCode::OK,
            &format!("Connection '{id}' does not exist."),
        );
    };
    let call = Ctx::invoke_client(&conn.events, "Result", Vec::new());
    let text = match tokio::time::timeout(Duration::from_secs(30), call).await {
        Err(_) => "The client did not answer in time.".to_owned(),
        Ok(Err(e)) => e,
        Ok(Ok(p)) => payload_text(&p),
    };
    status(StatusCode::OK, &text)
}

fn payload_text(p: &Payload) -> String {
    match p.to_value() {
        Ok(Value::Int(n)) => n.to_string(),
        Ok(Value::UInt(n)) => n.to_string(),
        Ok(Value::F64(f)) if f.fract() == 0.0 => format!("{}", f as i64),
        Ok(Value::F64(f)) => f.to_string(),
        Ok(Value::String(s)) => s,
        Ok(Value::Null) => String::new(),
        Ok(other) => format!("{other:?}"),
        Err(e) => e.to_string(),
    }
}

async fn ws_connect(
    server: Arc<ServerState>,
    ep: &'static Endpoint,
    req: Request,
    query: Vec<(String, String)>,
) -> Response {
    if !ep.transports.contains(&TransportKind::WebSockets) {
        return status(
            StatusCode::NOT_FOUND,
            "WebSockets are not enabled on this endpoint",
        );
    }
    let (mut parts, _body) = req.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let info = RequestInfo {
        headers: parts.headers.clone(),
        query: query.clone(),
    };
    let conn = match query_value(&query, "id") {
        None => {
            // skipNegotiation: the upgrade itself creates the connection.
            let user = auth_user(&server, &parts.headers, &query)
                .or_else(|| query_value(&query, "user").map(str::to_owned));
            let faults = Faults::parse(query_value(&query, "faults").unwrap_or(""));
            let conn = create_connection(&server, ep, false, faults, user, info);
            *conn.transport.lock().unwrap() = Some(TransportKind::WebSockets);
            conn
        }
        Some(id) => {
            let conn = server.by_token.lock().unwrap().get(id).cloned();
            let Some(conn) = conn.filter(|c| std::ptr::eq(c.endpoint, ep)) else {
                return status(StatusCode::NOT_FOUND, "No Connection with that ID");
            };
            {
                let mut t = conn.transport.lock().unwrap();
                match *t {
                    None => {
                        *t = Some(TransportKind::WebSockets);
                        *conn.info.lock().unwrap() = info;
                    }
                    Some(TransportKind::WebSockets) => {
                        // A stateful connection takes a new WebSocket even before the old one
                        // is noticed gone (ASP.NET cancels the previous transport); the
                        // session decides whether it can resume.
                        if conn.ended.load(Ordering::SeqCst) {
                            return status(StatusCode::NOT_FOUND, "No Connection with that ID");
                        }
                        if !conn.negotiated_stateful {
                            if conn.ws_attached.load(Ordering::SeqCst) {
                                return status(StatusCode::CONFLICT, "Connection already in use");
                            }
                            return status(StatusCode::NOT_FOUND, "No Connection with that ID");
                        }
                    }
                    Some(_) => {
                        return status(
                            StatusCode::BAD_REQUEST,
                            "Cannot change transports mid-connection",
                        )
                    }
                }
            }
            conn
        }
    };
    conn.ws_attached.store(true, Ordering::SeqCst);
    let generation = conn.next_generation();
    upgrade
        .max_message_size(64 * 1024 * 1024)
        .on_upgrade(move |socket| ws_loop(socket, conn, generation))
}

fn split_point(bytes: &[u8], binary: bool) -> Option<usize> {
    if bytes.len() < 2 {
        return None;
    }
    let mut mid = bytes.len() / 2;
    if !binary {
        let text = std::str::from_utf8(bytes).ok()?;
        while mid < text.len() && !text.is_char_boundary(mid) {
            mid += 1;
        }
        if mid >= text.len() {
            return None;
        }
    }
    Some(mid)
}

fn ws_message(bytes: Vec<u8>, binary: bool) -> Message {
    if binary {
        return Message::Binary(bytes.into());
    }
    match String::from_utf8(bytes) {
        Ok(s) => Message::Text(s.into()),
        Err(e) => Message::Binary(e.into_bytes().into()),
    }
}

/// How many queued hub messages one WebSocket flush may carry.
const MAX_FRAMES_PER_FLUSH: usize = 64;

async fn ws_loop(socket: WebSocket, conn: Arc<Conn>, generation: u64) {
    let (tx, mut rx) = unbounded_channel();
    conn.send(Event::Attach {
        kind: TransportKind::WebSockets,
        tx,
        generation,
    });
    let (mut sink, stream) = socket.split();
    // Reading goes on while a write waits for a client that does not read (as in Kestrel),
    // so that its pings still reach the client timeout.
    let (mut reader, mut read_ended) = spawn_ws_reader(stream, conn.clone(), generation);
    let faults = conn.faults.clone();
    let mut graceful = false;
    'outer: loop {
        tokio::select! {
            frame = rx.recv() => {
                let Some(frame) = frame else {
                    graceful = true;
                    break 'outer;
                };
                // What is already queued goes out with one flush, as Kestrel's output pipe
                // does, instead of one send syscall per hub message; a Close or Abort among it
                // goes after what was fed before it.
                let mut next = Some(frame);
                let mut fed = 0;
                while let Some(frame) = next.take() {
                    let (mut bytes, binary) = match frame {
                        OutFrame::Data { bytes, binary } => (bytes, binary),
                        OutFrame::Close => {
                            let _ = sink.flush().await;
                            graceful = true;
                            break 'outer;
                        }
                        OutFrame::Abort => {
                            let _ = sink.flush().await;
                            break 'outer;
                        }
                    };
                    let mut after = None;
                    if faults.coalesce_frames {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        loop {
                            match rx.try_recv() {
                                Ok(OutFrame::Data { bytes: more, .. }) => bytes.extend(more),
                                Ok(other) => { after = Some(other); break; }
                                Err(_) => break,
                            }
                        }
                    }
                    let parts = match split_point(&bytes, binary).filter(|_| faults.split_frames) {
                        Some(mid) => {
                            let tail = bytes.split_off(mid);
                            vec![bytes, tail]
                        }
                        None => vec![bytes],
                    };
                    for part in parts {
                        if sink.feed(ws_message(part, binary)).await.is_err() {
                            break 'outer;
                        }
                    }
                    fed += 1;
                    next = match after {
                        Some(frame) => Some(frame),
                        None if fed < MAX_FRAMES_PER_FLUSH => rx.try_recv().ok(),
                        None => None,
                    };
                }
                if sink.flush().await.is_err() {
                    break 'outer;
                }
            },
            _ = &mut read_ended => break 'outer,
        }
    }
    if graceful {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
    }
    // After a close frame of ours, the reader ends with the client's.
    let closed = graceful
        && tokio::time::timeout(Duration::from_secs(2), &mut reader)
            .await
            .is_ok();
    if !closed {
        reader.abort();
        let _ = reader.await;
    }
    drop(sink);
    if conn.generation.load(Ordering::SeqCst) == generation {
        conn.ws_attached.store(false, Ordering::SeqCst);
    }
    conn.send(Event::Detached { generation });
}

/// Forwards what the client sends to the session until the socket ends; `read_ended`
/// resolves then.
fn spawn_ws_reader(
    mut stream: futures_util::stream::SplitStream<WebSocket>,
    conn: Arc<Conn>,
    generation: u64,
) -> (tokio::task::JoinHandle<()>, oneshot::Receiver<()>) {
    let (ended, read_ended) = oneshot::channel();
    let reader = tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            let bytes = match msg {
                Ok(Message::Text(t)) => Bytes::copy_from_slice(t.as_bytes()),
                Ok(Message::Binary(b)) => b,
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
                Ok(Message::Close(_)) | Err(_) => break,
            };
            conn.send(Event::Data {
                bytes,
                generation: Some(generation),
            });
        }
        let _ = ended.send(());
    });
    (reader, read_ended)
}

/// Tells the session that the SSE stream is gone when the response body is dropped.
struct DetachGuard {
    conn: Arc<Conn>,
    generation: u64,
}

impl Drop for DetachGuard {
    fn drop(&mut self) {
        self.conn.send(Event::Detached {
            generation: self.generation,
        });
    }
}

fn sse_event(bytes: &[u8]) -> Bytes {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    Bytes::from(out)
}

fn sse(
    _server: &ServerState,
    ep: &'static Endpoint,
    conn: Arc<Conn>,
    info: RequestInfo,
) -> Response {
    if !ep.transports.contains(&TransportKind::ServerSentEvents) {
        return status(
            StatusCode::NOT_FOUND,
            "ServerSentEvents are not enabled on this endpoint",
        );
    }
    {
        let mut t = conn.transport.lock().unwrap();
        match *t {
            None => *t = Some(TransportKind::ServerSentEvents),
            Some(TransportKind::ServerSentEvents) => {
                return status(StatusCode::CONFLICT, "Connection already in use")
            }
            Some(_) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "Cannot change transports mid-connection",
                )
            }
        }
    }
    *conn.info.lock().unwrap() = info;
    let generation = conn.next_generation();
    let (tx, rx) = unbounded_channel();
    conn.send(Event::Attach {
        kind: TransportKind::ServerSentEvents,
        tx,
        generation,
    });
    let guard = DetachGuard { conn, generation };
    let first =
        futures_util::stream::once(async { Ok::<Bytes, Infallible>(Bytes::from_static(b"\r\n")) });
    let rest = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        match rx.recv().await {
            Some(OutFrame::Data { bytes, .. }) => Some((Ok(sse_event(&bytes)), (rx, guard))),
            _ => None,
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(first.chain(rest)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn poll_body(bytes: Vec<u8>, binary: bool) -> Response {
    let ct = if binary {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, ct)], bytes).into_response()
}

async fn poll(
    server: &ServerState,
    ep: &'static Endpoint,
    conn: Arc<Conn>,
    info: RequestInfo,
) -> Response {
    if !ep.transports.contains(&TransportKind::LongPolling) {
        return status(
            StatusCode::NOT_FOUND,
            "LongPolling is not enabled on this endpoint",
        );
    }
    let first = {
        let mut t = conn.transport.lock().unwrap();
        match *t {
            None => {
                *t = Some(TransportKind::LongPolling);
                true
            }
            Some(TransportKind::LongPolling) => false,
            Some(_) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "Cannot change transports mid-connection",
                )
            }
        }
    };
    if first {
        *conn.info.lock().unwrap() = info;
        let (tx, rx) = unbounded_channel();
        *conn.lp_rx.lock().await = Some(rx);
        let generation = conn.next_generation();
        conn.send(Event::Attach {
            kind: TransportKind::LongPolling,
            tx,
            generation,
        });
        conn.lp_first_done.store(true, Ordering::SeqCst);
        return StatusCode::OK.into_response();
    }
    if let Some(code) = conn.faults.poll_status {
        return StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
    }
    // A poll is activity: it keeps a Long Polling connection alive.
    conn.send(Event::Data {
        bytes: Bytes::new(),
        generation: None,
    });
    let token = CancellationToken::new();
    if let Some(old) = conn.lp_cancel.lock().unwrap().replace(token.clone()) {
        old.cancel();
    }
    let mut guard = tokio::select! {
        g = conn.lp_rx.lock() => g,
        _ = token.cancelled() => return StatusCode::NO_CONTENT.into_response(),
    };
    let aborted = || {
        if conn.lp_aborted.load(Ordering::SeqCst) {
            status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The connection was aborted.",
            )
        } else {
            StatusCode::NO_CONTENT.into_response()
        }
    };
    let Some(rx) = guard.as_mut() else {
        return aborted();
    };
    let frame = tokio::select! {
        f = rx.recv() => f,
        _ = tokio::time::sleep(server.options.long_poll_timeout) => return StatusCode::OK.into_response(),
        _ = token.cancelled() => return StatusCode::NO_CONTENT.into_response(),
    };
    match frame {
        Some(OutFrame::Data { mut bytes, binary }) => {
            loop {
                match rx.try_recv() {
                    Ok(OutFrame::Data { bytes: more, .. }) => bytes.extend(more),
                    Ok(_) => {
                        *guard = None;
                        break;
                    }
                    Err(_) => break,
                }
            }
            poll_body(bytes, binary)
        }
        Some(OutFrame::Abort) => {
            *guard = None;
            aborted()
        }
        Some(OutFrame::Close) | None => {
            *guard = None;
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

async fn send(conn: Arc<Conn>, info: RequestInfo, body: Body) -> Response {
    let served_before = conn.posts.fetch_add(1, Ordering::SeqCst);
    if let Some(code) = conn
        .faults
        .send_status
        .filter(|_| served_before >= conn.faults.send_status_after)
    {
        return StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
    }
    if *conn.transport.lock().unwrap() == Some(TransportKind::WebSockets) {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST requests are not allowed for WebSocket connections.",
        );
    }
    if conn.ended.load(Ordering::SeqCst) {
        return status(StatusCode::NOT_FOUND, "No Connection with that ID");
    }
    let bytes = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return status(StatusCode::BAD_REQUEST, "Could not read the body"),
    };
    *conn.info.lock().unwrap() = info;
    if conn.send(Event::Data {
        bytes,
        generation: None,
    }) {
        StatusCode::OK.into_response()
    } else {
        status(StatusCode::NOT_FOUND, "No Connection with that ID")
    }
}

fn delete(conn: Arc<Conn>) -> Response {
    if *conn.transport.lock().unwrap() != Some(TransportKind::LongPolling) {
        return status(
            StatusCode::BAD_REQUEST,
            "Cannot terminate this connection using the DELETE endpoint.",
        );
    }
    if let Some(token) = conn.lp_cancel.lock().unwrap().take() {
        token.cancel();
    }
    let generation = conn.generation.load(Ordering::SeqCst);
    conn.send(Event::Detached { generation });
    StatusCode::ACCEPTED.into_response()
}
