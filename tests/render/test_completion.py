"""`modelplane completion`: the script a shell sources completes subcommands, flags, choices and
paths, straight from the argument parser (run in a real bash, as a user's shell would)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script(shell: str) -> str:
    done = subprocess.run([sys.executable, "-m", "modelplane.cli", "completion", shell],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=True)
    return done.stdout


def complete(*words: str) -> list[str]:
    """What bash offers for the last word of ``modelplane <words>``."""
    script = _script("bash")
    line = " ".join(("modelplane", *words))
    program = (f"{script}\nCOMP_WORDS=(modelplane {' '.join(repr(w) for w in words)})\n"
               f"COMP_CWORD={len(words)}\nCOMP_LINE={line!r}\nCOMP_POINT=${{#COMP_LINE}}\n"
               "_shtab_modelplane\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=True)
    return [w for w in done.stdout.splitlines() if w]


pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def test_subcommands_complete() -> None:
    assert complete("ren") == ["render", "render-xr"]
    assert "completion" in complete("")


def test_flags_and_their_choices_complete() -> None:
    assert complete("render", "--fail") == ["--fail-on-unready"]
    assert complete("render", "-o", "") == ["summary", "yaml", "json", "tree", "html"]
    assert complete("validate", "-o", "j") == ["json"]


def test_paths_complete_to_files_and_directories() -> None:
    assert complete("render", "exa") == ["examples"]
    assert complete("render-xr", "examples/quick") == ["examples/quickstart"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "tcsh"])
def test_every_shell_gets_a_script_naming_every_subcommand(shell: str) -> None:
    script = _script(shell)
    for command in ("serve", "render", "render-xr", "trace", "validate", "cel", "ticket"):
        assert command in script, (shell, command)


def test_the_bash_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n"], input=_script("bash"), text=True, check=True, timeout=60)
