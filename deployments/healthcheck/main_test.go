package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProbeURL(t *testing.T) {
	for _, tc := range []struct{ addr, path, want string }{
		{"", "/healthz", "http://127.0.0.1:8080/healthz"},
		{":8080", "/healthz", "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:9000", "readyz", "http://127.0.0.1:9000/readyz"},
		{"[::]:9001", "/readyz", "http://127.0.0.1:9001/readyz"},
		{"10.1.2.3:8081", "/healthz", "http://10.1.2.3:8081/healthz"},
		{"[::1]:8082", "/healthz", "http://[::1]:8082/healthz"},
	} {
		if got := probeURL(tc.addr, tc.path); got != tc.want {
			t.Errorf("probeURL(%q, %q) = %q, want %q", tc.addr, tc.path, got, tc.want)
		}
	}
}

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			io.WriteString(w, "ok\n")
		case "/readyz":
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := probe(ctx, srv.URL+"/healthz"); err != nil {
		t.Errorf("healthy node: %v", err)
	}
	err := probe(ctx, srv.URL+"/readyz")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "not ready") {
		t.Errorf("unready node: got %v, want an error naming 503 and the body", err)
	}
	srv.Close()
	if err := probe(ctx, srv.URL+"/healthz"); err == nil {
		t.Error("a node that is down passed the probe")
	}
}
