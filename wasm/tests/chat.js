// The README's demo chat (examples/rust-chat, scripts/demo.sh) in a page: alice (JSON), bob
// (MessagePack) and carol (JSON) chat through the test server's hub. `lib` is hublink's
// package or @microsoft/signalr; `print` shows a line. Lines that arrive together (one group
// message to two members) are printed in a stable order, so the transcript is the same on
// every run; the test compares it with the demo's.

export async function runChat(lib, hubUrl, print) {
  const pending = [];
  let arrived = null;
  const received = (line) => {
    pending.push(line);
    if (arrived && pending.length >= arrived.count) arrived.resolve();
  };
  async function printReceived(count) {
    if (pending.length < count) {
      await Promise.race([
        new Promise((resolve) => { arrived = { count, resolve }; }),
        new Promise((_, reject) => setTimeout(() => reject(new Error("a message did not arrive in time")), 5000)),
      ]);
    }
    for (const line of pending.splice(0, count).sort()) print(line);
  }

  async function join(name, protocol) {
    let builder = new lib.HubConnectionBuilder().withUrl(hubUrl);
    if (protocol === "MessagePack") builder = builder.withHubProtocol(new lib.MessagePackHubProtocol());
    const connection = builder.build();
    connection.on("Message", (text) => received(`  ${name} received: ${text}`));
    // A client result: the server asks this client a question and awaits the answer.
    connection.on("Mood", () => `${name} is happy`);
    await connection.start();
    print(`${name} connected with ${protocol}`);
    return connection;
  }

  const alice = await join("alice", "Json");
  const bob = await join("bob", "MessagePack");
  const carol = await join("carol", "Json");

  print("alice and bob join the group 'rust'");
  await alice.invoke("JoinGroup", "rust");
  await bob.invoke("JoinGroup", "rust");
  print("carol sends to the group: 'hello rustaceans'");
  await carol.invoke("SendToGroup", "rust", "carol: hello rustaceans");
  await printReceived(2);

  print("bob broadcasts to everyone: 'hi all'");
  await bob.send("Broadcast", "bob: hi all");
  await printReceived(3);

  print("alice streams a countdown from the server:");
  await new Promise((resolve, reject) => {
    alice.stream("StreamCount", 5).subscribe({
      next: (n) => print(`  alice got item ${n}`),
      error: reject,
      complete: resolve,
    });
  });

  print("carol's hub call makes the server ask carol for a client result:");
  const mood = await carol.invoke("GetClientResult", "Mood");
  print(`  the server got back: ${mood}`);

  for (const connection of [alice, bob, carol]) await connection.stop();
  print("all clients stopped; demo finished");
}

/** What the demo prints (without its connection ids and transports). */
export const TRANSCRIPT = [
  "alice connected with Json",
  "bob connected with MessagePack",
  "carol connected with Json",
  "alice and bob join the group 'rust'",
  "carol sends to the group: 'hello rustaceans'",
  "  alice received: carol: hello rustaceans",
  "  bob received: carol: hello rustaceans",
  "bob broadcasts to everyone: 'hi all'",
  "  alice received: bob: hi all",
  "  bob received: bob: hi all",
  "  carol received: bob: hi all",
  "alice streams a countdown from the server:",
  "  alice got item 0",
  "  alice got item 1",
  "  alice got item 2",
  "  alice got item 3",
  "  alice got item 4",
  "carol's hub call makes the server ask carol for a client result:",
  "  the server got back: carol is happy",
  "all clients stopped; demo finished",
];
