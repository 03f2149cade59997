# Troupe: the short verbs. `make dev` and `make test` are the two set-up commands of the README.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_CACHE_DIR ?= $(HOME)/.cache/troupe/uv
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.cache/troupe/uv-$(UV_VERSION)/bin/uv)
# The e2e harness and tools/dev.sh start operators with `$UV run troupe run ...`.
export UV
PYTEST := $(UV) run --frozen pytest

.PHONY: help uv sync lint crds check-crds check-versions unit test dev bench release dist images image tilt-ci

help: ## list the verbs
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

uv: ## install uv (pinned) when it is missing
	@command -v uv >/dev/null 2>&1 || test -x $(UV) || { \
	  echo "installing uv $(UV_VERSION) into ~/.cache/troupe"; \
	  python3 -m venv $(HOME)/.cache/troupe/uv-$(UV_VERSION) && \
	  $(HOME)/.cache/troupe/uv-$(UV_VERSION)/bin/pip install -q uv==$(UV_VERSION); }

# --compile-bytecode: as in the images (UV_COMPILE_BYTECODE=1). Without it, and with PYTHONDONTWRITEBYTECODE
# set, each `troupe run` compiled its dependencies anew: 0.6 s of a 1.3 s import.
sync: uv ## install the workspace from uv.lock
	@$(UV) sync --frozen -q --compile-bytecode

lint: sync ## ruff and mypy
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

crds: sync ## regenerate every chart's crds/ from the models
	$(UV) run --frozen python tools/crds.py

check-crds: sync ## fail when a committed CRD is stale
	$(UV) run --frozen python tools/crds.py --check

check-versions: sync ## fail when versions disagree (chart appVersion, troupe-core requirements, uv.lock)
	$(UV) run --frozen python tools/release.py check

release: sync ## bump one component: make release COMPONENT=workshop|core|chart-<chart> BUMP=major|minor|patch
	@test -n "$(COMPONENT)" -a -n "$(BUMP)" || { echo "usage: make release COMPONENT=workshop BUMP=minor"; exit 2; }
	HELM="$$(bash tools/cluster/build.sh --env | sed -n 's/^HELM=//p')" \
	  $(UV) run --frozen python tools/release.py bump $(COMPONENT) $(BUMP)

dist: sync cluster-binaries ## wheels (uv build) and charts (helm package, library bundled) into dist/
	@rm -rf dist && mkdir -p dist
	@for p in packages/*/pyproject.toml plugins/*/pyproject.toml; do \
	  $(UV) build -q --package "$$(sed -n 's/^name = "\(.*\)"/\1/p' $$p | head -1)" --wheel -o dist || exit 1; done
	@helm="$$(bash tools/cluster/build.sh --env | sed -n 's/^HELM=//p')"; for c in charts/*-operator; do \
	  "$$helm" dependency build --skip-refresh $$c >/dev/null && "$$helm" package -d dist $$c >/dev/null || exit 1; done
	$(UV) run --frozen python tools/release.py check --dist dist
	@ls -1 dist

images: sync cluster-binaries ## build every operator's image (podman, no Docker) and smoke-test each
	bash tools/images/build.sh
	TROUPE_E2E_IMAGES=all $(PYTEST) -m e2e e2e/test_images.py -p no:cacheprovider

image: ## build one operator's image (no test): make image OPERATOR=workshop
	@test -n "$(OPERATOR)" || { echo "usage: make image OPERATOR=workshop"; exit 2; }
	bash tools/images/build.sh $(OPERATOR)

tilt-ci: sync cluster-binaries tilt-binary ## `tilt ci` in local mode: every operator up, its examples in their first phase
	bash tools/tilt/ci.sh

unit: sync ## unit tests (no cluster)
	$(PYTEST) packages plugins tools/tests

test: lint check-crds check-versions unit e2e tilt-ci ## everything CI runs (e2e includes the workshop and catalyst images' smoke tests)

bench: sync cluster-up ## benchmarks beside their limits (tools/bench_*.py; TROUPE_BENCH_IDLE_SECONDS=30 TROUPE_BENCH_WORKSHOPS=200 for a quick run)
	@for b in tools/bench_*.py; do echo "== $$b"; $(UV) run --frozen python $$b || exit 1; done

dev: sync ## run the operators against the local cluster
	bash tools/dev.sh

-include tools/cluster/cluster.mk
