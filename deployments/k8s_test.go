package deployments_test

import (
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// k8sObjects parses every manifest kustomization.yaml lists, keyed by
// kind/name, and checks that no manifest in k8s/ is left out of it.
func k8sObjects(t *testing.T) (objs map[string]map[string]any, kustomization map[string]any) {
	t.Helper()
	k8s := filepath.Join(dir(t), "k8s")
	docs := yamlDocs(t, filepath.Join(k8s, "kustomization.yaml"))
	if len(docs) != 1 {
		t.Fatalf("kustomization.yaml: %d documents", len(docs))
	}
	kustomization = docs[0]
	listed := stringsOf(list(kustomization, "resources"))
	onDisk, err := filepath.Glob(filepath.Join(k8s, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var manifests []string
	for _, f := range onDisk {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			manifests = append(manifests, b)
		}
	}
	sort.Strings(listed)
	if !slices.Equal(listed, manifests) {
		t.Errorf("kustomization.yaml lists %q, k8s/ holds %q", listed, manifests)
	}
	objs = map[string]map[string]any{}
	for _, f := range manifests {
		for _, doc := range yamlDocs(t, filepath.Join(k8s, f)) {
			kind, name := str(doc, "kind"), str(doc, "metadata", "name")
			if str(doc, "apiVersion") == "" || kind == "" || name == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name", f)
				continue
			}
			objs[kind+"/"+name] = doc
		}
	}
	return objs, kustomization
}

func mustObj(t *testing.T, objs map[string]map[string]any, key string) map[string]any {
	t.Helper()
	o, ok := objs[key]
	if !ok {
		t.Fatalf("no %s among the manifests (have %v)", key, sortedKeys(objs))
	}
	return o
}

// selects reports whether selector (matchLabels, or a Service's plain map)
// matches labels.
func selects(selector, labels map[string]any) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if str(labels, k) != str(v) {
			return false
		}
	}
	return true
}

func container(t *testing.T, pod map[string]any, name string) map[string]any {
	t.Helper()
	for _, c := range list(pod, "containers") {
		if str(c, "name") == name {
			return c.(map[string]any)
		}
	}
	t.Fatalf("pod has no container %q", name)
	return nil
}

// TestKubernetesManifests checks the invariants of the Kubernetes shape:
// replicas, probes, the drain budget, non-root with a read-only root, one
// source for the secrets, a disruption budget, sticky ingress for SockJS,
// and the SFU's ports.
func TestKubernetesManifests(t *testing.T) {
	objs, kustomization := k8sObjects(t)
	dep := mustObj(t, objs, "Deployment/cstalk")
	cm := mustObj(t, objs, "ConfigMap/cstalk-config")
	pod := mapOf(dep, "spec", "template", "spec")
	podLabels := mapOf(dep, "spec", "template", "metadata", "labels")
	if !selects(mapOf(dep, "spec", "selector", "matchLabels"), podLabels) {
		t.Fatal("the Deployment's selector does not match its pods")
	}
	if n, _ := get(dep, "spec", "replicas").(int); n < 2 {
		t.Errorf("replicas %v: want 2 or more", get(dep, "spec", "replicas"))
	}
	c := container(t, pod, "cstalk")

	// Probes: readiness asks the store and bus, liveness only the process.
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"} {
		if got := str(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path %q, want %s", probe, got, path)
		}
		if port := str(c, probe, "httpGet", "port"); port != "http" {
			t.Errorf("%s port %q, want the named port http", probe, port)
		}
	}
	var httpPort string
	for _, p := range list(c, "ports") {
		if str(p, "name") == "http" {
			httpPort = str(p, "containerPort")
		}
	}
	if addr := str(cm, "data", "CSTALK_ADDR"); addr != ":"+httpPort {
		t.Errorf("CSTALK_ADDR %q does not listen on the http port %s", addr, httpPort)
	}

	// SIGTERM drain fits in the grace period, after the preStop pause.
	grace, _ := get(pod, "terminationGracePeriodSeconds").(int)
	pause, _ := get(c, "lifecycle", "preStop", "sleep", "seconds").(int)
	drain, err := time.ParseDuration(str(cm, "data", "CSTALK_SHUTDOWN_TIMEOUT"))
	if err != nil {
		t.Fatalf("CSTALK_SHUTDOWN_TIMEOUT: %v", err)
	}
	if pause <= 0 || time.Duration(grace)*time.Second <= time.Duration(pause)*time.Second+drain {
		t.Errorf("terminationGracePeriodSeconds %d must exceed preStop sleep %ds + CSTALK_SHUTDOWN_TIMEOUT %v", grace, pause, drain)
	}

	// Non-root, read-only, nothing to escalate; writable paths are volumes.
	if get(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("pod securityContext.runAsNonRoot must be true")
	}
	if uid, _ := get(pod, "securityContext", "runAsUser").(int); uid == 0 {
		t.Error("pod runs as uid 0")
	}
	containers := append(list(pod, "initContainers"), list(pod, "containers")...)
	for _, ct := range containers {
		name := str(ct, "name")
		if get(ct, "securityContext", "readOnlyRootFilesystem") != true || get(ct, "securityContext", "allowPrivilegeEscalation") != false {
			t.Errorf("container %s: want readOnlyRootFilesystem and no privilege escalation", name)
		}
		if !slices.Contains(stringsOf(list(ct, "securityContext", "capabilities", "drop")), "ALL") {
			t.Errorf("container %s: drop ALL capabilities", name)
		}
		if str(ct, "resources", "requests", "cpu") == "" || str(ct, "resources", "requests", "memory") == "" || str(ct, "resources", "limits", "memory") == "" {
			t.Errorf("container %s: want cpu and memory requests and a memory limit", name)
		}
	}
	mounts := map[string]string{}
	for _, m := range list(c, "volumeMounts") {
		mounts[str(m, "mountPath")] = str(m, "name")
	}
	upload := mounts[str(cm, "data", "CSTALK_UPLOAD_DIR")]
	if upload == "" || mounts["/tmp"] == "" {
		t.Errorf("CSTALK_UPLOAD_DIR %q and /tmp must be volumes on a read-only root (mounts %v)", str(cm, "data", "CSTALK_UPLOAD_DIR"), mounts)
	}
	for _, v := range list(pod, "volumes") {
		if str(v, "name") == upload {
			claim := str(v, "persistentVolumeClaim", "claimName")
			pvc := mustObj(t, objs, "PersistentVolumeClaim/"+claim)
			if !slices.Contains(stringsOf(list(pvc, "spec", "accessModes")), "ReadWriteMany") {
				t.Error("uploads must be on ReadWriteMany storage: any pod serves any upload")
			}
		}
	}

	// Migration runs before the server, against the same database.
	migrate := list(pod, "initContainers")
	if len(migrate) != 1 || !slices.Equal(stringsOf(list(migrate[0], "args")), []string{"migrate"}) {
		t.Errorf("want one init container running `cstalk migrate`, got %v", migrate)
	}

	checkK8sSecrets(t, kustomization, cm, containers)
	checkK8sTraffic(t, objs, dep, podLabels)
	checkK8sVideo(t, cm, pod, c)
}

// checkK8sSecrets: every container takes the JWT secret and the database
// from the one Secret kustomize generates from secrets.env.
func checkK8sSecrets(t *testing.T, kustomization, cm map[string]any, containers []any) {
	t.Helper()
	gens := list(kustomization, "secretGenerator")
	if len(gens) != 1 {
		t.Fatalf("want one secretGenerator, got %v", gens)
	}
	secret := str(gens[0], "name")
	envs := stringsOf(list(gens[0], "envs"))
	if !slices.Equal(envs, []string{"secrets.env"}) {
		t.Errorf("secretGenerator envs %q, want [secrets.env]", envs)
	}
	example := envFile(t, filepath.Join(dir(t), "k8s", "secrets.env.example"))
	for _, key := range []string{"CSTALK_JWT_SECRET", "CSTALK_DB"} {
		if example[key] == "" {
			t.Errorf("secrets.env.example has no %s", key)
		}
		if _, inConfigMap := mapOf(cm, "data")[key]; inConfigMap {
			t.Errorf("%s is in the ConfigMap: it belongs in the Secret", key)
		}
	}
	if !strings.HasPrefix(example["CSTALK_DB"], "mysql://") {
		t.Errorf("CSTALK_DB example %q: want mysql://", example["CSTALK_DB"])
	}
	ignored := string(readFile(t, filepath.Join(dir(t), ".gitignore")))
	if !strings.Contains(ignored, "/k8s/secrets.env") {
		t.Error("k8s/secrets.env must be git-ignored")
	}
	for _, ct := range containers {
		var refs []string
		for _, e := range list(ct, "envFrom") {
			if name := str(e, "secretRef", "name"); name != "" {
				refs = append(refs, name)
			}
		}
		if !slices.Equal(refs, []string{secret}) {
			t.Errorf("container %s reads secrets from %q, want [%s]", str(ct, "name"), refs, secret)
		}
		for _, e := range list(ct, "env") {
			if n := str(e, "name"); n == "CSTALK_JWT_SECRET" || n == "CSTALK_DB" {
				t.Errorf("container %s sets %s itself, bypassing the Secret", str(ct, "name"), n)
			}
		}
	}
	if str(cm, "data", "CSTALK_REDIS") == "" {
		t.Error("the ConfigMap sets no CSTALK_REDIS: nodes would not fan out to each other")
	}
}

// checkK8sTraffic: Service, Ingress, PDB and HPA all point at the pods.
func checkK8sTraffic(t *testing.T, objs map[string]map[string]any, dep, podLabels map[string]any) {
	t.Helper()
	svc := mustObj(t, objs, "Service/cstalk")
	if !selects(mapOf(svc, "spec", "selector"), podLabels) {
		t.Error("Service/cstalk does not select the pods")
	}
	svcPorts := map[string]bool{}
	for _, p := range list(svc, "spec", "ports") {
		svcPorts[str(p, "name")] = true
		if str(p, "targetPort") != "http" {
			t.Errorf("Service port %s targets %q, want the named port http", str(p, "name"), str(p, "targetPort"))
		}
	}

	ing := mustObj(t, objs, "Ingress/cstalk")
	ann := mapOf(ing, "metadata", "annotations")
	const nginx = "nginx.ingress.kubernetes.io/"
	if str(ann, nginx+"affinity") != "cookie" || str(ann, nginx+"session-cookie-name") == "" {
		t.Error("the Ingress needs cookie affinity: SockJS HTTP transports are one session over many requests")
	}
	for _, key := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
		if s, _ := strconv.Atoi(str(ann, nginx+key)); s < 60 {
			t.Errorf("%s %q: want at least 60 s (SockJS heartbeat 25 s, WebSockets stay open)", key, str(ann, nginx+key))
		}
	}
	if str(ann, nginx+"proxy-buffering") != "off" {
		t.Error("proxy-buffering must be off for xhr-streaming and eventsource")
	}
	for _, r := range list(ing, "spec", "rules") {
		for _, p := range list(r, "http", "paths") {
			if name := str(p, "backend", "service", "name"); name != "cstalk" || !svcPorts[str(p, "backend", "service", "port", "name")] {
				t.Errorf("Ingress path %s goes to %s:%s, want Service/cstalk's port", str(p, "path"), name, str(p, "backend", "service", "port", "name"))
			}
		}
	}

	pdb := mustObj(t, objs, "PodDisruptionBudget/cstalk")
	if !selects(mapOf(pdb, "spec", "selector", "matchLabels"), podLabels) {
		t.Error("the PodDisruptionBudget does not select the pods")
	}
	replicas, _ := get(dep, "spec", "replicas").(int)
	maxUnavailable, hasMax := get(pdb, "spec", "maxUnavailable").(int)
	minAvailable, hasMin := get(pdb, "spec", "minAvailable").(int)
	if !(hasMax && maxUnavailable >= 1 && maxUnavailable < replicas) && !(hasMin && minAvailable >= 1 && minAvailable < replicas) {
		t.Errorf("PodDisruptionBudget must keep a pod up and still let one go (replicas %d): %v", replicas, get(pdb, "spec"))
	}

	if hpa, ok := objs["HorizontalPodAutoscaler/cstalk"]; ok {
		if str(hpa, "spec", "scaleTargetRef", "kind") != "Deployment" || str(hpa, "spec", "scaleTargetRef", "name") != "cstalk" {
			t.Error("the HPA does not scale Deployment/cstalk")
		}
		if n, _ := get(hpa, "spec", "minReplicas").(int); n < 2 {
			t.Errorf("HPA minReplicas %v: want 2 or more", get(hpa, "spec", "minReplicas"))
		}
	}
}

// checkK8sVideo: the SFU's UDP range and TURN are configured, and the pods
// can actually receive them: hostNetwork, one pod per node, the node's
// address announced.
func checkK8sVideo(t *testing.T, cm, pod, c map[string]any) {
	t.Helper()
	portRange(t, str(cm, "data", "CSTALK_VIDEO_UDP_PORTS"))
	portRange(t, str(cm, "data", "CSTALK_TURN_RELAY_PORTS"))
	turn := strings.TrimPrefix(str(cm, "data", "CSTALK_TURN_ADDR"), ":")
	for _, proto := range []string{"UDP", "TCP"} {
		if !slices.ContainsFunc(list(c, "ports"), func(p any) bool {
			return str(p, "containerPort") == turn && str(p, "protocol") == proto
		}) {
			t.Errorf("TURN port %s/%s is not declared on the container", turn, proto)
		}
	}
	if get(pod, "hostNetwork") != true {
		t.Fatal("without hostNetwork nothing publishes the SFU's UDP range (see README)")
	}
	if str(pod, "dnsPolicy") != "ClusterFirstWithHostNet" {
		t.Error("hostNetwork pods need dnsPolicy ClusterFirstWithHostNet to resolve cluster names (Redis)")
	}
	anti := list(pod, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
	if len(anti) == 0 || str(anti[0], "topologyKey") != "kubernetes.io/hostname" {
		t.Error("hostNetwork pods must be one per node (required anti-affinity on kubernetes.io/hostname)")
	}
	var publicIP string
	for _, e := range list(c, "env") {
		if str(e, "name") == "CSTALK_VIDEO_PUBLIC_IP" {
			publicIP = str(e, "valueFrom", "fieldRef", "fieldPath")
		}
	}
	if publicIP != "status.hostIP" {
		t.Errorf("CSTALK_VIDEO_PUBLIC_IP comes from %q, want the node's address (status.hostIP)", publicIP)
	}
}
