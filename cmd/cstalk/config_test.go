package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cstalk/cstalk/chat"
	"github.com/cstalk/cstalk/video"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestServeConfigLayering(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want func(c serveConfig) bool
	}{
		{"defaults", nil, nil, func(c serveConfig) bool {
			return c.Addr == ":8080" && c.DB == "sqlite:./data/cstalk.db" && c.Redis == "" && !c.Demo && c.Zone == "Asia/Seoul"
		}},
		{"env over default", map[string]string{"CSTALK_ADDR": ":9000", "CSTALK_DEMO": "true", "CSTALK_SHUTDOWN_TIMEOUT": "3s"}, nil,
			func(c serveConfig) bool { return c.Addr == ":9000" && c.Demo && c.ShutdownTimeout == 3*time.Second }},
		{"flag over env", map[string]string{"CSTALK_ADDR": ":9000", "CSTALK_DEMO": "true"}, []string{"--addr", "127.0.0.1:7000", "--demo=false"},
			func(c serveConfig) bool { return c.Addr == "127.0.0.1:7000" && !c.Demo }},
		{"redis with secret", nil, []string{"--redis", "redis://127.0.0.1:6379/0", "--jwt-secret", "0123456789abcdef0123"},
			func(c serveConfig) bool { return c.Redis == "redis://127.0.0.1:6379/0" }},
		{"mysql", map[string]string{"CSTALK_DB": "mysql://root:@127.0.0.1:3306/test"}, nil,
			func(c serveConfig) bool { return c.DB == "mysql://root:@127.0.0.1:3306/test" }},
		{"guide defaults", nil, nil, func(c serveConfig) bool {
			return c.GuideTicketDuration == 10*time.Minute && c.GuideWarnBefore == 15*time.Second &&
				c.GuideRequestTimeout == 30*time.Second && c.GuideWebhookURL == ""
		}},
		{"guide settings", map[string]string{"CSTALK_GUIDE_TICKET_DURATION": "5m", "CSTALK_GUIDE_WEBHOOK_URL": "https://push.example.com/cstalk",
			"CSTALK_GUIDE_WEBHOOK_SECRET": "0123456789abcdef"}, []string{"--guide-warn-before", "30s"},
			func(c serveConfig) bool {
				return c.GuideTicketDuration == 5*time.Minute && c.GuideWarnBefore == 30*time.Second &&
					c.GuideWebhookURL == "https://push.example.com/cstalk"
			}},
		{"unfinished frames", map[string]string{"CSTALK_FRAME_TIMEOUT": "10s"}, []string{"--max-unfinished-frame-bytes", "1048576"},
			func(c serveConfig) bool {
				return c.FrameTimeout == 10*time.Second && c.MaxUnfinishedFrameBytes == 1<<20
			}},
		{"login throttle", map[string]string{"CSTALK_LOGIN_ATTEMPTS": "5", "CSTALK_LOGIN_WINDOW": "1h"}, []string{"--login-attempts-per-name", "0"},
			func(c serveConfig) bool {
				return c.LoginAttempts == 5 && c.LoginAttemptsPerName == 0 && c.LoginWindow == time.Hour
			}},
		{"amplification", map[string]string{"CSTALK_LOBBY_WINDOW": "2s", "CSTALK_CHAT_EVENT_RATE": "2.5"}, []string{"--chat-event-burst", "5"},
			func(c serveConfig) bool {
				return c.LobbyWindow == 2*time.Second && c.ChatEventRate == 2.5 && c.ChatEventBurst == 5
			}},
		{"http limits", map[string]string{"CSTALK_HTTP_READ_TIMEOUT": "5s", "CSTALK_MAX_CONNS_PER_IP": "64", "CSTALK_TRUSTED_PROXIES": "10.0.0.0/8"},
			[]string{"--http-idle-timeout", "2m", "--max-conns-per-ip", "0", "--upload-timeout", "1m"},
			func(c serveConfig) bool {
				return c.HTTPReadTimeout == 5*time.Second && c.HTTPWriteTimeout == 30*time.Second && c.HTTPIdleTimeout == 2*time.Minute &&
					c.MaxConnsPerIP == 0 && c.TrustedProxies == "10.0.0.0/8" && c.UploadTimeout == time.Minute
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c, err := parseServeConfig(tc.args, env(tc.env), &out)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !tc.want(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestServeConfigRejects(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		message string
	}{
		{"unknown flag", nil, []string{"--nope"}, "flag provided but not defined"},
		{"bad bool env", map[string]string{"CSTALK_DEMO": "maybe"}, nil, "CSTALK_DEMO"},
		{"bad duration", nil, []string{"--shutdown-timeout", "soon"}, "not a duration"},
		{"bad db", nil, []string{"--db", "postgres://x"}, "want sqlite:PATH or mysql://"},
		{"redis without secret", nil, []string{"--redis", "redis://127.0.0.1:6379/0"}, "--jwt-secret is required"},
		{"bad redis url", nil, []string{"--redis", "127.0.0.1:6379", "--jwt-secret", "0123456789abcdef"}, "want redis://"},
		{"bad zone", nil, []string{"--zone", "Mars/Olympus"}, "--zone"},
		{"stray argument", nil, []string{"extra"}, "unexpected argument"},
		{"bad udp range", map[string]string{"CSTALK_VIDEO_UDP_PORTS": "50100-50000"}, nil, "--video-udp-ports"},
		{"udp range not numbers", nil, []string{"--video-udp-ports", "low-high"}, "want MIN-MAX"},
		{"bad public ip", nil, []string{"--video-public-ip", "example.com"}, "--video-public-ip"},
		{"bad stun url", nil, []string{"--video-stun-urls", "turn:x:3478"}, "want stun:host:port"},
		{"bad turn url", nil, []string{"--video-turn-urls", "stun:x:3478", "--turn-secret", "s"}, "want turn:host:port"},
		{"turn urls without secret", map[string]string{"CSTALK_VIDEO_TURN_URLS": "turn:turn.example.com:3478"}, nil, "--video-turn-urls needs --turn-secret"},
		{"turn without public ip", map[string]string{"CSTALK_TURN_ADDR": ":3478"}, nil, "--turn-addr needs --video-public-ip"},
		{"bad turn addr", nil, []string{"--turn-addr", "3478", "--video-public-ip", "203.0.113.7"}, "--turn-addr"},
		{"bad relay range", nil, []string{"--turn-addr", ":3478", "--video-public-ip", "203.0.113.7", "--turn-relay-ports", "70000-70010"}, "--turn-relay-ports"},
		{"turn static user without password", nil, []string{"--turn-addr", ":3478", "--video-public-ip", "203.0.113.7", "--turn-static-users", "kpoint"}, "want user:password"},
		{"turn static users without turn", nil, []string{"--turn-static-users", "kpoint:kpoint01"}, "--turn-static-users needs --turn-addr"},
		{"guide ticket too short", nil, []string{"--guide-ticket-duration", "500ms"}, "--guide-ticket-duration must be at least 1s"},
		{"guide warning after the end", map[string]string{"CSTALK_GUIDE_TICKET_DURATION": "10s"}, []string{"--guide-warn-before", "10s"}, "shorter than --guide-ticket-duration"},
		{"guide request timeout", nil, []string{"--guide-request-timeout", "0s"}, "--guide-request-timeout"},
		{"guide webhook not http", nil, []string{"--guide-webhook-url", "ftp://push.example.com", "--guide-webhook-secret", "0123456789abcdef"}, "want an http(s) URL"},
		{"guide webhook without secret", map[string]string{"CSTALK_GUIDE_WEBHOOK_URL": "https://push.example.com/cstalk"}, nil, "--guide-webhook-secret of at least 16 bytes"},
		{"message above frame", nil, []string{"--max-frame-bytes", "2048", "--max-message-bytes", "4096"}, "below --max-frame-bytes"},
		{"frame timeout too short", nil, []string{"--frame-timeout", "10ms"}, "--frame-timeout must be at least 1s"},
		{"unfinished below one frame", nil, []string{"--max-unfinished-frame-bytes", "1000"}, "at least --max-frame-bytes"},
		{"no login attempts", nil, []string{"--login-attempts", "0"}, "--login-attempts must be at least 1"},
		{"login window", map[string]string{"CSTALK_LOGIN_WINDOW": "10ms"}, nil, "--login-window must be at least 1s"},
		{"lobby window", nil, []string{"--lobby-window", "0s"}, "--lobby-window must be positive"},
		{"event rate", nil, []string{"--chat-event-rate", "-1"}, "--chat-event-rate must not be negative"},
		{"event rate not a number", map[string]string{"CSTALK_CHAT_EVENT_RATE": "fast"}, nil, "not a number"},
		{"read timeout too short", nil, []string{"--http-read-timeout", "100ms"}, "--http-read-timeout must be at least 1s"},
		{"idle timeout zero", map[string]string{"CSTALK_HTTP_IDLE_TIMEOUT": "0s"}, nil, "--http-idle-timeout must be at least 1s"},
		{"negative conns per ip", nil, []string{"--max-conns-per-ip", "-1"}, "--max-conns-per-ip must not be negative"},
		{"bad trusted proxy", nil, []string{"--trusted-proxies", "lb.example.com"}, "--trusted-proxies"},
		{"negative upload count", nil, []string{"--uploads-per-room", "-1"}, "must not be negative"},
		{"byte quota below one upload", map[string]string{"CSTALK_UPLOAD_BYTES_PER_UPLOADER": "1000"}, nil, "--upload-bytes-per-uploader must be 0"},
		{"upload window", nil, []string{"--upload-window", "0s"}, "--upload-window must be at least 1s"},
		{"unreferenced ttl too short", nil, []string{"--unreferenced-upload-ttl", "5s"}, "--unreferenced-upload-ttl must be 0"},
		{"no decodes", nil, []string{"--upload-decodes", "0"}, "--upload-decodes must be at least 1"},
		{"decode bytes", nil, []string{"--upload-decode-bytes", "1000"}, "--upload-decode-bytes must be at least"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := parseServeConfig(tc.args, env(tc.env), &out)
			if err == nil || !strings.Contains(err.Error()+out.String(), tc.message) {
				t.Fatalf("want error containing %q, got %v (output %q)", tc.message, err, out.String())
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, "cstalk "},
		{[]string{"serve", "--help"}, 0, "CSTALK_JWT_SECRET"},
		{[]string{"serve", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"serve", "--redis", "redis://x:1/0"}, 2, "--jwt-secret is required"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{nil, 2, "a command is required"},
		{[]string{"member", "add", "--login", "x"}, 2, "--company is required"},
		{[]string{"member"}, 2, "want add or list"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, env(nil), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.out) {
			t.Errorf("cstalk %v: exit %d, output %q; want exit %d containing %q", tc.args, code, stdout.String()+stderr.String(), tc.code, tc.out)
		}
	}
}

func TestServeHelpListsEveryFlagWithEnvAndDefault(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--help"}, env(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	help := stderr.String()
	cfg := defaultServeConfig()
	for _, o := range cfg.options() {
		if !strings.Contains(help, "--"+o.flag) || !strings.Contains(help, o.env) {
			t.Errorf("help lacks --%s / %s:\n%s", o.flag, o.env, help)
		}
	}
	if !strings.Contains(help, "(default :8080)") || !strings.Contains(help, "(default sqlite:./data/cstalk.db)") {
		t.Errorf("help lacks defaults:\n%s", help)
	}
}

func TestServeConfigVideo(t *testing.T) {
	var out bytes.Buffer
	c, err := parseServeConfig(nil, env(map[string]string{
		"CSTALK_VIDEO_UDP_PORTS":   "50000-50100",
		"CSTALK_VIDEO_PUBLIC_IP":   "203.0.113.7, 198.51.100.2",
		"CSTALK_VIDEO_STUN_URLS":   "stun:stun.example.com:3478",
		"CSTALK_VIDEO_TURN_URLS":   "turn:turn.example.com:3478?transport=udp, turns:turn.example.com:5349",
		"CSTALK_TURN_ADDR":         ":3478",
		"CSTALK_TURN_SECRET":       "turn-secret",
		"CSTALK_TURN_RELAY_PORTS":  "49160-49200",
		"CSTALK_TURN_STATIC_USERS": "kpoint:kpoint01, other:p:w",
	}), &out)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	v, err := c.videoConfig()
	if err != nil {
		t.Fatalf("video config: %v", err)
	}
	if v.UDPPortMin != 50000 || v.UDPPortMax != 50100 {
		t.Errorf("udp ports %d-%d, want 50000-50100", v.UDPPortMin, v.UDPPortMax)
	}
	if len(v.NAT1To1IPs) != 2 || v.NAT1To1IPs[0] != "203.0.113.7" || v.NAT1To1IPs[1] != "198.51.100.2" {
		t.Errorf("public ips %q", v.NAT1To1IPs)
	}
	if len(v.STUNURLs) != 1 || v.STUNURLs[0] != "stun:stun.example.com:3478" {
		t.Errorf("stun urls %q", v.STUNURLs)
	}
	if len(v.TURNURLs) != 2 || v.TURNURLs[1] != "turns:turn.example.com:5349" {
		t.Errorf("turn urls %q", v.TURNURLs)
	}
	if !v.TURN.Enabled || v.TURN.ListenAddr != ":3478" || v.TURN.PublicIP != "203.0.113.7" ||
		v.TURN.RelayPortMin != 49160 || v.TURN.RelayPortMax != 49200 || v.TURNSecret != "turn-secret" {
		t.Errorf("turn %+v secret %q", v.TURN, v.TURNSecret)
	}
	if len(v.TURN.StaticUsers) != 2 || v.TURN.StaticUsers["kpoint"] != "kpoint01" || v.TURN.StaticUsers["other"] != "p:w" {
		t.Errorf("turn static users %q", v.TURN.StaticUsers)
	}

	// Defaults: any port, no public address, no embedded TURN.
	c, err = parseServeConfig([]string{"--video-udp-ports", "50000"}, env(nil), &out)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if v, err = c.videoConfig(); err != nil || v.TURN.Enabled || len(v.NAT1To1IPs) != 0 || v.UDPPortMin != 50000 || v.UDPPortMax != 50000 {
		t.Errorf("defaults: %+v, %v", v, err)
	}
}

// The room naming chat uses for a conversation's call is video's.
func TestVideoRoomOfChatRoom(t *testing.T) {
	if got, want := chat.VideoRoomID(42), video.ChatRoomID("42"); got != want {
		t.Fatalf("chat names the call of room 42 %q, video %q", got, want)
	}
}
