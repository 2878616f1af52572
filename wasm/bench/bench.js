// The browser benchmark's workloads, for either client (same API): over WebSockets,
//  - echo: `invoke("Echo", "x")` with 100 calls in flight for `seconds` (calls/s), as the
//    native benchmark (benchmarks/src/hub.rs) and python/bench do;
//  - stream: one `stream("StreamCount", n)` read to the end (items/s).
// Each starts with a warm-up on the same connection.

async function connect(lib, url, protocol) {
  let builder = new lib.HubConnectionBuilder()
    .withUrl(url, { transport: lib.HttpTransportType.WebSockets });
  if (protocol === "messagepack") builder = builder.withHubProtocol(new lib.MessagePackHubProtocol());
  if (lib.LogLevel && builder.configureLogging) builder = builder.configureLogging(lib.LogLevel.None);
  const connection = builder.build();
  await connection.start();
  return connection;
}

async function echo(connection, seconds, inFlight) {
  let calls = 0;
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const echoed = await connection.invoke("Echo", "x");
      if (echoed !== "x") throw new Error(`Echo returned ${echoed}`);
      calls += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return calls / ((performance.now() - started) / 1000);
}

function stream(connection, n) {
  const started = performance.now();
  let items = 0;
  return new Promise((resolve, reject) => {
    connection.stream("StreamCount", n).subscribe({
      next: () => { items += 1; },
      error: reject,
      complete: () => {
        if (items !== n) reject(new Error(`${items} of ${n} items`));
        else resolve(n / ((performance.now() - started) / 1000));
      },
    });
  });
}

/** One figure: `workload` "echo" (calls/s) or "stream" (items/s). */
export async function measure(lib, url, protocol, workload, { seconds = 3, items = 100000 } = {}) {
  const connection = await connect(lib, url, protocol);
  try {
    if (workload === "echo") {
      await echo(connection, 0.5, 100);
      return await echo(connection, seconds, 100);
    }
    await stream(connection, Math.min(items, 10000));
    return await stream(connection, items);
  } finally {
    await connection.stop();
  }
}
