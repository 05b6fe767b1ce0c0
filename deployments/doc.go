// Package deployments holds no code: it is the home of the tests that check
// the container image, the docker compose topology, the Kubernetes
// manifests and the HAProxy configuration in this directory, by parsing
// them and by running the same topology as local processes.
package deployments
