package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/broker/redisbus"
	"github.com/cstalk/cstalk/chat"
	"github.com/cstalk/cstalk/chat/redislimit"
	"github.com/cstalk/cstalk/chat/redispresence"
	"github.com/cstalk/cstalk/cmd/cstalk/internal/httpguard"
	"github.com/cstalk/cstalk/store"
	"github.com/cstalk/cstalk/video"
	"github.com/cstalk/cstalk/video/guide"
	"github.com/cstalk/cstalk/video/knowledgetalk"
	"github.com/cstalk/cstalk/video/recording"
	"github.com/cstalk/cstalk/video/videoredis"
	"github.com/cstalk/cstalk/web"
)

// server is one cstalk node: the store, the bus, the broker, chat and the
// HTTP surface, built by newServer and nothing else.
type server struct {
	cfg   serveConfig
	log   *slog.Logger
	store *store.Store
	bus   broker.Bus
	// presence is the cluster-wide presence with --redis; nil on one node.
	presence *redispresence.Presence
	// limiter counts logins and uploads for the cluster with --redis;
	// nil on one node.
	limiter *redislimit.Limiter
	broker  *broker.Server
	chat    *chat.Service
	video   *video.Server
	// recorder records the calls of companies that want it.
	recorder *recording.Recorder
	// kt is the KnowledgeTalk signal server (socket.io at /socket.io/).
	kt    *knowledgetalk.Server
	guide *guide.Service
	// guidePush is the mobile-push webhook with --guide-webhook-url.
	guidePush *guide.Webhook
	// guideRelay carries guide events between nodes over guideBus, a Redis
	// bus of its own (the broker's delivery loop is the broker's); both
	// nil on one node.
	guideRelay *guide.Relay
	guideBus   broker.Bus
	// roomBus carries the store's room changes between nodes sharing a
	// MySQL database (with --redis).
	roomBus *redisbus.Bus
	http    *http.Server
	ln      net.Listener
	// metricsHTTP serves /metrics on metricsLn with --metrics-addr; nil
	// while /metrics is served on ln.
	metricsHTTP *http.Server
	metricsLn   net.Listener
	// proxies are the load balancers whose X-Forwarded-For is believed.
	proxies httpguard.Proxies
	// placement records which node hosts each video room, with --redis.
	placement *videoredis.Placement
}

func serve(ctx context.Context, cfg serveConfig, logOut io.Writer) error {
	log, err := newLogger(cfg, logOut)
	if err != nil {
		return usageError{err}
	}
	srv, err := newServer(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.Run(ctx)
}

// newServer builds a node and binds its listener, so the caller knows the
// address (cfg.Addr may be ":0") before Run.
func newServer(ctx context.Context, cfg serveConfig, log *slog.Logger) (_ *server, err error) {
	s := &server{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.proxies, err = httpguard.ParseProxies(cfg.TrustedProxies); err != nil {
		return nil, usageError{fmt.Errorf("--trusted-proxies: %w", err)}
	}
	zone, err := time.LoadLocation(cfg.Zone)
	if err != nil {
		return nil, fmt.Errorf("zone %q: %w", cfg.Zone, err)
	}
	if s.store, err = store.Open(ctx, cfg.DB, log); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err = s.store.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate store: %w", err)
	}
	s.store.SetCallTimeout(cfg.StoreTimeout)
	if strings.HasPrefix(cfg.DB, "mysql:") {
		// The message contexts stay in memory, kept current by this node's
		// writes and, with --redis, by the other nodes' on a bus of their own.
		var feed store.RoomFeed
		if cfg.Redis != "" {
			if s.roomBus, err = redisbus.New(ctx, redisbus.Options{URL: cfg.Redis, Prefix: "cstalk:store:", Log: log}); err != nil {
				return nil, fmt.Errorf("room feed bus: %w", err)
			}
			feed = s.roomBus
		}
		if err = s.store.CacheRoomContexts(ctx, feed); err != nil {
			return nil, err
		}
	}
	secret, err := jwtSecret(cfg)
	if err != nil {
		return nil, err
	}

	// Counts that must hold for the whole cluster (login checks, upload
	// quotas) live in Redis when there is one.
	// On one node uploads count apart from logins: the memory limiter
	// forgets windows once it holds too many, and a flood of customers
	// must not make it forget a login's.
	var limiter, uploadLimiter chat.Limiter = chat.NewMemoryLimiter(nil), chat.NewMemoryLimiter(nil)
	if cfg.Redis != "" {
		if s.limiter, err = redislimit.New(ctx, redislimit.Options{URL: cfg.Redis, Prefix: "cstalk:"}); err != nil {
			return nil, fmt.Errorf("redis limiter: %w", err)
		}
		limiter, uploadLimiter = s.limiter, s.limiter
	}
	logins := chat.LoginThrottle{Limiter: limiter, PerAddress: int64(cfg.LoginAttempts),
		PerName: int64(cfg.LoginAttemptsPerName), Window: cfg.LoginWindow}

	chatCfg := chat.DefaultConfig()
	chatCfg.Logins = logins
	chatCfg.Uploads = chat.UploadQuota{Limiter: uploadLimiter, Window: cfg.UploadWindow,
		PerUploader: int64(cfg.UploadsPerUploader), BytesPerUploader: int64(cfg.UploadBytesPerUploader),
		PerRoom: int64(cfg.UploadsPerRoom), BytesPerRoom: int64(cfg.UploadBytesPerRoom)}
	chatCfg.DecodeConcurrency = cfg.UploadDecodes
	chatCfg.MaxDecodeBytes = int64(cfg.UploadDecodeBytes)
	chatCfg.Zone = zone
	chatCfg.JWTSecret = secret
	chatCfg.RequireSignedCustomers = cfg.RequireSigned
	chatCfg.MaxMessageBytes = cfg.MaxMessageBytes
	chatCfg.UploadDir = cfg.UploadDir
	chatCfg.UploadTimeout = cfg.UploadTimeout
	chatCfg.EventRate, chatCfg.EventBurst = cfg.ChatEventRate, cfg.ChatEventBurst
	chatCfg.RecordCalls = cfg.RecordCalls
	if s.chat, err = chat.New(chatCfg, s.store, log); err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	if cfg.Demo {
		if err = s.chat.SeedDemo(ctx); err != nil {
			return nil, fmt.Errorf("demo data: %w", err)
		}
		if err = knowledgetalk.SeedDemo(ctx, s.store, time.Now()); err != nil {
			return nil, err
		}
		log.Info("demo data ready", "logins", "agent1, agent2, agent3, admin1", "password", "demo1234",
			"knowledgetalk_cp_code", knowledgetalk.DemoCPCode)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(
		collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler),
	), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(s.store.Collectors()...)
	if s.roomBus != nil {
		reg.MustRegister(s.roomBus.Collector("rooms"))
	}
	if cfg.Redis == "" {
		s.bus = broker.NewMemoryBus()
	} else {
		bus, err := redisbus.New(ctx, redisbus.Options{URL: cfg.Redis, Prefix: "cstalk:", Log: log})
		if err != nil {
			return nil, fmt.Errorf("redis bus: %w", err)
		}
		s.bus = bus
		reg.MustRegister(bus.Collector("chat"))
		// Presence shares the bus's node id so both read alike in logs.
		s.presence, err = redispresence.New(ctx, redispresence.Options{
			URL: cfg.Redis, Prefix: "cstalk:", NodeID: bus.NodeID(), Log: log, Registerer: reg,
			Gone: s.chat.AttendeeGone,
		})
		if err != nil {
			return nil, fmt.Errorf("redis presence: %w", err)
		}
		s.chat.UsePresence(s.presence)
	}
	brokerCfg := broker.DefaultConfig()
	brokerCfg.MaxFrameSize = cfg.MaxFrameBytes
	brokerCfg.MaxSubscriptions = cfg.MaxSubscriptions
	brokerCfg.HeartbeatSend = cfg.Heartbeat
	brokerCfg.HeartbeatRecv = cfg.Heartbeat
	brokerCfg.FrameTimeout = cfg.FrameTimeout
	brokerCfg.MaxPendingBytes = cfg.MaxUnfinishedFrameBytes
	brokerCfg.CoalesceWindow = cfg.LobbyWindow
	brokerCfg.SockJSAnyAddress = !cfg.SockJSBindAddress
	if s.broker, err = broker.New(brokerCfg, s.chat, s.bus, reg, log); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	s.chat.Bind(s.broker)

	videoCfg, err := cfg.videoConfig()
	if err != nil {
		return nil, usageError{err}
	}
	videoCfg.SockJSAnyAddress = !cfg.SockJSBindAddress
	guideCfg := guide.DefaultConfig()
	guideCfg.JWTSecret = secret
	guideCfg.Logins = logins
	guideCfg.TicketDuration = cfg.GuideTicketDuration
	guideCfg.WarnBefore = cfg.GuideWarnBefore
	guideCfg.RequestTimeout = cfg.GuideRequestTimeout
	var guidePush guide.Notifiers
	if cfg.GuideWebhookURL != "" {
		s.guidePush = guide.NewWebhook(cfg.GuideWebhookURL, []byte(cfg.GuideWebhookSecret), 1024, log)
		guidePush = append(guidePush, s.guidePush)
	}
	if cfg.Redis != "" {
		guideBus, err := redisbus.New(ctx, redisbus.Options{URL: cfg.Redis, Prefix: "cstalk:guide:", Log: log})
		if err != nil {
			return nil, fmt.Errorf("guide relay bus: %w", err)
		}
		s.guideBus = guideBus
		reg.MustRegister(guideBus.Collector("guide"))
		s.guideRelay = guide.NewRelay(s.guideBus, log)
		guidePush = append(guidePush, s.guideRelay)
	}
	if s.guide, err = guide.New(guideCfg, s.store, guidePush, nil, log); err != nil {
		return nil, fmt.Errorf("guide: %w", err)
	}
	if s.guideRelay != nil {
		if err = s.guideRelay.Start(ctx, s.guide); err != nil {
			return nil, err
		}
	}
	if err = s.guide.Recover(ctx); err != nil {
		return nil, fmt.Errorf("guide: recover open sessions: %w", err)
	}
	if cfg.Demo {
		if err = s.guide.SeedDemo(ctx); err != nil {
			return nil, fmt.Errorf("guide demo data: %w", err)
		}
	}

	chatSvc, guideSvc := s.chat, s.guide
	// Set before the server listens, so before any event.
	var recorder *recording.Recorder
	videoCfg.OnEvent = func(ev video.Event) {
		// Events arrive one at a time on the video server's goroutine;
		// recording one is a few store writes.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if ev.Room.Kind == video.RoomChat {
			chatSvc.HandleVideoEvent(ctx, chat.VideoEvent{
				Kind: string(ev.Kind), CompanyID: ev.Room.Company, RoomID: ev.Room.ID(), UserID: ev.User.UserID,
				Customer: ev.User.Customer, At: ev.At, Duration: ev.Duration, Reason: ev.Reason,
			})
		}
		if ev.Kind == video.EventLeft {
			// A side leaving a guide's room ends the guide.
			guideSvc.ParticipantLeft(ctx, ev.Room, ev.User.UserID, ev.Reason)
		}
		recorder.HandleEvent(ev)
	}
	// Bound before the video rooms, whose placement records this node's
	// address.
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "cstalk_http_connections_refused_total",
		Help: "Connections closed at once because their address had --max-conns-per-ip open."})
	reg.MustRegister(refused)
	s.ln = httpguard.LimitListener(s.ln, cfg.MaxConnsPerIP, s.proxies, refused.Inc)
	if cfg.Redis != "" {
		addr, err := nodeAddr(cfg.VideoNodeAddr, s.ln.Addr())
		if err != nil {
			return nil, err
		}
		if s.placement, err = videoredis.New(ctx, videoredis.Options{URL: cfg.Redis, Prefix: "cstalk:", Addr: addr,
			Lease: cfg.VideoRoomLease, Log: log}); err != nil {
			return nil, fmt.Errorf("video placement: %w", err)
		}
		videoCfg.Placement = s.placement
		videoCfg.RelaySecret = relaySecret(secret)
	}
	// Guide rooms (g-…) are decided by the guide service, the rest by chat.
	if s.video, err = video.New(videoCfg, s.guide.VideoAuthorizer(videoAuthorizer(s.chat)), reg, log); err != nil {
		return nil, fmt.Errorf("video: %w", err)
	}
	s.chat.UseVideo(chatCalls{s.video})
	if s.recorder, err = newRecorder(cfg, s.store, s.chat, s.video, log); err != nil {
		return nil, err
	}
	recorder = s.recorder
	s.guide.UseVideo(s.video)
	if s.kt, err = knowledgetalk.New(knowledgetalk.DefaultConfig(), s.video, s.store, log); err != nil {
		return nil, fmt.Errorf("knowledgetalk: %w", err)
	}

	// Every request gets the short deadlines of a REST call; the routes
	// below that stream or move files say otherwise.
	dl := httpguard.Deadlines{Read: cfg.HTTPReadTimeout, Write: cfg.HTTPWriteTimeout, TransferTime: cfg.UploadTimeout}
	mux := http.NewServeMux()
	webPages := web.Handler(log)
	mux.Handle("/ws", dl.SockJS(s.broker.Handler()))
	mux.Handle("/ws/", dl.SockJS(s.broker.Handler()))
	api := s.chat.APIHandler()
	mux.Handle("/api/", api)
	mux.Handle("POST /api/uploads", dl.Transfer(api))
	mux.Handle("/files/", dl.Transfer(api))
	// The deployed counselor console logs in and reads its profile here.
	mux.Handle("/auth/", api)
	mux.Handle("/api/admin/", s.chat.AdminAPIHandler())
	rh := s.recorder.Handler(recordingAdmins(s.chat))
	mux.Handle("GET /api/admin/recordings", rh)
	mux.Handle("GET /api/admin/recordings/{id}", rh)
	// A <video> streams and seeks the file for as long as it plays.
	mux.Handle("GET /api/admin/recordings/{id}/files/{fileId}", dl.Transfer(rh))
	vh := s.video.Handler()
	mux.Handle("/signal", dl.SockJS(vh))
	mux.Handle("/signal/", dl.SockJS(vh))
	mux.Handle("GET /video/ice-servers", vh)
	mux.Handle("GET "+video.RelayPath, dl.LongLived(vh))
	mux.Handle("/socket.io/", dl.SocketIO(s.kt.Handler()))
	gh := s.guide.Handler()
	mux.Handle("/guide/", gh)
	mux.Handle("GET /guide/events", dl.LongLived(gh))
	// The guide page itself; its API lives under /guide/.
	mux.Handle("/guide", webPages)
	mux.Handle("/eval", gh)
	mux.Handle("/", webPages)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.ready)
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	if cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", metrics)
	} else {
		// Kept internal: the public port knows no /metrics (the pages'
		// catch-all would otherwise answer it).
		mux.Handle("/metrics", http.NotFoundHandler())
		internal := http.NewServeMux()
		internal.Handle("GET /metrics", dl.Plain(metrics))
		s.metricsHTTP = &http.Server{
			Handler:           internal,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       cfg.HTTPIdleTimeout,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		if s.metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("listen %s (metrics): %w", cfg.MetricsAddr, err)
		}
	}
	s.http = &http.Server{
		Handler:           s.proxies.ClientAddr(dl.Plain(mux)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// sweepInterval is how often uploads are swept: often enough that none
// outlives its TTL by more than a quarter, at most hourly.
func sweepInterval(ttl time.Duration) time.Duration {
	return min(ttl/4, time.Hour)
}

// ready answers 200 only while the store and the bus both answer: a load
// balancer should send no new clients to a node that cannot store or fan out.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var problems []string
	if err := s.store.Ping(ctx); err != nil {
		problems = append(problems, "store: "+err.Error())
	}
	if err := s.bus.Ready(ctx); err != nil {
		problems = append(problems, "bus: "+err.Error())
	}
	if err := s.broker.Ready(ctx); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		s.log.Warn("not ready", "problems", problems)
		http.Error(w, "not ready\n", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

// Run serves until ctx ends, then drains: no new connections, every client
// told why it is being closed, in-flight requests finished, within
// cfg.ShutdownTimeout.
func (s *server) Run(ctx context.Context) error {
	s.log.Info("listening", "addr", s.ln.Addr().String(), "version", version)
	if ttl := s.cfg.UnreferencedUploadTTL; ttl > 0 {
		// Stopped before Close closes the store it reads.
		sweeper := s.chat.StartUploadSweeper(ttl, sweepInterval(ttl))
		defer sweeper.Stop()
	}
	served := make(chan error, 2)
	servers := 1
	go func() { served <- fmt.Errorf("http: %w", s.http.Serve(s.ln)) }()
	if s.metricsHTTP != nil {
		servers++
		s.log.Info("metrics listening", "addr", s.metricsLn.Addr().String())
		go func() { served <- fmt.Errorf("metrics http: %w", s.metricsHTTP.Serve(s.metricsLn)) }()
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	drainCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	// Stop accepting first so no client connects after it was told to leave.
	if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("close listener: %w", err))
	}
	if err := s.broker.Shutdown(drainCtx, "server shutting down"); err != nil {
		errs = append(errs, fmt.Errorf("drain broker: %w", err))
	}
	// Guide clocks stop and /guide/events streams end, or http.Shutdown
	// would wait for them.
	if err := s.guide.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close guide: %w", err))
	}
	if s.guidePush != nil {
		if err := s.guidePush.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close guide webhook: %w", err))
		}
	}
	// Calls end with a reason the pages show; their sockets are hijacked,
	// so http.Shutdown would not wait for them. KnowledgeTalk's members
	// leave their rooms before the rooms close.
	if err := s.kt.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close knowledgetalk: %w", err))
	}
	if err := s.video.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close video: %w", err))
	}
	// The rooms' last events are in: the files are finished.
	s.recorder.Close()
	// Shutdown closes the listeners Serve still tracks and returns that
	// error after draining; s.ln was closed above, so a Serve that has not
	// yet returned reports net.ErrClosed, which is no failure.
	if err := s.http.Shutdown(drainCtx); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("drain http: %w", err))
	}
	if s.metricsHTTP != nil {
		if err := s.metricsHTTP.Shutdown(drainCtx); err != nil {
			errs = append(errs, fmt.Errorf("drain metrics http: %w", err))
		}
	}
	for range servers {
		<-served
	}
	s.log.Info("stopped")
	return errors.Join(errs...)
}

// Close releases what newServer acquired; safe on a partly built server.
func (s *server) Close() error {
	var errs []error
	for _, ln := range []net.Listener{s.ln, s.metricsLn} {
		if ln != nil {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	if s.guide != nil {
		errs = append(errs, s.guide.Close())
	}
	if s.guidePush != nil {
		errs = append(errs, s.guidePush.Close())
	}
	if s.guideRelay != nil {
		errs = append(errs, s.guideRelay.Close())
	}
	if s.guideBus != nil {
		errs = append(errs, s.guideBus.Close())
	}
	if s.kt != nil {
		errs = append(errs, s.kt.Close())
	}
	if s.video != nil {
		errs = append(errs, s.video.Close())
	}
	if s.placement != nil {
		errs = append(errs, s.placement.Close())
	}
	if s.recorder != nil {
		s.recorder.Close()
	}
	if s.presence != nil {
		errs = append(errs, s.presence.Close())
	}
	if s.limiter != nil {
		errs = append(errs, s.limiter.Close())
	}
	if s.bus != nil {
		errs = append(errs, s.bus.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	// After the store, which publishes its last changes on it.
	if s.roomBus != nil {
		errs = append(errs, s.roomBus.Close())
	}
	return errors.Join(errs...)
}

// jwtSecret returns the configured signing key, or one generated on first
// start and kept beside the SQLite file so tokens survive restarts.
func jwtSecret(cfg serveConfig) ([]byte, error) {
	if cfg.JWTSecret != "" {
		if len(cfg.JWTSecret) < 16 {
			return nil, usageError{errors.New("--jwt-secret must be at least 16 characters")}
		}
		return []byte(cfg.JWTSecret), nil
	}
	dir := "./data"
	if path, ok := strings.CutPrefix(cfg.DB, "sqlite:"); ok && !strings.HasPrefix(path, ":memory:") {
		dir = filepath.Dir(path)
	}
	file := filepath.Join(dir, "jwt.secret")
	if b, err := os.ReadFile(file); err == nil && len(b) >= 32 {
		return b, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("jwt secret: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("jwt secret: %w", err)
	}
	secret := []byte(hex.EncodeToString(raw))
	if err := os.WriteFile(file, secret, 0o600); err != nil {
		return nil, fmt.Errorf("jwt secret: %w", err)
	}
	return secret, nil
}

func newLogger(cfg serveConfig, out io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := out.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(out, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(out, opts)), nil
}

// nodeAddr is where the other nodes reach this one: the configured
// address, or the listener's with its unspecified host replaced by this
// host's first non-loopback address.
func nodeAddr(configured string, ln net.Addr) (string, error) {
	if configured != "" {
		return configured, nil
	}
	host, port, err := net.SplitHostPort(ln.String())
	if err != nil {
		return "", fmt.Errorf("node address: %w", err)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return ln.String(), nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("node address: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return net.JoinHostPort(n.IP.String(), port), nil
		}
	}
	return "", errors.New("node address: no non-loopback IPv4 address; set --video-node-addr")
}

// relaySecret is the key nodes sign relayed video signaling with: derived
// from the token key every node shares, never the token key itself.
func relaySecret(jwtSecret []byte) []byte {
	m := hmac.New(sha256.New, jwtSecret)
	m.Write([]byte("cstalk video relay"))
	return m.Sum(nil)
}

// videoAuthorizer lets the video server ask chat who may join a room: chat
// knows tokens, rooms and companies; the room naming and errors are video's.
func videoAuthorizer(c *chat.Service) video.Authorizer {
	return video.AuthorizerFunc(func(ctx context.Context, token, userID, communityID, roomID string) (video.Identity, error) {
		kind, ref, ok := video.ParseRoomID(roomID)
		if !ok {
			return video.Identity{}, fmt.Errorf("room %q: %w", roomID, video.ErrForbidden)
		}
		p, err := c.AuthorizeVideoJoin(ctx, chat.VideoJoin{
			Token: token, UserID: userID, CommunityID: communityID, ChatRoom: kind == video.RoomChat, Ref: ref,
		})
		switch {
		case errors.Is(err, chat.ErrInvalidToken):
			return video.Identity{}, fmt.Errorf("%w: %w", video.ErrUnauthorized, err)
		case errors.Is(err, chat.ErrVideoForbidden):
			return video.Identity{}, fmt.Errorf("%w: %w", video.ErrForbidden, err)
		case err != nil:
			return video.Identity{}, err
		}
		return video.Identity{UserID: p.UserID, Name: p.Name, CommunityID: p.CommunityID, Customer: p.Customer}, nil
	})
}

// chatCalls gives chat the calls of its rooms: chat room roomID's call is
// video room r-{roomID} of the room's company.
type chatCalls struct{ v *video.Server }

func (c chatCalls) CloseCall(companyID, roomID int64) int {
	return c.v.CloseRoom(video.RoomKey{Company: strconv.FormatInt(companyID, 10), Kind: video.RoomChat,
		Name: strconv.FormatInt(roomID, 10)})
}

// newRecorder records calls where the company's setting (or --record-calls)
// says so; chat writes the notice in the chat room.
func newRecorder(cfg serveConfig, st *store.Store, c *chat.Service, v *video.Server, log *slog.Logger) (*recording.Recorder, error) {
	rec, err := recording.New(recording.Config{
		Dir:    cfg.RecordingsDir,
		Limits: recording.Limits{MaxBytes: int64(cfg.RecordingMaxBytes), MaxDuration: cfg.RecordingMaxDuration},
		Records: func(ctx context.Context, room video.RoomKey) (bool, error) {
			company, err := strconv.ParseInt(room.Company, 10, 64)
			if err != nil || company <= 0 {
				// Guide sessions belong to no company: the server's default.
				return cfg.RecordCalls, nil
			}
			return c.RecordsCalls(ctx, company)
		},
		Started: func(ctx context.Context, room video.RoomKey, r recording.Recording) {
			if r.ChatRoomID != nil {
				c.RecordingStarted(ctx, r.CompanyID, *r.ChatRoomID)
			}
		},
	}, st, v, log)
	if err != nil {
		return nil, fmt.Errorf("recordings: %w", err)
	}
	return rec, nil
}

// recordingAdmins lets only a company's administrators at its recordings.
func recordingAdmins(c *chat.Service) recording.Admins {
	return recording.AdminsFunc(func(r *http.Request) (int64, error) {
		m, err := c.AdminOf(r)
		switch {
		case errors.Is(err, chat.ErrInvalidToken):
			return 0, fmt.Errorf("%w: %w", recording.ErrUnauthorized, err)
		case errors.Is(err, chat.ErrNotAdmin):
			return 0, fmt.Errorf("%w: %w", recording.ErrForbidden, err)
		case err != nil:
			return 0, err
		}
		return m.CompanyID, nil
	})
}
