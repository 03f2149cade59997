# The local Kubernetes control plane (no Docker): included from the root Makefile.
# See docs/cluster.md.
CLUSTER_DIR := tools/cluster

.PHONY: cluster-binaries cluster-up cluster-down cluster-status e2e tilt-binary

cluster-binaries: ## build kube-apiserver/controller-manager/scheduler, kubectl, etcd, kwok, helm, registry (only what is missing)
	@bash $(CLUSTER_DIR)/build.sh

cluster-up: cluster-binaries ## start the local cluster (no-op when running); prints export KUBECONFIG=...
	@bash $(CLUSTER_DIR)/cluster.sh up

cluster-down: ## stop the local cluster (supervisors and components, by PID) and delete its data
	@bash $(CLUSTER_DIR)/cluster.sh down

cluster-status: ## is the local cluster up? each component, its state and restart count
	@bash $(CLUSTER_DIR)/cluster.sh status

tilt-binary: ## build tilt (cgo; see docs/cluster.md)
	@bash $(CLUSTER_DIR)/build.sh tilt

e2e: sync cluster-binaries ## e2e tests (uses $$TROUPE_E2E_KUBECONFIG/$$KUBECONFIG, else K3s in Docker, else the local cluster)
	$(PYTEST) -m e2e e2e $(wildcard plugins/*/e2e) -p no:cacheprovider
