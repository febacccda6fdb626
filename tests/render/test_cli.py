"""The `modelplane` command line: determinism, clean failures, help and exit codes for CI."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from modelplane.cli import parser
from modelplane.render import Progress, render_command

ROOT = Path(__file__).resolve().parents[2]


def modelplane(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelplane.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


def test_render_json_is_byte_identical_across_runs() -> None:
    a = modelplane("render", "examples/quickstart", "-o", "json")
    b = modelplane("render", "examples/quickstart", "-o", "json")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout


def test_bad_input_exits_non_zero_names_the_file_and_prints_nothing(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tmp_path / "broken.yaml").write_text("kind: [\n")
    out = modelplane("render", str(tmp_path))
    assert out.returncode == 1
    assert out.stdout == ""
    assert "broken.yaml" in out.stderr


def test_version() -> None:
    out = modelplane("--version")
    assert out.returncode == 0
    assert re.fullmatch(r"modelplane \d+\.\d+\.\d+\S*\n", out.stdout)


def _subcommands(p: argparse.ArgumentParser, path: str = "modelplane") -> list[tuple[str, Any]]:
    found = [(path, p)]
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _subcommands(child, f"{path} {name}")
    return found


def test_every_flag_and_argument_has_help() -> None:
    missing = [f"{where}: {a.option_strings or a.dest}"
               for where, p in _subcommands(parser()) for a in p._actions
               if not isinstance(a, argparse._SubParsersAction)
               and (not a.help or a.help == argparse.SUPPRESS)]
    assert missing == []


def test_fail_on_unready_exits_3_and_names_what_is_not_ready() -> None:
    # multi-cloud's research/big-batch asks for 10 replicas where 3 fit.
    out = modelplane("render", "examples/multi-cloud", "--fail-on-unready")
    assert out.returncode == 3
    assert "ModelDeployment/big-batch" in out.stderr
    ok = modelplane("render", "examples/quickstart", "--fail-on-unready")
    assert ok.returncode == 0, ok.stderr


def test_the_summary_lists_problems_first() -> None:
    out = modelplane("render", "examples/multi-cloud")
    assert out.returncode == 0  # without --fail-on-unready an unready fleet still renders
    text = out.stdout
    assert text.index("Problems:") < text.index("Clusters (")
    problems = text[text.index("Problems:"):text.index("Clusters (")]
    assert "ModelDeployment research/big-batch: not Ready" in problems
    assert "ReplicasScheduled=False (Unschedulable)" in problems
    assert "DeletionProtected" not in problems  # informational, not a problem
    # One line per deployment, however many replicas.
    deployments = text[text.index("Deployments ("):].split("\n\n")[0].splitlines()
    assert len(deployments) == 1 + 3


def test_progress_goes_to_stderr_once_a_render_takes_long(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(Progress, "DELAY", 0.0)
    assert render_command([str(ROOT / "examples" / "quickstart")]) == 0
    captured = capsys.readouterr()
    assert "render: round 1:" in captured.err
    assert "render: converged after" in captured.err
    assert "render:" not in captured.out
