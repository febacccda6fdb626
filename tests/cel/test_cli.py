"""`modelplane cel eval`: JSON result or error, exit code 0 or 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modelplane.cel.cli import eval_command

L4_SELECTOR = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0'


def _run(capsys: pytest.CaptureFixture[str], expr: str, device: str | None) -> tuple[int, dict]:
    code = eval_command(expr, device)
    return code, json.loads(capsys.readouterr().out)


def test_l4_device_file_satisfies_the_20gi_selector(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "l4.yaml"
    f.write_text("driver: gpu.nvidia.com\ncapacity: {memory: {value: 23034Mi}}\n")
    assert _run(capsys, L4_SELECTOR, str(f)) == (0, {"result": True})


def test_json_device_files_are_accepted(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "d.json"
    f.write_text(json.dumps({"driver": "x", "attributes": {"m": {"string": "L4"}}}))
    assert _run(capsys, 'device.attributes["x"].m', str(f)) == (0, {"result": "L4"})


def test_without_a_device_the_driver_is_empty(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, 'device.driver == ""', None) == (0, {"result": True})


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [("device.", "Syntax error"), ('device.attributes["d"].x', "no such key: x")],
)
def test_errors_print_json_and_exit_1(capsys: pytest.CaptureFixture[str], expr: str,
                                      fragment: str) -> None:
    code, out = _run(capsys, expr, None)
    assert code == 1 and fragment in out["error"]


def test_unreadable_device_file_is_an_error(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "true", str(tmp_path / "missing.yaml"))
    assert code == 1 and "--device" in out["error"]


def test_quantities_print_as_strings(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, 'quantity("1500m")', None) == (0, {"result": "1500m"})
