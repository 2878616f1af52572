// Command goserver hosts a SignalR test hub on top of the third-party Go server
// github.com/philippseith/signalr (v0.11.0). It is hublink's independent
// "real server" for interop tests; see README.md in this directory and
// docs/TEST-SERVERS.md §6.
//
// The hub mirrors the official ASP.NET Core FunctionalTests TestHub as far as
// the Go library allows, plus a few extra methods for demos and benchmarks.
//
// On start the program prints exactly one line, "http://127.0.0.1:<port>", to
// stdout once the listener is bound; all logging goes to stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	kitlog "github.com/go-kit/log"
	"github.com/philippseith/signalr"
)

// ---------------------------------------------------------------------------
// Request information passed from the HTTP middleware to the hubs.
//
// The library merges the HTTP request context into the connection context
// (teivah/onecontext), so values stored here are reachable from a hub method
// through h.Context().Value(requestInfoKey{}). For WebSockets this is the
// upgrade request; for Server-Sent Events it is the long-lived GET request.
// ---------------------------------------------------------------------------

type requestInfoKey struct{}

type requestInfo struct {
	Transport string // "WebSockets", "ServerSentEvents" or "" (negotiate, POST)
	Header    http.Header
	Query     map[string][]string
	Cookies   []*http.Cookie
	Token     string // bearer token (header or access_token query), if any
}

func bearerToken(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "Bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return r.URL.Query().Get("access_token")
}

func transportOf(r *http.Request) string {
	if r.Method != http.MethodGet {
		return ""
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return "WebSockets"
	}
	if strings.EqualFold(r.Header.Get("Accept"), "text/event-stream") {
		return "ServerSentEvents"
	}
	return ""
}

func info(h interface{ Context() context.Context }) *requestInfo {
	if ri, ok := h.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{Header: http.Header{}}
}

// ---------------------------------------------------------------------------
// DTOs. Field names are PascalCase on the wire like the official server, which
// configures System.Text.Json with PropertyNamingPolicy = null.
// MessagePack: []byte is encoded as bin, time.Time as the timestamp extension
// (-1), matching what the .NET server and the official JS client use.
// ---------------------------------------------------------------------------

type CustomObject struct {
	Name  string `json:"Name" msgpack:"Name"`
	Value int    `json:"Value" msgpack:"Value"`
}

type ComplexObject struct {
	String    string    `json:"String" msgpack:"String"`
	IntArray  []int     `json:"IntArray" msgpack:"IntArray"`
	ByteArray []byte    `json:"ByteArray" msgpack:"ByteArray"`
	Guid      string    `json:"Guid" msgpack:"Guid"`
	DateTime  time.Time `json:"DateTime" msgpack:"DateTime"`
}

// ---------------------------------------------------------------------------
// TestHub
//
// Note on concurrency: the library runs every invocation in its own goroutine
// and every Clients().X.Send in another goroutine, so there is no ordering
// between completions, nor between a Send and the completion of the invocation
// that issued it.
// ---------------------------------------------------------------------------

type TestHub struct{ signalr.Hub }

// --- official TestHub surface -------------------------------------------------

func (h *TestHub) Echo(message string) string      { return message }
func (h *TestHub) GetCallerConnectionId() string   { return h.ConnectionID() }
func (h *TestHub) InvokeWithString(message string) { h.Clients().Caller().Send("Message", message) }

// ThrowException panics; the library turns the panic into a Completion error of
// the form "<panic value>\n" (plus a Go stack trace when -detailed-errors).
func (h *TestHub) ThrowException(message string) { panic(message) }

func (h *TestHub) SendCustomObject(o CustomObject) {
	h.Clients().Caller().Send("CustomObject", o)
}

func (h *TestHub) EchoComplexObject(o ComplexObject) ComplexObject { return o }

func (h *TestHub) SendComplexObject() ComplexObject {
	return ComplexObject{
		String:    "hello world",
		IntArray:  []int{1, 2, 3},
		ByteArray: []byte{1, 2, 3},
		Guid:      "00010203-0405-0607-0706-050403020100",
		DateTime:  time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func (h *TestHub) Stream() <-chan string {
	c := make(chan string, 3)
	c <- "a"
	c <- "b"
	c <- "c"
	close(c)
	return c
}

func (h *TestHub) EmptyStream() <-chan int {
	c := make(chan int)
	close(c)
	return c
}

// InfiniteStream never yields. The library gives hub methods no cancellation
// token and cancels streams lazily (at the next produced item), so a
// CancelInvocation for this stream is never noticed and no "StreamCanceled"
// message is sent (the official hub sends one). The channel is closed when the
// connection ends so that no goroutine is leaked.
func (h *TestHub) InfiniteStream() <-chan string {
	c := make(chan string)
	ctx := h.Context()
	go func() {
		<-ctx.Done()
		close(c)
	}()
	return c
}

// StreamThrowException fails the stream before the first item: the panic is
// reported as a Completion error "<message>\n".
func (h *TestHub) StreamThrowException(message string) <-chan string { panic(message) }

func (h *TestHub) StreamingConcat(in <-chan string) string {
	var b strings.Builder
	for s := range in {
		b.WriteString(s)
	}
	return b.String()
}

func (h *TestHub) GetActiveTransportName() string { return info(h).Transport }

// GetHeader returns a header of the request that opened the transport (the
// WebSocket upgrade request or the SSE GET request).
func (h *TestHub) GetHeader(name string) string { return info(h).Header.Get(name) }

func (h *TestHub) GetContentTypeHeader() string { return info(h).Header.Get("Content-Type") }

func (h *TestHub) GetCookie(name string) string {
	for _, c := range info(h).Cookies {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (h *TestHub) GetNumRedirects() int {
	if v := info(h).Query["numRedirects"]; len(v) > 0 {
		n, _ := strconv.Atoi(v[0])
		return n
	}
	return 0
}

// --- extras for demos and benchmarks ------------------------------------------

func (h *TestHub) JoinGroup(group string) { h.Groups().AddToGroup(group, h.ConnectionID()) }

func (h *TestHub) LeaveGroup(group string) { h.Groups().RemoveFromGroup(group, h.ConnectionID()) }

// SendToGroup sends "GroupMessage"(group, message) to every member of group.
func (h *TestHub) SendToGroup(group, message string) {
	h.Clients().Group(group).Send("GroupMessage", group, message)
}

// SendToAll sends "Broadcast"(message) to every connection of this hub.
func (h *TestHub) SendToAll(message string) { h.Clients().All().Send("Broadcast", message) }

// Broadcast is an alias of SendToAll.
func (h *TestHub) Broadcast(message string) { h.Clients().All().Send("Broadcast", message) }

// StreamCount streams 0..n-1.
func (h *TestHub) StreamCount(n int) <-chan int {
	c := make(chan int)
	ctx := h.Context()
	go func() {
		defer close(c)
		for i := 0; i < n; i++ {
			select {
			case c <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	return c
}

// EchoN sends "Message"(message) n times to the caller and returns n.
// The n Sends are not ordered relative to each other or to the completion.
func (h *TestHub) EchoN(message string, n int) int {
	for i := 0; i < n; i++ {
		h.Clients().Caller().Send("Message", message)
	}
	return n
}

// Delay waits ms milliseconds, then returns value. Handy for showing that
// completions are not ordered (each invocation runs in its own goroutine).
func (h *TestHub) Delay(ms int, value string) string {
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
	case <-h.Context().Done():
	}
	return value
}

func (h *TestHub) EchoBytes(b []byte) []byte { return b }

func (h *TestHub) Add(a, b int) int { return a + b }

// UploadSum sums an uploaded stream of integers.
func (h *TestHub) UploadSum(in <-chan int) int {
	sum := 0
	for v := range in {
		sum += v
	}
	return sum
}

// CloseMe makes the server send a Close message with the given error text and
// allowReconnect flag. The transport stays open until the client closes it.
// Use `send`, not `invoke`: the void Completion may race with the Close.
func (h *TestHub) CloseMe(message string, allowReconnect bool) {
	_ = h.Close(message, allowReconnect)
}

// AbortMe calls Hub.Abort(). Observed: the loop still writes a Close
// ("breaking loop. hubConnection canceled: context canceled", allowReconnect=true).
func (h *TestHub) AbortMe() { h.Abort() }

// ---------------------------------------------------------------------------
// AuthorizedHub, mapped at /authorizedhub behind the bearer middleware.
// ---------------------------------------------------------------------------

type AuthorizedHub struct{ signalr.Hub }

func (h *AuthorizedHub) Echo(message string) string { return message }

// GetUserNameIdentifier returns "testuser" for any accepted token (the
// official hub returns the NameIdentifier claim of its JWT, "testuser").
func (h *AuthorizedHub) GetUserNameIdentifier() string {
	if info(h).Token != "" {
		return "testuser"
	}
	return ""
}

// GetToken returns the bearer token the transport request carried.
func (h *AuthorizedHub) GetToken() string { return info(h).Token }

// ---------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------

// withRequestInfo stores request information in the context and adds CORS
// headers like the official test server (echo Origin, allow credentials,
// OPTIONS -> 204).
func withRequestInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			if m := r.Header.Get("Access-Control-Request-Method"); m != "" {
				w.Header().Set("Access-Control-Allow-Methods", m)
			}
			if hd := r.Header.Get("Access-Control-Request-Headers"); hd != "" {
				w.Header().Set("Access-Control-Allow-Headers", hd)
			}
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/negotiate") {
			http.SetCookie(w, &http.Cookie{Name: "testCookie", Value: "testValue", Path: "/"})
			http.SetCookie(w, &http.Cookie{Name: "testCookie2", Value: "testValue2", Path: "/"})
		}
		ri := &requestInfo{
			Transport: transportOf(r),
			Header:    r.Header.Clone(),
			Query:     r.URL.Query(),
			Cookies:   r.Cookies(),
			Token:     bearerToken(r),
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, ri)))
	})
}

// requireBearer answers 401 unless the request carries "Authorization: Bearer
// <token>" or "?access_token=<token>" (any non-empty token is accepted).
func requireBearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bearerToken(r) == "" {
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type logLevel int

const (
	logNone logLevel = iota
	logInfo
	logDebug
)

func newHubServer(ctx context.Context, hub signalr.HubInterface, lvl logLevel, opts []func(signalr.Party) error,
	transports ...signalr.TransportType) (signalr.Server, error) {
	var logger kitlog.Logger = kitlog.NewNopLogger()
	if lvl != logNone {
		logger = kitlog.NewLogfmtLogger(kitlog.NewSyncWriter(os.Stderr))
	}
	all := append([]func(signalr.Party) error{
		signalr.SimpleHubFactory(hub),
		signalr.Logger(logger, lvl == logDebug),
		signalr.HTTPTransports(transports...),
	}, opts...)
	return signalr.NewServer(ctx, all...)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (host:port); port 0 picks a free port")
	keepAlive := flag.Duration("keepalive", 5*time.Second, "KeepAliveInterval (library default 5s)")
	timeout := flag.Duration("timeout", 30*time.Second, "TimeoutInterval: close the connection if the client is silent this long")
	handshakeTimeout := flag.Duration("handshake-timeout", 15*time.Second, "HandshakeTimeout")
	maxMsg := flag.Uint("max-message-size", 1<<20, "MaximumReceiveMessageSize in bytes (library default 32 KiB)")
	detailed := flag.Bool("detailed-errors", false, "EnableDetailedErrors: append the Go stack trace to panic error texts")
	logFlag := flag.String("log", "info", "log level on stderr: none, info or debug")
	flag.Parse()

	var lvl logLevel
	switch *logFlag {
	case "none":
		lvl = logNone
	case "info":
		lvl = logInfo
	case "debug":
		lvl = logDebug
	default:
		fmt.Fprintf(os.Stderr, "invalid -log %q\n", *logFlag)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hubCtx, cancelHubs := context.WithCancel(context.Background())
	defer cancelHubs()

	opts := []func(signalr.Party) error{
		signalr.KeepAliveInterval(*keepAlive),
		signalr.TimeoutInterval(*timeout),
		signalr.HandshakeTimeout(*handshakeTimeout),
		signalr.MaximumReceiveMessageSize(*maxMsg),
		signalr.EnableDetailedErrors(*detailed),
		signalr.InsecureSkipVerify(true), // accept any Origin on WebSocket upgrades
	}
	mux := http.NewServeMux()
	mapHub := func(path string, hub signalr.HubInterface, transports ...signalr.TransportType) {
		srv, err := newHubServer(hubCtx, hub, lvl, opts, transports...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "creating hub server for %s: %v\n", path, err)
			os.Exit(1)
		}
		srv.MapHTTP(signalr.WithHTTPServeMux(mux), path)
	}
	mapHub("/testhub", &TestHub{}, signalr.TransportWebSockets, signalr.TransportServerSentEvents)
	mapHub("/testhub-nowebsockets", &TestHub{}, signalr.TransportServerSentEvents)

	authMux := http.NewServeMux()
	{
		srv, err := newHubServer(hubCtx, &AuthorizedHub{}, lvl, opts,
			signalr.TransportWebSockets, signalr.TransportServerSentEvents)
		if err != nil {
			fmt.Fprintf(os.Stderr, "creating hub server for /authorizedhub: %v\n", err)
			os.Exit(1)
		}
		srv.MapHTTP(signalr.WithHTTPServeMux(authMux), "/authorizedhub")
	}
	mux.Handle("/authorizedhub", requireBearer(authMux))
	mux.Handle("/authorizedhub/negotiate", requireBearer(authMux))

	// Negotiate redirects, which the library itself never emits.
	redirect := func(path, token string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(struct {
				URL         string `json:"url"`
				AccessToken string `json:"accessToken"`
			}{"http://" + r.Host + path, token})
		}
	}
	mux.HandleFunc("/redirect/negotiate", redirect("/testhub", "redirect-token"))
	mux.HandleFunc("/redirect-auth/negotiate", redirect("/authorizedhub", "redirect-auth-token"))
	mux.HandleFunc("GET /generateJwtToken", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprint(w, "hublink-test-token")
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen %s: %v\n", *addr, err)
		os.Exit(1)
	}
	httpSrv := &http.Server{Handler: withRequestInfo(mux), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	// The one and only line on stdout.
	fmt.Fprintf(os.Stdout, "http://%s\n", ln.Addr().String())

	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "goserver: signal received, shutting down")
	case err := <-serveErr:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "goserver: serve: %v\n", err)
			os.Exit(1)
		}
	}
	cancelHubs() // ends the message loops of hijacked WebSocket / SSE connections
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		_ = httpSrv.Close()
	}
	fmt.Fprintln(os.Stderr, "goserver: stopped")
}
