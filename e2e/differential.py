"""Differential check: what real Crossplane composed vs what ``modelplane render`` composes.

``compare(cluster, rendered, known)`` takes every XR and composed object read from the real API
server, and ``modelplane render DIR -o json`` of the same manifests, pairs them (an XR by
kind/namespace/name; a composed object by its controlling XR and its
``crossplane.io/composition-resource-name``), and walks both trees. Every difference is printed.
Each one is either *known* (it matches a rule in ``e2e/known-differences.yaml``, whose
``why`` is printed beside it) or a *failure*.

Fields only a server writes (uid, resourceVersion, managedFields, timestamps, generation) are
not differences: they are dropped before comparing, and listed in ``IGNORED_METADATA``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RESOURCE_NAME = "crossplane.io/composition-resource-name"
XR_GROUP = "modelplane.ai"
# Server-assigned metadata: never compared.
IGNORED_METADATA = {"uid", "resourceVersion", "managedFields", "creationTimestamp",
                    "generation", "selfLink", "deletionGracePeriodSeconds"}
MISSING = "<absent>"


@dataclass(frozen=True)
class Rule:
    """A known difference: ``match`` is a glob over ``"<subject> <path>"``, the subject being
    ``XR:<Kind>`` for an XR and ``<XR Kind>/<Kind>`` for an object an XR composed."""

    match: str
    why: str
    side: str = "any"  # "cluster-only", "render-only", "both" (values differ) or "any"
    check: str = "any"  # "fleet", "replay" or "any"

    def matches(self, subject: str) -> bool:
        """``*`` matches anything; every other character (``[``, ``.``) is literal."""
        pattern = ".*".join(re.escape(part) for part in self.match.split("*"))
        return re.fullmatch(pattern, subject) is not None


@dataclass(frozen=True)
class Difference:
    obj: str
    path: str
    cluster: Any
    render: Any

    def subject(self) -> str:
        """What rules match: ``XR:<Kind>`` for an XR, ``<XR Kind>/<Kind>`` for a composed one."""
        if " -> " in self.obj:
            return f"{self.obj.split()[0]}/{self.obj.rsplit('(', 1)[-1].rstrip(')')}"
        return f"XR:{self.obj.split()[0]}"

    @property
    def side(self) -> str:
        if self.cluster is MISSING:
            return "render-only"
        if self.render is MISSING:
            return "cluster-only"
        return "both"

    def line(self) -> str:
        def short(v: Any) -> str:
            s = v if v is MISSING else json.dumps(v, sort_keys=True, default=str)
            return s if len(s) <= 160 else s[:157] + "..."
        return f"{self.obj} {self.path}: cluster={short(self.cluster)} render={short(self.render)}"


@dataclass
class Report:
    pairs: int = 0
    known: list[tuple[Difference, Rule]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def text(self) -> str:
        out = [f"differential: {self.pairs} objects compared, {len(self.known)} known "
               f"differences, {len(self.failures)} unexplained"]
        by_rule: dict[Rule, list[Difference]] = {}
        for d, r in self.known:
            by_rule.setdefault(r, []).append(d)
        for r, diffs in by_rule.items():
            out.append(f"  known [{r.match}] {r.side}/{r.check} ({len(diffs)}): {r.why.strip()}")
            out += [f"    {d.line()}" for d in diffs]
        if self.failures:
            out.append("  UNEXPLAINED (not in e2e/known-differences.yaml):")
            out += [f"    {f}" for f in self.failures]
        return "\n".join(out)


def load_known(path: Path) -> list[Rule]:
    data = yaml.safe_load(path.read_text()) or {}
    return [Rule(match=r["match"], why=r["why"], side=r.get("side", "any"),
                 check=r.get("check", "any"))
            for r in data.get("differences", [])]


def _meta(o: dict[str, Any]) -> dict[str, Any]:
    m: dict[str, Any] = o.get("metadata") or {}
    return m


def xr_key(o: dict[str, Any]) -> str:
    m = _meta(o)
    ns = f"{m['namespace']}/" if m.get("namespace") else ""
    return f"{o.get('kind')} {ns}{m.get('name')}"


def _controller(o: dict[str, Any]) -> dict[str, Any] | None:
    for ref in _meta(o).get("ownerReferences") or []:
        if ref.get("controller"):
            r: dict[str, Any] = ref
            return r
    return None


def pair_key(o: dict[str, Any], owners: dict[str, str]) -> str:
    """XRs by identity; composed objects by (controlling XR, composition resource name).
    ``owners`` maps each XR's UID to its identity (UIDs differ between the two sides)."""
    rname = (_meta(o).get("annotations") or {}).get(RESOURCE_NAME)
    owner = _controller(o)
    if rname and owner is not None:
        xr = owners.get(str(owner.get("uid")), f"{owner.get('kind')} {owner.get('name')}")
        return f"{xr} -> {rname} ({o.get('kind')})"
    return xr_key(o)


def _owners(objs: list[dict[str, Any]]) -> dict[str, str]:
    return {str(_meta(o).get("uid")): xr_key(o) for o in objs
            if str(o.get("apiVersion", "")).startswith(f"{XR_GROUP}/") and _meta(o).get("uid")}


def normalise(o: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(o))
    meta = out.get("metadata") or {}
    for k in IGNORED_METADATA:
        meta.pop(k, None)
    for ref in meta.get("ownerReferences") or []:
        ref.pop("uid", None)  # both sides have UIDs; each its own
    return dict(out)


def walk(a: Any, b: Any, path: str, out: list[tuple[str, Any, Any]]) -> None:
    """Every field render (``b``) sets that the cluster (``a``) lacks or holds differently, and
    every field the cluster holds that render lacks. Fields the API server defaults show up as
    cluster-only and are matched by known rules (or dropped by ``SERVER_DEFAULTS``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            walk(a.get(k, MISSING), b.get(k, MISSING), f"{path}.{k}" if path else str(k), out)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            walk(x, y, f"{path}[{i}]", out)
        return
    if a != b:
        out.append((path, a, b))


def _conditions_by_type(o: dict[str, Any]) -> None:
    """Conditions are a set keyed by type; compare them as a map (order is not meaningful)."""
    status = o.get("status")
    if isinstance(status, dict) and isinstance(status.get("conditions"), list):
        status["conditions"] = {str(c.get("type")): {k: v for k, v in c.items()
                                                     if k != "lastTransitionTime"}
                                for c in status["conditions"]}


def compare(cluster: list[dict[str, Any]], rendered: list[dict[str, Any]],
            known: list[Rule], check: str = "fleet", report: Report | None = None) -> Report:
    """Pair and walk ``cluster`` against ``rendered``; classify each difference."""
    report = report or Report()
    ours = {pair_key(o, _owners(cluster)): normalise(o) for o in cluster}
    theirs = {pair_key(o, _owners(rendered)): normalise(o) for o in rendered
              if o.get("apiVersion", "").startswith(f"{XR_GROUP}/") or _controller(o)}
    if check == "fleet":
        # Render's converged fleet has simulated providers behind it; the cluster has none.
        # Status is compared by the replay (same observed state on both sides), not here.
        for o in (*ours.values(), *theirs.values()):
            o.pop("status", None)
    diffs: list[Difference] = []
    for key in sorted(set(ours) | set(theirs)):
        a, b = ours.get(key), theirs.get(key)
        if a is None or b is None:
            diffs.append(Difference(key, "<object>", MISSING if a is None else "present",
                                    MISSING if b is None else "present"))
            continue
        report.pairs += 1
        _conditions_by_type(a)
        _conditions_by_type(b)
        found: list[tuple[str, Any, Any]] = []
        walk(a, b, "", found)
        diffs += [Difference(key, p, x, y) for p, x, y in found]
    for d in diffs:
        subject = f"{d.subject()} {d.path}"
        rule = next((r for r in known if r.matches(subject)
                     and r.side in ("any", d.side) and r.check in ("any", check)), None)
        if rule is None:
            report.failures.append(f"[{check}] {d.line()}")
        else:
            report.known.append((d, rule))
    return report


def composed_by(xr: dict[str, Any], objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects ``xr`` controls (by owner reference UID)."""
    uid = _meta(xr).get("uid")
    return [o for o in objs if (_controller(o) or {}).get("uid") == uid and uid]


def replay_inputs(xr: dict[str, Any], cluster: list[dict[str, Any]],
                  extra: list[dict[str, Any]], out: Path) -> tuple[Path, Path, Path]:
    """Files for ``modelplane render-xr XR COMPOSITION -o OBSERVED -e REQUIRED``: the XR as the
    API server holds it, the objects Crossplane observed for it, and every object the
    function may require (all XRs, composed objects and Secrets)."""
    out.mkdir(parents=True, exist_ok=True)
    xr_file, observed, required = out / "xr.yaml", out / "observed.yaml", out / "required.yaml"
    xr_file.write_text(yaml.safe_dump(xr))
    observed.write_text(yaml.safe_dump_all(composed_by(xr, cluster)))
    required.write_text(yaml.safe_dump_all([*cluster, *extra]))
    return xr_file, observed, required


def replay_compare(xr: dict[str, Any], cluster: list[dict[str, Any]],
                   rendered: list[dict[str, Any]], known: list[Rule], report: Report) -> None:
    """One reconcile replayed by render from the cluster's own state vs the cluster.

    ``rendered`` is single-XR render's output: the XR (its desired status) and the desired
    composed resources (named, or with generateName when the function leaves names to
    Crossplane). A composed object is paired by composition-resource-name."""
    xr_out, desired = dict(rendered[0]), rendered[1:]
    uid = _meta(xr).get("uid")
    xr_out["metadata"] = {**_meta(xr_out), "uid": uid}  # the same XR on both sides
    # The XR: render returns only the status the pipeline desires (and conditions).
    mine = {"apiVersion": xr.get("apiVersion"), "kind": xr.get("kind"),
            "metadata": {k: v for k, v in _meta(xr).items()
                         if k in ("name", "namespace", "uid")},
            "status": dict(xr.get("status") or {})}
    compare([mine, *composed_by(xr, cluster)], [xr_out, *desired], known, "replay", report)


def offline(run_dir: Path, known_file: Path) -> int:
    """Recompute the reports of a kept run dir (``make e2e E2E_FLAGS=--keep``)."""
    known = load_known(known_file)
    failures = 0
    for cluster_file in sorted(run_dir.glob("cluster-*.json")):
        name = cluster_file.stem.removeprefix("cluster-")
        cluster = json.loads(cluster_file.read_text())
        rendered = json.loads((run_dir / f"render-{name}.json").read_text())
        report = compare(cluster, rendered, known, "fleet")
        for d in sorted((run_dir / f"replay-{name}").glob("*/rendered.yaml")):
            xr = yaml.safe_load((d.parent / "xr.yaml").read_text())
            out = [o for o in yaml.safe_load_all(d.read_text()) if o]
            replay_compare(xr, cluster, out, known, report)
        print(f"== {name}\n{report.text()}")
        failures += len(report.failures)
    return 1 if failures else 0


if __name__ == "__main__":
    import sys

    sys.exit(offline(Path(sys.argv[1]), Path(__file__).resolve().parent
                     / "known-differences.yaml"))
