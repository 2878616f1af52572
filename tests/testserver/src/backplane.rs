//! The Redis backplane between instances (`--redis URL`): what a hub method sends to other
//! connections (everyone, others, a group, a user, a connection) is published on one Redis
//! channel, and every instance, the sender's included, delivers it to its own connections that
//! the audience names. Group membership stays local to each instance, as in ASP.NET Core's
//! Redis backplane: each instance delivers a group message to its local members.
//!
//! On the channel, each message is one JSON envelope: the hub, the audience and the hub
//! message encoded with the MessagePack protocol (base64), so that binary values and
//! timestamps cross unchanged whatever protocol the receiving client speaks.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use hublink_proto::{HubMessage, HubProtocol, Payload};
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::session::{Conn, Event, HubKind};
use crate::ServerState;

/// The Redis channel every instance publishes on and listens to.
const CHANNEL: &str = "hublink-testserver";

/// How long connecting to Redis, and each PUBLISH, may take (the client's default answer
/// timeout, 500 ms, is short for a loaded CI machine).
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// Which connections of a hub a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub(crate) enum Audience {
    All,
    /// Everyone but this connection id (`SendToOthers`).
    AllExcept(String),
    /// The members of this group key ("<endpoint path>/<group>").
    Group(String),
    User(String),
    Connection(String),
}

/// Sends `message` to this server's connections of `hub` that `audience` names.
pub(crate) fn deliver_locally(
    server: &ServerState,
    hub: HubKind,
    audience: &Audience,
    message: &HubMessage,
) {
    let group_members: HashSet<String> = match audience {
        Audience::Group(key) => server
            .groups
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or_default(),
        _ => HashSet::new(),
    };
    let included = |c: &Conn| match audience {
        Audience::All => true,
        Audience::AllExcept(id) => c.id != *id,
        Audience::Group(_) => group_members.contains(&c.id),
        Audience::User(user) => c.user.as_deref() == Some(user.as_str()),
        Audience::Connection(id) => c.id == *id,
    };
    let conns: Vec<Arc<Conn>> = server.by_id.lock().unwrap().values().cloned().collect();
    for c in conns {
        if c.endpoint.hub == hub && included(&c) {
            let _ = c.events.send(Event::Outgoing(message.clone()));
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    hub: HubKind,
    audience: Audience,
    /// The hub message, MessagePack-encoded, in base64.
    message: String,
}

/// The publishing side of the backplane.
pub(crate) struct Backplane {
    publisher: MultiplexedConnection,
}

/// The listening side, handed to [`deliver_from_redis`].
pub(crate) struct Subscription {
    // Kept so that the subscription's connection stays open.
    _sink: PubSubSink,
    stream: PubSubStream,
}

impl Backplane {
    /// Connects to Redis and subscribes to the channel; messages published after this returns
    /// reach the [`Subscription`].
    pub(crate) async fn connect(url: &str) -> Result<(Backplane, Subscription), String> {
        let client = redis::Client::open(url).map_err(|e| format!("Redis URL {url}: {e}"))?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let publisher = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| format!("cannot connect to Redis at {url}: {e}"))?;
        let pubsub = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub())
            .await
            .map_err(|_| format!("Redis at {url} did not answer in time"))?
            .map_err(|e| format!("cannot connect to Redis at {url}: {e}"))?;
        let (mut sink, stream) = pubsub.split();
        sink.subscribe(CHANNEL)
            .await
            .map_err(|e| format!("cannot subscribe to Redis channel {CHANNEL}: {e}"))?;
        Ok((
            Backplane { publisher },
            Subscription {
                _sink: sink,
                stream,
            },
        ))
    }

    /// Publishes `message` for `audience` on every instance (this one included).
    pub(crate) async fn publish(
        &self,
        hub: HubKind,
        audience: Audience,
        message: &HubMessage,
    ) -> Result<(), String> {
        let mut encoded = Vec::new();
        HubProtocol::MessagePack
            .write_message(message, &mut encoded)
            .map_err(|e| format!("cannot encode the message: {e}"))?;
        let envelope = Envelope {
            hub,
            audience,
            message: base64::engine::general_purpose::STANDARD.encode(encoded),
        };
        let text = serde_json::to_string(&envelope).map_err(|e| e.to_string())?;
        let mut publisher = self.publisher.clone();
        publisher
            .publish::<_, _, ()>(CHANNEL, text)
            .await
            .map_err(|e| format!("Redis PUBLISH failed: {e}"))
    }
}

/// Delivers what arrives on the channel to this server's connections, until the server shuts
/// down or Redis goes away.
pub(crate) async fn deliver_from_redis(mut subscription: Subscription, server: Arc<ServerState>) {
    let shutdown = server.shutdown.clone();
    loop {
        let published = tokio::select! {
            published = subscription.stream.next() => published,
            _ = shutdown.cancelled() => return,
        };
        let Some(published) = published else {
            eprintln!("hublink-testserver: the Redis backplane connection ended");
            return;
        };
        match decode(published.get_payload_bytes()) {
            Ok((hub, audience, message)) => deliver_locally(&server, hub, &audience, &message),
            Err(e) => eprintln!("hublink-testserver: ignoring a backplane message: {e}"),
        }
    }
}

fn decode(bytes: &[u8]) -> Result<(HubKind, Audience, HubMessage), String> {
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let encoded = base64::engine::general_purpose::STANDARD
        .decode(envelope.message)
        .map_err(|e| e.to_string())?;
    let mut decoder = HubProtocol::MessagePack.decoder(usize::MAX);
    decoder.push(&encoded);
    let mut message = decoder
        .next_message()
        .map_err(|e| e.to_string())?
        .ok_or("an incomplete hub message")?;
    // Decoded arguments are MessagePack bytes; as values, any receiver's protocol can send them.
    if let HubMessage::Invocation(invocation) = &mut message {
        for argument in &mut invocation.arguments {
            let value = argument.to_value().map_err(|e| e.to_string())?;
            *argument = Payload::Value(value);
        }
    }
    Ok((envelope.hub, envelope.audience, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hublink_proto::{Invocation, Value};

    #[test]
    fn an_envelope_round_trips_with_its_values() {
        let message = HubMessage::Invocation(Invocation {
            invocation_id: None,
            target: "Message".into(),
            arguments: vec![Payload::Value(Value::Binary(vec![1, 2, 3]))],
            stream_ids: None,
            headers: Vec::new(),
        });
        let mut encoded = Vec::new();
        HubProtocol::MessagePack
            .write_message(&message, &mut encoded)
            .unwrap();
        let text = serde_json::to_vec(&Envelope {
            hub: HubKind::Test,
            audience: Audience::Group("testhub/room".into()),
            message: base64::engine::general_purpose::STANDARD.encode(encoded),
        })
        .unwrap();
        let (hub, audience, decoded) = decode(&text).unwrap();
        assert_eq!(hub, HubKind::Test);
        assert_eq!(audience, Audience::Group("testhub/room".into()));
        let HubMessage::Invocation(invocation) = decoded else {
            panic!("not an invocation: {decoded:?}");
        };
        assert_eq!(invocation.target, "Message");
        assert_eq!(
            invocation.arguments[0].to_value().unwrap(),
            Value::Binary(vec![1, 2, 3])
        );
    }

    #[test]
    fn garbage_on_the_channel_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"not json",
            br#"{"hub":"Test","audience":{"kind":"all"},"message":"!!"}"#,
            br#"{"hub":"Test","audience":{"kind":"all"},"message":"AAAA"}"#,
            br#"{"hub":"Nope","audience":{"kind":"all"},"message":""}"#,
        ] {
            assert!(
                decode(bytes).is_err(),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
