package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cstalk/cstalk/chat"
	"github.com/cstalk/cstalk/cmd/cstalk/internal/httpguard"
	"github.com/cstalk/cstalk/video"
	"github.com/cstalk/cstalk/video/guide"
	"github.com/cstalk/cstalk/video/recording"
)

// serveConfig is everything `cstalk serve` can be told. Defaults live in
// defaultServeConfig; environment variables override them and flags override
// both, so a container can be configured by env and a developer by flags.
type serveConfig struct {
	Addr             string
	DB               string
	Redis            string
	JWTSecret        string
	Demo             bool
	Zone             string
	UploadDir        string
	RequireSigned    bool
	LogFormat        string
	LogLevel         string
	ShutdownTimeout  time.Duration
	MaxFrameBytes    int
	MaxMessageBytes  int
	MaxSubscriptions int
	Heartbeat        time.Duration
	// FrameTimeout and MaxUnfinishedFrameBytes bound the STOMP frames that
	// have begun to arrive: each in time, all together in memory.
	FrameTimeout            time.Duration
	MaxUnfinishedFrameBytes int
	// LobbyWindow is the least time between two deliveries of one lobby
	// state (RELOAD, a room's RELOAD_READY, ONLINE/OFFLINE) to a console;
	// ChatEventRate and ChatEventBurst a connection's allowance of events.
	LobbyWindow    time.Duration
	ChatEventRate  float64
	ChatEventBurst int
	// Video: the SFU's host-candidate range ("" = any port), the public
	// address(es) it announces, STUN servers handed to clients, and the
	// embedded TURN server (off while TURNAddr is empty).
	VideoUDPPorts string
	VideoPublicIP string
	// VideoNodeAddr is host:port the other nodes reach this node's HTTP
	// listener on, for relayed signaling (empty: derived from the
	// listener); VideoRoomLease is how long a dead node's rooms wait to be
	// taken over. Both matter only with --redis.
	VideoNodeAddr  string
	VideoRoomLease time.Duration
	VideoSTUNURLs  string
	VideoTURNURLs  string
	TURNAddr       string
	TURNSecret     string
	TURNRelayPorts string
	// TURNStaticUsers are fixed "user:password" pairs, comma-separated,
	// the embedded TURN server accepts beside expiring credentials.
	TURNStaticUsers string
	// Guide sessions: the time a ticket buys, the warning before it runs
	// out, how long a mate may take to answer, and the mobile-push webhook
	// (off while GuideWebhookURL is empty).
	GuideTicketDuration time.Duration
	GuideWarnBefore     time.Duration
	GuideRequestTimeout time.Duration
	GuideWebhookURL     string
	GuideWebhookSecret  string
	// HTTP: deadlines of plain requests, of uploads and downloads, of an
	// idle keep-alive connection; open connections per client address,
	// and the load balancers whose X-Forwarded-For names the client.
	HTTPReadTimeout  time.Duration
	HTTPWriteTimeout time.Duration
	HTTPIdleTimeout  time.Duration
	UploadTimeout    time.Duration
	MaxConnsPerIP    int
	TrustedProxies   string
	// Password checks of one login name per client address, and from all
	// addresses, in each LoginWindow (counseling and guide logins alike).
	LoginAttempts        int
	LoginAttemptsPerName int
	LoginWindow          time.Duration
	// StoreTimeout bounds each store call (a database that stops
	// answering fails requests with 503 instead of holding them).
	StoreTimeout time.Duration
	// SockJSBindAddress binds a SockJS session to the client address that
	// opened it.
	SockJSBindAddress bool
	// MetricsAddr, when set, is the internal listener /metrics is served
	// on instead of Addr.
	MetricsAddr string
	// Uploads and bytes of one uploader and of one room per UploadWindow;
	// how long an upload no message refers to is kept; how many uploads
	// decode at once and what memory one may take.
	UploadWindow           time.Duration
	UploadsPerUploader     int
	UploadBytesPerUploader int
	UploadsPerRoom         int
	UploadBytesPerRoom     int
	UnreferencedUploadTTL  time.Duration
	UploadDecodes          int
	UploadDecodeBytes      int
	// Recording: whether calls are recorded where a company did not choose,
	// where the files go, and the ceilings of one participant's file.
	RecordCalls          bool
	RecordingsDir        string
	RecordingMaxBytes    int
	RecordingMaxDuration time.Duration
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		Addr:                    ":8080",
		DB:                      "sqlite:./data/cstalk.db",
		Zone:                    "Asia/Seoul",
		UploadDir:               "./data/uploads",
		LogFormat:               "auto",
		LogLevel:                "info",
		ShutdownTimeout:         15 * time.Second,
		VideoRoomLease:          10 * time.Second,
		MaxFrameBytes:           256 << 10,
		MaxMessageBytes:         32 << 10,
		MaxSubscriptions:        64,
		Heartbeat:               10 * time.Second,
		FrameTimeout:            30 * time.Second,
		MaxUnfinishedFrameBytes: 32 << 20,
		LobbyWindow:             time.Second,
		ChatEventRate:           chat.DefaultConfig().EventRate,
		ChatEventBurst:          chat.DefaultConfig().EventBurst,
		TURNRelayPorts:          "49160-49200",
		GuideTicketDuration:     guide.DefaultConfig().TicketDuration,
		GuideWarnBefore:         guide.DefaultConfig().WarnBefore,
		GuideRequestTimeout:     guide.DefaultConfig().RequestTimeout,
		HTTPReadTimeout:         15 * time.Second,
		HTTPWriteTimeout:        30 * time.Second,
		HTTPIdleTimeout:         60 * time.Second,
		UploadTimeout:           3 * time.Minute,
		MaxConnsPerIP:           256,
		TrustedProxies:          "127.0.0.1/8,::1",
		LoginAttempts:           10,
		LoginAttemptsPerName:    100,
		LoginWindow:             15 * time.Minute,
		SockJSBindAddress:       true,
		StoreTimeout:            5 * time.Second,
		UploadWindow:            chat.DefaultConfig().Uploads.Window,
		UploadsPerUploader:      int(chat.DefaultConfig().Uploads.PerUploader),
		UploadBytesPerUploader:  int(chat.DefaultConfig().Uploads.BytesPerUploader),
		UploadsPerRoom:          int(chat.DefaultConfig().Uploads.PerRoom),
		UploadBytesPerRoom:      int(chat.DefaultConfig().Uploads.BytesPerRoom),
		UnreferencedUploadTTL:   24 * time.Hour,
		UploadDecodes:           chat.DefaultConfig().DecodeConcurrency,
		UploadDecodeBytes:       int(chat.DefaultConfig().MaxDecodeBytes),
		RecordingsDir:           "./data/recordings",
		RecordingMaxBytes:       int(recording.DefaultLimits.MaxBytes),
		RecordingMaxDuration:    recording.DefaultLimits.MaxDuration,
	}
}

// option binds one setting to its flag and environment variable.
type option struct {
	flag, env, usage string
	value            flag.Value
}

// options lists every setting of cfg; the order is the order of --help.
func (cfg *serveConfig) options() []option {
	return []option{
		{"addr", "CSTALK_ADDR", "listen address", (*stringValue)(&cfg.Addr)},
		{"db", "CSTALK_DB", "store: sqlite:PATH (embedded) or mysql://user:pass@host:port/dbname", (*stringValue)(&cfg.DB)},
		{"store-timeout", "CSTALK_STORE_TIMEOUT", "how long one store call may take; past it the request is answered 503 (REST) or ERROR (STOMP)", (*durationValue)(&cfg.StoreTimeout)},
		{"redis", "CSTALK_REDIS", "empty: in-process bus, one node; redis://host:port/db: fan-out across nodes", (*stringValue)(&cfg.Redis)},
		{"jwt-secret", "CSTALK_JWT_SECRET", "token signing key (default: generated once and kept beside the SQLite file; required with --redis)", (*stringValue)(&cfg.JWTSecret)},
		{"demo", "CSTALK_DEMO", "create the demo companies and accounts if they are missing", (*boolValue)(&cfg.Demo)},
		{"zone", "CSTALK_ZONE", "time zone of dates on the wire", (*stringValue)(&cfg.Zone)},
		{"upload-dir", "CSTALK_UPLOAD_DIR", "where uploaded images are kept", (*stringValue)(&cfg.UploadDir)},
		{"require-signed-customers", "CSTALK_REQUIRE_SIGNED_CUSTOMERS", "refuse customers that do not use the signed CONNECT mode", (*boolValue)(&cfg.RequireSigned)},
		{"log-format", "CSTALK_LOG_FORMAT", "auto (JSON unless on a terminal), json or text", (*stringValue)(&cfg.LogFormat)},
		{"log-level", "CSTALK_LOG_LEVEL", "debug, info, warn or error", (*stringValue)(&cfg.LogLevel)},
		{"shutdown-timeout", "CSTALK_SHUTDOWN_TIMEOUT", "how long SIGTERM may take to drain", (*durationValue)(&cfg.ShutdownTimeout)},
		{"max-frame-bytes", "CSTALK_MAX_FRAME_BYTES", "largest STOMP frame a client may send", (*intValue)(&cfg.MaxFrameBytes)},
		{"max-message-bytes", "CSTALK_MAX_MESSAGE_BYTES", "largest chat message text", (*intValue)(&cfg.MaxMessageBytes)},
		{"max-subscriptions", "CSTALK_MAX_SUBSCRIPTIONS", "subscriptions per connection", (*intValue)(&cfg.MaxSubscriptions)},
		{"heartbeat", "CSTALK_HEARTBEAT", "STOMP heart-beat interval the server offers", (*durationValue)(&cfg.Heartbeat)},
		{"frame-timeout", "CSTALK_FRAME_TIMEOUT", "how long a STOMP frame may take to arrive once it has begun, whatever the heart-beats", (*durationValue)(&cfg.FrameTimeout)},
		{"lobby-window", "CSTALK_LOBBY_WINDOW", "least time between two deliveries of one lobby state (RELOAD, a room's RELOAD_READY, a customer's ONLINE/OFFLINE) to a console; the last state always arrives", (*durationValue)(&cfg.LobbyWindow)},
		{"chat-event-rate", "CSTALK_CHAT_EVENT_RATE", "chat events (SENDs to pub/socket/message, TYPING aside) one connection may send per second on average (0: no limit)", (*floatValue)(&cfg.ChatEventRate)},
		{"chat-event-burst", "CSTALK_CHAT_EVENT_BURST", "chat events one connection may send at once before --chat-event-rate applies", (*intValue)(&cfg.ChatEventBurst)},
		{"max-unfinished-frame-bytes", "CSTALK_MAX_UNFINISHED_FRAME_BYTES", "bytes the unfinished STOMP frames of all connections may hold together", (*intValue)(&cfg.MaxUnfinishedFrameBytes)},
		{"video-udp-ports", "CSTALK_VIDEO_UDP_PORTS", "UDP port range of the SFU's host candidates, e.g. 50000-50100 (empty: any port)", (*stringValue)(&cfg.VideoUDPPorts)},
		{"video-public-ip", "CSTALK_VIDEO_PUBLIC_IP", "public address(es), comma-separated, announced in ICE candidates behind 1:1 NAT; also the embedded TURN server's address", (*stringValue)(&cfg.VideoPublicIP)},
		{"video-node-addr", "CSTALK_VIDEO_NODE_ADDR", "host:port the other nodes reach this node on to relay video signaling to the rooms it hosts (with --redis; empty: this host's first non-loopback address and the --addr port)", (*stringValue)(&cfg.VideoNodeAddr)},
		{"video-room-lease", "CSTALK_VIDEO_ROOM_LEASE", "how long a video room stays its node's in Redis without a renewal: a dead node's rooms move after it (with --redis)", (*durationValue)(&cfg.VideoRoomLease)},
		{"video-stun-urls", "CSTALK_VIDEO_STUN_URLS", "STUN servers handed to video clients, comma-separated (e.g. stun:stun.example.com:3478)", (*stringValue)(&cfg.VideoSTUNURLs)},
		{"video-turn-urls", "CSTALK_VIDEO_TURN_URLS", "external TURN servers (coturn with use-auth-secret and --turn-secret) handed to video clients, comma-separated (e.g. turn:turn.example.com:3478)", (*stringValue)(&cfg.VideoTURNURLs)},
		{"turn-addr", "CSTALK_TURN_ADDR", "UDP listen address of the embedded TURN server, e.g. :3478 (empty: no embedded TURN)", (*stringValue)(&cfg.TURNAddr)},
		{"turn-secret", "CSTALK_TURN_SECRET", "shared secret of TURN credentials, the same on every node and in an external coturn (empty: random per process)", (*stringValue)(&cfg.TURNSecret)},
		{"turn-relay-ports", "CSTALK_TURN_RELAY_PORTS", "UDP port range the embedded TURN server relays on", (*stringValue)(&cfg.TURNRelayPorts)},
		{"turn-static-users", "CSTALK_TURN_STATIC_USERS", "fixed TURN users user:password, comma-separated, the embedded TURN server accepts beside expiring credentials (for clients with a TURN user in their configuration)", (*stringValue)(&cfg.TURNStaticUsers)},
		{"guide-ticket-duration", "CSTALK_GUIDE_TICKET_DURATION", "guide time one ticket buys", (*durationValue)(&cfg.GuideTicketDuration)},
		{"guide-warn-before", "CSTALK_GUIDE_WARN_BEFORE", "how long before a guide's time runs out both sides are warned", (*durationValue)(&cfg.GuideWarnBefore)},
		{"guide-request-timeout", "CSTALK_GUIDE_REQUEST_TIMEOUT", "how long a mate has to approve a guide request", (*durationValue)(&cfg.GuideRequestTimeout)},
		{"guide-webhook-url", "CSTALK_GUIDE_WEBHOOK_URL", "mobile-push gateway every guide event is POSTed to (empty: none)", (*stringValue)(&cfg.GuideWebhookURL)},
		{"guide-webhook-secret", "CSTALK_GUIDE_WEBHOOK_SECRET", "HMAC-SHA256 key of the webhook's X-Cstalk-Signature header (required with --guide-webhook-url)", (*stringValue)(&cfg.GuideWebhookSecret)},
		{"http-read-timeout", "CSTALK_HTTP_READ_TIMEOUT", "how long a REST request's body may take to arrive (streams and WebSockets have none)", (*durationValue)(&cfg.HTTPReadTimeout)},
		{"http-write-timeout", "CSTALK_HTTP_WRITE_TIMEOUT", "how long a REST answer may take to be written (streams and WebSockets have none)", (*durationValue)(&cfg.HTTPWriteTimeout)},
		{"http-idle-timeout", "CSTALK_HTTP_IDLE_TIMEOUT", "how long an idle keep-alive connection stays open", (*durationValue)(&cfg.HTTPIdleTimeout)},
		{"upload-timeout", "CSTALK_UPLOAD_TIMEOUT", "how long an upload or a file download may take", (*durationValue)(&cfg.UploadTimeout)},
		{"max-conns-per-ip", "CSTALK_MAX_CONNS_PER_IP", "open connections one client address may hold (0: no limit); trusted proxies are not counted", (*intValue)(&cfg.MaxConnsPerIP)},
		{"login-attempts", "CSTALK_LOGIN_ATTEMPTS", "password checks of one login name from one client address per --login-window (counseling and guide logins; shared by every node with --redis)", (*intValue)(&cfg.LoginAttempts)},
		{"login-attempts-per-name", "CSTALK_LOGIN_ATTEMPTS_PER_NAME", "password checks of one login name from all addresses per --login-window (0: no limit)", (*intValue)(&cfg.LoginAttemptsPerName)},
		{"login-window", "CSTALK_LOGIN_WINDOW", "the window the login checks are counted in", (*durationValue)(&cfg.LoginWindow)},
		{"sockjs-bind-address", "CSTALK_SOCKJS_BIND_ADDRESS", "a SockJS session's HTTP requests (xhr_send, polls, streams) are refused from another client address than the one that opened it; false for proxies that change a client's address and are not in --trusted-proxies", (*boolValue)(&cfg.SockJSBindAddress)},
		{"metrics-addr", "CSTALK_METRICS_ADDR", "listen address of /metrics alone, e.g. 127.0.0.1:9090, so it stays off the public port, which then answers 404 for it (empty: /metrics on --addr)", (*stringValue)(&cfg.MetricsAddr)},
		{"upload-window", "CSTALK_UPLOAD_WINDOW", "the window upload quotas are counted in", (*durationValue)(&cfg.UploadWindow)},
		{"uploads-per-uploader", "CSTALK_UPLOADS_PER_UPLOADER", "uploads one customer or counselor may make per --upload-window (0: no limit; shared by every node with --redis)", (*intValue)(&cfg.UploadsPerUploader)},
		{"upload-bytes-per-uploader", "CSTALK_UPLOAD_BYTES_PER_UPLOADER", "bytes one customer or counselor may upload per --upload-window (0: no limit)", (*intValue)(&cfg.UploadBytesPerUploader)},
		{"uploads-per-room", "CSTALK_UPLOADS_PER_ROOM", "uploads into one room per --upload-window, whoever makes them (0: no limit)", (*intValue)(&cfg.UploadsPerRoom)},
		{"upload-bytes-per-room", "CSTALK_UPLOAD_BYTES_PER_ROOM", "bytes uploaded into one room per --upload-window (0: no limit)", (*intValue)(&cfg.UploadBytesPerRoom)},
		{"unreferenced-upload-ttl", "CSTALK_UNREFERENCED_UPLOAD_TTL", "an upload no stored message refers to is removed once this old (0: kept forever)", (*durationValue)(&cfg.UnreferencedUploadTTL)},
		{"upload-decodes", "CSTALK_UPLOAD_DECODES", "uploads this node decodes at once (the others wait)", (*intValue)(&cfg.UploadDecodes)},
		{"upload-decode-bytes", "CSTALK_UPLOAD_DECODE_BYTES", "memory decoding one upload and making its thumbnail may take, estimated from the image's header (more: 413)", (*intValue)(&cfg.UploadDecodeBytes)},
		{"record-calls", "CSTALK_RECORD_CALLS", "record calls (each participant's camera and microphone to WebM) in companies that did not choose in their settings", (*boolValue)(&cfg.RecordCalls)},
		{"recordings-dir", "CSTALK_RECORDINGS_DIR", "where call recordings are kept (directories 0700, files 0600)", (*stringValue)(&cfg.RecordingsDir)},
		{"recording-max-bytes", "CSTALK_RECORDING_MAX_BYTES", "largest file of one participant's recording; at it the recording stops, the call goes on", (*intValue)(&cfg.RecordingMaxBytes)},
		{"recording-max-duration", "CSTALK_RECORDING_MAX_DURATION", "longest recording of one participant; at it the recording stops, the call goes on", (*durationValue)(&cfg.RecordingMaxDuration)},
		{"trusted-proxies", "CSTALK_TRUSTED_PROXIES", "load balancers (addresses or CIDR prefixes, comma-separated) whose X-Forwarded-For names the client; their own connections are not limited per address", (*stringValue)(&cfg.TrustedProxies)},
	}
}

// parseServeConfig layers env over defaults and args over env. Unknown flags,
// malformed values and inconsistent settings are errors.
func parseServeConfig(args []string, getenv func(string) string, usageOut io.Writer) (serveConfig, error) {
	cfg := defaultServeConfig()
	opts := cfg.options()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	for _, o := range opts {
		if v := getenv(o.env); v != "" {
			if err := o.value.Set(v); err != nil {
				return cfg, fmt.Errorf("%s=%q: %w", o.env, v, err)
			}
		}
		fs.Var(o.value, o.flag, o.usage)
	}
	fs.Usage = func() { printUsage(usageOut, "cstalk serve [flags]", "Runs the server.", opts) }
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return cfg, cfg.validate()
}

func (cfg serveConfig) validate() error {
	var errs []error
	if !strings.HasPrefix(cfg.DB, "sqlite:") && !strings.HasPrefix(cfg.DB, "mysql://") {
		errs = append(errs, fmt.Errorf("--db %q: want sqlite:PATH or mysql://user:pass@host:port/dbname", cfg.DB))
	}
	if cfg.Redis != "" && !strings.HasPrefix(cfg.Redis, "redis://") && !strings.HasPrefix(cfg.Redis, "rediss://") {
		errs = append(errs, fmt.Errorf("--redis %q: want redis://host:port/db", cfg.Redis))
	}
	if cfg.Redis != "" && cfg.JWTSecret == "" {
		errs = append(errs, errors.New("--jwt-secret is required with --redis: every node must sign tokens with the same key"))
	}
	if _, err := time.LoadLocation(cfg.Zone); err != nil {
		errs = append(errs, fmt.Errorf("--zone %q: %w", cfg.Zone, err))
	}
	switch cfg.LogFormat {
	case "auto", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: want auto, json or text", cfg.LogFormat))
	}
	switch cfg.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", cfg.LogLevel))
	}
	if cfg.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--shutdown-timeout must be positive"))
	}
	if cfg.MaxFrameBytes < 1024 {
		errs = append(errs, errors.New("--max-frame-bytes must be at least 1024"))
	}
	if cfg.MaxMessageBytes < 1 || cfg.MaxMessageBytes >= cfg.MaxFrameBytes {
		errs = append(errs, errors.New("--max-message-bytes must be positive and below --max-frame-bytes"))
	}
	if cfg.MaxSubscriptions < 1 {
		errs = append(errs, errors.New("--max-subscriptions must be positive"))
	}
	if cfg.Heartbeat < 0 {
		errs = append(errs, errors.New("--heartbeat must not be negative"))
	}
	if cfg.LobbyWindow <= 0 {
		errs = append(errs, errors.New("--lobby-window must be positive"))
	}
	if cfg.ChatEventRate < 0 || (cfg.ChatEventRate > 0 && cfg.ChatEventBurst < 1) {
		errs = append(errs, errors.New("--chat-event-rate must not be negative (0: no limit), and --chat-event-burst at least 1"))
	}
	if cfg.MaxUnfinishedFrameBytes < cfg.MaxFrameBytes {
		errs = append(errs, errors.New("--max-unfinished-frame-bytes must be at least --max-frame-bytes"))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--http-read-timeout", cfg.HTTPReadTimeout}, {"--http-write-timeout", cfg.HTTPWriteTimeout},
		{"--http-idle-timeout", cfg.HTTPIdleTimeout}, {"--upload-timeout", cfg.UploadTimeout},
		{"--frame-timeout", cfg.FrameTimeout}, {"--login-window", cfg.LoginWindow},
		{"--store-timeout", cfg.StoreTimeout}, {"--upload-window", cfg.UploadWindow}} {
		if d.v < time.Second {
			errs = append(errs, fmt.Errorf("%s must be at least 1s", d.flag))
		}
	}
	if cfg.LoginAttempts < 1 {
		errs = append(errs, errors.New("--login-attempts must be at least 1"))
	}
	if cfg.LoginAttemptsPerName < 0 {
		errs = append(errs, errors.New("--login-attempts-per-name must not be negative (0: no limit)"))
	}
	if err := cfg.validateUploads(); err != nil {
		errs = append(errs, err)
	}
	if cfg.RecordingsDir == "" {
		errs = append(errs, errors.New("--recordings-dir must not be empty"))
	}
	if cfg.RecordingMaxBytes < 1<<20 {
		errs = append(errs, errors.New("--recording-max-bytes must be at least 1048576 (1 MiB)"))
	}
	if cfg.RecordingMaxDuration < time.Second {
		errs = append(errs, errors.New("--recording-max-duration must be at least 1s"))
	}
	if cfg.MaxConnsPerIP < 0 {
		errs = append(errs, errors.New("--max-conns-per-ip must not be negative (0: no limit)"))
	}
	if cfg.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(cfg.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-addr %q: want host:port or :port", cfg.MetricsAddr))
		}
	}
	if _, err := httpguard.ParseProxies(cfg.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("--trusted-proxies: %w", err))
	}
	if _, err := cfg.videoConfig(); err != nil {
		errs = append(errs, err)
	}
	if cfg.VideoRoomLease < 300*time.Millisecond {
		errs = append(errs, errors.New("--video-room-lease must be at least 300ms"))
	}
	if cfg.VideoNodeAddr != "" {
		if host, port, err := net.SplitHostPort(cfg.VideoNodeAddr); err != nil || host == "" || port == "" || port == "0" {
			errs = append(errs, fmt.Errorf("--video-node-addr %q: want host:port", cfg.VideoNodeAddr))
		}
	}
	if err := cfg.validateGuide(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validateUploads checks the upload quota and decode flags.
func (cfg serveConfig) validateUploads() error {
	var errs []error
	if cfg.UploadsPerUploader < 0 || cfg.UploadsPerRoom < 0 {
		errs = append(errs, errors.New("--uploads-per-uploader and --uploads-per-room must not be negative (0: no limit)"))
	}
	// A byte quota below one upload's limit would refuse some files always.
	maxUpload := int(chat.DefaultConfig().MaxUploadBytes)
	for _, b := range []struct {
		flag string
		v    int
	}{{"--upload-bytes-per-uploader", cfg.UploadBytesPerUploader}, {"--upload-bytes-per-room", cfg.UploadBytesPerRoom}} {
		if b.v != 0 && b.v < maxUpload {
			errs = append(errs, fmt.Errorf("%s must be 0 (no limit) or at least one upload's limit, %d", b.flag, maxUpload))
		}
	}
	if cfg.UnreferencedUploadTTL != 0 && cfg.UnreferencedUploadTTL < time.Minute {
		errs = append(errs, errors.New("--unreferenced-upload-ttl must be 0 (keep) or at least 1m: an upload is sent as a message after it is stored"))
	}
	if cfg.UploadDecodes < 1 {
		errs = append(errs, errors.New("--upload-decodes must be at least 1"))
	}
	if cfg.UploadDecodeBytes < 1<<20 {
		errs = append(errs, errors.New("--upload-decode-bytes must be at least 1048576 (1 MiB)"))
	}
	return errors.Join(errs...)
}

// validateGuide checks the guide flags under their own names.
func (cfg serveConfig) validateGuide() error {
	var errs []error
	if cfg.GuideTicketDuration < time.Second {
		errs = append(errs, errors.New("--guide-ticket-duration must be at least 1s"))
	}
	if cfg.GuideWarnBefore <= 0 || cfg.GuideWarnBefore >= cfg.GuideTicketDuration {
		errs = append(errs, errors.New("--guide-warn-before must be positive and shorter than --guide-ticket-duration"))
	}
	if cfg.GuideRequestTimeout < time.Second {
		errs = append(errs, errors.New("--guide-request-timeout must be at least 1s"))
	}
	if cfg.GuideWebhookURL != "" {
		u, err := url.Parse(cfg.GuideWebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--guide-webhook-url %q: want an http(s) URL", cfg.GuideWebhookURL))
		}
		if len(cfg.GuideWebhookSecret) < 16 {
			errs = append(errs, errors.New("--guide-webhook-secret of at least 16 bytes is required with --guide-webhook-url: the gateway checks every push's signature"))
		}
	}
	return errors.Join(errs...)
}

// videoConfig turns the video flags into the SFU's settings; bad ranges and
// addresses are reported under their flag names.
func (cfg serveConfig) videoConfig() (video.Config, error) {
	v := video.DefaultConfig()
	var errs []error
	if cfg.VideoUDPPorts != "" {
		lo, hi, err := portRange(cfg.VideoUDPPorts)
		if err != nil {
			errs = append(errs, fmt.Errorf("--video-udp-ports %q: %w", cfg.VideoUDPPorts, err))
		}
		v.UDPPortMin, v.UDPPortMax = lo, hi
	}
	v.NAT1To1IPs = splitList(cfg.VideoPublicIP)
	for _, ip := range v.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("--video-public-ip %q: not an IP address", ip))
		}
	}
	v.STUNURLs = splitList(cfg.VideoSTUNURLs)
	for _, u := range v.STUNURLs {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "stuns:") {
			errs = append(errs, fmt.Errorf("--video-stun-urls %q: want stun:host:port", u))
		}
	}
	v.TURNURLs = splitList(cfg.VideoTURNURLs)
	for _, u := range v.TURNURLs {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			errs = append(errs, fmt.Errorf("--video-turn-urls %q: want turn:host:port", u))
		}
	}
	if len(v.TURNURLs) > 0 && cfg.TURNSecret == "" {
		errs = append(errs, errors.New("--video-turn-urls needs --turn-secret, the secret the TURN servers share"))
	}
	v.TURNSecret = cfg.TURNSecret
	if cfg.TURNAddr != "" {
		if _, _, err := net.SplitHostPort(cfg.TURNAddr); err != nil {
			errs = append(errs, fmt.Errorf("--turn-addr %q: want host:port or :port", cfg.TURNAddr))
		}
		if len(v.NAT1To1IPs) == 0 {
			errs = append(errs, errors.New("--turn-addr needs --video-public-ip: the address clients reach the TURN server on"))
		} else {
			v.TURN.PublicIP = v.NAT1To1IPs[0]
		}
		lo, hi, err := portRange(cfg.TURNRelayPorts)
		if err != nil {
			errs = append(errs, fmt.Errorf("--turn-relay-ports %q: %w", cfg.TURNRelayPorts, err))
		}
		v.TURN.Enabled, v.TURN.ListenAddr = true, cfg.TURNAddr
		v.TURN.RelayPortMin, v.TURN.RelayPortMax = lo, hi
	}
	for _, pair := range splitList(cfg.TURNStaticUsers) {
		user, pass, ok := strings.Cut(pair, ":")
		if !ok || user == "" || pass == "" {
			errs = append(errs, errors.New("--turn-static-users: want user:password pairs, comma-separated"))
			continue
		}
		if v.TURN.StaticUsers == nil {
			v.TURN.StaticUsers = map[string]string{}
		}
		v.TURN.StaticUsers[user] = pass
	}
	if len(v.TURN.StaticUsers) > 0 && cfg.TURNAddr == "" {
		errs = append(errs, errors.New("--turn-static-users needs --turn-addr: only the embedded TURN server takes them"))
	}
	return v, errors.Join(errs...)
}

// portRange parses "MIN-MAX" (or one port) into a UDP range.
func portRange(v string) (lo, hi uint16, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(v), "-")
	if !ok {
		b = a
	}
	min, errA := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	max, errB := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if errA != nil || errB != nil || min == 0 || min > max {
		return 0, 0, errors.New("want MIN-MAX, two ports with 1 <= MIN <= MAX <= 65535")
	}
	return uint16(min), uint16(max), nil
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func printUsage(w io.Writer, synopsis, what string, opts []option) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags (each also read from its environment variable):\n", synopsis, what)
	for _, o := range opts {
		def := o.value.String()
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  --%-26s %s\n      %s (default %s)\n", o.flag, o.env, o.usage, def)
	}
}

// flagHelp prints the flags of a simple subcommand in the same style.
func flagHelp(w io.Writer, fs *flag.FlagSet) {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, n := range names {
		f := fs.Lookup(n)
		fmt.Fprintf(w, "  --%-12s %s (default %q)\n", n, f.Usage, f.DefValue)
	}
}

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("not a boolean: %q", s)
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not a whole number: %q", s)
	}
	*v = intValue(n)
	return nil
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

type floatValue float64

func (v *floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number: %q", s)
	}
	*v = floatValue(f)
	return nil
}
func (v *floatValue) String() string { return strconv.FormatFloat(float64(*v), 'g', -1, 64) }

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (e.g. 15s): %q", s)
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }
