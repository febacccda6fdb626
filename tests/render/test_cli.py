"""The `modelplane render` command: determinism and clean failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
