//! The hub methods: TestHub and HubWithAuthorization of the ASP.NET FunctionalTests, plus
//! groups, benchmarks, client results and fault-injection methods.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use hublink_proto::transports::TransportKind;
use hublink_proto::{
    Close, Completion, CompletionOutcome, HubMessage, HubProtocol, Invocation, Payload, StreamItem,
    Timestamp, Value,
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::backplane::{deliver_locally, Audience};
use crate::session::{Conn, Event, HubKind};
use crate::ServerState;

/// One item of a client-to-server stream, or its failure.
pub(crate) enum UploadItem {
    Item(Payload),
    Error(String),
}

/// A hub method's shape: argument count, upload streams, streaming result.
#[derive(Debug)]
pub(crate) struct Method {
    pub name: &'static str,
    pub params: usize,
    pub uploads: usize,
    pub streaming: bool,
}

const fn m(name: &'static str, params: usize) -> Method {
    Method {
        name,
        params,
        uploads: 0,
        streaming: false,
    }
}
const fn s(name: &'static str, params: usize) -> Method {
    Method {
        name,
        params,
        uploads: 0,
        streaming: true,
    }
}
const fn u(name: &'static str, params: usize) -> Method {
    Method {
        name,
        params,
        uploads: 1,
        streaming: false,
    }
}

const TEST_HUB: &[Method] = &[
    m("Echo", 1),
    m("GetCallerConnectionId", 0),
    m("GetNumRedirects", 0),
    m("ThrowException", 1),
    m("InvokeWithString", 1),
    m("SendCustomObject", 1),
    s("Stream", 0),
    s("InfiniteStream", 0),
    u("StreamingConcat", 0),
    s("EmptyStream", 0),
    s("StreamThrowException", 1),
    m("GetActiveTransportName", 0),
    m("EchoComplexObject", 1),
    m("SendComplexObject", 0),
    m("GetContentTypeHeader", 0),
    m("GetHeader", 1),
    m("GetCookie", 1),
    m("JoinGroup", 1),
    m("LeaveGroup", 1),
    m("SendToGroup", 2),
    m("Broadcast", 1),
    m("SendToAll", 1),
    m("SendToOthers", 1),
    m("SendToUser", 2),
    m("SendToConnection", 2),
    m("GetUserIdentifier", 0),
    m("GetInstanceName", 0),
    s("StreamCount", 1),
    m("EchoN", 2),
    u("UploadSum", 0),
    m("GetClientResult", 1),
    m("Abort", 0),
    m("CloseMe", 2),
    m("SendMalformed", 0),
    m("StallFor", 1),
    m("Record", 1),
    m("Recorded", 0),
    m("Tally", 1),
    m("TallyCounts", 1),
    m("TallyDuplicates", 0),
    m("CancelledStreams", 0),
    m("EmitNumbered", 2),
    m("GetInvocationHeaders", 0),
    s("StreamInvocationHeaders", 0),
    m("RecordInvocationHeaders", 0),
];

const AUTHORIZED_HUB: &[Method] = &[
    m("Echo", 1),
    m("GetUserNameIdentifier", 0),
    m("GetUserClaim", 1),
];

/// The method `target` names on this hub (names are case-insensitive, as in ASP.NET).
pub(crate) fn find(hub: HubKind, target: &str) -> Option<&'static Method> {
    let table = match hub {
        HubKind::Test => TEST_HUB,
        HubKind::Authorized => AUTHORIZED_HUB,
        HubKind::Uncreatable => &[],
    };
    table.iter().find(|m| m.name.eq_ignore_ascii_case(target))
}

/// What a hub method sees of its connection.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub events: UnboundedSender<Event>,
    pub conn: Arc<Conn>,
    pub server: Arc<ServerState>,
    pub protocol: HubProtocol,
    pub transport: TransportKind,
    /// The headers of the invocation being run.
    pub headers: Vec<(String, String)>,
}

impl Ctx {
    fn send(&self, msg: HubMessage) {
        let _ = self.events.send(Event::Outgoing(msg));
    }

    fn group_key(&self, group: &str) -> String {
        format!("{}/{}", self.conn.endpoint.path, group)
    }

    /// Invokes a client method on this connection and waits for its Completion.
    pub(crate) async fn invoke_client(
        events: &UnboundedSender<Event>,
        target: &str,
        arguments: Vec<Payload>,
    ) -> Result<Payload, String> {
        let (reply, rx) = oneshot::channel();
        events
            .send(Event::InvokeClient {
                target: target.to_owned(),
                arguments,
                reply,
            })
            .map_err(|_| "Connection closed.".to_owned())?;
        rx.await
            .unwrap_or_else(|_| Err("Connection closed.".to_owned()))
    }
}

/// A non-blocking invocation of `target` with these arguments (what `Clients.X.SendAsync` sends).
pub(crate) fn client_call(target: &str, arguments: Vec<Payload>) -> HubMessage {
    HubMessage::Invocation(Invocation {
        invocation_id: None,
        target: target.to_owned(),
        arguments,
        stream_ids: None,
        headers: Vec::new(),
    })
}

/// Sends `Message(argument)` to the connections `audience` names: this server's, or through
/// the Redis backplane every instance's. Through Redis even a local receiver gets it from
/// Redis, so that what one caller sends arrives in the order it was sent.
async fn send_message_to(
    ctx: &Ctx,
    target: &str,
    audience: Audience,
    argument: &Payload,
) -> Result<Option<Payload>, String> {
    let msg = client_call("Message", vec![portable(argument)]);
    let hub = ctx.conn.endpoint.hub;
    match &ctx.server.backplane {
        Some(backplane) => backplane
            .publish(hub, audience, &msg)
            .await
            .map_err(|e| exception(target, "RedisException", &e))?,
        None => deliver_locally(&ctx.server, hub, &audience, &msg),
    }
    Ok(null())
}

fn value(p: &Payload) -> Value {
    p.to_value().unwrap_or(Value::Null)
}

fn text(p: &Payload) -> Option<String> {
    match value(p) {
        Value::String(s) => Some(s),
        Value::Null => None,
        other => Some(format!("{other:?}")),
    }
}

fn int(p: &Payload) -> i64 {
    match value(p) {
        Value::Int(n) => n,
        Value::UInt(n) => n as i64,
        Value::F32(f) => f as i64,
        Value::F64(f) => f as i64,
        Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn boolean(p: &Payload) -> bool {
    matches!(value(p), Value::Bool(true))
}

/// A value independent of the caller's protocol (for messages to other connections).
fn portable(p: &Payload) -> Payload {
    Payload::Value(value(p))
}

fn v(value: impl Into<Value>) -> Option<Payload> {
    Some(Payload::Value(value.into()))
}

fn null() -> Option<Payload> {
    Some(Payload::Value(Value::Null))
}

fn exception(target: &str, kind: &str, message: &str) -> String {
    format!("An unexpected error occurred invoking '{target}' on the server. {kind}: {message}")
}

/// The headers of the invocation being run, as a map of strings.
fn headers_map(ctx: &Ctx) -> Value {
    Value::Map(
        ctx.headers
            .iter()
            .map(|(name, value)| (Value::String(name.clone()), Value::String(value.clone())))
            .collect(),
    )
}

fn complex_object() -> Value {
    let s = |k: &str| Value::String(k.to_owned());
    Value::Map(vec![
        (s("String"), s("hello world")),
        (
            s("IntArray"),
            Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
        ),
        (s("ByteArray"), Value::Binary(vec![1, 2, 3])),
        (s("Guid"), s("00010203-0405-0607-0706-050403020100")),
        (
            s("DateTime"),
            Value::Timestamp(Timestamp::new(946_684_800, 0).expect("valid timestamp")),
        ),
    ])
}

/// Runs one invocation to its end and sends its Completion (and stream items).
#[allow(clippy::too_many_arguments)]
pub(crate) fn invoke(
    ctx: Ctx,
    method: &'static Method,
    target: String,
    id: Option<String>,
    args: Vec<Payload>,
    uploads: Vec<UnboundedReceiver<UploadItem>>,
    cancel: CancellationToken,
    streaming: bool,
) -> BoxFuture<'static, ()> {
    async move {
        if streaming {
            let id = id.unwrap_or_default();
            let sink = |item: Payload| {
                ctx.send(HubMessage::StreamItem(StreamItem {
                    invocation_id: id.clone(),
                    item,
                    headers: Vec::new(),
                }))
            };
            let result = run_stream(&ctx, method, &target, &args, &cancel, &sink).await;
            ctx.send(HubMessage::Completion(Completion {
                invocation_id: id.clone(),
                outcome: match result {
                    Ok(()) => CompletionOutcome::Void,
                    Err(e) => CompletionOutcome::Error(e),
                },
                headers: Vec::new(),
            }));
        } else {
            let result = run_method(&ctx, method, &target, args, uploads).await;
            if let Some(id) = id {
                ctx.send(HubMessage::Completion(Completion {
                    invocation_id: id,
                    outcome: match result {
                        Ok(Some(p)) => CompletionOutcome::Result(p),
                        Ok(None) => CompletionOutcome::Void,
                        Err(e) => CompletionOutcome::Error(e),
                    },
                    headers: Vec::new(),
                }));
            }
        }
    }
    .boxed()
}

async fn run_stream(
    ctx: &Ctx,
    method: &Method,
    target: &str,
    args: &[Payload],
    cancel: &CancellationToken,
    sink: &(dyn Fn(Payload) + Send + Sync),
) -> Result<(), String> {
    match method.name {
        "Stream" => {
            for item in ["a", "b", "c"] {
                sink(Payload::Value(item.into()));
            }
            Ok(())
        }
        "EmptyStream" => Ok(()),
        "StreamInvocationHeaders" => {
            sink(Payload::Value(headers_map(ctx)));
            Ok(())
        }
        "InfiniteStream" => {
            cancel.cancelled().await;
            ctx.send(client_call("StreamCanceled", Vec::new()));
            Ok(())
        }
        "StreamThrowException" => {
            let message = args.first().and_then(text).unwrap_or_default();
            Err(exception(target, "InvalidOperationException", &message))
        }
        "StreamCount" => {
            let n = args.first().map(int).unwrap_or(0);
            for i in 0..n {
                if cancel.is_cancelled() {
                    break;
                }
                sink(Payload::Value(Value::Int(i)));
                if i % 256 == 255 {
                    tokio::task::yield_now().await;
                }
            }
            Ok(())
        }
        other => Err(format!("no streaming method {other}")),
    }
}

async fn run_method(
    ctx: &Ctx,
    method: &Method,
    target: &str,
    args: Vec<Payload>,
    mut uploads: Vec<UnboundedReceiver<UploadItem>>,
) -> Result<Option<Payload>, String> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Payload::Value(Value::Null));
    let info = || ctx.conn.info.lock().unwrap().clone();
    match method.name {
        "Echo" | "EchoComplexObject" => Ok(Some(arg(0))),
        "EchoN" => {
            let n = int(&arg(1)).max(0);
            let item = value(&arg(0));
            Ok(v(Value::Array((0..n).map(|_| item.clone()).collect())))
        }
        "GetCallerConnectionId" => Ok(v(ctx.conn.id.clone())),
        "GetNumRedirects" => {
            let n = info()
                .query_value("numRedirects")
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0);
            Ok(v(n))
        }
        "ThrowException" => {
            let message = text(&arg(0)).unwrap_or_default();
            Err(exception(target, "InvalidOperationException", &message))
        }
        "InvokeWithString" => {
            ctx.send(client_call("Message", vec![arg(0)]));
            Ok(null())
        }
        "SendCustomObject" => {
            ctx.send(client_call("CustomObject", vec![arg(0)]));
            Ok(null())
        }
        "StreamingConcat" | "UploadSum" => {
            let mut rx = uploads.pop().expect("one upload stream");
            let mut concat = String::new();
            let mut sum: i64 = 0;
            while let Some(item) = rx.recv().await {
                match item {
                    UploadItem::Item(p) => {
                        if method.name == "UploadSum" {
                            sum += int(&p);
                        } else {
                            concat.push_str(&text(&p).unwrap_or_default());
                        }
                    }
                    UploadItem::Error(e) => return Err(exception(target, "HubException", &e)),
                }
            }
            if method.name == "UploadSum" {
                Ok(v(sum))
            } else {
                Ok(v(concat))
            }
        }
        "GetActiveTransportName" => Ok(v(ctx.transport.name())),
        "SendComplexObject" => Ok(v(complex_object())),
        "GetContentTypeHeader" => Ok(v(info().header("content-type"))),
        "GetHeader" => {
            let name = text(&arg(0)).unwrap_or_default();
            Ok(v(info().header(&name)))
        }
        "GetCookie" => {
            let name = text(&arg(0)).unwrap_or_default();
            Ok(v(info().cookie(&name)))
        }
        "JoinGroup" | "LeaveGroup" => {
            let key = ctx.group_key(&text(&arg(0)).unwrap_or_default());
            let mut groups = ctx.server.groups.lock().unwrap();
            if method.name == "JoinGroup" {
                groups.entry(key).or_default().insert(ctx.conn.id.clone());
            } else if let Some(members) = groups.get_mut(&key) {
                members.remove(&ctx.conn.id);
            }
            Ok(null())
        }
        "SendToGroup" => {
            let key = ctx.group_key(&text(&arg(0)).unwrap_or_default());
            send_message_to(ctx, target, Audience::Group(key), &arg(1)).await
        }
        "Broadcast" | "SendToAll" => send_message_to(ctx, target, Audience::All, &arg(0)).await,
        "SendToOthers" => {
            let me = ctx.conn.id.clone();
            send_message_to(ctx, target, Audience::AllExcept(me), &arg(0)).await
        }
        "SendToUser" => match text(&arg(0)) {
            Some(user) => send_message_to(ctx, target, Audience::User(user), &arg(1)).await,
            // No connection has a null user.
            None => Ok(null()),
        },
        "SendToConnection" => {
            let id = text(&arg(0)).unwrap_or_default();
            send_message_to(ctx, target, Audience::Connection(id), &arg(1)).await
        }
        "GetInstanceName" => Ok(v(ctx.server.options.instance_name.clone())),
        "GetUserIdentifier" => Ok(v(ctx.conn.user.clone())),
        "GetUserNameIdentifier" => Ok(v(ctx.conn.user.clone())),
        "GetUserClaim" => {
            let claim = text(&arg(0)).unwrap_or_default();
            let known = claim.ends_with("nameidentifier") || claim == "sub";
            Ok(v(if known { ctx.conn.user.clone() } else { None }))
        }
        "GetClientResult" => {
            let name = text(&arg(0)).unwrap_or_default();
            match Ctx::invoke_client(&ctx.events, &name, Vec::new()).await {
                Ok(p) => Ok(Some(portable(&p))),
                Err(e) => Err(exception(target, "HubException", &e)),
            }
        }
        "Abort" => {
            let _ = ctx.events.send(Event::Abort);
            Ok(null())
        }
        "CloseMe" => {
            let error = text(&arg(0));
            let allow = boolean(&arg(1));
            let _ = ctx.events.send(Event::Close(Close {
                error,
                allow_reconnect: Some(allow),
            }));
            Ok(null())
        }
        "SendMalformed" => {
            let raw = match ctx.protocol {
                HubProtocol::Json => b"{\"type\":\x1e".to_vec(),
                HubProtocol::MessagePack => vec![0x02, 0xc1, 0xc1],
            };
            let _ = ctx.events.send(Event::Raw(raw));
            Ok(null())
        }
        "GetInvocationHeaders" => Ok(v(headers_map(ctx))),
        "RecordInvocationHeaders" => {
            let mut recorded = ctx.conn.recorded.lock().unwrap();
            recorded.push(Payload::Value(headers_map(ctx)));
            Ok(v(recorded.len() as i64 - 1))
        }
        "Record" => {
            let mut recorded = ctx.conn.recorded.lock().unwrap();
            recorded.push(arg(0));
            Ok(v(recorded.len() as i64 - 1))
        }
        "Recorded" => {
            let recorded = ctx.conn.recorded.lock().unwrap();
            Ok(v(Value::Array(recorded.iter().map(value).collect())))
        }
        "Tally" => {
            let key = text(&arg(0)).unwrap_or_default();
            let mut tallies = ctx.server.tallies.lock().unwrap();
            tallies.entry(key).or_default().push(ctx.conn.id.clone());
            Ok(None)
        }
        "TallyCounts" => {
            let prefix = text(&arg(0)).unwrap_or_default();
            let tallies = ctx.server.tallies.lock().unwrap();
            let counts = tallies
                .iter()
                .filter(|(key, _)| key.starts_with(&prefix))
                .map(|(key, ids)| (Value::from(key.as_str()), Value::from(ids.len() as i64)))
                .collect();
            Ok(v(Value::Map(counts)))
        }
        "TallyDuplicates" => {
            let tallies = ctx.server.tallies.lock().unwrap();
            let duplicates = tallies
                .iter()
                .filter(|(_, ids)| ids.len() > 1)
                .map(|(key, ids)| {
                    let ids = ids.iter().map(|id| Value::from(id.as_str())).collect();
                    (Value::from(key.as_str()), Value::Array(ids))
                })
                .collect();
            Ok(v(Value::Map(duplicates)))
        }
        "CancelledStreams" => Ok(v(ctx
            .server
            .cancelled_streams
            .load(std::sync::atomic::Ordering::SeqCst)
            as i64)),
        "EmitNumbered" => {
            let (start, count) = (int(&arg(0)), int(&arg(1)).max(0));
            for i in start..start + count {
                ctx.send(client_call(
                    "Numbered",
                    vec![Payload::Value(Value::from(i))],
                ));
            }
            Ok(v(count))
        }
        "StallFor" => {
            let ms = int(&arg(0)).max(0) as u64;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(null())
        }
        other => Err(format!("no method {other}")),
    }
}
