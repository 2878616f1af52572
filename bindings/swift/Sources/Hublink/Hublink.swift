// The idiomatic Swift layer over the generated `HublinkFFI` module: `async throws` calls,
// `Codable` values, typed handlers, `AsyncThrowingStream` server streams (ending the Swift
// stream cancels the server stream), lifecycle events as an `AsyncStream`, and `HubLinkError`.
//
// Not compiled on the team's Linux machines (no Swift toolchain there): check.sh only parses it
// with tree-sitter-swift. Type-check it on a Mac with `swift build` after build-xcframework.sh.

import Foundation
import HublinkFFI

// MARK: - Errors

/// A hublink failure, by the core's error kind: the core's text and, when an HTTP answer
/// caused it, the HTTP status.
public enum HubLinkError: Error, Equatable, CustomStringConvertible {
    case negotiation(String, status: Int?)
    case transport(String, status: Int?)
    case handshake(String, status: Int?)
    case timeout(String, status: Int?)
    /// The hub method failed on the server; the text is the server's.
    case hub(String, status: Int?)
    case connectionClosed(String, status: Int?)
    case invalidState(String, status: Int?)
    case invalidArgument(String, status: Int?)
    case protocolViolation(String, status: Int?)
    case cancelled(String, status: Int?)
    case other(String, status: Int?)

    public init(_ error: HubError) {
        func s(_ status: UInt16?) -> Int? { status.map(Int.init) }
        switch error {
        case let .Negotiation(reason, status): self = .negotiation(reason, status: s(status))
        case let .Transport(reason, status): self = .transport(reason, status: s(status))
        case let .Handshake(reason, status): self = .handshake(reason, status: s(status))
        case let .Timeout(reason, status): self = .timeout(reason, status: s(status))
        case let .Hub(reason, status): self = .hub(reason, status: s(status))
        case let .ConnectionClosed(reason, status): self = .connectionClosed(reason, status: s(status))
        case let .InvalidState(reason, status): self = .invalidState(reason, status: s(status))
        case let .InvalidArgument(reason, status): self = .invalidArgument(reason, status: s(status))
        case let .Protocol(reason, status): self = .protocolViolation(reason, status: s(status))
        case let .Cancelled(reason, status): self = .cancelled(reason, status: s(status))
        case let .Other(reason, status): self = .other(reason, status: s(status))
        }
    }

    public var description: String {
        switch self {
        case let .negotiation(m, _), let .transport(m, _), let .handshake(m, _), let .timeout(m, _),
             let .hub(m, _), let .connectionClosed(m, _), let .invalidState(m, _),
             let .invalidArgument(m, _), let .protocolViolation(m, _), let .cancelled(m, _),
             let .other(m, _):
            return m
        }
    }

    /// The HTTP status that caused the failure, if one did.
    public var status: Int? {
        switch self {
        case let .negotiation(_, s), let .transport(_, s), let .handshake(_, s), let .timeout(_, s),
             let .hub(_, s), let .connectionClosed(_, s), let .invalidState(_, s),
             let .invalidArgument(_, s), let .protocolViolation(_, s), let .cancelled(_, s),
             let .other(_, s):
            return s
        }
    }
}

func mapped<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as HubError {
        throw HubLinkError(error)
    }
}

func mappedAsync<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as HubError {
        throw HubLinkError(error)
    }
}

// MARK: - Values

/// `Codable` values ↔ `HubValue`, through JSON (bytes as base64, as the JSON protocol carries
/// them). `HubValue` and `Data` arguments keep their exact type.
public enum HubValues {
    public static func encode(_ value: any Encodable) throws -> HubValue {
        if let raw = value as? HubValue { return raw }
        if let data = value as? Data { return .bytes(value: data) }
        let json = try JSONEncoder().encode(value)
        return try fromJSONObject(JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed]))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from value: HubValue) throws -> T {
        if let raw = value as? T { return raw }
        let json = try JSONSerialization.data(withJSONObject: toJSONObject(value), options: [.fragmentsAllowed])
        do {
            return try JSONDecoder().decode(T.self, from: json)
        } catch {
            throw HubLinkError.invalidArgument("the value does not fit \(T.self): \(error)", status: nil)
        }
    }

    static func fromJSONObject(_ any: Any) throws -> HubValue {
        switch any {
        case is NSNull:
            return .null
        case let s as String:
            return .text(value: s)
        case let n as NSNumber:
            if CFGetTypeID(n) == CFBooleanGetTypeID() { return .bool(value: n.boolValue) }
            if CFNumberIsFloatType(n) { return .float64(value: n.doubleValue) }
            if n.int64Value < 0 || n.uint64Value <= UInt64(Int64.max) { return .int64(value: n.int64Value) }
            return .uInt64(value: n.uint64Value)
        case let a as [Any]:
            return .array(items: try a.map(fromJSONObject))
        case let d as [String: Any]:
            return .map(entries: try d.map { MapEntry(key: .text(value: $0.key), value: try fromJSONObject($0.value)) })
        default:
            throw HubLinkError.invalidArgument("not a hub value: \(type(of: any))", status: nil)
        }
    }

    static func toJSONObject(_ value: HubValue) -> Any {
        switch value {
        case .null: return NSNull()
        case let .bool(v): return v
        case let .int64(v): return v
        case let .uInt64(v): return v
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        case let .text(v): return v
        case let .bytes(v): return v.base64EncodedString()
        case let .array(items): return items.map(toJSONObject)
        case let .map(entries):
            var out: [String: Any] = [:]
            for entry in entries { out[keyText(entry.key)] = toJSONObject(entry.value) }
            return out
        case let .timestamp(seconds, nanoseconds):
            let date = Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1e9)
            return ISO8601DateFormatter().string(from: date)
        case let .`extension`(typeCode, data):
            return ["type": Int(typeCode), "data": data.base64EncodedString()] as [String: Any]
        }
    }

    private static func keyText(_ key: HubValue) -> String {
        switch key {
        case let .text(s): return s
        default: return "\(toJSONObject(key))"
        }
    }
}

/// A client-to-server stream argument: its items are sent as the sequence yields them.
public final class HubUpload: Encodable, @unchecked Sendable {
    let feed: @Sendable (UploadSender) async -> Void

    public init<S: AsyncSequence & Sendable>(_ items: S) where S.Element: Encodable {
        feed = { sender in
            do {
                for try await item in items {
                    try await sender.send(item: HubValues.encode(item))
                }
                sender.complete()
            } catch {
                sender.fail(reason: "\(error)")
            }
        }
    }

    public func encode(to encoder: Encoder) throws {
        throw HubLinkError.invalidArgument("an upload stream is not a value", status: nil)
    }
}

// MARK: - Events and handlers

public enum HubLifecycleEvent: Sendable {
    case closed(HubLinkError?)
    case reconnecting(HubLinkError?)
    case reconnected(connectionId: String?)
}

final class ClosureHandler: HubHandler, @unchecked Sendable {
    let body: @Sendable ([HubValue]) async throws -> HubValue

    init(_ body: @escaping @Sendable ([HubValue]) async throws -> HubValue) {
        self.body = body
    }

    func call(arguments: [HubValue]) async throws -> HubValue {
        do {
            return try await body(arguments)
        } catch {
            throw CallbackError.Failed(reason: "\(error)")
        }
    }
}

final class ClosureTokenProvider: AccessTokenProvider, @unchecked Sendable {
    let body: @Sendable () async throws -> String?

    init(_ body: @escaping @Sendable () async throws -> String?) {
        self.body = body
    }

    func token() async throws -> String? {
        do {
            return try await body()
        } catch {
            throw CallbackError.Failed(reason: "\(error)")
        }
    }
}

// MARK: - Builder

public enum TransportType: String, Sendable {
    case webSockets = "WebSockets"
    case serverSentEvents = "ServerSentEvents"
    case longPolling = "LongPolling"
}

/// `HubConnectionBuilder(url: u).withAutomaticReconnect().withMessagePack().build()`
public struct HubConnectionBuilder {
    var options: ConnectionOptions
    var token: (@Sendable () async throws -> String?)?

    public init(url: String) {
        options = ConnectionOptions(url: url)
    }

    public func withTransports(_ transports: TransportType...) -> Self {
        var b = self
        b.options.transports = transports.map(\.rawValue)
        return b
    }

    public func withMessagePack() -> Self {
        var b = self
        b.options.`protocol` = "messagepack"
        return b
    }

    public func withHeader(_ name: String, _ value: String) -> Self {
        var b = self
        b.options.headers[name] = value
        return b
    }

    /// Reconnects after the given delays in seconds (default: the official clients' 0, 2, 10, 30 s).
    public func withAutomaticReconnect(delays: [TimeInterval] = []) -> Self {
        var b = self
        b.options.reconnectDelaysMs = delays.map { UInt64(max(0, $0) * 1000) }
        return b
    }

    public func withStatefulReconnect() -> Self {
        var b = self
        b.options.statefulReconnect = true
        return b
    }

    /// Also trusts the root certificate(s) in `pem`, next to the system's, on every transport.
    public func withRootCertificatePem(_ pem: String) -> Self {
        var b = self
        b.options.rootCertificatesPem.append(pem)
        return b
    }

    /// Presents this client certificate (chain, leaf first, and key, both PEM) when asked.
    public func withClientCertificatePem(chain: String, key: String) -> Self {
        var b = self
        b.options.clientCertificatePem = chain
        b.options.clientKeyPem = key
        return b
    }

    /// DANGEROUS: accepts any server certificate, so anyone on the path can read the traffic.
    public func dangerAcceptInvalidCerts(_ accept: Bool = true) -> Self {
        var b = self
        b.options.dangerAcceptInvalidCerts = accept
        return b
    }

    /// Sends negotiate and every transport through this HTTP proxy
    /// (`http://[user:password@]host:port`), the WebSocket in a `CONNECT` tunnel, except the
    /// hosts `noProxy` lists. Without it the environment's proxy is used.
    public func withProxy(_ url: String, noProxy: String = "") -> Self {
        var b = self
        b.options.proxyUrl = url
        b.options.proxyBypass = noProxy
        return b
    }

    /// Connects without any proxy, whatever the environment says.
    public func withNoProxy() -> Self {
        var b = self
        b.options.proxyUrl = nil
        b.options.noProxyAtAll = true
        return b
    }

    public func withAccessTokenProvider(_ provider: @escaping @Sendable () async throws -> String?) -> Self {
        var b = self
        b.token = provider
        return b
    }

    public func build() throws -> HubConnection {
        let provider = token.map { ClosureTokenProvider($0) }
        return HubConnection(try mapped { try HublinkFFI.HubConnection(options: options, accessToken: provider) })
    }
}

// MARK: - The connection

/// A SignalR hub connection. Calls are submitted when they are made (so they reach the server
/// in that order); handlers run on a Rust runtime thread, not the main actor.
public final class HubConnection: @unchecked Sendable {
    let ffi: HublinkFFI.HubConnection

    init(_ ffi: HublinkFFI.HubConnection) {
        self.ffi = ffi
    }

    public var state: String { ffi.state() }
    public var connectionId: String? { ffi.connectionId() }
    public var transport: String? { ffi.transport() }

    public func start() async throws { try await mappedAsync { try await ffi.start() } }
    public func stop() async throws { try await mappedAsync { try await ffi.stop() } }

    private func prepare(_ args: [any Encodable]) throws -> ([HubValue], [(UploadSender, HubUpload)]) {
        var values: [HubValue] = []
        var uploads: [(UploadSender, HubUpload)] = []
        for arg in args {
            if let upload = arg as? HubUpload {
                uploads.append((UploadSender(), upload))
            } else {
                values.append(try HubValues.encode(arg))
            }
        }
        return (values, uploads)
    }

    private func feed(_ uploads: [(UploadSender, HubUpload)]) {
        for (sender, upload) in uploads {
            Task { await upload.feed(sender) }
        }
    }

    /// Invokes `method` and decodes its result as `T`.
    public func invoke<T: Decodable>(_ method: String, _ args: any Encodable..., returning: T.Type = T.self) async throws -> T {
        let (values, uploads) = try prepare(args)
        let call = try mapped { try ffi.invoke(method: method, args: values, uploads: uploads.map { $0.0 }) }
        feed(uploads)
        let result = try await mappedAsync { try await call.result() }
        return try HubValues.decode(T.self, from: result)
    }

    /// Sends `method` (no result); returns once it is written.
    public func send(_ method: String, _ args: any Encodable...) async throws {
        let (values, uploads) = try prepare(args)
        let call = try mapped { try ffi.send(method: method, args: values, uploads: uploads.map { $0.0 }) }
        feed(uploads)
        _ = try await mappedAsync { try await call.result() }
    }

    /// A server-to-client stream; ending the iteration early (or cancelling its task) cancels
    /// it on the server.
    public func stream<T: Decodable & Sendable>(_ method: String, _ args: any Encodable..., of: T.Type = T.self) throws -> AsyncThrowingStream<T, Error> {
        let (values, uploads) = try prepare(args)
        let items = try mapped { try ffi.stream(method: method, args: values, uploads: uploads.map { $0.0 }) }
        feed(uploads)
        return AsyncThrowingStream { continuation in
            let reader = Task {
                do {
                    while true {
                        let batch = try await mappedAsync { try await items.nextBatch(max: 256) }
                        if batch.isEmpty { break }
                        for item in batch {
                            continuation.yield(try HubValues.decode(T.self, from: item))
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { termination in
                if case .cancelled = termination {
                    items.cancel()
                    reader.cancel()
                }
            }
        }
    }

    /// Registers a client method with its raw arguments; the id removes it.
    @discardableResult
    public func on(_ method: String, _ handler: @escaping @Sendable ([HubValue]) async throws -> Void) -> UInt64 {
        ffi.on(method: method, handler: ClosureHandler { args in
            try await handler(args)
            return .null
        }, returnsResult: false)
    }

    /// Registers a client method of one typed argument.
    @discardableResult
    public func on<A: Decodable>(_ method: String, _ handler: @escaping @Sendable (A) async throws -> Void) -> UInt64 {
        ffi.on(method: method, handler: ClosureHandler { args in
            guard let first = args.first else {
                throw HubLinkError.invalidArgument("the invocation has no argument", status: nil)
            }
            try await handler(HubValues.decode(A.self, from: first))
            return .null
        }, returnsResult: false)
    }

    /// Registers a client method whose return value answers client-result requests.
    @discardableResult
    public func onResult<R: Encodable>(_ method: String, _ handler: @escaping @Sendable ([HubValue]) async throws -> R) -> UInt64 {
        ffi.on(method: method, handler: ClosureHandler { args in
            try HubValues.encode(try await handler(args))
        }, returnsResult: true)
    }

    @discardableResult
    public func removeHandler(_ id: UInt64) -> Bool { ffi.removeHandler(id: id) }

    public func off(_ method: String) { ffi.off(method: method) }

    /// Lifecycle events, pulled from the core (read it from one task).
    public var events: AsyncStream<HubLifecycleEvent> {
        AsyncStream(unfolding: { [ffi] in
            guard let event = await ffi.nextEvent() else { return nil }
            switch event.kind {
            case .closed: return .closed(event.error.map(HubLinkError.init))
            case .reconnecting: return .reconnecting(event.error.map(HubLinkError.init))
            case .reconnected: return .reconnected(connectionId: event.connectionId)
            }
        })
    }
}
