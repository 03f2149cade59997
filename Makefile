# Troupe: the short verbs. `make dev` and `make test` are the two set-up commands of the README.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_CACHE_DIR ?= $(HOME)/.cache/troupe/uv
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.cache/troupe/uv-$(UV_VERSION)/bin/uv)
# The e2e harness and tools/dev.sh start operators with `$UV run troupe run ...`.
export UV
PYTEST := $(UV) run --frozen pytest

.PHONY: help uv sync lint crds check-crds unit test dev bench

help: ## list the verbs
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

uv: ## install uv (pinned) when it is missing
	@command -v uv >/dev/null 2>&1 || test -x $(UV) || { \
	  echo "installing uv $(UV_VERSION) into ~/.cache/troupe"; \
	  python3 -m venv $(HOME)/.cache/troupe/uv-$(UV_VERSION) && \
	  $(HOME)/.cache/troupe/uv-$(UV_VERSION)/bin/pip install -q uv==$(UV_VERSION); }

sync: uv ## install the workspace from uv.lock
	@$(UV) sync --frozen -q

lint: sync ## ruff and mypy
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

crds: sync ## regenerate every chart's crds/ from the models
	$(UV) run --frozen python tools/crds.py

check-crds: sync ## fail when a committed CRD is stale
	$(UV) run --frozen python tools/crds.py --check

unit: sync ## unit tests (no cluster)
	$(PYTEST) packages plugins tools/tests

test: lint check-crds unit e2e ## everything CI runs

bench: sync cluster-up ## benchmarks beside their limits (tools/bench_*.py; TROUPE_BENCH_IDLE_SECONDS=30 TROUPE_BENCH_WORKSHOPS=200 for a quick run)
	@for b in tools/bench_*.py; do echo "== $$b"; $(UV) run --frozen python $$b || exit 1; done

dev: sync ## run the operators against the local cluster
	bash tools/dev.sh

-include tools/cluster/cluster.mk
