package deployments_test

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerInstr is one instruction of a Dockerfile, continuation lines
// joined.
type dockerInstr struct{ cmd, args string }

func parseDockerfile(t *testing.T) []dockerInstr {
	t.Helper()
	var out []dockerInstr
	var cur strings.Builder
	for _, line := range strings.Split(string(readFile(t, filepath.Join(dir(t), "Dockerfile"))), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// TestDockerfile checks the image: a static build with the version stamped
// in, a distroless final stage running as a non-root user, the in-image
// health probe built from healthcheck/, and the ports the manifests use.
func TestDockerfile(t *testing.T) {
	instrs := parseDockerfile(t)
	var stages [][]dockerInstr
	for _, in := range instrs {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if from := build[0].args; !strings.HasPrefix(from, "golang:") || !strings.HasSuffix(from, " AS build") {
		t.Errorf("builder stage FROM %q: want golang:... AS build", from)
	}
	if !slices.Contains(instrs, dockerInstr{"ARG", "GO_VERSION=1.26"}) {
		t.Error("want ARG GO_VERSION=1.26, the go.mod toolchain")
	}
	if from := final[0].args; !strings.HasPrefix(from, "gcr.io/distroless/static") || !strings.HasSuffix(from, ":nonroot") {
		t.Errorf("final FROM %q: want gcr.io/distroless/static-...:nonroot", from)
	}

	var buildScript string
	for _, in := range build {
		if in.cmd == "RUN" || in.cmd == "ENV" {
			buildScript += in.args + "\n"
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X main.version=${VERSION}"`,
		"-o /out/cstalk ./cmd/cstalk", "-o /out/cstalk-healthcheck ./deployments/healthcheck"} {
		if !strings.Contains(buildScript, want) {
			t.Errorf("the builder stage does not contain %q", want)
		}
	}

	finalBy := map[string][]string{}
	for _, in := range final {
		finalBy[in.cmd] = append(finalBy[in.cmd], in.args)
	}
	user := finalBy["USER"]
	if len(user) != 1 || strings.HasPrefix(user[0], "0") || strings.HasPrefix(user[0], "root") {
		t.Errorf("final USER %q: want one non-root user", user)
	}
	if hc := finalBy["HEALTHCHECK"]; len(hc) != 1 || !strings.Contains(hc[0], `CMD ["/usr/local/bin/cstalk-healthcheck", "/healthz"]`) {
		t.Errorf("HEALTHCHECK %q: want the probe binary on /healthz (no shell in distroless)", hc)
	}
	if !slices.ContainsFunc(finalBy["COPY"], func(a string) bool {
		return strings.Contains(a, "--from=build") && strings.Contains(a, "/out/cstalk-healthcheck")
	}) {
		t.Error("the final stage does not copy the health probe from the builder")
	}
	if ep := finalBy["ENTRYPOINT"]; len(ep) != 1 || ep[0] != `["/usr/local/bin/cstalk"]` {
		t.Errorf("ENTRYPOINT %q", ep)
	}
	if cmd := finalBy["CMD"]; len(cmd) != 1 || cmd[0] != `["serve"]` {
		t.Errorf("CMD %q: want serve", cmd)
	}

	expose := strings.Fields(strings.Join(finalBy["EXPOSE"], " "))
	env := strings.Join(finalBy["ENV"], " ")
	if !strings.Contains(env, "CSTALK_ADDR=:8080") || !slices.Contains(expose, "8080/tcp") {
		t.Errorf("ENV %q / EXPOSE %q: the listen port must be exposed", env, expose)
	}
	_, nodes := loadCompose(t)
	objs, _ := k8sObjects(t)
	cm := mapOf(mustObj(t, objs, "ConfigMap/cstalk-config"), "data")
	for _, want := range []string{
		str(cm, "CSTALK_VIDEO_UDP_PORTS") + "/udp", str(cm, "CSTALK_TURN_RELAY_PORTS") + "/udp",
		strings.TrimPrefix(str(cm, "CSTALK_TURN_ADDR"), ":") + "/udp", strings.TrimPrefix(str(cm, "CSTALK_TURN_ADDR"), ":") + "/tcp",
	} {
		if !slices.Contains(expose, want) {
			t.Errorf("EXPOSE %q lacks %s (the Kubernetes defaults)", expose, want)
		}
	}
	if len(nodes) == 0 || str(nodes[0].svc, "build", "dockerfile") != "deployments/Dockerfile" || str(nodes[0].svc, "build", "context") != ".." {
		t.Error("compose must build this Dockerfile from the repository root")
	}
	ignore := string(readFile(t, filepath.Join(dir(t), "Dockerfile.dockerignore")))
	for _, want := range []string{".git", "**/node_modules"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).MatchString(ignore) {
			t.Errorf("Dockerfile.dockerignore does not leave out %s", want)
		}
	}
}

// TestEnvNamesAreServeFlags: every CSTALK_ variable the image, compose and
// Kubernetes hand to cstalk is one `cstalk serve` reads (or one of the
// video settings agreed for its wiring), so no setting is silently
// ignored for a typo.
func TestEnvNamesAreServeFlags(t *testing.T) {
	known := serveEnvNames(t)
	used := map[string][]string{} // name -> where
	add := func(where string, names ...string) {
		for _, n := range names {
			if strings.HasPrefix(n, "CSTALK_") {
				used[n] = append(used[n], where)
			}
		}
	}
	services, nodes := loadCompose(t)
	add("compose migrate", sortedKeys(mapOf(services, "migrate", "environment"))...)
	for _, n := range nodes {
		add("compose "+n.name, sortedKeys(n.env)...)
	}
	objs, _ := k8sObjects(t)
	add("k8s ConfigMap", sortedKeys(mapOf(objs["ConfigMap/cstalk-config"], "data"))...)
	add("k8s secrets.env.example", sortedKeys(envFile(t, filepath.Join(dir(t), "k8s", "secrets.env.example")))...)
	for _, c := range append(list(objs["Deployment/cstalk"], "spec", "template", "spec", "containers"),
		list(objs["Deployment/cstalk"], "spec", "template", "spec", "initContainers")...) {
		for _, e := range list(c, "env") {
			add("k8s container "+str(c, "name"), str(e, "name"))
		}
	}
	for _, in := range parseDockerfile(t) {
		if in.cmd == "ENV" {
			for _, kv := range strings.Fields(in.args) {
				k, _, _ := strings.Cut(kv, "=")
				add("Dockerfile", k)
			}
		}
	}
	if len(used) < 5 {
		t.Fatalf("found only %v: the manifests were not read", sortedKeys(used))
	}
	for _, name := range sortedKeys(used) {
		if !known[name] {
			t.Errorf("%s (set in %v) is not a cstalk variable; cstalk reads %v", name, used[name], sortedKeys(known))
		}
	}
}
