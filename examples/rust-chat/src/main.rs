//! The README's demo: three clients chat through a hub. By default the hub is the bundled
//! test server, started in this process; pass `--url <hub url>` to use your own server (it
//! needs the hub methods JoinGroup, SendToGroup, Broadcast, StreamCount and GetClientResult).

use std::time::Duration;

use futures_util::StreamExt;
use hublink::{HubConnection, HubConnectionBuilder, HubProtocol, Result};
use hublink_testserver::{TestServer, TestServerOptions};
use tokio::sync::mpsc;
use tokio::time::timeout;

async fn join(
    hub_url: &str,
    name: &'static str,
    protocol: HubProtocol,
    log: mpsc::UnboundedSender<String>,
) -> Result<HubConnection> {
    let connection = HubConnectionBuilder::new()
        .with_url(hub_url)
        .with_protocol(protocol)
        .build()?;
    connection.on("Message", move |(text,): (String,)| {
        let log = log.clone();
        async move {
            let _ = log.send(format!("  {name} received: {text}"));
        }
    });
    // A client result: the server asks this client a question and awaits the answer.
    connection.on("Mood", move |(): ()| async move {
        Ok::<_, String>(format!("{name} is happy"))
    });
    connection.start().await?;
    println!(
        "{name} connected over {} with {:?} (connection id {})",
        connection
            .transport()
            .map(|t| t.to_string())
            .unwrap_or_default(),
        protocol,
        connection.connection_id().unwrap_or_default()
    );
    Ok(connection)
}

async fn print_received(log: &mut mpsc::UnboundedReceiver<String>, count: usize) {
    for _ in 0..count {
        match timeout(Duration::from_secs(5), log.recv()).await {
            Ok(Some(line)) => println!("{line}"),
            _ => {
                println!("  (a message did not arrive in time)");
                std::process::exit(1);
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let external = args
        .iter()
        .position(|a| a == "--url")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let server = match &external {
        Some(_) => None,
        None => Some(
            TestServer::start(TestServerOptions::default())
                .await
                .expect("start the test server"),
        ),
    };
    let hub_url =
        external.unwrap_or_else(|| format!("{}/testhub", server.as_ref().unwrap().base_url()));
    println!("hub: {hub_url}\n");

    let (log, mut received) = mpsc::unbounded_channel();
    let alice = join(&hub_url, "alice", HubProtocol::Json, log.clone()).await?;
    let bob = join(&hub_url, "bob", HubProtocol::MessagePack, log.clone()).await?;
    let carol = join(&hub_url, "carol", HubProtocol::Json, log.clone()).await?;

    println!("\nalice and bob join the group 'rust'");
    alice.invoke::<()>("JoinGroup", ("rust",)).await?;
    bob.invoke::<()>("JoinGroup", ("rust",)).await?;
    println!("carol sends to the group: 'hello rustaceans'");
    carol
        .invoke::<()>("SendToGroup", ("rust", "carol: hello rustaceans"))
        .await?;
    print_received(&mut received, 2).await;

    println!("\nbob broadcasts to everyone: 'hi all'");
    bob.send("Broadcast", ("bob: hi all",)).await?;
    print_received(&mut received, 3).await;

    println!("\nalice streams a countdown from the server:");
    let mut countdown = alice.stream::<i64>("StreamCount", (5,))?;
    while let Some(n) = countdown.next().await {
        println!("  alice got item {}", n?);
    }

    println!("\ncarol's hub call makes the server ask carol for a client result:");
    let mood: String = carol.invoke("GetClientResult", ("Mood",)).await?;
    println!("  the server got back: {mood}");

    for connection in [alice, bob, carol] {
        connection.stop().await?;
    }
    if let Some(server) = server {
        server.shutdown().await;
    }
    println!("\nall clients stopped; demo finished");
    Ok(())
}
