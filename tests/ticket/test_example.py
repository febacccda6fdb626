"""examples/ticket rendered, and `modelplane ticket` answering its three tickets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modelplane.cli import main
from modelplane.common import conditions
from modelplane.render import render_fleet
from modelplane.validate import validate_paths

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "ticket"
FLEET = EXAMPLE / "fleet"
TICKETS = EXAMPLE / "tickets"
KEYS = ["runnable", "decided", "open", "lanes", "clusters", "fitsNow", "fitsAtPeak",
        "withinBoundary", "reasons"]


def test_the_example_renders_the_runnable_ticket_deployed_and_the_others_refused() -> None:
    fleet = render_fleet([EXAMPLE])
    coder = fleet.get("InferenceTicket", "coder", "internal-tools")
    docs = fleet.get("InferenceTicket", "docs", "internal-tools")
    together = fleet.get("InferenceTicket", "coder-together", "internal-tools")
    assert coder and docs and together
    assert conditions.is_true(coder, "Ready")
    md = fleet.get("ModelDeployment", "coder", "internal-tools")
    assert md is not None and md["status"]["scheduledReplicas"] == 2
    service = fleet.get("ModelService", "coder", "internal-tools")
    assert service is not None
    assert {b["endpoint"]: b["role"] for b in service["status"]["backends"]}["mistral-eu"] == (
        "Fallback")
    assert (docs["status"]["fitsNow"], docs["status"]["fitsAtPeak"]) == (True, False)
    assert (conditions.get(together, "WithinBoundary") or {}).get("status") == "False"
    assert fleet.get("ModelDeployment", "coder-together", "internal-tools") is None


@pytest.mark.parametrize(("ticket", "code", "runnable"), [
    ("coder.yaml", 0, True), ("docs-peak.yaml", 1, False), ("coder-together.yaml", 1, False)])
def test_ticket_check_exit_code_and_json(ticket: str, code: int, runnable: bool,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ticket", "check", str(TICKETS / ticket), "--fleet", str(FLEET), "-o", "json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == code
    assert list(out) == KEYS
    assert out["runnable"] is runnable
    assert out["decided"] == ["model", "engine", "hardware", "fleet", "sovereignty", "scaling",
                              "endpoint", "overflow", "cache", "lifecycle"]


def test_ticket_check_says_not_yet_and_exits_3_while_rows_are_open(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (TICKETS / "coder.yaml").read_text().replace(
        "  endpoint: {service: coder, owner: platform-oncall@example.com}\n", "")
    (tmp_path / "t.yaml").write_text(text)
    rc = main(["ticket", "check", str(tmp_path / "t.yaml"), "--fleet", str(FLEET)])
    assert rc == 3
    assert "Not yet: rows endpoint are open" in capsys.readouterr().out


def test_ticket_check_exits_2_on_a_bad_ticket_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (TICKETS / "coder.yaml").read_text().replace("memory: 40Gi", "memory: forty")
    (tmp_path / "t.yaml").write_text(text)
    rc = main(["ticket", "check", str(tmp_path / "t.yaml"), "--fleet", str(FLEET)])
    assert rc == 2
    assert "spec.hardware.memory 'forty'" in capsys.readouterr().out
    assert main(["ticket", "check", str(tmp_path / "missing.yaml"), "--fleet", str(FLEET)]) == 2


def test_ticket_new_is_a_valid_ticket(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ticket", "new"]) == 0
    (tmp_path / "new.yaml").write_text(capsys.readouterr().out)
    assert validate_paths([str(tmp_path / "new.yaml")]) == []


@pytest.mark.parametrize("ticket", ["coder.yaml", "docs-peak.yaml"])
def test_ticket_compile_writes_manifests_validate_accepts(
        ticket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ticket", "compile", str(TICKETS / ticket), "-o", str(tmp_path / "out"),
               "--fleet", str(FLEET)])
    assert rc == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == 2
    assert validate_paths([str(tmp_path / "out")]) == []


def test_ticket_from_marks_the_rows_a_pair_leaves_open(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert main(["ticket", "from", str(REPO / "examples" / "canary-fallback")]) == 0
    out = capsys.readouterr().out
    assert "kind: InferenceTicket" in out
    assert "#   lifecycle:" in out and "#   cache:" in out
    assert "name: together" in out  # the Fallback endpoint inside the directory
