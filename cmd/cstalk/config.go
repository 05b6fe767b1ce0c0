package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
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
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		Addr:             ":8080",
		DB:               "sqlite:./data/cstalk.db",
		Zone:             "Asia/Seoul",
		UploadDir:        "./data/uploads",
		LogFormat:        "auto",
		LogLevel:         "info",
		ShutdownTimeout:  15 * time.Second,
		MaxFrameBytes:    256 << 10,
		MaxMessageBytes:  32 << 10,
		MaxSubscriptions: 64,
		Heartbeat:        10 * time.Second,
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
	return errors.Join(errs...)
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
