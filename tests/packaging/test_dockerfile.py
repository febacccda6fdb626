"""package/Dockerfile, checked statically (no Docker engine here): two stages on one base,
the wheel built and installed into a venv in the build stage, a non-root runtime that fetches
nothing, `modelplane serve` on Crossplane's function port and TLS directory."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "package" / "Dockerfile"
NETWORK_TOOLS = re.compile(r"\b(pip\s+install|pip3\s+install|curl|wget|apt-get|apk\s+add|git)\b")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Dockerfile -> (global ARG defaults, stages); continuation lines joined, comments dropped."""
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        op, _, rest = line.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest, re.IGNORECASE)
            assert m, line
            base = re.sub(r"\$\{?(\w+)\}?", lambda g: args.get(g.group(1), g.group(0)),
                          m.group(1))
            stages.append(Stage(base, m.group(2) or str(len(stages))))
        elif not stages and op == "ARG":
            k, _, v = rest.partition("=")
            args[k] = v
        else:
            assert stages, f"{op} before the first FROM"
            stages[-1].instructions.append((op, rest))
    return args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text())[1]


def test_build_and_run_stages_use_the_same_pinned_python_base(stages: list[Stage]) -> None:
    assert len(stages) == 2
    assert {s.base for s in stages} == {"python:3.11-slim-bookworm"}
    assert all(":" in s.base and not s.base.endswith(":latest") for s in stages)


def test_base_python_matches_the_projects_supported_range(stages: list[Stage]) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    minor = re.search(r"python:3\.(\d+)", stages[0].base)
    assert minor and f">=3.{minor.group(1)}" in project["requires-python"].replace(" ", "")


def test_build_stage_builds_the_wheel_and_installs_it_into_a_venv(stages: list[Stage]) -> None:
    run = " ".join(stages[0].all("RUN"))
    assert "python -m venv /venv" in run
    assert "pip wheel --no-deps" in run and "pip install /wheels/" in run


def test_build_stage_copies_everything_the_wheel_is_built_from(stages: list[Stage]) -> None:
    copied = " ".join(stages[0].all("COPY"))
    hatch = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    wheel = hatch["targets"]["wheel"]
    needed = ["pyproject.toml", "README.md", *wheel["packages"], *wheel["force-include"]]
    top = {n.split("/")[0] for n in needed}
    for name in sorted(top):
        assert re.search(rf"(^|\s){re.escape(name)}/?(\s|$)", copied), f"{name} not copied"


def test_runtime_stage_copies_the_venv_and_fetches_nothing(stages: list[Stage]) -> None:
    run = stages[1]
    assert "--from=build /venv /venv" in run.all("COPY")
    assert not [i for i in run.all("RUN") if NETWORK_TOOLS.search(i)], run.all("RUN")
    assert any("PATH=/venv/bin" in e for e in run.all("ENV"))


def test_runtime_runs_as_non_root_uid_65532(stages: list[Stage]) -> None:
    users = stages[1].all("USER")
    assert users and users[-1].split(":")[0] == "65532"


def test_entrypoint_serves_the_function_with_crossplanes_tls_convention(
        stages: list[Stage]) -> None:
    run = stages[1]
    assert json.loads(run.all("ENTRYPOINT")[-1]) == ["modelplane", "serve"]
    assert not run.all("CMD"), "arguments would override Crossplane's TLS/insecure handling"
    assert run.all("EXPOSE") == ["9443 8080"]  # gRPC, and Prometheus /metrics
    assert any("TLS_SERVER_CERTS_DIR=/tls/server" in e for e in run.all("ENV"))
    assert any("MODELPLANE_METRICS_ADDRESS=0.0.0.0:8080" in e for e in run.all("ENV"))


def test_serve_reads_the_tls_dir_from_the_environment() -> None:
    """The ENTRYPOINT passes no flags: `modelplane serve` must take TLS_SERVER_CERTS_DIR and
    default to Crossplane's function port."""
    from modelplane import cli

    args = cli.parser().parse_args(["serve"])
    assert args.address.endswith(":9443") and args.tls_certs_dir is None
    assert "TLS_SERVER_CERTS_DIR" in Path(cli.__file__).read_text()
