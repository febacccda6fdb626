"""Upstream artifacts tests check us against, fetched from the Go module proxy (the one registry
these machines have that serves charts' and operators' own sources): a chart's values.schema.json
and values.yaml, the Prometheus Operator's CRDs. Nothing is copied into the repository; the
module cache is the e2e toolchain's (``$MODELPLANE_E2E_CACHE/gomod``), so a warm machine reads
them from disk and a fresh one downloads a few MB once."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("MODELPLANE_E2E_CACHE", "/var/cache/modelplane-e2e"))

#: The Prometheus Operator release whose CRDs (monitoring.coreos.com/v1) the monitors in
#: examples/observability are validated against.
PROMETHEUS_OPERATOR = ("github.com/prometheus-operator/prometheus-operator", "v0.85.0")


@functools.cache
def go_module(path: str, version: str) -> Path:
    """The source tree of one module version (``go mod download``); skips loudly without Go."""
    go = shutil.which("go")
    if go is None:
        pytest.skip(f"UPSTREAM CHECK SKIPPED: the go command is not installed, so {path}@{version} "
                    "cannot be fetched from the Go module proxy")
    env = {**os.environ, "GOMODCACHE": str(CACHE / "gomod"), "GOFLAGS": "-mod=mod",
           "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local")}
    done = subprocess.run([go, "mod", "download", "-json", f"{path}@{version}"], env=env,
                          capture_output=True, text=True, timeout=600, cwd="/")
    info = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "Dir" not in info:
        raise AssertionError(f"cannot fetch {path}@{version} from the Go module proxy: "
                             f"{info.get('Error') or done.stderr.strip()}")
    return Path(info["Dir"])


def prometheus_operator_crds() -> Path:
    return go_module(*PROMETHEUS_OPERATOR) / "example" / "prometheus-operator-crd"
