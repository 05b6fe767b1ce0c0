// Command cstalk-healthcheck probes a cstalk node from inside its container.
// The distroless image has no shell, curl or wget, so the Dockerfile's
// HEALTHCHECK runs this instead: it GETs http://127.0.0.1:PORT/healthz (or
// the path given as its argument, e.g. /readyz) and exits 0 on 200, 1
// otherwise. PORT comes from CSTALK_ADDR, as the server's does.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	path := "/healthz"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := probe(ctx, probeURL(os.Getenv("CSTALK_ADDR"), path)); err != nil {
		fmt.Fprintf(os.Stderr, "cstalk-healthcheck: %v\n", err)
		os.Exit(1)
	}
}

// probeURL turns the server's listen address into a URL on loopback: the
// probe runs beside the server, whatever interface it listens on.
func probeURL(addr, path string) string {
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = "", "8080"
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return "http://" + net.JoinHostPort(host, port) + path
}

func probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
