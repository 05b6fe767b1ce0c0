package knowledgetalk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/cstalk/cstalk/video"
)

// FrontEnd labels this front end's rooms and errors in the video metrics.
const FrontEnd = "knowledgetalk"

// namespace is the one socket.io namespace the clients connect to.
const namespace = "/SignalServer"

// Rooms is what the front end needs of the video server (*video.Server):
// joining rooms, seeing whether one is live here, and its metrics.
type Rooms interface {
	Join(req video.JoinRequest) (*video.Participant, error)
	Participants(key video.RoomKey) []video.Member
	// Claim, DialRelay and HandleRelay place rooms in a cluster and relay
	// a session to its room's node (see relay.go).
	Claim(key video.RoomKey) (addr string, self bool)
	DialRelay(ctx context.Context, addr string, key video.RoomKey, q url.Values, h http.Header) (*websocket.Conn, error)
	HandleRelay(kind video.RoomKind, h video.RelayHandler)
	SignalingConnection(transport string) (done func())
	SignalingError(frontEnd, code string)
}

// Server is the KnowledgeTalk signal server.
type Server struct {
	cfg      Config
	rooms    Rooms
	store    Store
	licences *licences
	log      *slog.Logger
	now      func() time.Time

	io      *socket.Server
	handler http.Handler

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // session writers and the janitor; Add only under mu while !closed

	mu       sync.Mutex
	sessions map[*session]struct{}
	// live counts this node's sessions in each room (by room id), for the
	// janitor and for deleting a room once it empties.
	live map[string]int
	// gates hold each Engine.IO connection's reads while it joins (by
	// Engine.IO id; see joinGate).
	gates  map[string]*joinGate
	closed bool
}

// New builds the server; Handler serves it.
func New(cfg Config, rooms Rooms, st Store, log *slog.Logger) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("knowledgetalk: config: %w", err)
	}
	if rooms == nil || st == nil {
		return nil, errors.New("knowledgetalk: rooms and store are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{cfg: cfg, rooms: rooms, store: st, log: log.With("component", "knowledgetalk"), now: now,
		licences: newLicences(st, cfg.LicenceCacheTTL, cfg.LicenceCacheSize, now),
		sessions: map[*session]struct{}{}, live: map[string]int{}, gates: map[string]*joinGate{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	opts := socket.DefaultServerOptions()
	opts.SetPath(cfg.Path)
	opts.SetServeClient(false)
	// The deployed client speaks Engine.IO 3 (socket.io-client 2.x).
	opts.SetAllowEIO3(true)
	opts.SetPingInterval(cfg.PingInterval)
	opts.SetPingTimeout(cfg.PingTimeout)
	opts.SetConnectTimeout(cfg.ConnectTimeout)
	opts.SetMaxHttpBufferSize(int64(cfg.MaxMessageBytes))
	opts.SetTransports(types.NewSet(socket.Polling, socket.WebSocket))
	// Pages come from other origins (another port, often another host);
	// licences, not cookies, authorize.
	opts.SetCors(&types.Cors{Origin: "*"})
	s.io = socket.NewServer(nil, opts)
	s.io.Of(namespace, nil).On("connection", func(args ...any) {
		if sock, ok := args[0].(*socket.Socket); ok {
			s.connected(sock)
		}
	})
	s.handler = s.io.ServeHandler(nil)
	_ = s.io.Engine().On("connection", func(args ...any) {
		if conn, ok := args[0].(engine.Socket); ok {
			s.gate(conn)
		}
	})
	rooms.HandleRelay(video.RoomKnowledgeTalk, s.serveRelay)

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.janitor()
	}()
	s.log.Info("knowledgetalk ready", "path", cfg.Path, "namespace", namespace)
	return s, nil
}

// Handler serves socket.io (both Engine.IO generations, websocket and
// polling) at Config.Path.
func (s *Server) Handler() http.Handler { return s.handler }

// connected starts a session for a socket that joined /SignalServer.
func (s *Server) connected(sock *socket.Socket) {
	s.joined(sock.Conn())
	lang := s.cfg.Language
	if h := sock.Handshake(); h != nil {
		lang = handshakeLanguage(h, s.cfg.Language)
	}
	sess := newSession(s, socketConn{sock}, lang, string(sock.Id()))
	_ = sock.On(event, func(args ...any) { sess.handle(args) })
	_ = sock.On("disconnect", func(...any) { sess.dropped() })
	if !s.start(sess) {
		sock.Disconnect(true)
	}
}

// start runs sess's writer; false once the server is closing.
func (s *Server) start(sess *session) bool {
	return s.goOwned(func() { s.sessions[sess] = struct{}{} }, func() {
		sess.run()
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
	})
}

// goOwned runs fn on a goroutine Close waits for, after register (if not
// nil) under the server's lock; false once closing.
func (s *Server) goOwned(register, fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if register != nil {
		register()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

// roomKey is room id's room in the video registry: a kind of its own,
// scoped to the licence's company.
func roomKey(company int64, id string) video.RoomKey {
	return video.RoomKey{Company: strconv.FormatInt(company, 10), Kind: video.RoomKnowledgeTalk, Name: id}
}

// entered and exited count this node's sessions in room id; exited
// deletes the room once nobody is left in it anywhere (the real server
// deletes a room when its last member goes), unless the members went
// because this node is stopping: the room moves to another node with the
// next RoomJoin.
func (s *Server) entered(id string) {
	s.mu.Lock()
	s.live[id]++
	s.mu.Unlock()
}

func (s *Server) exited(company int64, id string) {
	s.mu.Lock()
	s.live[id]--
	last := s.live[id] <= 0
	if last {
		delete(s.live, id)
	}
	stopping := s.closed
	s.mu.Unlock()
	if stopping {
		return
	}
	if !last || len(s.rooms.Participants(roomKey(company, id))) > 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.StoreTimeout)
	defer cancel()
	if err := s.store.DeleteKTRoom(ctx, id); err != nil {
		s.log.Warn("delete emptied room", "room", id, "err", err)
	}
}

// janitor marks the rooms live here as active and deletes rooms idle for
// RoomTTL (never joined, or left behind by a node that died).
func (s *Server) janitor() {
	t := time.NewTicker(s.cfg.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		ids := make([]string, 0, len(s.live))
		for id := range s.live {
			ids = append(ids, id)
		}
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.StoreTimeout)
		now := s.now()
		if err := s.store.TouchKTRooms(ctx, ids, now); err != nil {
			s.log.Warn("mark live rooms", "err", err)
		}
		if n, err := s.store.DeleteIdleKTRooms(ctx, now.Add(-s.cfg.RoomTTL)); err != nil {
			s.log.Warn("delete idle rooms", "err", err)
		} else if n > 0 {
			s.log.Info("idle rooms deleted", "rooms", n)
		}
		cancel()
	}
}

// Close disconnects every client (their participants leave their rooms)
// and waits for the sessions and the janitor.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.close("shutdown")
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	s.cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.log.Warn("knowledgetalk sessions still open at shutdown")
	}
	closed := make(chan struct{})
	s.io.Close(func(error) { close(closed) })
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
	}
	s.log.Info("knowledgetalk stopped")
	return nil
}
