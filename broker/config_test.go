package broker

import (
	"strings"
	"testing"
	"time"
)

func TestConfigNormalize(t *testing.T) {
	cfg, err := Config{Path: "ws/", PrivateDestination: "/user/me", AppPrefixes: []string{"/app/"}, MaxFrameSize: 1000, MaxHeaderLine: 5000}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultConfig()
	if cfg.Path != "/ws" || cfg.PrivateDestination != "user/me" || cfg.AppPrefixes[0] != "app/" || cfg.BrokerPrefixes[0] != "sub/" {
		t.Fatalf("destinations not normalized: %+v", cfg)
	}
	if cfg.MaxHeaderLine != 1000 || cfg.MaxHeaders != d.MaxHeaders || cfg.OutboundQueue != d.OutboundQueue ||
		cfg.ConnectTimeout != d.ConnectTimeout || cfg.ContentType != d.ContentType || cfg.SockJSHeartbeat != 25*time.Second {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	prefixes := []string{"/sub/"}
	if _, err := (Config{BrokerPrefixes: prefixes}).normalize(); err != nil || prefixes[0] != "/sub/" {
		t.Fatalf("the caller's slice changed: %v %q", err, prefixes)
	}
	for _, bad := range []Config{
		{ContentType: "text/plain;x=a:b"},
		{AppPrefixes: []string{"/"}},
		{BrokerPrefixes: []string{""}},
		{HeartbeatSend: -time.Second},
	} {
		if _, err := bad.normalize(); err == nil || !strings.HasPrefix(err.Error(), "broker: config:") {
			t.Errorf("%+v: error %v", bad, err)
		}
	}
	if _, err := New(Config{ContentType: "a\nb"}, &testApp{}, NewMemoryBus(), nil, nil); err == nil {
		t.Fatal("New accepted a bad config")
	}
}
