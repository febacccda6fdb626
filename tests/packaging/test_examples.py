"""The examples read as one fleet would: a single vLLM release across all of them, so a reader
never wonders which version the project means (issue 18: one vLLM version across examples)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGE = re.compile(r"vllm/vllm-openai:([\w.-]+)")


def test_every_example_uses_the_same_vllm_release() -> None:
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "examples").rglob("*.yaml")):
        for tag in IMAGE.findall(path.read_text()):
            found.setdefault(tag, []).append(str(path.relative_to(REPO)))
    assert len(found) == 1, found
