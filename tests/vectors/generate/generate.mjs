// Generates the language-neutral SignalR protocol vectors in tests/vectors/ from the
// OFFICIAL Microsoft SignalR JavaScript packages (pinned in package.json):
//
//   cd tests/vectors/generate && npm ci && node generate.mjs
//
// Every "both" vector is produced by the TS `writeMessage` and checked to round-trip
// through the TS `parseMessages` (except types 4 and 5, which the TS client does not
// parse). Every "decode" vector and every "invalid" vector is run through the TS
// `parseMessages` (or `HandshakeProtocol.parseHandshakeResponse`) and the generator
// fails if TS disagrees with the expectation written here. Output is deterministic.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT_DIR = path.resolve(HERE, "..");
const require = createRequire(import.meta.url);

const signalr = require("@microsoft/signalr");
const msgpackProtocolPkg = require("@microsoft/signalr-protocol-msgpack");
// HandshakeProtocol and BinaryMessageFormat are not exported from the package indexes;
// the packages have no `exports` map, but resolve absolute file paths to be safe.
const signalrDir = path.dirname(require.resolve("@microsoft/signalr/package.json"));
const msgpackProtocolDir = path.dirname(require.resolve("@microsoft/signalr-protocol-msgpack/package.json"));
const { HandshakeProtocol } = require(path.join(signalrDir, "dist/cjs/HandshakeProtocol.js"));
const { BinaryMessageFormat } = require(path.join(msgpackProtocolDir, "dist/cjs/BinaryMessageFormat.js"));
const { TextMessageFormat } = require(path.join(signalrDir, "dist/cjs/TextMessageFormat.js"));
// @msgpack/msgpack as resolved by the msgpack protocol package (the encoder TS uses).
const requireFromMsgpackProtocol = createRequire(path.join(msgpackProtocolDir, "package.json"));
const msgpack = requireFromMsgpackProtocol("@msgpack/msgpack");

const VERSION_SIGNALR = require("@microsoft/signalr/package.json").version;
const VERSION_MSGPACK_PROTOCOL = require("@microsoft/signalr-protocol-msgpack/package.json").version;
const VERSION_MSGPACK_LIB = requireFromMsgpackProtocol("@msgpack/msgpack/package.json").version;
assert.equal(VERSION_SIGNALR, "10.0.11");
assert.equal(VERSION_MSGPACK_PROTOCOL, "10.0.11");

const SRC_TS = `@microsoft/signalr ${VERSION_SIGNALR}`;
const SRC_SPEC = "HubProtocol.md";
const HEADER = {
  generated_by: "tests/vectors/generate/generate.mjs",
  packages: {
    "@microsoft/signalr": VERSION_SIGNALR,
    "@microsoft/signalr-protocol-msgpack": VERSION_MSGPACK_PROTOCOL,
  },
};

const RS = "\u001e";
const MessageType = signalr.MessageType;
const jsonProtocol = new signalr.JsonHubProtocol();
const mpProtocol = new msgpackProtocolPkg.MessagePackHubProtocol();
const handshakeProtocol = new HandshakeProtocol();
const layoutEncoder = new msgpack.Encoder();

// ---------------------------------------------------------------------------------------
// helpers

/** Logger that records what TS logs while parsing (e.g. "Unknown message type '99' ignored."). */
function captureLogger() {
  const lines = [];
  return { lines, log: (_level, message) => lines.push(message) };
}

function toHex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

function fromHex(hex) {
  const clean = hex.replace(/\s+/g, "").toLowerCase();
  assert.match(clean, /^([0-9a-f]{2})*$/, `bad hex ${hex}`);
  return new Uint8Array(Buffer.from(clean, "hex"));
}

/** Fresh ArrayBuffer holding exactly these bytes (TS msgpack parse requires an ArrayBuffer). */
function arrayBufferOf(bytes) {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy.buffer;
}

function utf8Hex(text) {
  return Buffer.from(text, "utf8").toString("hex");
}

/** VarInt length prefix exactly as the TS BinaryMessageFormat writes it. */
function varint(n) {
  const out = [];
  do {
    let part = n & 0x7f;
    n = n >> 7;
    if (n > 0) part |= 0x80;
    out.push(part);
  } while (n > 0);
  return out;
}

/** Frame an UNFRAMED body (hex) with its VarInt length. */
function frameHex(bodyHex) {
  const body = fromHex(bodyHex);
  return toHex([...varint(body.length), ...body]);
}

/** JS value (as TS produces/consumes it) -> plain JSON value with tags for binary/timestamps. */
function toPlain(value) {
  if (value === null) return null;
  if (value instanceof Uint8Array) return { $bin: toHex(value) };
  if (value instanceof Date) {
    const ms = value.getTime();
    const seconds = Math.floor(ms / 1000);
    const nanoseconds = (ms - seconds * 1000) * 1e6;
    return { $timestamp: { seconds, nanoseconds } };
  }
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : toPlain(v)));
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      assert.ok(Number.isFinite(value), "non-finite numbers are not representable");
      return value;
    case "object": {
      const out = {};
      for (const [k, v] of Object.entries(value)) {
        if (v !== undefined) out[k] = toPlain(v);
      }
      return out;
    }
    default:
      throw new Error(`unsupported value type ${typeof value}`);
  }
}

/** Plain tagged JSON value -> JS value for the TS writer. */
function fromPlain(value) {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(fromPlain);
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === "$bin") return fromHex(value.$bin);
  if (keys.length === 1 && keys[0] === "$timestamp") {
    const { seconds, nanoseconds } = value.$timestamp;
    assert.equal(nanoseconds % 1e6, 0, "a JS Date only carries milliseconds");
    return new Date(seconds * 1000 + nanoseconds / 1e6);
  }
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = fromPlain(v);
  return out;
}

const KNOWN_FIELDS = {
  1: ["type", "headers", "invocationId", "target", "arguments", "streamIds"],
  2: ["type", "headers", "invocationId", "item"],
  3: ["type", "headers", "invocationId", "result", "error"],
  4: ["type", "headers", "invocationId", "target", "arguments", "streamIds"],
  5: ["type", "headers", "invocationId"],
  6: ["type"],
  7: ["type", "error", "allowReconnect"],
  8: ["type", "sequenceId"],
  9: ["type", "sequenceId"],
};

/**
 * Normalise a TS-parsed message for comparison with an expected vector message:
 * drop undefined fields and unknown properties; an empty `headers` map equals absent
 * headers; an empty `streamIds` equals absent streamIds (the TS msgpack reader always
 * yields []); a nil Close error equals no error.
 */
function normalizeParsed(parsed, expected) {
  const plain = toPlain(parsed);
  const known = KNOWN_FIELDS[plain.type];
  const out = {};
  for (const [k, v] of Object.entries(plain)) {
    if (known && !known.includes(k)) continue;
    out[k] = v;
  }
  if (!("headers" in expected) && out.headers && Object.keys(out.headers).length === 0) delete out.headers;
  if (!("streamIds" in expected) && Array.isArray(out.streamIds) && out.streamIds.length === 0) delete out.streamIds;
  if (out.type === 7 && !("error" in expected) && out.error === null) delete out.error;
  return canonicalOrder(out);
}

/** Same properties, keys in the order of KNOWN_FIELDS (unknown ones after), for readability. */
function canonicalOrder(message) {
  if (message === null || typeof message !== "object") return message;
  const order = KNOWN_FIELDS[message.type] || ["type"];
  const out = {};
  for (const k of order) if (k in message) out[k] = message[k];
  for (const k of Object.keys(message)) if (!(k in out)) out[k] = message[k];
  return out;
}

function errorInfo(fn) {
  try {
    const value = fn();
    return { threw: false, value };
  } catch (e) {
    return { threw: true, error: e.message, error_class: e.constructor.name };
  }
}

/** Same array layout as the TS msgpack writer, except Close keeps error/allowReconnect (§6.2). */
function layoutEncode(message) {
  const m = fromPlain(message);
  const headers = m.headers || {};
  let arr;
  switch (m.type) {
    case 1:
    case 4:
      arr = [m.type, headers, m.invocationId ?? null, m.target, m.arguments];
      if (m.streamIds) arr.push(m.streamIds);
      break;
    case 2:
      arr = [2, headers, m.invocationId, m.item];
      break;
    case 3:
      if (m.error) arr = [3, headers, m.invocationId, 1, m.error];
      else if (m.result !== undefined) arr = [3, headers, m.invocationId, 3, m.result];
      else arr = [3, headers, m.invocationId, 2];
      break;
    case 5:
      arr = [5, headers, m.invocationId];
      break;
    case 6:
      arr = [6];
      break;
    case 7:
      arr = [7, m.error ?? null];
      if (m.allowReconnect !== undefined) arr.push(m.allowReconnect);
      break;
    case 8:
    case 9:
      arr = [m.type, m.sequenceId];
      break;
    default:
      throw new Error(`no layout for type ${m.type}`);
  }
  const body = layoutEncoder.encode(arr);
  return toHex([...varint(body.length), ...body]);
}

const TS_PARSES = (type) => type !== MessageType.StreamInvocation && type !== MessageType.CancelInvocation;

// ---------------------------------------------------------------------------------------
// shared message definitions (written by the TS writer of both protocols)

const ASCII = (n) => "a".repeat(n);
const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53-1
const TWO32_PLUS_5 = 2 ** 32 + 5;

/** [name, message] — used for both protocols; the writer output is the vector. */
const COMMON = [
  ["invocation.with-id", { type: 1, invocationId: "123", target: "Send", arguments: [42, "Test Message"] }],
  ["invocation.non-blocking", { type: 1, target: "Send", arguments: [42, "Test Message"] }],
  ["invocation.headers-one", { type: 1, headers: { Foo: "Bar" }, invocationId: "123", target: "Send", arguments: [42, "Test Message"] }],
  ["invocation.headers-two", { type: 1, headers: { x: "y", z: "z" }, invocationId: "1", target: "method", arguments: [42] }],
  ["invocation.stream-ids-one", { type: 1, invocationId: "123", target: "Send", arguments: [42], streamIds: ["1"] }],
  ["invocation.stream-ids-two", { type: 1, invocationId: "7", target: "UploadTwo", arguments: [], streamIds: ["8", "9"] }],
  ["invocation.stream-ids-non-blocking", { type: 1, target: "Upload", arguments: ["x"], streamIds: ["0"] }],
  ["invocation.stream-ids-empty", { type: 1, invocationId: "xyz", target: "method", arguments: [42], streamIds: [] }],
  ["invocation.empty-arguments", { type: 1, invocationId: "0", target: "NoArgs", arguments: [] }],
  ["invocation.args.null", { type: 1, invocationId: "1", target: "M", arguments: [null] }],
  ["invocation.args.bool", { type: 1, invocationId: "1", target: "M", arguments: [true, false] }],
  ["invocation.args.zero", { type: 1, invocationId: "1", target: "M", arguments: [0] }],
  ["invocation.args.negative-int", { type: 1, invocationId: "1", target: "M", arguments: [-42] }],
  ["invocation.args.max-safe-int", { type: 1, invocationId: "1", target: "M", arguments: [MAX_SAFE] }],
  ["invocation.args.min-safe-int", { type: 1, invocationId: "1", target: "M", arguments: [-MAX_SAFE] }],
  ["invocation.args.float-0.005", { type: 1, invocationId: "1", target: "M", arguments: [0.005] }],
  ["invocation.args.float-1.5", { type: 1, invocationId: "1", target: "M", arguments: [1.5] }],
  ["invocation.args.float-negative", { type: 1, invocationId: "1", target: "M", arguments: [-2.25] }],
  ["invocation.args.string-empty", { type: 1, invocationId: "1", target: "M", arguments: [""] }],
  ["invocation.args.unicode", { type: 1, invocationId: "1", target: "M", arguments: ["你好，世界！"] }],
  ["invocation.args.emoji", { type: 1, invocationId: "1", target: "M", arguments: ["😀🚀 héllo"] }],
  ["invocation.args.string-escapes", { type: 1, invocationId: "1", target: "M", arguments: ["quote\" backslash\\ newline\n tab\t rs\u001e nul\u0000 del\u007f"] }],
  ["invocation.args.nested", {
    type: 1, invocationId: "1", target: "M",
    arguments: [{ name: "a", list: [1, [2, [3, []]], { deep: { deeper: null } }], empty: {}, flag: false }, [[], {}, [null]]],
  }],
  ["invocation.args.mixed", { type: 1, invocationId: "42", target: "Add", arguments: [40, 2, "x", null, true, 1.5, [1], { k: "v" }] }],
  ["invocation.unicode-target-and-id", { type: 1, invocationId: "ид-1", target: "Отправить", arguments: [] }],
  ["stream-invocation.basic", { type: 4, invocationId: "123", target: "Send", arguments: [42, "Test Message"] }],
  ["stream-invocation.stream-ids", { type: 4, invocationId: "3", target: "Counter", arguments: [10], streamIds: ["4"] }],
  ["stream-invocation.headers", { type: 4, headers: { a: "b" }, invocationId: "5", target: "Stream", arguments: [] }],
  ["stream-invocation.empty-arguments", { type: 4, invocationId: "6", target: "Stream", arguments: [] }],
  ["stream-item.int", { type: 2, invocationId: "123", item: 42 }],
  ["stream-item.string", { type: 2, invocationId: "123", item: "item" }],
  ["stream-item.null", { type: 2, invocationId: "123", item: null }],
  ["stream-item.object", { type: 2, invocationId: "123", item: { a: 1, b: "two", c: [3] } }],
  ["stream-item.headers", { type: 2, headers: { t: "u" }, invocationId: "abc", item: 8 }],
  ["completion.result", { type: 3, invocationId: "123", result: 42 }],
  ["completion.result-string", { type: 3, invocationId: "abc", result: "OK" }],
  ["completion.result-object", { type: 3, invocationId: "1", result: { sum: 6, items: [1, 2, 3] } }],
  ["completion.result-null", { type: 3, invocationId: "abc", result: null }],
  ["completion.result-false", { type: 3, invocationId: "abc", result: false }],
  ["completion.result-zero", { type: 3, invocationId: "abc", result: 0 }],
  ["completion.result-empty-string", { type: 3, invocationId: "abc", result: "" }],
  ["completion.void", { type: 3, invocationId: "123" }],
  ["completion.error", { type: 3, invocationId: "123", error: "It didn't work!" }],
  ["completion.headers", { type: 3, headers: { Foo: "Bar", "Second-Header": "2" }, invocationId: "9", result: "done" }],
  ["completion.headers-void", { type: 3, headers: { k: "v" }, invocationId: "9" }],
  ["completion.headers-error", { type: 3, headers: { k: "v" }, invocationId: "9", error: "boom" }],
  ["cancel-invocation.basic", { type: 5, invocationId: "123" }],
  ["cancel-invocation.headers", { type: 5, headers: { reason: "user" }, invocationId: "abc" }],
  ["ping", { type: 6 }],
  ["close.no-error", { type: 7 }],
  ["close.error", { type: 7, error: "Connection closed because of an error!" }],
  ["close.error-allow-reconnect", { type: 7, error: "Connection closed because of an error!", allowReconnect: true }],
  ["close.allow-reconnect-false", { type: 7, allowReconnect: false }],
  ["close.allow-reconnect-true", { type: 7, allowReconnect: true }],
  ["ack.small", { type: 8, sequenceId: 1394 }],
  ["ack.one", { type: 8, sequenceId: 1 }],
  ["ack.large", { type: 8, sequenceId: TWO32_PLUS_5 }],
  ["sequence.small", { type: 9, sequenceId: 1394 }],
  ["sequence.one", { type: 9, sequenceId: 1 }],
  ["sequence.large", { type: 9, sequenceId: TWO32_PLUS_5 }],
];

// ---------------------------------------------------------------------------------------
// JSON protocol

function jsonVectors() {
  const vectors = [];
  const invalid = [];

  /** Writer vector: TS JsonHubProtocol.writeMessage(message), round-tripped where TS parses it. */
  const both = (name, message, { source = SRC_TS, expectText, note } = {}) => {
    const text = jsonProtocol.writeMessage(fromPlain(message));
    if (expectText !== undefined) assert.equal(text, expectText, `${name}: TS writer output differs from spec text`);
    if (TS_PARSES(message.type)) {
      const parsed = jsonProtocol.parseMessages(text, captureLogger());
      assert.equal(parsed.length, 1, name);
      assert.deepStrictEqual(normalizeParsed(parsed[0], message), message, `${name}: round trip`);
    } else {
      // The TS client ignores types 4 and 5 when parsing (logs "Unknown message type").
      const logger = captureLogger();
      assert.equal(jsonProtocol.parseMessages(text, logger).length, 0, name);
      assert.deepStrictEqual(JSON.parse(text.slice(0, -1)), message, `${name}: JSON content`);
    }
    vectors.push(clean({ name, source, direction: "both", message, text, hex: utf8Hex(text), note }));
  };

  /** Decode-only vector: TS parseMessages(text) must yield exactly `messages`. */
  const decode = (name, text, messages, { source = SRC_TS, note, single = true } = {}) => {
    const logger = captureLogger();
    const parsed = jsonProtocol.parseMessages(text, logger);
    const expectedParsed = messages.filter((m) => TS_PARSES(m.type));
    assert.equal(parsed.length, expectedParsed.length, `${name}: count`);
    parsed.forEach((p, i) => assert.deepStrictEqual(normalizeParsed(p, expectedParsed[i]), expectedParsed[i], `${name}: #${i}`));
    const entry = { name, source, direction: "decode" };
    if (single && messages.length === 1) entry.message = messages[0];
    else entry.messages = messages;
    Object.assign(entry, { text, hex: utf8Hex(text), note });
    vectors.push(clean(entry));
  };

  const bad = (name, text, expectedError, { source = SRC_TS, note } = {}) => {
    const logger = captureLogger();
    const r = errorInfo(() => jsonProtocol.parseMessages(text, logger));
    const entry = { name, source, text, hex: utf8Hex(text) };
    if (r.threw) {
      assert.equal(r.error, expectedError, `${name}: TS error text`);
      entry.error = r.error;
      entry.error_class = r.error_class;
    } else {
      assert.equal(expectedError, null, `${name}: TS accepted it`);
      entry.error = null;
      entry.ts_messages = r.value.map((m) => canonicalOrder(toPlain(m)));
      if (logger.lines.length) entry.ts_log = logger.lines;
    }
    entry.note = note;
    invalid.push(clean(entry));
  };

  for (const [name, message] of COMMON) both(name, message);

  // Examples of HubProtocol.md (JSON section) in compact form; TS writes them byte-identically.
  const specJson = [
    ["spec.invocation", { type: 1, invocationId: "123", target: "Send", arguments: [42, "Test Message"] }],
    ["spec.invocation.non-blocking", { type: 1, target: "Send", arguments: [42, "Test Message"] }],
    ["spec.invocation.stream-ids", { type: 1, invocationId: "123", target: "Send", arguments: [42], streamIds: ["1"] }],
    ["spec.stream-invocation", { type: 4, invocationId: "123", target: "Send", arguments: [42, "Test Message"] }],
    ["spec.stream-item", { type: 2, invocationId: "123", item: 42 }],
    ["spec.completion.void", { type: 3, invocationId: "123" }],
    ["spec.completion.result", { type: 3, invocationId: "123", result: 42 }],
    ["spec.completion.error", { type: 3, invocationId: "123", error: "It didn't work!" }],
    ["spec.cancel-invocation", { type: 5, invocationId: "123" }],
    ["spec.ping", { type: 6 }],
    ["spec.close", { type: 7 }],
    ["spec.close.error", { type: 7, error: "Connection closed because of an error!" }],
    ["spec.close.error-allow-reconnect", { type: 7, error: "Connection closed because of an error!", allowReconnect: true }],
    ["spec.ack", { type: 8, sequenceId: 1394 }],
    ["spec.sequence", { type: 9, sequenceId: 1234 }],
    ["spec.headers", { type: 1, headers: { Foo: "Bar" }, invocationId: "123", target: "Send", arguments: [42, "Test Message"] }],
  ];
  for (const [name, message] of specJson) {
    both(name, message, { source: SRC_SPEC, expectText: JSON.stringify(message) + RS });
  }

  // The spec's examples verbatim (pretty-printed, 4-space indent) — decode only.
  decode("spec.invocation.pretty", '{\n    "type": 1,\n    "invocationId": "123",\n    "target": "Send",\n    "arguments": [\n        42,\n        "Test Message"\n    ]\n}' + RS,
    [{ type: 1, invocationId: "123", target: "Send", arguments: [42, "Test Message"] }], { source: SRC_SPEC });
  decode("spec.headers.pretty", '{\n    "type": 1,\n    "headers": {\n        "Foo": "Bar"\n    },\n    "invocationId": "123",\n    "target": "Send",\n    "arguments": [\n        42,\n        "Test Message"\n    ]\n}' + RS,
    [{ type: 1, headers: { Foo: "Bar" }, invocationId: "123", target: "Send", arguments: [42, "Test Message"] }], { source: SRC_SPEC });

  // Decode-only inputs that a server may send and that the TS writer never produces.
  decode("decode.two-messages-one-buffer",
    '{"type":2,"invocationId":"abc","item":8}' + RS + '{"type":3,"invocationId":"abc","result":"OK"}' + RS,
    [{ type: 2, invocationId: "abc", item: 8 }, { type: 3, invocationId: "abc", result: "OK" }], { single: false });
  decode("decode.three-messages-with-ping",
    '{"type":6}' + RS + '{"type":1,"target":"Receive","arguments":["hi"]}' + RS + '{"type":6}' + RS,
    [{ type: 6 }, { type: 1, target: "Receive", arguments: ["hi"] }, { type: 6 }], { single: false });
  decode("decode.field-order-and-whitespace", ' { "arguments" : [ 1 , 2 ] ,\r\n\t"target":"Add", "invocationId":"7", "type":1 } ' + RS,
    [{ type: 1, invocationId: "7", target: "Add", arguments: [1, 2] }], { note: "JSON whitespace and any property order are allowed" });
  decode("decode.unknown-properties-ignored", '{"type":1,"target":"Send","arguments":[],"futureField":{"x":1},"invocationId":"1"}' + RS,
    [{ type: 1, invocationId: "1", target: "Send", arguments: [] }], { note: "TS keeps unknown properties on the parsed object; a client must ignore them" });
  decode("decode.ping-with-extra-property", '{"type":6,"extra":true}' + RS, [{ type: 6 }], { note: "unknown properties ignored" });
  decode("decode.close-null-error", '{"type":7,"error":null}' + RS, [{ type: 7 }], { note: "a null error is the same as no error" });
  decode("decode.completion-result-array", '{"type":3,"invocationId":"42","result":[0,1,2,3,4]}' + RS,
    [{ type: 3, invocationId: "42", result: [0, 1, 2, 3, 4] }], { source: SRC_SPEC, note: "HubProtocol.md 'Batched Result' example" });
  decode("decode.float-exponent", '{"type":2,"invocationId":"1","item":1.5e3}' + RS, [{ type: 2, invocationId: "1", item: 1500 }],
    { note: "1.5e3 parses to the integer-valued number 1500" });
  decode("decode.escaped-unicode", '{"type":2,"invocationId":"1","item":"\\u4f60\\u597d\\ud83d\\ude00\\u001e"}' + RS,
    [{ type: 2, invocationId: "1", item: "你好😀\u001e" }], { note: "\\u escapes incl. a surrogate pair and an escaped record separator" });

  // --- invalid inputs (PROTOCOL.md §5 / JsonHubProtocol.test.ts / TextMessageFormat.test.ts)
  bad("invalid.empty-object", "{}" + RS, "Invalid payload.");
  bad("invalid.type-string", '{"type":"1","target":"Send","arguments":[]}' + RS, "Invalid payload.");
  bad("invalid.type-missing", '{"target":"Send","arguments":[]}' + RS, "Invalid payload.");
  bad("invalid.array-payload", "[]" + RS, "Invalid payload.");
  bad("invalid.no-separator", '{"type":6}', "Message is incomplete.");
  bad("invalid.abc", "ABC", "Message is incomplete.");
  bad("invalid.abc-xyz", "ABC" + RS + "XYZ", "Message is incomplete.");
  bad("invalid.trailing-garbage", '{"type":6}' + RS + '{"type":6}', "Message is incomplete.");
  bad("invalid.empty-input", "", null, { note: "TS parseMessages returns no messages for an empty string (it short-circuits before framing)" });
  bad("invalid.empty-record", RS, 'Unexpected end of JSON input', { note: "JSON.parse('') — V8 (Node 20) SyntaxError text" });
  bad("invalid.not-json", "Hello," + RS + "World!" + RS, `Unexpected token 'H', "Hello," is not valid JSON`, { note: "V8 (Node 20) SyntaxError text" });
  bad("invalid.null-payload", "null" + RS, "Cannot read properties of null (reading 'type')", { note: "V8 TypeError text: TS reads .type of null" });
  bad("invalid.invocation.missing-target", '{"type":1,"invocationId":"1","arguments":[]}' + RS, "Invalid payload for Invocation message.");
  bad("invalid.invocation.empty-target", '{"type":1,"invocationId":"1","target":"","arguments":[]}' + RS, "Invalid payload for Invocation message.");
  bad("invalid.invocation.target-number", '{"type":1,"target":42,"arguments":[]}' + RS, "Invalid payload for Invocation message.");
  bad("invalid.invocation.empty-id", '{"type":1,"invocationId":"","target":"Send","arguments":[]}' + RS, "Invalid payload for Invocation message.");
  bad("invalid.invocation.id-number", '{"type":1,"invocationId":1,"target":"Send","arguments":[]}' + RS, "Invalid payload for Invocation message.");
  bad("invalid.invocation.missing-arguments", '{"type":1,"target":"Send"}' + RS, null, { note: "TS does not validate `arguments`; HubProtocol.md makes it required" });
  bad("invalid.stream-item.missing-id", '{"type":2,"item":1}' + RS, "Invalid payload for StreamItem message.");
  bad("invalid.stream-item.empty-id", '{"type":2,"invocationId":"","item":1}' + RS, "Invalid payload for StreamItem message.");
  bad("invalid.stream-item.missing-item", '{"type":2,"invocationId":"1"}' + RS, "Invalid payload for StreamItem message.");
  bad("invalid.completion.missing-id", '{"type":3,"result":42}' + RS, "Invalid payload for Completion message.");
  bad("invalid.completion.id-number", '{"type":3,"invocationId":1}' + RS, "Invalid payload for Completion message.");
  bad("invalid.completion.result-and-error", '{"type":3,"invocationId":"123","result":42,"error":"It didn\'t work!"}' + RS, "Invalid payload for Completion message.");
  bad("invalid.completion.error-number", '{"type":3,"invocationId":"1","error":5}' + RS, "Invalid payload for Completion message.");
  bad("invalid.completion.null-result-and-error", '{"type":3,"invocationId":"1","result":null,"error":"e"}' + RS, null,
    { note: "TS only rejects result+error when the result is truthy; HubProtocol.md calls any result+error a protocol error" });
  bad("invalid.completion.falsy-result-and-empty-error", '{"type":3,"invocationId":"1","result":0,"error":""}' + RS, null,
    { note: "TS accepts: result 0 and error '' are both falsy" });
  bad("invalid.ack.missing-sequence-id", '{"type":8}' + RS, "Invalid SequenceId for Ack message.");
  bad("invalid.ack.sequence-id-string", '{"type":8,"sequenceId":"1"}' + RS, "Invalid SequenceId for Ack message.");
  bad("invalid.sequence.missing-sequence-id", '{"type":9}' + RS, "Invalid SequenceId for Sequence message.");
  bad("invalid.sequence.sequence-id-string", '{"type":9,"sequenceId":"1"}' + RS, "Invalid SequenceId for Sequence message.");
  bad("invalid.ack.sequence-id-fraction", '{"type":8,"sequenceId":1.5}' + RS, null, { note: "TS only checks typeof number; a sequence id must be a non-negative integer" });
  bad("invalid.sequence.sequence-id-negative", '{"type":9,"sequenceId":-1}' + RS, null, { note: "TS only checks typeof number; a sequence id must be a non-negative integer" });
  bad("invalid.unknown-type", '{"type":99,"whatever":1}' + RS, null, { note: "unknown message types are ignored (forward compatibility)" });
  bad("invalid.stream-invocation-from-server", '{"type":4,"invocationId":"1","target":"x","arguments":[]}' + RS, null,
    { note: "the TS client does not parse type 4 (it is ignored like an unknown type)" });
  bad("invalid.cancel-invocation-from-server", '{"type":5,"invocationId":"1"}' + RS, null,
    { note: "the TS client does not parse type 5 (it is ignored like an unknown type)" });

  // --- record-separator framing (TS TextMessageFormat, the layer below the JSON objects)
  const framing = [];
  const textFrame = (name, text, { note } = {}) => {
    const r = errorInfo(() => TextMessageFormat.parse(text));
    const entry = { name, source: SRC_TS, text, hex: utf8Hex(text) };
    if (r.threw) Object.assign(entry, { records: null, error: r.error });
    else Object.assign(entry, { records: r.value, error: null });
    entry.note = note;
    framing.push(clean(entry));
  };
  textFrame("framing.one-empty-record", RS, { note: "an empty record (which then fails JSON parsing)" });
  textFrame("framing.two-empty-records", RS + RS);
  textFrame("framing.two-records", "Hello," + RS + "World!" + RS);
  textFrame("framing.one-record", '{"type":6}' + RS);
  textFrame("framing.empty-input", "", { note: "TS JsonHubProtocol.parseMessages returns [] for \"\" before reaching TextMessageFormat" });
  textFrame("framing.no-separator", "ABC");
  textFrame("framing.trailing-partial-record", "ABC" + RS + "XYZ");
  for (const f of framing) {
    if (f.error === null) assert.equal(TextMessageFormat.write(f.records[0]), f.records[0] + RS);
  }

  return { ...HEADER, vectors, invalid, framing };
}

// ---------------------------------------------------------------------------------------
// MessagePack protocol

function messagepackVectors() {
  const vectors = [];
  const invalid = [];
  const framing = [];

  // The TS msgpack reader ignores the StreamIds element of an Invocation (it always yields
  // streamIds: [] — a client never receives upload streams). So that vectors still check
  // streamIds, replace TS's [] by the raw 6th element decoded with @msgpack/msgpack
  // (absent when the array has only 5 elements); every other field is TS's own.
  const parseMp = (hex, logger) => {
    const parsed = mpProtocol.parseMessages(arrayBufferOf(fromHex(hex)), logger);
    const bodies = BinaryMessageFormat.parse(arrayBufferOf(fromHex(hex)))
      .map((b) => msgpack.decode(b))
      .filter((arr) => Array.isArray(arr) && typeof arr[0] === "number" && TS_PARSES(arr[0]) && KNOWN_FIELDS[arr[0]]);
    assert.equal(bodies.length, parsed.length);
    return parsed.map((m, i) => {
      if (m.type !== MessageType.Invocation) return m;
      assert.deepStrictEqual(m.streamIds, []);
      const copy = { ...m };
      if (bodies[i].length >= 6) copy.streamIds = bodies[i][5];
      else delete copy.streamIds;
      return copy;
    });
  };

  /** Writer vector: TS MessagePackHubProtocol.writeMessage(message). */
  const both = (name, message, { source = SRC_TS, expectHex, note } = {}) => {
    const hex = toHex(new Uint8Array(mpProtocol.writeMessage(fromPlain(message))));
    if (expectHex !== undefined) assert.equal(hex, frameHexIfNeeded(expectHex), `${name}: TS writer output differs from expected bytes`);
    assert.equal(hex, layoutEncode(message), `${name}: TS writer differs from the §6.2 layout`);
    if (TS_PARSES(message.type)) {
      const parsed = parseMp(hex, captureLogger());
      assert.equal(parsed.length, 1, name);
      assert.deepStrictEqual(normalizeParsed(parsed[0], message), message, `${name}: round trip`);
    } else {
      const logger = captureLogger();
      assert.equal(parseMp(hex, logger).length, 0, name);
    }
    vectors.push(clean({ name, source, direction: "both", message, hex, note }));
  };

  /**
   * Bytes not produced by the TS writer for this message (or hand-written per the spec):
   * TS parseMessages must yield `messages`. direction "both" only when the bytes are the
   * canonical §6.2 layout (same as the TS writer except that Close keeps its fields).
   */
  const fromBytes = (name, hex, messages, { source = SRC_TS, direction = "decode", note, single = true } = {}) => {
    hex = frameHexIfNeeded(hex);
    const logger = captureLogger();
    const parsed = parseMp(hex, logger);
    const expectedParsed = messages.filter((m) => TS_PARSES(m.type));
    assert.equal(parsed.length, expectedParsed.length, `${name}: count`);
    parsed.forEach((p, i) => assert.deepStrictEqual(normalizeParsed(p, expectedParsed[i]), expectedParsed[i], `${name}: #${i}`));
    if (direction === "both") {
      assert.equal(messages.length, 1);
      assert.equal(layoutEncode(messages[0]), hex, `${name}: not the canonical layout`);
    } else if (messages.length === 1) {
      assert.notEqual(layoutEncode(messages[0]), hex, `${name}: canonical bytes, should be direction both`);
    }
    const entry = { name, source, direction };
    if (single && messages.length === 1) entry.message = messages[0];
    else entry.messages = messages;
    Object.assign(entry, { hex, note });
    vectors.push(clean(entry));
  };

  const bad = (name, hex, expectedError, { source = SRC_TS, note } = {}) => {
    hex = frameHexIfNeeded(hex);
    const logger = captureLogger();
    const r = errorInfo(() => mpProtocol.parseMessages(arrayBufferOf(fromHex(hex)), logger));
    const entry = { name, source, hex };
    if (r.threw) {
      assert.equal(r.error, expectedError, `${name}: TS error text`);
      entry.error = r.error;
      entry.error_class = r.error_class;
    } else {
      assert.equal(expectedError, null, `${name}: TS accepted it`);
      entry.error = null;
      entry.ts_messages = r.value.map((m) => canonicalOrder(toPlain(m)));
      if (logger.lines.length) entry.ts_log = logger.lines;
    }
    entry.note = note;
    invalid.push(clean(entry));
  };

  for (const [name, message] of COMMON) {
    if (message.type === 7 && (message.error !== undefined || message.allowReconnect !== undefined)) continue; // below
    both(name, message);
  }

  // Close: the TS writer always writes [7, nil]; a message with error/allowReconnect loses them.
  for (const [name, message] of COMMON) {
    if (message.type !== 7 || (message.error === undefined && message.allowReconnect === undefined)) continue;
    const tsHex = toHex(new Uint8Array(mpProtocol.writeMessage(fromPlain(message))));
    assert.equal(tsHex, "039207c0", `${name}: TS Close writer changed`);
    fromBytes(name, layoutEncode(message), [message], {
      direction: "both",
      note: "bytes = the §6.2 layout [7, error|nil, allowReconnect?] encoded by @msgpack/msgpack (the TS writer itself drops error/allowReconnect and writes 03 92 07 c0); parsed by TS",
    });
  }

  // --- MessagePack-only payload types (written by the TS writer)
  const bin300 = toHex(Uint8Array.from({ length: 300 }, (_, i) => i & 0xff));
  both("invocation.args.bin-empty", { type: 1, invocationId: "1", target: "M", arguments: [{ $bin: "" }] });
  both("invocation.args.bin-small", { type: 1, invocationId: "1", target: "M", arguments: [{ $bin: "0001027f80ff" }] });
  both("invocation.args.bin-255", { type: 1, invocationId: "1", target: "M", arguments: [{ $bin: "ab".repeat(255) }] });
  both("invocation.args.bin-256", { type: 1, invocationId: "1", target: "M", arguments: [{ $bin: "cd".repeat(256) }] });
  both("invocation.args.bin-300", { type: 1, invocationId: "1", target: "M", arguments: [{ $bin: bin300 }] });
  both("stream-item.bin", { type: 2, invocationId: "1", item: { $bin: "deadbeef" } });
  both("completion.result-bin", { type: 3, invocationId: "1", result: { $bin: "0102" } });

  const ts = (seconds, nanoseconds = 0) => ({ $timestamp: { seconds, nanoseconds } });
  both("invocation.args.timestamp-32", { type: 1, invocationId: "1", target: "M", arguments: [ts(1514805840)] },
    { note: "2018-01-01T11:24:00Z: timestamp 32 (d6 ff)" });
  both("invocation.args.timestamp-32-epoch", { type: 1, invocationId: "1", target: "M", arguments: [ts(0)] },
    { note: "1970-01-01T00:00:00Z" });
  both("invocation.args.timestamp-64-nanoseconds", { type: 1, invocationId: "1", target: "M", arguments: [ts(1514805840, 123000000)] },
    { note: "2018-01-01T11:24:00.123Z: timestamp 64 (d7 ff)" });
  both("invocation.args.timestamp-64-after-2106", { type: 1, invocationId: "1", target: "M", arguments: [ts(7258118400)] },
    { note: "2200-01-01T00:00:00Z: seconds > 2^32-1 needs timestamp 64 (d7 ff)" });
  both("invocation.args.timestamp-96-pre-1970", { type: 1, invocationId: "1", target: "M", arguments: [ts(-14182940)] },
    { note: "1969-07-20T20:17:40Z: negative seconds need timestamp 96 (c7 0c ff)" });
  both("invocation.args.timestamp-96-pre-1970-millis", { type: 1, invocationId: "1", target: "M", arguments: [ts(-2, 500000000)] },
    { note: "1969-12-31T23:59:58.500Z: seconds floor(-1.5) = -2, nanoseconds 500000000 (always >= 0)" });
  both("stream-item.timestamp", { type: 2, invocationId: "1", item: ts(1514805840) });
  both("completion.result-timestamp", { type: 3, invocationId: "abc", result: ts(1514805840) });

  // string format boundaries (fixstr 31 / str8 32..255 / str16 256)
  for (const n of [31, 32, 255, 256]) {
    both(`invocation.args.string-${n}-bytes`, { type: 1, invocationId: "1", target: "M", arguments: [ASCII(n)] });
  }
  both("invocation.args.string-32-bytes-16-chars", { type: 1, invocationId: "1", target: "M", arguments: ["é".repeat(16)] },
    { note: "16 chars, 32 UTF-8 bytes: the length prefix counts bytes (d9 20)" });
  both("invocation.target-32-bytes", { type: 1, invocationId: "1", target: ASCII(32), arguments: [] });
  // map / array format boundaries (fixmap/fixarray 15, map16/array16 16)
  const mapOf = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${String(i).padStart(2, "0")}`, i]));
  const arrOf = (n) => Array.from({ length: n }, (_, i) => i);
  both("invocation.args.map-15", { type: 1, invocationId: "1", target: "M", arguments: [mapOf(15)] });
  both("invocation.args.map-16", { type: 1, invocationId: "1", target: "M", arguments: [mapOf(16)] });
  both("invocation.args.array-15", { type: 1, invocationId: "1", target: "M", arguments: [arrOf(15)] });
  both("invocation.args.array-16", { type: 1, invocationId: "1", target: "M", arguments: [arrOf(16)] });
  both("invocation.arguments-15", { type: 1, invocationId: "1", target: "M", arguments: arrOf(15) });
  both("invocation.arguments-16", { type: 1, invocationId: "1", target: "M", arguments: arrOf(16) });
  const headersOf = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`h${String(i).padStart(2, "0")}`, `v${i}`]));
  both("invocation.headers-15", { type: 1, headers: headersOf(15), invocationId: "1", target: "M", arguments: [] });
  both("invocation.headers-16", { type: 1, headers: headersOf(16), invocationId: "1", target: "M", arguments: [] });
  // integer format boundaries
  const ints = [0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649];
  for (const n of ints) {
    both(`invocation.args.int.${n}`, { type: 1, invocationId: "1", target: "M", arguments: [n] });
  }
  both("invocation.args.float-0.1", { type: 1, invocationId: "1", target: "M", arguments: [0.1] }, { note: "floats are always float 64 (cb) from TS" });
  both("ack.uint8", { type: 8, sequenceId: 36 }, { note: "the TS writer uses the smallest encoding: 92 08 24 (the spec example uses cc 24)" });
  both("ack.uint16", { type: 8, sequenceId: 65535 });
  both("ack.uint32", { type: 8, sequenceId: 4294967295 });
  both("sequence.uint8", { type: 9, sequenceId: 19 });
  both("sequence.uint8-cc", { type: 9, sequenceId: 200 });

  // --- HubProtocol.md and PROTOCOL.md §6.3 hex examples (bodies there are unframed; framed here)
  const xyzInv = { type: 1, invocationId: "xyz", target: "method", arguments: [42], streamIds: [] };
  fromBytes("spec.invocation", "96 01 80 a3 78 79 7a a6 6d 65 74 68 6f 64 91 2a 90", [xyzInv],
    { source: SRC_SPEC, direction: "both", note: "6 elements with an empty StreamIds array; the TS writer produces these bytes for a message with streamIds: []" });
  fromBytes("spec.invocation.non-blocking", "96 01 80 c0 a6 6d 65 74 68 6f 64 91 2a 90",
    [{ type: 1, target: "method", arguments: [42], streamIds: [] }], { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.stream-invocation", "96 04 80 a3 78 79 7a a6 6d 65 74 68 6f 64 91 2a 90",
    [{ type: 4, invocationId: "xyz", target: "method", arguments: [42], streamIds: [] }],
    { source: SRC_SPEC, direction: "both", note: "the TS client does not parse type 4; the TS writer produces these bytes" });
  fromBytes("spec.stream-item", "94 02 80 a3 78 79 7a 2a", [{ type: 2, invocationId: "xyz", item: 42 }], { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.completion.error", "95 03 80 a3 78 79 7a 01 a5 45 72 72 6f 72", [{ type: 3, invocationId: "xyz", error: "Error" }],
    { source: SRC_SPEC, direction: "both", note: "HubProtocol.md's prose says 0x94 but the bytes (correctly) start 0x95" });
  fromBytes("spec.completion.void", "94 03 80 a3 78 79 7a 02", [{ type: 3, invocationId: "xyz" }], { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.completion.result", "95 03 80 a3 78 79 7a 03 2a", [{ type: 3, invocationId: "xyz", result: 42 }], { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.cancel-invocation", "93 05 80 a3 78 79 7a", [{ type: 5, invocationId: "xyz" }],
    { source: SRC_SPEC, direction: "both", note: "the TS client does not parse type 5; the TS writer produces these bytes" });
  fromBytes("spec.ping", "91 06", [{ type: 6 }], { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.close.error", "92 07 a3 78 79 7a", [{ type: 7, error: "xyz" }], { source: SRC_SPEC, direction: "both",
    note: "the TS writer would write 03 92 07 c0 (it drops the error)" });
  fromBytes("spec.close.error-allow-reconnect", "93 07 a3 78 79 7a c3", [{ type: 7, error: "xyz", allowReconnect: true }],
    { source: SRC_SPEC, direction: "both", note: "the TS writer would write 03 92 07 c0 (it drops error and allowReconnect)" });
  fromBytes("spec.ack", "92 08 cc 24", [{ type: 8, sequenceId: 36 }], { source: SRC_SPEC, note: "uint8 (cc) encoding of 36; a minimal encoder writes 92 08 24" });
  fromBytes("spec.sequence", "92 09 cc 13", [{ type: 9, sequenceId: 19 }], { source: SRC_SPEC, note: "uint8 (cc) encoding of 19; a minimal encoder writes 92 09 13" });
  fromBytes("spec.headers", "96 01 82 a1 78 a1 79 a1 7a a1 7a a3 78 79 7a a6 6d 65 74 68 6f 64 91 2a 90",
    [{ type: 1, headers: { x: "y", z: "z" }, invocationId: "xyz", target: "method", arguments: [42], streamIds: [] }], { source: SRC_SPEC, direction: "both" });
  // PROTOCOL.md §6.3 (MessagePackHubProtocol.test.ts vectors, already framed)
  fromBytes("spec.completion.error-abc", "0c 95 03 80 a3 61 62 63 01 a3 45 72 72", [{ type: 3, invocationId: "abc", error: "Err" }], { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.completion.result-abc", "0b 95 03 80 a3 61 62 63 03 a2 4f 4b", [{ type: 3, invocationId: "abc", result: "OK" }], { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.completion.void-abc", "08 94 03 80 a3 61 62 63 02", [{ type: 3, invocationId: "abc" }], { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.completion.void-extra-element", "09 95 03 80 a3 61 62 63 02 00", [{ type: 3, invocationId: "abc" }],
    { source: SRC_SPEC, note: "extra trailing array elements are ignored" });
  fromBytes("spec.completion.date", "0e 95 03 80 a3 61 62 63 03 d6 ff 5a 4a 1a 50", [{ type: 3, invocationId: "abc", result: ts(1514805840) }],
    { source: SRC_SPEC, direction: "both", note: "2018-01-01T11:24:00Z" });
  fromBytes("spec.stream-item-abc", "08 94 02 80 a3 61 62 63 08", [{ type: 2, invocationId: "abc", item: 8 }], { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.stream-item-headers", "0c 94 02 81 a1 74 a1 75 a3 61 62 63 08", [{ type: 2, headers: { t: "u" }, invocationId: "abc", item: 8 }],
    { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.two-messages-one-buffer", "08 94 02 80 a3 61 62 63 08 0b 95 03 80 a3 61 62 63 03 a2 4f 4b",
    [{ type: 2, invocationId: "abc", item: 8 }, { type: 3, invocationId: "abc", result: "OK" }], { source: SRC_SPEC, single: false });
  fromBytes("spec.ping-framed", "02 91 06", [{ type: 6 }], { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.cancel-abc", "07 93 05 80 a3 61 62 63", [{ type: 5, invocationId: "abc" }], { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.completion.false", "09 95 03 80 a3 61 62 63 03 c2", [{ type: 3, invocationId: "abc", result: false }], { source: SRC_SPEC, direction: "both" });
  fromBytes("spec.completion.null", "09 95 03 80 a3 61 62 63 03 c0", [{ type: 3, invocationId: "abc", result: null }], { source: SRC_SPEC, direction: "both" });

  // --- other decode-only inputs (what a .NET server or another encoder may send), parsed by TS
  fromBytes("decode.dotnet-close-error-false", "93 07 a3 78 79 7a c2", [{ type: 7, error: "xyz", allowReconnect: false }],
    { direction: "both", note: "the .NET server always writes Close as 3 elements [7, error|nil, allowReconnect] (e.g. 93 07 c0 c2 for a plain close, see close.allow-reconnect-false)" });
  fromBytes("decode.close-nil-error", "92 07 c0", [{ type: 7 }], { direction: "both", note: "exactly what the TS writer writes for any Close" });
  fromBytes("decode.invocation-5-elements", "95 01 80 a3 78 79 7a a6 6d 65 74 68 6f 64 91 2a", [{ type: 1, invocationId: "xyz", target: "method", arguments: [42] }],
    { direction: "both", note: "the TS writer omits StreamIds when the message has none" });
  fromBytes("decode.invocation-7-elements", "97 01 80 a3 78 79 7a a6 6d 65 74 68 6f 64 91 2a 90 c3", [{ type: 1, invocationId: "xyz", target: "method", arguments: [42], streamIds: [] }],
    { note: "extra trailing elements are ignored" });
  fromBytes("decode.stream-item-extra-element", "95 02 80 a3 61 62 63 08 a1 78", [{ type: 2, invocationId: "abc", item: 8 }], { note: "extra trailing elements are ignored" });
  fromBytes("decode.close-extra-element", "94 07 a1 65 c3 c0", [{ type: 7, error: "e", allowReconnect: true }], { note: "extra trailing elements are ignored" });
  fromBytes("decode.ack-extra-element", "93 08 05 c0", [{ type: 8, sequenceId: 5 }], { note: "extra trailing elements are ignored" });
  fromBytes("decode.ack-uint32", "92 08 ce 00 00 00 24", [{ type: 8, sequenceId: 36 }], { note: "any unsigned int width is allowed" });
  fromBytes("decode.sequence-uint64", "92 09 cf 00 00 00 00 00 00 00 13", [{ type: 9, sequenceId: 19 }], { note: "any unsigned int width is allowed" });
  fromBytes("decode.int-non-minimal", "94 02 80 a1 31 d2 00 00 00 2a", [{ type: 2, invocationId: "1", item: 42 }], { note: "int32 (d2) encoding of 42" });
  fromBytes("stream-item.uint64-max-safe", "94 02 80 a1 31 cf 00 1f ff ff ff ff ff ff", [{ type: 2, invocationId: "1", item: MAX_SAFE }], { direction: "both", note: "2^53-1 as uint64 (cf), the smallest encoding" });
  fromBytes("decode.float32-item", "94 02 80 a1 31 ca 3f c0 00 00", [{ type: 2, invocationId: "1", item: 1.5 }], { note: "float 32 (ca), e.g. a .NET System.Single" });
  fromBytes("decode.str8-short-id", "94 02 80 d9 03 61 62 63 08", [{ type: 2, invocationId: "abc", item: 8 }], { note: "str8 (d9) used for a 3-byte string" });
  fromBytes("decode.map16-headers", "94 02 de 00 01 a1 74 a1 75 a3 61 62 63 08", [{ type: 2, headers: { t: "u" }, invocationId: "abc", item: 8 }], { note: "map16 (de) for a 1-entry map" });
  fromBytes("decode.array16-message", "dc 00 04 02 80 a3 61 62 63 08", [{ type: 2, invocationId: "abc", item: 8 }], { note: "array16 (dc) for the message array" });
  fromBytes("stream-item.timestamp-64-nanoseconds", "94 02 80 a1 31 d7 ff 1d 53 53 00 5a 4a 1a 50", [{ type: 2, invocationId: "1", item: ts(1514805840, 123000000) }],
    { note: "timestamp 64: 30-bit nanoseconds (123000000 << 2) then 34-bit seconds; same bytes the TS writer produces" , direction: "both" });
  fromBytes("stream-item.timestamp-96", "94 02 80 a1 31 c7 0c ff 00 00 00 00 ff ff ff ff ff 27 95 e4", [{ type: 2, invocationId: "1", item: ts(-14182940) }],
    { direction: "both", note: "timestamp 96: 32-bit nanoseconds then signed 64-bit seconds" });
  fromBytes("decode.unknown-type-skipped", "02 91 63 02 91 06", [{ type: 6 }],
    { single: false, note: "a frame with unknown message type 99 is ignored (logged); the following Ping is delivered" });
  fromBytes("decode.two-pings-one-buffer", "02 91 06 02 91 06", [{ type: 6 }, { type: 6 }], { single: false });

  // --- invalid inputs
  // VarInt framing (BinaryMessageFormat.test.ts / PROTOCOL.md §6.1)
  bad("invalid.varint.80", "80", "Cannot read message size.", { source: SRC_SPEC });
  bad("invalid.varint.second-prefix-cut", "02 01 80 80", "Cannot read message size.", { source: SRC_SPEC });
  bad("invalid.varint.07-ff7-80", "07 ff ff ff ff ff ff ff 80", "Cannot read message size.", { source: SRC_SPEC });
  bad("invalid.varint.07-ff7-01", "07 ff ff ff ff ff ff ff 01", "Incomplete message.", { source: SRC_SPEC });
  bad("invalid.varint.ff-ff-ff-ff-ff", "ff ff ff ff ff", "Messages bigger than 2GB are not supported.", { source: SRC_SPEC });
  bad("invalid.varint.80-80-80-80-08", "80 80 80 80 08", "Messages bigger than 2GB are not supported.", { source: SRC_SPEC });
  bad("invalid.varint.80-80-80-80-80", "80 80 80 80 80", "Messages bigger than 2GB are not supported.", { source: SRC_SPEC });
  bad("invalid.varint.02-00", "02 00", "Incomplete message.", { source: SRC_SPEC });
  bad("invalid.varint.ff-ff-ff-ff-07", "ff ff ff ff 07", "Incomplete message.", { source: SRC_SPEC, note: "length 0x7fffffff (2 GB - 1) is allowed but the body is missing" });
  bad("invalid.varint.length-too-long", "03 91 06", "Incomplete message.", { note: "length 3 but only 2 body bytes" });
  // message arrays (MessagePackHubProtocol.test.ts / PROTOCOL.md §6.3)
  bad("invalid.empty-body", "00", "Invalid payload.", { source: SRC_SPEC });
  bad("invalid.empty-array", "01 90", "Invalid payload.", { source: SRC_SPEC });
  bad("invalid.not-an-array", "01 c2", "Invalid payload.", { source: SRC_SPEC });
  bad("invalid.map-not-array", "01 80", "Invalid payload.", { note: "a map is not an array" });
  bad("invalid.headers-not-map", "03 92 01 05", "Invalid headers.", { source: SRC_SPEC });
  bad("invalid.headers-string", "93 02 a1 78 08", "Invalid headers.", { note: "a string is not a map" });
  bad("invalid.invocation-too-short", "03 92 01 80", "Invalid payload for Invocation message.", { source: SRC_SPEC });
  bad("invalid.invocation-4-elements", "94 01 80 a1 31 a6 6d 65 74 68 6f 64", "Invalid payload for Invocation message.", { note: "Invocation needs at least 5 elements" });
  bad("invalid.stream-item-too-short", "03 92 02 80", "Invalid payload for StreamItem message.", { source: SRC_SPEC });
  bad("invalid.completion-too-short", "04 93 03 80 a0", "Invalid payload for Completion message.", { source: SRC_SPEC });
  bad("invalid.completion-error-kind-without-error", "05 94 03 80 a0 01", "Invalid payload for Completion message.", { source: SRC_SPEC });
  bad("invalid.completion-result-kind-without-result", "05 94 03 80 a0 03", "Invalid payload for Completion message.", { source: SRC_SPEC });
  bad("invalid.close-too-short", "91 07", "Invalid payload for Close message.", { note: "Close needs at least 2 elements" });
  // msgpack-level errors, thrown by @msgpack/msgpack (texts are that library's)
  bad("invalid.msgpack.truncated-body", "02 92 01", "Offset is outside the bounds of the DataView", { note: `V8 RangeError raised inside @msgpack/msgpack ${VERSION_MSGPACK_LIB}: array of 2 with 1 element present` });
  bad("invalid.msgpack.truncated-string", "04 93 05 80 a3", "Insufficient data", { note: `@msgpack/msgpack ${VERSION_MSGPACK_LIB}` });
  bad("invalid.msgpack.extra-bytes", "03 91 06 06", "Extra 1 of 3 byte(s) found at buffer[2]", { note: `RangeError from @msgpack/msgpack ${VERSION_MSGPACK_LIB}: one frame must hold exactly one msgpack value` });
  bad("invalid.msgpack.reserved-c1", "01 c1", "Unrecognized type byte: 0xc1", { note: `DecodeError from @msgpack/msgpack ${VERSION_MSGPACK_LIB}` });
  bad("invalid.msgpack.map-key-bool", "94 02 81 c3 a1 75 a1 31 08", "The type of key must be string or number but boolean", { note: `DecodeError from @msgpack/msgpack ${VERSION_MSGPACK_LIB}` });
  // accepted by TS although they break the spec (error: null, ts_messages = what TS returned)
  bad("invalid.headers-nil", "95 01 c0 a1 31 a6 6d 65 74 68 6f 64 90", null, { note: "TS checks `typeof headers !== \"object\"`, so nil headers pass; the spec requires a map" });
  bad("invalid.headers-array", "95 01 90 a1 31 a6 6d 65 74 68 6f 64 90", null, { note: "TS accepts an array as headers (typeof [] is \"object\"); the spec requires a map" });
  bad("invalid.headers-int-key", "94 02 81 01 a1 75 a1 31 08", null, { note: "TS accepts a number map key (turned into the string \"1\"); the spec requires string keys" });
  bad("invalid.completion-unknown-result-kind", "95 03 80 a3 61 62 63 04 2a", null, { note: "TS accepts an unknown ResultKind and yields a void completion" });
  bad("invalid.ack-missing-sequence-id", "91 08", null, { note: "TS accepts [8] and yields sequenceId undefined" });
  bad("invalid.sequence-missing-sequence-id", "91 09", null, { note: "TS accepts [9] and yields sequenceId undefined" });
  bad("invalid.invocation-target-nil", "95 01 80 a1 31 c0 91 2a", null, { note: "TS does not validate the msgpack Invocation target" });
  bad("invalid.unknown-type", "91 63", null, { note: "unknown message type 99 is ignored (forward compatibility)" });
  bad("invalid.type-not-int", "91 a1 31", null, { note: "a string message type is an unknown type to TS and is ignored" });
  bad("invalid.stream-invocation-from-server", "95 04 80 a1 31 a6 6d 65 74 68 6f 64 91 2a", null, { note: "the TS client does not parse type 4 (ignored)" });
  bad("invalid.cancel-invocation-from-server", "93 05 80 a1 31", null, { note: "the TS client does not parse type 5 (ignored)" });

  // --- VarInt framing (TS BinaryMessageFormat, the layer below the message arrays)
  const frame = (name, bodiesHex, { source = SRC_TS, direction = "both", note, hex } = {}) => {
    const bodies = bodiesHex.map((b) => fromHex(b));
    const written = bodies.map((b) => toHex(new Uint8Array(BinaryMessageFormat.write(b)))).join("");
    const input = hex === undefined ? written : hex.replace(/\s+/g, "").toLowerCase();
    if (direction === "both") assert.equal(input, written, `${name}: writer`);
    const parsed = BinaryMessageFormat.parse(arrayBufferOf(fromHex(input))).map(toHex);
    assert.deepStrictEqual(parsed, bodiesHex.map((b) => b.replace(/\s+/g, "").toLowerCase()), `${name}: parse`);
    framing.push(clean({ name, source, direction, bodies: parsed, hex: input, note }));
  };
  frame("framing.empty-body", [""], { source: SRC_SPEC });
  frame("framing.one-byte", ["20"], { source: SRC_SPEC });
  frame("framing.two-bodies", ["ff", "7f"], { source: SRC_SPEC });
  frame("framing.spec-hello-world", [utf8Hex("Hello\nWorld"), "0102"], { source: SRC_SPEC, note: "HubProtocol.md 'Binary encoding' example" });
  // length prefixes only (body = zero bytes of that length is implied, not stored)
  const lengthPrefixes = [];
  for (const n of [0, 1, 53, 127, 128, 5248, 16383, 16384, 2097151, 2097152]) {
    const prefix = toHex(new Uint8Array(BinaryMessageFormat.write(new Uint8Array(n))).subarray(0, varint(n).length));
    assert.equal(prefix, toHex(varint(n)));
    const [body] = BinaryMessageFormat.parse(BinaryMessageFormat.write(new Uint8Array(n)));
    assert.equal(body.length, n);
    lengthPrefixes.push({ length: n, prefix_hex: prefix });
  }
  lengthPrefixes.push({ length: 2147483647, prefix_hex: "ffffffff07", note: "maximum (2 GB - 1), HubProtocol.md" });

  return { ...HEADER, vectors, invalid, framing, length_prefixes: lengthPrefixes };
}

function frameHexIfNeeded(hex) {
  // Spec bodies are written unframed (they start with the array header 0x9N/0xdc);
  // already framed inputs start with their VarInt length.
  const clean = hex.replace(/\s+/g, "").toLowerCase();
  const first = parseInt(clean.slice(0, 2), 16);
  if ((first >= 0x90 && first <= 0x9f) || first === 0xdc) return frameHex(clean);
  return clean;
}

// ---------------------------------------------------------------------------------------
// Handshake

function handshakeVectors() {
  const requests = [];
  const responses = [];
  const invalid = [];

  for (const [name, protocol, version] of [
    ["request.json-v1", "json", 1],
    ["request.json-v2", "json", 2],
    ["request.messagepack-v1", "messagepack", 1],
    ["request.messagepack-v2", "messagepack", 2],
  ]) {
    const request = { protocol, version };
    const text = handshakeProtocol.writeHandshakeRequest(request);
    requests.push({ name, source: SRC_TS, request, text, hex: utf8Hex(text) });
  }

  const START_ERROR = (e) => "Server returned handshake error: " + e; // HubConnection._processHandshakeResponse

  /** input: a JS string (text transports) or hex (binary transports; TS gets an ArrayBuffer). */
  const response = (name, input, expected, { binary = false, remaining = null, remainingMessages, note, source = SRC_TS, tsResponse } = {}) => {
    const data = binary ? arrayBufferOf(fromHex(input)) : input;
    const [rest, resp] = handshakeProtocol.parseHandshakeResponse(data);
    assert.deepStrictEqual(toPlain(resp), tsResponse ?? expected, `${name}: response`);
    const entry = { name, source, input: binary ? "binary" : "text" };
    if (binary) entry.hex = input.replace(/\s+/g, "").toLowerCase();
    else Object.assign(entry, { text: input, hex: utf8Hex(input) });
    entry.response = expected;
    if (tsResponse) entry.ts_response = tsResponse;
    if (binary) {
      const restHex = rest === null ? null : toHex(new Uint8Array(rest));
      assert.equal(restHex, remaining, `${name}: remaining`);
      entry.remaining_hex = restHex;
      if (rest !== null) {
        entry.remaining_messages = mpProtocol.parseMessages(rest, captureLogger()).map((m) => normalizeParsed(m, {}));
        if (remainingMessages) assert.deepStrictEqual(entry.remaining_messages, remainingMessages);
      }
    } else {
      assert.equal(rest, remaining, `${name}: remaining`);
      entry.remaining_text = rest;
      if (rest !== null) {
        entry.remaining_messages = jsonProtocol.parseMessages(rest, captureLogger()).map((m) => normalizeParsed(m, {}));
        if (remainingMessages) assert.deepStrictEqual(entry.remaining_messages, remainingMessages);
      }
    }
    entry.start_error = expected.error ? START_ERROR(expected.error) : null;
    entry.note = note;
    responses.push(clean(entry));
  };

  response("response.success", "{}" + RS, {});
  response("response.success-binary", "7b 7d 1e", {}, { binary: true });
  response("response.error", '{"error":"Requested protocol \'messagepack\' is not available."}' + RS,
    { error: "Requested protocol 'messagepack' is not available." }, { source: SRC_SPEC });
  response("response.error-unsupported-version", '{"error":"The server does not support version 3 of the \'json\' protocol."}' + RS,
    { error: "The server does not support version 3 of the 'json' protocol." });
  response("response.error-binary", toHex(Buffer.from('{"error":"Handshake was canceled."}' + RS)), { error: "Handshake was canceled." }, { binary: true });
  response("response.error-binary-non-ascii", toHex(Buffer.from('{"error":"The protocol \'jsön\' is not supported."}' + RS)),
    { error: "The protocol 'jsön' is not supported." },
    { binary: true, tsResponse: { error: "The protocol 'jsÃ¶n' is not supported." },
      note: "TS decodes a binary handshake response byte-by-byte (String.fromCharCode, i.e. Latin-1), so non-ASCII UTF-8 text is garbled (ts_response); a client should decode UTF-8 (response)" });
  response("response.error-text-non-ascii", '{"error":"The protocol \'jsön\' is not supported."}' + RS,
    { error: "The protocol 'jsön' is not supported." });
  response("response.success-then-ping-text", "{}" + RS + '{"type":6}' + RS, {}, { remaining: '{"type":6}' + RS, remainingMessages: [{ type: 6 }] });
  response("response.success-then-two-messages-text", "{}" + RS + '{"type":6}' + RS + '{"type":1,"target":"Hello","arguments":[]}' + RS, {},
    { remaining: '{"type":6}' + RS + '{"type":1,"target":"Hello","arguments":[]}' + RS,
      remainingMessages: [{ type: 6 }, { type: 1, target: "Hello", arguments: [] }] });
  response("response.success-then-ping-binary", "7b 7d 1e 02 91 06", {}, { binary: true, remaining: "029106", remainingMessages: [{ type: 6 }] });
  const invHex = toHex(new Uint8Array(mpProtocol.writeMessage({ type: 1, target: "Receive", arguments: ["hi", 1] })));
  response("response.success-then-invocation-binary", "7b7d1e" + invHex, {},
    { binary: true, remaining: invHex, remainingMessages: [{ type: 1, target: "Receive", arguments: ["hi", 1] }] });
  response("response.unknown-properties", '{"minorVersion":1,"future":true}' + RS, { minorVersion: 1, future: true },
    { note: "unknown properties are ignored (older servers sent minorVersion)" });
  response("response.whitespace", ' { } ' + RS, {});
  response("response.type-zero-accepted", '{"type":0}' + RS, { type: 0 }, { note: "TS only rejects a truthy `type`, so type 0 passes as a handshake response" });

  const bad = (name, input, expectedError, { binary = false, note, source = SRC_TS } = {}) => {
    const data = binary ? arrayBufferOf(fromHex(input)) : input;
    const r = errorInfo(() => handshakeProtocol.parseHandshakeResponse(data));
    assert.ok(r.threw, `${name}: TS accepted it`);
    assert.equal(r.error, expectedError, `${name}: TS error text`);
    const entry = { name, source, input: binary ? "binary" : "text" };
    if (binary) entry.hex = input.replace(/\s+/g, "").toLowerCase();
    else Object.assign(entry, { text: input, hex: utf8Hex(input) });
    Object.assign(entry, { error: r.error, error_class: r.error_class, note });
    invalid.push(clean(entry));
  };
  bad("invalid.no-separator", "{}", "Message is incomplete.");
  bad("invalid.no-separator-binary", "7b 7d", "Message is incomplete.", { binary: true });
  bad("invalid.empty", "", "Message is incomplete.");
  bad("invalid.message-type-ping", '{"type":6}' + RS, "Expected a handshake response from the server.");
  bad("invalid.message-type-invocation", '{"type":1,"target":"x","arguments":[]}' + RS, "Expected a handshake response from the server.");
  bad("invalid.message-type-binary", toHex(Buffer.from('{"type":7}' + RS)), "Expected a handshake response from the server.", { binary: true });
  bad("invalid.not-json", "not json" + RS, `Unexpected token 'o', "not json" is not valid JSON`, { note: "V8 (Node 20) SyntaxError text" });
  bad("invalid.empty-record", RS, "Unexpected end of JSON input", { note: "V8 (Node 20) SyntaxError text" });
  bad("invalid.null", "null" + RS, "Cannot read properties of null (reading 'type')", { note: "V8 TypeError text" });
  bad("invalid.msgpack-instead-of-json", "02 91 06", "Message is incomplete.", { binary: true, note: "a MessagePack frame where the JSON handshake response is expected" });

  return { ...HEADER, requests, responses, invalid };
}

// ---------------------------------------------------------------------------------------

/** Drop undefined properties (keeps key order). */
function clean(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out;
}

function write(file, data) {
  const target = path.join(OUT_DIR, file);
  fs.writeFileSync(target, JSON.stringify(data, null, 2) + "\n");
  return target;
}

const files = [
  write("json.json", jsonVectors()),
  write("messagepack.json", messagepackVectors()),
  write("handshake.json", handshakeVectors()),
];
for (const f of files) console.log(`wrote ${path.relative(process.cwd(), f)}`);
