"""The views of a rendered fleet: `modelplane trace` (an XR and everything it composes) and
`render -o html` (one self-contained page), checked for every example and, where Chromium is
installed, as a browser renders it."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from modelplane.cli import main
from modelplane.render import Fleet, render_fleet
from modelplane.render.views import page

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [*sorted(p.name for p in (REPO / "examples").iterdir()
                   if p.is_dir() and p.name != "gitops"), "gitops/fleet"]


def test_trace_prints_the_deployment_and_everything_below_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", str(REPO / "examples" / "quickstart"),
                 "-r", "modeldeployment/qwen-demo", "-n", "ml-team"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SYNCED", "READY", "STATUS"]
    assert lines[1].startswith("ModelDeployment/qwen-demo (ml-team)")
    assert lines[1].split()[2:4] == ["True", "True"]
    # The replica the deployment composed, and the provider-kubernetes Objects it composed.
    replica = next(i for i, line in enumerate(lines) if "ModelReplica/qwen-demo-" in line)
    assert lines[replica].startswith(("├─ ", "└─ "))
    below = lines[replica + 1:]
    assert any("Object/" in line and "[Deployment " in line for line in below)
    assert any(line.startswith(("│  ├─ ", "│  └─ ", "   ├─ ", "   └─ ")) for line in below)


def test_trace_reads_a_rendered_state_and_names_why_not_ready(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    fleet = render_fleet([REPO / "examples" / "quickstart"])
    state = [o for o in fleet.objects() if o["kind"] != "CompositeResourceDefinition"]
    for o in state:
        if o["kind"] == "ModelDeployment":
            o["spec"]["replicas"] = 5
    (tmp_path / "state.json").write_text(json.dumps(state))
    assert main(["trace", str(tmp_path / "state.json"), "-r", "modeldeployment"]) == 0
    first = capsys.readouterr().out.splitlines()[1]
    assert first.split()[2:4] == ["True", "False"]
    assert "=False (" in first and "2/5 replicas" in first


def test_trace_of_nothing_that_matches_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", str(REPO / "examples" / "quickstart"), "-r", "modelcache/x"]) == 1
    assert "no Modelplane object matches 'modelcache/x'" in capsys.readouterr().err


# -- the HTML page ------------------------------------------------------------------------------

class Rows(HTMLParser):
    """Every element with data-* attributes, and every external reference or script."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.external: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(a[key])
        if any(k.startswith("data-") or k == "class" for k in a):
            self.rows.append({"tag": tag, **a})


def parse(text: str) -> Rows:
    rows = Rows()
    rows.feed(text)
    return rows


def consistency(text: str, fleet: Fleet) -> None:
    """The page agrees with itself and with the fleet it shows."""
    rows = parse(text)
    assert rows.external == [] and rows.scripts == 0  # self-contained and static
    of = {cls: [r for r in rows.rows if r.get("class") == cls]
          for cls in ("pool", "deployment", "replica", "service", "backend", "condition")}
    for pool in of["pool"]:  # used and free add up to what the pool has
        assert int(pool["data-used"]) + int(pool["data-free"]) == int(pool["data-total"])
        assert int(pool["data-free"]) >= 0
    clusters = {p["data-cluster"] for p in of["pool"]}
    assert len(of["deployment"]) == len(fleet.of_kind("ModelDeployment"))
    for d in fleet.of_kind("ModelDeployment"):
        placed = [r for r in of["replica"] if r["data-deployment"] == d["metadata"]["name"]]
        assert len(placed) == len(d["status"].get("placements") or [])
        assert {r["data-cluster"] for r in placed} <= clusters  # every replica runs on a pool
    for s in of["service"]:  # the weights shown are the weights that add up
        weights = [int(b["data-weight"]) for b in of["backend"]
                   if b["data-service"] == s["data-name"]]
        assert sum(weights) == int(s["data-weight-total"])
    totals = next(r for r in rows.rows if r.get("id") == "totals")
    unready = [r for r in rows.rows if r.get("data-ready") == "false"]
    not_ready_objects = int(totals["data-unready"])
    # Every object that is not Ready has a row saying so, and one condition row at least.
    assert (not_ready_objects == 0) == (not unready)
    assert len(of["condition"]) >= not_ready_objects


@pytest.fixture(scope="module", params=EXAMPLES)
def rendered(request: pytest.FixtureRequest) -> tuple[str, Fleet, str]:
    fleet = render_fleet([REPO / "examples" / request.param])
    return request.param, fleet, page(fleet, f"examples/{request.param}")


def test_the_page_is_consistent_for_every_example(rendered: tuple[str, Fleet, str]) -> None:
    _, fleet, text = rendered
    consistency(text, fleet)


def test_the_page_shows_where_replicas_run_and_what_is_left() -> None:
    fleet = render_fleet([REPO / "examples" / "multi-cloud"])
    rows = parse(page(fleet)).rows
    big = next(r for r in rows if r.get("class") == "deployment"
               and r["data-name"] == "big-batch")
    assert (big["data-desired"], big["data-ready-replicas"]) == ("10", "3")
    onprem = [r for r in rows if r.get("class") == "pool" and r["data-cluster"] == "onprem"]
    assert [(r["data-used"], r["data-free"]) for r in onprem] == [("25", "7")]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium is not installed (Debian: apt-get install -y chromium); "
                "the page's own consistency is still checked above")


def _chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120)


def test_chromium_renders_the_page_of_every_example(rendered: tuple[str, Fleet, str],
                                                    tmp_path: Path) -> None:
    name, fleet, text = rendered
    html_file = tmp_path / "fleet.html"
    html_file.write_text(text)
    shot = tmp_path / "fleet.png"
    out = _chromium([f"--screenshot={shot}", "--window-size=1280,1600", html_file.as_uri()],
                    tmp_path)
    assert shot.is_file() and shot.stat().st_size > 10_000, (name, out.stderr[-2000:])
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The DOM as Chromium built it says the same as the page we wrote.
    dom = _chromium(["--dump-dom", html_file.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    consistency(dom.stdout, fleet)
    shown = parse(dom.stdout).rows
    assert len([r for r in shown if r.get("class") == "pool"]) == len(
        [r for r in parse(text).rows if r.get("class") == "pool"])


def test_render_writes_html_and_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(REPO / "examples" / "quickstart"), "-o", "html"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert main(["render", str(REPO / "examples" / "quickstart"), "-o", "tree"]) == 0
    assert "ModelDeployment/qwen-demo (ml-team)" in capsys.readouterr().out
