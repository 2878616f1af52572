//! hublink against a scaled-out server: two test-server instances ("A", "B") sharing a real
//! Redis as their backplane, behind a real HAProxy (common/testbed.rs, scripts/testbed.sh).
//! What is checked is what breaks clients in production: messages between connections on
//! different instances, the affinity cookie that Long Polling and Server-Sent Events need
//! (and the failure without it), and the failover of one instance's clients to the other.
//!
//! Each test starts its own testbed, and every wait is bounded.

mod common;

use std::future::Future;
use std::time::Duration;

use hublink::{
    HubConnection, HubConnectionBuilder, HubConnectionState, HubProtocol, IntoArguments,
    TransportKind,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

use common::calls;
use common::testbed::Testbed;

/// The bound of every single wait.
const WAIT: Duration = Duration::from_secs(20);
/// Calls each connection makes through the sticky frontend.
const CALLS_PER_CONNECTION: usize = 25;
/// How many connections to open to land one on a given instance (round robin needs 2).
const LANDING_ATTEMPTS: usize = 6;

async fn within<T>(what: impl std::fmt::Display, future: impl Future<Output = T>) -> T {
    match timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("hang: {what} did not finish within {WAIT:?}"),
    }
}

fn client(url: &str, transport: TransportKind, protocol: HubProtocol) -> HubConnectionBuilder {
    HubConnectionBuilder::new()
        .with_url(url)
        .with_transports([transport])
        .with_protocol(protocol)
}

/// The instance the connection landed on.
async fn instance_of(connection: &HubConnection) -> String {
    within("GetInstanceName", connection.invoke("GetInstanceName", ()))
        .await
        .expect("GetInstanceName")
}

async fn server_id(connection: &HubConnection) -> String {
    within(
        "GetCallerConnectionId",
        connection.invoke("GetCallerConnectionId", ()),
    )
    .await
    .expect("GetCallerConnectionId")
}

async fn start(connection: &HubConnection, what: &str) {
    within(format!("{what}: start"), connection.start())
        .await
        .unwrap_or_else(|e| panic!("{what}: start: {e}"));
}

async fn stop(connection: &HubConnection) {
    let _ = within("stop", connection.stop()).await;
}

/// A started connection on instance `wanted`: connections through the balancer are opened
/// (and the ones that land elsewhere stopped) until one lands there.
async fn connect_on(wanted: &str, make: impl Fn() -> HubConnectionBuilder) -> HubConnection {
    for _ in 0..LANDING_ATTEMPTS {
        let connection = make().build().unwrap();
        start(&connection, wanted).await;
        if instance_of(&connection).await == wanted {
            return connection;
        }
        stop(&connection).await;
    }
    panic!("no connection landed on instance {wanted} in {LANDING_ATTEMPTS} attempts");
}

async fn call(connection: &HubConnection, method: &str, arguments: impl IntoArguments) {
    within(method, connection.invoke::<()>(method, arguments))
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"));
}

async fn next_message(inbox: &mut mpsc::UnboundedReceiver<String>, who: &str) -> String {
    within(format!("{who}: a Message"), inbox.recv())
        .await
        .expect("the inbox stays open")
}

/// The `Message`s `inbox` received up to and including `last`, in order.
async fn messages_until(
    inbox: &mut mpsc::UnboundedReceiver<String>,
    last: &str,
    who: &str,
) -> Vec<String> {
    let mut received = Vec::new();
    loop {
        let message = next_message(inbox, who).await;
        let done = message == last;
        received.push(message);
        if done {
            return received;
        }
    }
}

// scenario: any.any.scale.group-across-instances
#[tokio::test]
async fn a_group_message_from_instance_a_reaches_a_member_on_instance_b() {
    let bed = Testbed::start();
    let url = bed.sticky("/testhub");
    let sender = connect_on("A", || {
        client(&url, TransportKind::WebSockets, HubProtocol::Json)
    })
    .await;
    let member = connect_on("B", || {
        client(&url, TransportKind::LongPolling, HubProtocol::MessagePack)
    })
    .await;
    let outsider = connect_on("B", || {
        client(&url, TransportKind::ServerSentEvents, HubProtocol::Json)
    })
    .await;
    let mut member_inbox = calls(&member, "Message");
    let mut outsider_inbox = calls(&outsider, "Message");
    call(&member, "JoinGroup", ("room",)).await;

    call(&sender, "SendToGroup", ("room", "hello from A")).await;
    assert_eq!(
        next_message(&mut member_inbox, "the member on B").await,
        "hello from A",
        "{}",
        bed.logs()
    );
    // Sent after the group message and through the same Redis channel: if the outsider had
    // been sent the group message, it would get it first.
    let outsider_id = server_id(&outsider).await;
    call(&sender, "SendToConnection", (&outsider_id, "barrier")).await;
    assert_eq!(
        next_message(&mut outsider_inbox, "the outsider on B").await,
        "barrier",
        "a connection outside the group got the group message"
    );
    for connection in [&sender, &member, &outsider] {
        stop(connection).await;
    }
}

// scenario: any.any.scale.backplane-audiences
#[tokio::test]
async fn everyone_others_a_user_and_a_connection_reach_across_instances() {
    let bed = Testbed::start();
    let hub = |user: &str| bed.sticky(&format!("/testhub?user={user}"));
    let (alice_url, bob_url) = (hub("alice"), hub("bob"));
    let alice_on_a = connect_on("A", || {
        client(&alice_url, TransportKind::WebSockets, HubProtocol::Json)
    })
    .await;
    let bob_on_b = connect_on("B", || {
        client(
            &bob_url,
            TransportKind::WebSockets,
            HubProtocol::MessagePack,
        )
    })
    .await;
    let alice_on_b = connect_on("B", || {
        client(&alice_url, TransportKind::LongPolling, HubProtocol::Json)
    })
    .await;
    let mut inboxes = [&alice_on_a, &bob_on_b, &alice_on_b].map(|c| calls(c, "Message"));

    call(&alice_on_a, "Broadcast", ("to all",)).await;
    call(&alice_on_a, "SendToOthers", ("to others",)).await;
    call(&bob_on_b, "SendToUser", ("alice", "to alice")).await;
    let alice_on_a_id = server_id(&alice_on_a).await;
    call(&bob_on_b, "SendToConnection", (&alice_on_a_id, "to one")).await;
    call(&bob_on_b, "SendToAll", ("end",)).await;

    let expected = [
        ("alice on A", vec!["to all", "to alice", "to one", "end"]),
        ("bob on B", vec!["to all", "to others", "end"]),
        ("alice on B", vec!["to all", "to others", "to alice", "end"]),
    ];
    for ((who, wanted), inbox) in expected.iter().zip(inboxes.iter_mut()) {
        assert_eq!(messages_until(inbox, "end", who).await, *wanted, "{who}");
    }
    for connection in [&alice_on_a, &bob_on_b, &alice_on_b] {
        stop(connection).await;
    }
}

/// Opens `count` connections through `url`, makes [`CALLS_PER_CONNECTION`] echo calls on each
/// (all connections at once) and returns the instance of each; every connection must stay on
/// its instance.
async fn echo_through(
    url: &str,
    transport: TransportKind,
    protocol: HubProtocol,
    count: usize,
) -> Vec<String> {
    let mut runs = Vec::new();
    for n in 0..count {
        let connection = client(url, transport, protocol).build().unwrap();
        start(&connection, &format!("{transport} #{n}")).await;
        runs.push(tokio::spawn(async move {
            let first = instance_of(&connection).await;
            for i in 0..CALLS_PER_CONNECTION {
                let text = format!("{n}/{i}");
                let echoed: String = within("Echo", connection.invoke("Echo", (&text,)))
                    .await
                    .unwrap_or_else(|e| panic!("{transport} #{n}: call {i}: {e}"));
                assert_eq!(echoed, text);
            }
            let last = instance_of(&connection).await;
            assert_eq!(first, last, "{transport} #{n} changed instances");
            stop(&connection).await;
            first
        }));
    }
    let mut instances = Vec::new();
    for run in runs {
        instances.push(within("a connection's calls", run).await.unwrap());
    }
    instances
}

// scenario: lp.json.scale.sticky-cookie, lp.msgpack.scale.sticky-cookie, sse.json.scale.sticky-cookie
#[tokio::test]
async fn long_polling_and_sse_work_through_the_balancer_with_the_affinity_cookie() {
    let bed = Testbed::start();
    let url = bed.sticky("/testhub");
    for (transport, protocol) in [
        (TransportKind::LongPolling, HubProtocol::Json),
        (TransportKind::LongPolling, HubProtocol::MessagePack),
        (TransportKind::ServerSentEvents, HubProtocol::Json),
    ] {
        let instances = echo_through(&url, transport, protocol, 4).await;
        // Spread over both, so that every request had a wrong instance to land on.
        for instance in ["A", "B"] {
            assert!(
                instances.iter().any(|i| i == instance),
                "{transport}: no connection on {instance}: {instances:?}"
            );
        }
    }
}

/// What the client says when the instance that got the transport's first request answers
/// 404: it does not know the connection the other one negotiated.
fn unknown_connection_text(transport: TransportKind) -> &'static str {
    match transport {
        TransportKind::ServerSentEvents => "If you have multiple servers check that sticky sessions are enabled. (HTTP status 404 Not Found)",
        _ => "No Connection with that ID: Status code '404'",
    }
}

// scenario: lp.json.scale.no-affinity-fails, sse.json.scale.no-affinity-fails
#[tokio::test]
async fn without_affinity_long_polling_and_sse_fail_on_the_other_instance() {
    let bed = Testbed::start();
    let url = bed.round_robin("/testhub");
    for transport in [TransportKind::LongPolling, TransportKind::ServerSentEvents] {
        // Round robin: the negotiate goes to one instance, the transport's first request to
        // the other, which answers 404 "No Connection with that ID".
        for attempt in 0..3 {
            let connection = client(&url, transport, HubProtocol::Json).build().unwrap();
            let outcome = within("start", connection.start()).await;
            let error = match outcome {
                Err(error) => error,
                Ok(()) => panic!("{transport} #{attempt}: started without affinity"),
            };
            assert_eq!(
                error.status(),
                Some(404),
                "{transport} #{attempt}: {error:?}"
            );
            assert!(
                error
                    .to_string()
                    .contains(unknown_connection_text(transport)),
                "{transport} #{attempt}: {error}"
            );
            assert_eq!(connection.state(), HubConnectionState::Disconnected);
        }
    }
}

// scenario: ws.json.scale.skip-negotiation-no-affinity
#[tokio::test]
async fn websockets_that_skip_negotiation_need_no_affinity() {
    let bed = Testbed::start();
    let url = bed.round_robin("/testhub");
    let mut instances = Vec::new();
    for n in 0..4 {
        let connection = client(&url, TransportKind::WebSockets, HubProtocol::Json)
            .skip_negotiation(true)
            .build()
            .unwrap();
        start(&connection, &format!("WebSockets #{n}")).await;
        let echoed: String = within("Echo", connection.invoke("Echo", ("hi",)))
            .await
            .unwrap();
        assert_eq!(echoed, "hi");
        instances.push(instance_of(&connection).await);
        stop(&connection).await;
    }
    assert!(
        instances.iter().any(|i| i == "A") && instances.iter().any(|i| i == "B"),
        "round robin spreads the connections: {instances:?}"
    );
}

/// A connection that, once reconnected, joins `group` again and then reports the instance it
/// is on.
fn rejoining(connection: &HubConnection, group: &'static str) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let me = connection.clone();
    connection.on_reconnected(move |_| {
        let (me, tx) = (me.clone(), tx.clone());
        tokio::spawn(async move {
            match me.invoke::<()>("JoinGroup", (group,)).await {
                Ok(()) => {
                    let _ = tx.send(instance_of(&me).await);
                }
                Err(e) => {
                    let _ = tx.send(format!("JoinGroup failed: {e}"));
                }
            }
        });
    });
    rx
}

// scenario: any.any.scale.failover-rejoin
#[tokio::test]
async fn when_an_instance_dies_its_clients_reconnect_to_the_other_and_rejoin_their_group() {
    let bed = Testbed::start();
    let url = bed.sticky("/testhub");
    let reconnecting = |transport, protocol| {
        client(&url, transport, protocol).with_automatic_reconnect_delays([
            Duration::ZERO,
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_secs(2),
        ])
    };
    let mut victims = Vec::new();
    for (transport, protocol) in [
        (TransportKind::WebSockets, HubProtocol::Json),
        (TransportKind::ServerSentEvents, HubProtocol::Json),
        (TransportKind::LongPolling, HubProtocol::MessagePack),
    ] {
        let connection = connect_on("A", || reconnecting(transport, protocol)).await;
        let rejoined = rejoining(&connection, "room");
        let inbox = calls(&connection, "Message");
        call(&connection, "JoinGroup", ("room",)).await;
        victims.push((transport, connection, rejoined, inbox));
    }
    // On A too, and reconnects, but does not join again: it must fall out of the group.
    let forgetful = connect_on("A", || {
        reconnecting(TransportKind::WebSockets, HubProtocol::Json)
    })
    .await;
    let (reconnected_tx, mut forgetful_reconnected) = mpsc::unbounded_channel();
    forgetful.on_reconnected(move |id| {
        let _ = reconnected_tx.send(id);
    });
    let mut forgetful_inbox = calls(&forgetful, "Message");
    call(&forgetful, "JoinGroup", ("room",)).await;
    let witness = connect_on("B", || {
        client(&url, TransportKind::WebSockets, HubProtocol::Json)
    })
    .await;

    call(&witness, "SendToGroup", ("room", "before")).await;
    for (transport, _, _, inbox) in &mut victims {
        assert_eq!(next_message(inbox, &transport.to_string()).await, "before");
    }
    assert_eq!(
        next_message(&mut forgetful_inbox, "forgetful").await,
        "before"
    );

    bed.kill("A");

    for (transport, _, rejoined, _) in &mut victims {
        let instance = within(
            format!("{transport}: reconnect and rejoin"),
            rejoined.recv(),
        )
        .await
        .expect("the rejoin channel stays open");
        assert_eq!(instance, "B", "{transport}\n{}", bed.logs());
    }
    let forgetful_id = within("forgetful: reconnect", forgetful_reconnected.recv())
        .await
        .flatten()
        .expect("a new connection id");
    assert_eq!(instance_of(&forgetful).await, "B");

    call(&witness, "SendToGroup", ("room", "after")).await;
    for (transport, _, _, inbox) in &mut victims {
        assert_eq!(next_message(inbox, &transport.to_string()).await, "after");
    }
    call(&witness, "SendToConnection", (&forgetful_id, "barrier")).await;
    assert_eq!(
        next_message(&mut forgetful_inbox, "forgetful").await,
        "barrier",
        "a connection that did not rejoin is still in the group"
    );
    assert_eq!(witness.state(), HubConnectionState::Connected);
    for (_, connection, _, _) in &victims {
        stop(connection).await;
    }
    stop(&forgetful).await;
    stop(&witness).await;
}
