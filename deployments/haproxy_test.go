package deployments_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const installHAProxy = "apt-get install -y haproxy (Debian; .ci/run does it)"

func haproxyConfig(t *testing.T) string {
	t.Helper()
	return filepath.Join(dir(t), "haproxy", "haproxy.cfg")
}

// haproxySections splits the config into "keyword name" -> its lines.
func haproxySections(t *testing.T) map[string][]string {
	t.Helper()
	sections := map[string][]string{}
	var cur string
	for _, line := range strings.Split(string(readFile(t, haproxyConfig(t))), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			cur = strings.Join(strings.Fields(line), " ")
			sections[cur] = nil
			continue
		}
		sections[cur] = append(sections[cur], strings.Join(strings.Fields(line), " "))
	}
	return sections
}

// TestHAProxyConfigRules checks the rules SockJS and WebSockets need:
// upgrades routed to a backend for long connections with a long tunnel
// timeout, SockJS session paths hashed on the session id, health checks
// on /readyz that every backend follows, and no public /metrics.
func TestHAProxyConfigRules(t *testing.T) {
	s := haproxySections(t)
	has := func(section, line string) {
		t.Helper()
		if !slices.Contains(s[section], line) {
			t.Errorf("haproxy.cfg [%s] lacks %q; it has %q", section, line, s[section])
		}
	}
	has("defaults", "mode http")
	has("defaults", "timeout tunnel 1h")
	has("frontend public", "acl websocket hdr(Upgrade) -i websocket")
	has("frontend public", "acl sockjs_session path_reg ^/(ws|signal)/[^/]+/[^/]+/[^/]+$")
	has("frontend public", "use_backend cstalk_ws if websocket")
	has("frontend public", "use_backend cstalk_sockjs if sockjs_session")
	has("frontend public", "default_backend cstalk_http")
	has("frontend public", "http-request deny deny_status 403 if { path /metrics }")
	has("backend cstalk_sockjs", "balance hash path,field(4,/)")
	has("backend cstalk_sockjs", "hash-type consistent")
	has("backend cstalk_ws", "balance leastconn")
	has("backend cstalk_http", "option httpchk GET /readyz")
	has("backend cstalk_http", "http-check expect status 200")
	// The WebSocket rule must come first: SockJS's websocket transport
	// also has a session path.
	pub := s["frontend public"]
	if slices.Index(pub, "use_backend cstalk_ws if websocket") > slices.Index(pub, "use_backend cstalk_sockjs if sockjs_session") {
		t.Error("route WebSocket upgrades before SockJS session paths")
	}
	for _, timeout := range []string{"client", "server"} {
		for _, line := range s["defaults"] {
			if v, ok := strings.CutPrefix(line, "timeout "+timeout+" "); ok {
				if d, err := time.ParseDuration(v); err != nil || d <= 25*time.Second {
					t.Errorf("timeout %s %s: must outlast the 25 s SockJS heartbeat", timeout, v)
				}
			}
		}
	}
	checked := map[string]bool{}
	for _, line := range s["backend cstalk_http"] {
		if f := strings.Fields(line); f[0] == "server" {
			if !slices.Contains(f, "check") {
				t.Errorf("cstalk_http %q: no health check", line)
			}
			checked[f[1]] = true
		}
	}
	for _, b := range []string{"backend cstalk_sockjs", "backend cstalk_ws"} {
		var servers []string
		for _, line := range s[b] {
			if f := strings.Fields(line); f[0] == "server" {
				servers = append(servers, f[1])
				if i := slices.Index(f, "track"); i < 0 || f[i+1] != "cstalk_http/"+f[1] {
					t.Errorf("%s %q: must track cstalk_http/%s", b, line, f[1])
				}
			}
		}
		if len(servers) != len(checked) || len(servers) < 2 {
			t.Errorf("%s has servers %q, cstalk_http %v", b, servers, sortedKeys(checked))
		}
	}
}

// TestHAProxyConfigValid runs `haproxy -c` on the committed config with
// local addresses, as the topology test and compose run it.
func TestHAProxyConfigValid(t *testing.T) {
	bin := requireBinary(t, "haproxy", installHAProxy)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-c", "-f", haproxyConfig(t))
	cmd.Env = append(os.Environ(), haproxyEnv(freePort(t), freePort(t), []string{"127.0.0.1:18081", "127.0.0.1:18082"})...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "[WARNING]") || strings.Contains(string(out), "[ALERT]") {
		t.Errorf("haproxy -c warns:\n%s", out)
	}
}

func haproxyEnv(port, statsPort int, nodes []string) []string {
	env := []string{
		fmt.Sprintf("CSTALK_LB_BIND=127.0.0.1:%d", port),
		fmt.Sprintf("CSTALK_LB_STATS_BIND=127.0.0.1:%d", statsPort),
	}
	for i, n := range nodes {
		env = append(env, fmt.Sprintf("CSTALK_NODE%d=%s", i+1, n))
	}
	return env
}

// lb is a running HAProxy with the committed config.
type lb struct {
	base, stats string // http://127.0.0.1:PORT of the public side and of the stats page
}

// startHAProxy runs the committed config in front of nodes and waits until
// HAProxy's own health checks see every node UP in every backend.
func startHAProxy(t *testing.T, nodes []string) *lb {
	t.Helper()
	bin := requireBinary(t, "haproxy", installHAProxy)
	port, statsPort := freePort(t), freePort(t)
	p := startProc(t, "haproxy", bin, haproxyEnv(port, statsPort, nodes), "-db", "-f", haproxyConfig(t))
	// SIGTERM stops at once; the test needs no graceful LB stop.
	t.Cleanup(func() { p.stop(t, syscall.SIGTERM, false) })
	l := &lb{base: fmt.Sprintf("http://127.0.0.1:%d", port), stats: fmt.Sprintf("http://127.0.0.1:%d", statsPort)}
	waitFor(t, 20*time.Second, "HAProxy sees every node UP", func() error {
		if p.exited() {
			t.Fatal("haproxy exited")
		}
		st, err := l.serverStatus()
		if err != nil {
			return err
		}
		for _, b := range []string{"cstalk_http", "cstalk_sockjs", "cstalk_ws"} {
			for i := range nodes {
				if s := st[b+"/cstalk"+strconv.Itoa(i+1)]; s != "UP" {
					return fmt.Errorf("%s/cstalk%d is %q (all: %v)", b, i+1, s, st)
				}
			}
		}
		return nil
	})
	return l
}

// serverStatus reads HAProxy's CSV stats: "backend/server" -> status.
func (l *lb) serverStatus() (map[string]string, error) {
	resp, err := http.Get(l.stats + "/stats;csv")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	r := csv.NewReader(resp.Body)
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("stats csv: %v", err)
	}
	status := slices.Index(rows[0], "status")
	if status < 0 {
		return nil, fmt.Errorf("stats csv has no status column: %q", rows[0])
	}
	out := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) > status && row[1] != "FRONTEND" && row[1] != "BACKEND" {
			out[row[0]+"/"+row[1]] = row[status]
		}
	}
	return out, nil
}
