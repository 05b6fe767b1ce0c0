package broker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/websocket"
	"github.com/igm/sockjs-go/v3/sockjs"
	"github.com/prometheus/client_golang/prometheus"
)

// Server is one broker node.
type Server struct {
	cfg     Config
	app     Application
	bus     Bus
	log     *slog.Logger
	metrics *metrics
	limits  limits
	hub     hub

	upgrader       websocket.Upgrader // raw STOMP WebSocket
	sockjsUpgrader websocket.Upgrader // SockJS websocket transport
	sockjs         *sockjs.Handler
	polls          *pollTracker
	owners         *SessionOwners // the client address of each SockJS session

	chunks  sync.Pool // *[]byte read buffers
	buffers sync.Pool // *[]byte write buffers
	parsers sync.Pool // *frameParser

	runCtx    context.Context
	runCancel context.CancelFunc
	busDone   chan struct{}

	subscriptions atomic.Int64
	coalesce      *coalescer
	// pendingBytes is what the unfinished frames of all connections hold
	// (Config.MaxPendingBytes).
	pendingBytes atomic.Int64

	mu          sync.Mutex
	poller      *readPoller // the raw WebSockets' (poller_linux.go); nil until the first, or without epoll
	pollerErr   error       // why there is none: each raw WebSocket then keeps a reader goroutine
	conns       map[string]*Conn
	sockjsConns map[string]*Conn // by SockJS session id (HTTP transports)
	shutdown    bool
}

// Stats is a snapshot of a node's load.
type Stats struct {
	Connections   int
	Subscriptions int
	Topics        int // hub topics with local subscribers
}

// New builds a node. reg may be nil (no metrics exported); bus is the
// node's link to the others (NewMemoryBus for a single node). The caller
// closes the bus after Shutdown.
func New(cfg Config, app Application, bus Bus, reg prometheus.Registerer, log *slog.Logger) (*Server, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if app == nil || bus == nil {
		return nil, errors.New("broker: New needs an Application and a Bus")
	}
	if log == nil {
		log = slog.Default()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:         cfg,
		app:         app,
		bus:         bus,
		log:         log.With("component", "broker"),
		metrics:     m,
		limits:      limits{maxFrame: cfg.MaxFrameSize, maxHeaders: cfg.MaxHeaders, maxLine: cfg.MaxHeaderLine},
		conns:       make(map[string]*Conn),
		sockjsConns: make(map[string]*Conn),
		busDone:     make(chan struct{}),
	}
	s.hub = hub{srv: s, topics: make(map[string]*topic)}
	s.coalesce = newCoalescer(cfg.CoalesceWindow, func(topic string, m *message) { s.hub.publishLocal(topic, m) })
	s.chunks.New = func() any { b := make([]byte, 4096); return &b }
	s.buffers.New = func() any { b := make([]byte, 0, 4096); return &b }
	s.parsers.New = func() any { return newFrameParser() }
	checkOrigin := cfg.CheckOrigin
	if checkOrigin == nil {
		checkOrigin = func(*http.Request) bool { return true }
	}
	s.upgrader = websocket.Upgrader{
		// gorilla only answers the handshake (wsTransport reads and
		// writes the frames): with no buffer sizes of its own it reuses
		// the hijacked ones instead of allocating any.
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{"v12.stomp", "v11.stomp", "v10.stomp"},
		CheckOrigin:     checkOrigin,
	}
	s.sockjsUpgrader = websocket.Upgrader{
		ReadBufferSize:  512,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     checkOrigin,
	}
	// sockjs-go's own websocket route is never reached (Handler serves the
	// websocket transport), but Websocket stays on so /info offers it.
	opts := sockjs.DefaultOptions
	opts.SockJSURL = cfg.SockJSURL
	opts.HeartbeatDelay = cfg.SockJSHeartbeat
	s.sockjs = sockjs.NewHandler(cfg.Path, opts, s.serveSockJS)
	s.polls = newPollTracker()
	s.owners = NewSessionOwners(cfg.Path, cfg.SockJSAnyAddress, func() { s.metrics.errors.WithLabelValues("sockjs_address").Inc() })

	s.runCtx, s.runCancel = context.WithCancel(context.Background())
	go s.runBus()
	return s, nil
}

// runBus hands what other nodes publish to the hub until Shutdown. A Run
// that fails is restarted after a pause, so a bus outage costs cross-node
// delivery only while it lasts.
func (s *Server) runBus() {
	defer close(s.busDone)
	retryCtx, stopRetry := context.WithCancel(s.runCtx)
	retried := make(chan struct{})
	go func() {
		defer close(retried)
		s.hub.retryBus(retryCtx)
	}()
	defer func() { stopRetry(); <-retried }()
	pause := 100 * time.Millisecond
	for {
		started := time.Now()
		err := s.bus.Run(s.runCtx, s.deliverRemote)
		if s.runCtx.Err() != nil || errors.Is(err, ErrBusClosed) {
			return
		}
		if time.Since(started) > time.Minute { // it ran well for a while
			pause = 100 * time.Millisecond
		}
		s.metrics.errors.WithLabelValues("bus").Inc()
		s.log.Error("bus stopped; restarting", "err", err, "pause", pause)
		select {
		case <-s.runCtx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// deliverRemote fans out what another node published.
func (s *Server) deliverRemote(topicName string, payload []byte) {
	published, ct, key, body, err := decodePayload(payload)
	if err != nil {
		s.metrics.errors.WithLabelValues("bus").Inc()
		s.log.Warn("dropping bus message", "topic", topicName, "err", err)
		return
	}
	if ct == "" {
		ct = s.cfg.ContentType
	}
	m := &message{suffix: encodeMessageSuffix(ct, body), published: published}
	if key != "" {
		s.coalesce.offer(topicName, key, m)
		return
	}
	s.hub.publishLocal(topicName, m)
}

// Handler serves cfg.Path and everything below it: SockJS, and the raw
// WebSocket at cfg.Path + "/websocket".
func (s *Server) Handler() http.Handler {
	raw := s.cfg.Path + "/websocket"
	info := s.cfg.Path + "/info"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case raw:
			s.serveRaw(w, r)
		case info:
			if s.isShutdown() { // send new SockJS clients to another node
				http.Error(w, "shutting down", http.StatusServiceUnavailable)
				return
			}
			s.sockjs.ServeHTTP(w, r)
		default:
			if !s.owners.Allow(w, r) {
				return
			}
			if r.Method == http.MethodPost && r.Body != nil && !s.boundPostBody(w, r) {
				return
			}
			if isSockJSWebSocket(strings.TrimPrefix(r.URL.Path, s.cfg.Path)) {
				s.serveSockJSWebSocket(w, r)
				return
			}
			sub := strings.TrimPrefix(r.URL.Path, s.cfg.Path)
			if id, ok := receivingSession(sub); ok && r.Method != http.MethodOptions {
				s.polls.begin(id)
				defer s.polls.end(id)
				if isPoll(sub) {
					s.servePoll(w, r)
					return
				}
			}
			s.sockjs.ServeHTTP(w, r)
		}
	})
}

// maxPostBody allows a few frames of the largest size, JSON-escaped.
func (s *Server) maxPostBody() int64 {
	return max(1<<20, 8*int64(s.cfg.MaxFrameSize))
}

func (s *Server) isShutdown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

func (s *Server) serveRaw(w http.ResponseWriter, r *http.Request) {
	if s.isShutdown() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	t := s.newWSTransport(ws)
	c := s.newConn(t, r.RemoteAddr)
	if c == nil {
		t.Abort()
		return
	}
	// This handler returns, so that net/http frees its per-connection
	// buffers, request and response; the reader holds the transport, not
	// gorilla's connection, which keeps the hijacked read buffer; teardown
	// closes the socket. With the node's poller no goroutine waits for the
	// socket's bytes; without it the reader runs on a goroutine of its own.
	t.conn.Store(c)
	t.rstate.Store(readRunning) // until the socket is registered
	if p := s.readPoller(); p != nil {
		err := p.add(t)
		if err == nil {
			t.readFn = t.readNow
			if !t.releaseReader() { // bytes, or the end, came meanwhile
				p.read(t)
			}
			return
		}
		s.log.Warn("raw websocket not polled; it keeps a reader goroutine", "session", c.id, "err", err)
	}
	go c.serve()
}

// readPoller returns the node's poller, started with the first raw
// WebSocket; nil when epoll is not to be had (logged once) or during
// shutdown.
func (s *Server) readPoller() *readPoller {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.poller != nil || s.pollerErr != nil || s.shutdown {
		return s.poller
	}
	s.poller, s.pollerErr = newReadPoller()
	if s.pollerErr != nil {
		s.log.Warn("raw websockets keep a reader goroutine each", "err", s.pollerErr)
	}
	return s.poller
}

func (s *Server) serveSockJS(sess sockjs.Session) {
	defer s.owners.Bind(sess.ID(), sess.Request())()
	t := newSockJSTransport(sess, s.polls)
	c := s.newConn(t, sess.Request().RemoteAddr)
	if c == nil {
		t.Close()
		return
	}
	s.mu.Lock()
	s.sockjsConns[sess.ID()] = c
	s.mu.Unlock()
	c.serve()
	s.mu.Lock()
	delete(s.sockjsConns, sess.ID())
	s.mu.Unlock()
}

// boundPostBody reads a SockJS POST body (xhr_send, jsonp_send) up to
// maxPostBody, since sockjs-go decodes it whole and ignores a read error.
// A larger body is refused with 413 and its session ends with an ERROR
// frame; it reports whether to go on.
func (s *Server) boundPostBody(w http.ResponseWriter, r *http.Request) bool {
	limit := s.maxPostBody()
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	_ = r.Body.Close()
	if err != nil {
		http.Error(w, "cannot read the request body", http.StatusBadRequest)
		return false
	}
	if int64(len(body)) > limit {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		parts := strings.Split(strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, s.cfg.Path), "/"), "/")
		if len(parts) == 3 {
			s.mu.Lock()
			c := s.sockjsConns[parts[1]]
			s.mu.Unlock()
			if c != nil {
				c.fail(limitError("frame too large", "a SockJS message exceeds the limit of %d bytes", limit), "")
			}
		}
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}

// newConn registers a connection, or returns nil during shutdown.
func (s *Server) newConn(t transport, remote string) *Conn {
	c := &Conn{srv: s, t: t, id: newSessionID(), remote: remote, done: make(chan struct{})}
	parent := t.Context()
	if parent == nil {
		parent = context.Background()
	}
	c.ctx = newConnContext(parent)
	c.stopParent = c.ctx.watchParent()
	if ts, ok := t.(trySender); ok {
		c.try = ts
	}
	now := time.Now().UnixNano()
	c.lastRead.Store(now)
	c.lastWrite.Store(now)
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		c.endContext()
		return nil
	}
	s.conns[c.id] = c
	s.mu.Unlock()
	s.metrics.connections.WithLabelValues(t.Name()).Inc()
	s.log.Debug("connection opened", "session", c.id, "transport", t.Name(), "remote", remote)
	c.mu.Lock()
	c.resetTimerLocked(s.cfg.ConnectTimeout)
	c.mu.Unlock()
	return c
}

func (s *Server) removeConn(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
	s.metrics.connections.WithLabelValues(c.t.Name()).Dec()
	s.log.Debug("connection closed", "session", c.id, "transport", c.t.Name())
}

func (s *Server) subscribe(sub *subscription) {
	s.hub.add(sub)
	s.subscriptions.Add(1)
	s.metrics.subscriptions.Inc()
}

func (s *Server) unsubscribe(sub *subscription) {
	if sub.active.Load() {
		s.hub.remove(sub)
		s.subscriptions.Add(-1)
		s.metrics.subscriptions.Dec()
	}
}

// newSessionID returns 128 random bits: unique across the cluster without
// coordination.
func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) parse(raw []byte, v version) (*frame.Frame, *protocolError) {
	unescaped := v == v10 || v == 0 || (len(raw) > 7 && (string(raw[:7]) == "CONNECT" || string(raw[:5]) == "STOMP"))
	p := s.parsers.Get().(*frameParser)
	f, reusable, err := p.parse(raw, unescaped)
	if reusable {
		s.parsers.Put(p)
	}
	if err != nil {
		if errors.Is(err, frame.ErrInvalidCommand) {
			return nil, malformed("invalid command", "unknown command")
		}
		return nil, malformed("invalid frame format", "the frame cannot be parsed: %v", err)
	}
	return f, nil
}

// Publish delivers body to every subscriber of destination on every node.
func (s *Server) Publish(ctx context.Context, destination string, body []byte) error {
	return s.publish(ctx, normalizeDestination(destination), s.cfg.ContentType, body, false)
}

// publish delivers body to topicName's subscribers on every node; burst is
// message.burst.
func (s *Server) publish(ctx context.Context, topicName, contentType string, body []byte, burst bool) error {
	now := time.Now().UnixNano()
	s.hub.publishLocal(topicName, &message{suffix: encodeMessageSuffix(contentType, body), published: now, burst: burst})
	if contentType == s.cfg.ContentType {
		contentType = ""
	}
	if err := s.bus.Publish(ctx, topicName, encodePayload(now, contentType, body)); err != nil {
		s.metrics.errors.WithLabelValues("bus").Inc()
		return fmt.Errorf("broker: publish to %s: %w", topicName, err)
	}
	return nil
}

// SendPrivate delivers body to the private destination of session
// sessionID, on whichever node holds it.
func (s *Server) SendPrivate(ctx context.Context, sessionID string, body []byte) error {
	topicName := privateTopic(sessionID)
	s.mu.Lock()
	_, local := s.conns[sessionID]
	s.mu.Unlock()
	if local {
		s.hub.publishLocal(topicName, &message{suffix: encodeMessageSuffix(s.cfg.ContentType, body), published: time.Now().UnixNano()})
		return nil
	}
	if err := s.bus.Publish(ctx, topicName, encodePayload(time.Now().UnixNano(), "", body)); err != nil {
		s.metrics.errors.WithLabelValues("bus").Inc()
		return fmt.Errorf("broker: send to session %s: %w", sessionID, err)
	}
	return nil
}

// Stats reports the node's current load.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	return Stats{Connections: n, Subscriptions: int(s.subscriptions.Load()), Topics: s.hub.count()}
}

// Shutdown stops accepting, tells every client reason in an ERROR frame, and
// closes. It waits for the frames to be written and the connections to end,
// until ctx ends; then it drops whatever is left.
func (s *Server) Shutdown(ctx context.Context, reason string) error {
	s.mu.Lock()
	s.shutdown = true
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.log.Info("shutting down", "connections", len(conns), "reason", reason)
	for _, c := range conns {
		c.fail(&protocolError{kind: "shutdown", message: reason, detail: reason}, "")
	}
	// An ended context is checked first: select picks at random among
	// ready cases, and a caller that gave no time must always be told so.
	err := ctx.Err()
	for _, c := range conns {
		if err != nil {
			break
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		err = fmt.Errorf("broker: shutdown: %w", err)
	}
	if err != nil {
		for _, c := range conns {
			c.t.Abort()
		}
	}
	s.mu.Lock()
	p := s.poller
	s.mu.Unlock()
	if p != nil {
		p.stop()
	}
	s.runCancel()
	s.coalesce.close()
	select {
	case <-s.busDone:
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("broker: shutdown: %w", ctx.Err())
		}
	}
	return err
}

// HasSubscribers reports whether any connection on this node subscribes to
// destination.
func (s *Server) HasSubscribers(destination string) bool {
	return s.hub.has(normalizeDestination(destination))
}
