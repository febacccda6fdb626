"""The local control plane follows Crossplane's composite reconciler semantics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from modelplane.render import InputError, RenderError, render_fleet

from tests.render import test_steps  # noqa: F401  (registers the test-only steps)

FIXTURES = Path(__file__).parent / "fixtures"


def write_fleet(tmp_path: Path, parent_spec: dict, extra: list[dict] | None = None) -> Path:
    docs = [
        {"apiVersion": "test.modelplane.ai/v1", "kind": "Parent",
         "metadata": {"name": "p", "namespace": "team"}, "spec": parent_spec},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "chosen", "namespace": "other", "labels": {"pick": "me"}}},
        *(extra or []),
    ]
    d = tmp_path / "fleet"
    d.mkdir(exist_ok=True)
    (d / "fleet.yaml").write_text(yaml.safe_dump_all(docs))
    return d


def render(tmp_path: Path, parent_spec: dict, **kw):  # type: ignore[no-untyped-def]
    return render_fleet([write_fleet(tmp_path, parent_spec)], extra=[FIXTURES / "xrds.yaml"], **kw)


def test_composed_resources_carry_crossplane_metadata(tmp_path: Path) -> None:
    fleet = render(tmp_path, {"children": ["a", "b"]})
    parent = fleet.get("Parent", "p", "team")
    child = fleet.get("Child", "p-a", "team")
    assert child is not None and parent is not None
    meta = child["metadata"]
    assert meta["labels"]["crossplane.io/composite"] == "p"
    assert meta["annotations"]["crossplane.io/composition-resource-name"] == "child-a"
    assert meta["ownerReferences"][0]["uid"] == parent["metadata"]["uid"]
    assert meta["ownerReferences"][0]["controller"] is True


def test_composed_xrs_are_reconciled_recursively(tmp_path: Path) -> None:
    fleet = render(tmp_path, {"children": ["a"]})
    config = fleet.get("ConfigMap", "p-a-config", "team")
    assert config is not None and config["data"] == {"value": "a"}


def test_xr_is_ready_only_when_every_composed_resource_is(tmp_path: Path) -> None:
    fleet = render(tmp_path, {"children": ["a", "b"]})
    parent = fleet.get("Parent", "p", "team")
    assert parent is not None
    ready = next(c for c in parent["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_context_is_threaded_between_pipeline_steps(tmp_path: Path) -> None:
    fleet = render(tmp_path, {"children": ["a", "b"]})
    assert fleet.get("Parent", "p", "team")["status"]["fromContext"] == 2  # type: ignore[index]


def test_required_resources_are_answered_across_namespaces(tmp_path: Path) -> None:
    fleet = render(tmp_path, {"children": []})
    parent = fleet.get("Parent", "p", "team")
    assert parent is not None
    assert parent["status"]["picked"] == ["chosen"]
    picked = next(c for c in parent["status"]["conditions"] if c["type"] == "Picked")
    assert picked["status"] == "True"


def test_resources_no_longer_desired_are_deleted_with_their_children(tmp_path: Path) -> None:
    fleet = render(tmp_path, {"children": ["a", "b"]})
    state = [o for o in fleet.objects() if o["kind"] != "CompositeResourceDefinition"]
    for o in state:
        if o["kind"] == "Parent":
            o["spec"]["children"] = ["a"]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(state))
    again = render_fleet([edited], extra=[FIXTURES / "xrds.yaml"])
    assert again.get("Child", "p-b", "team") is None
    assert again.get("ConfigMap", "p-b-config", "team") is None
    assert again.get("ConfigMap", "p-a-config", "team") is not None


def test_render_accepts_its_own_output_and_changes_nothing(tmp_path: Path) -> None:
    fleet = render(tmp_path, {"children": ["a"]})
    out = tmp_path / "out.json"
    out.write_text(json.dumps(fleet.objects()))
    again = render_fleet([out], extra=[FIXTURES / "xrds.yaml"])
    assert json.dumps(again.objects(), sort_keys=True) == json.dumps(fleet.objects(),
                                                                      sort_keys=True)


def test_non_convergence_names_the_objects_still_changing(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"Parent.test.modelplane.ai team/p"):
        render(tmp_path, {"children": [], "flap": True}, max_rounds=4)


def test_a_fatal_result_aborts_the_reconcile_without_deleting(tmp_path: Path) -> None:
    fleet = render(tmp_path, {"children": ["a"]})
    state = fleet.objects()
    for o in state:
        if o["kind"] == "Parent":
            o["spec"]["boom"] = True
    edited = tmp_path / "boom.json"
    edited.write_text(json.dumps(state))
    again = render_fleet([edited], extra=[FIXTURES / "xrds.yaml"])
    assert again.get("Child", "p-a", "team") is not None
    parent = again.get("Parent", "p", "team")
    synced = next(c for c in parent["status"]["conditions"] if c["type"] == "Synced")  # type: ignore[index]
    assert synced["status"] == "False"
    assert "boom requested by spec.boom" in synced["message"]


def test_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    a = render(tmp_path, {"children": ["a", "b"]})
    b = render(tmp_path, {"children": ["a", "b"]})
    assert json.dumps(a.objects(), sort_keys=True) == json.dumps(b.objects(), sort_keys=True)


@pytest.mark.parametrize(("content", "message"), [
    ("a: [unclosed", "not valid YAML/JSON"),
    ("apiVersion: example.org/v1\nkind: Mystery\nmetadata: {name: m}\n", "unknown kind Mystery"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "has no metadata.name"),
    ("- just a list\n", "must be a mapping"),
])
def test_input_errors_name_the_file_and_document(tmp_path: Path, content: str,
                                                 message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        render_fleet([bad])
    assert "bad.yaml" in str(err.value)


def test_an_xr_without_a_composition_is_an_error(tmp_path: Path) -> None:
    xrds = [d for d in yaml.safe_load_all((FIXTURES / "xrds.yaml").read_text())
            if d["kind"] == "CompositeResourceDefinition"]
    only_xrds = tmp_path / "xrds.yaml"
    only_xrds.write_text(yaml.safe_dump_all(xrds))
    with pytest.raises(RenderError, match="no Composition for Parent"):
        render_fleet([write_fleet(tmp_path, {"children": []})], extra=[only_xrds])
