package deployments_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	k8syaml "sigs.k8s.io/yaml"
)

// The checks here use the loaders of the tools themselves: compose-go is
// what `docker compose` loads files with (schema, interpolation, merges),
// and the k8s.io/api types are what the API server decodes manifests into.

func loadComposeProject(t *testing.T, env []string, envFiles ...string) (*types.Project, error) {
	t.Helper()
	fns := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(dir(t)), cli.WithName("cstalk"), cli.WithEnv(env)}
	if len(envFiles) > 0 {
		fns = append(fns, cli.WithEnvFiles(envFiles...), cli.WithDotEnv)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir(t), "compose.yaml")}, fns...)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	return opts.LoadProject(context.Background())
}

// TestComposeLoadsAsDockerCompose: docker compose accepts compose.yaml with
// the variables of .env.example, resolves the same secret and database for
// every node, and refuses to start without the secrets.
func TestComposeLoadsAsDockerCompose(t *testing.T) {
	example := filepath.Join(dir(t), ".env.example")
	p, err := loadComposeProject(t, nil, example)
	if err != nil {
		t.Fatalf("docker compose would reject compose.yaml with .env.example: %v", err)
	}
	vars := envFile(t, example)
	var nodes int
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		if !strings.HasPrefix(svc.Image, "cstalk:") {
			continue
		}
		if len(svc.Command) > 0 && svc.Command[0] == "migrate" {
			continue
		}
		nodes++
		for key, want := range map[string]string{
			"CSTALK_JWT_SECRET": vars["CSTALK_JWT_SECRET"],
			"CSTALK_DB":         "mysql://cstalk:" + vars["MYSQL_PASSWORD"] + "@mysql:3306/cstalk",
			"CSTALK_REDIS":      "redis://redis:6379/0",
		} {
			got := svc.Environment[key]
			if got == nil || *got != want {
				t.Errorf("%s: %s resolves to %v, want %q", name, key, got, want)
			}
		}
		if svc.Build == nil || svc.Build.Dockerfile != "deployments/Dockerfile" {
			t.Errorf("%s: not built from deployments/Dockerfile", name)
		}
	}
	if nodes < 2 {
		t.Errorf("docker compose sees %d cstalk nodes, want 2 or more", nodes)
	}

	_, err = loadComposeProject(t, nil)
	if err == nil || !strings.Contains(err.Error(), "deployments/.env") {
		t.Errorf("without the secrets compose must refuse, naming deployments/.env; got %v", err)
	}
}

// k8sKinds maps each apiVersion/kind the manifests use to its API type.
var k8sKinds = map[string]func() any{
	"v1/Namespace":                                  func() any { return &corev1.Namespace{} },
	"v1/ConfigMap":                                  func() any { return &corev1.ConfigMap{} },
	"v1/Service":                                    func() any { return &corev1.Service{} },
	"v1/PersistentVolumeClaim":                      func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/Deployment":                            func() any { return &appsv1.Deployment{} },
	"networking.k8s.io/v1/Ingress":                  func() any { return &networkingv1.Ingress{} },
	"policy/v1/PodDisruptionBudget":                 func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":        func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"kustomize.config.k8s.io/v1beta1/Kustomization": nil, // checked in k8s_test.go
}

// TestKubernetesManifestsDecodeStrictly decodes every manifest into its
// Kubernetes API type, refusing unknown or misspelled fields and malformed
// values (quantities, ports), as the API server would.
func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(dir(t), "k8s", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		for i, doc := range yamlDocs(t, f) {
			key := str(doc, "apiVersion") + "/" + str(doc, "kind")
			newObj, known := k8sKinds[key]
			if !known {
				t.Errorf("%s #%d: %s has no API type registered in this test", filepath.Base(f), i, key)
				continue
			}
			if newObj == nil {
				continue
			}
			raw, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			if err := k8syaml.UnmarshalStrict(raw, newObj()); err != nil {
				t.Errorf("%s #%d (%s): %v", filepath.Base(f), i, key, err)
			}
		}
	}
	// The Deployment once more, typed: the pod spec the kubelet would run.
	var dep appsv1.Deployment
	if err := k8syaml.UnmarshalStrict(readFile(t, filepath.Join(dir(t), "k8s", "deployment.yaml")), &dep); err != nil {
		t.Fatal(err)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.LivenessProbe == nil || c.ReadinessProbe == nil || c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Error("typed Deployment lacks probes or the preStop sleep")
	}
	if mem := c.Resources.Limits.Memory(); mem.IsZero() || mem.Cmp(*c.Resources.Requests.Memory()) < 0 {
		t.Errorf("memory limit %v must be set and at least the request %v", mem, c.Resources.Requests.Memory())
	}
}
