# Modelplane developer entry points. `make demo` and `make test` work on a fresh machine.
# `make e2e` runs Modelplane in real Crossplane on a real API server (docs/e2e.md), and tier 2
# (real scheduler, controller-manager, kwok, provider-kubernetes) when its toolchain is built.
# It builds a pinned Go toolchain into $(MODELPLANE_E2E_CACHE) first (~11 min cold on a quiet 2-core machine,
# seconds warm), then checks modelplane.cel against Kubernetes' own CEL (`make cel-oracle`).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_WORKERS ?= 2
export MODELPLANE_E2E_CACHE ?= /var/cache/modelplane-e2e

.PHONY: setup demo test lint unit browser bench package docs schemas e2e e2e-toolchain e2e-toolchain-tier2 e2e-tier2 clean cel-oracle

setup: $(STAMP)  ## create .venv and install the project with its dev tools (idempotent)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: setup  ## render the quickstart fleet through the real function server
	$(BIN)/modelplane render examples/quickstart

test: lint unit  ## ruff + mypy + pytest (what CI runs)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

unit: setup $(if $(CI),browser)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

# Headless Chromium for the `render -o html` check (tests/render/test_views.py), from Debian's
# packages; CI runs it before the tests. Without root or apt-get the test says it skipped.
browser:  ## install headless Chromium (Debian's package) unless one is present
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && \
	        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }; } && \
	    echo "make browser: installed $$(chromium --version)"; } || \
	  echo "make browser: cannot install Chromium here; the HTML view test will skip"

bench: setup  ## placement, CEL and response-size benchmarks (prints tables; never asserts)
	$(BIN)/python bench/run.py

package: setup  ## assemble and check the xpkg directories offline
	$(BIN)/python -m modelplane.package build

e2e-toolchain:  ## build (or reuse) etcd, kube-apiserver, kubectl, crossplane, crane; pins in e2e/versions.env
	e2e/toolchain.sh build

e2e-toolchain-tier2:  ## also build kwok and provider-kubernetes (tier 2; 5-16 min cold, docs/e2e.md)
	e2e/toolchain.sh build tier2

e2e: package e2e-toolchain  ## tier 1 end to end, then tier 2 when its toolchain is built (docs/e2e.md)
	$(MAKE) cel-oracle
	$(BIN)/python e2e/harness.py --bindir "$$(e2e/toolchain.sh bindir)" $(E2E_FLAGS)
	e2e/tier2.sh $(E2E_FLAGS)

e2e-tier2: package e2e-toolchain  ## only tier 2 (builds its toolchain when cold)
	E2E_TIER2=build e2e/tier2.sh $(E2E_FLAGS)

docs: setup  ## regenerate the API reference and the editor JSON Schemas from the XRDs
	$(BIN)/python -m modelplane.validate.apidocs > docs/api-reference.md
	$(BIN)/python -m modelplane.validate.editorschema schemas >/dev/null

schemas: setup  ## regenerate schemas/ (JSON Schemas for editors) from the XRDs
	$(BIN)/python -m modelplane.validate.editorschema schemas

# Kubernetes' own DRA CEL (k8s.io/dynamic-resource-allocation v0.35.4) as an oracle for
# modelplane.cel. The binary lives outside the repo in a cache keyed by the pinned version and a
# checksum of the wrapper's sources, so it is built once per change (docs/cel.md, "Oracle").
MODELPLANE_E2E_CACHE := $(or $(MODELPLANE_E2E_CACHE),/var/cache/modelplane-e2e)
CEL_ORACLE_SRC := e2e/cel-oracle
CEL_ORACLE_VERSION := v0.35.4-$(shell cat $(CEL_ORACLE_SRC)/go.mod $(CEL_ORACLE_SRC)/go.sum $(CEL_ORACLE_SRC)/main.go | cksum | cut -d' ' -f1)
CEL_ORACLE := $(MODELPLANE_E2E_CACHE)/cel-oracle-$(CEL_ORACLE_VERSION)/cel-oracle

cel-oracle: setup $(CEL_ORACLE)  ## build the Kubernetes CEL oracle (cached) and run the differential
	$(BIN)/python e2e/cel_differential.py --oracle $(CEL_ORACLE)

$(CEL_ORACLE):
	mkdir -p $(dir $@)
	cd $(CEL_ORACLE_SRC) && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" \
		go build -trimpath -o $@.tmp . && mv $@.tmp $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
