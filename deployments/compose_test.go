package deployments_test

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// composeNode is a service of compose.yaml that runs `cstalk serve`.
type composeNode struct {
	name string
	svc  map[string]any
	env  map[string]string
}

func loadCompose(t *testing.T) (services map[string]any, nodes []composeNode) {
	t.Helper()
	docs := yamlDocs(t, filepath.Join(dir(t), "compose.yaml"))
	if len(docs) != 1 {
		t.Fatalf("compose.yaml: %d documents, want 1", len(docs))
	}
	services = mapOf(docs[0], "services")
	if len(services) == 0 {
		t.Fatal("compose.yaml has no services")
	}
	for _, name := range sortedKeys(services) {
		svc := mapOf(services, name)
		if !strings.HasPrefix(str(svc, "image"), "cstalk:") {
			continue
		}
		// No command means the image's CMD, which is serve.
		if cmd := list(svc, "command"); len(cmd) > 0 && str(cmd, 0) != "serve" {
			continue
		}
		env := map[string]string{}
		for k, v := range mapOf(svc, "environment") {
			env[k] = str(v)
		}
		nodes = append(nodes, composeNode{name, svc, env})
	}
	return services, nodes
}

// TestComposeTopology checks the shape docker compose would run: two or
// more nodes configured alike from one source of secrets, MySQL with
// utf8mb4, Redis, a migration that finishes before any node serves, and
// HAProxy in front of every node.
func TestComposeTopology(t *testing.T) {
	services, nodes := loadCompose(t)
	if len(nodes) < 2 {
		t.Fatalf("compose.yaml runs %d cstalk nodes, want 2 or more", len(nodes))
	}

	// Every node shares one store, one bus and one signing key, each
	// interpolated from one required variable.
	for _, key := range []string{"CSTALK_DB", "CSTALK_REDIS", "CSTALK_JWT_SECRET"} {
		first := nodes[0].env[key]
		if first == "" {
			t.Errorf("%s: %s is not set", nodes[0].name, key)
		}
		for _, n := range nodes[1:] {
			if n.env[key] != first {
				t.Errorf("%s: %s=%q, but %s has %q: every node must share it", n.name, key, n.env[key], nodes[0].name, first)
			}
		}
	}
	if s := nodes[0].env["CSTALK_JWT_SECRET"]; !strings.HasPrefix(s, "${CSTALK_JWT_SECRET:?") {
		t.Errorf("CSTALK_JWT_SECRET=%q: want it required from the environment (${CSTALK_JWT_SECRET:?...})", s)
	}
	if !strings.HasPrefix(nodes[0].env["CSTALK_DB"], "mysql://") || !strings.Contains(nodes[0].env["CSTALK_DB"], "@mysql:3306/") {
		t.Errorf("CSTALK_DB=%q: want the mysql service", nodes[0].env["CSTALK_DB"])
	}
	if r := nodes[0].env["CSTALK_REDIS"]; !strings.HasPrefix(r, "redis://redis:6379/") {
		t.Errorf("CSTALK_REDIS=%q: want the redis service", r)
	}

	mysql := mapOf(services, "mysql")
	if img := str(mysql, "image"); !strings.HasPrefix(img, "mysql:8") && !strings.HasPrefix(img, "mariadb:") {
		t.Errorf("mysql image %q: want MySQL 8 or MariaDB", img)
	}
	cmd := strings.Join(stringsOf(list(mysql, "command")), " ")
	if !strings.Contains(cmd, "--character-set-server=utf8mb4") || !strings.Contains(cmd, "--collation-server=utf8mb4_") {
		t.Errorf("mysql command %q: want utf8mb4 as the server character set and collation", cmd)
	}
	if !strings.Contains(cmd, "--log-bin-trust-function-creators=1") || !strings.Contains(cmd, "--innodb-autoinc-lock-mode=1") {
		t.Errorf("mysql command %q: want the cstalk user allowed to create the messages trigger, and consecutive auto-increment values per INSERT", cmd)
	}
	if str(services, "redis", "healthcheck", "test", 1) == "" || str(mysql, "healthcheck", "test", 1) == "" {
		t.Error("redis and mysql need health checks: the nodes wait for them")
	}

	migrate := mapOf(services, "migrate")
	if got := stringsOf(list(migrate, "command")); !slices.Equal(got, []string{"migrate"}) {
		t.Errorf("migrate command %q, want [migrate]", got)
	}
	if str(migrate, "image") != str(nodes[0].svc, "image") {
		t.Errorf("migrate runs image %q, nodes %q", str(migrate, "image"), str(nodes[0].svc, "image"))
	}
	if str(migrate, "environment", "CSTALK_DB") != nodes[0].env["CSTALK_DB"] {
		t.Error("migrate must migrate the nodes' database")
	}
	if str(migrate, "restart") != "no" {
		t.Errorf("migrate restart %q: a one-shot job must not restart", str(migrate, "restart"))
	}

	udp := map[int]string{} // host UDP port -> node publishing it
	for _, n := range nodes {
		if c := str(n.svc, "depends_on", "migrate", "condition"); c != "service_completed_successfully" {
			t.Errorf("%s: depends_on migrate condition %q, want service_completed_successfully", n.name, c)
		}
		for _, dep := range []string{"mysql", "redis"} {
			if c := str(n.svc, "depends_on", dep, "condition"); c != "service_healthy" {
				t.Errorf("%s: depends_on %s condition %q, want service_healthy", n.name, dep, c)
			}
		}
		if hc := stringsOf(list(n.svc, "healthcheck", "test")); !slices.Equal(hc, []string{"CMD", "/usr/local/bin/cstalk-healthcheck", "/readyz"}) {
			t.Errorf("%s: healthcheck %q: want the image's probe on /readyz", n.name, hc)
		}
		if get(n.svc, "read_only") != true {
			t.Errorf("%s: want a read-only root filesystem", n.name)
		}
		grace, err := time.ParseDuration(str(n.svc, "stop_grace_period"))
		drain, err2 := time.ParseDuration(n.env["CSTALK_SHUTDOWN_TIMEOUT"])
		if err != nil || err2 != nil || grace <= drain {
			t.Errorf("%s: stop_grace_period %q must exceed CSTALK_SHUTDOWN_TIMEOUT %q, or SIGKILL cuts the drain short",
				n.name, str(n.svc, "stop_grace_period"), n.env["CSTALK_SHUTDOWN_TIMEOUT"])
		}
		if !slices.ContainsFunc(stringsOf(list(n.svc, "volumes")), func(v string) bool {
			return strings.HasSuffix(v, ":"+n.env["CSTALK_UPLOAD_DIR"])
		}) {
			t.Errorf("%s: CSTALK_UPLOAD_DIR %q is not a shared volume", n.name, n.env["CSTALK_UPLOAD_DIR"])
		}
		checkComposeUDP(t, n, udp)
	}

	checkComposeLB(t, services, nodes)
}

// checkComposeUDP: each node publishes its SFU and TURN relay ranges one to
// one (ICE announces the container's port), and no two nodes share a port.
func checkComposeUDP(t *testing.T, n composeNode, taken map[int]string) {
	t.Helper()
	published := map[string]bool{}
	for _, p := range stringsOf(list(n.svc, "ports")) {
		published[p] = true
	}
	for _, key := range []string{"CSTALK_VIDEO_UDP_PORTS", "CSTALK_TURN_RELAY_PORTS"} {
		r := n.env[key]
		if r == "" {
			t.Errorf("%s: %s is not set", n.name, key)
			continue
		}
		if !published[r+":"+r+"/udp"] {
			t.Errorf("%s: %s=%s is not published one to one (%q)", n.name, key, r, r+":"+r+"/udp")
		}
		lo, hi := portRange(t, r)
		for p := lo; p <= hi; p++ {
			if other, dup := taken[p]; dup {
				t.Fatalf("%s and %s both publish UDP port %d", other, n.name, p)
			}
			taken[p] = n.name
		}
	}
	turn := strings.TrimPrefix(n.env["CSTALK_TURN_ADDR"], ":")
	for _, proto := range []string{"udp", "tcp"} {
		if !published[turn+":"+turn+"/"+proto] {
			t.Errorf("%s: TURN %s/%s is not published", n.name, turn, proto)
		}
	}
}

var haproxyEnvRef = regexp.MustCompile(`"\$\{(CSTALK_NODE\d+)\}"`)

// checkComposeLB: the lb service runs the committed HAProxy config and
// names every node, and the config has a server for each of them.
func checkComposeLB(t *testing.T, services map[string]any, nodes []composeNode) {
	t.Helper()
	lb := mapOf(services, "lb")
	if !strings.HasPrefix(str(lb, "image"), "haproxy:") {
		t.Fatalf("lb image %q: want haproxy", str(lb, "image"))
	}
	if !slices.Contains(stringsOf(list(lb, "volumes")), "./haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro") {
		t.Errorf("lb volumes %q: want the committed haproxy/haproxy.cfg", stringsOf(list(lb, "volumes")))
	}
	cfg := string(readFile(t, filepath.Join(dir(t), "haproxy", "haproxy.cfg")))
	refs := map[string]bool{}
	for _, m := range haproxyEnvRef.FindAllStringSubmatch(cfg, -1) {
		refs[m[1]] = true
	}
	var targets []string
	for _, name := range sortedKeys(refs) {
		targets = append(targets, str(lb, "environment", name))
	}
	var want []string
	for _, n := range nodes {
		want = append(want, n.name+strings.TrimPrefix(n.env["CSTALK_ADDR"], "0.0.0.0"))
	}
	slices.Sort(targets)
	if !slices.Equal(targets, want) {
		t.Errorf("haproxy.cfg servers (via %v) reach %q, want every node: %q", sortedKeys(refs), targets, want)
	}
	if bind := str(lb, "environment", "CSTALK_LB_BIND"); !slices.ContainsFunc(stringsOf(list(lb, "ports")), func(p string) bool {
		return strings.HasSuffix(p, bind)
	}) {
		t.Errorf("lb listens on %q but publishes %q", bind, stringsOf(list(lb, "ports")))
	}
}

func stringsOf(l []any) []string {
	out := make([]string, 0, len(l))
	for _, v := range l {
		out = append(out, str(v))
	}
	return out
}
