package video

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/igm/sockjs-go/v3/sockjs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cstalk/cstalk/broker"
)

// Server is the SFU, its room registry and the signaling front end.
type Server struct {
	cfg        Config
	auth       Authorizer
	log        *slog.Logger
	metrics    *metrics
	media      *media
	events     *events
	now        func() time.Time
	turnSecret string

	upgrader websocket.Upgrader
	sockjs   *sockjs.Handler
	// sockjsPolls is sockjs, with polls that race the previous one retried.
	sockjsPolls http.Handler
	// owners binds each SockJS session to the client address that opened it.
	owners *broker.SessionOwners

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines the server started; Add only under mu while !closed
	conns  sync.WaitGroup // sessions being served

	mu       sync.Mutex
	rooms    map[RoomKey]*room
	sessions map[*session]struct{}
	// relays serve relayed connections of other front ends' room kinds.
	relays map[RoomKind]RelayHandler
	closed bool
}

// New builds a Server. reg receives the video metrics; log gets
// component=video.
func New(cfg Config, auth Authorizer, reg prometheus.Registerer, log *slog.Logger) (*Server, error) {
	if auth == nil {
		return nil, errorf("an Authorizer is required")
	}
	if err := cfg.validate(); err != nil {
		return nil, errorf("config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "video")
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, auth: auth, log: log, metrics: m, now: clock(cfg),
		rooms: map[RoomKey]*room{}, sessions: map[*session]struct{}{}, relays: map[RoomKind]RelayHandler{}}
	s.turnSecret = cfg.TURNSecret
	if s.turnSecret == "" && cfg.TURN.Enabled {
		// Only this process checks the credentials, so a secret of its own
		// is enough; a shared one is needed only with external TURN servers.
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, errorf("turn secret: %w", err)
		}
		s.turnSecret = hex.EncodeToString(b[:])
		cfg.TURNSecret = s.turnSecret
	}
	if s.media, err = newMedia(cfg, log); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.events = newEvents(cfg.OnEvent, m.eventsDropped.Inc)
	if cfg.OnEvent != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.events.run(s.ctx)
		}()
	}
	if cfg.Placement != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runPlacement(cfg.Placement)
		}()
	}
	// Tokens, not cookies, authorize signaling, so any page origin may
	// connect (the customer app is served from elsewhere).
	s.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true },
		ReadBufferSize: 4096, WriteBufferSize: 4096}
	opts := sockjs.DefaultOptions
	opts.CheckOrigin = func(*http.Request) bool { return true }
	opts.RawWebsocket = false // /signal/websocket is served by serveWS
	if cfg.SockJSURL != "" {
		opts.SockJSURL = cfg.SockJSURL
	}
	s.owners = broker.NewSessionOwners("/signal", cfg.SockJSAnyAddress, nil)
	s.sockjs = sockjs.NewHandler("/signal", opts, func(ss sockjs.Session) {
		defer s.owners.Bind(ss.ID(), ss.Request())()
		t := &sockjsTransport{s: ss, maxMessage: cfg.MaxMessageBytes}
		s.newSession(t, ss.Request()).serve()
	})
	s.sockjsPolls = broker.RetryRefusedPolls(s.sockjs)
	log.Info("video ready", "codec", cfg.VideoCodec, "udp_mux_port", cfg.UDPMuxPort,
		"udp_ports", [2]uint16{cfg.UDPPortMin, cfg.UDPPortMax}, "nat_1to1", cfg.NAT1To1IPs, "turn", cfg.TURN.Enabled)
	return s, nil
}

// Handler serves /signal (plain WebSocket), /signal/websocket (the same),
// /signal/... (SockJS: info, iframe, websocket, xhr, xhr_streaming,
// eventsource, htmlfile, jsonp), GET /video/ice-servers and GET
// /video/relay (signaling relayed by the other nodes of a cluster).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/signal", s.serveWS)
	mux.HandleFunc("/signal/websocket", s.serveWS)
	mux.HandleFunc("/signal/", s.serveSockJS)
	mux.HandleFunc("GET /video/ice-servers", s.serveICEServers)
	mux.HandleFunc("GET "+RelayPath, s.serveRelay)
	return mux
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "websocket upgrade expected", http.StatusUpgradeRequired)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	s.newSession(newWSTransport(ws, s.cfg), r).serve()
}

func (s *Server) serveSockJS(w http.ResponseWriter, r *http.Request) {
	if isSockJSWebSocket(r.URL.Path[len("/signal"):]) {
		if !websocket.IsWebSocketUpgrade(r) {
			http.Error(w, `Can "Upgrade" only to "WebSocket".`, http.StatusBadRequest)
			return
		}
		ws, err := s.upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		t := &sockjsWSTransport{wsTransport: newWSTransport(ws, s.cfg)}
		if err := t.wsTransport.Send([]byte("o")); err != nil {
			_ = ws.Close()
			return
		}
		s.newSession(t, r).serve()
		return
	}
	if !s.owners.Allow(w, r) {
		return
	}
	// sockjs-go decodes a whole xhr_send or jsonp_send body; bound it first.
	r.Body = http.MaxBytesReader(w, r.Body, int64(2*s.cfg.MaxMessageBytes+1024))
	s.sockjsPolls.ServeHTTP(w, r)
}

func (s *Server) addSession(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.sessions[sess] = struct{}{}
	s.conns.Add(1)
	return true
}

func (s *Server) removeSession(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	s.conns.Done()
}

// goOwned runs fn on a goroutine Close waits for; false once closing.
func (s *Server) goOwned(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

// Participants lists the members of room key in join order (nil when no
// such room is open).
func (s *Server) Participants(key RoomKey) []Member {
	s.mu.Lock()
	r := s.rooms[key]
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []Member{}
	for _, p := range r.othersLocked(nil) {
		out = append(out, p.member())
	}
	return out
}

// Rooms lists the open rooms, sorted by company, kind and name.
func (s *Server) Rooms() []RoomKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RoomKey, 0, len(s.rooms))
	for k := range s.rooms {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b RoomKey) int {
		return cmp.Or(cmp.Compare(a.Company, b.Company), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// CloseRoom ends room key (a call ended from chat), on whichever node it
// lives: every participant gets {"id":"error","code":"roomClosed"} and is
// disconnected. It returns how many participants were in it on this node.
func (s *Server) CloseRoom(key RoomKey) int {
	n := s.closeLocal(key, CodeRoomClosed)
	if pl := s.cfg.Placement; pl != nil {
		// The room may live on another node; whichever hosts it closes it.
		ctx, cancel := context.WithTimeout(context.Background(), placementTimeout)
		defer cancel()
		if err := pl.AnnounceClose(ctx, key); err != nil {
			s.log.Error("announce room close", "room", key.String(), "err", err)
		}
	}
	return n
}

// closeLocal ends room key if it lives on this node.
func (s *Server) closeLocal(key RoomKey, code string) int {
	s.mu.Lock()
	r := s.rooms[key]
	s.mu.Unlock()
	if r == nil {
		return 0
	}
	return r.closeAll(code)
}

// ICEServers returns the ICE servers (with fresh TURN credentials) for a
// client known as userID, for front ends other than /signal.
func (s *Server) ICEServers(userID string) []ICEServer { return s.iceServers(userID) }

// Close ends every room and connection (clients are told the server is
// shutting down), stops the TURN server and waits for the goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.closeAll(CodeShutdown)
	}
	for _, sess := range sessions {
		sess.fail(fatalError(CodeShutdown))
	}
	// Sessions end within the close handshake's grace; a stuck one is not
	// worth holding shutdown for.
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.log.Warn("signaling connections still open at shutdown")
	}
	s.media.close()
	s.cancel()
	s.wg.Wait()
	s.log.Info("video stopped")
	return nil
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
