// Types of hublink's browser API: the surface of @microsoft/signalr that hublink implements.

export declare const HubConnectionState: {
  readonly Disconnected: "Disconnected";
  readonly Connecting: "Connecting";
  readonly Connected: "Connected";
  readonly Disconnecting: "Disconnecting";
  readonly Reconnecting: "Reconnecting";
};
export type HubConnectionState = (typeof HubConnectionState)[keyof typeof HubConnectionState];

export declare const HttpTransportType: {
  readonly None: 0;
  readonly WebSockets: 1;
  readonly ServerSentEvents: 2;
  readonly LongPolling: 4;
};
export type HttpTransportType = number;

export declare const TransferFormat: { readonly Text: 1; readonly Binary: 2 };
export type TransferFormat = 1 | 2;

export declare const LogLevel: {
  readonly Trace: 0; readonly Debug: 1; readonly Information: 2; readonly Warning: 3;
  readonly Error: 4; readonly Critical: 5; readonly None: 6;
};
export type LogLevel = number;

/** An HTTP answer failed the operation (negotiate refused, 401, ...). */
export declare class HttpError extends Error {
  constructor(errorMessage: string, statusCode: number);
  statusCode: number;
}
/** Negotiate failed; `statusCode` (a hublink addition) when an HTTP status caused it. */
export declare class FailedToNegotiateWithServerError extends Error {
  constructor(message: string);
  errorType: "FailedToNegotiateWithServerError";
  statusCode?: number;
}
export declare class TimeoutError extends Error {
  constructor(errorMessage?: string);
}
export declare class AbortError extends Error {
  constructor(errorMessage?: string);
}

export interface IHttpConnectionOptions {
  /** A bit mask of HttpTransportType, or transport names. */
  transport?: HttpTransportType | string | Array<HttpTransportType | string>;
  accessTokenFactory?(): string | Promise<string>;
  headers?: Record<string, string>;
  skipNegotiation?: boolean;
  withCredentials?: boolean;
  /** Timeout of HTTP requests in milliseconds. */
  timeout?: number;
}

export interface RetryContext {
  readonly previousRetryCount: number;
  readonly elapsedMilliseconds: number;
  readonly retryReason: Error;
}
export interface IRetryPolicy {
  nextRetryDelayInMilliseconds(retryContext: RetryContext): number | null;
}

export interface IHubProtocol {
  readonly name: string;
  readonly version: number;
  readonly transferFormat: TransferFormat;
}
export declare class JsonHubProtocol implements IHubProtocol {
  readonly name: "json";
  readonly version: number;
  readonly transferFormat: TransferFormat;
}
export declare class MessagePackHubProtocol implements IHubProtocol {
  readonly name: "messagepack";
  readonly version: number;
  readonly transferFormat: TransferFormat;
}

export interface IStatefulReconnectOptions {
  bufferSize: number;
}

export declare class HubConnectionBuilder {
  withUrl(url: string, transportTypeOrOptions?: HttpTransportType | IHttpConnectionOptions): this;
  withHubProtocol(protocol: IHubProtocol): this;
  withMessagePack(): this;
  withAutomaticReconnect(retryDelaysOrReconnectPolicy?: number[] | IRetryPolicy): this;
  withStatefulReconnect(options?: IStatefulReconnectOptions): this;
  withServerTimeout(milliseconds: number): this;
  withKeepAliveInterval(milliseconds: number): this;
  configureLogging(logging: unknown): this;
  build(): HubConnection;
}

export interface IStreamSubscriber<T> {
  closed?: boolean;
  next(value: T): void;
  error(err: any): void;
  complete(): void;
}
export interface ISubscription<T> {
  dispose(): void;
}
/** Items to upload: pass it as an argument, then call `next`, `error`, `complete`. */
export declare class Subject<T> implements IStreamResult<T> {
  next(item: T): void;
  error(err: any): void;
  complete(): void;
  subscribe(observer: IStreamSubscriber<T>): ISubscription<T>;
}
export interface IStreamResult<T> {
  subscribe(subscriber: IStreamSubscriber<T>): ISubscription<T>;
}

export declare class HubConnection {
  private constructor();
  readonly state: HubConnectionState;
  readonly connectionId: string | null;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Arguments that are async iterables or observables (`Subject`) are streamed to the server. */
  invoke<T = any>(methodName: string, ...args: any[]): Promise<T>;
  send(methodName: string, ...args: any[]): Promise<void>;
  stream<T = any>(methodName: string, ...args: any[]): IStreamResult<T>;
  on(methodName: string, newMethod: (...args: any[]) => any): void;
  off(methodName: string, method?: (...args: any[]) => void): void;
  onclose(callback: (error?: Error) => void): void;
  onreconnecting(callback: (error?: Error) => void): void;
  onreconnected(callback: (connectionId?: string) => void): void;
}
