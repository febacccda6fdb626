"""The wheel the function image installs carries the XRDs and Compositions, so an installed
`modelplane render` / `validate` works outside a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel exactly as the Dockerfile's build stage makes it (`pip wheel --no-deps .`)."""
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
         "--disable-pip-version-check", "-w", str(out), str(REPO)],
        capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    wheels = sorted(out.glob("modelplane-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_includes_every_xrd_and_composition(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in sorted((REPO / "apis").rglob("*.yaml")):
        assert f"modelplane/_package/{f.relative_to(REPO)}" in names, f
    for f in sorted((REPO / "compositions").glob("*.yaml")):
        assert f"modelplane/_package/{f.relative_to(REPO)}" in names, f


def test_wheel_includes_the_package_command_and_console_script(wheel: Path) -> None:
    z = zipfile.ZipFile(wheel)
    assert "modelplane/package.py" in z.namelist()
    entry = next(n for n in z.namelist() if n.endswith("entry_points.txt"))
    assert "modelplane = modelplane.cli:main" in z.read(entry).decode()
