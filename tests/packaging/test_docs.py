"""The operator docs keep up with the code: every failure reason a step can set on a condition
has an entry in docs/troubleshooting.md, and the pages the README and getting-started link to
exist."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions" / "modelplane"
DOCS = REPO / "docs"
# The local control plane sets Crossplane's own reasons; the steps are what operators meet.
SKIP_DIRS = {"render"}


@dataclass(frozen=True)
class Reason:
    reason: str
    where: str


def _const(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def failure_reasons() -> set[Reason]:
    """Constant reasons of conditions that are not True, found in the steps' source:

    - ``<x>.condition(type, status, reason, ...)`` / ``Condition(...)`` with status != "True";
    - calls of a module's own helper with a parameter named ``reason`` (``_hold(req, res,
      "ClusterPending", ...)``), which exist precisely to report a failure;
    - ``Blocked("Reason", ...)`` placement outcomes, and ``reason="..."`` keywords.
    """
    out: set[Reason] = set()
    for f in sorted(FUNCTIONS.rglob("*.py")):
        rel = f.relative_to(FUNCTIONS)
        if SKIP_DIRS & set(rel.parts):
            continue
        tree = ast.parse(f.read_text())
        helpers: dict[str, int] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name not in ("condition", "Condition"):
                names = [a.arg for a in node.args.args]
                if "reason" in names:
                    helpers[node.name] = names.index("reason")
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            found: str | None = None
            if name == "Blocked" and node.args:
                found = _const(node.args[0])
            elif name in ("condition", "Condition") and len(node.args) >= 3:
                if _const(node.args[1]) != "True":
                    found = _const(node.args[2])
            elif name in helpers and len(node.args) > helpers[name]:
                found = _const(node.args[helpers[name]])
            for kw in node.keywords:
                if kw.arg == "reason" and _const(kw.value):
                    found = found or _const(kw.value)
            if found and re.fullmatch(r"[A-Z][A-Za-z]+", found):
                out.add(Reason(found, f"{rel}:{node.lineno}"))
    return out


def test_the_scan_finds_reasons() -> None:
    assert len({r.reason for r in failure_reasons()}) >= 10


def test_every_failure_reason_is_in_troubleshooting() -> None:
    text = (DOCS / "troubleshooting.md").read_text()
    missing = sorted({f"{r.reason} ({r.where})" for r in failure_reasons()
                      if f"`{r.reason}`" not in text})
    assert missing == [], ("add a row for each to docs/troubleshooting.md under its condition "
                           f"type: {missing}")


def test_operator_pages_exist_and_link_to_each_other() -> None:
    pages = ["getting-started.md", "concepts.md", "operations.md", "troubleshooting.md"]
    for page in pages:
        text = (DOCS / page).read_text()
        for link in re.findall(r"\]\(([a-z-]+\.md)(?:#[a-z0-9-]+)?\)", text):
            assert (DOCS / link).is_file(), f"{page} links to missing {link}"


def test_getting_started_covers_install_to_endpoint() -> None:
    text = (DOCS / "getting-started.md").read_text()
    for step in ("crossplane xpkg install configuration", "ClusterProviderConfig",
                 "package/rbac.yaml", "kubectl scale", "/v1/chat/completions", "v2.3"):
        assert step in text, step
