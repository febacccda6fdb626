"""Admission as the API server does it: seeds accepted verbatim, defaults applied, mistakes
rejected with the field path and an actionable message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane.validate import admit, default_registry

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO.parent / "shared" / "seeds" / "manifests"
INVALID = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))


def _seed_documents() -> list[dict[str, Any]]:
    if not SEEDS.is_dir():
        pytest.skip(f"seed manifests not found at {SEEDS} (clone ../shared beside the repo)")
    docs: list[dict[str, Any]] = []
    for path in sorted(SEEDS.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _seed(kind: str) -> dict[str, Any]:
    [doc] = [d for d in _seed_documents() if d["kind"] == kind]
    return doc


def test_seed_manifests_are_admitted_verbatim() -> None:
    registry = default_registry()
    for doc in _seed_documents():
        _, errors = admit(doc, registry)
        assert errors == [], f"{doc['kind']}/{doc['metadata']['name']}: {errors}"


DEFAULTS = [
    # (kind, path into the admitted object, expected default)
    ("InferenceClass", ["spec", "devices", 0, "claim"], "DRA"),
    ("InferenceCluster", ["spec", "nodePools", 0, "minNodeCount"], 1),  # given, kept
    ("ModelDeployment", ["spec", "engines", 0, "copies"], 1),
    ("ModelDeployment", ["spec", "serving", "mode"], "Unified"),
    ("ModelDeployment", ["spec", "placement", "failoverWindow"], "5m"),
    ("ModelService", ["spec", "endpoints", 0, "weight"], 1),
    ("ModelService", ["spec", "endpoints", 0, "role"], "Primary"),
    ("ModelService", ["spec", "gatewayRef", "name"], "default"),
]


@pytest.mark.parametrize(("kind", "path", "expected"), DEFAULTS,
                         ids=[f"{k}:{'.'.join(map(str, p))}" for k, p, _ in DEFAULTS])
def test_defaults_complete_the_seed(kind: str, path: list[Any], expected: Any) -> None:
    admitted, errors = admit(_seed(kind), default_registry())
    assert errors == []
    value: Any = admitted
    for key in path:
        value = value[key]
    assert value == expected


def test_admission_does_not_touch_its_input_and_keeps_status() -> None:
    doc = _seed("ModelDeployment")
    doc["status"] = {"replicas": 1, "anything": "the function wrote"}
    before = yaml.safe_dump(doc)
    admitted, errors = admit(doc, default_registry())
    assert errors == []
    assert yaml.safe_dump(doc) == before
    assert admitted["status"] == doc["status"]
    assert "copies" not in doc["spec"]["engines"][0]


def test_unknown_fields_are_pruned_from_the_admitted_copy() -> None:
    doc = {
        "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelEndpoint",
        "metadata": {"name": "x", "namespace": "a"},
        "spec": {"url": "https://example.com", "apiKey": "inline"},
    }
    admitted, errors = admit(doc, default_registry())
    assert [e.path for e in errors] == ["spec.apiKey"]
    assert "apiKey" not in admitted["spec"]


def test_crossplane_composition_selection_is_accepted() -> None:
    doc = _seed("ModelService")
    doc["spec"]["crossplane"] = {"compositionRef": {"name": "modelservices.modelplane.ai"}}
    _, errors = admit(doc, default_registry())
    assert errors == []


def test_a_multi_node_prefill_decode_deployment_is_admitted() -> None:
    doc = yaml.safe_load("""
apiVersion: modelplane.ai/v1alpha1
kind: ModelDeployment
metadata: {name: big, namespace: ml}
spec:
  serving: {mode: PrefillDecode}
  tolerations: [{key: maintenance, operator: Exists, effect: NoSchedule}]
  clusterSelector:
    matchExpressions: [{key: modelplane.ai/region, operator: In, values: [eu]}]
  engines:
  - name: prefill
    phase: Prefill
    members:
    - role: Leader
      nodeSelector: {devices: [{name: gpu, count: 8}]}
      template: {spec: {containers: [{name: leader, image: img}]}}
    - role: Worker
      worker: {nodes: 3}
      nodeSelector: {devices: [{name: gpu, count: 8}]}
      template: {spec: {containers: [{name: worker, image: img}]}}
  - name: decode
    phase: Decode
    members:
    - role: Standalone
      template: {spec: {containers: [{name: engine, image: img}]}}
""")
    _, errors = admit(doc, default_registry())
    assert errors == []


def _expectation(path: Path) -> tuple[str, str]:
    header = path.read_text()
    found_path = re.search(r"^# expect-path: (.*)$", header, re.M)
    found_msg = re.search(r"^# expect-message: (.*)$", header, re.M)
    assert found_path and found_msg, f"{path.name} lacks its expect-path/expect-message header"
    return found_path.group(1).strip(), found_msg.group(1).strip()


def test_the_invalid_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 40


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_is_rejected_at_the_expected_field(path: Path) -> None:
    want_path, want_message = _expectation(path)
    doc = yaml.safe_load(path.read_text())
    _, errors = admit(doc, default_registry())
    at_path = [e.message for e in errors if e.path == want_path]
    assert at_path, f"no error at {want_path}; got {errors}"
    assert any(want_message in m for m in at_path), f"{want_message!r} not in {at_path}"
