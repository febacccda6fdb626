# Modelplane developer entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_WORKERS ?= 2

.PHONY: setup demo test lint unit bench package docs clean

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

unit: setup
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

bench: setup  ## placement and CEL benchmarks (prints tables; never asserts timings)
	$(BIN)/python bench/run.py

package: setup  ## assemble and check the xpkg directories offline
	$(BIN)/python -m modelplane.package build

docs: setup  ## regenerate the API reference from the XRDs
	$(BIN)/python -m modelplane.validate.apidocs > docs/api-reference.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
